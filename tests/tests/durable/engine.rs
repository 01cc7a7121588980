//! The engine with durable timers and typed events: sleeps on paused tokio time, across a
//! restart on an SQLite file and on PostgreSQL, events sent before and after the wait,
//! timeouts routed on, cancel during a sleep, pause and unpause, failed steps set aside,
//! resuming unfinished runs at start-up, graceful shutdown, settings of `Duration::MAX`.

use flow_runtime::prelude::*;
use flow_runtime::state::{Engine, EngineError, Event, RunResult, Setup, Sleep};
use flow_runtime::store::{MemoryStore, PgStore, RunControl, RunQueue, RunStatus, SqliteStore};
use flow_tests::store::TempDb;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Failed(String);

/// What the steps did, in order, with tokio's time since the test began.
#[derive(Clone, Default)]
pub struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    fn push(&self, what: impl Into<String>) {
        self.0.lock().unwrap().push(what.into());
    }

    fn entries(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

const HOUR: Duration = Duration::from_secs(3600);

#[workflow(deps = Log)]
pub mod nap {
    use super::*;

    #[step(entry)]
    pub async fn doze(ctx: &Ctx<Log>, secs: u64) -> Result<Sleep<u64>, Failed> {
        ctx.deps().push("doze");
        Ok(Sleep::new(Duration::from_secs(secs), secs))
    }

    #[step(after = doze, exit)]
    pub async fn wake(ctx: &Ctx<Log>, secs: u64) -> Result<String, Failed> {
        ctx.deps().push("wake");
        Ok(format!("slept {secs}s"))
    }
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Approval {
    pub by: String,
}

#[workflow(deps = Log)]
pub mod expense {
    use super::*;

    pub enum Decision {
        #[to(pay)]
        Approved(u32),
        #[to(escalate)]
        Expired(u32),
    }

    #[step(entry)]
    pub async fn submit(ctx: &Ctx<Log>, amount: u32) -> Result<u32, Failed> {
        ctx.deps().push("submit");
        Ok(amount)
    }

    /// Waits a day for an approval; a timeout is routed like any value.
    #[step(after = submit, routes = Decision, event = Approval, timeout = Duration::from_secs(86_400))]
    pub async fn decide(
        ctx: &Ctx<Log>,
        amount: u32,
        approval: Event<Approval>,
    ) -> Result<Decision, Failed> {
        Ok(match approval {
            Event::Received(a) => {
                ctx.deps().push(format!("approved by {}", a.by));
                Decision::Approved(amount)
            }
            Event::TimedOut => {
                ctx.deps().push("timed out");
                Decision::Expired(amount)
            }
        })
    }

    #[step(after = decide, exit)]
    pub async fn pay(amount: u32) -> Result<String, Failed> {
        Ok(format!("paid {amount}"))
    }

    #[step(after = decide, exit)]
    pub async fn escalate(amount: u32) -> Result<String, Failed> {
        Ok(format!("escalated {amount}"))
    }
}

fn memory_engine(log: &Log) -> (Arc<MemoryStore>, Engine<MemoryStore>) {
    let store = Arc::new(MemoryStore::new());
    let engine = Engine::builder(Arc::clone(&store))
        .lease(flow_tests::store::PAUSED_LEASE)
        .register::<nap::Workflow>(Setup::new(log.clone()))
        .register::<expense::Workflow>(Setup::new(log.clone()))
        .build();
    (store, engine)
}

async fn status<S: RunControl>(store: &S, run: &RunId) -> RunStatus {
    store.status(run).await.unwrap().unwrap().status
}

/// Resolves once `run` has `want`, polling every 10 ms of tokio's clock.
async fn until_status<S: RunControl>(store: &S, run: &RunId, want: RunStatus) {
    poll_status(store, run, want, Duration::from_millis(10)).await;
}

/// [`until_status`] for paused time, which jumps hours: every simulated minute.
async fn until_status_paused<S: RunControl>(store: &S, run: &RunId, want: RunStatus) {
    poll_status(store, run, want, Duration::from_secs(60)).await;
}

async fn poll_status<S: RunControl>(store: &S, run: &RunId, want: RunStatus, every: Duration) {
    while status(store, run).await != want {
        tokio::time::sleep(every).await;
    }
}

/// The output of a finished run, read through the engine's typed result.
fn output<O: std::fmt::Debug>(result: Result<RunResult<O>, EngineError>) -> O {
    match result.unwrap() {
        RunResult::Finished(output) => output,
        other => panic!("the run has not finished: {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_sleeping_run_holds_no_task_and_wakes_when_due() {
    let log = Log::default();
    let (store, engine) = memory_engine(&log);
    let run = engine
        .start::<nap::Workflow>("nap-1", 3 * 3600)
        .await
        .unwrap();
    let began = tokio::time::Instant::now();

    // The engine runs `doze`, parks the run, and has nothing to do for three hours.
    let parked = {
        let store = Arc::clone(&store);
        let run = run.clone();
        async move {
            loop {
                let latest = store.latest(&run).await.unwrap().unwrap();
                if latest.wake_at.is_some() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    };
    let report = engine.run_until(parked).await.unwrap();
    assert_eq!(report.parked, 1);
    assert_eq!(log.entries(), ["doze"]);
    assert_eq!(status(&*store, &run).await, RunStatus::Running);
    // Not due: nothing to run.
    assert!(
        store
            .due(SystemTime::now(), &["nap"], 10)
            .await
            .unwrap()
            .is_empty()
    );

    // A second engine (as after a restart) sleeps until it is due, then finishes it.
    engine
        .run_until(until_status_paused(&*store, &run, RunStatus::Finished))
        .await
        .unwrap();
    assert_eq!(log.entries(), ["doze", "wake"]);
    assert!(
        began.elapsed() >= 3 * HOUR,
        "woke after {:?}",
        began.elapsed()
    );
    assert!(began.elapsed() < 3 * HOUR + Duration::from_secs(5));
    assert_eq!(
        output(engine.outcome::<nap::Workflow>(&run).await),
        "slept 10800s"
    );
}

#[tokio::test]
async fn a_sleep_survives_a_restart_on_sqlite() {
    let db = TempDb::new();
    let path = db.path();
    let log = Log::default();
    let run = RunId::from("nap-restart");
    {
        let store = Arc::new(SqliteStore::open(path).unwrap());
        let engine = Engine::builder(Arc::clone(&store))
            .lease(flow_tests::store::PAUSED_LEASE)
            .register::<nap::Workflow>(Setup::new(log.clone()))
            .build();
        engine.start::<nap::Workflow>(run.clone(), 1).await.unwrap();
        let parked = async {
            while store
                .latest(&run)
                .await
                .unwrap()
                .is_none_or(|c| c.wake_at.is_none())
            {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        engine.run_until(parked).await.unwrap();
        assert_eq!(log.entries(), ["doze"]);
    }
    // The process "restarts": a new store on the file, a new engine.
    let store = Arc::new(SqliteStore::open(path).unwrap());
    let engine = Engine::builder(Arc::clone(&store))
        .lease(flow_tests::store::PAUSED_LEASE)
        .register::<nap::Workflow>(Setup::new(log.clone()))
        .build();
    let began = std::time::Instant::now();
    engine
        .run_until(until_status(&*store, &run, RunStatus::Finished))
        .await
        .unwrap();
    assert_eq!(log.entries(), ["doze", "wake"]);
    assert!(began.elapsed() < Duration::from_secs(5));
    assert_eq!(
        output(engine.outcome::<nap::Workflow>(&run).await),
        "slept 1s"
    );
}

/// The same on PostgreSQL, with an event too: an engine runs a run into its sleep and another
/// into its wait, the process "restarts" (a new store on the database, a new engine), the
/// event is sent, and both finish.
#[tokio::test]
async fn a_sleep_and_a_wait_survive_a_restart_on_postgres() {
    let (store, database) = flow_tests::pg::fresh_store().await;
    let store = Arc::new(store);
    let log = Log::default();
    let nap = RunId::from("nap-pg");
    let exp = RunId::from("exp-pg");
    {
        let engine = Engine::builder(Arc::clone(&store))
            .register::<nap::Workflow>(Setup::new(log.clone()))
            .register::<expense::Workflow>(Setup::new(log.clone()))
            .build();
        engine.start::<nap::Workflow>(nap.clone(), 1).await.unwrap();
        engine
            .start::<expense::Workflow>(exp.clone(), 30)
            .await
            .unwrap();
        let parked = async {
            while store
                .latest(&nap)
                .await
                .unwrap()
                .is_none_or(|c| c.wake_at.is_none())
                || store
                    .latest(&exp)
                    .await
                    .unwrap()
                    .is_none_or(|c| c.waiting.is_none())
            {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        engine.run_until(parked).await.unwrap();
    }
    drop(store);
    let mut entries = log.entries();
    entries.sort();
    assert_eq!(entries, ["doze", "submit"]);

    let store = Arc::new(PgStore::connect(&database.url).await.unwrap());
    let engine = Engine::builder(Arc::clone(&store))
        .register::<nap::Workflow>(Setup::new(log.clone()))
        .register::<expense::Workflow>(Setup::new(log.clone()))
        .build();
    engine
        .send::<expense::Workflow, _>(&exp, Approval { by: "Ada".into() })
        .await
        .unwrap();
    let began = std::time::Instant::now();
    let finished = async {
        until_status(&*store, &nap, RunStatus::Finished).await;
        until_status(&*store, &exp, RunStatus::Finished).await;
    };
    engine.run_until(finished).await.unwrap();
    assert!(began.elapsed() < Duration::from_secs(5));
    assert_eq!(
        output(engine.outcome::<nap::Workflow>(&nap).await),
        "slept 1s"
    );
    assert_eq!(
        output(engine.outcome::<expense::Workflow>(&exp).await),
        "paid 30"
    );
    assert!(store.next_event(&exp, "Approval").await.unwrap().is_none());
}

#[tokio::test(start_paused = true)]
async fn an_event_sent_after_the_wait_began_wakes_the_run() {
    let log = Log::default();
    let (store, engine) = memory_engine(&log);
    let run = engine
        .start::<expense::Workflow>("exp-after", 120)
        .await
        .unwrap();
    // Wait until the run waits (parked in `decide`).
    let waiting = {
        let store = Arc::clone(&store);
        let run = run.clone();
        async move {
            while store.latest(&run).await.unwrap().unwrap().waiting.is_none() {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    };
    engine.run_until(waiting).await.unwrap();
    assert_eq!(log.entries(), ["submit"]);

    let sender = engine.clone();
    let run2 = run.clone();
    let send = async move {
        tokio::time::sleep(HOUR).await;
        sender
            .send::<expense::Workflow, _>(&run2, Approval { by: "Grace".into() })
            .await
            .unwrap();
    };
    let (report, ()) = tokio::join!(
        engine.run_until(until_status_paused(&*store, &run, RunStatus::Finished)),
        send
    );
    report.unwrap();
    assert_eq!(log.entries(), ["submit", "approved by Grace"]);
    assert_eq!(
        output(engine.outcome::<expense::Workflow>(&run).await),
        "paid 120"
    );
    // Consumed with the checkpoint after the step.
    assert!(store.next_event(&run, "Approval").await.unwrap().is_none());
}

#[tokio::test(start_paused = true)]
async fn an_event_sent_before_the_wait_began_is_kept() {
    let log = Log::default();
    let (store, engine) = memory_engine(&log);
    let run = engine
        .start::<expense::Workflow>("exp-before", 80)
        .await
        .unwrap();
    // Sent before any step ran.
    engine
        .send::<expense::Workflow, _>(&run, Approval { by: "Ada".into() })
        .await
        .unwrap();
    engine
        .run_until(until_status_paused(&*store, &run, RunStatus::Finished))
        .await
        .unwrap();
    assert_eq!(log.entries(), ["submit", "approved by Ada"]);
    assert_eq!(
        output(engine.outcome::<expense::Workflow>(&run).await),
        "paid 80"
    );
}

#[tokio::test(start_paused = true)]
async fn a_timeout_is_an_outcome_the_workflow_routes_on() {
    let log = Log::default();
    let (store, engine) = memory_engine(&log);
    let run = engine
        .start::<expense::Workflow>("exp-timeout", 50)
        .await
        .unwrap();
    let began = tokio::time::Instant::now();
    engine
        .run_until(until_status_paused(&*store, &run, RunStatus::Finished))
        .await
        .unwrap();
    assert_eq!(log.entries(), ["submit", "timed out"]);
    assert_eq!(
        output(engine.outcome::<expense::Workflow>(&run).await),
        "escalated 50"
    );
    assert!(began.elapsed() >= Duration::from_secs(86_400));
    // An event sent to the finished run is refused: nothing waits for it any more.
    let late = engine
        .send::<expense::Workflow, _>(&run, Approval { by: "late".into() })
        .await;
    assert!(late.is_err());
}

#[tokio::test(start_paused = true)]
async fn cancel_during_a_sleep_and_pause_then_unpause() {
    let log = Log::default();
    let (store, engine) = memory_engine(&log);
    let cancelled = engine
        .start::<nap::Workflow>("nap-cancel", 3600)
        .await
        .unwrap();
    let paused = engine
        .start::<nap::Workflow>("nap-pause", 3600)
        .await
        .unwrap();
    let both_parked = {
        let store = Arc::clone(&store);
        let runs = [cancelled.clone(), paused.clone()];
        async move {
            for run in &runs {
                while store.latest(run).await.unwrap().unwrap().wake_at.is_none() {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        }
    };
    engine.run_until(both_parked).await.unwrap();
    store.cancel(&cancelled).await.unwrap();
    store.pause(&paused).await.unwrap();

    // Two hours later, neither has woken.
    engine
        .run_until(tokio::time::sleep(2 * HOUR))
        .await
        .unwrap();
    assert_eq!(log.entries(), ["doze", "doze"]);
    assert_eq!(status(&*store, &cancelled).await, RunStatus::Cancelled);
    assert_eq!(status(&*store, &paused).await, RunStatus::Paused);

    // Unpaused, the paused one finishes (it was due long ago); the cancelled one never runs.
    store.unpause(&paused).await.unwrap();
    engine
        .run_until(until_status_paused(&*store, &paused, RunStatus::Finished))
        .await
        .unwrap();
    assert_eq!(log.entries(), ["doze", "doze", "wake"]);
    assert_eq!(status(&*store, &cancelled).await, RunStatus::Cancelled);
}

/// Fails its first `FAILS` attempts.
static ATTEMPTS: AtomicU32 = AtomicU32::new(0);

#[workflow]
pub mod flaky {
    use super::*;

    #[step(entry)]
    pub async fn first(n: u32) -> Result<u32, Failed> {
        Ok(n)
    }

    #[step(after = first, exit)]
    pub async fn second(n: u32) -> Result<u32, Failed> {
        if ATTEMPTS.fetch_add(1, Ordering::SeqCst) == 0 {
            return Err(Failed("the service is down".into()));
        }
        Ok(n + 1)
    }
}

#[tokio::test]
async fn a_failed_step_sets_the_run_aside_until_it_is_unpaused() {
    let store = Arc::new(MemoryStore::new());
    let engine = Engine::builder(Arc::clone(&store))
        .lease(flow_tests::store::PAUSED_LEASE)
        .register::<flaky::Workflow>(Setup::new(()))
        .build();
    let run = engine.start::<flaky::Workflow>("flaky-1", 1).await.unwrap();
    let report = engine
        .run_until(until_status(&*store, &run, RunStatus::Failed))
        .await
        .unwrap();
    assert_eq!(report.failed, 1);
    let failure = match engine.outcome::<flaky::Workflow>(&run).await.unwrap() {
        RunResult::Failed(failure) => failure,
        other => panic!("the run failed: {other:?}"),
    };
    assert_eq!(failure.step.as_deref(), Some("second"));
    assert!(
        failure.reason.contains("the service is down"),
        "{}",
        failure.reason
    );
    // Kept at its last checkpoint, not retried in a loop.
    assert_eq!(store.latest(&run).await.unwrap().unwrap().step, "first");
    engine
        .run_until(tokio::time::sleep(Duration::from_millis(50)))
        .await
        .unwrap();
    assert_eq!(ATTEMPTS.load(Ordering::SeqCst), 1);

    store.unpause(&run).await.unwrap();
    engine
        .run_until(until_status(&*store, &run, RunStatus::Finished))
        .await
        .unwrap();
    assert_eq!(output(engine.outcome::<flaky::Workflow>(&run).await), 2);
}

#[tokio::test]
async fn unfinished_runs_are_resumed_at_start_up_and_starting_twice_returns_the_run() {
    let db = TempDb::new();
    let path = db.path();
    let log = Log::default();
    // A run that got as far as `doze` with no engine (as if its process died there).
    {
        let store = SqliteStore::open(path).unwrap();
        let state = <nap::Workflow as Workflow>::start(0);
        let checkpoint = flow_runtime::store::Checkpoint::new(
            "nap-orphan".into(),
            nap::NAME,
            nap::FINGERPRINT,
            "",
            false,
            serde_json::to_value(state).unwrap(),
        );
        store.save(checkpoint).await.unwrap();
    }
    let store = Arc::new(SqliteStore::open(path).unwrap());
    let engine = Engine::builder(Arc::clone(&store))
        .lease(flow_tests::store::PAUSED_LEASE)
        .register::<nap::Workflow>(Setup::new(log.clone()))
        .build();
    let run = RunId::from("nap-orphan");
    // Starting it again returns the run; nothing new.
    assert_eq!(
        engine
            .start::<nap::Workflow>(run.clone(), 99)
            .await
            .unwrap(),
        run
    );
    engine
        .run_until(until_status(&*store, &run, RunStatus::Finished))
        .await
        .unwrap();
    assert_eq!(
        output(engine.outcome::<nap::Workflow>(&run).await),
        "slept 0s"
    );
}

/// A start of a run id the store has already (a redelivered request, or one that raced the
/// first start) changes nothing: the store refuses the start checkpoint in one step with the
/// check, so a finished run is neither reset nor run again; another workflow's is a conflict.
#[tokio::test]
async fn a_late_start_neither_resets_nor_reruns_a_finished_run() {
    let db = TempDb::new();
    let store = Arc::new(SqliteStore::open(db.path()).unwrap());
    let log = Log::default();
    let engine = Engine::builder(Arc::clone(&store))
        .lease(flow_tests::store::PAUSED_LEASE)
        .register::<slow::Workflow>(Setup::new(()))
        .register::<nap::Workflow>(Setup::new(log))
        .build();
    let run = engine.start::<slow::Workflow>("once", 1).await.unwrap();
    engine
        .run_until(until_status(&*store, &run, RunStatus::Finished))
        .await
        .unwrap();
    let before = store.status(&run).await.unwrap().unwrap();

    assert_eq!(
        engine
            .start::<slow::Workflow>(run.clone(), 7)
            .await
            .unwrap(),
        run
    );
    let after = store.status(&run).await.unwrap().unwrap();
    assert_eq!(
        (after.status, after.checkpoints, after.step),
        (before.status, before.checkpoints, before.step)
    );
    let report = engine
        .run_until(tokio::time::sleep(Duration::from_millis(30)))
        .await
        .unwrap();
    assert_eq!(report.finished, 0, "nothing ran again");
    assert_eq!(output(engine.outcome::<slow::Workflow>(&run).await), 1);

    let other = engine
        .start::<nap::Workflow>(run.clone(), 0)
        .await
        .unwrap_err();
    assert!(
        matches!(&other, EngineError::Conflict { owner, .. } if owner == "slow"),
        "{other}"
    );
}

#[workflow]
pub mod slow {
    use super::*;

    #[step(entry, exit)]
    pub async fn work(ms: u64) -> Result<u64, Failed> {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Ok(ms)
    }
}

#[tokio::test]
async fn shutdown_lets_steps_in_flight_finish_within_the_grace_period() {
    let store = Arc::new(MemoryStore::new());
    let engine = Engine::builder(Arc::clone(&store))
        .lease(flow_tests::store::PAUSED_LEASE)
        .register::<slow::Workflow>(Setup::new(()))
        .concurrency(2)
        .grace(Duration::from_secs(5))
        .build();
    let runs: Vec<RunId> = futures_like_join(&engine, 4).await;
    // Stop as soon as the first two are in flight: they finish, the other two wait.
    let report = engine
        .run_until(tokio::time::sleep(Duration::from_millis(50)))
        .await
        .unwrap();
    assert_eq!(report.finished, 2);
    assert_eq!(report.interrupted, 0);
    let mut finished = 0;
    for run in &runs {
        if status(&*store, run).await == RunStatus::Finished {
            finished += 1;
        }
    }
    assert_eq!(finished, 2);

    // With a grace period too short, steps in flight are dropped and resume next time.
    let engine = Engine::builder(Arc::clone(&store))
        .lease(flow_tests::store::PAUSED_LEASE)
        .register::<slow::Workflow>(Setup::new(()))
        .grace(Duration::from_millis(10))
        .build();
    let report = engine
        .run_until(tokio::time::sleep(Duration::from_millis(20)))
        .await
        .unwrap();
    assert_eq!(report.interrupted, 2);
    engine
        .run_until(async {
            for run in &runs {
                until_status(&*store, run, RunStatus::Finished).await;
            }
        })
        .await
        .unwrap();
}

async fn futures_like_join(engine: &Engine<MemoryStore>, n: u32) -> Vec<RunId> {
    let mut runs = Vec::new();
    for i in 0..n {
        runs.push(
            engine
                .start::<slow::Workflow>(format!("slow-{i}"), 300)
                .await
                .unwrap(),
        );
    }
    runs
}

#[test]
fn the_diagram_shows_waits() {
    assert!(nap::MERMAID.contains("doze 💤"), "{}", nap::MERMAID);
    assert!(
        expense::MERMAID.contains("decide ⏳ Approval"),
        "{}",
        expense::MERMAID
    );
}

/// Runs `nap` (a one-second sleep) to its end under an engine with `poll` and `lease`,
/// awaiting it with `wait_for(timeout)`.
async fn nap_to_the_end(poll: Duration, lease: Duration, timeout: Duration) {
    let log = Log::default();
    let store = Arc::new(MemoryStore::new());
    let engine = Engine::builder(Arc::clone(&store))
        .register::<nap::Workflow>(Setup::new(log.clone()))
        .poll_interval(poll)
        .lease(lease)
        .build();
    let run = engine.start::<nap::Workflow>("nap-max", 1).await.unwrap();
    let mut result = None;
    let report = engine
        .run_until(async {
            result = Some(engine.wait_for::<nap::Workflow>(&run, timeout).await);
        })
        .await
        .unwrap();
    assert_eq!(output(result.unwrap()), "slept 1s");
    assert_eq!(report.finished, 1);
    assert_eq!(log.entries(), ["doze", "wake"]);
}

/// Settings too long for the clock (`Duration::MAX`) are taken as long, not panicked on:
/// `wait_for`'s timeout (added to the clock for its deadline), …
#[tokio::test(start_paused = true)]
async fn wait_for_duration_max_does_not_panic() {
    nap_to_the_end(
        Duration::from_secs(1),
        Duration::from_mins(1),
        Duration::MAX,
    )
    .await;
}

/// … a poll interval (jittered by multiplying it), …
#[tokio::test(start_paused = true)]
async fn a_poll_interval_of_duration_max_does_not_panic() {
    nap_to_the_end(Duration::MAX, Duration::from_mins(1), HOUR).await;
}

/// … and a lease (added to the clock for its end and its renewals).
#[tokio::test(start_paused = true)]
async fn a_lease_of_duration_max_does_not_panic() {
    nap_to_the_end(Duration::from_secs(1), Duration::MAX, HOUR).await;
}
