//! Consumer-group checks (`offset-regression`, `stale-offset`, `at-least-once`; see `checker`'s
//! module comment).
//!
//! A group's committed offset for a partition is observed by its `ok` commits (the value it
//! wrote) and `ok` fetch-committed (the value the broker returned, or none). A process belongs
//! to a group if any of its events names the group. An operation took effect somewhere between
//! its invoke and its completion, so "A before B" below always means B was invoked after A
//! completed: concurrency never makes an anomaly.
//!
//! "Seek" below means a member's repositioning: a seek, or a reset to the log start. Seeks,
//! resets and polls that ended `info` may have happened, so they excuse as if they had (a
//! possibly processed record, a possible jump or rewind) and never accuse; commits and
//! fetches that ended `info` are no observations, but an `info` commit is a write that may land
//! at any time after its invoke.

use super::checker::Tp;
use super::event::{Event, EventType, Op};
use super::ops::Operation;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// (group, topic, partition)
type GroupTp<'a> = (&'a str, Tp<'a>);

/// One observation of a group's committed offset.
struct Committed<'a> {
    op: &'a Operation<'a>,
    /// `None`: a fetch found no committed offset.
    offset: Option<u64>,
    /// Position among the operations, which `pair` emits in completion order: breaks ties of
    /// equal completion times.
    order: usize,
}

impl Committed<'_> {
    fn completed(&self) -> u64 {
        self.op.event.time_ns
    }
}

impl fmt::Display for Committed<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = if self.op.f == Op::Commit {
            "commit of"
        } else {
            "fetch-committed returning"
        };
        let offset = self.offset.map_or("none".to_string(), |o| o.to_string());
        write!(
            f,
            "{what} {offset} by {} (invoked {} ns, ok {} ns)",
            self.op.process,
            self.op.invoked_ns,
            self.completed()
        )
    }
}

/// A commit that may have taken effect: `ok`, or `info` (it may land at any time after its
/// invoke). Failed commits did not happen and are not kept.
struct Write<'a> {
    op: &'a Operation<'a>,
    offset: u64,
    /// When it certainly had taken effect (`None`: an `info` commit, never certain).
    done_ns: Option<u64>,
}

/// A repositioning by a group member — a seek, or a reset to the log start — which may make the
/// group commit lower, or jump over records. `ok` or `info` (it may have happened: it may
/// excuse).
struct Seek<'a> {
    op: &'a Operation<'a>,
    offset: u64,
    /// Where the process stood before (after its last read or repositioning; 0 if none): a
    /// move from `from` to a higher `offset` jumps over `[from, offset)`.
    from: u64,
}

/// What the group checks need, gathered once.
#[derive(Default)]
struct Groups<'a> {
    /// Groups each process belongs to.
    member_of: BTreeMap<&'a str, BTreeSet<&'a str>>,
    /// Observations of each group's committed offsets, in completion order.
    committed: BTreeMap<GroupTp<'a>, Vec<Committed<'a>>>,
    /// Every commit of each group's offsets that may have taken effect.
    writes: BTreeMap<GroupTp<'a>, Vec<Write<'a>>>,
    /// Seeks and resets per partition, by any process (membership is checked per group).
    seeks: BTreeMap<Tp<'a>, Vec<Seek<'a>>>,
    /// (partition, offset, process) read by `ok` polls, or possibly by `info` ones; sorted
    /// without repeats once gathered (`by_record`), so the readers of a record are one run.
    processed_by: Vec<(Tp<'a>, u64, &'a str)>,
}

