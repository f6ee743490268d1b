//! `slow`: once the cluster has healed and converged, an acks=all write takes a few network
//! hops and disk syncs, not the long-poll wait of a fetch. A broker that stops waking the
//! requests it parked — a follower's fetch left waiting for its timeout though the records it
//! asks for arrived, a produce acknowledged only when the next fetch happens to come — loses
//! nothing and refuses nothing, so no safety check and no liveness deadline sees it: every
//! record still arrives, hundreds of milliseconds late. Here the last probe round (the cluster
//! converged twice, no fault since the heal) is timed: each acks=all send must be acknowledged
//! within a bound made of the scenario's own delays. A run in which a partition leader was
//! elected during the probes (a preferred-leader election, by design) is not timed.

use super::cluster::Observed;
use crate::scenario::{Scenario, FIRST_PRODUCER};
use seedlog::node::{ClientEvent, Situation};
use seedlog::protocol::Acks;
use std::collections::BTreeMap;

/// The network's delivery time after the heal is at most this: the heal puts back madsim's
/// default network, so its default send latency is read, not restated.
pub fn network_max_ms() -> u64 {
    madsim::net::Config::default().send_latency.end.as_millis() as u64
}

/// Network hops of an acks=all write: the produce request, the follower's fetch answer, the
/// follower's next fetch (which moves the high watermark), the produce answer — doubled for a
/// batch that waits for the one before it (a producer keeps several in flight, one partition's
/// in order).
const HOPS: u64 = 8;

/// Disk syncs on the way: the leader's and a follower's, tripled — a follower syncs before it
/// fetches again, so a record that lands just after a fetch waits for the sync of the records
/// before it, and with several producers on one partition the syncs queue.
const SYNCS: u64 = 6;

/// Scheduling slack: a timer or a request of the other clients' traffic that goes first.
const SLACK_MS: u64 = 100;

/// How long an acks=all send of the last probe round may take in a healthy cluster: a batch's
/// linger, then its hops and syncs, with slack. On the disks that are timed, under the default
/// fetch long-poll wait (500 ms), which is what a request never woken waits.
pub fn bound_ms(linger_ms: Option<u64>, sync_max_ms: u64) -> u64 {
    linger_ms.unwrap_or(0) + HOPS * network_max_ms() + SYNCS * sync_max_ms + SLACK_MS
}

/// The problem line for acks=all sends invoked at or after `since_ms` (the last probe round)
/// and acknowledged later than their producer's bound (`bounds[i]` for producer `i`; `None`:
/// not an acks=all producer, not judged). Sends never acknowledged are `refused-after-heal`'s.
pub fn slow(observed: &[Observed], since_ms: u64, bounds: &[Option<u64>]) -> Option<String> {
    let bound_of = |node: u32| {
        node.checked_sub(FIRST_PRODUCER)
            .and_then(|i| bounds.get(i as usize).copied().flatten())
    };
    let mut invoked: BTreeMap<(u32, u64), u64> = BTreeMap::new();
    // The slowest late send of each producer: (latency, value's id, bound).
    let mut slowest: BTreeMap<u32, (u64, u64, u64)> = BTreeMap::new();
    for o in observed {
        let Some(bound) = bound_of(o.node) else {
            continue;
        };
        match &o.event {
            ClientEvent::SendInvoke { id, .. } if o.time_ms >= since_ms => {
                invoked.insert((o.node, *id), o.time_ms);
            }
            ClientEvent::SendOk { id, .. } => {
                let Some(at) = invoked.remove(&(o.node, *id)) else {
                    continue;
                };
                let took = o.time_ms - at;
                if took > bound && slowest.get(&o.node).is_none_or(|s| took > s.0) {
                    slowest.insert(o.node, (took, *id, bound));
                }
            }
            _ => {}
        }
    }
    (!slowest.is_empty()).then(|| {
        let named: Vec<String> = slowest
            .iter()
            .map(|(node, (took, id, bound))| {
                format!(
                    "{}'s send {id} took {took} ms (bound {bound} ms)",
                    Scenario::node_name(*node)
                )
            })
            .collect();
        format!(
            "slow: in the last probe round (the cluster healed and converged), acks=all sends \
             were acknowledged later than a healthy cluster needs: {}",
            named.join("; ")
        )
    })
}

