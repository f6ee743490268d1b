//! Fault schedules. Each seed draws its own mix of fault kinds and rates (swarm testing: a run
//! that never isolates nodes explores crashes more deeply, and the other way round), then a
//! timeline on tracks that may overlap: node faults (crash, power loss, pause, bit flip), network
//! faults (isolation, splits, one-way links, loss, latency) and clock faults (jumps, drift
//! changes; drawn from a stream of their own, see `generate`). Every fault on a track is
//! undone before the next starts, so at most one node is down at a time and the cluster keeps a
//! majority of replicas for `min.insync.replicas` (`generate`). Hunts for the bugs no random mix
//! reaches use targeted nemeses instead (`nemesis`): faults aimed at roles (`target`), such as the
//! partition's leader, resolved when they fire.

mod generate;
pub mod nemesis;
mod target;

pub use generate::{generate, Targets};
pub use target::{Role, RoleRef, Target};

use crate::rng::SeedRng;
use seedlog::node::Durability;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    Crash,
    PowerLoss,
    Pause,
    BitFlip,
    Isolate,
    Split,
    OneWay,
    Loss,
    Latency,
    SlowDisk,
    /// A node's wall clock steps forward or back, by seconds to hours, and is put right later.
    ClockJump,
    /// A node's clock runs at another rate for a while, then at its own again.
    ClockDrift,
    /// A client's link to one broker stalls, one way or both, for a while.
    ClientLink,
    /// A broker loses its links to the other brokers and the controllers while its clients
    /// still reach it, so it cannot hear that it was deposed.
    CutFromCluster,
}

/// The timeline a fault kind is drawn on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Track {
    Node,
    Network,
    Clock,
    Client,
    Cluster,
}

impl FaultKind {
    pub const ALL: [FaultKind; 14] = [
        FaultKind::Crash,
        FaultKind::PowerLoss,
        FaultKind::Pause,
        FaultKind::BitFlip,
        FaultKind::Isolate,
        FaultKind::Split,
        FaultKind::OneWay,
        FaultKind::Loss,
        FaultKind::Latency,
        FaultKind::SlowDisk,
        FaultKind::ClockJump,
        FaultKind::ClockDrift,
        FaultKind::ClientLink,
        FaultKind::CutFromCluster,
    ];

    /// The clock kinds, drawn from a random stream of their own (`Scenario::from_seed`).
    pub const CLOCK: [FaultKind; 2] = [FaultKind::ClockJump, FaultKind::ClockDrift];

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Crash => "crash",
            FaultKind::PowerLoss => "power-loss",
            FaultKind::Pause => "pause",
            FaultKind::BitFlip => "bit-flip",
            FaultKind::Isolate => "isolate",
            FaultKind::Split => "split",
            FaultKind::OneWay => "one-way",
            FaultKind::Loss => "loss",
            FaultKind::Latency => "latency",
            FaultKind::SlowDisk => "slow-disk",
            FaultKind::ClockJump => "clock-jump",
            FaultKind::ClockDrift => "clock-drift",
            FaultKind::ClientLink => "client-link",
            FaultKind::CutFromCluster => "cut-from-cluster",
        }
    }

    pub fn track(self) -> Track {
        match self {
            FaultKind::Crash
            | FaultKind::PowerLoss
            | FaultKind::Pause
            | FaultKind::BitFlip
            | FaultKind::SlowDisk => Track::Node,
            FaultKind::Isolate
            | FaultKind::Split
            | FaultKind::OneWay
            | FaultKind::Loss
            | FaultKind::Latency => Track::Network,
            FaultKind::ClockJump | FaultKind::ClockDrift => Track::Clock,
            FaultKind::ClientLink => Track::Client,
            FaultKind::CutFromCluster => Track::Cluster,
        }
    }
}

