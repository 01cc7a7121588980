//! Run control: the status of stored runs, listing them by workflow and by status, and pausing,
//! unpausing and cancelling them, on both stores (`SqliteStore` in a real file, `MemoryStore`).
//! Runs honour it at their checkpoints: a run paused or cancelled while a step runs stops
//! before its next step, that step's result unstored; `run_or_resume` refuses a stopped run and
//! continues an unpaused one. Moves the status table forbids are typed errors that change
//! nothing; a run resumed by code with another fingerprint is marked incompatible; a file made
//! before run control existed opens and works.

use flow_runtime::error::ControlError;
use flow_runtime::prelude::*;
use flow_runtime::store::{
    Checkpoint, HistoryEntry, RunControl, RunFilter, RunInfo, RunStatus, SqliteStore,
};
use flow_tests::store::TempDb;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;
use tokio::sync::Notify;

#[derive(Debug, thiserror::Error)]
#[error("run control test step failed")]
pub struct Failed;

/// Counts each step's executions. `block` makes the next `wait` (or fan-out branch `slow`)
/// signal `entered` and wait for `release`, so that a test can act while that step runs;
/// `fail_last` makes `last` fail once, leaving the run stored but unfinished.
#[derive(Debug, Default)]
pub struct Gate {
    pub block: AtomicBool,
    pub fail_last: AtomicBool,
    pub entered: Notify,
    pub release: Notify,
    pub first: AtomicU32,
    pub wait: AtomicU32,
    pub last: AtomicU32,
}

impl Gate {
    async fn pass(&self) {
        if self.block.swap(false, Ordering::SeqCst) {
            self.entered.notify_one();
            self.release.notified().await;
        }
    }

    fn counts(&self) -> [u32; 3] {
        [&self.first, &self.wait, &self.last].map(|n| n.load(Ordering::SeqCst))
    }
}

/// first → wait → last.
#[workflow(deps = Gate)]
pub mod pipeline {
    use super::*;

    #[step(entry)]
    pub async fn first(ctx: &Ctx<Gate>, n: u32) -> Result<u32, Failed> {
        ctx.deps().first.fetch_add(1, Ordering::SeqCst);
        Ok(n + 1)
    }

    #[step(after = first)]
    pub async fn wait(ctx: &Ctx<Gate>, n: u32) -> Result<u32, Failed> {
        ctx.deps().wait.fetch_add(1, Ordering::SeqCst);
        ctx.deps().pass().await;
        Ok(n * 10)
    }

    #[step(after = wait, exit)]
    pub async fn last(ctx: &Ctx<Gate>, n: u32) -> Result<String, Failed> {
        ctx.deps().last.fetch_add(1, Ordering::SeqCst);
        if ctx.deps().fail_last.swap(false, Ordering::SeqCst) {
            return Err(Failed);
        }
        Ok(format!("<{n}>"))
    }
}

/// split → (quick, slow) → join.
#[workflow(deps = Gate)]
pub mod fan {
    use super::*;

    #[step(entry)]
    pub async fn split(n: u32) -> Result<u32, Failed> {
        Ok(n)
    }

    #[step(after = split)]
    pub async fn quick(n: u32) -> Result<u32, Failed> {
        Ok(n + 1)
    }

    #[step(after = split)]
    pub async fn slow(ctx: &Ctx<Gate>, n: u32) -> Result<u32, Failed> {
        ctx.deps().pass().await;
        Ok(n + 2)
    }

    #[step(after = [quick, slow], exit)]
    pub async fn join(ctx: &Ctx<Gate>, a: u32, b: u32) -> Result<u32, Failed> {
        ctx.deps().last.fetch_add(1, Ordering::SeqCst);
        Ok(a + b)
    }
}

#[workflow]
pub mod other {
    use super::*;

    #[step(entry, exit)]
    pub async fn only(n: u32) -> Result<u32, Failed> {
        Ok(n)
    }
}

