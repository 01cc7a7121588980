//! OpenTelemetry export of a run's spans over OTLP (feature `otel`): one trace per run, across
//! its resumes.
//!
//! The runtime makes `tracing` spans with stable names and attributes, with or without this
//! feature:
//!
//! | span | when | attributes |
//! | --- | --- | --- |
//! | `start {workflow}` | [`Engine::start`](crate::state::Engine::start) stores a run | `flow.run.id`, `flow.workflow` |
//! | `run {workflow}` | one turn of a run: from its start or a resume until it finishes, fails, parks or stops | `flow.run.id`, `flow.workflow`, `flow.run.outcome` (`finished`, `failed`, `parked`, `stopped`; `refused`: a new run whose id was taken, or whose context had run already, ran nothing) |
//! | `step {name}` | one attempt of a step (or a branch) | `flow.step`, `flow.step.attempt`, `flow.step.visit` (loop turns taken), `flow.step.item` (a `workers` item) |
//! | `tool` | a tool call, all its attempts | `tool`, `idempotency_key`, `attempt` |
//! | `chat {model}` | one attempt of a model call | `gen_ai.operation.name`, `gen_ai.provider.name`, `gen_ai.request.model`, `gen_ai.usage.input_tokens`, `gen_ai.usage.output_tokens`, … |
//! | `execute_tool {tool}` | an agent's tool call | `gen_ai.operation.name`, `gen_ai.tool.name`, `gen_ai.tool.call.id`, `gen_ai.tool.type` |
//!
//! A span that ends in an error has an error status (and, for the GenAI ones, `error.type`).
//! Messages sent to and received from a model are recorded only when the model client is told
//! to ([`OpenAiChat::record_content`](crate::model::OpenAiChat::record_content)).
//!
//! [`layer`] turns these spans into OpenTelemetry spans; [`otlp_provider`] exports them over
//! OTLP/HTTP; [`init_otlp`] does both for a program with no `tracing` subscriber of its own.
//!
//! **One run, one trace.** The span a run begins in (its `start` span under an engine, or its
//! first `run` span) gives the run its trace context: its W3C `traceparent` is stored with the
//! run's checkpoints ([`Checkpoint::trace`](crate::store::Checkpoint::trace)), and every later
//! turn's `run` span — after a park, a crash, a restart, in this process or another — is a
//! child of it. A run stored before it had a trace context gets one with its next turn. A turn
//! that a crash ends exports nothing (its spans never close); the next turn's spans still
//! join the run's trace.
//!
//! ```
//! use flow_runtime::otel::{self, opentelemetry_sdk::trace::SdkTracerProvider};
//! use flow_runtime::prelude::*;
//! use otel::tracing_subscriber::{self, layer::SubscriberExt as _};
//! # use otel::opentelemetry_sdk::{error::OTelSdkResult, trace::{SpanData, SpanExporter}};
//! use std::sync::PoisonError;
//! # use std::sync::{Arc, Mutex};
//! # /// Keeps the spans it is given, as a collector would.
//! # #[derive(Clone, Debug, Default)]
//! # struct Keep(Arc<Mutex<Vec<SpanData>>>);
//! # impl SpanExporter for Keep {
//! #     async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
//! #         self.0.lock().unwrap_or_else(PoisonError::into_inner).extend(batch);
//! #         Ok(())
//! #     }
//! # }
//!
//! #[workflow]
//! pub mod greet {
//!     #[step(entry, exit)]
//!     pub async fn hello(name: String) -> Result<String, std::convert::Infallible> {
//!         Ok(format!("hello, {name}"))
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // In a program: `otel::otlp_provider("http://127.0.0.1:4318/v1/traces", "my-service")?`,
//! // or `otel::init_otlp` for the provider and the subscriber at once.
//! let collector = Keep::default();
//! let provider = SdkTracerProvider::builder()
//!     .with_simple_exporter(collector.clone())
//!     .build();
//! let subscriber = tracing_subscriber::registry().with(otel::layer(&provider));
//! let _guard = tracing::subscriber::set_default(subscriber);
//!
//! greet::Workflow::run(&Ctx::new(()), "Ada".into()).await?;
//!
//! let spans = collector.0.lock().unwrap_or_else(PoisonError::into_inner).clone();
//! let names: Vec<_> = spans.iter().map(|s| s.name.as_ref()).collect();
//! assert_eq!(names, ["step hello", "run greet"]);
//! assert_eq!(spans[0].parent_span_id, spans[1].span_context.span_id());
//! # Ok(())
//! # }
//! ```

