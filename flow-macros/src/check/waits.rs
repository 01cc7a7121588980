//! Waits: `event = T` with `timeout` on a step with one predecessor, and `Sleep<T>` only where the
//! run can stop between steps.

use crate::error::{Errors, call_site};
use crate::model::{Graph, Next, Role, Workflow};
use crate::syntax::{generic_args, type_text};
use syn::spanned::Spanned;

/// `event = T` goes with `timeout = …`, on a step with one predecessor; `Sleep<T>` is returned
/// only where the run can stop between steps.
pub(super) fn check_waits(wf: &Workflow, graph: &Graph, errors: &mut Errors) {
    for (i, step) in wf.steps.iter().enumerate() {
        let name = &step.name;
        check_approvals(step, errors);
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
            (None, Some((_, span))) if step.approve_span.is_none() => errors.at(
                *span,
                format_args!(
                    "step `{name}` has a `timeout` but waits for no event and no approval: add `event = <the event's type>` or `approve = [<a tool>]`, or remove `timeout`"
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

/// A step's parameters as waits hand them over: a step after a sleep takes the `T` of the
/// `Sleep<T>` returned before it (the runtime unwraps it), and a step that waits for an event
/// takes its input first, then `Event<T>`. Read from the types as written, before the graph:
/// either mistake would otherwise be two type errors, one naming a private helper.
pub(super) fn check_wait_params(wf: &Workflow, errors: &mut Errors) {
    for step in &wf.steps {
        let name = &step.name;
        for input in &step.inputs {
            if let Some([inner]) = generic_args(&input.ty, "Sleep").as_deref() {
                errors.push(syn::Error::new_spanned(
                    &input.ty,
                    format_args!(
                        "step `{name}` takes `{}`, but `Sleep` is only a return type: the step after a sleep takes `{}`; write `{}: {}`",
                        type_text(&input.ty),
                        type_text(inner),
                        input.pat,
                        type_text(inner),
                    ),
                ));
            }
        }
        let is_event = |ty: &syn::Type| generic_args(ty, "Event").is_some();
        if step.event.is_some()
            && step.inputs.last().is_some_and(|i| !is_event(&i.ty))
            && let Some(event) = step.inputs.iter().find(|i| is_event(&i.ty))
        {
            let (events, data): (Vec<_>, Vec<_>) =
                step.inputs.iter().partition(|i| is_event(&i.ty));
            let order: Vec<String> = data
                .into_iter()
                .chain(events)
                .map(|i| format!("{}: {}", i.pat, type_text(&i.ty)))
                .collect();
            errors.push(syn::Error::new_spanned(
                &event.ty,
                format_args!(
                    "step `{name}` takes its event before its input, but the event comes last: `({})`",
                    order.join(", ")
                ),
            ));
        }
    }
}

/// `approve = [T]`: each `T` is among the step's `tools`, and the step says how long a request
/// for an approval waits (`timeout`).
fn check_approvals(step: &crate::model::Step, errors: &mut Errors) {
    let Some(approve_span) = step.approve_span else {
        return;
    };
    let name = &step.name;
    let text = |ty: &syn::Type| {
        quote::ToTokens::to_token_stream(ty)
            .to_string()
            .replace(' ', "")
    };
    let declared: Vec<String> = step.tools.iter().map(text).collect();
    for ty in &step.approve {
        let tool = text(ty);
        if !declared.contains(&tool) {
            errors.at(
                ty.span(),
                format_args!(
                    "tool `{tool}` needs approval in step `{name}` but is not in its `tools = [...]`: a step approves only tools it may call; list it there too, `tools = [..., {tool}], approve = [{tool}]`"
                ),
            );
        }
    }
    if step.timeout.is_none() {
        errors.at(
            approve_span,
            format_args!(
                "step `{name}` asks for approvals but says not how long they wait: add `timeout = <a Duration>`, e.g. `timeout = Duration::from_secs(86_400)`; an undecided call then times out (`Denied::TimedOut`)"
            ),
        );
    }
}
