//! The random timeline of a run: node faults and network faults on two tracks, each fault undone
//! before the next on its track starts, a third track for the group's members, a fourth for
//! clocks and a fifth for clients' links to brokers.

use super::target::{Role, Target};
use super::{Fault, FaultKind, FaultMix, FaultSchedule, PowerLossMode, TimedFault, Track};
use crate::rng::SeedRng;
use crate::scenario::FIRST_CONTROLLER;

/// Draws the timeline of both tracks for `brokers` brokers and `controllers` controllers within
/// `fault_ms`.
pub fn generate(
    seed: u64,
    mix: &FaultMix,
    brokers: u32,
    controllers: u32,
    fault_ms: u64,
) -> FaultSchedule {
    let mut rng = SeedRng::new(seed, 1);
    let mut episodes = 0;
    let mut events = Vec::new();
    // The bit flips, whose windows the network track leaves alone (see below).
    let mut flip_times: Vec<u64> = Vec::new();
    for track in [Track::Node, Track::Network] {
        let node_track = track == Track::Node;
        let kinds: Vec<FaultKind> = mix
            .kinds
            .iter()
            .copied()
            .filter(|k| k.track() == track)
            .collect();
        if kinds.is_empty() {
            continue;
        }
        let mut t = rng.range(300, 2_000);
        let mut flips = 0;
        // When the previous fault on this track was undone: a flip also waits for the cluster
        // to settle after it (a broker that restarted, or a controller that was paused, may still
        // be catching up, leaving the flipped broker the last in-sync replica).
        let mut last_end = 0;
        while t + 100 < fault_ms {
            let mut kind = *rng.pick(&kinds);
            // A bit flip cuts a broker's log at the damaged frame, and the broker re-fetches
            // what it lost. If meanwhile it becomes the last in-sync replica (others fenced or
            // lagging) it is re-elected without the cut records: the last-replica-standing hole
            // (bug J, KIP-966), which this broker, like Kafka before KIP-966, has. So a run gets
            // at most one flip, the broker restarts on it at once, and nothing else happens for
            // a while around it. See README, "Findings".
            if kind == FaultKind::BitFlip {
                flips += 1;
                if flips > 1 {
                    kind = FaultKind::Crash;
                }
            }
            let mut duration = rng.range(200, 5_000).min(fault_ms - t);
            if kind == FaultKind::BitFlip {
                t = t.max(last_end + FLIP_QUIET_MS / 2);
                if t + 100 >= fault_ms {
                    break;
                }
                duration = 1;
                flip_times.push(t);
            }
            let cluster = Shape {
                brokers,
                controllers,
                episode: episodes,
            };
            episodes += 1;
            let (start, end) = episode(&mut rng, kind, &cluster);
            let end_at = t + duration + end.len() as u64;
            let clashes = !node_track && flip_times.iter().any(|&f| near_flip(t, end_at, f));
            if !clashes {
                events.push(TimedFault::at(t, start));
                for (i, fault) in end.into_iter().enumerate() {
                    events.push(TimedFault::at(t + duration + i as u64, fault));
                }
            }
            if !clashes {
                last_end = t + duration + 2;
            }
            let gap = rng.range(50, 2 * mix.mean_gap_ms);
            t += duration
                + gap
                + if kind == FaultKind::BitFlip {
                    FLIP_QUIET_MS
                } else {
                    0
                };
        }
    }
    // Stable sort: faults at one instant keep their generation order.
    events.sort_by_key(|e| e.at_ms);
    FaultSchedule { events }
}

