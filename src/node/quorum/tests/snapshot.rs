//! Snapshots: a voter drops the entries its snapshot covers, a follower the leader can no longer
//! serve from its log installs the snapshot (also when its own log parts from the leader's
//! inside it), a restart starts from the snapshot, and a snapshot never covers what is not
//! committed.

use super::*;
use crate::protocol::QuorumSnapshot;

/// Voter `id` snapshots what it has applied (a stand-in state: one record per snapshot).
fn snapshot_applied(net: &mut Net, id: NodeId) -> Offset {
    let end = net.nodes[id as usize].applied();
    net.step(id, |n, cx| n.take_snapshot(cx, end, vec![record(99)]));
    end
}

#[test]
fn a_snapshot_drops_the_entries_it_covers_and_a_restart_starts_from_it() {
    let mut net = Net::new(&[]);
    net.elect(0);
    net.submit(0, 5);
    net.submit(0, 6);
    assert_eq!(snapshot_applied(&mut net, 0), 3);
    let zero = &net.nodes[0];
    assert_eq!(zero.log().start_offset(), 3);
    assert_eq!(zero.log().end_offset(), 3);
    assert!(zero.log().entries().is_empty());
    assert_eq!(zero.log().last_epoch(), 1, "the snapshot's last epoch");
    // The disk holds the snapshot and nothing below it; a restart starts there, committed.
    let image = net.images[0].clone();
    assert_eq!(image.snapshot.as_ref().map(|s| s.end_offset), Some(3));
    assert!(image.log.is_empty());
    let again = QuorumNode::recover(config(0, &[]), image);
    assert_eq!(
        (
            again.high_watermark(),
            again.applied(),
            again.log().end_offset()
        ),
        (3, 3, 3)
    );
    again.check_invariants().expect("a recovered voter holds");
    // The leader goes on appending after its snapshot.
    net.submit(0, 7);
    assert_eq!(net.nodes[0].log().end_offset(), 4);
    assert_eq!(
        net.nodes[0].log().entry(3).map(|e| &e.record),
        Some(&record(7))
    );
    assert_eq!(net.images[0].log.len(), 1);
}

#[test]
fn a_follower_behind_the_leaders_snapshot_installs_it_and_catches_up() {
    let mut net = Net::new(&[]);
    net.elect(0);
    // Voter 2 hears nothing while three records commit with voter 1; the leader snapshots them.
    net.deaf = [2].into_iter().collect();
    for b in 5..8 {
        net.submit(0, b);
    }
    assert_eq!(snapshot_applied(&mut net, 0), 4);
    net.submit(0, 8);
    net.deaf.clear();
    // Voter 2's fetch (from offset 1) reaches below the leader's log start: it gets the
    // snapshot, replaces its log with it, then fetches the entry after it.
    let before = net.applied[2].len();
    net.fire(2, Timer::QuorumFetchTimeout);
    net.run();
    let two = &net.nodes[2];
    assert_eq!(two.log().start_offset(), 4);
    assert_eq!(two.log().end_offset(), 5);
    assert_eq!(two.log().entries(), net.nodes[0].log().entries());
    assert_eq!((two.high_watermark(), two.applied()), (5, 5));
    // It applied only the entry after the snapshot: the snapshot stands for the rest.
    let applied: Vec<Offset> = net.applied[2][before..].iter().map(|(o, _)| *o).collect();
    assert_eq!(applied, vec![4]);
    assert_eq!(
        net.images[2]
            .snapshot
            .as_ref()
            .map(|s| (s.end_offset, s.last_epoch)),
        Some((4, 1))
    );
}

#[test]
fn a_follower_whose_log_parts_inside_the_snapshot_replaces_its_whole_log() {
    // Voter 1 leads epoch 2 with 2's vote; voter 0 holds two uncommitted epoch-1 entries at
    // offsets 1 and 2. Voter 1 commits two records of its own with 2 and snapshots them: its
    // snapshot (last epoch 2) covers offsets 1 and 2.
    let mut net = deposed_leader_with_unfetched_entries();
    net.submit(1, 7);
    net.submit(1, 8);
    assert_eq!(snapshot_applied(&mut net, 1), 4);
    // Voter 0 fetches with last epoch 1 at offset 3: where epoch 1 ends in the leader's log is
    // inside its snapshot, so it gets the snapshot and drops its uncommitted entries.
    tell_zero_of_epoch_2(&mut net);
    let zero = &net.nodes[0];
    assert_eq!(zero.log().start_offset(), 4);
    assert!(zero.log().entries().is_empty());
    assert_eq!(zero.log().last_epoch(), 2);
    assert_eq!(zero.high_watermark(), 4);
    assert!(net.images[0].log.is_empty());
}

