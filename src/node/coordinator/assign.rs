//! The two classic assignors, as Kafka's `RangeAssignor` and `RoundRobinAssignor` compute them.
//! Pure functions of sorted inputs, so every coordinator computes the same assignment.

use crate::protocol::{Assignor, MemberId, TopicPartition};
use std::collections::BTreeMap;

/// Assigns the partitions of `topics` (with `partitions[topic]` partitions each) to `members`,
/// each subscribed to the listed topics. Every member gets an entry, possibly empty.
pub fn assign(
    assignor: Assignor,
    members: &BTreeMap<MemberId, Vec<String>>,
    partitions: &BTreeMap<String, u32>,
) -> BTreeMap<MemberId, Vec<TopicPartition>> {
    let mut out: BTreeMap<MemberId, Vec<TopicPartition>> =
        members.keys().map(|m| (m.clone(), Vec::new())).collect();
    match assignor {
        Assignor::Range => {
            for (topic, &count) in partitions {
                let subscribed: Vec<&MemberId> = members
                    .iter()
                    .filter(|(_, t)| t.contains(topic))
                    .map(|(m, _)| m)
                    .collect();
                if subscribed.is_empty() {
                    continue;
                }
                let n = subscribed.len() as u32;
                let (per, extra) = (count / n, count % n);
                let mut next = 0;
                for (i, m) in subscribed.into_iter().enumerate() {
                    let take = per + u32::from((i as u32) < extra);
                    let list = out.get_mut(m).expect("every member has an entry");
                    list.extend((next..next + take).map(|p| TopicPartition::new(topic.clone(), p)));
                    next += take;
                }
            }
        }
        Assignor::RoundRobin => {
            let all = partitions
                .iter()
                .flat_map(|(t, &c)| (0..c).map(move |p| TopicPartition::new(t.clone(), p)));
            let names: Vec<&MemberId> = members.keys().collect();
            let mut turn = 0;
            for tp in all {
                // The next member in turn that subscribes to the topic.
                for _ in 0..names.len() {
                    let m = names[turn % names.len()];
                    turn += 1;
                    if members[m].contains(&tp.topic) {
                        out.get_mut(m).expect("every member has an entry").push(tp);
                        break;
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(names: &[&str], topics: &[&str]) -> BTreeMap<MemberId, Vec<String>> {
        names
            .iter()
            .map(|n| {
                (
                    n.to_string(),
                    topics.iter().map(|t| t.to_string()).collect(),
                )
            })
            .collect()
    }

    fn shown(a: &BTreeMap<MemberId, Vec<TopicPartition>>) -> Vec<String> {
        a.iter()
            .map(|(m, tps)| {
                let tps: Vec<String> = tps.iter().map(|tp| tp.to_string()).collect();
                format!("{m}: {}", tps.join(" "))
            })
            .collect()
    }

    #[test]
    fn range_gives_contiguous_ranges_first_members_one_more() {
        let parts = BTreeMap::from([("t".to_string(), 5), ("u".to_string(), 2)]);
        let a = assign(Assignor::Range, &members(&["a", "b"], &["t", "u"]), &parts);
        assert_eq!(shown(&a), ["a: t-0 t-1 t-2 u-0", "b: t-3 t-4 u-1"]);
    }

    #[test]
    fn round_robin_deals_all_partitions_in_turn() {
        let parts = BTreeMap::from([("t".to_string(), 5), ("u".to_string(), 2)]);
        let a = assign(
            Assignor::RoundRobin,
            &members(&["a", "b"], &["t", "u"]),
            &parts,
        );
        assert_eq!(shown(&a), ["a: t-0 t-2 t-4 u-1", "b: t-1 t-3 u-0"]);
    }

    #[test]
    fn more_members_than_partitions_leaves_some_idle() {
        let parts = BTreeMap::from([("t".to_string(), 1)]);
        for assignor in [Assignor::Range, Assignor::RoundRobin] {
            let a = assign(assignor, &members(&["a", "b"], &["t"]), &parts);
            assert_eq!(shown(&a), ["a: t-0", "b: "]);
        }
    }
}
