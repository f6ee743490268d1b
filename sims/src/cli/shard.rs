//! Sharding a sweep over machines: `run --shard K/N` runs the seeds `s` of its range with
//! `s % N == K` (K counts from 0). A seed's shard depends on the seed and N alone, not on the
//! range, so a failure one shard finds replays anywhere with `replay --seed S`.
//!
//! Without `--shard`, the index and count come from the environment of a CI system that runs
//! copies of one job: Kubernetes Indexed Jobs (`JOB_COMPLETION_INDEX`; Kubernetes gives no
//! count, so `SEEDLOG_SHARD_COUNT` or `--shard-count` says how many) and Buildkite parallel jobs
//! (`BUILDKITE_PARALLEL_JOB`, `BUILDKITE_PARALLEL_JOB_COUNT`). GitHub Actions has no such
//! variable: a matrix passes `--shard ${{ matrix.shard }}/N`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One of `count` disjoint slices of the seeds: those equal to `index` modulo `count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

/// Environment variables that name this machine's shard (0-based).
pub const INDEX_VARS: [&str; 2] = ["JOB_COMPLETION_INDEX", "BUILDKITE_PARALLEL_JOB"];
/// Environment variables that name the number of shards.
pub const COUNT_VARS: [&str; 2] = ["SEEDLOG_SHARD_COUNT", "BUILDKITE_PARALLEL_JOB_COUNT"];

impl Shard {
    /// The whole range: what an unsharded run records.
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    pub fn new(index: u64, count: u64) -> Result<Shard, String> {
        if count == 0 {
            return Err("the number of shards must be at least 1".into());
        }
        if index >= count {
            return Err(format!(
                "shard index {index} is out of range for {count} shards: the index counts from 0, \
                 so it is 0..={}",
                count - 1
            ));
        }
        Ok(Shard { index, count })
    }

