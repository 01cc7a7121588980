//! Pure validation of the [`model`](crate::model): one `check_*` function per rule.
//!
//! The result is a [`Graph`] that `expand` can trust: every name resolves, every step has the
//! role it claims, and every step is reachable from the entry and can reach an exit. Checks
//! collect errors; a later phase runs only when the earlier ones passed, so one mistake does
//! not cascade into ten messages.

use crate::error::Errors;
use crate::error::call_site;
use crate::model::{Arm, Bound, Generics, Graph, Next, Role, RouteEnum, Step, Workflow};
use crate::naming::{RESERVED_STEPS, pascal_case};
use std::collections::{BTreeSet, HashMap};
use syn::Ident;
use syn::spanned::Spanned;

/// Runs every check. `None` means errors were reported.
pub(crate) fn workflow(wf: &Workflow, errors: &mut Errors) -> Option<Graph> {
    let index = check_names(wf, errors);
    check_generated_names(wf, errors);
    check_signatures(wf, errors);
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
    if !errors.is_empty() {
        return None;
    }
    for (i, role) in graph.roles.iter().enumerate() {
        if let Role::Branch { join, .. } = role {
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
    errors.is_empty().then_some(graph)
}

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

fn list<T: std::fmt::Display>(items: impl IntoIterator<Item = T>) -> String {
    items
        .into_iter()
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every step name is unique, no step takes the name `Completed` reserves, and every
/// `after`, route target and `exhausted` names a step.
fn check_names(wf: &Workflow, errors: &mut Errors) -> HashMap<String, usize> {
    let mut index = HashMap::new();
    let mut pascal: HashMap<String, &Ident> = HashMap::new();
    for (i, step) in wf.steps.iter().enumerate() {
        let name = step.name.to_string();
        let upper = pascal_case(&name);
        match pascal.get(&upper) {
            Some(other) if other.to_string() != name => errors.at(
                step.name.span(),
                format_args!(
                    "steps `{other}` and `{name}` both become `{upper}` in `FlowState`, `FlowError` and `state`; rename one of them"
                ),
            ),
            _ => {
                pascal.insert(upper, &step.name);
            }
        }
        if index.insert(name.clone(), i).is_some() {
            errors.at(
                step.name.span(),
                format_args!("duplicate step `{name}`: each step needs its own name"),
            );
        }
        if pascal_case(&name) == "Completed" {
            errors.at(
                step.name.span(),
                "the step name `completed` is reserved: `FlowState::Completed` holds a finished run's output; rename the step",
            );
        } else if let Some(reason) = RESERVED_STEPS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, r)| r)
        {
            errors.at(
                step.name.span(),
                format_args!("the step name `{name}` is reserved: {reason}; rename the step"),
            );
        }
    }
    for step in &wf.steps {
        for pred in &step.after {
            if !index.contains_key(&pred.to_string()) {
                unknown_step(wf, pred, "`after`", errors);
            } else if *pred == step.name {
                errors.at(
                    pred.span(),
                    format_args!(
                        "step `{pred}` cannot run after itself; to repeat a step, route back to it from a later step with `#[to({pred}, max = N, exhausted = step)]`"
                    ),
                );
            }
        }
        let mut seen = BTreeSet::new();
        for pred in &step.after {
            if !seen.insert(pred.to_string()) {
                errors.at(
                    pred.span(),
                    format_args!("`{pred}` is listed twice in `after`"),
                );
            }
        }
    }
    for route in &wf.enums {
        for variant in &route.variants {
            if !index.contains_key(&variant.to.to_string()) {
                let what = format!("route `{}::{}`", route.name, variant.name);
                unknown_step(wf, &variant.to, &what, errors);
            }
            if let Some(ex) = &variant.exhausted
                && !index.contains_key(&ex.to_string())
            {
                unknown_step(wf, ex, "`exhausted`", errors);
            }
        }
    }
    index
}

/// The user's items do not take the names of generated ones.
fn check_generated_names(wf: &Workflow, errors: &mut Errors) {
    let routed: Vec<String> = wf.enums.iter().map(|e| format!("{}Flow", e.name)).collect();
    let step_names: Vec<&Ident> = wf.steps.iter().map(|s| &s.name).collect();
    for ident in &wf.item_names {
        let name = ident.to_string();
        // A function shares the value namespace with the consts only: a step called `state`
        // does not clash with `mod state`.
        let clashes = if step_names.contains(&ident) {
            ["NAME", "MERMAID", "FINGERPRINT"].contains(&name.as_str())
        } else {
            crate::naming::GENERATED.contains(&name.as_str())
                || routed.contains(&name)
                // `mod tools` exists only when some step declares tools.
                || (name == "tools" && wf.steps.iter().any(|s| s.tools_span.is_some()))
        };
        if clashes {
            errors.at(
                ident.span(),
                format_args!(
                    "`{name}` is generated by `#[workflow]` in this module; rename this item"
                ),
            );
        }
    }
}

/// Each step is an `async fn` without `self` or generics, returns `Result<T, E>`, and takes
/// its data parameters by value.
fn check_signatures(wf: &Workflow, errors: &mut Errors) {
    for step in &wf.steps {
        let name = &step.name;
        if let Some(span) = step.not_async {
            errors.at(
                span,
                format_args!("step `{name}` must be an `async fn`: write `async fn {name}(…)`"),
            );
        }
        if let Some(span) = step.receiver {
            errors.at(
                span,
                format_args!("step `{name}` cannot take `self`: steps are free functions; reach shared things through `ctx.deps()`"),
            );
        }
        match &step.generics {
            Some((span, Generics::Types { over_ctx: Some(param) })) => {
                let deps = crate::syntax::type_text(&wf.deps);
                let ctx = if deps == "()" { "&Ctx".to_owned() } else { format!("&Ctx<{deps}>") };
                errors.at(
                    *span,
                    format_args!("step `{name}` cannot be generic over its context's `{param}`: the workflow's deps type is fixed by `#[workflow(deps = …)]` (here `{deps}`); remove the generics and take `ctx: {ctx}`"),
                );
            }
            Some((span, Generics::Types { over_ctx: None })) => errors.at(
                *span,
                format_args!("step `{name}` cannot be generic: the workflow's state stores each step's input and output, so their types must be concrete; remove the generics and name the types"),
            ),
            // A borrowed data parameter is reported there, with its owned form.
            Some((_, Generics::BorrowedData(_)))
                if step.inputs.iter().any(|i| i.reference.is_some()) => {}
            Some((span, Generics::BorrowedData(lifetime))) => errors.at(
                *span,
                format_args!("step `{name}` cannot take or return data that borrows `{lifetime}`: the runtime moves each step's input into it and may store it in a checkpoint; take owned data (`String`, not `&{lifetime} str`) and remove `{lifetime}`"),
            ),
            None => {}
        }
        if let Some(output) = &step.output
            && !looks_like_result(output)
        {
            errors.at(
                output.span(),
                format_args!(
                    "step `{name}` must return `Result<T, E>`, not `{}`: the next step receives `T`, and `E` fails the run as `FlowError::{}`",
                    quote::ToTokens::to_token_stream(output).to_string().replace(" < ", "<").replace(" >", ">").replace(" ,", ","),
                    pascal_case(&name.to_string())
                ),
            );
        }
        if let Some((error, missing)) = step
            .output
            .as_ref()
            .and_then(crate::syntax::unsendable_box_error)
        {
            errors.push(syn::Error::new_spanned(
                error,
                format_args!(
                    "step `{name}` fails with `{}`, which is not `{missing}`: a run's errors cross threads; write `Box<dyn std::error::Error + Send + Sync>`",
                    crate::syntax::type_text(error)
                ),
            ));
        }
        if step.output.is_none() {
            errors.at(
                name.span(),
                format_args!("step `{name}` must return `Result<T, E>`: the next step receives `T`, and `E` fails the run as `FlowError::{}`", pascal_case(&name.to_string())),
            );
        }
        for input in &step.inputs {
            if let Some(by_value) = &input.reference {
                errors.push(syn::Error::new_spanned(
                    &input.ty,
                    format_args!("step `{name}` must take its data by value: write `{by_value}`; the runtime moves each step's input into it (and may store it in a checkpoint); only the first parameter, the context `&Ctx<…>`, is a reference"),
                ));
            }
        }
        if let (Some(span), None) = (step.tools_span, &step.ctx) {
            let deps = quote::ToTokens::to_token_stream(&wf.deps)
                .to_string()
                .replace(' ', "");
            errors.at(
                span,
                format_args!(
                    "step `{name}` declares tools but takes no context to call them with: add a first parameter `ctx: &Ctx<{deps}, tools::{}>`",
                    pascal_case(&name.to_string())
                ),
            );
        }
        if let Some((_, span)) = step.workers {
            if step.entry.is_some() {
                errors.at(span, "the entry step cannot have `workers`: it takes the raw input once; fan out in the step after it");
            } else if step.after.len() > 1 {
                errors.at(
                    span,
                    "a join cannot have `workers`: it runs once with every branch's output",
                );
            }
        }
    }
}

/// Exactly one step is the entry; it has no `after`, and every other step has one.
fn check_entry(wf: &Workflow, errors: &mut Errors) -> Option<usize> {
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

/// `routes = Enum` names an enum of this module whose variants each carry one value, and
/// bounds come as a pair: `max = N` with `exhausted = step`. Returns each step's enum index.
fn check_routes(
    wf: &Workflow,
    index: &HashMap<String, usize>,
    errors: &mut Errors,
) -> Vec<Option<usize>> {
    let _ = index;
    let mut out = Vec::with_capacity(wf.steps.len());
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
        check_route_enum(&wf.enums[enum_index], errors);
        out.push(Some(enum_index));
    }
    out
}

fn check_route_enum(route: &RouteEnum, errors: &mut Errors) {
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
}

/// succ[p] = the steps that name `p` in `after`, in declaration order.
fn successors(wf: &Workflow, index: &HashMap<String, usize>) -> Vec<Vec<usize>> {
    let mut succ = vec![Vec::new(); wf.steps.len()];
    for (i, step) in wf.steps.iter().enumerate() {
        for pred in &step.after {
            succ[index[&pred.to_string()]].push(i);
        }
    }
    succ
}

/// An exit step ends the run: nothing runs after it.
fn check_exits(wf: &Workflow, graph: &Graph, succ: &[Vec<usize>], errors: &mut Errors) -> bool {
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
    for step in &wf.steps {
        for pred in &step.after {
            if wf.steps.iter().any(|s| &s.name == pred && s.exit.is_some()) {
                errors.at(
                    pred.span(),
                    format_args!("step `{}` runs after `{pred}`, but `{pred}` is an exit and ends the run; remove `exit` from `{pred}` or run `{}` after another step", step.name, step.name),
                );
            }
        }
    }
    true
}

/// A step without `routes`: an exit, a dead end (an error), one successor, or a fan-out whose
/// branches all lead to one join that waits for exactly them.
fn check_plain_step(
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
        &[s] if wf.steps[s].after.len() == 1 => Next::Step(s),
        // A lone step feeding a join: reported by `check_joins`.
        &[s] => Next::Step(s),
        branches => {
            let Some(join) = check_fork(wf, i, branches, errors) else {
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
fn is_branch(wf: &Workflow, succ: &[Vec<usize>], step: &Step) -> bool {
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
fn check_fork(
    wf: &Workflow,
    fork: usize,
    branches: &[usize],
    errors: &mut Errors,
) -> Option<usize> {
    let fork_name = &wf.steps[fork].name;
    // A join that also lists the fan-out step is not a branch: say so about the join.
    if let Some(&j) = branches.iter().find(|&&b| wf.steps[b].after.len() > 1) {
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
        let problem = if branch.after.len() > 1 {
            Some(format!(
                "it is itself a join; a branch runs after `{fork_name}` only"
            ))
        } else if branch.routes.is_some() {
            Some("it routes; a branch's only successor is the join".to_owned())
        } else if branch.exit.is_some() {
            Some("it is an exit; a branch's only successor is the join".to_owned())
        } else if successors.len() != 1 || wf.steps[successors[0]].after.len() < 2 {
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

/// Every step with `after = [a, b, …]` is the join of one fan-out.
fn check_joins(wf: &Workflow, graph: &Graph, errors: &mut Errors) {
    for (i, step) in wf.steps.iter().enumerate() {
        if step.after.len() > 1 && !matches!(graph.roles[i], Role::Join { .. }) {
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

/// A route step's variants lead to steps that run after it (a forward route), or back to a
/// step before it (a back-edge, forming a loop). Every step that runs after it has a variant.
fn check_route_step(
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
    for (v, variant) in route.variants.iter().enumerate() {
        let target = index[&variant.to.to_string()];
        let forward = wf.steps[target].after.contains(router);
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
        if forward && wf.steps[target].after.len() > 1 {
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

/// A back-edge goes to a step that takes one input: not into the middle of a fan-out.
fn check_back_edge_targets(wf: &Workflow, graph: &Graph, errors: &mut Errors) {
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

/// The entry, plain steps and branches take one data parameter; a join takes one per branch.
fn check_arity(wf: &Workflow, graph: &Graph, errors: &mut Errors) {
    for (i, step) in wf.steps.iter().enumerate() {
        if step.after.len() > 1 && !matches!(graph.roles[i], Role::Join { .. }) {
            // Reported by `check_joins`; its arity would only add noise.
            continue;
        }
        if step.event.is_some()
            && (!matches!(graph.roles[i], Role::Single) || step.workers.is_some())
        {
            // Reported by `check_waits`: this step cannot wait, whatever it takes.
            continue;
        }
        let (expected, what) = match &graph.roles[i] {
            Role::Entry => (1, "the entry takes the workflow's input".to_owned()),
            Role::Join { .. } => (
                step.after.len(),
                format!("a join takes one parameter per branch, in the order of `after = [{}]`", step.after.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")),
            ),
            Role::Single | Role::Branch { .. } if step.workers.is_some() => {
                (1, "a step with `workers` takes one item; the runtime calls it once per element of its predecessor's `Vec`".to_owned())
            }
            Role::Single if step.event.is_some() => {
                let ty = step.event.as_ref().map(|(t, _)| quote::ToTokens::to_token_stream(t).to_string().replace(' ', "")).unwrap_or_default();
                (2, format!("a step that waits for an event takes the output of the step before it, then the event: `(input: T, event: Event<{ty}>)`"))
            }
            Role::Single | Role::Branch { .. } => (1, "a step takes the output of the step before it".to_owned()),
        };
        if step.inputs.len() != expected {
            let ctx = if step.ctx.is_some() {
                "besides `ctx`, "
            } else {
                ""
            };
            errors.at(
                step.params_span,
                format_args!(
                    "step `{}` takes {} data parameter{}, {ctx}but needs {expected}: {what}{}",
                    step.name,
                    step.inputs.len(),
                    if step.inputs.len() == 1 { "" } else { "s" },
                    if step.inputs.len() > expected && step.ctx.is_none() {
                        "; the context, if any, comes first as `ctx: &Ctx<Deps>`"
                    } else {
                        ""
                    }
                ),
            );
        }
    }
}

/// `event = T` goes with `timeout = …`, on a step with one predecessor; `Sleep<T>` is returned
/// only where the run can stop between steps.
fn check_waits(wf: &Workflow, graph: &Graph, errors: &mut Errors) {
    for (i, step) in wf.steps.iter().enumerate() {
        let name = &step.name;
        match (&step.event, &step.timeout) {
            (Some((ty, span)), None) => {
                let ty = quote::ToTokens::to_token_stream(ty)
                    .to_string()
                    .replace(' ', "");
                errors.at(
                    *span,
                    format_args!(
                        "step `{name}` waits for event `{ty}` but says not how long: add `timeout = <a Duration>`, e.g. `timeout = Duration::from_secs(3600)`; the step then gets `Event::TimedOut` if nothing came"
                    ),
                );
            }
            (None, Some((_, span))) => errors.at(
                *span,
                format_args!(
                    "step `{name}` has a `timeout` but waits for no event: add `event = <the event's type>`, or remove `timeout`"
                ),
            ),
            _ => {}
        }
        if let Some((_, span)) = &step.event {
            let why = match graph.roles[i] {
                Role::Single if step.workers.is_some() => Some("a step with `workers`"),
                Role::Single => None,
                Role::Entry => Some("the entry step"),
                Role::Join { .. } => Some("a join"),
                Role::Branch { .. } => Some("a branch of a fan-out"),
            };
            if let Some(why) = why {
                errors.at(
                    *span,
                    format_args!(
                        "step `{name}` cannot wait for an event: it is {why}; wait in a step of its own, `#[step(after = …, event = …, timeout = …)]`"
                    ),
                );
            }
        }
        if step.sleep.is_some() {
            let why = match graph.roles[i] {
                _ if step.workers.is_some() => {
                    Some("it has `workers`: a run sleeps as a whole, not per item")
                }
                Role::Branch { .. } => {
                    Some("it is a branch of a fan-out: a run sleeps as a whole, not per branch")
                }
                _ if matches!(graph.next[i], Next::Exit) => {
                    Some("it ends the run: there is no next step to wait for")
                }
                _ => None,
            };
            if let Some(why) = why {
                let span = step.output.as_ref().map_or_else(call_site, Spanned::span);
                errors.at(
                    span,
                    format_args!("step `{name}` cannot return `Sleep`: {why}"),
                );
            }
        }
    }
}

/// Every step can be reached from the entry.
fn check_reachable(wf: &Workflow, graph: &Graph, errors: &mut Errors) {
    let edges = edges(graph);
    let mut seen = vec![false; wf.steps.len()];
    let mut stack = vec![graph.entry];
    while let Some(n) = stack.pop() {
        if !std::mem::replace(&mut seen[n], true) {
            stack.extend(&edges[n]);
        }
    }
    for (i, step) in wf.steps.iter().enumerate() {
        if !seen[i] {
            errors.at(
                step.name.span(),
                format_args!(
                    "step `{}` can never run: no path leads to it from the entry `{}`; its `after` steps only run after it (a loop needs a route back-edge)",
                    step.name, wf.steps[graph.entry].name
                ),
            );
        }
    }
}

/// Every step can reach an exit. A loop whose back-edge has no bound and whose steps have no
/// route out would run forever, so it is reported on the back-edge.
fn check_exit_paths(wf: &Workflow, graph: &Graph, errors: &mut Errors) {
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

/// Every edge of the graph, forward and back.
fn edges(graph: &Graph) -> Vec<Vec<usize>> {
    graph
        .next
        .iter()
        .enumerate()
        .map(|(i, next)| match next {
            Next::Exit => Vec::new(),
            Next::Step(s) | Next::Join { join: s } => vec![*s],
            Next::Fork { join } => match &graph.roles[*join] {
                Role::Join { branches, .. } => branches.clone(),
                _ => Vec::new(),
            },
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

/// Whether a return type can be a `Result<T, E>`: a path whose last segment mentions `Result`
/// (`Result`, `io::Result`, `anyhow::Result`). Anything else is reported here rather than as
/// one type error per use of the step's output.
fn looks_like_result(ty: &syn::Type) -> bool {
    match ty {
        syn::Type::Path(p) => p
            .path
            .segments
            .last()
            .is_some_and(|s| s.ident.to_string().contains("Result")),
        syn::Type::Group(g) => looks_like_result(&g.elem),
        syn::Type::Paren(p) => looks_like_result(&p.elem),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use crate::naming::{did_you_mean, pascal_case, snake_case};

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
}
