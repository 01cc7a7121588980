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
        // A step of a branch that fans out again: the outer fan-out's check reports it.
        _ if is_branch(wf, succ, step) => Next::Exit,
        branches => {
            // A fan-out the user meant as routes says so once, instead of what the fan-out
            // would need (a join, exclusive branches…).
            let mut fork_errors = Errors::default();
            let fork = check_fork(wf, i, branches, succ, &mut fork_errors);
            if let Err(error) = fork_errors.into_result() {
                match forgotten_routes(wf, i, branches) {
                    Some((span, message)) => errors.at(span, message),
                    None => errors.push(error),
                }
            }
            let Some((join, chains)) = fork else {
                return Next::Exit;
            };
            // Branches in the join's `after` order: slot `k` is the join's parameter `k`.
            let mut in_order = Vec::new();
            let mut ordered_chains = Vec::new();
            for pred in &wf.steps[join].after {
                let Some(chain) = chains
                    .iter()
                    .find(|c| c.last().is_some_and(|&t| &wf.steps[t].name == pred))
                else {
                    continue;
                };
                for &s in chain {
                    roles[s] = Role::Branch {
                        join,
                        slot: in_order.len(),
                    };
                }
                in_order.extend(chain.last().copied());
                ordered_chains.push(chain.clone());
            }
            roles[join] = Role::Join {
                fork: i,
                branches: in_order,
                chains: ordered_chains,
            };
            Next::Fork { join }
        }
    }
}

/// When fan-out step `fork` returns an enum of the module without `routes = …`, and the
/// variants' snake-case names are the branches: the user meant a router. The span of the
/// fork's name and the message saying so. Only asked when the fan-out is wrong as a fan-out,
/// so a valid fan-out that hands each branch an enum is never refused.
fn forgotten_routes(
    wf: &Workflow,
    fork: usize,
    branches: &[usize],
) -> Option<(proc_macro2::Span, String)> {
    let step = &wf.steps[fork];
    let crate::model::Returns::Result { ok, .. } = &step.returns else {
        return None;
    };
    let syn::Type::Path(path) = &**ok else {
        return None;
    };
    let returned = &path.path.segments.last()?.ident;
    let (name, variants) = wf.unrouted_enums.iter().find(|(e, _)| e == returned)?;
    let routes: Vec<String> = variants.iter().map(crate::naming::variant_snake).collect();
    let covered = branches
        .iter()
        .all(|&b| routes.contains(&syn::ext::IdentExt::unraw(&wf.steps[b].name).to_string()));
    if !covered {
        return None;
    }
    let names: Vec<String> = branches
        .iter()
        .map(|&b| format!("`{}`", wf.steps[b].name))
        .collect();
    let names = match names.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        None => String::new(),
    };
    let mut keys: Vec<String> = Vec::new();
    if step.entry.is_some() {
        keys.push("entry".to_owned());
    }
    if !step.after.is_empty() {
        let separator = if step.converge.is_some() { " | " } else { ", " };
        let after = step
            .after
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(separator);
        keys.push(if step.after.len() > 1 && step.converge.is_none() {
            format!("after = [{after}]")
        } else {
            format!("after = {after}")
        });
    }
    if step.tools_span.is_some() || step.event.is_some() || step.timeout.is_some() {
        keys.push("…".to_owned());
    }
    keys.push(format!("routes = {name}"));
    let fork_name = &step.name;
    Some((
        fork_name.span(),
        format!(
            "`{fork_name}` returns `{name}`, whose variants lead to {names}, but all of them run after it (a fan-out): to run only one of them, make `{fork_name}` a router: `#[step({})]`",
            keys.join(", ")
        ),
    ))
}

/// Whether `step` runs after a step that fans out, or is a later step of such a branch
/// (each step of the chain after the one before, its only successor).
pub(super) fn is_branch(wf: &Workflow, succ: &[Vec<usize>], step: &Step) -> bool {
    let mut step = step;
    // A chain is at most every step long; the bound also ends a cycle of single steps.
    for _ in 0..wf.steps.len() {
        let [pred] = step.after.as_slice() else {
            return false;
        };
        let Some(p) = wf.steps.iter().position(|s| &s.name == pred) else {
            return false;
        };
        let before = &wf.steps[p];
        if before.routes.is_some() || step.converge.is_some() {
            return false;
        }
        match succ[p].len() {
            0 => return false,
            1 => step = before,
            _ => return true,
        }
    }
    false
}