/// How long a test waits for something that should happen at once, before failing.
const PATIENCE: Duration = Duration::from_secs(5);

fn sqlite() -> (TempDb, Arc<SqliteStore>) {
    let db = TempDb::new();
    let store = db.open();
    (db, store)
}

fn ctx<S: Store>(store: &Arc<S>, run_id: &str, gate: Gate) -> Ctx<Gate> {
    Ctx::builder(gate)
        .store(Arc::clone(store))
        .run_id(run_id)
        .build()
}

fn blocking() -> Gate {
    Gate {
        block: AtomicBool::new(true),
        ..Gate::default()
    }
}

fn failing_last() -> Gate {
    Gate {
        fail_last: AtomicBool::new(true),
        ..Gate::default()
    }
}

async fn info<S: Store>(store: &S, run_id: &str) -> RunInfo {
    store.status(&run_id.into()).await.unwrap().expect("stored")
}

fn ids(runs: &[RunInfo]) -> Vec<&str> {
    let mut ids: Vec<&str> = runs.iter().map(|r| r.run_id.as_str()).collect();
    ids.sort_unstable();
    ids
}

fn steps(history: &[HistoryEntry]) -> Vec<&str> {
    history.iter().map(|h| h.step.as_str()).collect()
}

/// Whether `error` is `RuntimeError::Stopped` with `step` and `status`.
fn is_stopped(
    error: &(impl AsRuntime + std::fmt::Debug),
    step: Option<&str>,
    status: RunStatus,
) -> Result<(), String> {
    match error.runtime() {
        Some(RuntimeError::Stopped {
            step: s,
            status: st,
            ..
        }) if *s == step && *st == status => Ok(()),
        _ => Err(format!(
            "expected Stopped({step:?}, {status}), got {error:?}"
        )),
    }
}

/// The runtime error inside a workflow's `FlowError`.
trait AsRuntime {
    fn runtime(&self) -> Option<&RuntimeError>;
}

impl AsRuntime for pipeline::FlowError {
    fn runtime(&self) -> Option<&RuntimeError> {
        match self {
            Self::Runtime(e) => Some(e),
            _ => None,
        }
    }
}

impl AsRuntime for fan::FlowError {
    fn runtime(&self) -> Option<&RuntimeError> {
        match self {
            Self::Runtime(e) => Some(e),
            _ => None,
        }
    }
}

/// Starts `pipeline` as `run_id` with `wait` blocking, and returns once `wait` runs.
async fn start_blocked<S: Store>(
    store: &Arc<S>,
    run_id: &str,
) -> (
    Ctx<Gate>,
    tokio::task::JoinHandle<Result<String, pipeline::FlowError>>,
) {
    let ctx = ctx(store, run_id, blocking());
    let task = {
        let ctx = ctx.clone();
        tokio::spawn(async move { pipeline::Workflow::run(&ctx, 1).await })
    };
    tokio::time::timeout(PATIENCE, ctx.deps().entered.notified())
        .await
        .expect("`wait` started");
    (ctx, task)
}

// --- Cancel while a step runs -------------------------------------------------------------

