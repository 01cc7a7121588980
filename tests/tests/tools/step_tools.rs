//! Tools called from steps through their context: the toolbox, per-step permissions at run
//! time (the compile-time half is in `ui/fail/tools`), idempotency keys per call, and the
//! record of every call in the run's history and in the store.

use flow_runtime::prelude::*;
use flow_runtime::state::{CallKind, CallOutcome};
use flow_runtime::store::SqliteStore;
use flow_tests::store::TempDb;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Every idempotency key a tool saw, with the attempt.
type Seen = Arc<Mutex<Vec<(String, u32)>>>;

/// Finds flights; fails transiently on the first attempt of every call when `flaky`.
#[derive(Default)]
pub struct Search {
    seen: Seen,
    flaky: bool,
}

impl Tool for Search {
    type Input = String;
    type Output = Vec<String>;
    const NAME: &'static str = "search";
    const DESCRIPTION: &'static str = "Finds flights to a city.";

    async fn call(&self, ctx: &ToolCtx, to: String) -> Result<Vec<String>, ToolError> {
        self.seen
            .lock()
            .unwrap()
            .push((ctx.idempotency_key().to_string(), ctx.attempt()));
        if self.flaky && ctx.attempt() == 1 {
            return Err(ToolError::transient("busy"));
        }
        Ok(vec![format!("FL1 to {to}"), format!("FL2 to {to}")])
    }
}

/// Books a flight; refuses flights named `FULL`.
#[derive(Default)]
pub struct Book {
    seen: Seen,
}

impl Tool for Book {
    type Input = String;
    type Output = String;
    const NAME: &'static str = "book";
    const DESCRIPTION: &'static str = "Books a flight.";

    async fn call(&self, ctx: &ToolCtx, flight: String) -> Result<String, ToolError> {
        self.seen
            .lock()
            .unwrap()
            .push((ctx.idempotency_key().to_string(), ctx.attempt()));
        if flight.starts_with("FULL") {
            return Err(ToolError::permanent("no seats left"));
        }
        Ok(format!("PNR for {flight}"))
    }
}

#[workflow]
pub mod trip {
    use super::*;

    /// Two calls of the same tool: each has its own key.
    #[step(entry, tools = [Search])]
    pub async fn search(
        ctx: &Ctx<(), tools::Search>,
        to: String,
    ) -> Result<Vec<String>, CallError> {
        let mut flights = ctx.call::<Search>(to.clone()).await?;
        flights.extend(ctx.call::<Search>(format!("{to} (return)")).await?);
        Ok(flights)
    }

    /// No tools: takes the plain context, may call nothing.
    #[step(after = search)]
    pub async fn choose(ctx: &Ctx, flights: Vec<String>) -> Result<String, CallError> {
        assert_eq!(ctx.step(), Some("choose"));
        Ok(flights.into_iter().next().unwrap_or_default())
    }

    #[step(after = choose, exit, tools = [Book])]
    pub async fn book(ctx: &Ctx<(), tools::Book>, flight: String) -> Result<String, CallError> {
        ctx.call::<Book>(flight).await
    }
}

fn policy() -> ToolPolicy {
    ToolPolicy::builder()
        .retry(Retry::exponential(Duration::from_millis(1)).max_attempts(3))
        .build()
}

struct Fixture {
    tools: Toolbox,
    search: Seen,
    book: Seen,
}

fn fixture(flaky: bool) -> Fixture {
    let search = Seen::default();
    let book = Seen::default();
    let tools = Toolbox::new()
        .with(PolicyTool::new(
            Search {
                seen: Arc::clone(&search),
                flaky,
            },
            policy(),
        ))
        .with(PolicyTool::new(
            Book {
                seen: Arc::clone(&book),
            },
            policy(),
        ));
    Fixture {
        tools,
        search,
        book,
    }
}

