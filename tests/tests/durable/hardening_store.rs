//! What the store acknowledges, it can read back; one bad row is that run's problem only; one
//! engine per store; attempt numbers that survive a crash; failures whose message is kept.
//!
//! * A state holding NaN (a garde `range` lets it through) or nested deeper than the reader
//!   accepts is refused at its checkpoint, naming the step, and nothing is stored; an event
//!   holding NaN is refused by `Engine::send`, a too-deep payload by the store.
//! * A run row with an unknown status (or a number column holding text) is listed as
//!   `Corrupt`, with the reason, next to the good runs; cancelling it repairs it.
//! * A second engine on one SQLite file (another `SqliteStore`, or the same one) or one
//!   `MemoryStore` is refused while the first runs, and starts once it has returned.
//! * A run that slept or waited for an event resumes as attempt 1 (a step killed with
//!   `SIGKILL` runs again as attempt 2: `tests/processes/attempts.rs`); a file of schema 3 is
//!   upgraded.
//! * A step's error under the engine is read back from the store with the failed run.

use flow_runtime::error::{RuntimeError, StoreErrorKind};
use flow_runtime::prelude::*;
use flow_runtime::state::{Engine, EngineError, Event, Setup, Sleep};
use flow_runtime::store::{
    MemoryStore, RunControl, RunFilter, RunInfo, RunQueue, RunStatus, SqliteStore, Store,
};
use flow_tests::store::TempDb;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Failed(String);

fn raw(path: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).unwrap()
}

async fn info<S: Store>(store: &S, run: &str) -> RunInfo {
    store.status(&run.into()).await.unwrap().expect("stored")
}

// --- What the store acknowledges, it can read back ----------------------------------------

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, garde::Validate)]
pub struct Reading {
    #[garde(range(min = 0.0, max = 100.0))]
    pub celsius: f64,
}

#[workflow]
pub mod thermo {
    use super::*;

    #[step(entry)]
    pub async fn read(reading: Valid<Reading>) -> Result<Reading, Failed> {
        Ok(reading.into_inner())
    }

    #[step(after = read, exit)]
    pub async fn report(reading: Reading) -> Result<String, Failed> {
        Ok(format!("{} °C", reading.celsius))
    }
}

/// The run's `Runtime` error, or a panic naming what came instead.
fn runtime(error: &thermo::FlowError) -> &RuntimeError {
    match error {
        thermo::FlowError::Runtime(e) => e,
        other => panic!("expected a runtime error, got {other:?}"),
    }
}

async fn a_nan_state_is_refused<S: Store>(store: Arc<S>) {
    // garde's `range` does not reject NaN: the value gets this far.
    let reading =
        Valid::new(Reading { celsius: f64::NAN }).expect("garde lets NaN through a range");
    let ctx = Ctx::builder(())
        .run_id("nan")
        .store(Arc::clone(&store))
        .build();
    let error = thermo::Workflow::run_or_resume(&ctx, reading.clone())
        .await
        .unwrap_err();
    // The NaN is in the run's input: its start, stored before the first step, is refused.
    match runtime(&error) {
        RuntimeError::Start {
            workflow, source, ..
        } => {
            assert_eq!(*workflow, "thermo");
            assert_eq!(source.kind(), StoreErrorKind::Unstorable, "{source}");
            assert!(
                source.to_string().contains("NaN at `.Read.input.celsius`"),
                "{source}"
            );
        }
        other => panic!("expected Start, got {other:?}"),
    }
    assert!(
        error.to_string().contains("could not store its start"),
        "{error}"
    );
    // Nothing was acknowledged, so nothing is stored.
    assert_eq!(store.status(&"nan".into()).await.unwrap(), None);
    assert!(store.latest(&"nan".into()).await.unwrap().is_none());
    // Asking again gives the same answer, never `CorruptState`.
    let again = thermo::Workflow::run_or_resume(&ctx, reading)
        .await
        .unwrap_err();
    assert!(
        matches!(runtime(&again), RuntimeError::Start { .. }),
        "{again:?}"
    );

    // A finite reading under the same id goes through and reads back.
    let fine = Valid::new(Reading { celsius: 21.5 }).unwrap();
    assert_eq!(
        thermo::Workflow::run_or_resume(&ctx, fine.clone())
            .await
            .unwrap(),
        "21.5 °C"
    );
    assert_eq!(
        thermo::Workflow::run_or_resume(&ctx, fine).await.unwrap(),
        "21.5 °C"
    );
}

