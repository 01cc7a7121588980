//! Earlier outputs: `#[from(x)] name: &T` reads the output of a step `x` that has run before
//! this step on every path from the entry, so the value always exists when the step runs.

use super::{edges, forward_edges, reaches};
use crate::error::Errors;
use crate::model::{Graph, Next, Role, Workflow};
use std::collections::VecDeque;

/// Each `#[from(x)]` names a step that runs before this one on every path, other than the step
/// whose output is already this step's input.
pub(super) fn check_earlier(
    wf: &Workflow,
    graph: &Graph,
    before: &[Vec<bool>],
    errors: &mut Errors,
) {
    let forward = forward_edges(graph);
    for (s, step) in wf.steps.iter().enumerate() {
        for earlier in &step.earlier {
            let Some(x) = wf.steps.iter().position(|t| t.name == earlier.from) else {
                continue;
            };
            if x == s {
                continue;
            }
            let problem = if let Some(problem) = inside_branch(wf, graph, s, x) {
                Some(problem)
            } else if before[s][x] {
                already_input(wf, graph, s, x)
            } else {
                Some(never_before(wf, graph, &forward, before, s, x))
            };
            if let Some(problem) = problem {
                errors.at(earlier.from.span(), problem);
            }
        }
    }
}

/// `x` is a step of a branch before the branch's last step: the run keeps only what the next
/// step of the branch takes, so only that step reads it (as its input).
fn inside_branch(wf: &Workflow, graph: &Graph, s: usize, x: usize) -> Option<String> {
    let (_, chain, pos) = graph.chain(x)?;
    if pos + 1 == chain.len() || chain.get(pos + 1) == Some(&s) {
        return None;
    }
    let (step, from) = (&wf.steps[s].name, &wf.steps[x].name);
    let names: Vec<String> = chain
        .iter()
        .map(|&c| wf.steps[c].name.to_string())
        .collect();
    let next = &names[pos + 1];
    Some(format!(
        "`{from}` is a step inside the branch `{}` of a fan-out, and a run keeps a branch's outputs only until its next step has run: `{step}` cannot read it; `{next}` takes it as its input: hand on what `{step}` needs through `{next}`",
        names.join(" → ")
    ))
}

/// `x` runs before `s` on every path; it may still be the very value `s` takes as input.
fn already_input(wf: &Workflow, graph: &Graph, s: usize, x: usize) -> Option<String> {
    let (step, from) = (&wf.steps[s].name, &wf.steps[x].name);
    if let Role::Join { branches, .. } = &graph.roles[s]
        && let Some(slot) = branches.iter().position(|&b| b == x)
    {
        return Some(format!(
            "join `{step}` already takes branch `{from}`'s output as its parameter {}; remove this parameter",
            slot + 1
        ));
    }
    // Only when `x` is the one way into `s`: a loop back into `s` brings another input.
    let only_way_in = edges(graph).iter().filter(|tos| tos.contains(&s)).count() == 1;
    let direct = match &graph.next[x] {
        Next::Step(t) => *t == s && wf.steps[s].workers.is_none() && only_way_in,
        Next::Fork { .. } => {
            matches!(graph.roles[s], Role::Branch { .. }) && wf.steps[s].after.contains(from)
        }
        _ => false,
    };
    direct.then(|| {
        format!(
            "step `{step}` runs after `{from}` and already takes its output as its input; `#[from(…)]` reads the output of a step further back"
        )
    })
}

/// Why `x`'s output may not exist when `s` runs: `x` is a sibling branch, runs later, or some
/// path from the entry skips it (named).
fn never_before(
    wf: &Workflow,
    graph: &Graph,
    forward: &[Vec<usize>],
    before: &[Vec<bool>],
    s: usize,
    x: usize,
) -> String {
    let (step, from) = (&wf.steps[s].name, &wf.steps[x].name);
    if s == graph.entry {
        return format!(
            "the entry step `{step}` runs first, so no step's output exists yet when it runs; read `{from}`'s output in a step that runs after it"
        );
    }
    if let (
        Role::Branch { join, slot },
        Role::Branch {
            join: other,
            slot: theirs,
        },
    ) = (&graph.roles[s], &graph.roles[x])
        && join == other
        && slot != theirs
    {
        let join = &wf.steps[*join].name;
        return format!(
            "`{from}` is a sibling branch of `{step}`: they run at the same time, so `{from}`'s output does not exist yet; read it in the join `{join}`, which takes every branch's output"
        );
    }
    if before[x][s] || (reaches(forward, s, x) && !reaches(forward, x, s)) {
        return format!(
            "`{from}` runs after `{step}`, so its output does not exist yet when `{step}` runs; `#[from(…)]` reads the output of a step that runs before"
        );
    }
    let path = skipping_path(wf, graph, s, x)
        .map_or_else(String::new, |path| format!(" (`{path}` skips it)"));
    format!(
        "`{from}` does not run on every path to `{step}`{path}, so its output may not exist when `{step}` runs; read the output of a step that runs on every path, or hand the value on through the steps between"
    )
}

