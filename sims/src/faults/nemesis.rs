//! Targeted nemeses: fault templates aimed at the shape of one historical bug, for the hunts that
//! no random mix reaches in a practical number of seeds (Jepsen calls such packages nemeses).
//! Each template is a sequence of faults on roles (`leader#e`, `follower#e`, ...) resolved when
//! they fire; the seed draws everything else — how each fault is done (power-loss mode, pause or
//! one-way stall, ...), the gaps between faults, and extra latency — so runs differ, and most
//! miss: the bug needs its faults inside windows of a few milliseconds, which the seeds sweep.
//!
//! A template says what the bug needs, not that the bug happens: without the switch the same
//! schedule must leave no acknowledged record lost (`sims/tests/bugs.rs` checks both sides).

use super::{Fault, FaultSchedule, PowerLossMode, Role, Target, TimedFault};
use crate::rng::SeedRng;
use seedlog::node::{Bug, Durability};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Nemesis {
    /// Bug G: the news of a commit to the next leader stalls, the leader loses its unsynced
    /// tail, the follower that will not be elected stalls too (so the new leader's high
    /// watermark stays below its epoch start), the old leader returns and fetches from inside
    /// that gap while the new leader's answers to it stall, and the new leader dies.
    StaleHwRejoin,
    /// Bug J: both followers go away, the ISR shrinks to the leader, the leader's log is
    /// corrupted and cut on restart, the followers return.
    LastReplicaCut,
}

impl Nemesis {
    /// The nemesis that hunts `bug`, if random mixes are not enough for it.
    pub fn for_bug(bug: Bug) -> Option<Nemesis> {
        match bug {
            Bug::IsrBeforeEpochStart => Some(Nemesis::StaleHwRejoin),
            Bug::LastReplicaStanding => Some(Nemesis::LastReplicaCut),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Nemesis::StaleHwRejoin => "stale-hw-rejoin",
            Nemesis::LastReplicaCut => "last-replica-cut",
        }
    }

    /// The durability the bug needs: G loses the leader's acknowledged but unsynced tail, J cuts
    /// synced records (with replicated durability a power loss alone would lose them, by design).
    pub fn durability(self) -> Durability {
        match self {
            Nemesis::StaleHwRejoin => Durability::Replicated,
            Nemesis::LastReplicaCut => Durability::Fsync,
        }
    }

    /// Episodes of the template, one after another with time to recover in between, until the
    /// fault phase ends.
    pub fn schedule(self, seed: u64, fault_ms: u64) -> FaultSchedule {
        let mut rng = SeedRng::new(seed, 4);
        let mut events = Vec::new();
        let mut t = rng.range(1_500, 3_000);
        for episode in 0.. {
            let (faults, length) = match self {
                Nemesis::StaleHwRejoin => stale_hw_rejoin(&mut rng, episode),
                Nemesis::LastReplicaCut => last_replica_cut(&mut rng, episode),
            };
            if t + length > fault_ms {
                break;
            }
            events.extend(faults.into_iter().map(|(at, fault)| TimedFault {
                at_ms: t + at,
                fault,
            }));
            t += length + rng.range(2_000, 4_000);
        }
        events.sort_by_key(|e| e.at_ms);
        FaultSchedule { events }
    }
}

/// One episode as (offset from its start, fault), and its length (everything undone by then).
type Episode = (Vec<(u64, Fault)>, u64);

