//! Deterministic simulation harness (issue #3): not built yet.
