//! `SqliteStore` under real workflows: checkpoints survive closing and reopening the file and
//! a run resumes from them; the history has every step once, in order; the stored envelope says
//! which code wrote the state; oversized checkpoints and corrupt rows give clear errors without
//! touching other runs; 1,000 runs at once against one file all complete.

use flow_runtime::error::StoreError;
use flow_runtime::prelude::*;
use flow_runtime::store::{HistoryEntry, Prune, SqliteStore};
use flow_tests::store::TempDb;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Debug, thiserror::Error)]
#[error("sqlite test step failed")]
pub struct Failed;

/// Makes `show` fail once when set: the run stops after `double`'s checkpoint, like a process
/// that died there.
#[derive(Debug, Default)]
pub struct Faults {
    pub fail_show: AtomicBool,
}

#[workflow(deps = Faults)]
pub mod order {
    use super::*;

    #[step(entry)]
    pub async fn parse(s: String) -> Result<u32, Failed> {
        s.parse().map_err(|_| Failed)
    }

    #[step(after = parse)]
    pub async fn double(n: u32) -> Result<u64, Failed> {
        Ok(u64::from(n) * 2)
    }

    #[step(after = double, exit)]
    pub async fn show(ctx: &Ctx<Faults>, n: u64) -> Result<String, Failed> {
        if ctx.deps().fail_show.swap(false, Ordering::SeqCst) {
            return Err(Failed);
        }
        Ok(format!("<{n}>"))
    }
}

#[workflow]
pub mod echo {
    use super::*;

    #[step(entry)]
    pub async fn keep(s: String) -> Result<String, Failed> {
        Ok(s)
    }

    #[step(after = keep, exit)]
    pub async fn done(s: String) -> Result<usize, Failed> {
        Ok(s.len())
    }
}

/// What step `k` of [`ten`] does.
fn mix(x: u64, k: u64) -> u64 {
    x.wrapping_mul(31).wrapping_add(k)
}

#[workflow]
pub mod ten {
    use super::*;

    #[step(entry)]
    pub async fn s1(x: u64) -> Result<u64, Failed> {
        Ok(mix(x, 1))
    }
    #[step(after = s1)]
    pub async fn s2(x: u64) -> Result<u64, Failed> {
        Ok(mix(x, 2))
    }
    #[step(after = s2)]
    pub async fn s3(x: u64) -> Result<u64, Failed> {
        Ok(mix(x, 3))
    }
    #[step(after = s3)]
    pub async fn s4(x: u64) -> Result<u64, Failed> {
        Ok(mix(x, 4))
    }
    #[step(after = s4)]
    pub async fn s5(x: u64) -> Result<u64, Failed> {
        Ok(mix(x, 5))
    }
    #[step(after = s5)]
    pub async fn s6(x: u64) -> Result<u64, Failed> {
        Ok(mix(x, 6))
    }
    #[step(after = s6)]
    pub async fn s7(x: u64) -> Result<u64, Failed> {
        Ok(mix(x, 7))
    }
    #[step(after = s7)]
    pub async fn s8(x: u64) -> Result<u64, Failed> {
        Ok(mix(x, 8))
    }
    #[step(after = s8)]
    pub async fn s9(x: u64) -> Result<u64, Failed> {
        Ok(mix(x, 9))
    }
    #[step(after = s9, exit)]
    pub async fn s10(x: u64) -> Result<u64, Failed> {
        Ok(mix(x, 10))
    }
}

fn order_ctx(store: &Arc<SqliteStore>, run_id: &str, fail_show: bool) -> Ctx<Faults> {
    Ctx::builder(Faults {
        fail_show: AtomicBool::new(fail_show),
    })
    .store(Arc::clone(store))
    .run_id(run_id)
    .build()
}

fn steps(history: &[HistoryEntry]) -> Vec<&str> {
    history.iter().map(|h| h.step.as_str()).collect()
}

/// The messages of an error and all its sources, joined.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

fn raw(path: &Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .unwrap();
    conn
}

