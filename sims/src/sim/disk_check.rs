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
