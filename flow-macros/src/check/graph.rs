//! The shape of the graph: one entry, exits that end the run, every step reachable from the entry
//! and able to reach an exit.

use super::{edges, list};
use crate::error::{Errors, call_site};
use crate::model::{Graph, Next, Workflow};
use std::collections::HashSet;
use syn::Ident;

/// Exactly one step is the entry; it has no `after`, and every other step has one.
pub(super) fn check_entry(wf: &Workflow, errors: &mut Errors) -> Option<usize> {
    let entries: Vec<usize> = (0..wf.steps.len())
        .filter(|&i| wf.steps[i].entry.is_some())
        .collect();
    match entries.as_slice() {
        [] if wf.steps.is_empty() => errors.at(
            wf.name.span(),
            format_args!(
                "workflow `{}` has no steps: add `#[step(entry)] async fn …` for the first one",
                wf.name
            ),
        ),
        [] => {
            let candidates: Vec<&Ident> = wf
                .steps
                .iter()
                .filter(|s| s.after.is_empty())
                .map(|s| &s.name)
                .collect();
            let hint = match candidates.as_slice() {
                [] => String::new(),
                [one] => format!(" (`{one}` runs after no step: is it the entry?)"),
                many => format!(" (these run after no step: {})", list(many.iter())),
            };
            errors.at(
                wf.name.span(),
                format_args!(
                    "workflow `{}` has no entry step: mark the step that takes the raw input with `#[step(entry)]`{hint}",
                    wf.name
                ),
            );
            return None;
        }
        [_] => {}
        [first, rest @ ..] => {
            for &i in rest {
                errors.at(
                    wf.steps[i].entry.unwrap_or_else(call_site),
                    format_args!(
                        "workflow `{}` has several entry steps: `{}` and `{}`; a run starts at one step, so keep `entry` on one and give the others `after = …`",
                        wf.name, wf.steps[*first].name, wf.steps[i].name
                    ),
                );
            }
        }
    }
    for step in &wf.steps {
        match (step.entry, step.after.first()) {
            (Some(_), Some(pred)) => errors.at(
                pred.span(),
                format_args!("the entry step `{}` runs first, so it cannot run `after` another step; remove `after` or `entry`", step.name),
            ),
            (None, None) => errors.at(
                step.name.span(),
                format_args!(
                    "step `{}` does not say when it runs: add `after = step` (or `after = [a, b]` to join branches), or mark it `entry`",
                    step.name
                ),
            ),
            _ => {}
        }
    }
    (entries.len() == 1).then(|| entries[0])
}

/// An exit step ends the run: nothing runs after it.
pub(super) fn check_exits(
    wf: &Workflow,
    graph: &Graph,
    succ: &[Vec<usize>],
    errors: &mut Errors,
) -> bool {
    if graph.exits.is_empty() {
        let candidates: Vec<&Ident> = (0..wf.steps.len())
            .filter(|&i| succ[i].is_empty() && wf.steps[i].routes.is_none())
            .map(|i| &wf.steps[i].name)
            .collect();
        let hint = match candidates.as_slice() {
            [] => String::new(),
            [one] => format!(" (nothing runs after `{one}`: is it the exit?)"),
            many => format!(" (nothing runs after {})", list(many.iter())),
        };
        errors.at(
            wf.name.span(),
            format_args!("workflow `{}` has no exit step: mark the step whose output ends the run with `#[step(exit, …)]`{hint}", wf.name),
        );
        return false;
    }
    let exits: HashSet<String> = graph
        .exits
        .iter()
        .map(|&i| wf.steps[i].name.to_string())
        .collect();
    for step in &wf.steps {
        for pred in &step.after {
            if exits.contains(&pred.to_string()) {
                errors.at(
                    pred.span(),
                    format_args!("step `{}` runs after `{pred}`, but `{pred}` is an exit and ends the run; remove `exit` from `{pred}` or run `{}` after another step", step.name, step.name),
                );
            }
        }
    }
    true
}

/// Every step can be reached from the entry.
pub(super) fn check_reachable(wf: &Workflow, graph: &Graph, errors: &mut Errors) {
    let edges = edges(graph);
    let mut seen = vec![false; wf.steps.len()];
    let mut stack = vec![graph.entry];
    while let Some(n) = stack.pop() {
        if !std::mem::replace(&mut seen[n], true) {
            stack.extend(&edges[n]);
        }
    }
    // One error per group of unreachable steps that run after each other (one mistake each).
    let mut linked = vec![Vec::new(); wf.steps.len()];
    for (from, tos) in edges.iter().enumerate() {
        for &to in tos {
            if !seen[from] && !seen[to] {
                linked[from].push(to);
                linked[to].push(from);
            }
        }
    }
    let entry = &wf.steps[graph.entry].name;
    let mut grouped = vec![false; wf.steps.len()];
    for first in 0..wf.steps.len() {
        if seen[first] || grouped[first] {
            continue;
        }
        let mut group = Vec::new();
        let mut stack = vec![first];
        while let Some(n) = stack.pop() {
            if !std::mem::replace(&mut grouped[n], true) {
                group.push(n);
                stack.extend(&linked[n]);
            }
        }
        group.sort_unstable();
        let names: Vec<_> = group.iter().map(|&n| &wf.steps[n].name).collect();
        let at = names[0].span();
        if let [step] = names.as_slice() {
            errors.at(
                at,
                format_args!(
                    "step `{step}` can never run: no path leads to it from the entry `{entry}`; its `after` steps only run after it (a loop needs a route back-edge)"
                ),
            );
        } else {
            errors.at(
                at,
                format_args!(
                    "steps {} can never run: no path leads to them from the entry `{entry}`; their `after` steps only run after them (a loop needs a route back-edge)",
                    super::list(&names)
                ),
            );
        }
    }
}

/// Every step can reach an exit. A loop whose back-edge has no bound and whose steps have no
/// route out would run forever, so it is reported on the back-edge.
pub(super) fn check_exit_paths(wf: &Workflow, graph: &Graph, errors: &mut Errors) {
    let edges = edges(graph);
    let mut reverse = vec![Vec::new(); wf.steps.len()];
    for (from, tos) in edges.iter().enumerate() {
        for &to in tos {
            reverse[to].push(from);
        }
    }
    let mut ok = vec![false; wf.steps.len()];
    let mut stack = graph.exits.clone();
    while let Some(n) = stack.pop() {
        if !std::mem::replace(&mut ok[n], true) {
            stack.extend(&reverse[n]);
        }
    }
    let mut blamed = false;
    for (r, next) in graph.next.iter().enumerate() {
        let Next::Route { enum_index, arms } = next else {
            continue;
        };
        for arm in arms
            .iter()
            .filter(|a| a.back && a.bound.is_none() && !ok[r])
        {
            let route = &wf.enums[*enum_index];
            let variant = &route.variants[arm.variant];
            errors.at(
                variant.to.span(),
                format_args!(
                    "the loop `{}` → `{}` can never end: it has no bound and no route out to an exit; bound it with `#[to({}, max = N, exhausted = step)]`, or add a route that leaves the loop",
                    wf.steps[r].name, variant.to, variant.to
                ),
            );
            blamed = true;
        }
    }
    if !blamed {
        for (i, step) in wf.steps.iter().enumerate() {
            if !ok[i] {
                errors.at(
                    step.name.span(),
                    format_args!("step `{}` has no path to an exit step", step.name),
                );
            }
        }
    }
}