async fn cancel_while_a_step_runs<S: RunControl>(store: Arc<S>) {
    let (ctx, task) = start_blocked(&store, "r1").await;
    assert_eq!(info(&*store, "r1").await.step, "first");

    // `wait` is running: the run is cancelled under it.
    let cancelled = store.cancel(&"r1".into()).await.unwrap();
    assert_eq!(cancelled.status, RunStatus::Cancelled);
    assert_eq!(
        (cancelled.step.as_str(), cancelled.checkpoints),
        ("first", 2)
    );
    ctx.deps().release.notify_one();

    // `wait` completes, its checkpoint is refused, and `last` never starts.
    let error = task.await.unwrap().unwrap_err();
    is_stopped(&error, Some("wait"), RunStatus::Cancelled).unwrap();
    let message = error.to_string();
    assert!(
        message.contains("run `r1` of workflow `pipeline` is cancelled")
            && message.contains("after step `wait`, whose result was not stored"),
        "{message}"
    );
    assert_eq!(ctx.deps().counts(), [1, 1, 0]);
    let after = info(&*store, "r1").await;
    assert_eq!(after, cancelled);

    // `run_or_resume` refuses it, running nothing and changing nothing.
    let again = self::ctx(&store, "r1", Gate::default());
    let error = pipeline::Workflow::run_or_resume(&again, 1)
        .await
        .unwrap_err();
    is_stopped(&error, None, RunStatus::Cancelled).unwrap();
    assert!(
        error
            .to_string()
            .contains("nothing ran; it cannot be resumed"),
        "{error}"
    );
    assert_eq!(again.deps().counts(), [0, 0, 0]);
    assert_eq!(info(&*store, "r1").await, cancelled);

    // A cancelled run stays cancelled: cancelling it again changes nothing, and it cannot be
    // paused or unpaused.
    assert_eq!(store.cancel(&"r1".into()).await.unwrap(), cancelled);
    for (result, to) in [
        (store.pause(&"r1".into()).await, RunStatus::Paused),
        (store.unpause(&"r1".into()).await, RunStatus::Running),
    ] {
        assert!(
            matches!(
                result,
                Err(ControlError::Transition { status: RunStatus::Cancelled, to: t, .. }) if t == to
            ),
            "{result:?}"
        );
    }
    assert_eq!(info(&*store, "r1").await, cancelled);
}

#[tokio::test]
async fn cancel_while_a_step_runs_sqlite() {
    let (_dir, store) = sqlite();
    cancel_while_a_step_runs(Arc::clone(&store)).await;
    // The history has the run's start and the one stored step; a cancelled run is not one to
    // resume.
    assert_eq!(
        steps(&store.history(&"r1".into()).await.unwrap()),
        ["", "first"]
    );
    assert!(store.unfinished_runs().await.unwrap().is_empty());
}

#[tokio::test]
async fn cancel_while_a_step_runs_memory() {
    let store = Arc::new(MemoryStore::new());
    cancel_while_a_step_runs(Arc::clone(&store)).await;
    let history = store.history(&"r1".into());
    assert_eq!(
        history.iter().map(|c| c.step.as_str()).collect::<Vec<_>>(),
        ["", "first"]
    );
}

// --- Pause, then unpause ------------------------------------------------------------------

async fn pause_then_unpause<S: RunControl>(store: Arc<S>) {
    let (ctx, task) = start_blocked(&store, "r2").await;
    let paused = store.pause(&"r2".into()).await.unwrap();
    assert_eq!(paused.status, RunStatus::Paused);
    // Pausing it again changes nothing.
    assert_eq!(store.pause(&"r2".into()).await.unwrap(), paused);
    ctx.deps().release.notify_one();

    let error = task.await.unwrap().unwrap_err();
    is_stopped(&error, Some("wait"), RunStatus::Paused).unwrap();
    assert!(
        error
            .to_string()
            .contains("the step runs again when the run is unpaused and resumed"),
        "{error}"
    );
    assert_eq!(ctx.deps().counts(), [1, 1, 0]);
    assert_eq!(info(&*store, "r2").await, paused);

    // While paused, `run_or_resume` refuses it.
    let early = self::ctx(&store, "r2", Gate::default());
    let error = pipeline::Workflow::run_or_resume(&early, 1)
        .await
        .unwrap_err();
    is_stopped(&error, None, RunStatus::Paused).unwrap();
    assert!(error.to_string().contains("unpause it"), "{error}");
    assert_eq!(early.deps().counts(), [0, 0, 0]);

    // Unpaused, it continues from its last checkpoint: `first` is not run again, `wait`
    // (whose result was not stored) is.
    let running = store.unpause(&"r2".into()).await.unwrap();
    assert_eq!(running.status, RunStatus::Running);
    // Two checkpoints: the run's start and `first`.
    assert_eq!((running.step.as_str(), running.checkpoints), ("first", 2));
    assert_eq!(store.unpause(&"r2".into()).await.unwrap(), running);
    let resumed = self::ctx(&store, "r2", Gate::default());
    let out = pipeline::Workflow::run_or_resume(&resumed, 99).await;
    assert_eq!(out.unwrap(), "<20>");
    assert_eq!(resumed.deps().counts(), [0, 1, 1]);

    let done = info(&*store, "r2").await;
    assert_eq!(done.status, RunStatus::Finished);
    assert_eq!((done.step.as_str(), done.checkpoints), ("last", 4));
    assert!(done.created_at <= done.updated_at);
}