use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use std::collections::HashMap;
use std::fmt;
use tracing::Subscriber;
use tracing_opentelemetry::{OpenTelemetryLayer, OpenTelemetrySpanExt as _};
use tracing_subscriber::registry::LookupSpan;

/// opentelemetry, the API crate: the version [`layer`] and [`otlp_provider`] speak.
pub use opentelemetry;
/// opentelemetry-otlp, the OTLP exporter behind [`otlp_provider`].
pub use opentelemetry_otlp;
/// opentelemetry_sdk, the SDK whose [`SdkTracerProvider`] [`layer`] takes.
pub use opentelemetry_sdk;
/// tracing-opentelemetry, the `tracing` layer [`layer`] builds.
pub use tracing_opentelemetry;
/// tracing-subscriber, whose registry [`layer`] goes into.
pub use tracing_subscriber;

/// The name of the tracer flow's spans are recorded with (the instrumentation scope).
pub const TRACER: &str = "flow-runtime";

/// Why OpenTelemetry export could not be set up or shut down.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OtelError {
    /// The OTLP exporter could not be built.
    #[error(
        "cannot export traces to `{endpoint}`: {source}; give the collector's OTLP/HTTP traces \
         URL, such as `http://127.0.0.1:4318/v1/traces`"
    )]
    Exporter {
        /// The endpoint given, its user information and query masked (`http://…@host/v1/traces…`).
        endpoint: String,
        /// The exporter's error, the endpoint masked in it the same way.
        #[source]
        source: ExporterError,
    },
    /// [`init_otlp`] found a global `tracing` subscriber already installed.
    #[error(
        "a global tracing subscriber is already installed: add `flow_runtime::otel::layer(&provider)` \
         to it (with a provider from `otel::otlp_provider`) instead of calling `init_otlp`"
    )]
    SubscriberInstalled(#[source] tracing::subscriber::SetGlobalDefaultError),
    /// The spans still buffered could not all be exported at shutdown.
    #[error("could not export the last spans at shutdown: {0}")]
    Shutdown(#[source] opentelemetry_sdk::error::OTelSdkError),
}

/// Why the OTLP exporter could not be built: its message, with the endpoint's credentials (user
/// information, query) masked.
#[derive(Debug)]
pub struct ExporterError(String);

impl std::fmt::Display for ExporterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ExporterError {}

/// The `tracing` layer that records flow's spans (and every other `tracing` span) as
/// OpenTelemetry spans of `provider`, with the tracer [`TRACER`]. Add it to the program's
/// subscriber; keep `provider` to [`shutdown`](SdkTracerProvider::shutdown) it at exit, which
/// exports what is still buffered.
#[must_use]
pub fn layer<S>(provider: &SdkTracerProvider) -> OpenTelemetryLayer<S, SdkTracer>
where
    S: Subscriber + for<'span> LookupSpan<'span>,
{
    tracing_opentelemetry::layer().with_tracer(provider.tracer(TRACER))
}

/// A tracer provider that exports spans over OTLP/HTTP (protobuf) to `endpoint`, the
/// collector's traces URL (`http://127.0.0.1:4318/v1/traces` for a collector on this machine),
/// as service `service_name`.
///
/// Spans are exported in batches from a thread of the SDK's own, over a blocking HTTP client
/// on a thread of its own: no async runtime is needed, and a slow collector never holds up a
/// run. Call [`shutdown`](SdkTracerProvider::shutdown) before the program exits to export what
/// is still buffered (it blocks until then: call it outside async code, or from
/// `tokio::task::spawn_blocking`).
///
/// # Errors
///
/// [`OtelError::Exporter`]: `endpoint` is not a URL, or the HTTP client could not be built.
pub fn otlp_provider(endpoint: &str, service_name: &str) -> Result<SdkTracerProvider, OtelError> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_endpoint(endpoint)
        .build()
        .map_err(|source| {
            let shown = crate::tool::masked_url(endpoint);
            OtelError::Exporter {
                source: ExporterError(source.to_string().replace(endpoint, &shown)),
                endpoint: shown,
            }
        })?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(service_name.to_owned())
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}

