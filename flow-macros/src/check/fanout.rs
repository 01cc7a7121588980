//! Fan-outs and joins: a step with several successors fans out to branches that meet in one join,
//! and every join waits for exactly the branches of one fan-out.

use super::{list, reaches};
use crate::error::{Errors, call_site};
use crate::model::{Graph, Next, Role, Step, Workflow};
use std::collections::BTreeSet;
use syn::Ident;

/// A step without `routes`: an exit, a dead end (an error), one successor, or a fan-out whose
/// branches all lead to one join that waits for exactly them.
pub(super) fn check_plain_step(
    wf: &Workflow,
    i: usize,
    succ: &[Vec<usize>],
    roles: &mut [Role],
    errors: &mut Errors,
    step: &Step,
) -> Next {
    let name = &step.name;
    match succ[i].as_slice() {
        [] if step.exit.is_some() => Next::Exit,
        // A branch of a fan-out that leads nowhere: `check_fork` says what it should lead to.
        [] if is_branch(wf, succ, step) => Next::Exit,
        [] => {
            errors.at(
                name.span(),
                format_args!("step `{name}` is a dead end: nothing runs after it and it is not an exit; mark it `#[step(exit, …)]` or add a step with `after = {name}`"),
            );
            Next::Exit
        }
        &[s] if !wf.steps[s].is_join() => Next::Step(s),
        // A lone step feeding a join: reported by `check_joins`.
        &[s] => Next::Step(s),
        branches => {
            let Some(join) = check_fork(wf, i, branches, succ, errors) else {
                return Next::Exit;
            };
            for (slot, pred) in wf.steps[join].after.iter().enumerate() {
                if let Some(b) = wf.steps.iter().position(|s| &s.name == pred) {
                    roles[b] = Role::Branch { join, slot };
                }
            }
            // Branches in the join's `after` order: slot `k` is the join's parameter `k`.
            let in_order = wf.steps[join]
                .after
                .iter()
                .filter_map(|p| wf.steps.iter().position(|s| &s.name == p))
                .collect();
            roles[join] = Role::Join {
                fork: i,
                branches: in_order,
            };
            Next::Fork { join }
        }
    }
}

/// Whether `step` runs after a step that fans out.
pub(super) fn is_branch(wf: &Workflow, succ: &[Vec<usize>], step: &Step) -> bool {
    match step.after.as_slice() {
        [pred] => wf
            .steps
            .iter()
            .position(|s| &s.name == pred)
            .is_some_and(|p| succ[p].len() > 1 && wf.steps[p].routes.is_none()),
        _ => false,
    }
}

