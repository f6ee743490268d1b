//! `refused-after-heal`: once the faults have healed and the cluster has converged, every
//! producer must still get its writes through. The safety checks only judge what was
//! acknowledged, so a producer that a fault left unable to write (its sequences gapped and no
//! new epoch started, a fencing it never recovers from) passes them all: its later sends fail,
//! and a failed send is an allowed outcome. Here each producer hands over more records in two
//! rounds after convergence. The first round may still meet what the faults left behind (a
//! leader that lost the producer's state refuses its next batch, and the producer starts a new
//! epoch); every record of the second round must be acknowledged.
//!
//! One refusal is excused: an acks=0/1 producer's acknowledged records can be lost whenever
//! the leadership moves (a preferred-leader election after convergence does it), and the
//! leader that follows then rightly refuses its next batch as out of sequence. So a producer
//! that is not acks=all, one of whose records acknowledged during the probe the final reader
//! never read, is not judged.

use super::cluster::{Cluster, Observed};
use crate::scenario::{Scenario, FINAL_READER, FIRST_PRODUCER};
use seedlog::node::{AnyNode, ClientEvent};
use seedlog::protocol::Acks;
use seedlog::runtime::driver::AppCall;
use std::collections::{BTreeMap, BTreeSet};

/// Probe rounds after convergence; only the last is judged.
pub const ROUNDS: usize = 2;

/// How long each round may take to converge, in simulated ms: a handful of paced records, the
/// readers and the group catching up.
pub const WAIT_MS: u64 = 10_000;

/// Records a producer keeps for the probe beyond its send phase: a round is one record per key,
/// so every partition the producer writes to gets one.
pub fn records(keys: u32) -> usize {
    ROUNDS * keys as usize
}

/// Has every producer hand over one round of probe records.
pub fn hand_over(cluster: &Cluster, sc: &Scenario) {
    for (i, plan) in sc.producers.iter().enumerate() {
        let per_round = plan.keys as usize;
        let call = AppCall {
            what: "probe",
            call: Box::new(move |n, cx| {
                if let AnyNode::Producer(p) = n {
                    p.resume(cx, per_round);
                }
            }),
        };
        // A producer that takes no calls now is not running: convergence waits for none
        // such, so this does not happen after a converged run.
        cluster.app_call(FIRST_PRODUCER + i as u32, call);
    }
}

/// When the probe rounds began, in simulated ms.
#[derive(Clone, Copy, Debug)]
pub struct Rounds {
    pub first_ms: u64,
    pub last_ms: u64,
}

