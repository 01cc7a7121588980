//! Converging routes: `after = a | b` continues after whichever of `a` and `b` ran, so at most
//! one of them may run in a pass (routes of one router, a route and a loop's exit, routes of
//! routers downstream of one another). Steps that all run are a fan-out's branches, joined with
//! `after = [a, b]`.

use super::{forward_edges, reaches};
use crate::error::Errors;
use crate::model::{Graph, Step, Workflow};
use syn::Ident;

/// When `a` and `b` can both run in one pass: `(first, second)`, the one that runs first (on
/// every path, or along some forward path) and the other. `None` when they exclude each other.
pub(super) fn both_run(
    before: &[Vec<bool>],
    forward: &[Vec<usize>],
    a: usize,
    b: usize,
) -> Option<(usize, usize)> {
    if before[b][a] || reaches(forward, a, b) {
        Some((a, b))
    } else if before[a][b] || reaches(forward, b, a) {
        Some((b, a))
    } else {
        None
    }
}

/// The predecessors of a converging step exclude one another: otherwise the step would run
/// once after each of them, in one pass.
pub(super) fn check_converging(
    wf: &Workflow,
    graph: &Graph,
    before: &[Vec<bool>],
    errors: &mut Errors,
) {
    let forward = forward_edges(graph);
    let index = |name: &syn::Ident| wf.steps.iter().position(|s| &s.name == name);
    for step in wf.steps.iter().filter(|s| s.converge.is_some()) {
        let preds: Vec<usize> = step.after.iter().filter_map(index).collect();
        let mut blamed = vec![false; preds.len()];
        for (i, &a) in preds.iter().enumerate() {
            for (j, &b) in preds.iter().enumerate().skip(i + 1) {
                let Some((first, second)) = both_run(before, &forward, a, b) else {
                    continue;
                };
                let k = if second == b { j } else { i };
                if std::mem::replace(&mut blamed[k], true) {
                    continue;
                }
                report_both_run(step, &wf.steps[first].name, &wf.steps[second].name, errors);
            }
        }
    }
}

/// `step` converges on `first` and `second`, but `second` can run after `first` in one pass.
/// Spanned on `second` in its `after`.
pub(super) fn report_both_run(step: &Step, first: &Ident, second: &Ident, errors: &mut Errors) {
    let span = step
        .after
        .iter()
        .find(|p| *p == second)
        .map_or_else(|| second.span(), Ident::span);
    errors.at(
        span,
        format_args!(
            "`after = {}` continues after whichever of them ran, but `{second}` can run after `{first}` in the same pass, so `{}` would run twice; the steps of `after = a | b` must exclude each other (routes of one router, a route and a loop's exit): run `{}` after `{second}` alone",
            step.after.iter().map(ToString::to_string).collect::<Vec<_>>().join(" | "),
            step.name,
            step.name,
        ),
    );
}
