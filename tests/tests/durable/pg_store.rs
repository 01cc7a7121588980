//! `PgStore` under a real workflow and on a real server (the test process's throwaway
//! cluster, `flow_tests::pg`): a run stopped mid-way resumes from another connection to the
//! same database; workers starting at once on a new database make its tables once; errors
//! never carry the password of the URL.

use flow_runtime::prelude::*;
use flow_runtime::store::{
    Checkpoint, PgStore, RunControl as _, RunFilter, RunHistory as _, RunStatus,
};
use flow_tests::pg;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Debug, thiserror::Error)]
#[error("postgres test step failed")]
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

fn order_ctx(store: &Arc<PgStore>, run_id: &str, fail_show: bool) -> Ctx<Faults> {
    Ctx::builder(Faults {
        fail_show: AtomicBool::new(fail_show),
    })
    .store(Arc::clone(store))
    .run_id(run_id)
    .build()
}

#[tokio::test]
async fn a_stopped_run_resumes_from_another_connection() {
    let (store, database) = pg::fresh_store().await;
    let store = Arc::new(store);
    let err = order::Workflow::run(&order_ctx(&store, "r1", true), "21".into())
        .await
        .unwrap_err();
    assert_eq!(err.step(), Some("show"));
    drop(store);

    // Another process, as far as the database can tell.
    let store = Arc::new(PgStore::connect(&database.url).await.unwrap());
    let out = order::Workflow::run_or_resume(&order_ctx(&store, "r1", false), "7".into()).await;
    assert_eq!(out.unwrap(), "<42>");
    let steps = store.steps(&"r1".into()).await.unwrap();
    let names: Vec<_> = steps.iter().map(|h| h.step.as_str()).collect();
    // The run's start ("") first, then every step once.
    assert_eq!(names, ["", "parse", "double", "show"]);
    assert!(steps.iter().map(|h| h.seq).eq(1..=4));

    // The state is the versioned envelope, as text, in the row.
    let row = pg::server().psql(
        &database.name,
        "SELECT state::json->>'v', state::json->>'workflow' FROM runs WHERE run_id = :'run'",
        &[("run", "r1")],
    );
    assert_eq!(row, format!("1|{}", order::NAME));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_starting_at_once_make_the_tables_once() {
    let database = pg::fresh_database();
    let connects: Vec<_> = (0..8)
        .map(|_| {
            let url = database.url.clone();
            tokio::spawn(async move { PgStore::connect(&url).await })
        })
        .collect();
    for connect in connects {
        connect.await.unwrap().expect("every worker connects");
    }
    let applied = pg::server().psql(
        &database.name,
        "SELECT count(*), bool_and(success) FROM _sqlx_migrations",
        &[],
    );
    assert_eq!(applied, "2|t", "each migration applied once");
}

#[tokio::test]
async fn errors_do_not_carry_the_password() {
    let server = pg::server();
    // The server is there; the database is not.
    let url = format!(
        "postgres://flow:s3cret@localhost/no_such_database?host={}",
        server.dir().display()
    );
    let e = PgStore::connect(&url).await.unwrap_err();
    let text = flow_tests::error_chain(&e);
    assert!(text.contains("no_such_database"), "{text}");
    assert!(text.contains("flow:***@"), "{text}");
    assert!(!text.contains("s3cret"), "{text}");
    // The store's `Debug` neither.
    let (store, database) = pg::fresh_store().await;
    drop(store);
    let url = database.url.replace("flow@", "flow:s3cret@");
    let store = PgStore::connect(&url).await.unwrap();
    let debug = format!("{store:?}");
    assert!(
        debug.contains("flow:***@") && !debug.contains("s3cret"),
        "{debug}"
    );
}

/// Checkpoints saved at the same moment are written together, in one statement; one that the
/// server rejects (a NUL character, which PostgreSQL's `text` refuses) fails alone, with its
/// run's name, and the others are stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_the_server_rejects_fails_alone_among_others() {
    const BAD: usize = 7;
    let (store, _database) = pg::fresh_store().await;
    let store = Arc::new(store);
    let mut saves = tokio::task::JoinSet::new();
    for r in 0..32 {
        let store = Arc::clone(&store);
        let step = if r == BAD { "bad\0step" } else { "first" };
        let next = Checkpoint::new(format!("r{r}").into(), "w", "fp", step, false, r.into());
        saves.spawn(async move { (r, store.save(next).await) });
    }
    while let Some(saved) = saves.join_next().await {
        let (r, outcome) = saved.unwrap();
        if r == BAD {
            let e = outcome.expect_err("PostgreSQL refuses a NUL in text");
            let text = flow_tests::error_chain(&e);
            assert!(text.contains("run `r7`"), "{text}");
        } else {
            outcome.unwrap_or_else(|e| panic!("r{r}: {e}"));
        }
    }
    for r in 0..32 {
        let stored = store.status(&format!("r{r}").into()).await.unwrap();
        assert_eq!(stored.is_some(), r != BAD, "r{r}");
    }
}

