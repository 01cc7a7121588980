//! Many engines on one store, killed and paused: what leases and fencing promise.
//!
//! `fleet_worker` (in `src/bin`) runs an engine with the six-step workflow
//! [`relay`](flow_tests::fleet::relay), each step making one journaled call of a loopback
//! service that counts requests per idempotency key. The tests here start the runs, then:
//!
//! - **Crashes**: a few workers share the store while this test `SIGKILL`s one of them at
//!   random moments and starts a replacement, at least 100 times (`FLOW_FLEET_KILLS` for more;
//!   `FLOW_FLEET_SEED` picks the moments), over at least 300 runs (another 300 whenever all
//!   have finished before the kills are done). A killed worker's runs are taken over by the
//!   others once their leases (300 ms here) expire. From the store: every run finished with
//!   the right output, every step completed exactly once in history and in order, every call
//!   journaled with its result. From the service: every call reached it, and one was sent
//!   again only when a kill caught it in flight (at most one per run the killed worker held).
//!   From the steps' effects log: a step ran again only after a kill. From the outputs file:
//!   every run's output was delivered.
//! - **Fencing**: a worker is paused (`SIGSTOP`) in the middle of a step past its lease;
//!   another takes the run over and finishes it; resumed (`SIGCONT`), the paused worker finds
//!   its lease gone and stops the run without writing: the run's output names the process
//!   that completed each step, and none of the paused worker's comes after the other's.

use flow_runtime::state::{Engine, Setup};
use flow_runtime::store::{JournalResult, RunFilter, RunHistory, RunQueue, RunStatus, SqliteStore};
use flow_runtime::tool::{IdempotencyKey, Visit};
use flow_tests::fleet::{Effects, STEPS, Trail, expected, relay, step_value};
use flow_tests::keyed::{KeyedService, mix};
use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Where a fleet keeps its files: the store's address, the effects log, the outputs file.
struct Fleet {
    db: String,
    effects: PathBuf,
    outputs: PathBuf,
    origin: String,
    lease_ms: u64,
    step_ms: u64,
    concurrency: usize,
}

impl Fleet {
    fn new(dir: &Path, db: String, origin: String) -> Self {
        Self {
            db,
            effects: dir.join("effects.log"),
            outputs: dir.join("outputs.jsonl"),
            origin,
            lease_ms: 300,
            step_ms: 3,
            concurrency: 4,
        }
    }