#[tokio::test]
async fn pause_then_unpause_sqlite() {
    let (_dir, store) = sqlite();
    pause_then_unpause(Arc::clone(&store)).await;
    let history = store.history(&"r2".into()).await.unwrap();
    assert_eq!(steps(&history), ["", "first", "wait", "last"]);
    assert!(history.iter().map(|h| h.seq).eq(1..=4));
}

#[tokio::test]
async fn pause_then_unpause_memory() {
    pause_then_unpause(Arc::new(MemoryStore::new())).await;
}

#[tokio::test]
async fn a_fan_out_stops_after_the_branch_that_was_running() {
    let (_dir, store) = sqlite();
    let ctx = ctx(&store, "f1", blocking());
    let task = {
        let ctx = ctx.clone();
        tokio::spawn(async move { fan::Workflow::run(&ctx, 1).await })
    };
    tokio::time::timeout(PATIENCE, ctx.deps().entered.notified())
        .await
        .expect("`slow` started");
    // `quick` may or may not have stored its checkpoint yet; `slow` has not.
    store.pause(&"f1".into()).await.unwrap();
    ctx.deps().release.notify_one();

    let error = task.await.unwrap().unwrap_err();
    let stopped_at = match error.runtime() {
        Some(RuntimeError::Stopped {
            step: Some(step),
            status: RunStatus::Paused,
            ..
        }) => *step,
        _ => panic!("expected Stopped, got {error:?}"),
    };
    assert!(["quick", "slow"].contains(&stopped_at), "{stopped_at}");
    assert_eq!(ctx.deps().counts()[2], 0, "the join never ran");
    let history = store.history(&"f1".into()).await.unwrap();
    assert!(!steps(&history).contains(&"slow"), "{history:?}");

    // Unpaused, the branches not stored run and the join completes the run.
    store.unpause(&"f1".into()).await.unwrap();
    let resumed = self::ctx(&store, "f1", Gate::default());
    assert_eq!(fan::Workflow::run_or_resume(&resumed, 1).await.unwrap(), 5);
    let history = store.history(&"f1".into()).await.unwrap();
    let mut stored = steps(&history);
    stored.sort_unstable();
    // "": the run's start.
    assert_eq!(stored, ["", "join", "quick", "slow", "split"]);
}

// --- Status and list ----------------------------------------------------------------------

/// Four runs: `done` (finished), `open` (its last step failed: running), `held` (the same,
/// then paused) of `pipeline`, and `solo` of `other` (finished).
async fn four_runs<S: RunControl>(store: &Arc<S>) {
    pipeline::Workflow::run(&ctx(store, "done", Gate::default()), 1)
        .await
        .unwrap();
    for run in ["open", "held"] {
        let error = pipeline::Workflow::run(&ctx(store, run, failing_last()), 1)
            .await
            .unwrap_err();
        assert_eq!(error.step(), Some("last"));
    }
    store.pause(&"held".into()).await.unwrap();
    let solo = Ctx::builder(())
        .store(Arc::clone(store))
        .run_id("solo")
        .build();
    other::Workflow::run(&solo, 7).await.unwrap();
}

