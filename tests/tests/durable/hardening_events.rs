//! Events of one name leave a wait for another as it was: an event the waiting step does not
//! wait for neither wakes the run nor shortens its wait (on `MemoryStore` and `SqliteStore`),
//! the event a step waits for makes it due even when it arrives just before the wait is
//! recorded, an event sent during a sleep waits for its step, a run waiting in a schema-4
//! file keeps its deadline after the upgrade to schema 5, and a sleep past year 9999 parks
//! (at its end) with an error that displays.

use flow_runtime::prelude::*;
use flow_runtime::state::{Engine, Event, Setup, Sleep};
use flow_runtime::store::{MemoryStore, RunQueue, RunStatus};
use flow_tests::store::TempDb;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Failed(String);

/// What the steps did, in order.
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

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Approval {
    pub by: String,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Comment {
    pub text: String,
}

/// Two event types: `decide` waits an hour for an `Approval`, then `note` an hour for a
/// `Comment`.
#[workflow(deps = Log)]
pub mod claim {
    use super::*;

    #[step(entry)]
    pub async fn submit(ctx: &Ctx<Log>, amount: u32) -> Result<u32, Failed> {
        ctx.deps().push("submit");
        Ok(amount)
    }

    #[step(after = submit, event = Approval, timeout = Duration::from_secs(3600))]
    pub async fn decide(
        ctx: &Ctx<Log>,
        amount: u32,
        approval: Event<Approval>,
    ) -> Result<u32, Failed> {
        ctx.deps().push(match approval {
            Event::Received(a) => format!("approved by {}", a.by),
            Event::TimedOut => "approval timed out".to_owned(),
        });
        Ok(amount)
    }

    #[step(after = decide, exit, event = Comment, timeout = Duration::from_secs(3600))]
    pub async fn note(
        ctx: &Ctx<Log>,
        amount: u32,
        comment: Event<Comment>,
    ) -> Result<String, Failed> {
        ctx.deps().push(match comment {
            Event::Received(c) => format!("comment {}", c.text),
            Event::TimedOut => "comment timed out".to_owned(),
        });
        Ok(format!("filed {amount}"))
    }
}

/// Sleeps an hour, then waits an hour for an `Approval`.
#[workflow(deps = Log)]
pub mod later {
    use super::*;

    #[step(entry)]
    pub async fn doze(ctx: &Ctx<Log>, n: u32) -> Result<Sleep<u32>, Failed> {
        ctx.deps().push("doze");
        Ok(Sleep::new(HOUR, n))
    }

    #[step(after = doze, exit, event = Approval, timeout = Duration::from_secs(3600))]
    pub async fn decide(ctx: &Ctx<Log>, n: u32, approval: Event<Approval>) -> Result<u32, Failed> {
        ctx.deps().push(match approval {
            Event::Received(a) => format!("approved by {}", a.by),
            Event::TimedOut => "approval timed out".to_owned(),
        });
        Ok(n)
    }
}

fn raw(path: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).unwrap()
}

fn engine<S: RunQueue>(store: &Arc<S>, log: &Log) -> Engine<S> {
    Engine::builder(Arc::clone(store))
        .lease(flow_tests::store::PAUSED_LEASE)
        .register::<claim::Workflow>(Setup::new(log.clone()))
        .register::<later::Workflow>(Setup::new(log.clone()))
        .build()
}

async fn status<S: Store>(store: &S, run: &RunId) -> RunStatus {
    store.status(run).await.unwrap().unwrap().status
}