impl<'a> Groups<'a> {
    fn gather(events: &'a [Event], ops: &'a [Operation<'a>]) -> Groups<'a> {
        let mut g = Groups::default();
        for e in events {
            if let Some(group) = &e.group {
                g.member_of.entry(&e.process).or_default().insert(group);
            }
        }
        // Each process's position per partition, to tell forward jumps from rewinds.
        let mut at: BTreeMap<(&str, Tp), u64> = BTreeMap::new();
        for (order, op) in ops.iter().enumerate() {
            let e = &op.event;
            let tp = e.topic.as_deref().zip(e.partition);
            let certain = op.outcome == EventType::Ok;
            if let (
                Op::Commit,
                EventType::Ok | EventType::Info,
                Some(group),
                Some(tp),
                Some(offset),
            ) = (&op.f, op.outcome, &e.group, tp, e.offset)
            {
                let w = Write {
                    op,
                    offset,
                    done_ns: (op.outcome == EventType::Ok).then_some(e.time_ns),
                };
                g.writes.entry((group.as_str(), tp)).or_default().push(w);
            }
            match (&op.f, op.outcome, &e.group, tp) {
                (Op::Commit | Op::FetchCommitted, EventType::Ok, Some(group), Some(tp)) => {
                    if let (Op::FetchCommitted, Some(o)) = (&op.f, e.offset) {
                        move_to(&mut at, op.process, tp, o, true);
                    }
                    // A commit without an offset cannot be checked; `parse_history` makes its invoke
                    // carry one, so this is only a lone completion.
                    if op.f == Op::Commit && e.offset.is_none() {
                        continue;
                    }
                    g.committed
                        .entry((group.as_str(), tp))
                        .or_default()
                        .push(Committed {
                            op,
                            offset: e.offset,
                            order,
                        });
                }
                (Op::FetchCommitted, EventType::Info, _, Some(tp)) => {
                    if let Some(o) = e.offset {
                        move_to(&mut at, op.process, tp, o, false);
                    }
                }
                (Op::Seek | Op::Reset, EventType::Ok | EventType::Info, _, Some(tp)) => {
                    if let Some(offset) = e.offset {
                        let from = move_to(&mut at, op.process, tp, offset, certain);
                        g.seeks
                            .entry(tp)
                            .or_default()
                            .push(Seek { op, offset, from });
                    }
                }
                (Op::Poll, EventType::Ok | EventType::Info, _, _) => {
                    for r in e.records.iter().flatten() {
                        let tp = (r.topic.as_str(), r.partition);
                        move_to(&mut at, op.process, tp, r.offset.saturating_add(1), certain);
                        g.processed_by.push((tp, r.offset, op.process));
                    }
                }
                _ => {}
            }
        }
        g.processed_by
            .sort_unstable_by(|a, b| by_record(a).cmp(&by_record(b)));
        g.processed_by.dedup();
        for observations in g.committed.values_mut() {
            observations.sort_by_key(|c| (c.completed(), c.order));
        }
        g
    }

    fn is_member(&self, process: &str, group: &str) -> bool {
        self.member_of
            .get(process)
            .is_some_and(|groups| groups.contains(group))
    }

    /// Every commit of `group`'s offset of `tp` that may have taken effect.
    fn writes_of(&self, group: &'a str, tp: &Tp<'a>) -> &[Write<'a>] {
        self.writes
            .get(&(group, *tp))
            .map_or(&[][..], Vec::as_slice)
    }

    /// Seeks on `tp` by members of `group`.
    fn member_seeks<'s>(
        &'s self,
        group: &'s str,
        tp: &Tp<'s>,
    ) -> impl Iterator<Item = &'s Seek<'a>> + 's {
        self.seeks
            .get(tp)
            .into_iter()
            .flatten()
            .filter(move |s| self.is_member(s.op.process, group))
    }

    fn processed(&self, group: &str, tp: &Tp, offset: u64) -> bool {
        let first = self
            .processed_by
            .partition_point(|r| by_record(r) < (offset, tp.1, tp.0, ""));
        self.processed_by[first..]
            .iter()
            .take_while(|(t, o, _)| t == tp && *o == offset)
            .any(|(_, _, process)| self.is_member(process, group))
    }
}

/// The order of `processed_by`: offset first, then partition, topic and process. It keeps each
/// record's readers together as any order of its fields would, and settles most comparisons of
/// a sort of thousands of reads without comparing names.
fn by_record<'a>(&(tp, offset, process): &(Tp<'a>, u64, &'a str)) -> (u64, u32, &'a str, &'a str) {
    (offset, tp.1, tp.0, process)
}

/// Moves `process`'s position in `tp` to `to`, certainly (an `ok` operation) or possibly (an
/// `info` one: it keeps the lower of the two, as a lower start only widens what a later forward
/// jump excuses). Returns where it stood (0 if nowhere yet).
fn move_to<'a>(
    at: &mut BTreeMap<(&'a str, Tp<'a>), u64>,
    process: &'a str,
    tp: Tp<'a>,
    to: u64,
    certain: bool,
) -> u64 {
    let here = at.entry((process, tp)).or_insert(0);
    let from = *here;
    *here = if certain { to } else { from.min(to) };
    from
}

