//! Routes and loops: `routes = Enum` names a well-formed enum, each variant leads forward to a
//! successor or back to form a loop, and bounds come with `exhausted`.

use super::reaches;
use crate::error::{Errors, call_site};
use crate::model::{Arm, Bound, Graph, Next, Role, RouteEnum, Workflow};
use crate::naming::pascal_case;
use std::collections::{BTreeSet, HashMap};

/// `routes = Enum` names an enum of this module whose variants each carry one value, and
/// bounds come as a pair: `max = N` with `exhausted = step`. Returns each step's enum index.
pub(super) fn check_routes(
    wf: &Workflow,
    index: &HashMap<String, usize>,
    errors: &mut Errors,
) -> Vec<Option<usize>> {
    let _ = index;
    let mut out = Vec::with_capacity(wf.steps.len());
    // An enum shared by several routers is checked once.
    let mut checked: Vec<usize> = Vec::new();
    for step in &wf.steps {
        let Some(name) = &step.routes else {
            out.push(None);
            continue;
        };
        let Some(enum_index) = wf.enums.iter().position(|e| &e.name == name) else {
            // A struct (or any other item) of that name: say so rather than "not defined".
            if wf.item_names.contains(name) {
                errors.at(
                    name.span(),
                    format_args!(
                        "`routes = {name}`: `{name}` is not an enum; a step routes with an enum of module `{}`, one variant per next step: `enum {name} {{ Billing(Ticket) }}`",
                        wf.name
                    ),
                );
                out.push(None);
                continue;
            }
            errors.at(
                name.span(),
                format_args!(
                    "`routes = {name}`: no enum `{name}` is defined in module `{}`; define it there, one variant per next step, e.g. `enum {name} {{ Billing(Ticket) }}`",
                    wf.name
                ),
            );
            out.push(None);
            continue;
        };
        if step.exit.is_some() {
            errors.at(
                name.span(),
                format_args!(
                    "exit step `{}` cannot route: an exit ends the run; remove `exit` or `routes`",
                    step.name
                ),
            );
        }
        if !checked.contains(&enum_index) {
            checked.push(enum_index);
            check_route_enum(&wf.enums[enum_index], errors);
        }
        out.push(Some(enum_index));
    }
    out
}

/// A route enum is not generic, has at least one variant, each variant carries exactly one
/// value (the next step's input), and `max = N` comes with `exhausted = step`.
pub(super) fn check_route_enum(route: &RouteEnum, errors: &mut Errors) {
    if let Some(span) = route.generics {
        errors.at(
            span,
            format_args!("route enum `{}` cannot be generic", route.name),
        );
    }
    if route.variants.is_empty() {
        errors.at(
            route.name.span(),
            format_args!("route enum `{}` has no variants, so the run could never continue; add one per next step", route.name),
        );
    }
    for variant in &route.variants {
        if variant.payload.is_none() {
            errors.at(
                variant.shape_span,
                format_args!(
                    "route `{}::{}` must carry exactly one value, the next step's input: write `{}(Input)`",
                    route.name, variant.name, variant.name
                ),
            );
        }
        match (&variant.max, &variant.exhausted) {
            (Some((_, span)), None) => errors.at(
                *span,
                "`max = N` needs `exhausted = step`: the step that runs when the route is taken more than N times",
            ),
            (None, Some(ex)) => errors.at(ex.span(), "`exhausted = step` needs `max = N`: the bound it follows"),
            _ => {}
        }
    }
    // Names made from the variants: a route's step and loop counter (snake case), and a
    // bounded route's `…Exhausted` handle.
    for (i, variant) in route.variants.iter().enumerate() {
        let snake = crate::naming::variant_snake(&variant.name);
        if let Some(other) = route.variants[..i]
            .iter()
            .find(|o| crate::naming::variant_snake(&o.name) == snake)
        {
            errors.at(
                variant.name.span(),
                format_args!(
                    "routes `{0}::{1}` and `{0}::{2}` both become `{snake}` in snake case, which names a route's step and loop counter; rename one of them",
                    route.name, other.name, variant.name
                ),
            );
        }
        let name = syn::ext::IdentExt::unraw(&variant.name).to_string();
        if let Some(bounded) = route.variants.iter().find(|b| {
            b.max.is_some()
                && name
                    .strip_suffix("Exhausted")
                    .is_some_and(|base| syn::ext::IdentExt::unraw(&b.name) == base)
        }) {
            errors.at(
                variant.name.span(),
                format_args!(
                    "route `{0}::{1}` takes the name of the handle `{0}Flow::{1}` that the bound on `{0}::{2}` adds (where the run goes once `{2}` was taken `max` times); rename it",
                    route.name, variant.name, bounded.name
                ),
            );
        }
    }
}