async fn status_and_list<S: RunControl>(store: Arc<S>) {
    four_runs(&store).await;

    let open = info(&*store, "open").await;
    assert_eq!(open.run_id, RunId::from("open"));
    assert_eq!(open.workflow, pipeline::NAME);
    assert_eq!(open.fingerprint, pipeline::FINGERPRINT);
    assert_eq!(open.status, RunStatus::Running);
    assert_eq!((open.step.as_str(), open.checkpoints), ("wait", 3));
    assert!(open.created_at <= open.updated_at);
    let done = info(&*store, "done").await;
    assert_eq!((done.status, done.checkpoints), (RunStatus::Finished, 4));
    assert_eq!(info(&*store, "held").await.status, RunStatus::Paused);
    assert_eq!(info(&*store, "solo").await.workflow, other::NAME);
    assert!(store.status(&"nobody".into()).await.unwrap().is_none());

    let list = |filter: RunFilter| {
        let store = Arc::clone(&store);
        async move { store.list(&filter).await.unwrap() }
    };
    let all = list(RunFilter::new()).await;
    assert_eq!(ids(&all), ["done", "held", "open", "solo"]);
    assert!(
        all.windows(2).all(|w| w[0].updated_at >= w[1].updated_at),
        "most recently updated first: {all:?}"
    );
    assert_eq!(
        all.iter().find(|r| r.run_id.as_str() == "open"),
        Some(&open)
    );
    let by_workflow = list(RunFilter::new().workflow(pipeline::NAME)).await;
    assert_eq!(ids(&by_workflow), ["done", "held", "open"]);
    let finished = list(RunFilter::new().status(RunStatus::Finished)).await;
    assert_eq!(ids(&finished), ["done", "solo"]);
    let both = RunFilter::new()
        .workflow(pipeline::NAME)
        .status(RunStatus::Running);
    assert_eq!(ids(&list(both).await), ["open"]);
    assert_eq!(
        ids(&list(RunFilter::new().status(RunStatus::Paused)).await),
        ["held"]
    );
    assert!(
        list(RunFilter::new().status(RunStatus::Cancelled))
            .await
            .is_empty()
    );
    assert!(list(RunFilter::new().workflow("nope")).await.is_empty());
    let two = list(RunFilter::new().limit(2)).await;
    assert_eq!(two, all[..2]);
    assert!(list(RunFilter::new().limit(0)).await.is_empty());
}

#[tokio::test]
async fn status_and_list_sqlite() {
    let (_dir, store) = sqlite();
    status_and_list(Arc::clone(&store)).await;
    // The run to resume after a restart is the running one, not the paused one.
    assert_eq!(
        store.unfinished_runs().await.unwrap(),
        [RunId::from("open")]
    );
}

#[tokio::test]
async fn status_and_list_memory() {
    status_and_list(Arc::new(MemoryStore::new())).await;
}

// Refused moves, and the refusal of a stopped run's checkpoint, are store behaviour: the
// conformance suite checks them for every store (`durable/store_conformance.rs`).

// --- Incompatible runs --------------------------------------------------------------------