    fn spawn(&self) -> Child {
        Command::new(env!("CARGO_BIN_EXE_fleet_worker"))
            .arg(&self.db)
            .arg(&self.effects)
            .arg(&self.outputs)
            .arg(&self.origin)
            .arg(self.lease_ms.to_string())
            .arg(self.step_ms.to_string())
            .arg(self.concurrency.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start fleet_worker")
    }
}

/// Closes a worker's standard input (it shuts down) and returns its report line.
fn stop(mut worker: Child) -> String {
    drop(worker.stdin.take());
    let mut out = String::new();
    let _ = worker.stdout.take().unwrap().read_to_string(&mut out);
    let status = worker.wait().unwrap();
    assert!(status.success(), "a worker failed: {status}");
    out.trim().to_owned()
}

/// The value of report field `name` in a worker's report line.
fn field(report: &str, name: &str) -> u64 {
    report
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
        .unwrap_or_else(|| panic!("no `{name}` in report {report:?}"))
}

/// Starts runs `prefix-0` … of the workflow in the store, for the workers to take.
async fn start_runs<S: RunQueue>(store: &Arc<S>, prefix: &str, runs: u64) -> Vec<String> {
    let log = std::fs::File::create("/dev/null").unwrap();
    let engine = Engine::builder(Arc::clone(store))
        .register::<relay::Workflow>(Setup::new(Effects::new(log, Duration::ZERO)))
        .build();
    let mut ids = Vec::new();
    for i in 0..runs {
        let id = format!("{prefix}-{i}");
        engine
            .start::<relay::Workflow>(id.as_str(), i)
            .await
            .unwrap();
        ids.push(id);
    }
    ids
}

/// How many of `ids` have finished, in one listing; every run is running or finished.
async fn finished<S: RunQueue>(store: &S, ids: &[String]) -> usize {
    let runs = store.list(&RunFilter::new()).await.unwrap();
    let mut n = 0;
    for info in runs
        .iter()
        .filter(|info| ids.contains(&info.run_id.to_string()))
    {
        assert!(
            matches!(info.status, RunStatus::Running | RunStatus::Finished),
            "{} is {:?}: {:?}",
            info.run_id,
            info.status,
            info.failure
        );
        n += usize::from(info.status == RunStatus::Finished);
    }
    n
}

/// The input of run `prefix-i`.
fn input_of(id: &str) -> u64 {
    id.rsplit_once('-').unwrap().1.parse().unwrap()
}

/// Checks every run from the store, the service, the effects log and the outputs file;
/// `kills` workers each holding up to `concurrency` runs died mid-way.
async fn check<S: RunHistory>(
    store: &S,
    fleet: &Fleet,
    service: &KeyedService,
    ids: &[String],
    kills: u64,
) {
    let steps: Vec<String> = (1..=STEPS).map(|k| format!("f{k}")).collect();
    let counts = service.counts();
    for id in ids {
        let run = id.as_str().into();
        let i = input_of(id);
        let latest = store.latest(&run).await.unwrap().unwrap();
        assert!(latest.finished, "{id} finished");
        let output: Trail =
            serde_json::from_value(latest.state["Completed"]["output"].clone()).unwrap();
        assert_eq!(output.x, expected(i), "{id}'s output");
        assert_eq!(output.by.len(), steps.len());
        let history = store.steps(&run).await.unwrap();
        // After the checkpoint `Engine::start` wrote (step "").
        let completed: Vec<&str> = history.iter().skip(1).map(|h| h.step.as_str()).collect();
        assert_eq!(history.first().map(|h| h.step.as_str()), Some(""));
        assert_eq!(
            completed, steps,
            "{id}: every step completed exactly once, in order"
        );
        let mut x = i;
        for k in 1..=STEPS {
            let step = format!("f{k}");
            let entry = store
                .recorded_call(&run, &step, Visit::FIRST, 0)
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("{id} {step}'s call is journaled"));
            assert_eq!(entry.result, JournalResult::Output(mix(x ^ k).into()));
            let key = IdempotencyKey::new(&run, &step, Visit::FIRST, 0);
            assert!(
                counts.contains_key(key.as_str()),
                "{id} {step}'s call reached the service"
            );
            x = step_value(x, k);
        }
    }
    assert_eq!(
        counts.len(),
        ids.len() * steps.len(),
        "no call with another key"
    );
    let bound = kills * fleet.concurrency as u64;
    let resent: u64 = counts.values().map(|&n| u64::from(n) - 1).sum();
    assert!(
        resent <= bound,
        "{resent} calls sent again, but {kills} kills × {} runs each allow {bound}: a journaled \
         call was repeated",
        fleet.concurrency
    );
    // Each step ran at least once, and again only after a kill.
    let log = std::fs::read_to_string(&fleet.effects).unwrap();
    let mut ran: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    for line in log.lines() {
        let mut parts = line.split(' ');
        let (Some(run), Some(step)) = (parts.next(), parts.next()) else {
            panic!("bad effects line {line:?}");
        };
        *ran.entry((run, step)).or_default() += 1;
    }
    let mut again = 0;
    for id in ids {
        for step in &steps {
            let times = ran.get(&(id.as_str(), step.as_str())).copied().unwrap_or(0);
            assert!(times >= 1, "{id} {step} completed but never ran");
            again += times - 1;
        }
    }
    assert!(
        again <= bound,
        "{again} steps ran again, but {kills} kills allow {bound}"
    );
    // Every run's output was delivered, with the run's id and its value.
    let mut delivered: BTreeMap<String, u64> = BTreeMap::new();
    for line in std::fs::read_to_string(&fleet.outputs).unwrap().lines() {
        let record: serde_json::Value = serde_json::from_str(line).unwrap();
        let output: Trail = serde_json::from_value(record["value"].clone()).unwrap();
        let run = record["run_id"].as_str().unwrap().to_owned();
        assert_eq!(
            output.x,
            expected(input_of(&run)),
            "{run}'s delivered output"
        );
        *delivered.entry(run).or_default() += 1;
    }
    for id in ids {
        assert!(delivered.contains_key(id), "{id}'s output was delivered");
    }
    let redelivered: u64 = delivered.values().map(|n| n - 1).sum();
    assert!(
        redelivered <= bound,
        "{redelivered} outputs delivered again"
    );
}

