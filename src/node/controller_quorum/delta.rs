//! Metadata changes as log records: the difference between two controller states, and its
//! application. The active controller decides as it always did, on its whole state; what it
//! would have written to its own disk becomes the difference from the state it last proposed,
//! and every voter rebuilds the state by applying the committed differences in log order.

use crate::node::ControllerImage;
use crate::protocol::{MetadataDelta, MetadataRecord};

/// What turns `old` into `new`: every registration and partition state that differs, whole.
/// Registrations and partitions are only ever added or replaced, never removed (the controller
/// keeps a fenced broker's registration and every partition of its topics), which the
/// invariant below relies on.
pub fn diff(old: &ControllerImage, new: &ControllerImage) -> MetadataDelta {
    let brokers = new
        .metadata
        .brokers
        .iter()
        .filter(|r| old.metadata.registration(r.broker) != Some(*r))
        .cloned()
        .collect();
    let partitions = new
        .metadata
        .partitions
        .iter()
        .filter(|p| old.metadata.partition(&p.tp) != Some(*p))
        .cloned()
        .collect();
    MetadataDelta {
        version: new.metadata.version,
        brokers,
        partitions,
        next_broker_epoch: new.next_broker_epoch,
        next_producer_id: new.next_producer_id,
    }
}

/// Applies a committed record to the state every voter keeps.
pub fn apply(image: &mut ControllerImage, record: &MetadataRecord) {
    match record {
        MetadataRecord::LeaderChange { .. } => {}
        MetadataRecord::RegisterBroker { broker, epoch } => {
            upsert_broker(
                image,
                crate::protocol::BrokerRegistration {
                    broker: *broker,
                    epoch: *epoch,
                    fenced: false,
                    incarnation: 0,
                },
            );
            image.next_broker_epoch = image.next_broker_epoch.max(epoch + 1);
        }
        MetadataRecord::Change(d) => {
            for r in &d.brokers {
                upsert_broker(image, r.clone());
            }
            for p in &d.partitions {
                let parts = &mut image.metadata.partitions;
                match parts.iter_mut().find(|q| q.tp == p.tp) {
                    Some(q) => *q = p.clone(),
                    None => {
                        parts.push(p.clone());
                        parts.sort_by(|a, b| a.tp.cmp(&b.tp));
                    }
                }
            }
            image.metadata.version = d.version;
            image.next_broker_epoch = d.next_broker_epoch;
            image.next_producer_id = d.next_producer_id;
        }
    }
}

fn upsert_broker(image: &mut ControllerImage, r: crate::protocol::BrokerRegistration) {
    let regs = &mut image.metadata.brokers;
    regs.retain(|x| x.broker != r.broker);
    regs.push(r);
    regs.sort_unstable();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{BrokerRegistration, ClusterMetadata, PartitionState, TopicPartition};

    fn image() -> ControllerImage {
        ControllerImage {
            metadata: ClusterMetadata {
                version: 3,
                brokers: vec![
                    BrokerRegistration {
                        broker: 0,
                        epoch: 1,
                        fenced: false,
                        incarnation: 0,
                    },
                    BrokerRegistration {
                        broker: 1,
                        epoch: 2,
                        fenced: false,
                        incarnation: 0,
                    },
                ],
                partitions: (0..3)
                    .map(|p| PartitionState {
                        tp: TopicPartition::new("t", p),
                        replicas: vec![0, 1],
                        leader: Some(0),
                        leader_epoch: 1,
                        isr: vec![0, 1],
                        partition_epoch: 1,
                    })
                    .collect(),
            },
            next_broker_epoch: 3,
            next_producer_id: 1000,
        }
    }

    #[test]
    fn a_delta_carries_only_what_changed_and_rebuilds_the_new_state() {
        let old = image();
        let mut new = old.clone();
        new.metadata.version = 4;
        new.metadata.brokers[1].fenced = true;
        new.metadata.partitions[2].leader = Some(1);
        new.metadata.partitions[2].isr = vec![1];
        new.metadata.partitions[2].partition_epoch = 2;
        new.next_producer_id = 2000;
        let d = diff(&old, &new);
        assert_eq!(d.brokers, vec![new.metadata.brokers[1].clone()]);
        assert_eq!(d.partitions, vec![new.metadata.partitions[2].clone()]);
        let mut rebuilt = old.clone();
        apply(&mut rebuilt, &MetadataRecord::Change(d));
        assert_eq!(rebuilt, new);
    }

    #[test]
    fn a_new_registration_is_added_in_broker_order() {
        let old = image();
        let mut new = old.clone();
        new.metadata.brokers.insert(
            0,
            BrokerRegistration {
                broker: 7,
                epoch: 3,
                fenced: false,
                incarnation: 0,
            },
        );
        new.metadata.brokers.sort_unstable();
        new.next_broker_epoch = 4;
        new.metadata.version = 4;
        let mut rebuilt = old.clone();
        apply(&mut rebuilt, &MetadataRecord::Change(diff(&old, &new)));
        assert_eq!(rebuilt, new);
    }
}
