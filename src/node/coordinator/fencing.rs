//! `offsets-monotonic`, read off one replica of a `__consumer_offsets` partition: every commit a
//! coordinator appended names the generation recorded last for its group. A coordinator bumps a
//! group's generation and appends its record in one step, and then refuses commits of any other
//! generation (`IllegalGeneration`), so in any replica's log a member's commit follows its
//! group's record of that very generation. A commit of an older generation is a fenced member's
//! (a zombie that missed a rebalance, or the member of a failed coordinator's generation that was
//! never stored); one of a newer generation was never handed out by the coordinator whose log
//! this is. Either way the group's committed offset moved through a commit that should have been
//! refused.
//!
//! Commits without a member are not checked: compaction re-appends every live offset that way
//! (after its group's record, with the current generation), and a standalone consumer commits so
//! into a group nobody is a member of, with whatever generation its client sends (Kafka's -1).
//!
//! The simulator feeds each replica's entries as they are appended (`sims`' cross-node checks);
//! the model checker reads every live replica's whole log in every state. Both use this one rule.

use crate::protocol::{Generation, LogEntry, OffsetsKey, OffsetsValue};
use std::collections::BTreeMap;

/// The generation recorded last for each group, in the order a replica's log holds them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommitFencing {
    recorded: BTreeMap<String, Generation>,
}

impl CommitFencing {
    /// Takes the log's next entry; the error describes a member's commit of a generation other
    /// than the one its group recorded last before it.
    pub fn feed(&mut self, entry: &LogEntry) -> Result<(), String> {
        match OffsetsKey::read(&entry.record) {
            (Some(OffsetsKey::Group { group }), Some(OffsetsValue::Group { generation })) => {
                self.recorded.insert(group, generation);
                Ok(())
            }
            (
                Some(OffsetsKey::Offset { group, tp }),
                Some(OffsetsValue::Offset {
                    offset,
                    member,
                    generation,
                    ..
                }),
            ) if !member.is_empty() => match self.recorded.get(&group) {
                Some(&recorded) if recorded == generation => Ok(()),
                recorded => Err(format!(
                    "commit of {offset} for {tp} by member {member} of group {group} in \
                     generation {generation} at offset {}, where the generation recorded last \
                     is {}",
                    entry.offset,
                    recorded.map_or("none".to_string(), |g| g.to_string())
                )),
            },
            _ => Ok(()),
        }
    }

    /// Whether a whole log (from its start) keeps the rule.
    pub fn check_log(entries: &[LogEntry]) -> Result<(), String> {
        let mut fencing = CommitFencing::default();
        entries.iter().try_for_each(|e| fencing.feed(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Record, TopicPartition};

    fn entry(offset: u64, key: OffsetsKey, value: OffsetsValue) -> LogEntry {
        LogEntry {
            offset,
            epoch: 1,
            record: key.record(&value),
            producer: None,
        }
    }

    fn generation(offset: u64, generation: Generation) -> LogEntry {
        let key = OffsetsKey::Group { group: "g".into() };
        entry(offset, key, OffsetsValue::Group { generation })
    }

    fn commit(offset: u64, member: &str, generation: Generation) -> LogEntry {
        let key = OffsetsKey::Offset {
            group: "g".into(),
            tp: TopicPartition::new("t", 0),
        };
        let value = OffsetsValue::Offset {
            offset: 9,
            member: member.into(),
            generation,
            metadata: String::new(),
        };
        entry(offset, key, value)
    }

    #[test]
    fn commits_of_the_generation_recorded_last_keep_the_rule() {
        let log = [
            generation(0, 1),
            commit(1, "a", 1),
            generation(2, 2),
            commit(3, "b", 2),
            // Compaction, and a standalone commit with Kafka's generation -1.
            generation(4, 2),
            commit(5, "", 2),
            commit(6, "", u32::MAX),
        ];
        assert_eq!(CommitFencing::check_log(&log), Ok(()));
    }

    #[test]
    fn a_commit_of_an_older_a_newer_or_no_recorded_generation_breaks_it() {
        let stale = [generation(0, 1), generation(1, 2), commit(2, "a", 1)];
        let err = CommitFencing::check_log(&stale).unwrap_err();
        assert!(err.contains("generation 1 at offset 2"), "{err}");
        assert!(err.contains("recorded last is 2"), "{err}");
        let newer = [generation(0, 1), commit(1, "a", 2)];
        assert!(CommitFencing::check_log(&newer).is_err());
        let unrecorded = [commit(0, "a", 1)];
        let err = CommitFencing::check_log(&unrecorded).unwrap_err();
        assert!(err.contains("recorded last is none"), "{err}");
    }

    #[test]
    fn other_groups_and_undecodable_records_are_left_alone() {
        let other = entry(
            1,
            OffsetsKey::Group { group: "h".into() },
            OffsetsValue::Group { generation: 5 },
        );
        let junk = LogEntry {
            offset: 2,
            epoch: 1,
            record: Record::keyed(b"not json".to_vec(), b"{}".to_vec()),
            producer: None,
        };
        let log = [generation(0, 1), other, junk, commit(3, "a", 1)];
        assert_eq!(CommitFencing::check_log(&log), Ok(()));
    }
}