async fn an_incompatible_run_is_marked<S: RunControl>(store: Arc<S>) {
    four_runs(&store).await;
    // `open` and `done` as stored by older code: the same workflow, another fingerprint.
    for run in ["open", "done"] {
        let mut old = store.latest(&run.into()).await.unwrap().unwrap();
        old.fingerprint = "0ld0ld0ld0ld0ld0".to_owned();
        store.save(old).await.unwrap();
    }
    let stored = store.latest(&"open".into()).await.unwrap().unwrap();

    let again = ctx(&store, "open", Gate::default());
    let error = pipeline::Workflow::run_or_resume(&again, 1)
        .await
        .unwrap_err();
    assert!(
        matches!(
            error.runtime(),
            Some(RuntimeError::Incompatible { stored_fingerprint, .. }) if stored_fingerprint == "0ld0ld0ld0ld0ld0"
        ),
        "{error:?}"
    );
    assert_eq!(again.deps().counts(), [0, 0, 0]);
    let marked = info(&*store, "open").await;
    assert_eq!(marked.status, RunStatus::Incompatible);
    assert_eq!(marked.fingerprint, "0ld0ld0ld0ld0ld0");
    assert_eq!(store.latest(&"open".into()).await.unwrap().unwrap(), stored);
    let found = store
        .list(&RunFilter::new().status(RunStatus::Incompatible))
        .await
        .unwrap();
    assert_eq!(ids(&found), ["open"]);

    // A finished run keeps its status; so does a run of another workflow under the same id.
    let error = pipeline::Workflow::run_or_resume(&ctx(&store, "done", Gate::default()), 1)
        .await
        .unwrap_err();
    assert!(
        matches!(error.runtime(), Some(RuntimeError::Incompatible { .. })),
        "{error:?}"
    );
    assert_eq!(info(&*store, "done").await.status, RunStatus::Finished);
    let stray = Checkpoint::new(
        "stray".into(),
        other::NAME,
        other::FINGERPRINT,
        "only",
        false,
        serde_json::json!({ "Only": { "input": 1, "loops": {} } }),
    );
    store.save(stray).await.unwrap();
    let error = pipeline::Workflow::run_or_resume(&ctx(&store, "stray", Gate::default()), 1)
        .await
        .unwrap_err();
    assert!(
        matches!(error.runtime(), Some(RuntimeError::Incompatible { stored_workflow, .. }) if stored_workflow == "other"),
        "{error:?}"
    );
    assert_eq!(info(&*store, "stray").await.status, RunStatus::Running);

    // It cannot be unpaused (it is not paused), and the code that stored it can still
    // continue it: its next checkpoint makes it running again.
    let refused = store.unpause(&"open".into()).await;
    assert!(
        matches!(
            refused,
            Err(ControlError::Transition {
                status: RunStatus::Incompatible,
                ..
            })
        ),
        "{refused:?}"
    );
    store.save(stored).await.unwrap();
    assert_eq!(info(&*store, "open").await.status, RunStatus::Running);
}

#[tokio::test]
async fn an_incompatible_run_is_marked_sqlite() {
    let (_dir, store) = sqlite();
    an_incompatible_run_is_marked(store).await;
}

#[tokio::test]
async fn an_incompatible_run_is_marked_memory() {
    an_incompatible_run_is_marked(Arc::new(MemoryStore::new())).await;
}

// --- Files made before run control --------------------------------------------------------