/// The branches of a fan-out are plain steps, each followed only by one common join, and the
/// join waits for exactly these branches.
pub(super) fn check_fork(
    wf: &Workflow,
    fork: usize,
    branches: &[usize],
    succ: &[Vec<usize>],
    errors: &mut Errors,
) -> Option<usize> {
    let fork_name = &wf.steps[fork].name;
    // `after = fork | b` where `b` runs after `fork`: not a fan-out, but alternatives that
    // both run.
    for &c in branches {
        let step = &wf.steps[c];
        if step.converge.is_none() {
            continue;
        }
        if let Some(later) = step.after.iter().find(|p| {
            *p != fork_name
                && wf
                    .steps
                    .iter()
                    .position(|s| &s.name == *p)
                    .is_some_and(|p| reaches(succ, fork, p))
        }) {
            super::converge::report_both_run(step, fork_name, later, errors);
            return None;
        }
    }
    if let Some(c) = converging_on_branches(wf, branches) {
        let step = &wf.steps[c];
        errors.at(
            step.converge.unwrap_or_else(call_site),
            format_args!(
                "`after = {}` continues after whichever of them ran, but they are the branches of the fan-out after `{fork_name}` and all of them run; to wait for every branch, write `after = [{}]`",
                step.after.iter().map(ToString::to_string).collect::<Vec<_>>().join(" | "),
                step.after.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
            ),
        );
        return None;
    }
    // A join that also lists the fan-out step is not a branch: say so about the join.
    if let Some(&j) = branches.iter().find(|&&b| wf.steps[b].is_join()) {
        let join = &wf.steps[j];
        let real: Vec<String> = branches
            .iter()
            .filter(|&&b| b != j)
            .map(|&b| wf.steps[b].name.to_string())
            .collect();
        errors.at(
            join.after.iter().find(|p| *p == fork_name).map_or_else(call_site, Ident::span),
            format_args!(
                "join `{}` waits for `{fork_name}`, the fan-out step itself; a join waits only for the branches: `after = [{}]`; hand `{fork_name}`'s output on through a branch",
                join.name,
                real.join(", ")
            ),
        );
        return None;
    }
    let names = list(branches.iter().map(|&b| &wf.steps[b].name));
    let mut join: Option<usize> = None;
    let mut ok = true;
    for &b in branches {
        let branch = &wf.steps[b];
        let successors: Vec<usize> = (0..wf.steps.len())
            .filter(|&s| wf.steps[s].after.contains(&branch.name))
            .collect();
        let problem = if branch.converge.is_some() {
            Some(format!(
                "it also runs after {}; a branch runs after `{fork_name}` only",
                list(branch.after.iter().filter(|p| *p != fork_name))
            ))
        } else if branch.after.len() > 1 {
            Some(format!(
                "it is itself a join; a branch runs after `{fork_name}` only"
            ))
        } else if branch.routes.is_some() {
            Some("it routes; a branch's only successor is the join".to_owned())
        } else if branch.exit.is_some() {
            Some("it is an exit; a branch's only successor is the join".to_owned())
        } else if successors.len() != 1 || !wf.steps[successors[0]].is_join() {
            Some("a branch must be followed by exactly one step, the join that waits for every branch".to_owned())
        } else {
            None
        };
        if let Some(problem) = problem {
            errors.at(
                branch.name.span(),
                format_args!(
                    "step `{}` is a branch of the fan-out after `{fork_name}` (branches: {names}), but {problem}; put any chain of work inside the branch step and add `#[step(after = [{}])]` to the join",
                    branch.name,
                    branches.iter().map(|&b| wf.steps[b].name.to_string()).collect::<Vec<_>>().join(", ")
                ),
            );
            ok = false;
            continue;
        }
        match join {
            None => join = Some(successors[0]),
            Some(j) if j == successors[0] => {}
            Some(j) => {
                errors.at(
                    branch.name.span(),
                    format_args!(
                        "the branches after `{fork_name}` must meet in one join, but `{}` leads to `{}` and another leads to `{}`",
                        branch.name, wf.steps[successors[0]].name, wf.steps[j].name
                    ),
                );
                ok = false;
            }
        }
    }
    let join = join?;
    let expected: BTreeSet<String> = branches
        .iter()
        .map(|&b| wf.steps[b].name.to_string())
        .collect();
    let listed = &wf.steps[join].after;
    let got: BTreeSet<String> = listed.iter().map(ToString::to_string).collect();
    if ok && expected != got {
        // The fix keeps the user's order (it is the parameters' order), then adds what is missing.
        let mut fixed: Vec<String> = listed
            .iter()
            .map(ToString::to_string)
            .filter(|n| expected.contains(n))
            .collect();
        for &b in branches {
            let name = wf.steps[b].name.to_string();
            if !fixed.contains(&name) {
                fixed.push(name);
            }
        }
        let span = wf.steps[join].after_span.unwrap_or_else(call_site);
        errors.at(
            span,
            format_args!(
                "join `{}` must wait for exactly the branches of the fan-out after `{fork_name}`: `after = [{}]`",
                wf.steps[join].name,
                fixed.join(", ")
            ),
        );
        ok = false;
    }
    ok.then_some(join)
}

/// A step whose `after = a | b | …` lists exactly the branches of one fan-out: the user
/// wrote alternatives where every branch runs.
fn converging_on_branches(wf: &Workflow, branches: &[usize]) -> Option<usize> {
    let expected: BTreeSet<String> = branches
        .iter()
        .map(|&b| wf.steps[b].name.to_string())
        .collect();
    wf.steps.iter().position(|s| {
        s.converge.is_some()
            && s.after
                .iter()
                .map(ToString::to_string)
                .collect::<BTreeSet<_>>()
                == expected
    })
}

/// Every step with `after = [a, b, …]` is the join of one fan-out. Steps that never run in
/// one pass (routes) are not branches: a join of them would wait forever, so the message
/// offers `after = a | b`.
pub(super) fn check_joins(wf: &Workflow, graph: &Graph, errors: &mut Errors) {
    let before = super::ran_before(graph);
    let forward = super::forward_edges(graph);
    for (i, step) in wf.steps.iter().enumerate() {
        if step.is_join() && !matches!(graph.roles[i], Role::Join { .. }) {
            let preds: Vec<usize> = step
                .after
                .iter()
                .filter_map(|p| wf.steps.iter().position(|s| &s.name == p))
                .collect();
            let exclusive = preds.iter().enumerate().all(|(k, &a)| {
                preds[k + 1..]
                    .iter()
                    .all(|&b| super::converge::both_run(&before, &forward, a, b).is_none())
            });
            if exclusive {
                errors.at(
                    step.after_span.unwrap_or_else(call_site),
                    format_args!(
                        "`after = [{}]` makes `{}` a join that waits for all of them, but they never run in the same pass (they are alternatives, e.g. routes), so it would wait forever; to continue after whichever of them ran, write `after = {}`",
                        step.after.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
                        step.name,
                        step.after.iter().map(ToString::to_string).collect::<Vec<_>>().join(" | "),
                    ),
                );
                continue;
            }
            errors.at(
                step.after_span.unwrap_or_else(call_site),
                format_args!(
                    "join `{}` waits for {}, but they are not the branches of one fan-out; a join runs after steps that all run after one common step, and waits for every one of them",
                    step.name,
                    list(&step.after)
                ),
            );
        }
    }
}