/// A batch of checkpoints and a renewal of the same runs' leases lock the runs' rows in the
/// same order, so neither waits for the other in a cycle: PostgreSQL would abort one of them
/// as a deadlock. Each round, 96 runs' fenced checkpoints (written together) race a renewal of
/// their leases listed in reverse; every write and every renewal succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoint_batches_and_lease_renewals_never_deadlock() {
    use flow_runtime::store::RunQueue as _;
    use std::time::{Duration, SystemTime};

    const RUNS: usize = 96;
    let (store, _database) = pg::fresh_store().await;
    let store = Arc::new(store);
    for r in 0..RUNS {
        let first = Checkpoint::new(
            format!("run-{r:03}").into(),
            "w",
            "fp",
            "s0",
            false,
            0.into(),
        );
        store.save(first).await.unwrap();
    }
    let until = SystemTime::now() + Duration::from_secs(600);
    let leases = store
        .claim(SystemTime::now(), &["w"], RUNS, "worker", until)
        .await
        .unwrap();
    assert_eq!(leases.len(), RUNS);
    for round in 1..=20 {
        let mut tasks = tokio::task::JoinSet::new();
        for lease in &leases {
            let store = Arc::clone(&store);
            let next = Checkpoint::new(
                lease.run_id.clone(),
                "w",
                "fp",
                format!("s{round}"),
                false,
                round.into(),
            )
            .with_fence(Some(lease.fence));
            tasks.spawn(async move { store.save(next).await.map(drop) });
        }
        let reversed: Vec<_> = leases.iter().rev().cloned().collect();
        let renewer = Arc::clone(&store);
        tasks.spawn(async move {
            let renewed = renewer.renew(&reversed, until).await?;
            assert_eq!(renewed.len(), RUNS, "every lease is still held");
            Ok(())
        });
        while let Some(done) = tasks.join_next().await {
            done.unwrap()
                .unwrap_or_else(|e| panic!("round {round}: {}", flow_tests::error_chain(&e)));
        }
    }
}