impl FaultSchedule {
    /// A third track for the consumer group's members (ids `first..first + members`): crashes
    /// (a member restarts with nothing but its group's committed offsets) and pauses, some longer
    /// than the coordinator's session timeout, so the member is expelled and comes back stale.
    /// Drawn from its own stream: the broker tracks are the same with or without it.
    pub fn add_member_track(
        &mut self,
        seed: u64,
        first: u32,
        members: u32,
        mean_gap_ms: u64,
        fault_ms: u64,
    ) {
        if members == 0 {
            return;
        }
        let mut rng = SeedRng::new(seed, 3);
        let mut t = rng.range(1_000, 3_000);
        while t + 100 < fault_ms {
            let node = first + rng.range(0, u64::from(members) - 1) as u32;
            let duration = rng.range(100, 6_000).min(fault_ms - t);
            let (start, end) = if rng.chance(50) {
                (
                    Fault::Kill { node: node.into() },
                    Fault::Restart { node: node.into() },
                )
            } else {
                (
                    Fault::Pause { node: node.into() },
                    Fault::Resume { node: node.into() },
                )
            };
            self.push_episode(t, duration, start, end);
            t += duration + rng.range(50, 2 * mean_gap_ms);
        }
        self.events.sort_by_key(|e| e.at_ms);
    }

    /// The clock track: one clock fault at a time on one of `targets`, each undone before the
    /// next starts — a jump by the opposite jump (the clock is put right), a drift change by the
    /// node's own drift again. Drawn from `rng`, the clocks' own stream, so the other tracks are
    /// the same with or without it.
    pub fn add_clock_track(
        &mut self,
        rng: &mut SeedRng,
        kinds: &[FaultKind],
        targets: &Targets,
        fault_ms: u64,
    ) {
        if kinds.is_empty() {
            return;
        }
        let mean_gap_ms = rng.range(500, 4_000);
        let mut t = rng.range(300, 3_000);
        while t + 100 < fault_ms {
            let kind = *rng.pick(kinds);
            let node = targets.pick(rng);
            let duration = rng.range(200, 6_000).min(fault_ms - t);
            let (start, end) = match kind {
                FaultKind::ClockJump => {
                    let by_ms = jump_ms(rng);
                    (
                        Fault::ClockJump {
                            node: node.into(),
                            by_ms,
                        },
                        Fault::ClockJump {
                            node: node.into(),
                            by_ms: -by_ms,
                        },
                    )
                }
                _ => {
                    // 1-30 % fast or slow: far past real quartz drift, so that it matters within
                    // seconds.
                    let size = rng.range(10_000, 300_000) as i64;
                    let ppm = if rng.chance(50) { size } else { -size };
                    (
                        Fault::ClockDrift {
                            node: node.into(),
                            ppm,
                        },
                        Fault::ClockDriftEnd { node: node.into() },
                    )
                }
            };
            self.push_episode(t, duration, start, end);
            t += duration + rng.range(50, 2 * mean_gap_ms);
        }
        self.events.sort_by_key(|e| e.at_ms);
    }
}

impl FaultSchedule {
    /// The client-link track: one producer's or group member's link to one broker stalls — both
    /// ways, or one way — for `stall_ms` (a range: half a second to eight seconds in random
    /// runs), one such fault at a time. The
    /// broker tracks cut only the cluster's own links; a client cut from a leader its peers can
    /// still reach is another story: its requests time out while the metadata still names that
    /// leader, it closes the connection and tries again, and what it sent before may arrive
    /// after what it sends next. Drawn from `rng`, a stream of its own, so the other tracks are
    /// the same with or without it.
    pub fn add_client_link_track(
        &mut self,
        rng: &mut SeedRng,
        targets: &Targets,
        brokers: &[u32],
        fault_ms: u64,
        stall_ms: (u64, u64),
    ) {
        if targets.is_empty() || brokers.is_empty() {
            return;
        }
        let mean_gap_ms = rng.range(500, 4_000);
        let mut t = rng.range(300, 3_000);
        while t + 100 < fault_ms {
            let client = targets.pick(rng);
            let broker = *rng.pick(brokers);
            let duration = rng.range(stall_ms.0, stall_ms.1).min(fault_ms - t);
            let links = match rng.range(0, 2) {
                0 => vec![(client, broker), (broker, client)],
                1 => vec![(client, broker)],
                _ => vec![(broker, client)],
            };
            for (from, to) in links {
                let (from, to) = (from.into(), to.into());
                let end = Fault::HealLink { from, to };
                self.push_episode(t, duration, Fault::OneWay { from, to }, end);
            }
            t += duration + rng.range(50, 2 * mean_gap_ms);
        }
        self.events.sort_by_key(|e| e.at_ms);
    }
}