/// A route step's variants lead to steps that run after it (a forward route), or back to a
/// step before it (a back-edge, forming a loop). Every step that runs after it has a variant.
pub(super) fn check_route_step(
    wf: &Workflow,
    r: usize,
    enum_index: usize,
    index: &HashMap<String, usize>,
    succ: &[Vec<usize>],
    counters: &mut Vec<(usize, usize)>,
    errors: &mut Errors,
) -> Next {
    let route = &wf.enums[enum_index];
    let router = &wf.steps[r].name;
    let mut arms = Vec::new();
    let mut covered = BTreeSet::new();
    let mut reported = Vec::new();
    for (v, variant) in route.variants.iter().enumerate() {
        let target = index[&variant.to.to_string()];
        // A loop's target that also lists the router (or another step after it) in `after`:
        // the route is its back-edge, whatever `after` says; `after` names what comes first.
        if reaches(succ, target, r)
            && back_in_after(
                wf,
                route,
                v,
                target,
                router,
                index,
                succ,
                &mut reported,
                errors,
            )
        {
            covered.insert(target);
        }
        let forward = wf.steps[target].after.contains(router)
            && !(reaches(succ, target, r) && reported.contains(&target));
        let back = !forward && reaches(succ, target, r);
        if !forward && !back {
            errors.at(
                variant.to.span(),
                format_args!(
                    "route `{}::{}` leads to `{}`, but `{}` does not run after `{router}`; add `after = {router}` to `{}`",
                    route.name, variant.name, variant.to, variant.to, variant.to
                ),
            );
            continue;
        }
        if forward && wf.steps[target].is_join() {
            errors.at(
                variant.to.span(),
                format_args!("route `{}::{}` leads to the join `{}`; a join waits for branches, so route to a plain step", route.name, variant.name, variant.to),
            );
        }
        if forward {
            covered.insert(target);
        }
        let bound = match (&variant.max, &variant.exhausted) {
            (Some((max, _)), Some(ex)) => {
                let exhausted = index[&ex.to_string()];
                if wf.steps[exhausted].after.contains(router) {
                    covered.insert(exhausted);
                } else if wf.steps[exhausted].entry.is_some() {
                    errors.at(
                        ex.span(),
                        format_args!("`exhausted = {ex}` names the entry step, which takes the raw input; name a step that runs after `{router}` and takes `LoopExhausted<…>`"),
                    );
                } else {
                    errors.at(
                        ex.span(),
                        format_args!("`exhausted = {ex}`: `{ex}` must run after `{router}`; add `after = {router}` to `{ex}`"),
                    );
                }
                if !back {
                    errors.at(
                        variant.max.as_ref().map_or_else(call_site, |m| m.1),
                        format_args!("`max` bounds a loop, but route `{}::{}` goes forward to `{}`, not back; remove `max` and `exhausted`", route.name, variant.name, variant.to),
                    );
                }
                counters.push((r, v));
                Some(Bound {
                    max: *max,
                    exhausted,
                    counter: counters.len() - 1,
                })
            }
            _ => None,
        };
        let counter = match &bound {
            Some(bound) => Some(bound.counter),
            None if back => {
                counters.push((r, v));
                Some(counters.len() - 1)
            }
            None => None,
        };
        arms.push(Arm {
            variant: v,
            target,
            back,
            bound,
            counter,
        });
    }
    for &s in &succ[r] {
        if !covered.contains(&s) {
            let step = &wf.steps[s];
            let pred = step
                .after
                .iter()
                .find(|p| *p == router)
                .unwrap_or(&step.name);
            errors.at(
                pred.span(),
                format_args!(
                    "`{}` runs after `{router}`, but `{router}` routes with `{}`, which has no variant leading to `{}`; add one, e.g. `{}(Input)` (or `#[to({})] Name(Input)`)",
                    step.name, route.name, step.name, pascal_case(&step.name.to_string()), step.name
                ),
            );
        }
    }
    Next::Route { enum_index, arms }
}

