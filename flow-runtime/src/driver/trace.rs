//! The `tracing` spans of a run's turns and steps, with stable names and attributes (see
//! the `otel` module, feature `otel`, for their export and the run's trace context).
//!
//! - `run {workflow}`: one turn of a run (from its start or a resume until it finishes, fails,
//!   parks or stops): `flow.run.id`, `flow.workflow`, and `flow.run.outcome` when it ends
//!   (`finished`, `failed`, `parked`, `stopped`, or `refused`: a new run that never began, since
//!   its id was taken or its context had run already; its span has an error status too).
//! - `step {name}`: one attempt of one step (or branch): `flow.step`, `flow.step.attempt`,
//!   `flow.step.visit` (the loop back-edges the run had taken), `flow.step.item` (the item of
//!   a `workers` step).
//! - `start {workflow}`: [`Engine::start`](crate::state::Engine::start) storing a new run.
//!
//! A span that ends in an error has `otel.status_code = "error"` and the error's message as
//! `otel.status_description`, which OpenTelemetry layers turn into the span's status.
//!
//! With feature `otel`, the span a run began in is its trace: its `traceparent` is stored with
//! the run's checkpoints, and each later turn's `run` span is made its child, so that a run is
//! one trace across parks, crashes and restarts.

use crate::state::RunId;
use crate::tool::Visit;
use tracing::field::Empty;
use tracing::level_filters::LevelFilter;
use tracing::{Level, Span};

/// Whether an `info` span can reach a subscriber: one is installed (globally or for a scope)
/// and enables `info` somewhere. Until then the driver's spans are [`Span::none()`], which
/// cost nothing to enter, exit and drop. A disabled span is not free: with `tracing`'s `log`
/// feature (which sqlx turns on), it formats its fields for `log` when it is made, entered,
/// exited and dropped, about a fifth of a trivial run's instructions.
pub(crate) fn traced() -> bool {
    Level::INFO <= LevelFilter::current()
}

/// `tracing::info_span!(…)` when [`traced`], else [`Span::none()`]: the spans made outside the
/// driver (a tool call, a delivery, a model call, an agent's tool execution) follow its rule.
macro_rules! info_span_if_traced {
    ($($span:tt)*) => {
        if $crate::driver::trace::traced() {
            ::tracing::info_span!($($span)*)
        } else {
            ::tracing::Span::none()
        }
    };
}
pub(crate) use info_span_if_traced;

/// The span of one turn of run `run_id()` of `workflow` (read only when the span is made), and
/// the run's trace context to store with its checkpoints: `stored`, the context the run's
/// checkpoints carry, which the span continues; or, for a run without one, the span's own,
/// when an OpenTelemetry layer traces it.
pub(crate) fn run_span<'a>(
    workflow: &'static str,
    run_id: impl FnOnce() -> &'a RunId,
    stored: Option<&str>,
) -> (Span, Option<String>) {
    if !traced() {
        return (Span::none(), stored.map(str::to_owned));
    }
    // `otel.name` is how tracing-opentelemetry names a span whose name is not static.
    let span = tracing::info_span!(
        "run",
        otel.name = %format_args!("run {workflow}"),
        flow.run.id = %run_id(),
        flow.workflow = workflow,
        flow.run.outcome = Empty,
        otel.status_code = Empty,
        otel.status_description = Empty,
    );
    let trace = context(&span, stored);
    (span, trace)
}

/// The span of [`Engine::start`](crate::state::Engine::start) storing run `run_id` of
/// `workflow`, and the trace context it begins for the run (with feature `otel`, when an
/// OpenTelemetry layer traces it).
pub(crate) fn start_span(workflow: &'static str, run_id: &RunId) -> (Span, Option<String>) {
    if !traced() {
        return (Span::none(), None);
    }
    let span = tracing::info_span!(
        "start",
        otel.name = %format_args!("start {workflow}"),
        flow.run.id = %run_id,
        flow.workflow = workflow,
    );
    let trace = context(&span, None);
    (span, trace)
}

/// The trace context a run's checkpoints carry: `stored`, which `span` continues, or
/// `span`'s own.
#[cfg(feature = "otel")]
fn context(span: &Span, stored: Option<&str>) -> Option<String> {
    match stored {
        Some(stored) => {
            // A context that does not parse (written by hand, by another tracer) leaves the
            // span in a trace of its own; the stored one is kept, as the store keeps it.
            crate::otel::continue_trace(span, stored);
            Some(stored.to_owned())
        }
        None => crate::otel::traceparent(span),
    }
}

/// The trace context a run's checkpoints carry: without OpenTelemetry, the stored one, kept.
#[cfg(not(feature = "otel"))]
fn context(_span: &Span, stored: Option<&str>) -> Option<String> {
    stored.map(str::to_owned)
}

/// The span of one attempt of step `name`.
pub(crate) fn step_span(name: &'static str, attempt: u32, visit: Visit) -> Span {
    if !traced() {
        return Span::none();
    }
    let span = tracing::info_span!(
        "step",
        otel.name = %format_args!("step {name}"),
        flow.step = name,
        flow.step.attempt = attempt,
        flow.step.visit = visit.back_edges(),
        flow.step.item = Empty,
        otel.status_code = Empty,
        otel.status_description = Empty,
    );
    if let Some(item) = visit.item_index() {
        span.record("flow.step.item", item);
    }
    span
}

/// Marks `span` as ended in `error`, described by its message and its sources'.
pub(crate) fn failed(span: &Span, error: &dyn std::error::Error) {
    // The code first: tracing-opentelemetry reads a description as an error status with it.
    span.record("otel.status_code", "error");
    span.record(
        "otel.status_description",
        crate::state::error_chain(error).as_str(),
    );
}

/// Records how a run's turn ended on its span.
pub(crate) fn ended(span: &Span, outcome: &'static str) {
    span.record("flow.run.outcome", outcome);
}
