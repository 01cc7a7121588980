//! Pure validation of the [`model`](crate::model): one `check_*` function per rule, in one
//! file per theme (names, signatures, graph shape, fan-outs, routes, waits); this file runs
//! them in order and holds the graph walks they share.
//!
//! The result is a [`Graph`] that `expand` can trust: every name resolves, every step has the
//! role it claims, and every step is reachable from the entry and can reach an exit. Checks
//! collect errors; a later phase runs only when the earlier ones passed, so one mistake does
//! not cascade into ten messages.

mod converge;
mod earlier;
mod fanout;
mod graph;
mod names;
mod routes;
mod signature;
mod waits;

use self::converge::check_converging;
use self::earlier::check_earlier;
use self::fanout::{check_joins, check_plain_step};
use self::graph::{check_entry, check_exit_paths, check_exits, check_reachable};
use self::names::{check_generated_names, check_names};
use self::routes::{check_back_edge_targets, check_route_step, check_routes};
use self::signature::{check_arity, check_signatures};
use self::waits::{check_wait_params, check_waits};
use crate::error::Errors;
use crate::model::{Graph, Next, Role, Workflow};
use std::collections::HashMap;
use syn::Ident;

/// Runs every check. `None` means errors were reported.
pub(crate) fn workflow(wf: &Workflow, errors: &mut Errors) -> Option<Graph> {
    let index = check_names(wf, errors);
    check_generated_names(wf, errors);
    check_signatures(wf, errors);
    check_wait_params(wf, errors);
    let entry = check_entry(wf, errors);
    let route_enums = check_routes(wf, &index, errors);
    if !errors.is_empty() {
        return None;
    }
    let entry = entry?;
    let succ = successors(wf, &index);
    let mut graph = Graph {
        entry,
        exits: (0..wf.steps.len())
            .filter(|&i| wf.steps[i].exit.is_some())
            .collect(),
        roles: wf
            .steps
            .iter()
            .map(|s| {
                if s.entry.is_some() {
                    Role::Entry
                } else {
                    Role::Single
                }
            })
            .collect(),
        next: Vec::new(),
        counters: Vec::new(),
        carry: Vec::new(),
    };
    if !check_exits(wf, &graph, &succ, errors) {
        return None;
    }
    let mut next = Vec::with_capacity(wf.steps.len());
    for (i, step) in wf.steps.iter().enumerate() {
        next.push(match &route_enums[i] {
            Some(enum_index) => check_route_step(
                wf,
                i,
                *enum_index,
                &index,
                &succ,
                &mut graph.counters,
                errors,
            ),
            None => check_plain_step(wf, i, &succ, &mut graph.roles, errors, step),
        });
    }
    check_counter_names(wf, &graph.counters, &route_enums, errors);
    if !errors.is_empty() {
        return None;
    }
    // A branch's last step feeds its join; the steps before it keep `Step` of the next one.
    for (i, role) in graph.roles.iter().enumerate() {
        if let Role::Branch { join, .. } = role
            && let Role::Join { branches, .. } = &graph.roles[*join]
            && branches.contains(&i)
        {
            next[i] = Next::Join { join: *join };
        }
    }
    graph.next = next;
    check_joins(wf, &graph, errors);
    check_back_edge_targets(wf, &graph, errors);
    check_waits(wf, &graph, errors);
    check_arity(wf, &graph, errors);
    if !errors.is_empty() {
        return None;
    }
    check_reachable(wf, &graph, errors);
    if !errors.is_empty() {
        return None;
    }
    check_exit_paths(wf, &graph, errors);
    if !errors.is_empty() {
        return None;
    }
    // Only converging steps and earlier outputs need the (quadratic) must-run analysis.
    if wf
        .steps
        .iter()
        .any(|s| s.converge.is_some() || !s.earlier.is_empty())
    {
        let before = ran_before(&graph);
        check_converging(wf, &graph, &before, errors);
        check_earlier(wf, &graph, &before, errors);
    }
    if !errors.is_empty() {
        return None;
    }
    graph.carry = self::earlier::carried(wf, &graph);
    Some(graph)
}