pub(super) fn check_groups(
    events: &[Event],
    ops: &[Operation],
    known: &BTreeMap<Tp, BTreeSet<u64>>,
    report: &mut impl FnMut(&'static str, String, String),
) {
    judge(&Groups::gather(events, ops), known, &JUDGES, report);
}

/// Offsets known to hold a record, per partition.
type Known<'a> = BTreeMap<Tp<'a>, BTreeSet<u64>>;

/// Where a check reports an anomaly: its name, subject and detail.
type Reporter<'r> = dyn FnMut(&'static str, String, String) + 'r;

/// The three group checks, as one set of functions: `judge` runs whichever set it is given,
/// so the tests can run these and the plain scans they replaced (`reference`) on one history.
struct Judges {
    regression: for<'a> fn(&Groups<'a>, &str, &Tp, &[Committed<'a>]) -> Option<String>,
    stale_read: for<'a> fn(&[Write<'a>], &[Committed<'a>]) -> Option<String>,
    at_least_once: for<'a> fn(&Groups<'a>, &str, &Tp, &[Committed<'a>], &Known, &mut Reporter),
}

const JUDGES: Judges = Judges {
    regression,
    stale_read,
    at_least_once: check_at_least_once,
};

fn judge(groups: &Groups, known: &Known, judges: &Judges, report: &mut Reporter) {
    for ((group, tp), observations) in &groups.committed {
        let subject = format!("{group} {}-{}", tp.0, tp.1);
        if let Some(detail) = (judges.regression)(groups, group, tp, observations) {
            report("offset-regression", subject.clone(), detail);
        }
        if let Some(detail) = (judges.stale_read)(groups.writes_of(group, tp), observations) {
            report("stale-offset", subject, detail);
        }
        (judges.at_least_once)(groups, group, tp, observations, known, report);
    }
}

/// The first observation B that shows the committed offset lower than an observation A before
/// it (B invoked after A completed), or gone. A lower offset is excused by a member's seek on
/// the partition to at most B's offset that may have taken effect between A and B: one that
/// completed at or after A's invoke and was invoked at or before B's completion (the widest
/// window in which the seek, and the lower commit it led to, can fall after A took effect and
/// before B did). A lower commit B is excused the same way by its own process's fetch-committed
/// returning at most B's offset (it resumed there; that fetch is judged as an observation
/// itself). A lower fetch B is excused by a commit of its offset that may have landed after A
/// (invoked at or before A's completion and not completed before A's invoke; an `info` commit
/// never completes) sent by a member before its own commit of A's value: a member's delayed
/// request, which the coordinator applies when it arrives. Another member's commit landing
/// there is not excused: two members commit one partition at once only if one of them is
/// stale, and the coordinator must fence it. Any lower B is also excused by the commit a
/// member's seek back led to (`Rewinds`): a seek is the member's own, and only its next commit
/// tells the coordinator, so when a member committed A's value, sought back, and sent its first
/// commit after that seek (of at most B's offset, by B's completion), which may have landed
/// after A, the group's offset went back after A even if the seek ended before A began. Again
/// only the member that wrote A's value excuses it. Nothing excuses a vanished offset: seeks do
/// not delete commits.
///
/// A seek or a resume excuses A exactly when A was invoked by the latest time one that fits B
/// ended (`excused_until`). Those times come from staircases (`Staircase`) that the seeks and
/// fetches invoked by B's completion join in order, and the search for an unexcused A starts
/// after every A that completed by then: a member that seeks back and forth thousands of times
/// costs about one step per observation, not the cube of their number. The A left after
/// that ask the delayed commits and the rewinds; a rewind is searched from B's offset down, so
/// one of B's own offset (the usual case) is found first, but an A no rewind excuses costs a
/// scan of those below B's offset.
fn regression(groups: &Groups, group: &str, tp: &Tp, observations: &[Committed]) -> Option<String> {
    // `observations` are in completion order, so the ones before B are a prefix; keep the
    // highest offset of each prefix: most B are not below it and are cleared without a scan.
    let mut highest: Vec<Option<u64>> = vec![None];
    for c in observations {
        let last = highest.last().copied().flatten();
        highest.push(last.max(c.offset));
    }
    // Seeks and fetches by invoke: B's completion only grows, so each joins the staircases once.
    let mut seeks: Vec<&Seek> = groups.member_seeks(group, tp).collect();
    seeks.sort_by_key(|s| s.op.invoked_ns);
    let mut fetches: Vec<(&Committed, u64)> = observations
        .iter()
        .filter(|r| r.op.f == Op::FetchCommitted)
        .filter_map(|r| r.offset.map(|o| (r, o)))
        .collect();
    fetches.sort_by_key(|(r, _)| r.op.invoked_ns);
    let (mut seeks_in, mut fetches_in) = (0, 0);
    let mut seek_ends = Staircase::default();
    let mut fetch_ends: BTreeMap<&str, Staircase> = BTreeMap::new();
    let delayed = DelayedWrites::new(groups.writes_of(group, tp));
    let rewinds = Rewinds::new(groups, group, tp);
    let in_time_order = observations
        .iter()
        .all(|a| a.op.invoked_ns <= a.completed());
    for b in observations {
        let before = observations.partition_point(|a| a.completed() < b.op.invoked_ns);
        let Some(max_before) = highest[before] else {
            continue;
        };
        let earlier = &observations[..before];
        match b.offset {
            None => {
                if let Some(a) = earlier.iter().rev().find(|a| a.offset.is_some()) {
                    return Some(format!("{b} after {a}: the committed offset vanished"));
                }
            }
            Some(lower) if lower < max_before => {
                for s in seeks[seeks_in..]
                    .iter()
                    .take_while(|s| s.op.invoked_ns <= b.completed())
                {
                    seek_ends.insert(s.offset, s.op.event.time_ns);
                    seeks_in += 1;
                }
                for &(r, offset) in fetches[fetches_in..]
                    .iter()
                    .take_while(|(r, _)| r.op.invoked_ns <= b.completed())
                {
                    let ends = fetch_ends.entry(r.op.process).or_default();
                    ends.insert(offset, r.completed());
                    fetches_in += 1;
                }
                let seek_back = seek_ends.highest_up_to(lower);
                // A lower commit by a member that fetched at most its offset: it resumed there.
                let resumed = (b.op.f == Op::Commit)
                    .then(|| fetch_ends.get(b.op.process))
                    .flatten()
                    .and_then(|ends| ends.highest_up_to(lower));
                let excused_until = seek_back.max(resumed);
                // Every A that completed by then was invoked by then too: all excused (unless
                // the history has a completion timed before its invoke: then all are searched).
                let from = match excused_until {
                    Some(t) if in_time_order => earlier.partition_point(|a| a.completed() <= t),
                    _ => 0,
                };
                let unexcused = earlier[from..].iter().find(|a| {
                    a.offset.is_some_and(|o| o > lower)
                        && excused_until.is_none_or(|t| a.op.invoked_ns > t)
                        && !(b.op.f == Op::FetchCommitted && delayed.excuse(a, lower))
                        && !rewinds.excuse(a, lower, b.completed())
                });
                if let Some(a) = unexcused {
                    return Some(format!("{b} after {a}, with no seek back in between"));
                }
            }
            Some(_) => {}
        }
    }
    None
}

/// Points (key, value) as they arrive, answering the highest value among those of keys up to a
/// bound. Only the steps no other point covers (a lower or equal key with a higher or equal
/// value) are kept, so values rise with keys and the answer is the last step at or below the
/// bound.
#[derive(Default)]
struct Staircase(BTreeMap<u64, u64>);

impl Staircase {
    fn insert(&mut self, key: u64, value: u64) {
        if self.highest_up_to(key).is_some_and(|v| v >= value) {
            return;
        }
        let covered: Vec<u64> = self
            .0
            .range(key..)
            .take_while(|&(_, &v)| v <= value)
            .map(|(&k, _)| k)
            .collect();
        for k in covered {
            self.0.remove(&k);
        }
        self.0.insert(key, value);
    }

    fn highest_up_to(&self, key: u64) -> Option<u64> {
        self.0.range(..=key).next_back().map(|(_, &v)| v)
    }
}

/// The commits a lower fetch may be explained by: of each offset, and the latest invoke of a
/// commit of each offset by each process.
struct DelayedWrites<'w, 'a> {
    of_offset: BTreeMap<u64, Vec<&'w Write<'a>>>,
    last_invoked: BTreeMap<(&'a str, u64), u64>,
}

impl<'w, 'a> DelayedWrites<'w, 'a> {
    fn new(writes: &'w [Write<'a>]) -> Self {
        let mut d = DelayedWrites {
            of_offset: BTreeMap::new(),
            last_invoked: BTreeMap::new(),
        };
        for w in writes {
            d.of_offset.entry(w.offset).or_default().push(w);
            let last = d.last_invoked.entry((w.op.process, w.offset)).or_insert(0);
            *last = (*last).max(w.op.invoked_ns);
        }
        d
    }

    /// A fetch of `lower` after A: a member that wrote A's value sent a commit of `lower`
    /// before that one, and it may have landed after A.
    fn excuse(&self, a: &Committed, lower: u64) -> bool {
        let Some(a_offset) = a.offset else {
            return false;
        };
        self.of_offset.get(&lower).into_iter().flatten().any(|w| {
            w.op.invoked_ns <= a.completed()
                && w.done_ns.is_none_or(|done| done >= a.op.invoked_ns)
                && self
                    .last_invoked
                    .get(&(w.op.process, a_offset))
                    .is_some_and(|&x| x >= w.op.invoked_ns)
        })
    }
}

/// The commits that carry a member's seek back to the coordinator: each is the member's first
/// commit sent after its latest seek (one that ended by the commit's invoke), of at least the
/// seek's offset. Kept by offset, with the seek's end.
struct Rewinds<'w, 'a> {
    of_offset: BTreeMap<u64, Vec<(&'w Write<'a>, u64)>>,
    /// The earliest invoke of a commit of each offset by each process.
    first_invoked: BTreeMap<(&'a str, u64), u64>,
}

impl<'w, 'a> Rewinds<'w, 'a> {
    fn new(groups: &'w Groups<'a>, group: &'a str, tp: &Tp<'a>) -> Self {
        let writes = groups.writes_of(group, tp);
        let mut seeks_of: BTreeMap<&str, Vec<&Seek>> = BTreeMap::new();
        for s in groups.member_seeks(group, tp) {
            seeks_of.entry(s.op.process).or_default().push(s);
        }
        for seeks in seeks_of.values_mut() {
            seeks.sort_by_key(|s| s.op.event.time_ns);
        }
        let mut invokes_of: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
        let mut first_invoked: BTreeMap<(&str, u64), u64> = BTreeMap::new();
        for w in writes {
            invokes_of
                .entry(w.op.process)
                .or_default()
                .push(w.op.invoked_ns);
            let first = first_invoked
                .entry((w.op.process, w.offset))
                .or_insert(u64::MAX);
            *first = (*first).min(w.op.invoked_ns);
        }
        for invokes in invokes_of.values_mut() {
            invokes.sort_unstable();
        }
        let mut of_offset: BTreeMap<u64, Vec<(&Write, u64)>> = BTreeMap::new();
        for w in writes {
            let Some(seeks) = seeks_of.get(w.op.process) else {
                continue;
            };
            let ended = seeks.partition_point(|s| s.op.event.time_ns <= w.op.invoked_ns);
            let Some(seek) = ended.checked_sub(1).map(|i| seeks[i]) else {
                continue;
            };
            // The member's commit sent last before this one, if any, came before the seek.
            let invokes = &invokes_of[w.op.process];
            let before = invokes.partition_point(|&t| t < w.op.invoked_ns);
            let first = before == 0 || invokes[before - 1] < seek.op.event.time_ns;
            if first && seek.offset <= w.offset {
                let ended = seek.op.event.time_ns;
                of_offset.entry(w.offset).or_default().push((w, ended));
            }
        }
        Rewinds {
            of_offset,
            first_invoked,
        }
    }

    /// B at `lower` after A: a member that committed A's value, then sought back, sent a
    /// commit of at most `lower` after the seek, by B's completion, and it may have landed
    /// after A.
    fn excuse(&self, a: &Committed, lower: u64, b_completed: u64) -> bool {
        let Some(a_offset) = a.offset else {
            return false;
        };
        // From `lower` down: the commit that explains B is most often of B's own offset.
        self.of_offset
            .range(..=lower)
            .rev()
            .flat_map(|(_, led)| led)
            .any(|&(c, seek_ended)| {
                c.op.invoked_ns <= b_completed
                    && c.done_ns.is_none_or(|done| done >= a.op.invoked_ns)
                    && self
                        .first_invoked
                        .get(&(c.op.process, a_offset))
                        .is_some_and(|&x| x <= seek_ended)
            })
    }
}

/// The first `ok` fetch-committed R returning an offset `v` that every commit of `v` which may
/// have taken effect before R (invoked before R completed) was overwritten before R began: a
/// commit of another offset, `ok`, invoked after that commit of `v` completed and completed
/// before R was invoked. Commits are the only writes of a group's offset, so the last write
/// before R cannot have been one of `v` (the committed offset is a register: reads see the
/// last write). An `info` commit of `v` may land at any time, so it is never overwritten. A
/// fetch of an offset no recorded commit wrote is not judged (a history may leave out a
/// writer: an operator's reset, say).
///
/// Every candidate is overwritten exactly when the latest of them to complete is: when some
/// commit of another offset that completed before R was invoked after it. So each R needs the
/// latest invoke among the commits completed before it, of an offset other than `v`, which
/// `Overwriters` keeps per completion-ordered prefix, and the latest completion among the
/// candidates, kept per offset by invoke: a logarithmic search each.
fn stale_read(writes: &[Write], observations: &[Committed]) -> Option<String> {
    let overwriters = Overwriters::new(writes);
    // Per offset, (invoke, completion) of its commits (an `info` one never completes), then by
    // invoke with the latest completion among each prefix: candidates are chosen by invoke.
    let mut candidates: BTreeMap<u64, Vec<(u64, u64)>> = BTreeMap::new();
    for w in writes {
        let done = w.done_ns.unwrap_or(u64::MAX);
        candidates
            .entry(w.offset)
            .or_default()
            .push((w.op.invoked_ns, done));
    }
    for c in candidates.values_mut() {
        c.sort_unstable();
        let mut latest = 0;
        for entry in c.iter_mut() {
            latest = latest.max(entry.1);
            entry.1 = latest;
        }
    }
    let fetches = observations
        .iter()
        .filter(|r| r.op.f == Op::FetchCommitted)
        .filter_map(|r| r.offset.map(|v| (r, v)));
    for (r, v) in fetches {
        let Some(of_v) = candidates.get(&v) else {
            continue;
        };
        let n = of_v.partition_point(|&(invoked, _)| invoked <= r.completed());
        let Some(&(_, last_done)) = n.checked_sub(1).map(|i| &of_v[i]) else {
            continue;
        };
        if overwriters
            .latest_invoke_before(r.op.invoked_ns, v)
            .is_none_or(|x| x <= last_done)
        {
            continue;
        }
        return Some(stale_detail(writes, r, v));
    }
    None
}

/// What `stale_read` reports for R: the candidate of `v` that completed last (the first of
/// them in completion order on a tie) and the first commit that overwrote it.
fn stale_detail(writes: &[Write], r: &Committed, v: u64) -> String {
    let mut latest: Option<&Write> = None;
    for w in writes
        .iter()
        .filter(|w| w.offset == v && w.op.invoked_ns <= r.completed())
    {
        if latest.is_none_or(|l| l.done_ns < w.done_ns) {
            latest = Some(w);
        }
    }
    let w = latest.expect("a stale read has a candidate");
    let done = w.done_ns.expect("an overwritten candidate completed");
    let x = writes
        .iter()
        .find(|x| {
            x.offset != v
                && x.op.invoked_ns > done
                && x.done_ns.is_some_and(|ok| ok < r.op.invoked_ns)
        })
        .expect("a stale read's candidate was overwritten");
    format!(
        "{r}, though every commit of {v} before it was overwritten before it began: \
         the last, by {} (ok {done} ns), by the commit of {} by {} (invoked {} ns, ok {} ns)",
        w.op.process,
        x.offset,
        x.op.process,
        x.op.invoked_ns,
        x.done_ns.unwrap_or_default()
    )
}

/// Over the `ok` commits in completion order, for each prefix: the one invoked last, and the
/// one invoked last among those of another offset than its. Between them they give the latest
/// invoke of a commit of any offset but `v`, whatever `v` is.
struct Overwriters {
    done: Vec<u64>,
    /// The two, for the prefix of each length.
    latest: Vec<Latest>,
}

/// The commit invoked last and the one invoked last among those of another offset, each as
/// (offset, invoke time).
#[derive(Clone, Copy, Default)]
struct Latest {
    first: Option<(u64, u64)>,
    other: Option<(u64, u64)>,
}

impl Overwriters {
    fn new(writes: &[Write]) -> Self {
        let mut ok: Vec<(u64, u64, u64)> = writes
            .iter()
            .filter_map(|w| w.done_ns.map(|d| (d, w.offset, w.op.invoked_ns)))
            .collect();
        ok.sort_unstable();
        let mut latest = Vec::with_capacity(ok.len() + 1);
        let Latest {
            mut first,
            mut other,
        } = Latest::default();
        latest.push(Latest { first, other });
        for &(_, offset, invoked) in &ok {
            match first {
                Some((o, i)) if o == offset => first = Some((o, i.max(invoked))),
                Some(f) if invoked > f.1 => {
                    other = first;
                    first = Some((offset, invoked));
                }
                Some(_) => {
                    if other.is_none_or(|(_, i)| invoked > i) {
                        other = Some((offset, invoked));
                    }
                }
                None => first = Some((offset, invoked)),
            }
            latest.push(Latest { first, other });
        }
        Overwriters {
            done: ok.into_iter().map(|(d, _, _)| d).collect(),
            latest,
        }
    }

    /// The latest invoke of an `ok` commit of an offset other than `v` that completed before
    /// `t`.
    fn latest_invoke_before(&self, t: u64, v: u64) -> Option<u64> {
        let Latest { first, other } = self.latest[self.done.partition_point(|&d| d < t)];
        match first {
            Some((o, _)) if o == v => other.map(|(_, i)| i),
            _ => first.map(|(_, i)| i),
        }
    }
}

/// Every known record below the group's final committed offset (the last observation, by
/// completion, that has one) was read by an `ok` poll of a member (or possibly, by an `info`
/// one), unless a member jumped over it with a forward seek or a reset to the log start (a
/// deliberate skip, or records retention deleted; a seek back to re-read excuses nothing).
fn check_at_least_once(
    groups: &Groups,
    group: &str,
    tp: &Tp,
    observations: &[Committed],
    known: &Known,
    report: &mut Reporter,
) {
    let Some((last, end)) = observations
        .iter()
        .rev()
        .find_map(|c| c.offset.map(|o| (c, o)))
    else {
        return;
    };
    // Only a forward jump over a record excuses it: a rewind (seek back to re-read) skips
    // nothing. The jumps, merged into disjoint spans in order, answer by a binary search.
    let mut jumps: Vec<(u64, u64)> = groups
        .member_seeks(group, tp)
        .filter(|s| s.offset > s.from)
        .map(|s| (s.from, s.offset))
        .collect();
    jumps.sort_unstable();
    let mut spans: Vec<(u64, u64)> = Vec::with_capacity(jumps.len());
    for (from, to) in jumps {
        match spans.last_mut() {
            Some(last) if from <= last.1 => last.1 = last.1.max(to),
            _ => spans.push((from, to)),
        }
    }
    let jumped = |offset: u64| {
        let i = spans.partition_point(|&(from, _)| from <= offset);
        i > 0 && offset < spans[i - 1].1
    };
    for &offset in known.get(tp).into_iter().flat_map(|k| k.range(..end)) {
        if jumped(offset) || groups.processed(group, tp, offset) {
            continue;
        }
        report(
            "at-least-once",
            format!("{group} {}-{}@{offset}", tp.0, tp.1),
            format!(
                "below final committed offset {end}, from the {last}, but no member of {group} \
                 processed it"
            ),
        );
    }
}

#[cfg(test)]
mod reference;
