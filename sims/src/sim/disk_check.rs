//! A node's disk against its memory (`disk-matches-memory`): what the node would recover if it
//! crashed now is what it runs with — every partition's log start, entries, epoch cache and
//! producer states for a broker; the epoch, vote and log for a controller-quorum voter. Each
//! node checks that its journal is well formed as it replays it; only a harness that reads the
//! disk beside the memory sees a change made in memory with no write for it, or a write that
//! replays as something else. Without this, such a bug shows only if a crash lands before the
//! state is rebuilt some other way, and then an election picks the wrong replica.
//!
//! Checked where the two must agree: just before every process crash or power loss the schedule
//! injects (of a running node), and for every node at the end of a run. A power loss or a flipped
//! bit changes the disk under a running node; until it recovers, the disk is not asked
//! (`SimDisk::image_under_node`).

use super::cluster::{lock, SimNode};
use crate::scenario::Scenario;
use seedlog::node::{AnyNode, BrokerImage, Image, QuorumImage};

/// The problem line, if node `n`'s disk and memory disagree.
pub fn disk_matches_memory(n: &SimNode, at_ms: u64, when: &str) -> Option<String> {
    let recovered = n.disk.image_under_node()?;
    let name = Scenario::node_name(n.id);
    let image = match recovered {
        Ok(r) => r.image,
        Err(e) => {
            return Some(format!(
                "disk-matches-memory {name} at {at_ms} ms ({when}): its disk does not replay: {e}"
            ))
        }
    };
    let state = lock(&n.state);
    let checked = match (&*state, image) {
        (AnyNode::Broker(b), Image::Broker(disk)) => b.check_disk_image(&disk),
        (AnyNode::Broker(b), Image::Empty) => b.check_disk_image(&BrokerImage::default()),
        (AnyNode::QuorumController(c), Image::Quorum(disk)) => c.quorum().check_disk_image(&disk),
        (AnyNode::QuorumController(c), Image::Empty) => {
            c.quorum().check_disk_image(&QuorumImage::default())
        }
        // Clients keep nothing; a single (unreplicated) controller is not run by the simulator.
        (_, Image::Empty) => Ok(()),
        (_, other) => {
            return Some(format!(
                "disk-matches-memory {name} at {at_ms} ms ({when}): the disk holds a {} image",
                match other {
                    Image::Broker(_) => "broker",
                    Image::Controller(_) => "controller",
                    Image::Quorum(_) => "quorum",
                    Image::Empty => "empty",
                }
            ))
        }
    };
    checked.err().map(|v| {
        format!(
            "disk-matches-memory {name} at {at_ms} ms ({when}): {}",
            v.detail
        )
    })
}