/// Runs the engine until `run` waits in `step`, and returns the wait's deadline.
async fn until_waiting<S: RunQueue>(
    engine: &Engine<S>,
    store: &S,
    run: &RunId,
    step: &str,
) -> SystemTime {
    let waiting = async {
        while store.latest(run).await.unwrap().unwrap().waiting.as_deref() != Some(step) {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    };
    engine.run_until(waiting).await.unwrap();
    store.latest(run).await.unwrap().unwrap().wake_at.unwrap()
}

async fn until_finished<S: RunQueue>(engine: &Engine<S>, store: &S, run: &RunId) {
    let finished = async {
        while status(store, run).await != RunStatus::Finished {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    };
    engine.run_until(finished).await.unwrap();
}

/// Runs the engine for `d` of tokio's (paused) clock.
async fn run_for<S: RunQueue>(engine: &Engine<S>, d: Duration) {
    engine.run_until(tokio::time::sleep(d)).await.unwrap();
}

// --- An event of another name ---------------------------------------------------------------

async fn another_event_leaves_the_wait<S: RunQueue>(store: Arc<S>) {
    let log = Log::default();
    let engine = engine(&store, &log);
    let run = engine.start::<claim::Workflow>("c1", 40).await.unwrap();
    let deadline = until_waiting(&engine, &*store, &run, "decide").await;
    assert_eq!(log.entries(), ["submit"]);

    // A comment while the run waits for an approval: kept for `note`, and nothing else.
    engine
        .send::<claim::Workflow, _>(&run, Comment { text: "ok".into() })
        .await
        .unwrap();
    assert!(
        store
            .due(SystemTime::now(), &["claim"], 10)
            .await
            .unwrap()
            .is_empty()
    );
    run_for(&engine, Duration::from_secs(600)).await;
    assert_eq!(
        log.entries(),
        ["submit"],
        "the approval must not time out early"
    );
    let latest = store.latest(&run).await.unwrap().unwrap();
    assert_eq!(latest.waiting.as_deref(), Some("decide"));
    assert_eq!(
        latest.wake_at,
        Some(deadline),
        "the wait keeps its deadline"
    );
    assert_eq!(status(&*store, &run).await, RunStatus::Running);

    // The approval: received, and the comment sent before `note` waited is kept for it.
    engine
        .send::<claim::Workflow, _>(&run, Approval { by: "Grace".into() })
        .await
        .unwrap();
    until_finished(&engine, &*store, &run).await;
    assert_eq!(log.entries(), ["submit", "approved by Grace", "comment ok"]);
    let output = engine.outcome::<claim::Workflow>(&run).await.unwrap();
    assert_eq!(output.finished().as_deref(), Some("filed 40"));
}

#[tokio::test(start_paused = true)]
async fn an_event_of_another_name_leaves_the_wait_memory() {
    another_event_leaves_the_wait(Arc::new(MemoryStore::new())).await;
}

#[tokio::test(start_paused = true)]
async fn an_event_of_another_name_leaves_the_wait_sqlite() {
    let db = TempDb::new();
    another_event_leaves_the_wait(db.open()).await;
}

// Which event makes a waiting run due is store behaviour: the conformance suite checks it for
// every store (`durable/store_conformance.rs`).

// --- An event sent during a sleep -----------------------------------------------------------

async fn an_event_during_a_sleep_waits_for_its_step<S: RunQueue>(store: Arc<S>) {
    let log = Log::default();
    let engine = engine(&store, &log);
    let began = tokio::time::Instant::now();
    let run = engine.start::<later::Workflow>("l1", 7).await.unwrap();
    let asleep = async {
        while store.latest(&run).await.unwrap().unwrap().step != "doze" {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    };
    engine.run_until(asleep).await.unwrap();
    assert_eq!(log.entries(), ["doze"]);
    engine
        .send::<later::Workflow, _>(&run, Approval { by: "Lin".into() })
        .await
        .unwrap();
    // The sleep is not cut short.
    run_for(&engine, Duration::from_secs(1800)).await;
    assert_eq!(log.entries(), ["doze"]);
    until_finished(&engine, &*store, &run).await;
    assert_eq!(log.entries(), ["doze", "approved by Lin"]);
    assert!(began.elapsed() >= HOUR);
}

#[tokio::test(start_paused = true)]
async fn an_event_during_a_sleep_waits_for_its_step_memory() {
    an_event_during_a_sleep_waits_for_its_step(Arc::new(MemoryStore::new())).await;
}

#[tokio::test(start_paused = true)]
async fn an_event_during_a_sleep_waits_for_its_step_sqlite() {
    let db = TempDb::new();
    an_event_during_a_sleep_waits_for_its_step(db.open()).await;
}

// --- Upgrade ---------------------------------------------------------------------------------

/// A run waiting in a file of schema 4 (which did not record the event a wait is for) keeps its
/// deadline: an event of another name wakes it once, as schema 4 did, but the step waits on
/// instead of timing out, now for its own event only.
#[tokio::test(start_paused = true)]
async fn a_schema_4_file_is_upgraded_to_5_and_its_waits_keep_their_deadline() {
    let db = TempDb::new();
    let log = Log::default();
    let (run, deadline) = {
        let store = db.open();
        let engine = engine(&store, &log);
        let run = engine.start::<claim::Workflow>("old", 5).await.unwrap();
        let deadline = until_waiting(&engine, &*store, &run, "decide").await;
        (run, deadline)
    };
    // Back to schema 4, as the store before event names wrote it.
    raw(db.path())
        .execute_batch(
            "DROP INDEX journal_by_seq; ALTER TABLE journal DROP COLUMN seq; ALTER TABLE history DROP COLUMN attempt; \
             ALTER TABLE history DROP COLUMN started_at; ALTER TABLE runs DROP COLUMN step_started_at; DROP TABLE workflows; \
             ALTER TABLE runs DROP COLUMN failed_step; ALTER TABLE history DROP COLUMN failed_step; \
             ALTER TABLE history DROP COLUMN failure; ALTER TABLE runs DROP COLUMN wait_event; ALTER TABLE runs DROP COLUMN wait_until; \
             ALTER TABLE calls DROP COLUMN visit_back_edges; \
             ALTER TABLE calls DROP COLUMN visit_item; ALTER TABLE runs DROP COLUMN trace; ALTER TABLE runs DROP COLUMN lease_owner; ALTER TABLE runs DROP COLUMN lease_until; ALTER TABLE runs DROP COLUMN lease_epoch; \
             ALTER TABLE calls DROP COLUMN input_tokens; ALTER TABLE calls DROP COLUMN output_tokens; \
             PRAGMA user_version = 4;",
        )
        .unwrap();

    let store = db.open();
    let version: i64 = raw(db.path())
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .unwrap();
    assert_eq!(version, flow_tests::store::SQLITE_SCHEMA);
    let latest = store.latest(&run).await.unwrap().unwrap();
    assert_eq!(latest.wake_at, Some(deadline));

    let engine = engine(&store, &log);
    engine
        .send::<claim::Workflow, _>(&run, Comment { text: "hi".into() })
        .await
        .unwrap();
    // Woken once: the run waits again (for at most ten minutes of the test's clock).
    let wait_event = || -> Option<String> {
        raw(db.path())
            .query_row(
                "SELECT wait_event FROM runs WHERE run_id = 'old'",
                [],
                |row| row.get(0),
            )
            .unwrap()
    };
    let waits_again = async {
        for _ in 0..600 {
            if wait_event().is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    };
    engine.run_until(waits_again).await.unwrap();
    assert_eq!(
        log.entries(),
        ["submit"],
        "the approval must not time out early"
    );
    let latest = store.latest(&run).await.unwrap().unwrap();
    assert_eq!(
        (latest.waiting.as_deref(), latest.wake_at),
        (Some("decide"), Some(deadline))
    );
    // Waiting again, for its own event: not due before the deadline.
    assert_eq!(wait_event().as_deref(), Some("Approval"));
    assert!(
        store
            .due(SystemTime::now(), &["claim"], 10)
            .await
            .unwrap()
            .is_empty()
    );

    engine
        .send::<claim::Workflow, _>(&run, Approval { by: "Ann".into() })
        .await
        .unwrap();
    until_finished(&engine, &*store, &run).await;
    assert_eq!(log.entries(), ["submit", "approved by Ann", "comment hi"]);
}

/// Sleeps 2^50 seconds (some 35 million years).
#[workflow]
pub mod aeons {
    use super::*;

    #[step(entry)]
    pub async fn doze(n: u32) -> Result<Sleep<u32>, Failed> {
        Ok(Sleep::new(Duration::from_secs(1 << 50), n))
    }

    #[step(after = doze, exit)]
    pub async fn wake(n: u32) -> Result<u32, Failed> {
        Ok(n)
    }
}

/// A sleep past year 9999 is kept until its end (the last time RFC 3339 can write), and the
/// `Parked` error that says so displays; so does one whose stored wake-up time is further
/// still (a row written before that clamp, or corrupt): humantime cannot format those, and
/// `to_string` panicked.
#[tokio::test]
async fn a_sleep_past_year_9999_parks_and_its_error_displays() {
    let db = TempDb::new();
    let store = db.open();
    let ctx = Ctx::builder(())
        .store(Arc::clone(&store))
        .run_id("aeons")
        .build();
    let err = aeons::Workflow::run(&ctx, 7).await.unwrap_err();
    let shown = err.to_string();
    assert!(
        shown.contains("(asleep), until 9999-12-31T23:59:59Z"),
        "{shown}"
    );
    let end_of_9999 = SystemTime::UNIX_EPOCH + Duration::new(253_402_300_799, 999_999_999);
    let wake_at = store
        .latest(&"aeons".into())
        .await
        .unwrap()
        .unwrap()
        .wake_at;
    assert!(wake_at.is_some_and(|t| t <= end_of_9999), "{wake_at:?}");

    let far = (SystemTime::now() + Duration::from_secs(1 << 50))
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    raw(db.path())
        .execute(
            "UPDATE runs SET wake_at = ?1 WHERE run_id = 'aeons'",
            [i64::try_from(far).unwrap()],
        )
        .unwrap();
    let err = aeons::Workflow::run_or_resume(&ctx, 7).await.unwrap_err();
    let shown = err.to_string();
    assert!(shown.contains("until 9999-12-31T23:59:59Z"), "{shown}");
}

/// Waits for an `Approval` for ever (`Duration::MAX`).
#[workflow]
pub mod patient {
    use super::*;

    #[step(entry)]
    pub async fn ask(n: u32) -> Result<u32, Failed> {
        Ok(n)
    }

    #[step(after = ask, exit, event = Approval, timeout = Duration::MAX)]
    pub async fn hear(n: u32, approval: Event<Approval>) -> Result<String, Failed> {
        Ok(match approval {
            Event::Received(a) => format!("{n} approved by {}", a.by),
            Event::TimedOut => format!("{n} timed out"),
        })
    }
}

/// A wait whose timeout is too long to add to the clock (`Duration::MAX`) waits until the end
/// of year 9999, like a sleep that long: it used to end at once (its deadline was `now`), so
/// the run's next resume timed it out.
#[tokio::test]
async fn an_event_wait_of_duration_max_is_still_waiting_after_a_resume() {
    let db = TempDb::new();
    let store = db.open();
    let ctx = Ctx::builder(())
        .store(Arc::clone(&store))
        .run_id("patient")
        .build();
    let err = patient::Workflow::run(&ctx, 3).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("for event `Approval`, until 9999-12-31T23:59:59Z"),
        "{err}"
    );

    tokio::time::sleep(Duration::from_millis(20)).await;
    let err = patient::Workflow::run_or_resume(&ctx, 3).await.unwrap_err();
    assert!(err.to_string().contains("for event `Approval`"), "{err}");
    let run = store.latest(&"patient".into()).await.unwrap().unwrap();
    assert_eq!(run.waiting.as_deref(), Some("hear"));
    assert_eq!(status(&*store, &"patient".into()).await, RunStatus::Running);
}