#[tokio::test]
async fn reopened_file_resumes_to_the_same_output() {
    let db = TempDb::new();
    let store = db.open();

    // r1 runs through; r2 stops after `double`, as if its process had died there.
    let out = order::Workflow::run(&order_ctx(&store, "r1", false), "21".into()).await;
    assert_eq!(out.unwrap(), "<42>");
    let err = order::Workflow::run(&order_ctx(&store, "r2", true), "21".into())
        .await
        .unwrap_err();
    assert_eq!(err.step(), Some("show"));
    let r1_before = store.latest(&"r1".into()).await.unwrap().unwrap();
    let r2_before = store.latest(&"r2".into()).await.unwrap().unwrap();
    assert_eq!(store.unfinished_runs().await.unwrap(), [RunId::from("r2")]);
    drop(store);

    let store = db.open();
    let r1 = store.latest(&"r1".into()).await.unwrap().unwrap();
    assert_eq!(r1, r1_before);
    assert!(r1.finished);
    assert_eq!(r1.step, "show");
    let state: order::FlowState = serde_json::from_value(r1.state).unwrap();
    assert!(state.is_completed());

    let r2 = store.latest(&"r2".into()).await.unwrap().unwrap();
    assert_eq!(r2, r2_before);
    assert!(!r2.finished);
    assert_eq!(r2.step, "double");
    assert_eq!(r2.workflow, order::NAME);
    assert_eq!(r2.fingerprint, order::FINGERPRINT);
    let state: order::FlowState = serde_json::from_value(r2.state).unwrap();
    assert_eq!(state.step(), Some("show"));
    let out = order::Workflow::resume(&order_ctx(&store, "r2", false), state).await;
    assert_eq!(out.unwrap(), "<42>");

    // The run's start (""), then every step once, in order, numbered from 1; only the last one
    // finished.
    for run in ["r1", "r2"] {
        let history = store.history(&run.into()).await.unwrap();
        assert_eq!(steps(&history), ["", "parse", "double", "show"], "{run}");
        assert!(history.iter().map(|h| h.seq).eq(1..=4));
        assert!(
            history
                .iter()
                .map(|h| h.finished)
                .eq([false, false, false, true])
        );
        assert!(history.windows(2).all(|w| w[0].at <= w[1].at));
    }
    assert!(store.unfinished_runs().await.unwrap().is_empty());

    // With the run id as idempotency key, a finished run answers from the file, running and
    // storing nothing more.
    let out = order::Workflow::run_or_resume(&order_ctx(&store, "r1", true), "7".into()).await;
    assert_eq!(out.unwrap(), "<42>");
    assert_eq!(store.history(&"r1".into()).await.unwrap().len(), 4);

    assert!(store.history(&"nobody".into()).await.unwrap().is_empty());
    assert!(store.latest(&"nobody".into()).await.unwrap().is_none());
}

