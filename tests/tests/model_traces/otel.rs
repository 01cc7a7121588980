//! OpenTelemetry export (feature `otel`): a run is one trace across a crash and a resume by a
//! new engine on the same SQLite file (run → steps → tool and model calls, the resumed turn
//! under the same trace), failures are error statuses, and the OTLP exporter sends the spans to
//! a real collector on loopback.

use super::{City, Warmest, Weather};
use axum::body::Bytes;
use axum::http::{StatusCode, header};
use flow_runtime::agent::AgentError;
use flow_runtime::model::OpenAiChat;
use flow_runtime::model::scripted::{Reply, Script, ScriptedModel};
use flow_runtime::otel;
use flow_runtime::prelude::*;
use flow_runtime::state::{Engine, RunResult, Setup};
use flow_runtime::store::{MemoryStore, RunState};
use flow_runtime::tool::{CallError, PolicyTool, ToolPolicy};
use flow_tests::store::TempDb;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use otel::opentelemetry::trace::{SpanId, Status};
use prost::Message as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::Notify;
use tracing::subscriber::DefaultGuard;
use tracing_subscriber::layer::SubscriberExt as _;

/// Sends this thread's spans to `provider` until the guard drops. A current-thread runtime
/// (`#[tokio::test]`'s) runs the engine's tasks here too.
fn trace_into(provider: &SdkTracerProvider) -> DefaultGuard {
    tracing::subscriber::set_default(tracing_subscriber::registry().with(otel::layer(provider)))
}

/// A tracer provider that keeps every finished span in memory, and the exporter to read them
/// from.
fn in_memory() -> (InMemorySpanExporter, SdkTracerProvider) {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    (exporter, provider)
}

/// A span's attribute, as text.
fn attr(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.as_str().into_owned())
}

/// The spans named `name`.
fn named<'a>(spans: &'a [SpanData], name: &str) -> Vec<&'a SpanData> {
    spans.iter().filter(|s| s.name == name).collect()
}

/// The two `run` spans named `name` of a run that took two turns: the first, the trace's root,
/// and the resumed one, its child (it continued the stored trace context).
fn two_turns<'a>(spans: &'a [SpanData], name: &str) -> (&'a SpanData, &'a SpanData) {
    let runs = named(spans, name);
    assert_eq!(runs.len(), 2, "one `run` span per turn");
    let (first, second) = if runs[0].parent_span_id == SpanId::INVALID {
        (runs[0], runs[1])
    } else {
        (runs[1], runs[0])
    };
    assert_eq!(
        first.parent_span_id,
        SpanId::INVALID,
        "the first turn is the root"
    );
    assert_eq!(
        second.parent_span_id,
        first.span_context.span_id(),
        "the resumed turn continues the stored trace context"
    );
    (first, second)
}

/// The nearest `step` span above `span`.
fn step_of<'a>(spans: &'a [SpanData], span: &SpanData) -> Option<&'a SpanData> {
    let mut parent = span.parent_span_id;
    while parent != SpanId::INVALID {
        let up = spans.iter().find(|s| s.span_context.span_id() == parent)?;
        if up.name.starts_with("step ") {
            return Some(up);
        }
        parent = up.parent_span_id;
    }
    None
}

// ---------------------------------------------------------------------------------------------
// One trace across a crash and a resume.

/// Books a hotel. Its first call says so and then never returns: the process "dies" there.
pub struct Book {
    armed: Arc<AtomicBool>,
    entered: Arc<Notify>,
}

impl Tool for Book {
    type Input = City;
    type Output = String;
    const NAME: &'static str = "book";
    const DESCRIPTION: &'static str = "Books a hotel in a city.";

    async fn call(&self, _: &ToolCtx, input: City) -> Result<String, ToolError> {
        if self.armed.swap(false, Ordering::SeqCst) {
            self.entered.notify_one();
            std::future::pending::<()>().await;
        }
        Ok(format!("booked in {}", input.city))
    }
}

#[workflow]
pub mod trip {
    use super::*;