/// One line per record a producer (`acks`: each producer's, by index) handed over in the last
/// round that was not acknowledged, naming how it ended, unless the producer's own records
/// were lost during the probe (see the module's note).
pub fn refused(observed: &[Observed], rounds: Rounds, acks: &[Acks]) -> Vec<String> {
    let acks_of = |node: u32| {
        node.checked_sub(FIRST_PRODUCER)
            .and_then(|i| acks.get(i as usize))
            .copied()
    };
    let read: BTreeSet<&[u8]> = observed
        .iter()
        .filter(|o| o.node == FINAL_READER)
        .flat_map(|o| match &o.event {
            ClientEvent::Polled { records, .. } => records.as_slice(),
            _ => &[],
        })
        .filter_map(|e| e.record.value.as_deref())
        .collect();
    let mut values: BTreeMap<(u32, u64), &[u8]> = BTreeMap::new();
    // Producers with an acks=0/1 record acknowledged during the probe and since lost.
    let mut lost_in_probe: BTreeSet<u32> = BTreeSet::new();
    // (node, id) of the last round → how it ended so far (`None`: no answer).
    let mut probes: BTreeMap<(u32, u64), Option<String>> = BTreeMap::new();
    for o in observed.iter().filter(|o| acks_of(o.node).is_some()) {
        match &o.event {
            ClientEvent::SendInvoke { id, value, .. } => {
                values.insert((o.node, *id), value);
                if o.time_ms >= rounds.last_ms {
                    probes.insert((o.node, *id), None);
                }
            }
            ClientEvent::SendOk { id, .. } => {
                probes.remove(&(o.node, *id));
                let lost = values
                    .get(&(o.node, *id))
                    .is_some_and(|v| !read.contains(v));
                if lost && o.time_ms >= rounds.first_ms && acks_of(o.node) != Some(Acks::All) {
                    lost_in_probe.insert(o.node);
                }
            }
            ClientEvent::SendFail { id, reason } | ClientEvent::SendInfo { id, reason } => {
                if let Some(outcome) = probes.get_mut(&(o.node, *id)) {
                    *outcome = Some(reason.clone());
                }
            }
            _ => {}
        }
    }
    probes
        .into_iter()
        .filter(|((node, _), _)| !lost_in_probe.contains(node))
        .map(|((node, id), outcome)| {
            let value = values
                .get(&(node, id))
                .map_or_else(String::new, |v| String::from_utf8_lossy(v).into_owned());
            let outcome = outcome.map_or("no answer".to_string(), |r| format!("failed: {r}"));
            format!(
                "refused-after-heal: {}'s record {value}, handed over at or after {} ms in the \
                 last probe round (the cluster had converged after the heal and once more \
                 after a first round), was not acknowledged ({outcome})",
                Scenario::node_name(node),
                rounds.last_ms
            )
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use seedlog::protocol::{LogEntry, Record, TopicPartition};

    pub(crate) fn at(node: u32, time_ms: u64, event: ClientEvent) -> Observed {
        Observed {
            node,
            time_ms,
            event,
        }
    }

    fn invoke(id: u64, value: &str) -> ClientEvent {
        ClientEvent::SendInvoke {
            id,
            topic: "events".into(),
            key: None,
            value: value.to_string().into(),
        }
    }

    pub(crate) fn ok(id: u64) -> ClientEvent {
        ClientEvent::SendOk {
            id,
            partition: 0,
            offset: id,
        }
    }

    fn fail(id: u64) -> ClientEvent {
        ClientEvent::SendFail {
            id,
            reason: "out of order sequence".into(),
        }
    }

    fn read_by_final_reader(time_ms: u64, value: &str) -> Observed {
        let entry = LogEntry {
            offset: 0,
            epoch: 0,
            record: Record::keyed("k", value.to_string()),
            producer: None,
        };
        at(
            FINAL_READER,
            time_ms,
            ClientEvent::Polled {
                tp: TopicPartition::new("events", 0),
                records: vec![entry],
                group: None,
            },
        )
    }

    const ROUNDS: Rounds = Rounds {
        first_ms: 50,
        last_ms: 100,
    };

    /// Refusals before the last round are excused; in it, a failed record and one never
    /// answered are named, and an acknowledged one is not.
    #[test]
    fn only_unacknowledged_records_of_the_last_round_are_named() {
        let p0 = FIRST_PRODUCER;
        let history = [
            at(p0, 10, invoke(0, "p0-0")),
            at(p0, 20, fail(0)),
            at(p0, 100, invoke(1, "p0-1")),
            at(p0, 110, invoke(2, "p0-2")),
            at(p0 + 1, 120, invoke(0, "p1-0")),
            at(p0, 130, ok(1)),
            at(p0, 140, fail(2)),
            read_by_final_reader(150, "p0-1"),
        ];
        let acks = [Acks::All, Acks::All];
        let found = refused(&history, ROUNDS, &acks);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].starts_with("refused-after-heal: p0's record p0-2"));
        assert!(found[0].ends_with("(failed: out of order sequence)"));
        assert!(found[1].starts_with("refused-after-heal: p1's record p1-0"));
        assert!(found[1].ends_with("(no answer)"));
        let answered = [at(p0 + 1, 150, ok(0))];
        let all: Vec<Observed> = history.iter().cloned().chain(answered).collect();
        assert_eq!(refused(&all, ROUNDS, &acks).len(), 1);
        let later = Rounds {
            first_ms: 50,
            last_ms: 150,
        };
        assert!(refused(&all, later, &acks).is_empty());
        // A producer that is not judged (none at this index) is not named.
        assert_eq!(refused(&history, ROUNDS, &acks[..1]).len(), 1);
    }

    /// An acks=1 producer is excused when one of its records acknowledged during the probe
    /// was lost (never read by the final reader), and only then; an acks=all producer never.
    #[test]
    fn a_refusal_after_a_lost_acks_1_record_is_excused() {
        let p0 = FIRST_PRODUCER;
        let history = [
            at(p0, 60, invoke(0, "p0-0")),
            at(p0, 70, ok(0)),
            at(p0, 100, invoke(1, "p0-1")),
            at(p0, 140, fail(1)),
        ];
        // p0-0 was never read: lost after it was acknowledged in the first round.
        assert!(refused(&history, ROUNDS, &[Acks::Leader]).is_empty());
        assert_eq!(refused(&history, ROUNDS, &[Acks::All]).len(), 1);
        // Lost before the probe began: not an excuse.
        let before = Rounds {
            first_ms: 80,
            last_ms: 100,
        };
        assert_eq!(refused(&history, before, &[Acks::Leader]).len(), 1);
        // Read after all: not lost, not an excuse.
        let read: Vec<Observed> = history
            .iter()
            .cloned()
            .chain([read_by_final_reader(150, "p0-0")])
            .collect();
        assert_eq!(refused(&read, ROUNDS, &[Acks::Leader]).len(), 1);
    }
}