/// Which fault kinds a run uses and how often faults start.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultMix {
    pub kinds: Vec<FaultKind>,
    /// Mean quiet time between the end of one fault and the start of the next, per track.
    pub mean_gap_ms: u64,
    /// A targeted nemesis drew the schedule instead (then `kinds` is empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nemesis: Option<nemesis::Nemesis>,
}

impl FaultMix {
    pub fn draw(rng: &mut SeedRng, durability: Durability) -> FaultMix {
        // With replicated durability a power loss of the whole ISR loses acknowledged records by
        // design (Kafka's trade-off, bug K); such runs are asked for explicitly, not drawn.
        // Clock and client-link kinds are drawn apart, from streams of their own, so this draw
        // is what it was.
        let allowed: Vec<FaultKind> = FaultKind::ALL
            .into_iter()
            .filter(|k| matches!(k.track(), Track::Node | Track::Network))
            .filter(|k| *k != FaultKind::PowerLoss || durability == Durability::Fsync)
            .collect();
        FaultMix {
            kinds: some_of(rng, &allowed, 50),
            mean_gap_ms: rng.range(300, 3_000),
            nemesis: None,
        }
    }
}

impl FaultMix {
    /// Faults that move leadership around (crashes, pauses, isolation), often.
    pub fn draw_for_failovers(rng: &mut SeedRng) -> FaultMix {
        let allowed = [
            FaultKind::Crash,
            FaultKind::Pause,
            FaultKind::Isolate,
            FaultKind::Split,
            FaultKind::OneWay,
        ];
        FaultMix {
            kinds: some_of(rng, &allowed, 60),
            mean_gap_ms: rng.range(100, 800),
            nemesis: None,
        }
    }
}

/// Each of `allowed` with probability `percent`/100, and one of them if that leaves none.
fn some_of(rng: &mut SeedRng, allowed: &[FaultKind], percent: u64) -> Vec<FaultKind> {
    let mut kinds: Vec<FaultKind> = allowed
        .iter()
        .copied()
        .filter(|_| rng.chance(percent))
        .collect();
    if kinds.is_empty() {
        kinds.push(*rng.pick(allowed));
    }
    kinds
}

/// How much of what was written but not synced survives a power loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "lose")]
pub enum PowerLossMode {
    /// Every unsynced write is gone.
    AllPending,
    /// The first `writes` unsynced writes reached the disk.
    KeepPrefix { writes: u64 },
    /// All unsynced writes but the last `writes` reached the disk.
    DropLast { writes: u64 },
    /// The unsynced writes before the last reached the disk; the last one only its first bytes.
    TearLast { keep_bytes: u64 },
}