impl FaultSchedule {
    /// The cluster-link track: one broker of `brokers` at a time is cut off from the other
    /// brokers and the controllers, both ways, while its clients still reach it, for
    /// `cut_ms` (a range); then it rejoins. Cut for longer than its controller session, it is
    /// fenced and loses its leaderships without hearing it, and goes on answering the clients
    /// that still take it for a partition leader or a group coordinator; those answers must
    /// promise nothing the new leaders contradict. Drawn from `rng`, a stream of its own, so the
    /// other tracks are the same with or without it.
    pub fn add_cluster_link_track(
        &mut self,
        rng: &mut SeedRng,
        brokers: &[u32],
        fault_ms: u64,
        cut_ms: (u64, u64),
    ) {
        if brokers.is_empty() {
            return;
        }
        // Like the network track, it leaves a bit flip's broker time to re-fetch: a cut then
        // can shrink an ISR to the flipped broker alone, which loses the partition by design.
        let flips: Vec<u64> = self
            .events
            .iter()
            .filter(|e| matches!(e.fault, Fault::FlipBit { .. }))
            .map(|e| e.at_ms)
            .collect();
        let mean_gap_ms = rng.range(1_000, 5_000);
        let mut t = rng.range(500, 4_000);
        while t + 100 < fault_ms {
            let node = (*rng.pick(brokers)).into();
            let duration = rng.range(cut_ms.0, cut_ms.1).min(fault_ms - t);
            if !flips.iter().any(|&f| near_flip(t, t + duration, f)) {
                let cut = Fault::CutFromCluster { node };
                self.push_episode(t, duration, cut, Fault::RejoinCluster { node });
            }
            t += duration + rng.range(50, 2 * mean_gap_ms);
        }
        self.events.sort_by_key(|e| e.at_ms);
    }
}

/// The nodes a track hits: one of `usual`, `usual_percent` % of the time, else one of `others`
/// (whichever group is not empty). The clock track's usual targets are the brokers (retention by
/// age, lag eviction, the group coordinator's timers; others: the controller's session expiry, a
/// producer's record timestamps, a member's heartbeats). The client-link track's are the
/// producers (their requests carry the epochs and sequences a late attempt puts to the test;
/// others: group members, cut from their coordinator or partition leaders).
pub struct Targets {
    pub usual: Vec<u32>,
    pub others: Vec<u32>,
    pub usual_percent: u64,
}

impl Targets {
    fn is_empty(&self) -> bool {
        self.usual.is_empty() && self.others.is_empty()
    }

    fn pick(&self, rng: &mut SeedRng) -> u32 {
        if self.others.is_empty() || (!self.usual.is_empty() && rng.chance(self.usual_percent)) {
            *rng.pick(&self.usual)
        } else {
            *rng.pick(&self.others)
        }
    }
}

/// A clock step, forward or back: seconds (often), minutes, or hours.
fn jump_ms(rng: &mut SeedRng) -> i64 {
    let size = match rng.range(0, 99) {
        0..=44 => rng.range(1_000, 60_000),
        45..=79 => rng.range(60_000, 3_600_000),
        _ => rng.range(3_600_000, 12 * 3_600_000),
    } as i64;
    if rng.chance(50) {
        size
    } else {
        -size
    }
}

impl FaultSchedule {
    /// One fault at `t` and what undoes it `duration` later (the member and clock tracks).
    fn push_episode(&mut self, t: u64, duration: u64, start: Fault, end: Fault) {
        self.events.push(TimedFault::at(t, start));
        self.events.push(TimedFault::at(t + duration, end));
    }
}

/// How long around a bit flip no other fault starts: time for the broker to re-fetch.
const FLIP_QUIET_MS: u64 = 6_000;

/// Whether a fault from `start` to `end` comes too near a bit flip at `flip` for the tracks that
/// keep clear of flips (network and cluster links): it starts less than `FLIP_QUIET_MS` after the
/// flip, and ends less than one and a half times that before it.
fn near_flip(start: u64, end: u64, flip: u64) -> bool {
    start < flip + FLIP_QUIET_MS && end + FLIP_QUIET_MS / 2 > flip.saturating_sub(FLIP_QUIET_MS)
}

