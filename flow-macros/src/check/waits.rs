//! Waits: `event = T` with `timeout` on a step with one predecessor, and `Sleep<T>` only where the
//! run can stop between steps.

use crate::error::{Errors, call_site};
use crate::model::{Graph, Next, Role, Workflow};
use syn::spanned::Spanned;

/// `event = T` goes with `timeout = …`, on a step with one predecessor; `Sleep<T>` is returned
/// only where the run can stop between steps.
pub(super) fn check_waits(wf: &Workflow, graph: &Graph, errors: &mut Errors) {
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