/// Sets up OTLP export for a program without a `tracing` subscriber of its own: an
/// [`otlp_provider`] to `endpoint` and a global subscriber with its [`layer`]. Keep the guard
/// for as long as the program runs: dropping it (or [`OtelGuard::shutdown`]) exports what is
/// still buffered.
///
/// ```no_run
/// # fn main() -> Result<(), flow_runtime::otel::OtelError> {
/// let otel = flow_runtime::otel::init_otlp("http://127.0.0.1:4318/v1/traces", "bookings")?;
/// // … run workflows …
/// otel.shutdown()?;
/// # Ok(())
/// # }
/// ```
///
/// # Errors
///
/// [`OtelError::Exporter`] (see [`otlp_provider`]); [`OtelError::SubscriberInstalled`]: the
/// program has a global subscriber already; add [`layer`] to it instead.
pub fn init_otlp(endpoint: &str, service_name: &str) -> Result<OtelGuard, OtelError> {
    use tracing_subscriber::layer::SubscriberExt as _;
    let provider = otlp_provider(endpoint, service_name)?;
    let subscriber = tracing_subscriber::registry().with(layer(&provider));
    tracing::subscriber::set_global_default(subscriber).map_err(OtelError::SubscriberInstalled)?;
    Ok(OtelGuard {
        provider: Some(provider),
    })
}

/// Keeps the export [`init_otlp`] set up; dropped, it exports what is still buffered and stops.
#[must_use = "dropping the guard stops the export"]
pub struct OtelGuard {
    provider: Option<SdkTracerProvider>,
}

impl fmt::Debug for OtelGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtelGuard").finish_non_exhaustive()
    }
}

impl OtelGuard {
    /// The tracer provider, to [`force_flush`](SdkTracerProvider::force_flush) it.
    #[must_use]
    pub fn provider(&self) -> Option<&SdkTracerProvider> {
        self.provider.as_ref()
    }

    /// Exports what is still buffered and stops the export; blocks until then.
    ///
    /// # Errors
    ///
    /// [`OtelError::Shutdown`]: some spans could not be exported.
    pub fn shutdown(mut self) -> Result<(), OtelError> {
        match self.provider.take() {
            Some(provider) => provider.shutdown().map_err(OtelError::Shutdown),
            None => Ok(()),
        }
    }
}

impl Drop for OtelGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            // Nothing to tell at exit: the spans that could not be sent are lost either way.
            let _ = provider.shutdown();
        }
    }
}

/// The W3C `traceparent` of `span`, when an OpenTelemetry layer traces it (and starts it).
pub(crate) fn traceparent(span: &tracing::Span) -> Option<String> {
    let context = span.context();
    if !context.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&context, &mut carrier);
    carrier.remove("traceparent")
}

/// Makes `span` (not yet started) a child of the span whose W3C `traceparent` is
/// `traceparent`. A context that does not parse leaves `span` where it is, with a warning.
pub(crate) fn continue_trace(span: &tracing::Span, traceparent: &str) {
    let carrier = HashMap::from([("traceparent".to_owned(), traceparent.to_owned())]);
    let context = TraceContextPropagator::new().extract(&carrier);
    if !context.span().span_context().is_valid() {
        tracing::warn!(
            traceparent,
            "the run's stored trace context is not a W3C traceparent; this turn starts a trace of its own"
        );
        return;
    }
    // Fails only when no OpenTelemetry layer traces the span: then there is no trace to join.
    let _ = span.set_parent(context);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endpoint_that_is_not_a_url_is_refused_with_what_to_give() {
        let error = otlp_provider("collector:4318 /v1/traces", "svc").unwrap_err();
        let shown = error.to_string();
        assert!(matches!(error, OtelError::Exporter { .. }), "{error:?}");
        assert!(shown.contains("collector:4318 /v1/traces"), "{shown}");
        assert!(shown.contains("http://127.0.0.1:4318/v1/traces"), "{shown}");
    }

    #[test]
    fn an_endpoints_credentials_stay_out_of_the_error() {
        let error = otlp_provider(
            "http://ada:s3cret@collector:4318 /v1/traces?api_key=k3y",
            "svc",
        )
        .unwrap_err();
        let shown = format!("{error} {error:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("k3y"),
            "{shown}"
        );
        assert!(
            shown.contains("http://…@collector:4318 /v1/traces…"),
            "{shown}"
        );
    }

    #[test]
    fn a_traceparent_round_trips_through_a_span() {
        use tracing_subscriber::layer::SubscriberExt as _;
        let provider = SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry().with(layer(&provider));
        tracing::subscriber::with_default(subscriber, || {
            let stored = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
            let span = tracing::info_span!("child");
            continue_trace(&span, stored);
            let own = traceparent(&span).expect("a traced span has a context");
            assert!(
                own.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
                "the child is in the stored trace: {own}"
            );
            assert_ne!(own, stored, "with a span id of its own");

            // A stored context that does not parse leaves the span in a trace of its own.
            let span = tracing::info_span!("orphan");
            continue_trace(&span, "not a traceparent");
            let own = traceparent(&span).expect("a traced span has a context");
            assert!(!own.contains("4bf92f3577b34da6a3ce929d0e0e4736"), "{own}");
        });
        assert_eq!(traceparent(&tracing::Span::none()), None);
    }
}
