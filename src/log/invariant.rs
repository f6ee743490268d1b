//! A broken invariant: a state no correct run can reach. Every state machine checks its own after
//! each entry point (`check_invariants`), and a handler that meets an "impossible" error records
//! one instead of answering as if it were a client's mistake. Drivers stop the node there, so a
//! corrupted state is reported where it arose, not thousands of events later in a client history.

use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, thiserror::Error)]
pub struct Violation {
    /// A short stable name, e.g. `hw-within-log`; tests and reports match on it.
    pub rule: &'static str,
    /// The values that break it.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.rule, self.detail)
    }
}

impl Violation {
    pub fn new(rule: &'static str, detail: impl Into<String>) -> Self {
        Violation {
            rule,
            detail: detail.into(),
        }
    }

    /// Prefixes the detail with where it was found (`events-0: ...`).
    pub fn at(mut self, place: impl fmt::Display) -> Self {
        self.detail = format!("{place}: {}", self.detail);
        self
    }
}

/// `Ok` when `holds`; otherwise the violation of `rule`, its detail built only then.
pub fn ensure(holds: bool, rule: &'static str, detail: impl FnOnce() -> String) -> Checked {
    if holds {
        Ok(())
    } else {
        Err(Violation::new(rule, detail()))
    }
}

pub type Checked = Result<(), Violation>;