/// Reports a name that is not a step, with a did-you-mean and the list of steps.
fn unknown_step(wf: &Workflow, name: &Ident, what: &str, errors: &mut Errors) {
    let names: Vec<String> = wf.steps.iter().map(|s| s.name.to_string()).collect();
    let hint =
        match crate::naming::did_you_mean(&name.to_string(), names.iter().map(String::as_str)) {
            Some(s) => format!("did you mean `{s}`? "),
            None => String::new(),
        };
    errors.at(
        name.span(),
        format_args!(
            "{what} names `{name}`, which is not a step of workflow `{}`; {hint}the steps are: {}",
            wf.name,
            list(names.iter())
        ),
    );
}

/// `a`, `b`, `c`: names in backticks for a message.
fn list<T: std::fmt::Display>(items: impl IntoIterator<Item = T>) -> String {
    items
        .into_iter()
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `succ[p]` = the steps that name `p` in `after`, in declaration order.
fn successors(wf: &Workflow, index: &HashMap<String, usize>) -> Vec<Vec<usize>> {
    let mut succ = vec![Vec::new(); wf.steps.len()];
    for (i, step) in wf.steps.iter().enumerate() {
        for pred in &step.after {
            succ[index[&pred.to_string()]].push(i);
        }
    }
    succ
}

/// Whether `to` can be reached from `from` along `after` edges.
fn reaches(succ: &[Vec<usize>], from: usize, to: usize) -> bool {
    let mut seen = vec![false; succ.len()];
    let mut stack = vec![from];
    while let Some(n) = stack.pop() {
        if n == to {
            return true;
        }
        if !std::mem::replace(&mut seen[n], true) {
            stack.extend(&succ[n]);
        }
    }
    false
}

/// `before[s][x]`: on every path from the entry to `s`, `x` has run before `s` starts, so its
/// output exists when `s` runs. Alternatives (routes, converging routes, loops) intersect; a
/// join unites its branches, which all run. A must-analysis to a fixpoint over every edge.
fn ran_before(graph: &Graph) -> Vec<Vec<bool>> {
    let n = graph.next.len();
    let edges = edges(graph);
    let mut preds = vec![Vec::new(); n];
    for (from, tos) in edges.iter().enumerate() {
        for &to in tos {
            preds[to].push(from);
        }
    }
    let mut before: Vec<Vec<bool>> = (0..n).map(|s| vec![s != graph.entry; n]).collect();
    let mut changed = true;
    while changed {
        changed = false;
        for s in (0..n).filter(|&s| s != graph.entry && !preds[s].is_empty()) {
            let join = matches!(graph.roles[s], Role::Join { .. });
            let mut set = vec![!join; n];
            for &p in &preds[s] {
                for (x, bit) in set.iter_mut().enumerate() {
                    let had = before[p][x] || x == p;
                    *bit = if join { *bit || had } else { *bit && had };
                }
            }
            if set != before[s] {
                before[s] = set;
                changed = true;
            }
        }
    }
    before
}

/// The edges taken within one pass: every edge but the loops' back-edges.
fn forward_edges(graph: &Graph) -> Vec<Vec<usize>> {
    let mut edges = edges(graph);
    for (i, next) in graph.next.iter().enumerate() {
        if let Next::Route { arms, .. } = next {
            edges[i] = arms
                .iter()
                .filter(|a| !a.back)
                .map(|a| a.target)
                .chain(
                    arms.iter()
                        .filter_map(|a| a.bound.as_ref().map(|b| b.exhausted)),
                )
                .collect();
        }
    }
    edges
}

/// Every edge of the graph, forward and back.
fn edges(graph: &Graph) -> Vec<Vec<usize>> {
    graph
        .next
        .iter()
        .enumerate()
        .map(|(i, next)| match next {
            Next::Exit => Vec::new(),
            Next::Step(s) | Next::Join { join: s } => vec![*s],
            Next::Fork { join } => graph.heads(*join),
            Next::Route { arms, .. } => {
                let _ = i;
                arms.iter()
                    .flat_map(|a| {
                        std::iter::once(a.target).chain(a.bound.as_ref().map(|b| b.exhausted))
                    })
                    .collect()
            }
        })
        .collect()
}

/// Each loop counter is a field of `Loops` named `{router}_{route}` in snake case: two routers'
/// counters must not share one (`a` with `BC`, `a_b` with `C`).
fn check_counter_names(
    wf: &Workflow,
    counters: &[(usize, usize)],
    route_enums: &[Option<usize>],
    errors: &mut Errors,
) {
    let mut seen: Vec<(String, usize, usize)> = Vec::new();
    for &(router, variant) in counters {
        let Some(route) = route_enums[router].map(|e| &wf.enums[e]) else {
            continue;
        };
        let step = syn::ext::IdentExt::unraw(&wf.steps[router].name).to_string();
        let v = &route.variants[variant].name;
        let name = format!("{step}_{}", crate::naming::variant_snake(v));
        if let Some(&(_, r, w)) = seen.iter().find(|(n, _, _)| *n == name) {
            let other = route_enums[r].map(|e| &wf.enums[e]);
            let other_v = other.map(|e| &e.variants[w].name);
            errors.at(
                v.span(),
                format_args!(
                    "the loop counter of route `{}::{v}` after `{}` would be `Loops::{name}`, like the one of `{}::{}` after `{}`; rename one of the routes or steps",
                    route.name,
                    wf.steps[router].name,
                    other.map_or_else(String::new, |e| e.name.to_string()),
                    other_v.map_or_else(String::new, ToString::to_string),
                    wf.steps[r].name,
                ),
            );
        } else {
            seen.push((name, router, variant));
        }
    }
}

#[cfg(test)]
mod shapes;

#[cfg(test)]
mod tests {
    use crate::naming::{did_you_mean, ident, pascal_case, snake_case, variant_of};
    use proc_macro2::Span;

    #[test]
    fn suggests_close_names_only() {
        let steps = ["validate", "search", "book", "confirm"];
        assert_eq!(did_you_mean("serach", steps), Some("search"));
        assert_eq!(did_you_mean("bok", steps), Some("book"));
        assert_eq!(did_you_mean("validte", steps), Some("validate"));
        assert_eq!(did_you_mean("refund", steps), None);
        assert_eq!(did_you_mean("x", steps), None);
    }

    #[test]
    fn case_conversions_round_trip_step_names() {
        assert_eq!(pascal_case("give_up"), "GiveUp");
        assert_eq!(pascal_case("search"), "Search");
        assert_eq!(pascal_case("r#match"), "Match");
        assert_eq!(snake_case("GiveUp"), "give_up");
        assert_eq!(snake_case("Billing"), "billing");
    }

    /// Names made from the user's never panic: a keyword comes back raw, what spells no
    /// identifier comes back `None`.
    #[test]
    fn identifiers_from_names_never_panic() {
        let text = |name: &str| ident(name, Span::call_site()).map(|i| i.to_string());
        assert_eq!(text("give_up").as_deref(), Some("give_up"));
        assert_eq!(text("return").as_deref(), Some("r#return"));
        for none in ["2fa", "", "self", "super", "Self", "_", "a-b"] {
            assert_eq!(text(none), None, "{none:?}");
        }
        let variant =
            |step: &str| variant_of(&syn::parse_str(step).unwrap()).map(|i| i.to_string());
        assert_eq!(variant("give_up").as_deref(), Some("GiveUp"));
        assert_eq!(variant("r#match").as_deref(), Some("Match"));
        assert_eq!(variant("_2fa"), None);
        assert_eq!(variant("__"), None);
        assert_eq!(variant("self_"), None);
    }
}