    #[step(entry, tools = [Weather])]
    pub async fn check(ctx: &Ctx<(), tools::Check>, city: String) -> Result<String, CallError> {
        ctx.call::<Weather>(City { city: city.clone() }).await?;
        Ok(format!("Book a hotel in {city} if it is warm."))
    }

    #[step(after = check, exit, tools = [Weather, Book])]
    pub async fn plan(ctx: &Ctx<(), tools::Plan>, task: String) -> Result<Warmest, AgentError> {
        ctx.agent::<OpenAiChat>().run(task).await
    }
}

pub(crate) async fn a_run_is_one_trace_across_a_crash_and_a_resume() {
    let server = ScriptedModel::start(Script::new([
        Reply::tool_call("weather", serde_json::json!({ "city": "Oslo" })),
        Reply::tool_call("book", serde_json::json!({ "city": "Oslo" })),
        Reply::answer(serde_json::json!({ "city": "Oslo" })),
    ]))
    .await
    .unwrap();
    let armed = Arc::new(AtomicBool::new(true));
    let entered = Arc::new(Notify::new());
    let tools = Toolbox::new()
        .with(PolicyTool::new(Weather, ToolPolicy::default()))
        .with(PolicyTool::new(
            Book {
                armed: Arc::clone(&armed),
                entered: Arc::clone(&entered),
            },
            ToolPolicy::default(),
        ))
        .with(PolicyTool::new(
            OpenAiChat::new(&server.openai_url(), "scripted-gpt").unwrap(),
            ToolPolicy::default(),
        ));
    let (exporter, provider) = in_memory();
    let guard = trace_into(&provider);
    let db = TempDb::new();

    // Turn 1: `check`, then `plan` until the model's second tool call, where the process
    // "dies": the run's future is dropped mid-call, with its store.
    {
        let ctx = Ctx::builder(())
            .run_id("trip-1")
            .store(db.open())
            .tools(tools.clone())
            .build();
        let run = trip::Workflow::run_or_resume(&ctx, "Oslo".into());
        tokio::select! {
            result = run => panic!("the run was to hang in `book`: {result:?}"),
            () = entered.notified() => {}
        }
    }

    // Turn 2: a new engine on the same file resumes the run at `plan`, attempt 2.
    let store = db.open();
    let engine = Engine::builder(Arc::clone(&store))
        .register::<trip::Workflow>(Setup::new(()).tools(tools))
        .build();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (report, result) = tokio::join!(
        engine.run_until(async {
            let _ = stopped.await;
        }),
        async {
            let result = engine
                .wait_for::<trip::Workflow>(&"trip-1".into(), Duration::from_secs(30))
                .await;
            let _ = stop.send(());
            result
        },
    );
    drop(guard);
    assert_eq!(report.unwrap().finished, 1);
    assert_eq!(
        result.unwrap(),
        RunResult::Finished(Warmest {
            city: "Oslo".into()
        })
    );
    assert_eq!(
        server.requests().len(),
        3,
        "each model call once: the journal replays the first turn's"
    );

    let spans = exporter.get_finished_spans().unwrap();
    let ours: Vec<&SpanData> = spans
        .iter()
        .filter(|s| {
            ["run ", "step ", "chat ", "execute_tool ", "tool"]
                .iter()
                .any(|p| s.name.starts_with(p))
        })
        .collect();
    let trace = ours[0].span_context.trace_id();
    for span in &ours {
        assert_eq!(
            span.span_context.trace_id(),
            trace,
            "`{}` is in another trace than the run's",
            span.name
        );
    }

    // The turns: the first is the trace's root, the resumed one its child.
    let (first, second) = two_turns(&spans, "run trip");
    for run in [first, second] {
        assert_eq!(attr(run, "flow.run.id").as_deref(), Some("trip-1"));
        assert_eq!(attr(run, "flow.workflow").as_deref(), Some("trip"));
    }
    assert_eq!(
        attr(second, "flow.run.outcome").as_deref(),
        Some("finished")
    );

    // The steps, each under its turn, with its attempt.
    let steps: Vec<(String, String, SpanId)> = spans
        .iter()
        .filter(|s| s.name.starts_with("step "))
        .map(|s| {
            (
                attr(s, "flow.step").unwrap(),
                attr(s, "flow.step.attempt").unwrap(),
                s.parent_span_id,
            )
        })
        .collect();
    let (one, two) = (first.span_context.span_id(), second.span_context.span_id());
    for expected in [
        ("check".to_owned(), "1".to_owned(), one),
        ("plan".to_owned(), "1".to_owned(), one),
        ("plan".to_owned(), "2".to_owned(), two),
    ] {
        assert!(steps.contains(&expected), "no {expected:?} in {steps:?}");
    }
    assert_eq!(steps.len(), 3, "{steps:?}");
    let visit = named(&spans, "step check")[0];
    assert_eq!(attr(visit, "flow.step.visit").as_deref(), Some("0"));

    // The model calls: two in the first turn, the third in the resumed one, each under its
    // turn's `plan` step, after the GenAI conventions.
    let chats = named(&spans, "chat scripted-gpt");
    assert_eq!(chats.len(), 3, "one `chat` span per model call sent");
    let attempts: Vec<String> = chats
        .iter()
        .map(|c| {
            let step = step_of(&spans, c).expect("a model call is under its step");
            assert_eq!(attr(step, "flow.step").as_deref(), Some("plan"));
            attr(step, "flow.step.attempt").unwrap()
        })
        .collect();
    assert_eq!(
        attempts.iter().filter(|a| *a == "2").count(),
        1,
        "{attempts:?}"
    );
    for chat in &chats {
        assert_eq!(attr(chat, "gen_ai.operation.name").as_deref(), Some("chat"));
        assert_eq!(
            attr(chat, "gen_ai.provider.name").as_deref(),
            Some("openai")
        );
        assert_eq!(
            attr(chat, "gen_ai.request.model").as_deref(),
            Some("scripted-gpt")
        );
        for usage in ["gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens"] {
            let tokens: u64 = attr(chat, usage).unwrap().parse().unwrap();
            assert!(tokens > 0, "{usage}");
        }
    }

    // The tool call the crash interrupted: its span in each turn, the same call (id) both
    // times, under that turn's `plan` step.
    let books = named(&spans, "execute_tool book");
    assert_eq!(books.len(), 2, "interrupted, then made again");
    let mut book_steps: Vec<String> = books
        .iter()
        .map(|b| attr(step_of(&spans, b).unwrap(), "flow.step.attempt").unwrap())
        .collect();
    book_steps.sort();
    assert_eq!(book_steps, ["1", "2"]);
    assert_eq!(attr(books[0], "gen_ai.tool.name").as_deref(), Some("book"));
    let ids: Vec<Option<String>> = books
        .iter()
        .map(|b| attr(b, "gen_ai.tool.call.id"))
        .collect();
    assert!(ids[0].is_some(), "{ids:?}");
    assert_eq!(ids[0], ids[1], "the resumed call is the same call");
    assert!(
        !named(&spans, "tool")
            .iter()
            .any(|t| step_of(&spans, t).is_none()),
        "every tool call is under a step"
    );
    provider.shutdown().unwrap();
}

