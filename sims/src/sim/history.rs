//! PLACEHOLDER: conversion of observed client events to the history format, and the checker call.

use super::cluster::Observed;
use crate::scenario::Scenario;

pub fn anomalies(_observed: &[Observed], _sc: &Scenario) -> Vec<String> {
    Vec::new()
}

pub fn write(
    _path: &std::path::Path,
    observed: &[Observed],
    _sc: &Scenario,
) -> std::io::Result<usize> {
    Ok(observed.len())
}