#[tokio::test]
async fn the_state_column_is_an_envelope_naming_the_code() {
    let db = TempDb::new();
    let store = db.open();
    order::Workflow::run(&order_ctx(&store, "r1", false), "5".into())
        .await
        .unwrap();

    let (state, finished, count): (String, bool, i64) = raw(db.path())
        .query_row(
            "SELECT state, finished, checkpoints FROM runs WHERE run_id = 'r1'",
            [],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .unwrap();
    assert!(finished);
    // The run's start and three steps.
    assert_eq!(count, 4);
    let envelope: serde_json::Value = serde_json::from_str(&state).unwrap();
    assert_eq!(
        envelope,
        serde_json::json!({
            "v": 1,
            "workflow": "order",
            "fingerprint": order::FINGERPRINT,
            "state": { "Completed": { "output": "<10>" } },
        })
    );
    // The fields in the documented order, version first.
    assert!(
        state.starts_with(r#"{"v":1,"workflow":"order","fingerprint":"#),
        "{state}"
    );

    let mode: String = raw(db.path())
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[tokio::test]
async fn an_oversized_checkpoint_is_refused_before_writing() {
    let db = TempDb::new();
    let store = Arc::new(
        SqliteStore::open(db.path())
            .unwrap()
            .with_max_checkpoint_bytes(200),
    );
    assert_eq!(store.max_checkpoint_bytes(), 200);
    let ctx = Ctx::builder(())
        .store(Arc::clone(&store))
        .run_id("big")
        .build();

    // `run`: the run's start, which holds the input, is already too large.
    let err = echo::Workflow::run(&ctx, "x".repeat(1000))
        .await
        .unwrap_err();
    let message = chain(&err);
    assert!(
        matches!(err, echo::FlowError::Runtime(RuntimeError::Start { .. })),
        "{message}"
    );
    assert!(
        message.contains("run `big`: the run's start is")
            && message.contains("over this store's limit of 200 bytes"),
        "{message}"
    );
    // From a state: the checkpoint after the step.
    let start = <echo::Workflow as Workflow>::start("x".repeat(1000));
    let err = echo::Workflow::resume(&ctx, start).await.unwrap_err();
    let message = chain(&err);
    assert!(
        matches!(
            err,
            echo::FlowError::Runtime(RuntimeError::Checkpoint { step: "keep", .. })
        ),
        "{message}"
    );
    assert!(
        message.contains("run `big`: the checkpoint after step `keep` is")
            && message.contains("over this store's limit of 200 bytes"),
        "{message}"
    );
    // Nothing of the run was written.
    assert!(store.latest(&"big".into()).await.unwrap().is_none());
    assert!(store.history(&"big".into()).await.unwrap().is_empty());

    // A small one under the same limit goes through.
    let ctx = Ctx::builder(())
        .store(Arc::clone(&store))
        .run_id("small")
        .build();
    assert_eq!(echo::Workflow::run(&ctx, "xyz".into()).await.unwrap(), 3);
}

#[tokio::test]
async fn a_corrupt_row_fails_its_run_only() {
    let db = TempDb::new();
    let store = db.open();
    for run in ["a", "b", "c", "d"] {
        order::Workflow::run(&order_ctx(&store, run, false), "1".into())
            .await
            .unwrap();
    }
    let conn = raw(db.path());
    conn.execute("UPDATE runs SET state = 'garbage{' WHERE run_id = 'a'", [])
        .unwrap();
    conn.execute(
        r#"UPDATE runs SET state = '{"Completed":{"output":"<2>"}}' WHERE run_id = 'b'"#,
        [],
    )
    .unwrap();
    conn.execute("UPDATE runs SET state = X'FF00' WHERE run_id = 'c'", [])
        .unwrap();

    let err: StoreError = store.latest(&"a".into()).await.unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("run `a`: its stored checkpoint is corrupt (`state` is not JSON"),
        "{message}"
    );
    let message = store.latest(&"b".into()).await.unwrap_err().to_string();
    assert!(
        message.contains("run `b`: its stored checkpoint is corrupt")
            && message.contains("not a checkpoint envelope"),
        "{message}"
    );
    let message = store.latest(&"c".into()).await.unwrap_err().to_string();
    assert!(
        message.contains("run `c`: its stored checkpoint is corrupt")
            && message.contains("`state` is not JSON"),
        "{message}"
    );

    // The others read as before, and the store keeps working for old and new runs.
    let d = store.latest(&"d".into()).await.unwrap().unwrap();
    assert!(d.finished);
    assert_eq!(steps(&store.history(&"a".into()).await.unwrap()).len(), 4);
    let out = order::Workflow::run(&order_ctx(&store, "e", false), "4".into()).await;
    assert_eq!(out.unwrap(), "<8>");
    assert!(store.latest(&"e".into()).await.unwrap().unwrap().finished);
}

#[tokio::test]
async fn a_run_id_belongs_to_one_workflow() {
    let store = Arc::new(SqliteStore::open_in_memory().unwrap());
    order::Workflow::run(&order_ctx(&store, "r1", false), "1".into())
        .await
        .unwrap();
    let ctx = Ctx::builder(())
        .store(Arc::clone(&store))
        .run_id("r1")
        .build();
    // `run` stores a new run's start only where the store has no run of that id.
    let err = echo::Workflow::run(&ctx, "hi".into()).await.unwrap_err();
    assert!(
        matches!(
            err,
            echo::FlowError::Runtime(RuntimeError::AlreadyStarted { .. })
        ),
        "{err:?}"
    );
    // A checkpoint of another workflow under that id, from `resume`, is refused by the store.
    let start = <echo::Workflow as Workflow>::start("hi".into());
    let err = echo::Workflow::resume(&ctx, start).await.unwrap_err();
    let message = chain(&err);
    assert!(
        message.contains("run `r1` belongs to workflow `order`, not `echo`"),
        "{message}"
    );
    // r1 is untouched.
    let history = store.history(&"r1".into()).await.unwrap();
    assert_eq!(steps(&history), ["", "parse", "double", "show"]);
}

#[tokio::test]
async fn pruning_keeps_unfinished_runs() {
    let store = Arc::new(SqliteStore::open_in_memory().unwrap());
    for run in ["f1", "f2", "f3"] {
        order::Workflow::run(&order_ctx(&store, run, false), "1".into())
            .await
            .unwrap();
    }
    order::Workflow::run(&order_ctx(&store, "u", true), "1".into())
        .await
        .unwrap_err();

    // Nothing is older than an hour.
    let hour = std::time::Duration::from_secs(3600);
    assert_eq!(
        store.prune_finished(Prune::OlderThan(hour)).await.unwrap(),
        0
    );
    assert_eq!(store.prune_finished(Prune::KeepLast(1)).await.unwrap(), 2);
    let kept: Vec<bool> = still_stored(&store, &["f1", "f2", "f3"]).await;
    assert_eq!(kept.iter().filter(|k| **k).count(), 1);
    assert_eq!(
        store
            .prune_finished(Prune::OlderThan(std::time::Duration::ZERO))
            .await
            .unwrap(),
        1
    );
    assert_eq!(still_stored(&store, &["f1", "f2", "f3"]).await, [false; 3]);
    // Their history went with them; the unfinished run stays.
    assert!(store.history(&"f3".into()).await.unwrap().is_empty());
    assert_eq!(store.unfinished_runs().await.unwrap(), [RunId::from("u")]);
    assert_eq!(
        steps(&store.history(&"u".into()).await.unwrap()),
        ["", "parse", "double"]
    );
}

/// Whether each run still has a checkpoint.
async fn still_stored(store: &SqliteStore, runs: &[&str]) -> Vec<bool> {
    let mut out = Vec::new();
    for run in runs {
        out.push(store.latest(&(*run).into()).await.unwrap().is_some());
    }
    out
}

#[tokio::test]
async fn debug_shows_no_state() {
    let db = TempDb::new();
    let store = SqliteStore::open(db.path()).unwrap();
    let debug = format!("{store:?}");
    assert!(debug.starts_with("SqliteStore { path: "), "{debug}");
    assert!(debug.contains("runs.sqlite") && debug.contains("max_checkpoint_bytes: 1048576"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_runs_share_one_file() {
    const RUNS: u64 = 1000;
    let db = TempDb::new();
    let store = db.open();

    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..RUNS {
        let ctx = Ctx::builder(())
            .store(Arc::clone(&store))
            .run_id(format!("run-{i}"))
            .build();
        tasks.spawn(async move { (i, ten::Workflow::run(&ctx, i).await) });
    }
    while let Some(done) = tasks.join_next().await {
        let (i, out) = done.unwrap();
        assert_eq!(out.unwrap(), (1..=10).fold(i, mix), "run-{i}");
    }

    // The run's start (""), then its ten steps.
    let expected_steps: Vec<String> = std::iter::once(String::new())
        .chain((1..=10).map(|k| format!("s{k}")))
        .collect();
    for i in 0..RUNS {
        let run_id = RunId::from(format!("run-{i}"));
        let history = store.history(&run_id).await.unwrap();
        assert_eq!(steps(&history), expected_steps, "{run_id}");
        let latest = store.latest(&run_id).await.unwrap().unwrap();
        assert!(latest.finished);
        let state: ten::FlowState = serde_json::from_value(latest.state).unwrap();
        assert!(state.is_completed());
    }
    assert!(store.unfinished_runs().await.unwrap().is_empty());
    let rows: i64 = raw(db.path())
        .query_row("SELECT count(*) FROM history", [], |row| row.get(0))
        .unwrap();
    // Each run's start and its ten steps.
    assert_eq!(rows, 11_000);
}
