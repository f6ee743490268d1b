//! The fault schedule of `seedlog chaos`: drawn from the seed (ChaCha8), printed before the run,
//! one fault at a time so a quorum of controllers and min.insync.replicas of brokers stay up.

use anyhow::bail;
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use std::fmt;

/// What happens to a node's process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// SIGKILL, then a start from its data directory once `down_ms` have passed.
    Kill,
    /// SIGSTOP, then SIGCONT once `down_ms` have passed: a process that hangs, with its
    /// connections open, and wakes up with stale state.
    Pause,
    /// SIGINT (a clean stop), then a start once `down_ms` have passed.
    Restart,
}

impl FaultKind {
    pub const ALL: [FaultKind; 3] = [FaultKind::Kill, FaultKind::Pause, FaultKind::Restart];

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Kill => "kill",
            FaultKind::Pause => "pause",
            FaultKind::Restart => "restart",
        }
    }
}

impl std::str::FromStr for FaultKind {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<Self> {
        match FaultKind::ALL.into_iter().find(|k| k.name() == s) {
            Some(k) => Ok(k),
            None => bail!("unknown fault '{s}'; known faults: kill, pause, restart"),
        }
    }
}

/// One fault: at `at_ms` after the workload starts, `kind` hits node `target` (an index into
/// the harness's nodes) for `down_ms`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    pub at_ms: u64,
    pub kind: FaultKind,
    pub target: usize,
    pub down_ms: u64,
}

/// The faults of a run, in time order, none overlapping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    pub seed: u64,
    pub faults: Vec<Fault>,
}

/// No fault in the first and last `QUIET_MS` of the fault phase: the clients start on a whole
/// cluster, and the last fault heals before the phase ends.
const QUIET_MS: u64 = 2_000;

impl Schedule {
    /// Faults of `kinds` on `targets` (indices of the nodes that may be hit) over `duration_ms`:
    /// a gap of 0.5-2.5 s, a fault lasting 1-4 s, and so on.
    pub fn draw(seed: u64, duration_ms: u64, kinds: &[FaultKind], targets: &[usize]) -> Schedule {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut pick = |n: u64| rng.next_u64() % n;
        let mut faults = Vec::new();
        let mut at = QUIET_MS;
        if !kinds.is_empty() && !targets.is_empty() {
            loop {
                at += 500 + pick(2_000);
                let down_ms = 1_000 + pick(3_000);
                if at + down_ms + QUIET_MS > duration_ms {
                    break;
                }
                let kind = kinds[pick(kinds.len() as u64) as usize];
                let target = targets[pick(targets.len() as u64) as usize];
                faults.push(Fault {
                    at_ms: at,
                    kind,
                    target,
                    down_ms,
                });
                at += down_ms;
            }
        }
        Schedule { seed, faults }
    }
}

/// The schedule with node names, as printed before the run.
pub struct Named<'a>(pub &'a Schedule, pub &'a [String]);

impl fmt::Display for Named<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Named(schedule, names) = self;
        writeln!(
            f,
            "schedule seed={} faults={}",
            schedule.seed,
            schedule.faults.len()
        )?;
        for fault in &schedule.faults {
            writeln!(
                f,
                "  at {:>6.2} s  {:<7} {:<14} for {:.2} s",
                fault.at_ms as f64 / 1e3,
                fault.kind.name(),
                names[fault.target],
                fault.down_ms as f64 / 1e3
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_gives_one_schedule_and_faults_never_overlap() {
        let kinds = FaultKind::ALL;
        let a = Schedule::draw(7, 30_000, &kinds, &[0, 1, 2]);
        assert_eq!(a, Schedule::draw(7, 30_000, &kinds, &[0, 1, 2]));
        assert_ne!(a, Schedule::draw(8, 30_000, &kinds, &[0, 1, 2]));
        assert!(!a.faults.is_empty());
        for w in a.faults.windows(2) {
            assert!(w[0].at_ms + w[0].down_ms < w[1].at_ms, "{w:?}");
        }
        let last = a.faults.last().expect("a fault");
        assert!(last.at_ms + last.down_ms + QUIET_MS <= 30_000);
        assert!(a.faults[0].at_ms > QUIET_MS);
    }

    #[test]
    fn only_the_given_kinds_and_targets() {
        let s = Schedule::draw(3, 60_000, &[FaultKind::Pause], &[4]);
        assert!(s
            .faults
            .iter()
            .all(|f| f.kind == FaultKind::Pause && f.target == 4));
        assert!(Schedule::draw(3, 60_000, &[], &[4]).faults.is_empty());
        assert!(Schedule::draw(3, 4_000, &FaultKind::ALL, &[4])
            .faults
            .is_empty());
        assert!("freeze".parse::<FaultKind>().is_err());
    }
}