#[tokio::test]
async fn a_nan_state_is_refused_sqlite() {
    let db = TempDb::new();
    a_nan_state_is_refused(db.open()).await;
}

#[tokio::test]
async fn a_nan_state_is_refused_memory() {
    a_nan_state_is_refused(Arc::new(MemoryStore::new())).await;
}

/// `[[[…[depth]…]]]`.
fn nested(depth: usize) -> serde_json::Value {
    let mut value = serde_json::json!(depth);
    for _ in 0..depth {
        value = serde_json::json!([value]);
    }
    value
}

#[workflow]
pub mod deep {
    use super::*;

    #[step(entry)]
    pub async fn build(depth: usize) -> Result<serde_json::Value, Failed> {
        Ok(nested(depth))
    }

    #[step(after = build, exit)]
    pub async fn measure(value: serde_json::Value) -> Result<usize, Failed> {
        let mut depth = 0;
        let mut at = &value;
        while let Some(inner) = at.get(0) {
            depth += 1;
            at = inner;
        }
        Ok(depth)
    }
}

async fn a_state_nested_too_deep_is_refused<S: Store>(store: Arc<S>) {
    // 130 levels: serde_json writes it, and could not read it back.
    let ctx = Ctx::builder(())
        .run_id("deep")
        .store(Arc::clone(&store))
        .build();
    let error = deep::Workflow::run_or_resume(&ctx, 130).await.unwrap_err();
    let deep::FlowError::Runtime(RuntimeError::Unstorable { step, reason, .. }) = &error else {
        panic!("expected Unstorable, got {error:?}");
    };
    assert_eq!(*step, "build");
    assert!(reason.contains("over the limit of 100"), "{reason}");
    // Only the run's start (its input, 130) was stored; the state after `build` was not.
    let latest = store.latest(&"deep".into()).await.unwrap().unwrap();
    assert_eq!(
        (latest.step.as_str(), latest.state.clone()),
        (
            "",
            serde_json::json!({ "Build": { "input": 130, "loops": {} } })
        )
    );

    // Within the limit, stored and read back (resumed from its checkpoint by a second call).
    let ctx = Ctx::builder(())
        .run_id("ok")
        .store(Arc::clone(&store))
        .build();
    assert_eq!(deep::Workflow::run_or_resume(&ctx, 90).await.unwrap(), 90);
    assert_eq!(deep::Workflow::run_or_resume(&ctx, 0).await.unwrap(), 90);
}

#[tokio::test]
async fn a_state_nested_too_deep_is_refused_sqlite() {
    let db = TempDb::new();
    a_state_nested_too_deep_is_refused(db.open()).await;
}

