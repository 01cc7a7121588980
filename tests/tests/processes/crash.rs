//! Real crashes: `crash_worker` (in `src/bin`) drives 50 runs of a 10-step workflow against a
//! `SqliteStore`; this test kills it with `SIGKILL` at random moments and starts it again, at
//! least 200 times (`FLOW_CRASH_KILLS=2000` for a longer run; `FLOW_CRASH_SEED` picks the kill
//! times), then lets it finish. From the store itself: every run finished with the right output
//! and has every step completed exactly once, in order. From the steps' own effects log: every
//! completed step ran, and a step ran more than once only when a kill interrupted it
//! (at-least-once execution, exactly-once completion).
//!
//! The kills come in rounds, each with a fresh file: a round ends when the worker finishes its
//! 50 runs by itself. Rounds alternate between one run at a time and eight at once, so kills
//! land both in a lone commit and in a group commit of several runs.

use flow_runtime::prelude::*;
use flow_runtime::store::SqliteStore;
use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const RUNS: u64 = 50;
const STEPS: u64 = 10;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn spawn_worker(db: &Path, effects: &Path, concurrency: usize) -> Child {
    Command::new(env!("CARGO_BIN_EXE_crash_worker"))
        .arg(db)
        .arg(effects)
        .arg(RUNS.to_string())
        .arg(concurrency.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start crash_worker")
}

/// What the worker's step `k` does; the output of run `i` is all ten applied to `i`.
fn expected_output(i: u64) -> u64 {
    (1..=STEPS).fold(i, |x, k| x.wrapping_mul(31).wrapping_add(k))
}

#[test]
fn sigkilled_workers_complete_every_step_exactly_once() {
    let target: u32 = env_or("FLOW_CRASH_KILLS", 200);
    let seed: u64 = env_or("FLOW_CRASH_SEED", 0x5EED_F10E);
    let mut rng = fastrand::Rng::with_seed(seed);
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();

    let (mut kills, mut rounds, mut replays) = (0u32, 0u32, 0u64);
    while kills < target {
        let concurrency = if rounds % 2 == 0 { 1 } else { 8 };
        let db = dir.path().join(format!("round-{rounds}.sqlite"));
        let effects = dir.path().join(format!("round-{rounds}.effects"));
        let mut round_kills = 0u32;
        loop {
            let mut worker = spawn_worker(&db, &effects, concurrency);
            if kills >= target {
                // Enough kills: let this one finish undisturbed.
                let status = worker.wait().unwrap();
                assert!(status.success(), "the last worker failed: {status}");
                break;
            }
            std::thread::sleep(Duration::from_millis(rng.u64(2..=100)));
            // Kills the worker, or does nothing if it has already exited (not yet reaped, so
            // its pid is still its own).
            let _ = worker.kill();
            let status = worker.wait().unwrap();
            if status.success() {
                break; // finished all its runs before the kill
            }
            assert_eq!(
                status.signal(),
                Some(9),
                "the worker failed by itself (seed {seed:#x}): {status}"
            );
            kills += 1;
            round_kills += 1;
        }
        replays += check_round(&db, &effects, round_kills, concurrency, seed);
        rounds += 1;
    }

    // With hundreds of kills during 1–3 ms steps, some must have landed inside a step; if none
    // did, the test is not testing what it claims to.
    assert!(replays > 0, "no kill interrupted a step (seed {seed:#x})");
    eprintln!(
        "crash test: {kills} kills in {rounds} rounds, {replays} interrupted steps ran again, \
         {:.1} s (seed {seed:#x})",
        started.elapsed().as_secs_f64()
    );
}

/// Checks one round's file and effects log; returns how many step executions were repeats.
fn check_round(db: &Path, effects: &Path, kills: u32, concurrency: usize, seed: u64) -> u64 {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let store = SqliteStore::open(db).unwrap();
    let steps: Vec<String> = (1..=STEPS).map(|k| format!("s{k}")).collect();

    for i in 0..RUNS {
        let run_id = RunId::from(format!("run-{i}"));
        let latest = runtime
            .block_on(store.latest(&run_id))
            .unwrap()
            .unwrap_or_else(|| panic!("{run_id} has no checkpoint"));
        assert!(latest.finished, "{run_id} did not finish");
        assert_eq!(latest.workflow, "crashy");
        assert_eq!(latest.step, "s10");
        assert_eq!(
            latest.state,
            serde_json::json!({ "Completed": { "output": expected_output(i) } }),
            "{run_id}'s output"
        );

        let history = runtime.block_on(store.history(&run_id)).unwrap();
        let completed: Vec<&str> = history.iter().map(|h| h.step.as_str()).collect();
        assert_eq!(
            completed, steps,
            "{run_id}: every step completed exactly once, in order (seed {seed:#x})"
        );
        assert!(history.iter().map(|h| h.seq).eq(1..=STEPS));
        assert!(
            history
                .iter()
                .map(|h| h.finished)
                .eq((1..=STEPS).map(|k| k == STEPS))
        );
    }

    // How many times each step of each run ran, from the lines the steps appended.
    let log = std::fs::read_to_string(effects).unwrap();
    let mut ran: BTreeMap<(u64, u64), u32> = BTreeMap::new();
    for line in log.lines() {
        let parsed = line.split_once(' ').and_then(|(run, step)| {
            let i = run.strip_prefix("run-")?.parse::<u64>().ok()?;
            let k = step.strip_prefix('s')?.parse::<u64>().ok()?;
            (i < RUNS && (1..=STEPS).contains(&k)).then_some((i, k))
        });
        let key = parsed.unwrap_or_else(|| panic!("bad effects line {line:?}"));
        *ran.entry(key).or_default() += 1;
    }
    let mut replays = 0;
    for i in 0..RUNS {
        for k in 1..=STEPS {
            let times = ran.get(&(i, k)).copied().unwrap_or(0);
            // Completed (it is in the history, checked above) means it ran.
            assert!(times >= 1, "run-{i} s{k} completed but never ran");
            assert!(
                times <= 1 + kills,
                "run-{i} s{k} ran {times} times with only {kills} kills"
            );
            replays += u64::from(times - 1);
        }
    }
    // A step runs again only if a kill interrupted it, and a kill interrupts at most the
    // `concurrency` steps running at that moment.
    let bound = u64::from(kills) * concurrency as u64;
    assert!(
        replays <= bound,
        "{replays} repeated steps, but {kills} kills × {concurrency} running steps allow at most {bound}"
    );
    replays
}