/// How many partition leader elections the run has seen, from its situation counts: a run with
/// one during the probe rounds is not timed (the producers meet a refusal, back off and ask for
/// metadata — by design).
pub fn elections(counts: &BTreeMap<Situation, u64>) -> u64 {
    [
        Situation::CleanElection,
        Situation::UncleanElection,
        Situation::PreferredElection,
    ]
    .iter()
    .map(|s| counts.get(s).copied().unwrap_or(0))
    .sum()
}

/// The slowest disk a timed scenario may have (its slowest sync, in ms). On the slowest
/// simulated disks (syncs up to 51 ms) the syncs of a busy partition queue past the fetch
/// long-poll wait itself, so a bound there would tell nothing from a request never woken.
pub const TIMED_DISK_MAX_MS: u64 = 25;

/// Each producer's bound in `sc`, `None` for a producer that is not acks=all. A scenario that
/// throttles replication (`replica_fetch_records`: a few records per fetch answer) queues its
/// writes by design, and is not timed; nor is one with the slowest disks.
pub fn bounds(sc: &Scenario) -> Vec<Option<u64>> {
    sc.producers
        .iter()
        .map(|p| {
            let timed = p.acks == Acks::All
                && sc.replica_fetch_records.is_none()
                && sc.sync_latency_ms.1 <= TIMED_DISK_MAX_MS;
            timed.then(|| bound_ms(p.linger_ms, sc.sync_latency_ms.1))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::probe::tests::{at, ok};

    fn invoke(id: u64) -> ClientEvent {
        ClientEvent::SendInvoke {
            id,
            topic: "events".into(),
            key: None,
            value: format!("v{id}").into(),
        }
    }

    /// A send of the last round acknowledged past its producer's bound is named with its
    /// latency; one within the bound, one invoked before the round, and one never acknowledged
    /// (`refused-after-heal`'s) are not.
    #[test]
    fn only_a_late_acknowledgement_in_the_last_round_is_slow() {
        let p0 = FIRST_PRODUCER;
        let history = [
            at(p0, 10, invoke(0)),
            at(p0, 900, ok(0)), // before the round: the faults' doing
            at(p0, 1_000, invoke(1)),
            at(p0, 1_040, ok(1)),
            at(p0, 1_050, invoke(2)),
            at(p0, 1_050, invoke(3)),
            at(p0, 1_550, ok(2)),
        ];
        let line = slow(&history, 1_000, &[Some(200)]).expect("send 2 is slow");
        assert!(line.starts_with("slow:"), "{line}");
        assert!(
            line.contains("p0's send 2 took 500 ms (bound 200 ms)"),
            "{line}"
        );
        assert!(
            !line.contains("send 0") && !line.contains("send 3"),
            "{line}"
        );
        // The same history within a wider bound, or from a producer not judged.
        assert_eq!(slow(&history, 1_000, &[Some(500)]), None);
        assert_eq!(slow(&history, 1_000, &[None]), None);
    }

    /// Each producer is named once, with its slowest send.
    #[test]
    fn each_producer_is_named_with_its_slowest_send() {
        let (p0, p1) = (FIRST_PRODUCER, FIRST_PRODUCER + 1);
        let history = [
            at(p0, 0, invoke(0)),
            at(p0, 0, invoke(1)),
            at(p1, 0, invoke(0)),
            at(p0, 300, ok(0)),
            at(p0, 700, ok(1)),
            at(p1, 400, ok(0)),
        ];
        let line = slow(&history, 0, &[Some(100), Some(100)]).unwrap();
        assert!(line.contains("p0's send 1 took 700 ms"), "{line}");
        assert!(!line.contains("send 0 took 300"), "{line}");
        assert!(line.contains("p1's send 0 took 400 ms"), "{line}");
    }

    /// The bound grows with the batch's linger and the disk's slowest sync, and on the disks
    /// that are timed stays under the fetch long-poll wait that a request never woken waits out.
    #[test]
    fn the_bound_is_made_of_the_scenarios_delays() {
        assert_eq!(bound_ms(None, 0), HOPS * network_max_ms() + SLACK_MS);
        assert_eq!(bound_ms(Some(40), 0), bound_ms(None, 0) + 40);
        assert_eq!(bound_ms(None, 52), bound_ms(None, 0) + SYNCS * 52);
        // The disks that are timed: under the wait, whatever the linger.
        assert!(bound_ms(Some(40), TIMED_DISK_MAX_MS) < 500);
    }
}