impl From<PowerLossMode> for seedlog::runtime::sim_disk::PowerLoss {
    fn from(mode: PowerLossMode) -> Self {
        use seedlog::runtime::sim_disk::PowerLoss;
        match mode {
            PowerLossMode::AllPending => PowerLoss::DropPending,
            PowerLossMode::KeepPrefix { writes } => PowerLoss::KeepPrefix(writes),
            PowerLossMode::DropLast { writes } => PowerLoss::DropLast(writes),
            PowerLossMode::TearLast { keep_bytes } => PowerLoss::TearLast { keep_bytes },
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "fault")]
pub enum Fault {
    /// The process dies; the page cache (written, unsynced data) survives.
    Kill {
        node: Target,
    },
    /// The machine loses power: the process dies and unsynced writes are lost as `mode` says.
    PowerLoss {
        node: Target,
        mode: PowerLossMode,
    },
    Restart {
        node: Target,
    },
    Pause {
        node: Target,
    },
    Resume {
        node: Target,
    },
    /// One bit of the node's durable bytes flips (the node is then restarted to read it).
    FlipBit {
        node: Target,
        bit: u64,
        /// Skip the flip while the node is the only in-sync replica of a partition, by the
        /// active controller's metadata, committed or proposed, or by a leader's ISR change in
        /// flight. Such a partition has no other copy to repair from:
        /// the broker registers with lost data and the partition stays offline by design (or,
        /// with the `last-replica-standing` switch, loses records), which the random mixes
        /// would report as a failure of the run although it is the right answer. The
        /// targeted nemesis and hand-written schedules aim at exactly that case and leave
        /// this off.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        spare_last_replica: bool,
    },
    Isolate {
        node: Target,
    },
    /// The node loses its links to every broker and controller, both ways; clients still reach
    /// it. A broker cut off so cannot hear that it was deposed, and goes on answering the
    /// clients that still take it for a leader or a group coordinator.
    CutFromCluster {
        node: Target,
    },
    /// The node's links to the brokers and controllers work again (undoes `CutFromCluster`).
    RejoinCluster {
        node: Target,
    },
    /// Brokers in `left` and in `right` cannot reach each other; clients and the controller
    /// stay connected to both sides unless listed.
    Split {
        left: Vec<u32>,
        right: Vec<u32>,
    },
    /// Messages from `from` to `to` stall; the other direction works.
    OneWay {
        from: Target,
        to: Target,
    },
    /// Messages from `from` to `to` flow again (undoes one `OneWay`).
    HealLink {
        from: Target,
        to: Target,
    },
    /// Messages from `from` to `to` wait at `to`'s door, in order (`sim::holds`; unlike a
    /// `one-way` link, released at once by `release`).
    Hold {
        from: Target,
        to: Target,
    },
    /// Hands `to` everything held from `from`, in order, and lets later messages through.
    Release {
        from: Target,
        to: Target,
    },
    /// Undo every isolation, split, one-way link and hold.
    HealNetwork,
    /// Percentage of packets lost (TCP retransmits them: they arrive late).
    Loss {
        percent: u64,
    },
    Latency {
        min_ms: u64,
        max_ms: u64,
    },
    /// Back to no loss and the default latency.
    NetworkNormal,
    /// Every sync the node's disk starts takes `extra_ms` longer (a stalled device).
    SlowDisk {
        node: Target,
        extra_ms: u64,
    },
    /// The node's disk is back to its normal sync latency.
    DiskNormal {
        node: Target,
    },
    /// The node's wall clock steps by `by_ms` (back if negative). Its timers, which run on its
    /// monotonic clock, are not affected.
    ClockJump {
        node: Target,
        by_ms: i64,
    },
    /// The node's clock (wall and monotonic) runs `ppm` parts per million fast (slow if
    /// negative) from now on, in place of its own drift.
    ClockDrift {
        node: Target,
        ppm: i64,
    },
    /// The node's clock runs at its own drift again (undoes `ClockDrift`).
    ClockDriftEnd {
        node: Target,
    },
    /// Not a fault but a promise the schedule makes: from here, for `for_ms`, enough replicas
    /// are up and connected that acks=all writes must keep being acknowledged. Nothing is done
    /// to the cluster; after the run, the availability check (`sim::availability`) reports
    /// `unavailable` if no acks=all send was acknowledged in that window.
    Available {
        for_ms: u64,
    },
    /// A promise checked when it fires: the node, cut off from the other controllers for longer
    /// than check-quorum allows a leader, leads no quorum epoch. A leader that never resigns
    /// keeps answering as if it led (and holds the brokers that still reach it); the run stops
    /// with `leader-not-resigned`.
    Resigned {
        node: Target,
    },
    /// A promise checked when it fires: the network has been whole for a while and at most one
    /// controller of three is down, so a majority of the controllers that are up follow one
    /// quorum leader, up itself. Voters that stay leaderless although connected (their answers
    /// stuck on connections stalled by an earlier cut, say) stop the run with
    /// `controller-not-elected`.
    Elected,
}

impl Fault {
    /// The nodes the fault names (splits name fixed ids and have none).
    pub fn targets_mut(&mut self) -> Vec<&mut Target> {
        match self {
            Fault::Kill { node }
            | Fault::PowerLoss { node, .. }
            | Fault::Restart { node }
            | Fault::Pause { node }
            | Fault::Resume { node }
            | Fault::FlipBit { node, .. }
            | Fault::Isolate { node }
            | Fault::CutFromCluster { node }
            | Fault::RejoinCluster { node }
            | Fault::SlowDisk { node, .. }
            | Fault::DiskNormal { node }
            | Fault::ClockJump { node, .. }
            | Fault::ClockDrift { node, .. }
            | Fault::ClockDriftEnd { node }
            | Fault::Resigned { node } => vec![node],
            Fault::OneWay { from, to }
            | Fault::HealLink { from, to }
            | Fault::Hold { from, to }
            | Fault::Release { from, to } => vec![from, to],
            Fault::Split { .. }
            | Fault::HealNetwork
            | Fault::Loss { .. }
            | Fault::Latency { .. }
            | Fault::NetworkNormal
            | Fault::Available { .. }
            | Fault::Elected => Vec::new(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimedFault {
    pub at_ms: u64,
    #[serde(flatten)]
    pub fault: Fault,
    /// A window for a fault aimed at a role that names a node only in some states of the
    /// quorum (`new-leader`, ...): from `at_ms` the supervisor tries every 5 ms until the role
    /// names a node, and skips the fault if none did by `until_ms`. Meanwhile the faults after
    /// it wait (a later step of the same episode fires at its time or right after this one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_ms: Option<u64>,
}

impl TimedFault {
    pub fn at(at_ms: u64, fault: Fault) -> TimedFault {
        TimedFault {
            at_ms,
            fault,
            until_ms: None,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultSchedule {
    pub events: Vec<TimedFault>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timed_faults_read_role_targets_and_name_a_bad_one() {
        let f: TimedFault = serde_json::from_str(
            r#"{"at_ms": 5, "fault": "one-way", "from": "leader#2", "to": 1}"#,
        )
        .expect("valid");
        assert_eq!(
            f.fault,
            Fault::OneWay {
                from: Target::role(Role::Leader, 2),
                to: Target::Node(1)
            }
        );
        // Through the flattened, tagged enum the reason still reaches the user.
        let err = serde_json::from_str::<TimedFault>(
            r#"{"at_ms": 5, "fault": "kill", "node": "boss#1"}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains(r#"unknown role "boss""#), "{err}");
        // A window reads and writes as `until_ms`, absent without one.
        let text = r#"{"at_ms":5,"fault":"kill","node":"new-leader#1","until_ms":900}"#;
        let f: TimedFault = serde_json::from_str(text).expect("valid");
        assert_eq!(f.until_ms, Some(900));
        assert_eq!(serde_json::to_string(&f).expect("encode"), text);
        let f = TimedFault::at(5, Fault::HealNetwork);
        assert_eq!(
            serde_json::to_string(&f).expect("encode"),
            r#"{"at_ms":5,"fault":"heal-network"}"#
        );
    }

    #[test]
    fn clock_faults_read_and_write_as_json() {
        for (text, fault) in [
            (
                r#"{"at_ms":7,"fault":"clock-jump","node":1,"by_ms":-3600000}"#,
                Fault::ClockJump {
                    node: 1.into(),
                    by_ms: -3_600_000,
                },
            ),
            (
                r#"{"at_ms":7,"fault":"clock-drift","node":"leader#2","ppm":150000}"#,
                Fault::ClockDrift {
                    node: Target::role(Role::Leader, 2),
                    ppm: 150_000,
                },
            ),
            (
                r#"{"at_ms":7,"fault":"clock-drift-end","node":100}"#,
                Fault::ClockDriftEnd { node: 100.into() },
            ),
        ] {
            let f: TimedFault = serde_json::from_str(text).expect(text);
            assert_eq!(f, TimedFault::at(7, fault));
            assert_eq!(serde_json::to_string(&f).expect("encode"), text);
        }
    }
}
