//! A node's disk against its memory (`disk-matches-memory`): what the node would recover if it
//! crashed now is what it runs with — every partition's log start, entries, epoch cache and
//! producer states for a broker; the epoch, vote and log for a controller-quorum voter. Each
//! node checks that its journal is well formed as it replays it; only a harness that reads the
//! disk beside the memory sees a change made in memory with no write for it, or a write that
//! replays as something else. Without this, such a bug shows only if a crash lands before the
//! state is rebuilt some other way, and then an election picks the wrong replica.
//!
//! Checked where the two must agree: just before every process crash, power loss or restart the
//! schedule injects (of a running node), and for every node at the end of a run. A power loss or a
//! flipped bit changes the disk under a running node, and a restart recovers from the disk before
//! the new incarnation takes its place; until then the disk is not asked
//! (`SimDisk::image_under_node`).

use super::cluster::{lock, SimNode};
use crate::scenario::Scenario;
use seedlog::log::PartitionLog;
use seedlog::node::{AnyNode, Durability, Image};
use seedlog::protocol::{Offset, TopicPartition};
use seedlog::runtime::sim_disk::SimDisk;
use std::collections::BTreeMap;

/// The problem line, if node `n`'s disk and memory disagree.
pub fn disk_matches_memory(n: &SimNode, at_ms: u64, when: &str) -> Option<String> {
    let recovered = n.disk.image_under_node()?;
    let name = Scenario::node_name(n.id);
    let problem = match recovered {
        Ok(r) => lock(&n.state).check_disk_image(&r.image).err()?.detail,
        Err(e) => format!("its disk does not replay: {e}"),
    };
    Some(format!(
        "disk-matches-memory {name} at {at_ms} ms ({when}): {problem}"
    ))
}

/// `synced-on-disk`: with `fsync` durability, every record a broker counts as synced
/// (`Replica::synced_offset`, which it reports to its leader and which the high watermark and
/// ISR membership count) is durable on its disk: a power loss now, dropping every write not
/// yet synced, would leave it in place. Checked just before every process crash, power loss or
/// restart the schedule injects into a running broker, and as each broker incarnation starts
/// from what it recovered (a process crash leaves the page cache: what it reads back is not all
/// durable). Without it, a broker that claims more than it synced loses an acknowledged record
/// only if the same power loss reaches every replica that held it.
pub fn synced_on_disk(
    state: &AnyNode,
    disk: &SimDisk,
    name: &str,
    at_ms: u64,
    when: &str,
) -> Option<String> {
    let b = state.as_broker()?;
    if b.config().durability != Durability::Fsync {
        return None;
    }
    let problem = match disk.durable_image()? {
        Err(e) => format!("its durable writes do not replay: {e}"),
        Ok(r) => {
            // Nothing durable yet replays as no image at all.
            let durable = match r.image {
                Image::Broker(image) => image.logs,
                _ => BTreeMap::new(),
            };
            let synced = b
                .replicas()
                .iter()
                .map(|(tp, r)| (tp, &r.log, r.synced_offset));
            synced_not_durable(synced, &durable)?
        }
    };
    Some(format!(
        "synced-on-disk {name} at {at_ms} ms ({when}): {problem}"
    ))
}

/// The first partition whose log, counted synced up to its offset, holds an entry below that
/// offset that the durable logs do not hold the same.
fn synced_not_durable<'a>(
    synced: impl IntoIterator<Item = (&'a TopicPartition, &'a PartitionLog, Offset)>,
    durable: &BTreeMap<TopicPartition, PartitionLog>,
) -> Option<String> {
    synced.into_iter().find_map(|(tp, log, synced)| {
        let on_disk = durable.get(tp);
        let missing = log
            .entries()
            .iter()
            .take_while(|e| e.offset < synced)
            .find(|e| on_disk.and_then(|d| d.entry(e.offset)) != Some(*e))?;
        Some(format!(
            "{tp}: synced to {synced}, but offset {} is not durable",
            missing.offset
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use seedlog::protocol::Record;

    fn log_of(values: &[&str]) -> PartitionLog {
        let mut log = PartitionLog::new();
        for v in values {
            log.append_stamped(0, vec![Record::keyed("k", *v)], None)
                .expect("appends");
        }
        log
    }

    #[test]
    fn a_synced_record_missing_or_different_on_the_disk_is_named() {
        let tp = TopicPartition::new("t", 0);
        let memory = log_of(&["a", "b", "c"]);
        let check = |synced, disk: &[&str]| {
            let durable = BTreeMap::from([(tp.clone(), log_of(disk))]);
            synced_not_durable([(&tp, &memory, synced)], &durable)
        };
        assert_eq!(check(3, &["a", "b", "c"]), None);
        assert_eq!(check(2, &["a", "b"]), None, "the unsynced tail may be lost");
        assert_eq!(
            check(3, &["a", "b"]).as_deref(),
            Some("t-0: synced to 3, but offset 2 is not durable")
        );
        assert_eq!(
            check(2, &["a", "x", "c"]).as_deref(),
            Some("t-0: synced to 2, but offset 1 is not durable")
        );
        let nothing = BTreeMap::new();
        assert!(synced_not_durable([(&tp, &memory, 1)], &nothing).is_some());
        assert_eq!(synced_not_durable([(&tp, &memory, 0)], &nothing), None);
    }
}