/// The schema of version 1, before run control: no `status` column.
const SCHEMA_V1: &str = "
CREATE TABLE runs (
    run_id      TEXT    PRIMARY KEY NOT NULL,
    workflow    TEXT    NOT NULL,
    fingerprint TEXT    NOT NULL,
    step        TEXT    NOT NULL,
    state       TEXT    NOT NULL,
    finished    INTEGER NOT NULL,
    checkpoints INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX runs_by_finished ON runs (finished, updated_at);
CREATE TABLE history (
    run_id   TEXT    NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    seq      INTEGER NOT NULL,
    step     TEXT    NOT NULL,
    finished INTEGER NOT NULL,
    at       INTEGER NOT NULL,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
CREATE TABLE calls (
    run_id      TEXT    NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    n           INTEGER NOT NULL,
    kind        TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    step        TEXT    NOT NULL,
    call_index  INTEGER NOT NULL,
    attempts    INTEGER NOT NULL,
    duration_us INTEGER NOT NULL,
    error       TEXT,
    PRIMARY KEY (run_id, seq, n)
) WITHOUT ROWID;
PRAGMA user_version = 1;
";

/// Writes a version 1 file holding `old-done` (finished) and `old-open` (stored after `first`,
/// `wait` next with 5), as the store before run control wrote them.
fn write_v1_file(path: &Path) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(SCHEMA_V1).unwrap();
    let envelope = |state: serde_json::Value| {
        serde_json::json!({
            "v": 1,
            "workflow": pipeline::NAME,
            "fingerprint": pipeline::FINGERPRINT,
            "state": state,
        })
        .to_string()
    };
    let runs = [
        (
            "old-done",
            "last",
            envelope(serde_json::json!({ "Completed": { "output": "<20>" } })),
            true,
            3,
        ),
        (
            "old-open",
            "first",
            envelope(serde_json::json!({ "Wait": { "input": 5, "loops": {} } })),
            false,
            1,
        ),
    ];
    for (run, step, state, finished, checkpoints) in runs {
        conn.execute(
            "INSERT INTO runs VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 1000, 2000)",
            rusqlite::params![
                run,
                pipeline::NAME,
                pipeline::FINGERPRINT,
                step,
                state,
                finished,
                checkpoints
            ],
        )
        .unwrap();
        for seq in 1..=checkpoints {
            let step = ["first", "wait", "last"][usize::try_from(seq - 1).unwrap()];
            conn.execute(
                "INSERT INTO history VALUES (?1, ?2, ?3, ?4, 1000)",
                rusqlite::params![run, seq, step, finished && seq == checkpoints],
            )
            .unwrap();
        }
    }
}

fn user_version(path: &Path) -> i64 {
    rusqlite::Connection::open(path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .unwrap()
}

#[tokio::test]
async fn a_file_made_before_run_control_opens_and_works() {
    let db = TempDb::new();
    write_v1_file(db.path());

    let store = db.open();
    assert_eq!(user_version(db.path()), flow_tests::store::SQLITE_SCHEMA);
    let done = info(&*store, "old-done").await;
    assert_eq!((done.status, done.checkpoints), (RunStatus::Finished, 3));
    let open = info(&*store, "old-open").await;
    assert_eq!(
        (open.status, open.step.as_str(), open.checkpoints),
        (RunStatus::Running, "first", 1)
    );
    assert_eq!(
        open.created_at,
        std::time::UNIX_EPOCH + Duration::from_secs(1)
    );
    assert_eq!(
        store.unfinished_runs().await.unwrap(),
        [RunId::from("old-open")]
    );
    assert_eq!(
        ids(&store
            .list(&RunFilter::new().status(RunStatus::Running))
            .await
            .unwrap()),
        ["old-open"]
    );

    // Control works on the old runs, and the open one continues where it was.
    store.pause(&"old-open".into()).await.unwrap();
    store.unpause(&"old-open".into()).await.unwrap();
    let resumed = ctx(&store, "old-open", Gate::default());
    assert_eq!(
        pipeline::Workflow::run_or_resume(&resumed, 1)
            .await
            .unwrap(),
        "<50>"
    );
    assert_eq!(resumed.deps().counts(), [0, 1, 1]);
    assert_eq!(
        steps(&store.history(&"old-open".into()).await.unwrap()),
        ["first", "wait", "last"]
    );
    drop(store);

    // Opening it again changes nothing more.
    let store = SqliteStore::open(db.path()).unwrap();
    assert_eq!(user_version(db.path()), flow_tests::store::SQLITE_SCHEMA);
    assert_eq!(info(&store, "old-open").await.status, RunStatus::Finished);
    assert_eq!(store.list(&RunFilter::new()).await.unwrap().len(), 2);
}

#[tokio::test]
async fn pruning_takes_cancelled_runs_with_finished_ones() {
    let (_dir, store) = sqlite();
    four_runs(&store).await;
    store.cancel(&"open".into()).await.unwrap();
    let pruned = store
        .prune_finished(flow_runtime::store::Prune::OlderThan(Duration::ZERO))
        .await
        .unwrap();
    assert_eq!(pruned, 3, "done, solo and the cancelled open");
    assert_eq!(ids(&store.list(&RunFilter::new()).await.unwrap()), ["held"]);
}
