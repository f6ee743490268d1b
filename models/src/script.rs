//! Scripted walks: follows a scenario through the model one step at a time, each step named by a
//! substring of its rendered action (the first enabled action, within the bounds, that contains
//! it). It takes only steps the model itself offers, so a script that reaches a violation shows
//! the violating state is reachable; one that gets stuck shows where the protocol blocks it. Used
//! for scenarios too deep for the exhaustive search to reach in minutes.

use crate::check::Action;
use crate::cluster::SeedlogModel;
use crate::properties::State;
use crate::render;
use stateright::{Model, Path};

/// Walks `steps` from the initial state. On a step nothing matches, the error names it and lists
/// what was enabled.
pub fn walk(model: &SeedlogModel, steps: &[&str]) -> Result<Path<State, Action>, String> {
    let init = model.init_states().remove(0);
    let mut state = init.clone();
    let mut taken = Vec::new();
    for (n, want) in steps.iter().enumerate() {
        let next: Vec<(Action, State)> = model
            .next_steps(&state)
            .into_iter()
            .filter(|(_, s)| Model::within_boundary(model, s))
            .collect();
        let Some((a, s)) = next
            .iter()
            .find(|(a, _)| render::action(model, a).contains(want))
        else {
            let enabled: Vec<String> = next
                .iter()
                .map(|(a, _)| format!("    {}", render::action(model, a)))
                .collect();
            return Err(format!(
                "step {}: nothing matches '{want}'; enabled:\n{}",
                n + 1,
                enabled.join("\n")
            ));
        };
        taken.push(a.clone());
        state = s.clone();
    }
    Path::from_actions(model, init, &taken).ok_or_else(|| "the path does not replay".to_string())
}