// ---------------------------------------------------------------------------------------------
// A run an engine starts, which parks for an event and is woken by it.

/// A manager's approval.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Approval {
    /// Who approved.
    pub by: String,
}

#[workflow]
pub mod expense {
    use super::*;

    #[step(entry)]
    pub async fn submit(amount: u32) -> Result<u32, std::convert::Infallible> {
        Ok(amount)
    }

    #[step(after = submit, exit, event = Approval, timeout = Duration::from_secs(86_400))]
    pub async fn decide(
        amount: u32,
        approval: Event<Approval>,
    ) -> Result<String, std::convert::Infallible> {
        Ok(match approval {
            Event::Received(a) => format!("{amount} approved by {}", a.by),
            Event::TimedOut => format!("{amount} expired"),
        })
    }
}

pub(crate) async fn a_started_run_parks_and_resumes_in_its_start_trace() {
    let (exporter, provider) = in_memory();
    let guard = trace_into(&provider);
    let store = Arc::new(MemoryStore::new());
    let engine = Engine::builder(Arc::clone(&store))
        .register::<expense::Workflow>(Setup::new(()))
        .build();
    let run = engine
        .start::<expense::Workflow>("exp-1", 120)
        .await
        .unwrap();

    // The first turn parks in `decide`; the engine stops once the run waits.
    let waiting = async {
        loop {
            let info = store.status(&run).await.unwrap().unwrap();
            if matches!(info.state(), RunState::Waiting { .. }) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    };
    assert_eq!(engine.run_until(waiting).await.unwrap().parked, 1);

    // The event wakes it: the second turn finishes it.
    engine
        .send::<expense::Workflow, _>(&run, Approval { by: "Grace".into() })
        .await
        .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (report, result) = tokio::join!(
        engine.run_until(async {
            let _ = stopped.await;
        }),
        async {
            let result = engine
                .wait_for::<expense::Workflow>(&run, Duration::from_secs(30))
                .await;
            let _ = stop.send(());
            result
        },
    );
    drop(guard);
    assert_eq!(report.unwrap().finished, 1);
    assert_eq!(
        result.unwrap(),
        RunResult::Finished("120 approved by Grace".to_owned())
    );

    let spans = exporter.get_finished_spans().unwrap();
    let start = named(&spans, "start expense");
    assert_eq!(start.len(), 1, "the run's start is a span");
    let start = start[0];
    assert_eq!(start.parent_span_id, SpanId::INVALID, "the trace's root");
    assert_eq!(attr(start, "flow.run.id").as_deref(), Some("exp-1"));
    let turns = named(&spans, "run expense");
    let mut outcomes: Vec<String> = turns
        .iter()
        .map(|t| {
            assert_eq!(
                t.parent_span_id,
                start.span_context.span_id(),
                "each turn continues the trace the start began"
            );
            attr(t, "flow.run.outcome").unwrap()
        })
        .collect();
    outcomes.sort();
    assert_eq!(outcomes, ["finished", "parked"]);
    let trace = start.span_context.trace_id();
    assert!(
        spans
            .iter()
            .filter(|s| s.name.starts_with("step ") || s.name.starts_with("run "))
            .all(|s| s.span_context.trace_id() == trace),
        "one trace"
    );
    let decide = named(&spans, "step decide");
    assert_eq!(decide.len(), 1, "a parked step has not run: {decide:?}");
    provider.shutdown().unwrap();
}

// ---------------------------------------------------------------------------------------------
// Failures.

/// A step's error.
#[derive(Debug, thiserror::Error)]
#[error("no rooms left in {0}")]
pub struct Full(String);

#[workflow]
pub mod full {
    use super::*;

    #[step(entry, exit)]
    pub async fn reserve(city: String) -> Result<String, Full> {
        Err(Full(city))
    }
}

pub(crate) async fn a_failed_step_and_its_run_have_an_error_status() {
    let (exporter, provider) = in_memory();
    let guard = trace_into(&provider);
    let error = full::Workflow::run(&Ctx::new(()), "Oslo".into())
        .await
        .unwrap_err();
    drop(guard);
    assert!(error.to_string().contains("reserve"), "{error}");

    let spans = exporter.get_finished_spans().unwrap();
    let step = named(&spans, "step reserve")[0];
    let run = named(&spans, "run full")[0];
    match &step.status {
        Status::Error { description } => {
            assert!(
                description.contains("no rooms left in Oslo"),
                "{description}"
            );
        }
        other => panic!("the failed step's status is {other:?}"),
    }
    assert!(
        matches!(run.status, Status::Error { .. }),
        "{:?}",
        run.status
    );
    assert_eq!(attr(run, "flow.run.outcome").as_deref(), Some("failed"));
    provider.shutdown().unwrap();
}

#[workflow]
pub mod booked {
    use super::*;

    #[step(entry, exit)]
    pub async fn reserve(city: String) -> Result<String, Full> {
        Ok(city)
    }
}

/// A new run refused before its first step (its id is taken; its store-less context has run
/// already) ran nothing: its `run` span says `refused`, not `failed`, so that a count of failed
/// runs does not count the run its id names, which finished.
pub(crate) async fn a_refused_start_is_not_a_failed_run() {
    let (exporter, provider) = in_memory();
    let guard = trace_into(&provider);
    let store = Arc::new(MemoryStore::new());
    let first = Ctx::builder(())
        .run_id("r-1")
        .store(Arc::clone(&store))
        .build();
    booked::Workflow::run(&first, "Oslo".into()).await.unwrap();
    let taken = Ctx::builder(()).run_id("r-1").store(store).build();
    let error = booked::Workflow::run(&taken, "Oslo".into())
        .await
        .unwrap_err();
    assert!(error.to_string().contains("already"), "{error}");
    let alone = Ctx::new(());
    booked::Workflow::run(&alone, "Oslo".into()).await.unwrap();
    let error = booked::Workflow::run(&alone, "Oslo".into())
        .await
        .unwrap_err();
    assert!(error.to_string().contains("next_run"), "{error}");
    drop(guard);

    let spans = exporter.get_finished_spans().unwrap();
    let outcomes: Vec<_> = named(&spans, "run booked")
        .into_iter()
        .map(|run| (attr(run, "flow.run.outcome").unwrap(), run.status.clone()))
        .collect();
    assert_eq!(outcomes.len(), 4, "one `run` span per call: {outcomes:?}");
    for (outcome, status) in &outcomes {
        match outcome.as_str() {
            "finished" => assert_eq!(*status, Status::Unset, "{outcomes:?}"),
            // The call still failed: the error status says why.
            "refused" => assert!(matches!(status, Status::Error { .. }), "{outcomes:?}"),
            other => panic!("a `run` span ended {other}: {outcomes:?}"),
        }
    }
    let refused = outcomes.iter().filter(|(o, _)| o == "refused").count();
    assert_eq!(refused, 2, "{outcomes:?}");
    assert_eq!(
        named(&spans, "step reserve").len(),
        2,
        "a refused run runs no step"
    );
    provider.shutdown().unwrap();
}

// ---------------------------------------------------------------------------------------------
// OTLP over HTTP to a collector on loopback.

/// A collector on loopback, on a thread and runtime of its own (exports block the test's
/// thread while they wait for it): it takes OTLP/HTTP protobuf at `/v1/traces` and keeps what
/// it was sent.
struct Collector {
    url: String,
    seen: Arc<Mutex<Vec<ExportTraceServiceRequest>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Collector {
    fn start() -> Self {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&seen);
        let (origin_tx, origin_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let app = axum::Router::new().route(
                    "/v1/traces",
                    axum::routing::post(move |body: Bytes| {
                        let kept = Arc::clone(&kept);
                        async move {
                            match ExportTraceServiceRequest::decode(body) {
                                Ok(request) => {
                                    kept.lock()
                                        .unwrap_or_else(PoisonError::into_inner)
                                        .push(request);
                                    // An empty `ExportTraceServiceResponse`: all accepted.
                                    (
                                        StatusCode::OK,
                                        [(header::CONTENT_TYPE, "application/x-protobuf")],
                                        Vec::new(),
                                    )
                                }
                                Err(_) => (
                                    StatusCode::BAD_REQUEST,
                                    [(header::CONTENT_TYPE, "text/plain")],
                                    b"not an OTLP trace export".to_vec(),
                                ),
                            }
                        }
                    }),
                );
                origin_tx.send(flow_tests::http::serve(app).await).unwrap();
                let _ = stopped.await;
            });
        });
        let origin = origin_rx.recv().unwrap();
        Self {
            url: format!("{origin}/v1/traces"),
            seen,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Every span received: its name, trace id and the service that sent it.
    fn spans(&self) -> Vec<(String, Vec<u8>, String)> {
        let mut out = Vec::new();
        for request in self
            .seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            for resource in &request.resource_spans {
                let service = resource
                    .resource
                    .iter()
                    .flat_map(|r| &r.attributes)
                    .find(|kv| kv.key == "service.name")
                    .and_then(|kv| kv.value.as_ref())
                    .map(|v| format!("{:?}", v.value))
                    .unwrap_or_default();
                for scope in &resource.scope_spans {
                    for span in &scope.spans {
                        out.push((span.name.clone(), span.trace_id.clone(), service.clone()));
                    }
                }
            }
        }
        out
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[workflow]
pub mod report {
    use super::*;

    #[step(entry, tools = [Weather])]
    pub async fn fetch(ctx: &Ctx<(), tools::Fetch>, city: String) -> Result<f32, CallError> {
        ctx.call::<Weather>(City { city }).await
    }

    #[step(after = fetch, exit)]
    pub async fn summarise(celsius: f32) -> Result<String, std::convert::Infallible> {
        Ok(format!("{celsius} °C"))
    }
}

pub(crate) async fn spans_are_exported_over_otlp_to_a_collector() {
    let collector = Collector::start();
    let provider = otel::otlp_provider(&collector.url, "flow-tests").unwrap();
    let guard = trace_into(&provider);
    let ctx = Ctx::builder(())
        .run_id("report-1")
        .store(Arc::new(MemoryStore::new()))
        .tools(Toolbox::new().with(PolicyTool::new(Weather, ToolPolicy::default())))
        .build();
    let out = report::Workflow::run(&ctx, "Oslo".into()).await.unwrap();
    drop(guard);
    assert_eq!(out, "14 °C");
    // Blocks until the batch is exported: the collector runs on its own thread.
    provider.force_flush().unwrap();

    let spans = collector.spans();
    let mut names: Vec<&str> = spans.iter().map(|s| s.0.as_str()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["run report", "step fetch", "step summarise", "tool"],
        "every span of the run, once"
    );
    assert!(
        spans.iter().all(|s| s.1 == spans[0].1 && s.1.len() == 16),
        "one trace: {spans:?}"
    );
    assert!(
        spans.iter().all(|s| s.2.contains("flow-tests")),
        "sent as the service given: {spans:?}"
    );
    provider.shutdown().unwrap();
}

// ---------------------------------------------------------------------------------------------
// A crash in a run's first step: the next turn still continues the run's trace.

/// Makes the entry step hang once, as a process that dies in a run's first step.
#[derive(Default)]
pub struct Hang {
    armed: AtomicBool,
    entered: Notify,
}

/// `wait` hangs while `armed`; `done` adds one.
#[workflow(deps = Arc<Hang>)]
pub mod first_hangs {
    use super::*;

    #[step(entry)]
    pub async fn wait(ctx: &Ctx<Arc<Hang>>, n: u32) -> Result<u32, CallError> {
        if ctx.deps().armed.swap(false, Ordering::SeqCst) {
            ctx.deps().entered.notify_one();
            std::future::pending::<()>().await;
        }
        Ok(n)
    }

    #[step(after = wait, exit)]
    pub async fn done(n: u32) -> Result<u32, CallError> {
        Ok(n + 1)
    }
}

pub(crate) async fn a_crash_in_the_first_step_resumes_in_the_run_trace() {
    let (exporter, provider) = in_memory();
    let guard = trace_into(&provider);
    let db = TempDb::new();
    let hang = Arc::new(Hang::default());
    hang.armed.store(true, Ordering::SeqCst);
    let ctx = || {
        Ctx::builder(Arc::clone(&hang))
            .run_id("first-1")
            .store(db.open())
            .build()
    };

    // Turn 1: the run's start is stored, then the process "dies" in `wait`, before any step's
    // checkpoint.
    {
        let ctx = ctx();
        let run = first_hangs::Workflow::run_or_resume(&ctx, 1);
        tokio::select! {
            result = run => panic!("the run was to hang in `wait`: {result:?}"),
            () = hang.entered.notified() => {}
        }
    }
    // Turn 2 continues from the start, in the trace the start stored.
    assert_eq!(
        first_hangs::Workflow::run_or_resume(&ctx(), 1)
            .await
            .unwrap(),
        2
    );
    drop(guard);

    let spans = exporter.get_finished_spans().unwrap();
    // Without the trace context in the start, the second turn would be a root of its own.
    let (first, second) = two_turns(&spans, "run first_hangs");
    assert_eq!(
        second.span_context.trace_id(),
        first.span_context.trace_id()
    );
}