    /// Whether this shard runs `seed`.
    pub fn holds(self, seed: u64) -> bool {
        seed % self.count == self.index
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl std::str::FromStr for Shard {
    type Err = String;

    /// `K/N`, K from 0: `0/4` is the first of four shards, `3/4` the last.
    fn from_str(s: &str) -> Result<Shard, String> {
        let Some((k, n)) = s.split_once('/') else {
            return Err(format!(
                "'{s}' is not K/N (e.g. 0/4, the first of 4 shards; K counts from 0)"
            ));
        };
        let number = |part: &str, what: &str| {
            part.trim()
                .parse::<u64>()
                .map_err(|_| format!("'{s}': {what} '{part}' is not a whole number"))
        };
        Shard::new(number(k, "the index")?, number(n, "the count")?)
    }
}

/// The shard a run takes, and where that came from (printed by `run`).
#[derive(Debug, PartialEq, Eq)]
pub struct Resolved {
    pub shard: Shard,
    pub from: String,
}

/// The shard to run: `--shard` if given (it wins over the environment), else the index and
/// count the environment names, else none (the whole range). Every variable that is set must
/// be a whole number and agree with the others; an index without a count, or a count without
/// an index, is an error. Empty variables count as unset.
pub fn resolve(
    flag: Option<Shard>,
    count_flag: Option<u64>,
    env: &BTreeMap<String, String>,
) -> Result<Option<Resolved>, String> {
    let set = |names: &[&'static str]| -> Vec<(&'static str, &str)> {
        names
            .iter()
            .filter_map(|&n| env.get(n).map(|v| (n, v.trim())))
            .filter(|(_, v)| !v.is_empty())
            .collect()
    };
    let (index_vars, count_vars) = (set(&INDEX_VARS), set(&COUNT_VARS));
    if let Some(shard) = flag {
        let ignored: Vec<String> = index_vars
            .iter()
            .chain(&count_vars)
            .map(|(n, v)| format!("{n}={v}"))
            .collect();
        let from = if ignored.is_empty() {
            "--shard".to_string()
        } else {
            format!("--shard, which overrides {}", ignored.join(", "))
        };
        return Ok(Some(Resolved { shard, from }));
    }
    let parse = |(name, value): &(&str, &str)| {
        value
            .parse::<u64>()
            .map(|v| (name.to_string(), v))
            .map_err(|_| format!("{name}={value} is not a whole number"))
    };
    let indexes = index_vars
        .iter()
        .map(parse)
        .collect::<Result<Vec<_>, _>>()?;
    let mut counts = count_vars
        .iter()
        .map(parse)
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(n) = count_flag {
        counts.insert(0, ("--shard-count".to_string(), n));
    }
    let show = |vals: &[(String, u64)]| {
        vals.iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let agreed = |vals: &[(String, u64)], what: &str| match vals.split_first() {
        Some((first, rest)) if rest.iter().any(|(_, v)| *v != first.1) => {
            Err(format!("conflicting shard {what}: {}", show(vals)))
        }
        first => Ok(first.map(|(f, _)| f.1)),
    };
    match (agreed(&indexes, "indexes")?, agreed(&counts, "counts")?) {
        (None, None) => Ok(None),
        (Some(_), None) => Err(format!(
            "{} names this shard but nothing says how many shards there are: set \
             SEEDLOG_SHARD_COUNT (for a Kubernetes Indexed Job, to the Job's completions) or pass \
             --shard-count N",
            show(&indexes)
        )),
        (None, Some(_)) => Err(format!(
            "{} says how many shards there are but nothing says which one this is: \
             JOB_COMPLETION_INDEX or BUILDKITE_PARALLEL_JOB (or pass --shard K/N instead)",
            show(&counts)
        )),
        (Some(index), Some(count)) => {
            let from = [indexes, counts].concat();
            let shard = Shard::new(index, count).map_err(|e| format!("{}: {e}", show(&from)))?;
            Ok(Some(Resolved {
                shard,
                from: show(&from),
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> BTreeMap<String, String> {
        vars.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn shard(index: u64, count: u64) -> Shard {
        Shard { index, count }
    }

    #[test]
    fn shards_are_disjoint_and_cover_every_seed() {
        for count in 1..6 {
            for seed in 0..50 {
                let holders = (0..count).filter(|&k| shard(k, count).holds(seed)).count();
                assert_eq!(holders, 1, "seed {seed} with {count} shards");
            }
        }
    }

    #[test]
    fn k_over_n_parses_and_bad_values_are_refused() {
        assert_eq!("0/4".parse(), Ok(shard(0, 4)));
        assert_eq!("3/4".parse(), Ok(shard(3, 4)));
        assert_eq!("0/1".parse(), Ok(Shard::WHOLE));
        for (bad, says) in [
            ("4/4", "out of range for 4 shards"),
            ("1/0", "at least 1"),
            ("3", "not K/N"),
            ("-1/4", "not a whole number"),
            ("a/4", "not a whole number"),
            ("1/", "not a whole number"),
            ("", "not K/N"),
        ] {
            let e = bad.parse::<Shard>().expect_err(bad);
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn no_flag_and_no_environment_is_the_whole_range() {
        assert_eq!(resolve(None, None, &env(&[("PATH", "/bin")])), Ok(None));
        // Empty variables (a template that left them blank) count as unset.
        assert_eq!(
            resolve(None, None, &env(&[("JOB_COMPLETION_INDEX", "")])),
            Ok(None)
        );
    }

    #[test]
    fn kubernetes_indexed_job_needs_a_count() {
        let k8s = env(&[("JOB_COMPLETION_INDEX", "2"), ("SEEDLOG_SHARD_COUNT", "4")]);
        let r = resolve(None, None, &k8s).expect("ok").expect("sharded");
        assert_eq!(r.shard, shard(2, 4));
        assert_eq!(r.from, "JOB_COMPLETION_INDEX=2, SEEDLOG_SHARD_COUNT=4");
        let r = resolve(None, Some(4), &env(&[("JOB_COMPLETION_INDEX", "2")]))
            .expect("ok")
            .expect("sharded");
        assert_eq!(r.shard, shard(2, 4));
        let e = resolve(None, None, &env(&[("JOB_COMPLETION_INDEX", "2")])).expect_err("no count");
        assert!(e.contains("SEEDLOG_SHARD_COUNT"), "{e}");
        let e = resolve(None, None, &env(&[("SEEDLOG_SHARD_COUNT", "4")])).expect_err("no index");
        assert!(e.contains("which one this is"), "{e}");
        let e = resolve(None, Some(4), &env(&[])).expect_err("no index");
        assert!(e.contains("--shard-count=4"), "{e}");
    }

    #[test]
    fn buildkite_parallel_job() {
        let bk = env(&[
            ("BUILDKITE_PARALLEL_JOB", "0"),
            ("BUILDKITE_PARALLEL_JOB_COUNT", "3"),
        ]);
        let r = resolve(None, None, &bk).expect("ok").expect("sharded");
        assert_eq!(r.shard, shard(0, 3));
        assert_eq!(
            r.from,
            "BUILDKITE_PARALLEL_JOB=0, BUILDKITE_PARALLEL_JOB_COUNT=3"
        );
    }

    #[test]
    fn invalid_or_conflicting_environment_is_refused() {
        for (vars, count, says) in [
            (
                vec![("JOB_COMPLETION_INDEX", "x"), ("SEEDLOG_SHARD_COUNT", "4")],
                None,
                "JOB_COMPLETION_INDEX=x is not a whole number",
            ),
            (
                vec![("JOB_COMPLETION_INDEX", "4"), ("SEEDLOG_SHARD_COUNT", "4")],
                None,
                "out of range for 4 shards",
            ),
            (
                vec![("JOB_COMPLETION_INDEX", "0"), ("SEEDLOG_SHARD_COUNT", "0")],
                None,
                "at least 1",
            ),
            (
                vec![
                    ("JOB_COMPLETION_INDEX", "1"),
                    ("BUILDKITE_PARALLEL_JOB", "2"),
                ],
                Some(4),
                "conflicting shard indexes: JOB_COMPLETION_INDEX=1, BUILDKITE_PARALLEL_JOB=2",
            ),
            (
                vec![
                    ("BUILDKITE_PARALLEL_JOB", "1"),
                    ("BUILDKITE_PARALLEL_JOB_COUNT", "3"),
                ],
                Some(4),
                "conflicting shard counts: --shard-count=4, BUILDKITE_PARALLEL_JOB_COUNT=3",
            ),
        ] {
            let e = resolve(None, count, &env(&vars)).expect_err("refused");
            assert!(e.contains(says), "{vars:?}: {e}");
        }
    }

    #[test]
    fn the_flag_wins_over_the_environment_and_says_so() {
        let vars = env(&[("BUILDKITE_PARALLEL_JOB", "x")]);
        let r = resolve(Some(shard(1, 2)), None, &vars)
            .expect("ok")
            .expect("sharded");
        assert_eq!(r.shard, shard(1, 2));
        assert_eq!(r.from, "--shard, which overrides BUILDKITE_PARALLEL_JOB=x");
        let r = resolve(Some(shard(1, 2)), None, &env(&[]))
            .expect("ok")
            .expect("sharded");
        assert_eq!(r.from, "--shard");
    }
}
