//! The run API: a run's state (waiting for which event, until when), its typed result
//! (`Engine::outcome`), and awaiting its end (`Engine::wait_for`) by notification, with the
//! store read only as a fallback. Time is tokio's paused clock: the engine's and the waiter's
//! poll interval is an hour, so a result that comes sooner came by notification.

use flow_runtime::prelude::*;
use flow_runtime::state::{Engine, EngineError, Event, RunResult, Setup};
use flow_runtime::store::{MemoryStore, RunControl, RunState, RunStatus, SqliteStore};
use flow_tests::store::TempDb;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::time::Instant;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Failed(String);

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Approval {
    pub by: String,
}

const POLL: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);

#[workflow]
pub mod expense {
    use super::*;

    #[step(entry)]
    pub async fn submit(amount: u32) -> Result<u32, Failed> {
        if amount == 0 {
            return Err(Failed("nothing to pay".into()));
        }
        Ok(amount)
    }

    #[step(after = submit, exit, event = Approval, timeout = DAY)]
    pub async fn decide(amount: u32, approval: Event<Approval>) -> Result<String, Failed> {
        Ok(match approval {
            Event::Received(a) => format!("{amount} approved by {}", a.by),
            Event::TimedOut => format!("{amount} expired"),
        })
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

fn engine(store: &Arc<MemoryStore>) -> Engine<MemoryStore> {
    Engine::builder(Arc::clone(store))
        .lease(flow_tests::store::PAUSED_LEASE)
        .register::<expense::Workflow>(Setup::new(()))
        .register::<other::Workflow>(Setup::new(()))
        .poll_interval(POLL)
        .build()
}

/// Runs the engine in the background until the returned sender is dropped or fires.
fn run_engine(engine: &Engine<MemoryStore>) -> tokio::sync::oneshot::Sender<()> {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let engine = engine.clone();
    tokio::spawn(async move {
        engine
            .run_until(async {
                let _ = stopped.await;
            })
            .await
            .unwrap()
    });
    stop
}

#[tokio::test(start_paused = true)]
async fn awaiting_a_waiting_run_returns_its_output_once_the_event_arrives() {
    let store = Arc::new(MemoryStore::new());
    let engine = engine(&store);
    let _stop = run_engine(&engine);
    let run = engine.start::<expense::Workflow>("e1", 120).await.unwrap();
    let started = SystemTime::now();

    // A timeout: the run has not ended; it waits for its event, with the deadline.
    let waited = engine
        .wait_for::<expense::Workflow>(&run, Duration::from_secs(60))
        .await
        .unwrap();
    let RunResult::Unfinished(info) = waited else {
        panic!("the run waits: {waited:?}");
    };
    let RunState::Waiting { event, until } = info.state() else {
        panic!("the run waits for its event: {:?}", info.state());
    };
    assert_eq!(event, "Approval");
    let deadline = until.duration_since(started).unwrap();
    assert!(
        deadline > DAY - Duration::from_secs(60) && deadline <= DAY + Duration::from_secs(60),
        "the wait's deadline is a day away: {deadline:?}"
    );
    assert_eq!(info.status, RunStatus::Running);

    // Awaited while the event arrives: the waiter is told as the run finishes, long before
    // any poll would have looked.
    let waiter = tokio::spawn({
        let engine = engine.clone();
        let run = run.clone();
        async move {
            let began = Instant::now();
            let result = engine.wait_for::<expense::Workflow>(&run, DAY).await;
            (result, began.elapsed())
        }
    });
    tokio::task::yield_now().await;
    engine
        .send::<expense::Workflow, _>(&run, Approval { by: "Grace".into() })
        .await
        .unwrap();
    let (result, took) = waiter.await.unwrap();
    assert_eq!(
        result.unwrap(),
        RunResult::Finished("120 approved by Grace".to_owned())
    );
    assert!(
        took < POLL,
        "woken by notification, not by a poll: {took:?}"
    );

    // Once finished, the typed output is there at once.
    let outcome = engine.outcome::<expense::Workflow>(&run).await.unwrap();
    assert_eq!(outcome.finished().as_deref(), Some("120 approved by Grace"));
}

#[tokio::test(start_paused = true)]
async fn awaiting_a_failing_run_returns_the_step_and_the_reason() {
    let store = Arc::new(MemoryStore::new());
    let engine = engine(&store);
    let run = engine.start::<expense::Workflow>("e0", 0).await.unwrap();
    let waiter = tokio::spawn({
        let engine = engine.clone();
        let run = run.clone();
        async move {
            let began = Instant::now();
            let result = engine.wait_for::<expense::Workflow>(&run, DAY).await;
            (result, began.elapsed())
        }
    });
    let _stop = run_engine(&engine);
    let (result, took) = waiter.await.unwrap();
    let RunResult::Failed(failure) = result.unwrap() else {
        panic!("the run failed");
    };
    assert_eq!(failure.step.as_deref(), Some("submit"));
    assert_eq!(
        failure.reason,
        "workflow `expense`: step `submit` failed: nothing to pay"
    );
    assert!(
        took < POLL,
        "woken by notification, not by a poll: {took:?}"
    );

    // The same failure through the store: the run's status and its state.
    let info = store.status(&run).await.unwrap().unwrap();
    assert_eq!(info.failure, Some(failure.clone()));
    assert_eq!(
        info.state(),
        RunState::Failed {
            step: failure.step,
            reason: failure.reason,
        }
    );
}

#[tokio::test(start_paused = true)]
async fn a_run_driven_elsewhere_is_noticed_by_the_fallback_poll() {
    let store = Arc::new(MemoryStore::new());
    let engine = engine(&store);
    let run = engine.start::<other::Workflow>("o1", 7).await.unwrap();
    let waiter = tokio::spawn({
        let engine = engine.clone();
        let run = run.clone();
        async move {
            let began = Instant::now();
            let result = engine.wait_for::<other::Workflow>(&run, DAY).await;
            (result, began.elapsed())
        }
    });
    tokio::task::yield_now().await;
    // Not through this engine: a context on the same store resumes and finishes it.
    let ctx = Ctx::builder(())
        .run_id(run.clone())
        .store(Arc::clone(&store))
        .build();
    assert_eq!(other::Workflow::run_or_resume(&ctx, 7).await.unwrap(), 7);
    let (result, took) = waiter.await.unwrap();
    assert_eq!(result.unwrap(), RunResult::Finished(7));
    assert!(
        took >= POLL && took < 2 * POLL,
        "read once per poll interval, nothing told the waiter: {took:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_run_ends_the_wait() {
    let store = Arc::new(MemoryStore::new());
    let engine = engine(&store);
    let _stop = run_engine(&engine);
    let run = engine.start::<expense::Workflow>("c1", 5).await.unwrap();
    // Parked on its event; then cancelled from outside the engine.
    let waited = engine
        .wait_for::<expense::Workflow>(&run, Duration::from_secs(60))
        .await
        .unwrap();
    assert!(matches!(waited, RunResult::Unfinished(_)), "{waited:?}");
    store.cancel(&run).await.unwrap();
    let ended = engine
        .wait_for::<expense::Workflow>(&run, DAY)
        .await
        .unwrap();
    let RunResult::Unfinished(info) = ended else {
        panic!("a cancelled run has no output: {ended:?}");
    };
    assert_eq!(info.state(), RunState::Cancelled);
}

#[tokio::test]
async fn outcome_refuses_unknown_runs_and_other_workflows() {
    let store = Arc::new(MemoryStore::new());
    let engine = engine(&store);
    let unknown = engine
        .outcome::<expense::Workflow>(&"nope".into())
        .await
        .unwrap_err();
    assert!(
        matches!(unknown, EngineError::UnknownRun { .. }),
        "{unknown}"
    );
    let run = engine.start::<other::Workflow>("o1", 1).await.unwrap();
    let wrong = engine.outcome::<expense::Workflow>(&run).await.unwrap_err();
    assert!(
        matches!(&wrong, EngineError::Conflict { owner, .. } if owner == "other"),
        "{wrong}"
    );
    // Stored, not yet run: where it stands.
    let RunResult::Unfinished(info) = engine.outcome::<other::Workflow>(&run).await.unwrap() else {
        panic!("not run yet");
    };
    assert_eq!(info.state(), RunState::Running);
}

#[tokio::test]
async fn a_failure_stays_in_the_sqlite_history_after_a_retry() {
    let db = TempDb::new();
    let store: Arc<SqliteStore> = db.open();
    let engine = Engine::builder(Arc::clone(&store))
        .lease(flow_tests::store::PAUSED_LEASE)
        .register::<expense::Workflow>(Setup::new(()))
        .build();
    // A claim of 0 fails in `submit`, before any checkpoint but the start.
    let run = engine.start::<expense::Workflow>("s0", 0).await.unwrap();
    let waiting = engine.wait_for::<expense::Workflow>(&run, DAY);
    let (report, result) = tokio::join!(
        engine.run_until(async {
            while store.status(&run).await.unwrap().unwrap().status != RunStatus::Failed {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }),
        waiting
    );
    assert_eq!(report.unwrap().failed, 1);
    let RunResult::Failed(failure) = result.unwrap() else {
        panic!("the run failed");
    };
    let history = store.history(&run).await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].failure, Some(failure.clone()));

    // Durably: another store on the file reads the failure back, step and reason.
    let reopened = SqliteStore::open(db.path()).unwrap();
    let info = reopened.status(&run).await.unwrap().unwrap();
    assert_eq!(info.failure, Some(failure.clone()));

    // Retried (unpaused) and checkpointed: the run's failure is cleared, its history keeps it.
    store.unpause(&run).await.unwrap();
    store
        .save(flow_runtime::store::Checkpoint::new(
            run.clone(),
            "expense",
            info.fingerprint.clone(),
            "submit",
            false,
            serde_json::json!({}),
        ))
        .await
        .unwrap();
    assert_eq!(store.status(&run).await.unwrap().unwrap().failure, None);
    let history = store.history(&run).await.unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0].failure, Some(failure));
    assert_eq!(history[1].failure, None);
}