#[test]
fn the_log_answers_epoch_ends_past_its_snapshot_and_none_inside_it() {
    let entry = |epoch| QuorumEntry {
        epoch,
        record: record(5),
    };
    let snapshot = QuorumSnapshot {
        end_offset: 10,
        last_epoch: 3,
        records: vec![],
    };
    let log = QuorumLog::with_snapshot(Some(snapshot), vec![entry(3), entry(5)]);
    assert_eq!((log.start_offset(), log.end_offset()), (10, 12));
    assert_eq!(log.end_for_epoch(5), Some((5, 12)));
    assert_eq!(log.end_for_epoch(4), Some((3, 11)));
    assert_eq!(log.end_for_epoch(2), None, "inside the snapshot");
    assert_eq!(log.entry(9), None);
    assert_eq!(log.entry(11), Some(&entry(5)));
    let bare = QuorumLog::with_snapshot(
        Some(QuorumSnapshot {
            end_offset: 10,
            last_epoch: 3,
            records: vec![],
        }),
        vec![],
    );
    assert_eq!(bare.end_for_epoch(3), Some((3, 10)));
    assert_eq!(bare.last_epoch(), 3);
}

#[test]
fn a_snapshot_past_what_is_committed_breaks_the_voters_invariant() {
    // Voter 0 leads with an entry voter 1 has not fetched yet (2 is deaf, 1's fetches held by
    // not running the network): it is applied only up to its leader change.
    for (bugs, holds) in [(vec![], true), (vec![Bug::SnapshotPastCommit], false)] {
        let mut net = Net::new(&bugs);
        net.elect(0);
        net.deaf = [1, 2].into_iter().collect();
        net.submit(0, 5);
        let zero = &mut net.nodes[0];
        assert_eq!((zero.applied(), zero.log().end_offset()), (1, 2));
        let mut cx = Context::new(0);
        zero.take_snapshot(&mut cx, 1, vec![record(99)]);
        let verdict = zero.check_invariants();
        assert_eq!(verdict.is_ok(), holds, "bugs {bugs:?}: {verdict:?}");
        if !holds {
            let e = verdict.unwrap_err();
            assert!(e.to_string().contains("quorum-snapshot-committed"), "{e}");
        }
    }
}

/// A late snapshot answer (to a fetch sent before the entries it now holds arrived) whose last
/// entry this voter's log holds in the same epoch is not installed: the entries after it stay,
/// as its leader may count them already. One that disagrees is installed. (Seed 74170278: the
/// voter dropped an entry its leader had counted, `quorum-progress-held-by-follower`.) The
/// answers here name the voter's log end, as an answer to a fetch sent again after a timeout
/// does; one naming another end is dropped before (below).
#[test]
fn a_late_snapshot_the_log_already_agrees_with_keeps_the_entries_after_it() {
    for (last_epoch, end) in [(1, 9), (2, 8)] {
        let late = QuorumFetchResult::Snapshot(QuorumSnapshot {
            end_offset: 8,
            last_epoch,
            records: Vec::new(),
        });
        let log = late_answer(&[1; 9], (9, 1), late);
        assert_eq!(log, end, "snapshot of last epoch {last_epoch}");
    }
}

/// A follower gets the answer to an older fetch, one that named a log end it has since moved
/// from (a fetch left on a connection it replaced, overtaken by the newer one's): here a
/// `Diverging` that would cut the entries it appended since, which its leader may have counted.
/// The answer names the fetch it answers, so the follower drops it; the same answer to a fetch
/// naming its log as it is still cuts.
#[test]
fn a_late_answer_to_an_older_fetch_is_dropped() {
    let cut = || QuorumFetchResult::Diverging {
        epoch: 1,
        end_offset: 3,
    };
    let caught_up = [1, 1, 1, 2, 2, 2];
    // Asked at offset 4 in epoch 1 (a tail of epoch 1 it has since replaced), answered late.
    assert_eq!(late_answer(&caught_up, (4, 1), cut()), 6);
    assert_eq!(late_answer(&[1; 6], (6, 1), cut()), 3);
    // Entries too: an answer from offset 6 to a fetch at 6 in epoch 1 appends nothing to a log
    // whose offset 6 follows an entry of epoch 2.
    let entries = QuorumFetchResult::Entries {
        start: 6,
        entries: vec![QuorumEntry {
            epoch: 1,
            record: record(9),
        }],
        high_watermark: None,
    };
    assert_eq!(late_answer(&caught_up, (6, 1), entries), 6);
}

/// Voter 2, following voter 0 in epoch 2 with a log of entries of `epochs`, receives `late`
/// from its leader, answering a fetch at `(offset, last epoch)`; returns its log end after.
fn late_answer(
    epochs: &[QuorumEpoch],
    asked: (Offset, QuorumEpoch),
    late: QuorumFetchResult,
) -> Offset {
    let image = QuorumImage {
        epoch: 2,
        voted_for: Some(0),
        log: epochs
            .iter()
            .zip(0..)
            .map(|(&epoch, b)| QuorumEntry {
                epoch,
                record: record(b),
            })
            .collect(),
        snapshot: None,
    };
    let mut q = QuorumNode::recover(config(2, &[]), image);
    let late = QuorumFetchResponse {
        epoch: 2,
        leader: Some(0),
        fetch_offset: asked.0,
        last_fetched_epoch: asked.1,
        result: late,
    };
    q.on_message(&mut Context::new(0), 0, Message::QuorumFetchResponse(late));
    q.log().end_offset()
}