/// The branches of a fan-out are chains of plain steps (one step or more), each leading into
/// one common join, and the join waits for exactly the last step of each. Returns the join
/// and the branches' steps, first to last, in the fork's order.
pub(super) fn check_fork(
    wf: &Workflow,
    fork: usize,
    branches: &[usize],
    succ: &[Vec<usize>],
    errors: &mut Errors,
) -> Option<(usize, Vec<Vec<usize>>)> {
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
    let walks: Vec<Walk> = branches.iter().map(|&b| walk(wf, fork, b, succ)).collect();
    // What the join should list: the last step of every branch (as far as it was read).
    let tails: Vec<String> = walks
        .iter()
        .filter_map(|w| {
            w.suggest
                .or_else(|| w.chain.last().copied())
                .map(|t| wf.steps[t].name.to_string())
        })
        .collect();
    let mut join: Option<usize> = None;
    let mut ok = true;
    // Where each branch ends (join, last step), and the first branch to end elsewhere.
    let mut ends: Vec<(usize, usize)> = Vec::new();
    let mut apart: Option<usize> = None;
    let mut reported: Vec<usize> = Vec::new();
    for w in &walks {
        let end = match &w.end {
            Ok(end) => *end,
            Err((at, problem)) => {
                ok = false;
                if reported.contains(at) {
                    continue;
                }
                reported.push(*at);
                let at_step = &wf.steps[*at];
                let fix = format!(
                    "a branch is one step, or a chain of steps each `after` the one before, and the join lists the last step of every branch: `#[step(after = [{}])]`",
                    tails.join(", ")
                );
                if w.chain.len() == 1 {
                    errors.at(
                        at_step.name.span(),
                        format_args!(
                            "step `{}` is a branch of the fan-out after `{fork_name}` (branches: {names}), but {problem}; {fix}",
                            at_step.name
                        ),
                    );
                } else {
                    errors.at(
                        at_step.name.span(),
                        format_args!(
                            "step `{}` is a step of the branch `{}` of the fan-out after `{fork_name}`, but {problem}; {fix}",
                            at_step.name,
                            w.chain.iter().map(|&c| wf.steps[c].name.to_string()).collect::<Vec<_>>().join(" → "),
                        ),
                    );
                }
                continue;
            }
        };
        let last = w.chain[w.chain.len() - 1];
        ends.push((end, last));
        match join {
            None => join = Some(end),
            Some(j) if j == end => {}
            Some(_) => {
                ok = false;
                apart.get_or_insert(last);
            }
        }
    }
    // One error for the fan-out, at the first branch that leaves the first one's join, with
    // which branches lead where.
    if let Some(at) = apart {
        let mut joins: Vec<usize> = Vec::new();
        for &(end, _) in &ends {
            if !joins.contains(&end) {
                joins.push(end);
            }
        }
        let groups: Vec<String> = joins
            .iter()
            .map(|&j| {
                let tails: Vec<_> = ends
                    .iter()
                    .filter(|(end, _)| *end == j)
                    .map(|&(_, tail)| &wf.steps[tail].name)
                    .collect();
                let verb = if tails.len() == 1 { "leads" } else { "lead" };
                format!("{} {verb} to `{}`", list(&tails), wf.steps[j].name)
            })
            .collect();
        errors.at(
            wf.steps[at].name.span(),
            format_args!(
                "the branches after `{fork_name}` must meet in one join, but {}",
                groups.join(" and ")
            ),
        );
    }
    let join = join?;
    let expected: BTreeSet<String> = tails.iter().cloned().collect();
    let listed = &wf.steps[join].after;
    let got: BTreeSet<String> = listed.iter().map(ToString::to_string).collect();
    // A router listed beside the branches because one of its routes leads here: reported by
    // the routes' check ("leads to the join"), not again here.
    let join_name = &wf.steps[join].name;
    let routes_here = |name: &String| {
        wf.steps.iter().any(|s| {
            s.name == name.as_str()
                && s.routes.as_ref().is_some_and(|e| {
                    wf.enums
                        .iter()
                        .filter(|r| r.name == *e)
                        .flat_map(|r| &r.variants)
                        .any(|v| v.to == *join_name)
                })
        })
    };
    let only_routers_added = expected.is_subset(&got) && got.difference(&expected).all(routes_here);
    if ok && expected != got && !only_routers_added {
        // The fix keeps the user's order (it is the parameters' order), then adds what is missing.
        let mut fixed: Vec<String> = listed
            .iter()
            .map(ToString::to_string)
            .filter(|n| expected.contains(n))
            .collect();
        for name in &tails {
            if !fixed.contains(name) {
                fixed.push(name.clone());
            }
        }
        let span = wf.steps[join].after_span.unwrap_or_else(call_site);
        let what = if walks.iter().all(|w| w.chain.len() == 1) {
            "the branches"
        } else {
            "the last steps of the branches"
        };
        errors.at(
            span,
            format_args!(
                "join `{}` must wait for exactly {what} of the fan-out after `{fork_name}`: `after = [{}]`",
                wf.steps[join].name,
                fixed.join(", ")
            ),
        );
        ok = false;
    }
    ok.then(|| (join, walks.into_iter().map(|w| w.chain).collect()))
}