/// `workers` engines on `db`, one killed at random and replaced at least `FLOW_FLEET_KILLS`
/// (100) times, over batches of 300 runs.
async fn crash_fleet<S: RunQueue + RunHistory>(store: Arc<S>, db: String, workers: usize) {
    let target: u64 = env_or("FLOW_FLEET_KILLS", 100);
    let seed: u64 = env_or("FLOW_FLEET_SEED", 0xF1EE7);
    let mut rng = fastrand::Rng::with_seed(seed);
    let dir = tempfile::tempdir().unwrap();
    let (service, origin) = KeyedService::start().await;
    let fleet = Fleet::new(dir.path(), db, origin);
    let started = Instant::now();
    let mut ids = start_runs(&store, "b0", 300).await;
    let mut pool: Vec<Child> = (0..workers).map(|_| fleet.spawn()).collect();
    let mut kills = 0u64;
    let mut batches = 1;
    while kills < target {
        tokio::time::sleep(Duration::from_millis(rng.u64(5..=60))).await;
        let victim = rng.usize(..pool.len());
        let mut killed = std::mem::replace(&mut pool[victim], fleet.spawn());
        killed.kill().unwrap();
        killed.wait().unwrap();
        kills += 1;
        if finished(&*store, &ids).await == ids.len() {
            // Everything finished before the kills were done: more runs to kill workers in.
            ids.extend(start_runs(&store, &format!("b{batches}"), 300).await);
            batches += 1;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while finished(&*store, &ids).await < ids.len() {
        assert!(
            Instant::now() < deadline,
            "runs did not finish within 2 minutes of the last kill (seed {seed:#x})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let reports: Vec<String> = pool.into_iter().map(stop).collect();
    check(&*store, &fleet, &service, &ids, kills).await;
    eprintln!(
        "fleet crash test: {workers} workers, {} runs, {kills} kills, {:.1} s (seed {seed:#x}); \
         last workers: {reports:?}",
        ids.len(),
        started.elapsed().as_secs_f64()
    );
}

/// A worker paused past its lease mid-step; another takes the run over; the paused one,
/// resumed, writes nothing more for it.
///
/// `free` tells whether the paused worker left the store free for others: an SQLite file is
/// locked for every other writer while a process is stopped inside a write transaction (its
/// heartbeat, say), which no lease can help; the test pauses it again until it is not.
async fn paused_worker_is_fenced<S: RunQueue + RunHistory>(
    store: Arc<S>,
    db: String,
    free: impl Fn() -> bool,
) {
    use nix_free::{cont, stop as pause};
    let dir = tempfile::tempdir().unwrap();
    let (service, origin) = KeyedService::start().await;
    let mut fleet = Fleet::new(dir.path(), db, origin);
    fleet.lease_ms = 400;
    fleet.step_ms = 300;
    let ids = start_runs(&store, "fenced", 1).await;
    let a = fleet.spawn();
    // Until A is in the middle of the run's second step.
    let started = |pid: u32, step: &str| {
        std::fs::read_to_string(&fleet.effects)
            .unwrap_or_default()
            .lines()
            .any(|line| line == format!("fenced-0 {step} {pid}"))
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !started(a.id(), "f2") {
        assert!(Instant::now() < deadline, "worker A never began step f2");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    pause(a.id());
    while !free() {
        cont(a.id());
        tokio::time::sleep(Duration::from_millis(3)).await;
        pause(a.id());
    }
    // Past A's lease (400 ms), B takes the run over and finishes it.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let b = fleet.spawn();
    while finished(&*store, &ids).await < 1 {
        assert!(Instant::now() < deadline, "worker B did not finish the run");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cont(a.id());
    // A wakes in step f2, finds its lease gone and stops the run.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let (a_pid, b_pid) = (a.id(), b.id());
    let report_a = stop(a);
    let report_b = stop(b);
    assert_eq!(field(&report_a, "lost"), 1, "A lost the run: {report_a}");
    assert_eq!(field(&report_a, "finished"), 0, "{report_a}");
    assert_eq!(field(&report_b, "finished"), 1, "{report_b}");

    let run = "fenced-0".into();
    let latest = store.latest(&run).await.unwrap().unwrap();
    let output: Trail =
        serde_json::from_value(latest.state["Completed"]["output"].clone()).unwrap();
    assert_eq!(output.x, expected(0));
    assert_eq!(
        output.by,
        [a_pid, b_pid, b_pid, b_pid, b_pid, b_pid],
        "A completed f1; B every step after the takeover; nothing of A's after B's"
    );
    let history = store.steps(&run).await.unwrap();
    assert_eq!(
        history.len(),
        7,
        "the start, and each step once: {history:?}"
    );
    // A never sent f2's call: it found its lease expired before making it.
    let counts = service.counts();
    assert!(
        counts.values().all(|&n| n == 1),
        "no call sent twice: {counts:?}"
    );
    assert!(
        started(b_pid, "f2"),
        "B ran f2 again from A's last checkpoint"
    );
}

/// `SIGSTOP` and `SIGCONT` through `kill(1)`: the tests forbid `unsafe`, and `std` sends only
/// `SIGKILL`.
mod nix_free {
    fn signal(name: &str, pid: u32) {
        let status = std::process::Command::new("kill")
            .args([format!("-{name}"), pid.to_string()])
            .status()
            .expect("run kill(1)");
        assert!(status.success(), "kill -{name} {pid}: {status}");
    }

    pub(super) fn stop(pid: u32) {
        signal("STOP", pid);
    }

    pub(super) fn cont(pid: u32) {
        signal("CONT", pid);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_two_engines_killed_at_random_finish_every_run_once() {
    let db = flow_tests::store::TempDb::new();
    let store = db.open();
    crash_fleet(store, db.path().display().to_string(), 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_paused_engine_is_fenced_off_its_run() {
    let db = flow_tests::store::TempDb::new();
    let store: Arc<SqliteStore> = db.open();
    let path = db.path().to_owned();
    let free = move || {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.busy_timeout(Duration::from_millis(100)).unwrap();
        conn.execute_batch("BEGIN IMMEDIATE; ROLLBACK;").is_ok()
    };
    paused_worker_is_fenced(store, db.path().display().to_string(), free).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_paused_engine_is_fenced_off_its_run() {
    let (store, database) = flow_tests::pg::fresh_store().await;
    // A worker stopped inside a transaction holds no lock for long: the store's sessions end
    // after 10 s idle in a transaction.
    paused_worker_is_fenced(Arc::new(store), database.url, || true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_three_engines_killed_at_random_finish_every_run_once() {
    let (store, database) = flow_tests::pg::fresh_store().await;
    crash_fleet(Arc::new(store), database.url, 3).await;
}