/// Route `v` of router `router` loops back to `target`, which also lists the router (or a
/// step that runs after `target`) in its `after` beside the steps before the loop: reported
/// once per target, on that name, with the `after` to keep. Returns whether `target` is (or
/// was already) reported.
#[allow(clippy::too_many_arguments)]
fn back_in_after(
    wf: &Workflow,
    route: &RouteEnum,
    v: usize,
    target: usize,
    router: &syn::Ident,
    index: &HashMap<String, usize>,
    succ: &[Vec<usize>],
    reported: &mut Vec<usize>,
    errors: &mut Errors,
) -> bool {
    if reported.contains(&target) {
        return true;
    }
    let step = &wf.steps[target];
    let later = |p: &syn::Ident| {
        p == router
            || index
                .get(&p.to_string())
                .is_some_and(|&p| p != target && reaches(succ, target, p))
    };
    let Some(wrong) = step.after.iter().find(|p| later(p)) else {
        return false;
    };
    let keep: Vec<String> = step
        .after
        .iter()
        .filter(|p| !later(p))
        .map(ToString::to_string)
        .collect();
    // Only a loop's head, which the run also enters from before the loop (`merge`): a target
    // entered only from the loop is another shape, with errors of its own.
    if keep.is_empty() {
        return false;
    }
    reported.push(target);
    let fix = match keep.as_slice() {
        [one] => format!("write `after = {one}`"),
        _ if step.converge.is_some() => format!("write `after = {}`", keep.join(" | ")),
        _ => format!("write `after = [{}]`", keep.join(", ")),
    };
    let variant = &route.variants[v];
    let name = &step.name;
    let to = if variant.max.is_some() {
        format!(" (`#[to({name}, …)]`)")
    } else if syn::ext::IdentExt::unraw(name) != crate::naming::variant_snake(&variant.name) {
        format!(" (`#[to({name})]`)")
    } else {
        String::new()
    };
    errors.at(
        wrong.span(),
        format_args!(
            "`{name}` lists `{wrong}` in `after`, but `{wrong}` runs after `{name}`: a loop's back-edge comes from the route `{}::{}`{to} alone; {fix}",
            route.name, variant.name
        ),
    );
    true
}

/// A back-edge goes to a step that takes one input: not into the middle of a fan-out.
pub(super) fn check_back_edge_targets(wf: &Workflow, graph: &Graph, errors: &mut Errors) {
    for next in &graph.next {
        let Next::Route { enum_index, arms } = next else {
            continue;
        };
        for arm in arms.iter().filter(|a| a.back) {
            if matches!(
                graph.roles[arm.target],
                Role::Branch { .. } | Role::Join { .. }
            ) {
                let variant = &wf.enums[*enum_index].variants[arm.variant];
                errors.at(
                    variant.to.span(),
                    format_args!("a loop cannot go back to `{}`, which is part of a fan-out; go back to the step before the fan-out", variant.to),
                );
            }
        }
    }
}