#[tokio::test]
async fn a_state_nested_too_deep_is_refused_memory() {
    a_state_nested_too_deep_is_refused(Arc::new(MemoryStore::new())).await;
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Gauge {
    pub bar: f64,
}

#[workflow]
pub mod barometer {
    use super::*;

    #[step(entry)]
    pub async fn arm(n: u32) -> Result<u32, Failed> {
        Ok(n)
    }

    #[step(after = arm, exit, event = Gauge, timeout = Duration::from_secs(3600))]
    pub async fn record(n: u32, gauge: Event<Gauge>) -> Result<String, Failed> {
        Ok(match gauge {
            Event::Received(g) => format!("{n}: {} bar", g.bar),
            Event::TimedOut => format!("{n}: no reading"),
        })
    }
}

async fn an_event_holding_nan_is_refused_at_send<S: RunQueue>(store: Arc<S>) {
    let engine = Engine::builder(Arc::clone(&store))
        .lease(flow_tests::store::PAUSED_LEASE)
        .register::<barometer::Workflow>(Setup::new(()))
        .build();
    let run = engine.start::<barometer::Workflow>("b1", 7).await.unwrap();
    let error = engine
        .send::<barometer::Workflow, _>(&run, Gauge { bar: f64::INFINITY })
        .await
        .unwrap_err();
    match &error {
        EngineError::Unstorable { what, reason, .. } => {
            assert_eq!(what, "event `Gauge`");
            assert!(reason.contains("inf at `.bar`"), "{reason}");
        }
        other => panic!("expected Unstorable, got {other:?}"),
    }
    // The store refuses a payload it could not read back, whoever sends it.
    let refused = store
        .send_event(&run, "Gauge", nested(130))
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), StoreErrorKind::Unstorable, "{refused}");
    assert!(store.next_event(&run, "Gauge").await.unwrap().is_none());

    // The run takes the next good event, as if the bad ones had never been sent.
    engine
        .send::<barometer::Workflow, _>(&run, Gauge { bar: 1.5 })
        .await
        .unwrap();
    let finished = async {
        while info(&*store, "b1").await.status != RunStatus::Finished {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    engine.run_until(finished).await.unwrap();
    let output = engine.outcome::<barometer::Workflow>(&run).await.unwrap();
    assert_eq!(output.finished().as_deref(), Some("7: 1.5 bar"));
}

#[tokio::test]
async fn an_event_holding_nan_is_refused_at_send_sqlite() {
    let db = TempDb::new();
    an_event_holding_nan_is_refused_at_send(db.open()).await;
}

#[tokio::test]
async fn an_event_holding_nan_is_refused_at_send_memory() {
    an_event_holding_nan_is_refused_at_send(Arc::new(MemoryStore::new())).await;
}

#[tokio::test]
async fn engine_start_refuses_an_input_that_would_not_read_back() {
    let store = Arc::new(MemoryStore::new());
    let engine = Engine::builder(Arc::clone(&store))
        .lease(flow_tests::store::PAUSED_LEASE)
        .register::<deep::Workflow>(Setup::new(()))
        .register::<thermo::Workflow>(Setup::new(()))
        .build();
    let reading = Valid::new(Reading { celsius: f64::NAN }).unwrap();
    let error = engine
        .start::<thermo::Workflow>("t1", reading)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, EngineError::Unstorable { what, .. } if what == "the input"),
        "{error:?}"
    );
    assert_eq!(store.status(&"t1".into()).await.unwrap(), None);
}

// --- One bad row is that run's problem only -------------------------------------------------

#[workflow]
pub mod pair {
    use super::*;

    #[step(entry)]
    pub async fn one(n: u32) -> Result<u32, Failed> {
        Ok(n + 1)
    }

    #[step(after = one, exit)]
    pub async fn two(n: u32) -> Result<u32, Failed> {
        Ok(n * 2)
    }
}

