//! What a `__consumer_offsets` log's records say the committed offsets (and the groups'
//! generations) are: the input of the `coordinator-offsets-in-log`,
//! `coordinator-generation-covers-log` and `coordinator-generation-stored` checks, which a harness can read as records are committed instead
//! of replaying the whole log at every check.

use crate::protocol::{Generation, LogEntry, Offset, OffsetsKey, OffsetsValue, TopicPartition};
use std::collections::BTreeMap;

/// The committed offsets a `__consumer_offsets` log's records say, per group and partition: the
/// last offset record of each key read (what a coordinator replaying them would serve).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoggedOffsets {
    groups: BTreeMap<String, BTreeMap<TopicPartition, Offset>>,
    /// The highest generation each group's records name (`coordinator-generation-covers-log`).
    generations: BTreeMap<String, Generation>,
}

impl LoggedOffsets {
    /// Takes the offset records among `entries` (the log's next records, in order).
    pub fn read(&mut self, entries: &[LogEntry]) {
        for e in entries {
            match OffsetsKey::read(&e.record) {
                (
                    Some(OffsetsKey::Offset { group, tp }),
                    Some(OffsetsValue::Offset { offset, .. }),
                ) => {
                    self.groups.entry(group).or_default().insert(tp, offset);
                }
                (Some(OffsetsKey::Group { group }), Some(OffsetsValue::Group { generation })) => {
                    let g = self.generations.entry(group).or_default();
                    *g = (*g).max(generation);
                }
                _ => {}
            }
        }
    }

    /// Each group with a generation record, and the highest generation its records name.
    pub fn generations(&self) -> impl Iterator<Item = (&str, Generation)> {
        self.generations.iter().map(|(g, &n)| (g.as_str(), n))
    }

    /// The highest generation `group`'s records name, if any.
    pub fn generation(&self, group: &str) -> Option<Generation> {
        self.generations.get(group).copied()
    }

    pub fn get(&self, group: &str, tp: &TopicPartition) -> Option<Offset> {
        self.groups.get(group)?.get(tp).copied()
    }

    /// The number of keys (group and partition) with an offset.
    pub fn len(&self) -> usize {
        self.groups.values().map(BTreeMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &TopicPartition, Offset)> {
        self.groups
            .iter()
            .flat_map(|(g, tps)| tps.iter().map(move |(tp, &o)| (g.as_str(), tp, o)))
    }
}