fn stale_hw_rejoin(rng: &mut SeedRng, e: u32) -> Episode {
    let leader = Target::role(Role::Leader, e);
    let next = Target::role(Role::Follower, e);
    let other = Target::role(Role::OtherFollower, e);
    let mut f = Vec::new();
    // Slow links widen every window below; some episodes run at the default latency.
    if rng.chance(50) {
        let min_ms = rng.range(5, 60);
        f.push((
            0,
            Fault::Latency {
                min_ms,
                max_ms: min_ms + rng.range(1, 100),
            },
        ));
    }
    // The leader's messages to the follower that will be elected stall: if the news of the last
    // commit was on its way, that follower will lead with a high watermark below its epoch start.
    f.push((
        1,
        Fault::OneWay {
            from: leader,
            to: next,
        },
    ));
    // The leader loses power shortly after and keeps a prefix of its unsynced writes: if it
    // keeps the log up to inside that gap, it can rejoin from there.
    let lost_at = 1 + rng.range(0, 200);
    let mode = match rng.range(0, 5) {
        0 => PowerLossMode::AllPending,
        1 => PowerLossMode::TearLast {
            keep_bytes: rng.range(0, 64),
        },
        _ => PowerLossMode::DropLast {
            writes: rng.range(1, 6),
        },
    };
    f.push((lost_at, Fault::PowerLoss { node: leader, mode }));
    // The follower the controller will not elect stops reaching the new leader before it can
    // fetch there, so the high watermark stays where it was (its session lasts 2 s: a pause must
    // be short of that, a one-way stall not).
    let stall_at = lost_at + rng.range(0, 400);
    let paused = rng.chance(30);
    f.push((
        stall_at,
        if paused {
            Fault::Pause { node: other }
        } else {
            Fault::OneWay {
                from: other,
                to: next,
            }
        },
    ));
    // The old leader comes back (its re-registration makes the controller elect); the new
    // leader's answers to it stall, so what it fetches never arrives.
    let restart_at = stall_at + rng.range(300, 2_000);
    f.push((
        restart_at - 1,
        Fault::HealLink {
            from: leader,
            to: next,
        },
    ));
    f.push((
        restart_at - 1,
        Fault::OneWay {
            from: next,
            to: leader,
        },
    ));
    f.push((restart_at, Fault::Restart { node: leader }));
    // Then the new leader dies; its session expires and the controller elects from the ISR.
    let kill_at = restart_at + rng.range(300, 2_500);
    f.push((kill_at, Fault::Kill { node: next }));
    let end = kill_at + rng.range(2_500, 4_000);
    if paused {
        f.push((
            stall_at + rng.range(300, 1_900),
            Fault::Resume { node: other },
        ));
    }
    f.push((end, Fault::HealNetwork));
    f.push((end, Fault::NetworkNormal));
    f.push((end + 1, Fault::Restart { node: next }));
    (f, end + 2)
}

fn last_replica_cut(rng: &mut SeedRng, e: u32) -> Episode {
    let leader = Target::role(Role::Leader, e);
    let mut f = Vec::new();
    let mut back = Vec::new();
    // Both followers go away, each by a crash, a pause or isolation.
    for (i, role) in [Role::Follower, Role::OtherFollower]
        .into_iter()
        .enumerate()
    {
        let node = Target::role(role, e);
        let at = i as u64 * rng.range(0, 500);
        let (gone, undo) = match rng.range(0, 2) {
            0 => (Fault::Kill { node }, Fault::Restart { node }),
            1 => (Fault::Pause { node }, Fault::Resume { node }),
            _ => (Fault::Isolate { node }, Fault::HealNetwork),
        };
        f.push((at, gone));
        back.push(undo);
    }
    // Once the ISR has shrunk to the leader (replica lag 3 s, sessions 2 s), a bit of its disk
    // flips and it restarts on it.
    let flip_at = rng.range(3_500, 6_000);
    f.push((
        flip_at,
        Fault::FlipBit {
            node: leader,
            bit: rng.next_u64(),
        },
    ));
    f.push((flip_at + 1, Fault::Kill { node: leader }));
    f.push((flip_at + 2, Fault::Restart { node: leader }));
    let end = flip_at + rng.range(500, 3_000);
    for (i, undo) in back.into_iter().enumerate() {
        f.push((end + i as u64, undo));
    }
    (f, end + 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_are_functions_of_the_seed_and_stay_inside_the_fault_phase() {
        for nemesis in [Nemesis::StaleHwRejoin, Nemesis::LastReplicaCut] {
            let a = nemesis.schedule(7, 20_000);
            assert_eq!(a, nemesis.schedule(7, 20_000));
            assert_ne!(a, nemesis.schedule(8, 20_000));
            assert!(!a.events.is_empty());
            assert!(a.events.iter().all(|e| e.at_ms < 20_000));
            assert!(a.events.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
        }
    }

    #[test]
    fn every_episode_undoes_what_it_breaks() {
        let s = Nemesis::StaleHwRejoin.schedule(3, 60_000);
        let count = |p: &dyn Fn(&Fault) -> bool| s.events.iter().filter(|e| p(&e.fault)).count();
        let downs = count(&|f| matches!(f, Fault::PowerLoss { .. } | Fault::Kill { .. }));
        let restarts = count(&|f| matches!(f, Fault::Restart { .. }));
        assert_eq!(downs, restarts);
        let pauses = count(&|f| matches!(f, Fault::Pause { .. }));
        assert_eq!(pauses, count(&|f| matches!(f, Fault::Resume { .. })));
        // One heal per episode undoes its one-way stalls.
        let heals = count(&|f| matches!(f, Fault::HealNetwork));
        assert_eq!(heals, count(&|f| matches!(f, Fault::PowerLoss { .. })));
    }
}
