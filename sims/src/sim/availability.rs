//! `unavailable`: the safety checks see what was acknowledged, not what never was, so a cluster
//! that stops acknowledging writes while it could (a leader that never drops a lagging
//! follower from the ISR, an ISR counted wrongly against `min.insync.replicas`) passes them
//! all. A schedule says where it promises availability (`Fault::Available`, placed by the
//! `lost-replica` nemesis after a replica is lost and the cluster has had time to settle);
//! here each such window must hold at least one acks=all send acknowledged.

use super::cluster::Observed;
use crate::faults::{Fault, FaultSchedule};
use crate::scenario::{Scenario, FIRST_PRODUCER};
use seedlog::node::ClientEvent;
use seedlog::protocol::Acks;

/// One line per promised window in which no acks=all send was acknowledged.
pub fn unavailable(schedule: &FaultSchedule, observed: &[Observed], sc: &Scenario) -> Vec<String> {
    let acks_all = |node: u32| {
        node.checked_sub(FIRST_PRODUCER)
            .and_then(|i| sc.producers.get(i as usize))
            .is_some_and(|p| p.acks == Acks::All)
    };
    // A window is only a promise if some producer could keep it.
    if !(0..sc.producers.len() as u32).any(|i| acks_all(FIRST_PRODUCER + i)) {
        return Vec::new();
    }
    let acked: Vec<u64> = observed
        .iter()
        .filter(|o| matches!(o.event, ClientEvent::SendOk { .. }) && acks_all(o.node))
        .map(|o| o.time_ms)
        .collect();
    schedule
        .events
        .iter()
        .filter_map(|e| match e.fault {
            Fault::Available { for_ms } => Some((e.at_ms, e.at_ms + for_ms)),
            _ => None,
        })
        .filter(|(from, to)| !acked.iter().any(|t| (*from..=*to).contains(t)))
        .map(|(from, to)| {
            format!(
                "unavailable: no acks=all send acknowledged from {from} ms to {to} ms, a window \
                 the schedule promised writes would go through"
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::TimedFault;
    use crate::scenario::ScenarioOptions;

    fn ok_at(node: u32, time_ms: u64) -> Observed {
        Observed {
            node,
            time_ms,
            event: ClientEvent::SendOk {
                id: 0,
                partition: 0,
                offset: 0,
            },
        }
    }

    /// A scenario whose first producer sends with acks=all and whose second with acks=1.
    fn scenario() -> Scenario {
        let mut sc = Scenario::from_seed(0, &ScenarioOptions::default());
        sc.producers.truncate(1);
        sc.producers.push(sc.producers[0].clone());
        sc.producers[0].acks = Acks::All;
        sc.producers[1].acks = Acks::Leader;
        sc
    }

    fn promised(windows: &[(u64, u64)]) -> FaultSchedule {
        FaultSchedule {
            events: windows
                .iter()
                .map(|&(at, for_ms)| TimedFault::at(at, Fault::Available { for_ms }))
                .chain([TimedFault::at(50, Fault::HealNetwork)])
                .collect(),
        }
    }

    /// A window with an acks=all acknowledgement in it (at either edge) holds; one with none,
    /// or only an acks=1 one, is reported; a schedule without windows promises nothing.
    #[test]
    fn a_window_without_an_acks_all_acknowledgement_is_unavailable() {
        let sc = scenario();
        let all = FIRST_PRODUCER;
        let one = FIRST_PRODUCER + 1;
        let schedule = promised(&[(100, 100), (1_000, 500), (3_000, 10)]);
        let observed = [ok_at(all, 200), ok_at(one, 1_200), ok_at(all, 3_000)];
        let problems = unavailable(&schedule, &observed, &sc);
        assert_eq!(
            problems,
            vec![
                "unavailable: no acks=all send acknowledged from 1000 ms to 1500 ms, a window \
                 the schedule promised writes would go through"
                    .to_string()
            ]
        );
        assert!(unavailable(&promised(&[]), &[], &sc).is_empty());
        assert!(unavailable(&promised(&[(100, 100)]), &[ok_at(all, 100)], &sc).is_empty());
        assert_eq!(
            unavailable(&promised(&[(100, 100)]), &[ok_at(all, 99)], &sc).len(),
            1
        );
    }

    /// Without an acks=all producer there is nobody to keep the promise: nothing is reported.
    #[test]
    fn a_run_without_acks_all_producers_is_not_held_to_windows() {
        let mut sc = scenario();
        sc.producers[0].acks = Acks::Leader;
        assert!(unavailable(&promised(&[(100, 100)]), &[], &sc).is_empty());
    }
}