#[tokio::test]
async fn a_row_with_an_unknown_status_is_reported_for_that_run_only() {
    let db = TempDb::new();
    let store = db.open();
    for run in ["good", "zombie", "garbled"] {
        let ctx = Ctx::builder(())
            .run_id(run)
            .store(Arc::clone(&store))
            .build();
        assert_eq!(pair::Workflow::run_or_resume(&ctx, 1).await.unwrap(), 4);
    }
    let conn = raw(db.path());
    conn.execute(
        "UPDATE runs SET status = 'zombie' WHERE run_id = 'zombie'",
        [],
    )
    .unwrap();
    conn.execute(
        "UPDATE runs SET updated_at = 'yesterday' WHERE run_id = 'garbled'",
        [],
    )
    .unwrap();

    // Listing still works, with the bad runs marked and the good one as it is.
    let mut all = store.list(&RunFilter::new()).await.unwrap();
    all.sort_by(|a, b| a.run_id.as_str().cmp(b.run_id.as_str()));
    let seen: Vec<_> = all
        .iter()
        .map(|i| (i.run_id.as_str(), i.status, i.corrupt.is_some()))
        .collect();
    assert_eq!(
        seen,
        [
            ("garbled", RunStatus::Finished, true),
            ("good", RunStatus::Finished, false),
            ("zombie", RunStatus::Corrupt, true),
        ]
    );
    let zombie = info(&*store, "zombie").await;
    let why = zombie.corrupt.as_deref().unwrap();
    assert!(why.contains("unknown status `zombie`"), "{why}");
    // The run's start and two steps.
    assert_eq!((zombie.workflow.as_str(), zombie.checkpoints), ("pair", 3));
    let garbled = info(&*store, "garbled").await;
    assert!(
        garbled
            .corrupt
            .as_deref()
            .unwrap()
            .contains("`updated_at` holds Text"),
        "{garbled:?}"
    );
    // Filters: a status filter keeps working; `Corrupt` finds unknown statuses.
    let finished = store
        .list(&RunFilter::new().status(RunStatus::Finished))
        .await
        .unwrap();
    assert_eq!(finished.len(), 2, "good and garbled (its status is fine)");
    let corrupt = store
        .list(&RunFilter::new().status(RunStatus::Corrupt))
        .await
        .unwrap();
    assert_eq!(corrupt.len(), 1);
    assert_eq!(corrupt[0].run_id.as_str(), "zombie");

    // The queue and the restart list skip it without failing.
    assert_eq!(store.unfinished_runs().await.unwrap(), Vec::<RunId>::new());
    assert!(
        store
            .due(SystemTime::now(), &["pair"], 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.history(&"zombie".into()).await.unwrap().len(), 3);
    // Resuming it is refused, running nothing.
    let ctx = Ctx::builder(())
        .run_id("zombie")
        .store(Arc::clone(&store))
        .build();
    let error = pair::Workflow::run_or_resume(&ctx, 1).await.unwrap_err();
    assert!(
        matches!(
            &error,
            pair::FlowError::Runtime(RuntimeError::Stopped {
                status: RunStatus::Corrupt,
                step: None,
                ..
            })
        ),
        "{error:?}"
    );
    // An operator can act on it: pausing is refused, cancelling sets it aside for good.
    assert!(store.pause(&"zombie".into()).await.is_err());
    let cancelled = store.cancel(&"zombie".into()).await.unwrap();
    assert_eq!(
        (cancelled.status, cancelled.corrupt),
        (RunStatus::Cancelled, None)
    );
}

// --- Many engines on one store ---------------------------------------------------------------

#[workflow(deps = Seen)]
pub mod triple {
    use super::*;

    #[step(entry)]
    pub async fn one(ctx: &Ctx<Seen>, n: u32) -> Result<u32, Failed> {
        ctx.deps()
            .0
            .lock()
            .unwrap()
            .push(format!("{} one", ctx.run_id()));
        tokio::task::yield_now().await;
        Ok(n + 1)
    }

    #[step(after = one)]
    pub async fn two(ctx: &Ctx<Seen>, n: u32) -> Result<u32, Failed> {
        ctx.deps()
            .0
            .lock()
            .unwrap()
            .push(format!("{} two", ctx.run_id()));
        tokio::task::yield_now().await;
        Ok(n * 2)
    }

    #[step(after = two, exit)]
    pub async fn three(ctx: &Ctx<Seen>, n: u32) -> Result<u32, Failed> {
        ctx.deps()
            .0
            .lock()
            .unwrap()
            .push(format!("{} three", ctx.run_id()));
        Ok(n + 3)
    }
}

/// Two engines on one store (each with its own handle, as two processes have) run 60 runs
/// together: each run finishes and each step of each run runs once, split between them.
async fn two_engines_run_each_step_once<S: RunQueue>(first: Arc<S>, second: Arc<S>) {
    let seen = Seen::default();
    let engine = |store: &Arc<S>, name: &str| {
        Engine::builder(Arc::clone(store))
            .register::<triple::Workflow>(Setup::new(seen.clone()))
            .concurrency(8)
            .poll_interval(Duration::from_millis(5))
            .worker(name)
            .build()
    };
    let (one, two) = (engine(&first, "one"), engine(&second, "two"));
    let runs: Vec<String> = (0..60).map(|n| format!("t{n}")).collect();
    for run in &runs {
        one.start::<triple::Workflow>(run.as_str(), 1)
            .await
            .unwrap();
    }
    let all_finished = |store: Arc<S>| async move {
        loop {
            let finished = store
                .list(&RunFilter::new().status(RunStatus::Finished))
                .await
                .unwrap();
            if finished.len() == 60 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    let (a, b) = tokio::join!(
        one.run_until(all_finished(Arc::clone(&first))),
        two.run_until(all_finished(Arc::clone(&second)))
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.finished + b.finished, 60, "{a:?} {b:?}");
    let mut steps = seen.entries();
    assert_eq!(
        steps.len(),
        180,
        "each step of each run ran once: {steps:?}"
    );
    steps.sort();
    steps.dedup();
    assert_eq!(steps.len(), 180, "no step ran twice");
    for run in &runs {
        assert_eq!(info(&*first, run).await.status, RunStatus::Finished);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_engines_on_the_same_file_run_each_step_once() {
    let db = TempDb::new();
    // Two stores on one file, as two processes would have.
    two_engines_run_each_step_once(db.open(), db.open()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_engines_on_the_same_store_run_each_step_once() {
    let db = TempDb::new();
    let store = db.open();
    two_engines_run_each_step_once(Arc::clone(&store), store).await;
    let memory = Arc::new(MemoryStore::new());
    two_engines_run_each_step_once(Arc::clone(&memory), memory).await;
}

#[tokio::test]
async fn a_store_without_an_engine_is_not_locked() {
    let db = TempDb::new();
    let store = db.open();
    let engine = Engine::builder(Arc::clone(&store))
        .lease(flow_tests::store::PAUSED_LEASE)
        .register::<pair::Workflow>(Setup::new(()))
        .build();
    let other = db.open();
    engine
        .run_until(async {
            // Plain runs on the same file go on while an engine runs.
            let ctx = Ctx::builder(())
                .run_id("plain")
                .store(Arc::clone(&other))
                .build();
            assert_eq!(pair::Workflow::run_or_resume(&ctx, 2).await.unwrap(), 6);
        })
        .await
        .unwrap();
}

// --- Attempt numbers --------------------------------------------------------------------------

/// What the steps saw: `step attempt`.
#[derive(Clone, Default)]
pub struct Seen(Arc<Mutex<Vec<String>>>);

impl Seen {
    fn push<P>(&self, ctx: &Ctx<Seen, P>, step: &str) {
        self.0
            .lock()
            .unwrap()
            .push(format!("{step} {}", ctx.attempt()));
    }

    fn entries(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

#[workflow(deps = Seen)]
pub mod parked {
    use super::*;

    #[step(entry)]
    pub async fn nap(ctx: &Ctx<Seen>, n: u32) -> Result<Sleep<u32>, Failed> {
        ctx.deps().push(ctx, "nap");
        Ok(Sleep::new(Duration::from_secs(3600), n))
    }

    #[step(after = nap)]
    pub async fn woke(ctx: &Ctx<Seen>, n: u32) -> Result<u32, Failed> {
        ctx.deps().push(ctx, "woke");
        Ok(n)
    }

    #[step(after = woke, exit, event = Gauge, timeout = Duration::from_secs(3600))]
    pub async fn got(ctx: &Ctx<Seen>, n: u32, gauge: Event<Gauge>) -> Result<u32, Failed> {
        ctx.deps().push(ctx, "got");
        Ok(match gauge {
            Event::Received(_) => n,
            Event::TimedOut => 0,
        })
    }
}

async fn a_parked_run_resumes_as_attempt_1<S: RunQueue>(store: Arc<S>) {
    let seen = Seen::default();
    let engine = Engine::builder(Arc::clone(&store))
        .lease(flow_tests::store::PAUSED_LEASE)
        .register::<parked::Workflow>(Setup::new(seen.clone()))
        .build();
    let run = engine.start::<parked::Workflow>("nap-1", 3).await.unwrap();
    let waiting = async {
        while store.latest(&run).await.unwrap().unwrap().waiting.is_none() {
            tokio::time::sleep(Duration::from_secs(60)).await;
        }
    };
    engine.run_until(waiting).await.unwrap();
    // Asleep an hour, then waiting for the event: both parked, neither a retry.
    engine
        .send::<parked::Workflow, _>(&run, Gauge { bar: 1.0 })
        .await
        .unwrap();
    let finished = async {
        while info(&*store, "nap-1").await.status != RunStatus::Finished {
            tokio::time::sleep(Duration::from_secs(60)).await;
        }
    };
    engine.run_until(finished).await.unwrap();
    assert_eq!(seen.entries(), ["nap 1", "woke 1", "got 1"]);
}

#[tokio::test(start_paused = true)]
async fn a_parked_run_resumes_as_attempt_1_memory() {
    a_parked_run_resumes_as_attempt_1(Arc::new(MemoryStore::new())).await;
}

#[tokio::test(start_paused = true)]
async fn a_parked_run_resumes_as_attempt_1_sqlite() {
    let db = TempDb::new();
    a_parked_run_resumes_as_attempt_1(db.open()).await;
}

#[workflow(deps = Seen)]
pub mod counted {
    use super::*;

    #[step(entry)]
    pub async fn first(ctx: &Ctx<Seen>, n: u32) -> Result<u32, Failed> {
        ctx.deps().push(ctx, "first");
        Ok(n)
    }

    #[step(after = first, exit)]
    pub async fn second(ctx: &Ctx<Seen>, n: u32) -> Result<u32, Failed> {
        ctx.deps().push(ctx, "second");
        Ok(n)
    }
}

/// `run_or_resume` after a process died during `second` (its checkpoint after `first` is
/// stored, nothing after): the stored count says `second` started once already.
async fn run_or_resume_counts_attempts<S: Store>(store: Arc<S>) {
    let seen = Seen::default();
    let ctx = Ctx::builder(seen.clone())
        .run_id("c1")
        .store(Arc::clone(&store))
        .build();
    // What a process that died in `second` left behind: `first`'s checkpoint.
    let state = serde_json::json!({ "Second": { "input": 5, "loops": {} } });
    store
        .save(
            flow_runtime::store::Checkpoint::new(
                "c1".into(),
                counted::NAME,
                counted::FINGERPRINT,
                "first",
                false,
                state,
            )
            .with_attempt(1),
        )
        .await
        .unwrap();
    assert_eq!(counted::Workflow::run_or_resume(&ctx, 0).await.unwrap(), 5);
    assert_eq!(seen.entries(), ["second 2"]);
}

#[tokio::test]
async fn run_or_resume_counts_attempts_sqlite() {
    let db = TempDb::new();
    run_or_resume_counts_attempts(db.open()).await;
}

#[tokio::test]
async fn run_or_resume_counts_attempts_memory() {
    run_or_resume_counts_attempts(Arc::new(MemoryStore::new())).await;
}

#[tokio::test]
async fn a_schema_3_file_is_upgraded_to_5() {
    let db = TempDb::new();
    {
        let store = db.open();
        let ctx = Ctx::builder(())
            .run_id("old")
            .store(Arc::clone(&store))
            .build();
        assert_eq!(pair::Workflow::run_or_resume(&ctx, 1).await.unwrap(), 4);
    }
    // Back to schema 3, as the store before attempts wrote it.
    let conn = raw(db.path());
    conn.execute_batch(
        "DROP INDEX journal_by_seq; ALTER TABLE journal DROP COLUMN seq; ALTER TABLE history DROP COLUMN attempt; \
         ALTER TABLE history DROP COLUMN started_at; ALTER TABLE runs DROP COLUMN step_started_at; DROP TABLE workflows; \
         ALTER TABLE runs DROP COLUMN failed_step; ALTER TABLE history DROP COLUMN failed_step; \
         ALTER TABLE history DROP COLUMN failure; ALTER TABLE runs DROP COLUMN attempt; ALTER TABLE runs DROP COLUMN failure; \
         ALTER TABLE runs DROP COLUMN wait_event; ALTER TABLE runs DROP COLUMN wait_until; \
         ALTER TABLE calls DROP COLUMN visit_back_edges; ALTER TABLE calls DROP COLUMN visit_item; \
         ALTER TABLE runs DROP COLUMN trace; ALTER TABLE runs DROP COLUMN lease_owner; ALTER TABLE runs DROP COLUMN lease_until; ALTER TABLE runs DROP COLUMN lease_epoch; ALTER TABLE calls DROP COLUMN input_tokens; \
         ALTER TABLE calls DROP COLUMN output_tokens; PRAGMA user_version = 3;",
    )
    .unwrap();
    drop(conn);

    let store = db.open();
    let version: i64 = raw(db.path())
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .unwrap();
    assert_eq!(version, flow_tests::store::SQLITE_SCHEMA);
    assert_eq!(info(&*store, "old").await.status, RunStatus::Finished);
    let ctx = Ctx::builder(())
        .run_id("old")
        .store(Arc::clone(&store))
        .build();
    assert_eq!(pair::Workflow::run_or_resume(&ctx, 0).await.unwrap(), 4);
    let ctx = Ctx::builder(())
        .run_id("new")
        .store(Arc::clone(&store))
        .build();
    assert_eq!(pair::Workflow::run_or_resume(&ctx, 2).await.unwrap(), 6);
}

// --- A failed run keeps its message -------------------------------------------------------

#[workflow]
pub mod doomed {
    use super::*;

    #[step(entry)]
    pub async fn try_it(n: u32) -> Result<u32, Failed> {
        Err(Failed(format!("the disk is on fire ({n})")))
    }

    #[step(after = try_it, exit)]
    pub async fn never(n: u32) -> Result<u32, Failed> {
        Ok(n)
    }
}

async fn a_failed_run_keeps_its_message<S: RunQueue>(store: Arc<S>) -> RunInfo {
    let engine = Engine::builder(Arc::clone(&store))
        .lease(flow_tests::store::PAUSED_LEASE)
        .register::<doomed::Workflow>(Setup::new(()))
        .build();
    let run = engine.start::<doomed::Workflow>("d1", 9).await.unwrap();
    let failed = async {
        while info(&*store, "d1").await.status != RunStatus::Failed {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    let report = engine.run_until(failed).await.unwrap();
    assert_eq!(report.failed, 1);
    let failed = info(&*store, run.as_str()).await;
    let failure = failed.failure.clone().expect("the failure is stored");
    assert!(
        failure.reason.contains("the disk is on fire (9)"),
        "{}",
        failure.reason
    );
    assert_eq!(
        failure.step.as_deref(),
        Some("try_it"),
        "the step that failed"
    );
    let listed = store.list(&RunFilter::new()).await.unwrap();
    assert_eq!(listed[0].failure, failed.failure);
    failed
}

#[tokio::test]
async fn a_failed_run_keeps_its_message_sqlite() {
    let db = TempDb::new();
    let failed = a_failed_run_keeps_its_message(db.open()).await;
    // Durably: a new store on the file reads it back.
    let store = SqliteStore::open(db.path()).unwrap();
    assert_eq!(info(&store, "d1").await.failure, failed.failure);
}

#[tokio::test]
async fn a_failed_run_keeps_its_message_memory() {
    a_failed_run_keeps_its_message(Arc::new(MemoryStore::new())).await;
}