#[tokio::test]
async fn steps_call_their_tools_from_the_toolbox() {
    let f = fixture(false);
    let ctx = Ctx::builder(()).tools(f.tools).build();
    let out = trip::Workflow::run(&ctx, "Oslo".into()).await.unwrap();
    assert_eq!(out, "PNR for FL1 to Oslo");

    let calls = ctx.calls();
    let summary: Vec<_> = calls
        .iter()
        .map(|c| {
            (
                c.kind,
                c.name.as_str(),
                c.step.as_str(),
                c.index,
                c.attempts,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (CallKind::Tool, "search", "search", 0, 1),
            (CallKind::Tool, "search", "search", 1, 1),
            (CallKind::Tool, "book", "book", 0, 1),
        ]
    );
    assert!(calls.iter().all(|c| c.outcome == CallOutcome::Ok));
    assert_eq!(f.book.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn keys_repeat_across_retries_and_differ_between_calls() {
    let f = fixture(true);
    let ctx = Ctx::builder(()).run_id("run-keys").tools(f.tools).build();
    trip::Workflow::run(&ctx, "Oslo".into()).await.unwrap();

    let seen = f.search.lock().unwrap().clone();
    // Two calls, each failing once then succeeding: four attempts, two keys.
    assert_eq!(seen.len(), 4);
    assert_eq!(seen[0].0, seen[1].0);
    assert_eq!(seen[2].0, seen[3].0);
    assert_ne!(seen[0].0, seen[2].0);
    assert_eq!(seen.iter().map(|s| s.1).collect::<Vec<_>>(), [1, 2, 1, 2]);
    // The key is derived from run, step, visit and the call's position: a rerun of the step after a
    // crash sends the same keys.
    let run = RunId::from("run-keys");
    assert_eq!(
        seen[0].0,
        IdempotencyKey::new(&run, "search", flow_runtime::tool::Visit::FIRST, 0).to_string()
    );
    assert_eq!(
        seen[2].0,
        IdempotencyKey::new(&run, "search", flow_runtime::tool::Visit::FIRST, 1).to_string()
    );
    assert_eq!(ctx.calls()[0].attempts, 2);
}

#[tokio::test]
async fn a_missing_tool_stops_the_run_before_its_first_step() {
    let search = Seen::default();
    let tools = Toolbox::new().with(PolicyTool::new(
        Search {
            seen: Arc::clone(&search),
            flaky: false,
        },
        policy(),
    ));
    let ctx = Ctx::builder(()).run_id("run-missing").tools(tools).build();
    let error = trip::Workflow::run(&ctx, "Oslo".into()).await.unwrap_err();
    let trip::FlowError::Runtime(RuntimeError::MissingTool { step, tool, .. }) = &error else {
        panic!("expected MissingTool, got {error:?}");
    };
    assert_eq!((*step, *tool), ("book", "book"));
    assert_eq!(
        error.to_string(),
        "run `run-missing` of workflow `trip`: step `book` declares tool `book`, but the run's toolbox has no such tool; \
         add it with `Toolbox::new().with(PolicyTool::new(…))` and `Ctx::builder(…).tools(toolbox)`"
    );
    assert!(search.lock().unwrap().is_empty(), "no step ran");
}

#[tokio::test]
async fn the_typestate_api_reports_an_unregistered_tool_per_call() {
    let ctx = Ctx::new(());
    let flow = trip::Flow::new(&ctx, "Oslo".into());
    let Err(trip::FlowError::Search(error)) = flow.search().await else {
        panic!("expected the search step to fail");
    };
    assert!(matches!(error, CallError::NotRegistered { tool: "search" }));
    assert_eq!(ctx.calls()[0].attempts, 0);
}

#[tokio::test]
async fn a_failed_call_is_recorded_and_its_step_fails() {
    /// Routes every booking to a full flight.
    #[workflow]
    pub mod full {
        use super::*;

        #[step(entry, exit, tools = [Book])]
        pub async fn book(ctx: &Ctx<(), tools::Book>, flight: String) -> Result<String, CallError> {
            ctx.call::<Book>(format!("FULL {flight}")).await
        }
    }

    let f = fixture(false);
    let ctx = Ctx::builder(()).tools(f.tools).build();
    let error = full::Workflow::run(&ctx, "FL1".into()).await.unwrap_err();
    assert!(matches!(
        error,
        full::FlowError::Book(CallError::Rejected { tool: "book", .. })
    ));
    let calls = ctx.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(
        calls[0].outcome,
        CallOutcome::Failed(
            "tool `book` failed with a permanent error on attempt 1; not retried".into()
        )
    );
}

#[tokio::test]
async fn calls_are_stored_with_their_steps_checkpoint() {
    let db = TempDb::new();
    let path = db.path();
    let f = fixture(true);
    {
        let store = Arc::new(SqliteStore::open(path).unwrap());
        let ctx = Ctx::builder(())
            .run_id("run-history")
            .store(Arc::clone(&store))
            .tools(f.tools)
            .build();
        trip::Workflow::run(&ctx, "Oslo".into()).await.unwrap();
    }
    // Read back from a fresh store on the same file.
    let store = SqliteStore::open(path).unwrap();
    let history = store.history(&"run-history".into()).await.unwrap();
    let by_step: HashMap<_, _> = history
        .iter()
        .map(|h| {
            let calls: Vec<_> = h
                .calls
                .iter()
                .map(|c| (c.name.as_str(), c.index, c.attempts, c.outcome.clone()))
                .collect();
            (h.step.as_str(), calls)
        })
        .collect();
    assert_eq!(
        by_step["search"],
        [
            ("search", 0, 2, CallOutcome::Ok),
            ("search", 1, 2, CallOutcome::Ok)
        ]
    );
    assert_eq!(by_step["choose"], []);
    assert_eq!(by_step["book"], [("book", 0, 1, CallOutcome::Ok)]);
    assert!(
        // [0] is the run's start, which made no call; [1] is `search`.
        history[1].calls[0].duration < Duration::from_secs(5),
        "durations are measured"
    );
}

#[test]
fn the_diagram_shows_each_steps_tools() {
    assert!(trip::MERMAID.contains("tool__Search{{\"Search\"}}"));
    assert!(trip::MERMAID.contains("search -.- tool__Search"));
    assert!(trip::MERMAID.contains("book -.- tool__Book"));
    assert!(!trip::MERMAID.contains("choose -.-"));
}