/// A path from the entry to `s` that does not pass through `x`, as `a → b → s`. A join is
/// reached only when none of its branches is `x` (all of them run).
fn skipping_path(wf: &Workflow, graph: &Graph, s: usize, x: usize) -> Option<String> {
    let edges = edges(graph);
    let mut parent: Vec<Option<usize>> = vec![None; edges.len()];
    let mut seen = vec![false; edges.len()];
    let mut queue = VecDeque::from([graph.entry]);
    seen[graph.entry] = true;
    seen[x] = true;
    while let Some(n) = queue.pop_front() {
        if n == s {
            let mut path = vec![&wf.steps[s].name];
            let mut at = s;
            while let Some(p) = parent[at] {
                path.push(&wf.steps[p].name);
                at = p;
            }
            path.reverse();
            return Some(
                path.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(" → "),
            );
        }
        for &t in &edges[n] {
            let blocked =
                matches!(&graph.roles[t], Role::Join { branches, .. } if branches.contains(&x));
            if !blocked && !std::mem::replace(&mut seen[t], true) {
                parent[t] = Some(n);
                queue.push_back(t);
            }
        }
    }
    None
}

/// Which earlier outputs each step's state carries: a liveness analysis over every edge. An
/// output is live before step `i` when `i` or a step reachable from `i` reads it before `x`
/// runs again; a join's state carries what its branches and the join still need (but not the
/// branches' own outputs, which it holds anyway). Only what is still needed is carried, so a
/// state never grows with the run's length.
pub(super) fn carried(wf: &Workflow, graph: &Graph) -> Vec<Vec<usize>> {
    let n = wf.steps.len();
    // Nothing read, nothing carried: the analysis is quadratic in the steps.
    if wf.steps.iter().all(|s| s.earlier.is_empty()) {
        return vec![Vec::new(); n];
    }
    let edges = edges(graph);
    let uses: Vec<Vec<usize>> = wf
        .steps
        .iter()
        .map(|step| {
            step.earlier
                .iter()
                .filter_map(|e| wf.steps.iter().position(|s| s.name == e.from))
                .collect()
        })
        .collect();
    let mut live = vec![vec![false; n]; n];
    let mut changed = true;
    while changed {
        changed = false;
        for i in (0..n).rev() {
            let mut set = vec![false; n];
            for &t in &edges[i] {
                for (x, bit) in set.iter_mut().enumerate() {
                    *bit |= live[t][x];
                }
            }
            set[i] = false;
            // Every branch of a fan-out runs before its join: each defines its output for
            // the join and what follows, whichever branch this is.
            if let Role::Branch { join, .. } = graph.roles[i] {
                for b in graph.chain_steps(join) {
                    set[b] = false;
                }
            }
            for &x in &uses[i] {
                set[x] = true;
            }
            if set != live[i] {
                live[i] = set;
                changed = true;
            }
        }
    }
    let members = |set: &[bool]| (0..n).filter(|&x| set[x]).collect::<Vec<_>>();
    (0..n)
        .map(|i| match &graph.roles[i] {
            Role::Branch { .. } => Vec::new(),
            Role::Join { .. } => {
                let mut set = live[i].clone();
                let steps = graph.chain_steps(i);
                for &b in &steps {
                    for (x, bit) in set.iter_mut().enumerate() {
                        *bit |= live[b][x];
                    }
                }
                for &b in &steps {
                    set[b] = false;
                }
                members(&set)
            }
            Role::Entry | Role::Single => members(&live[i]),
        })
        .collect()
}