/// The nodes an episode may hit, and its number (which tags a role it aims at).
struct Shape {
    brokers: u32,
    controllers: u32,
    episode: u32,
}

/// One fault and what undoes it.
fn episode(rng: &mut SeedRng, kind: FaultKind, shape: &Shape) -> (Fault, Vec<Fault>) {
    let brokers = shape.brokers;
    let broker = rng.range(0, u64::from(brokers) - 1) as u32;
    let controller =
        FIRST_CONTROLLER + rng.range(0, u64::from(shape.controllers.max(1)) - 1) as u32;
    // The controllers take a share of node faults, half of them aimed at the active one (a
    // controller failover, the quorum's hardest path): their recovery matters as much.
    let node: Target = if rng.chance(20) {
        if rng.chance(50) {
            Target::role(Role::ActiveController, shape.episode)
        } else {
            controller.into()
        }
    } else {
        broker.into()
    };
    match kind {
        FaultKind::Crash => (Fault::Kill { node }, vec![Fault::Restart { node }]),
        FaultKind::PowerLoss => {
            let mode = match rng.range(0, 2) {
                0 => PowerLossMode::AllPending,
                1 => PowerLossMode::KeepPrefix {
                    writes: rng.range(0, 8),
                },
                _ => PowerLossMode::TearLast {
                    keep_bytes: rng.range(0, 64),
                },
            };
            (
                Fault::PowerLoss { node, mode },
                vec![Fault::Restart { node }],
            )
        }
        FaultKind::Pause => (Fault::Pause { node }, vec![Fault::Resume { node }]),
        // Bit rot is a broker-disk fault: the controller's image stands in for a metadata
        // quorum, which would repair it from its peers.
        FaultKind::BitFlip => (
            Fault::FlipBit {
                node: broker.into(),
                bit: rng.next_u64(),
                spare_last_replica: true,
            },
            vec![
                Fault::Kill {
                    node: broker.into(),
                },
                Fault::Restart {
                    node: broker.into(),
                },
            ],
        ),
        FaultKind::Isolate => (Fault::Isolate { node }, vec![Fault::HealNetwork]),
        FaultKind::Split => {
            let alone = broker;
            let rest = (0..brokers).filter(|b| *b != alone).collect();
            (
                Fault::Split {
                    left: vec![alone],
                    right: rest,
                },
                vec![Fault::HealNetwork],
            )
        }
        FaultKind::OneWay => {
            let other = if rng.chance(30) {
                controller
            } else {
                (broker + 1 + rng.range(0, u64::from(brokers) - 2) as u32) % brokers
            };
            let (from, to) = if rng.chance(50) {
                (broker, other)
            } else {
                (other, broker)
            };
            (
                Fault::OneWay {
                    from: from.into(),
                    to: to.into(),
                },
                vec![Fault::HealNetwork],
            )
        }
        FaultKind::Loss => (
            Fault::Loss {
                percent: rng.range(5, 40),
            },
            vec![Fault::NetworkNormal],
        ),
        FaultKind::SlowDisk => (
            Fault::SlowDisk {
                node,
                extra_ms: rng.range(100, 800),
            },
            vec![Fault::DiskNormal { node }],
        ),
        FaultKind::Latency => {
            let min_ms = rng.range(5, 100);
            (
                Fault::Latency {
                    min_ms,
                    max_ms: min_ms + rng.range(1, 300),
                },
                vec![Fault::NetworkNormal],
            )
        }
        // Clock and client-link kinds have tracks of their own (`add_clock_track`,
        // `add_client_link_track`) and never reach here; such a kind in a hand-edited mix is
        // skipped by `generate`'s track filter.
        FaultKind::ClockJump
        | FaultKind::ClockDrift
        | FaultKind::ClientLink
        | FaultKind::CutFromCluster => (Fault::NetworkNormal, Vec::new()),
    }
}