/// The due-run query stays two index range scans of `runs_due` with many runs stored: its
/// plan, as PostgreSQL's `auto_explain` logs it for this database only, reads no table
/// sequentially. `FLOW_PG_EXPLAIN_RUNS` stores another number of runs than 200,000 (README's
/// figures: 10,000 and 1,000,000); `--nocapture` prints the plan with its timing and buffers.
#[tokio::test]
async fn the_due_run_query_is_an_index_scan_at_200k_runs() {
    use flow_runtime::store::RunQueue as _;
    use std::time::{Duration, UNIX_EPOCH};

    let runs: u64 = std::env::var("FLOW_PG_EXPLAIN_RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(200_000);
    let (store, database) = pg::fresh_store().await;
    drop(store);
    let server = pg::server();
    // 200,000 runs of three workflows: 80% finished, 10% asleep (waking at 1e9 ms + i),
    // 5% due at once (no wake-up time), 5% asleep for decades.
    server.psql(
        &database.name,
        "INSERT INTO runs (run_id, workflow, fingerprint, step, state, finished, status, \
         checkpoints, created_at, updated_at, wake_at) \
         SELECT 'r' || i, 'w' || (i % 3), 'f', 's', '{}', i % 10 < 8, \
           CASE WHEN i % 10 < 8 THEN 'finished' ELSE 'running' END, 1, i, i, \
           CASE WHEN i % 10 = 8 THEN 1000000000 + i WHEN i % 20 = 9 THEN NULL \
           ELSE 4000000000000 END \
         FROM generate_series(1, :'runs') AS i; \
         ANALYZE runs",
        &[("runs", runs.to_string().as_str())],
    );
    for setting in [
        "session_preload_libraries = 'auto_explain'",
        "auto_explain.log_min_duration = 0",
        "auto_explain.log_analyze = on",
        "auto_explain.log_buffers = on",
    ] {
        server.psql(
            "postgres",
            &format!("ALTER DATABASE {} SET {setting}", database.name),
            &[],
        );
    }
    // New connections, which load `auto_explain`.
    let store = PgStore::connect(&database.url).await.unwrap();
    let now = UNIX_EPOCH + Duration::from_millis(1_000_000_100);
    let due = store.due(now, &["w0", "w1"], 5).await.unwrap();
    // Runs of w0 and w1 due at once (every 20th, from r9; r29 and r89 are w2's), the
    // oldest first; they fill the limit before those whose time has come.
    let ids: Vec<_> = due.iter().map(|r| r.as_str()).collect();
    assert_eq!(ids, ["r9", "r49", "r69", "r109", "r129"]);
    let plan = logged_plan(server, "wake_at IS NULL AND workflow = ANY");
    eprintln!("the due-run query at {runs} stored runs:\n{plan}");
    assert!(plan.contains("Index Scan using runs_due"), "{plan}");
    assert!(!plan.contains("Seq Scan"), "{plan}");

    // The list of finished runs reads the settled runs' index in order, not the table.
    let finished = store
        .list(&RunFilter::new().status(RunStatus::Finished).limit(3))
        .await
        .unwrap();
    let ids: Vec<_> = finished.iter().map(|r| r.run_id.as_str()).collect();
    let expected: Vec<String> = (1..=runs)
        .rev()
        .filter(|i| i % 10 < 8)
        .take(3)
        .map(|i| format!("r{i}"))
        .collect();
    assert_eq!(ids, expected, "the most recently updated first");
    let plan = logged_plan(server, "AND status = $1 ORDER BY settled_at DESC");
    eprintln!("the list of finished runs at {runs} stored runs:\n{plan}");
    assert!(
        plan.contains("Index Scan Backward using runs_settled"),
        "{plan}"
    );
    assert!(!plan.contains("Seq Scan"), "{plan}");
}

/// The plan `auto_explain` logged in `server`'s log for the statement containing `sql`.
fn logged_plan(server: &pg::PgServer, sql: &str) -> String {
    let log = std::fs::read_to_string(server.dir().join("log")).unwrap();
    let start = log
        .find(sql)
        .unwrap_or_else(|| panic!("auto_explain logged no statement with `{sql}`:\n{log}"));
    let plan = &log[start..];
    plan[..plan.find("LOG:").unwrap_or(plan.len())].to_owned()
}

/// The event [`nudged`] waits for.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Go;

#[derive(Debug, thiserror::Error)]
#[error("never")]
pub struct Never;

/// A step, then a wait for [`Go`].
#[workflow]
pub mod nudged {
    use super::*;

    #[step(entry)]
    pub async fn first(n: u32) -> Result<u32, Never> {
        Ok(n + 1)
    }

    #[step(after = first, exit, event = Go, timeout = std::time::Duration::from_hours(1))]
    pub async fn second(n: u32, go: Event<Go>) -> Result<u32, Never> {
        Ok(match go {
            Event::Received(Go) => n * 10,
            Event::TimedOut => 0,
        })
    }
}

/// An engine that polls once an hour still takes, within seconds, a run started and an event
/// sent through another process's store (another `PgStore` on the database): PostgreSQL's
/// `NOTIFY` wakes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_wakes_an_engine_for_runs_and_events_from_elsewhere() {
    use flow_runtime::state::{Engine, Setup};
    use flow_runtime::store::Store as _;
    use std::time::{Duration, Instant};

    let (store, database) = pg::fresh_store().await;
    let store = Arc::new(store);
    let engine = Engine::builder(Arc::clone(&store))
        .register::<nudged::Workflow>(Setup::new(()))
        .poll_interval(Duration::from_secs(3600))
        .build();
    // Elsewhere: its own store on the same database, an engine that only starts and sends.
    let elsewhere = Arc::new(PgStore::connect(&database.url).await.unwrap());
    let other = Engine::builder(Arc::clone(&elsewhere))
        .register::<nudged::Workflow>(Setup::new(()))
        .build();
    let began = Instant::now();
    let watch = async {
        // Let the engine begin its hour-long wait first.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let run = other.start::<nudged::Workflow>("n1", 4).await.unwrap();
        let state = |s: Arc<PgStore>, run: RunId| async move {
            s.latest(&run).await.unwrap().map(|c| (c.step, c.waiting))
        };
        while state(Arc::clone(&store), run.clone()).await
            != Some(("first".to_owned(), Some("second".to_owned())))
        {
            assert!(
                began.elapsed() < Duration::from_secs(10),
                "the new run was not taken"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        other.send::<nudged::Workflow, Go>(&run, Go).await.unwrap();
        while store.status(&run).await.unwrap().unwrap().status != RunStatus::Finished {
            assert!(
                began.elapsed() < Duration::from_secs(20),
                "the event did not wake the run"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    engine.run_until(watch).await.unwrap();
    assert!(began.elapsed() < Duration::from_secs(20));
}

/// An error whose message holds a NUL, which PostgreSQL's `text` refuses.
#[derive(Debug, thiserror::Error)]
#[error("the service said: a\0b")]
pub struct Nul;

/// One step that fails with [`Nul`], counting its runs.
#[workflow(deps = Arc<std::sync::atomic::AtomicUsize>)]
pub mod nul_failure {
    use super::*;

    #[step(entry, exit)]
    pub async fn only(ctx: &Ctx<Arc<std::sync::atomic::AtomicUsize>>, n: u32) -> Result<u32, Nul> {
        ctx.deps().fetch_add(1, Ordering::SeqCst);
        Err(Nul).map(|()| n)
    }
}

/// A step whose error holds a NUL fails its run once, as on SQLite: the store keeps the
/// reason with the NUL replaced, instead of refusing it and leaving the run due to run the
/// step again at every poll.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_with_a_nul_is_stored_and_the_step_runs_once() {
    use flow_runtime::state::{Engine, RunResult, Setup};
    use flow_runtime::store::Store as _;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    let (store, _database) = pg::fresh_store().await;
    let store = Arc::new(store);
    let runs = Arc::new(AtomicUsize::new(0));
    let engine = Engine::builder(Arc::clone(&store))
        .register::<nul_failure::Workflow>(Setup::new(Arc::clone(&runs)))
        .poll_interval(Duration::from_millis(50))
        .build();
    let run = engine
        .start::<nul_failure::Workflow>("nul", 1)
        .await
        .unwrap();
    let watch = async {
        let result = engine
            .wait_for::<nul_failure::Workflow>(&run, Duration::from_secs(5))
            .await
            .unwrap();
        // Time for the run to be taken again, had it stayed due.
        tokio::time::sleep(Duration::from_millis(500)).await;
        result
    };
    let mut result = None;
    engine
        .run_until(async { result = Some(watch.await) })
        .await
        .unwrap();
    let RunResult::Failed(failure) = result.unwrap() else {
        panic!("the run did not fail");
    };
    assert_eq!(failure.step.as_deref(), Some("only"));
    assert!(
        failure.reason.contains("the service said: a\u{fffd}b"),
        "{}",
        failure.reason
    );
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "the step ran more than once"
    );
    let info = store.status(&run).await.unwrap().unwrap();
    assert_eq!(info.status, RunStatus::Failed);
}

/// When the store refuses to mark a run failed (here a trigger on the server refuses every
/// `failed` status), the engine does not give the run's lease back: the run, still `running`
/// in the store, would be due at once and fail the same way at every poll. It runs again only
/// once its lease has expired.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_cannot_be_marked_failed_waits_for_its_lease_to_expire() {
    use flow_runtime::state::{Engine, Setup};
    use std::sync::atomic::AtomicUsize;
    use std::time::{Duration, Instant};

    let (store, database) = pg::fresh_store().await;
    pg::server().psql(
        &database.name,
        "CREATE FUNCTION refuse_failed() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN RAISE EXCEPTION 'failures refused'; END $$; \
         CREATE TRIGGER refuse_failed BEFORE UPDATE ON runs FOR EACH ROW \
         WHEN (NEW.status = 'failed') EXECUTE FUNCTION refuse_failed();",
        &[],
    );
    let store = Arc::new(store);
    let runs = Arc::new(AtomicUsize::new(0));
    let lease = Duration::from_millis(1500);
    let engine = Engine::builder(Arc::clone(&store))
        .register::<nul_failure::Workflow>(Setup::new(Arc::clone(&runs)))
        .poll_interval(Duration::from_millis(50))
        .lease(lease)
        .build();
    let began = Instant::now();
    let report = engine
        .run_until(async {
            engine
                .start::<nul_failure::Workflow>("refused", 1)
                .await
                .unwrap();
            // Twenty polls and more: the step ran once.
            tokio::time::sleep(Duration::from_millis(1000)).await;
            assert_eq!(
                runs.load(Ordering::SeqCst),
                1,
                "taken again before the lease expired"
            );
            // Then the lease expires and the run is taken again.
            while runs.load(Ordering::SeqCst) < 2 {
                assert!(
                    began.elapsed() < Duration::from_secs(10),
                    "never taken again"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .unwrap();
    assert!(
        began.elapsed() >= lease,
        "taken again after {:?}",
        began.elapsed()
    );
    // Each turn whose failure the store refused is reported as such, none as failed.
    assert!(report.unrecorded >= 1, "{report:?}");
    assert_eq!(report.failed, 0, "{report:?}");
}