/// One branch of a fan-out, read from its first step along `after`: its steps, and the join
/// it leads to, or the step where it goes wrong and why.
struct Walk {
    chain: Vec<usize>,
    end: Result<usize, (usize, String)>,
    /// The step the join should list for this branch, when it is not the last step read (a
    /// join listing a branch's first step instead of its last).
    suggest: Option<usize>,
}

/// Follows branch `head` of the fan-out after `fork` step by step: each step must have exactly
/// one successor, the next step of the chain or the join, and no other role.
fn walk(wf: &Workflow, fork: usize, head: usize, succ: &[Vec<usize>]) -> Walk {
    let fork_name = &wf.steps[fork].name;
    let mut chain = vec![head];
    let mut at = head;
    loop {
        let step = &wf.steps[at];
        let first = at == head;
        let before = if first {
            format!("`{fork_name}`")
        } else {
            format!("`{}`", wf.steps[chain[chain.len() - 2]].name)
        };
        let problem = if step.converge.is_some() {
            Some(if first {
                format!(
                    "it also runs after {}; a branch runs after `{fork_name}` only",
                    list(step.after.iter().filter(|p| *p != fork_name))
                )
            } else {
                format!(
                    "it also runs after {}; a step of a branch runs after the step before it, {before}, only: give each branch its own steps",
                    list(step.after.iter().filter(|p| format!("`{p}`") != before))
                )
            })
        } else if step.after.len() > 1 {
            Some(format!(
                "it is itself a join; a branch runs after `{fork_name}` only"
            ))
        } else if step.routes.is_some() {
            Some("it routes; a branch's steps run one after another into the join: route in a step after the join".to_owned())
        } else if step.exit.is_some() {
            Some(
                "it is an exit; a branch ends in the join, and the run goes on after it".to_owned(),
            )
        } else {
            None
        };
        if let Some(problem) = problem {
            // A step shared by two branches: the join could take the steps before it.
            let suggest = (step.converge.is_some() && !first).then(|| chain[chain.len() - 2]);
            return Walk {
                chain,
                end: Err((at, problem)),
                suggest,
            };
        }
        let mut suggest = None;
        // A step that also runs after another branch is reported by that branch's walk, as a
        // step shared by two branches, when this one has another successor.
        let mut nexts = succ[at].clone();
        if nexts.len() > 1 {
            nexts.retain(|&s| wf.steps[s].converge.is_none());
            if nexts.is_empty() {
                nexts.clone_from(&succ[at]);
            }
        }
        let problem = match nexts.as_slice() {
            &[s] if wf.steps[s].is_join() => {
                return Walk {
                    chain,
                    end: Ok(s),
                    suggest: None,
                };
            }
            &[s] if s != fork && !chain.contains(&s) && chain.len() < wf.steps.len() => {
                chain.push(s);
                at = s;
                continue;
            }
            [] if first => {
                "a branch must be followed by exactly one step, the next step of the branch or the join that waits for every branch".to_owned()
            }
            [] => "nothing runs after it: the join must list it".to_owned(),
            &[_] => "its branch runs in a circle".to_owned(),
            several => {
                let joins: Vec<&Ident> = several
                    .iter()
                    .filter(|&&s| wf.steps[s].is_join())
                    .map(|&s| &wf.steps[s].name)
                    .collect();
                let rest: Vec<usize> = several
                    .iter()
                    .copied()
                    .filter(|&s| !wf.steps[s].is_join())
                    .collect();
                if joins.is_empty() {
                    format!(
                        "it fans out again (to {}); a branch is a chain of steps: fan out again after the join, or do that work inside one step",
                        list(several.iter().map(|&s| &wf.steps[s].name))
                    )
                } else {
                    // The join lists a step in the middle of the branch: suggest its end.
                    if let &[next] = rest.as_slice() {
                        suggest = Some(walk(wf, fork, next, succ).chain.last().copied().unwrap_or(next));
                    }
                    format!(
                        "both {} and the join {} run after it, so the join lists a step in the middle of this branch",
                        list(rest.iter().map(|&s| &wf.steps[s].name)),
                        list(joins)
                    )
                }
            }
        };
        return Walk {
            chain,
            end: Err((at, problem)),
            suggest,
        };
    }
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
    // Computed only for a join to report: `ran_before` is quadratic in the steps.
    let mut walks = None;
    for (i, step) in wf.steps.iter().enumerate() {
        if step.is_join() && !matches!(graph.roles[i], Role::Join { .. }) {
            let (before, forward) = walks
                .get_or_insert_with(|| (super::ran_before(graph), super::forward_edges(graph)));
            let preds: Vec<usize> = step
                .after
                .iter()
                .filter_map(|p| wf.steps.iter().position(|s| &s.name == p))
                .collect();
            let exclusive = preds.iter().enumerate().all(|(k, &a)| {
                preds[k + 1..]
                    .iter()
                    .all(|&b| super::converge::both_run(before, forward, a, b).is_none())
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
