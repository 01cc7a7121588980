//! Real crashes: `crash_worker` (in `src/bin`) drives 50 runs of a 12-step workflow against a
//! `SqliteStore`; this test kills it with `SIGKILL` at random moments and starts it again, at
//! least 200 times (`FLOW_CRASH_KILLS=2000` for a longer run; `FLOW_CRASH_SEED` picks the kill
//! times), then lets it finish. From the store itself: every run finished with the right output
//! and has every step completed exactly once, in order. From the steps' own effects log: every
//! completed step ran, and a step ran more than once only when a kill interrupted it
//! (at-least-once execution, exactly-once completion). Each step also makes two tool calls
//! against a loopback service that counts requests per idempotency key: every call was sent
//! with its own key, its result is in the run's call journal, and a call was sent again only
//! when a kill caught it in flight (at most one per running step per kill): the calls a
//! replayed step had completed come from the journal, never from the service again. The last
//! two steps are agents against the scripted model server (here, outside the worker): three
//! model calls and three tool calls each (two of them in parallel); the server counts model
//! requests per idempotency key, and the same holds for them: each is journaled, and one is
//! sent again only when a kill caught it in flight.
//!
//! The kills come in rounds, each with a fresh file: a round ends when the worker finishes its
//! 50 runs by itself. Rounds alternate between one run at a time and eight at once, so kills
//! land both in a lone commit and in a group commit of several runs.

use flow_runtime::model::scripted::{Reply, Script, ScriptedModel};
use flow_runtime::prelude::*;
use flow_runtime::store::{JournalResult, SqliteStore};
use flow_runtime::tool::{IdempotencyKey, Visit};
use flow_tests::keyed::{KeyedService, mix};
use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const RUNS: u64 = 50;
/// Steps in all; the first `MIX_STEPS` call `Mix` twice, the others are agents.
const STEPS: u64 = 12;
const MIX_STEPS: u64 = 10;
/// What the scripted model answers an agent step.
const ANSWER: u64 = 5;
/// The `Mix` inputs an agent step's model asks for: two at once, then one.
const AGENT_MIXES: [u64; 3] = [11, 12, 13];
/// An agent step's calls, by position: model, mix, mix, model, mix, model.
const AGENT_CALLS: [Option<u64>; 6] = [None, Some(11), Some(12), None, Some(13), None];
/// The most calls one running step has in flight at once (an agent's two parallel calls).
const IN_FLIGHT: u64 = 2;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn spawn_worker(
    db: &Path,
    effects: &Path,
    concurrency: usize,
    origin: &str,
    model_url: &str,
) -> Child {
    Command::new(env!("CARGO_BIN_EXE_crash_worker"))
        .arg(db)
        .arg(effects)
        .arg(RUNS.to_string())
        .arg(concurrency.to_string())
        .arg(origin)
        .arg(model_url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start crash_worker")
}

/// What the worker's step `k` does with its two calls' results `mix(x)` and `mix(x ^ k)`.
fn step_value(x: u64, k: u64) -> u64 {
    mix(x)
        .wrapping_add(mix(x ^ k))
        .wrapping_mul(31)
        .wrapping_add(k)
}

/// What the worker's agent step `k` does with the model's answer.
fn agent_value(x: u64, k: u64) -> u64 {
    x.wrapping_mul(3).wrapping_add(ANSWER).wrapping_add(k)
}

/// The output of run `i`: all twelve steps applied to `i`.
fn expected_output(i: u64) -> u64 {
    let x = (1..=MIX_STEPS).fold(i, step_value);
    (MIX_STEPS + 1..=STEPS).fold(x, agent_value)
}

/// The script of every agent step: two `Mix` calls at once, one more, the answer.
fn agent_script() -> Script {
    let [a, b, c] = AGENT_MIXES;
    Script::new([
        Reply::tool_calls([("mix", a.into()), ("mix", b.into())]),
        Reply::tool_call("mix", c.into()),
        Reply::answer(serde_json::json!({ "k": ANSWER })),
    ])
}

#[test]
fn sigkilled_workers_complete_every_step_exactly_once() {
    let target: u32 = env_or("FLOW_CRASH_KILLS", 200);
    let seed: u64 = env_or("FLOW_CRASH_SEED", 0x5EED_F10E);
    let mut rng = fastrand::Rng::with_seed(seed);
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    // The keyed services run here, outside the killed worker, on a runtime of their own.
    let services = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();

    let (mut kills, mut rounds, mut replays, mut agent_replays) = (0u32, 0u32, 0u64, 0u64);
    while kills < target {
        let concurrency = if rounds % 2 == 0 { 1 } else { 8 };
        let db = dir.path().join(format!("round-{rounds}.sqlite"));
        let effects = dir.path().join(format!("round-{rounds}.effects"));
        let mut round_kills = 0u32;
        // A service per round: run ids, and so idempotency keys, repeat from round to round.
        let (service, origin) = services.block_on(KeyedService::start());
        let model =
            services.block_on(async { ScriptedModel::start(agent_script()).await.unwrap() });
        loop {
            let mut worker = spawn_worker(&db, &effects, concurrency, &origin, &model.openai_url());
            if kills >= target || round_kills >= target.div_ceil(2) {
                // Enough kills (for the test, or for this round, so that rounds of both
                // concurrencies come): let this one finish undisturbed.
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
        let (all, agents) = check_round(&db, &effects, round_kills, concurrency, seed);
        replays += all;
        agent_replays += agents;
        check_calls(&db, &service, &model, round_kills, concurrency, seed);
        rounds += 1;
    }

    // With hundreds of kills during 1–3 ms steps, some must have landed inside a step; if none
    // did, the test is not testing what it claims to.
    assert!(replays > 0, "no kill interrupted a step (seed {seed:#x})");
    assert!(
        agent_replays > 0,
        "no kill interrupted an agent step (seed {seed:#x})"
    );
    eprintln!(
        "crash test: {kills} kills in {rounds} rounds, {replays} interrupted steps ran again \
         ({agent_replays} of them agents), {:.1} s (seed {seed:#x})",
        started.elapsed().as_secs_f64()
    );
}

/// Checks one round's calls: each of the 2 × 10 `Mix` calls and the 6 calls of each of the 2
/// agent steps of each run reached its service with its own key and is in the journal with its
/// result; a call was sent again only when a kill caught it in flight: at most
/// [`IN_FLIGHT`] per kill for each run the worker was running.
fn check_calls(
    db: &Path,
    service: &KeyedService,
    model: &ScriptedModel,
    kills: u32,
    concurrency: usize,
    seed: u64,
) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let store = SqliteStore::open(db).unwrap();
    let counts = service.counts();
    let model_counts = model.key_counts();
    let (mut expected_keys, mut expected_model_keys) = (0, 0);
    let journaled = |run_id: &RunId, step: &str, position: u32| {
        runtime
            .block_on(store.recorded_call(run_id, step, Visit::FIRST, position))
            .unwrap()
            .unwrap_or_else(|| panic!("{run_id} {step} call {position} is journaled"))
    };
    for i in 0..RUNS {
        let run_id = RunId::from(format!("run-{i}"));
        let mut x = i;
        for k in 1..=MIX_STEPS {
            let step = format!("s{k}");
            for (position, input) in [(0, x), (1, x ^ k)] {
                let key = IdempotencyKey::new(&run_id, &step, Visit::FIRST, position);
                assert!(
                    counts.contains_key(key.as_str()),
                    "{run_id} {step} call {position} never reached the service (seed {seed:#x})"
                );
                let entry = journaled(&run_id, &step, position);
                assert_eq!(entry.result, JournalResult::Output(mix(input).into()));
                expected_keys += 1;
            }
            x = step_value(x, k);
        }
        for k in MIX_STEPS + 1..=STEPS {
            let step = format!("s{k}");
            for (position, call) in (0u32..).zip(AGENT_CALLS) {
                let key = IdempotencyKey::new(&run_id, &step, Visit::FIRST, position);
                let entry = journaled(&run_id, &step, position);
                match call {
                    Some(input) => {
                        assert!(
                            counts.contains_key(key.as_str()),
                            "{run_id} {step} call {position} never reached the service (seed {seed:#x})"
                        );
                        assert_eq!(entry.tool, "mix");
                        assert_eq!(entry.result, JournalResult::Output(mix(input).into()));
                        expected_keys += 1;
                    }
                    None => {
                        assert!(
                            model_counts.contains_key(key.as_str()),
                            "{run_id} {step} model call {position} never reached the model (seed {seed:#x})"
                        );
                        assert_eq!(entry.tool, "openai_chat");
                        expected_model_keys += 1;
                    }
                }
            }
        }
    }
    assert_eq!(
        counts.len(),
        expected_keys,
        "no call with an unexpected key"
    );
    assert_eq!(
        model_counts.len(),
        expected_model_keys,
        "no model call with an unexpected key"
    );
    let repeats: u64 = counts.values().map(|&n| u64::from(n - 1)).sum::<u64>()
        + model_counts.values().map(|&n| n as u64 - 1).sum::<u64>();
    let bound = u64::from(kills) * concurrency as u64 * IN_FLIGHT;
    assert!(
        repeats <= bound,
        "{repeats} calls sent again, but {kills} kills × {concurrency} running steps × \
         {IN_FLIGHT} calls in flight allow at most {bound} (seed {seed:#x}): a journaled call \
         was sent again"
    );
}

/// Checks one round's file and effects log; returns how many step executions were repeats,
/// and how many of those were agent steps'.
fn check_round(db: &Path, effects: &Path, kills: u32, concurrency: usize, seed: u64) -> (u64, u64) {
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
        assert_eq!(latest.step, format!("s{STEPS}"));
        assert_eq!(
            latest.state,
            serde_json::json!({ "Completed": { "output": expected_output(i) } }),
            "{run_id}'s output"
        );

        let history = runtime.block_on(store.history(&run_id)).unwrap();
        // The run's start (""), stored once before its first step, then each step.
        let (start, history) = history.split_first().expect("the run's start");
        assert_eq!((start.step.as_str(), start.seq), ("", 1), "{run_id}");
        let completed: Vec<&str> = history.iter().map(|h| h.step.as_str()).collect();
        assert_eq!(
            completed, steps,
            "{run_id}: every step completed exactly once, in order (seed {seed:#x})"
        );
        assert!(history.iter().map(|h| h.seq).eq(2..=STEPS + 1));
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
    let (mut replays, mut agent_replays) = (0, 0);
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
            if k > MIX_STEPS {
                agent_replays += u64::from(times - 1);
            }
        }
    }
    // A step runs again only if a kill interrupted it, and a kill interrupts at most the
    // `concurrency` steps running at that moment.
    let bound = u64::from(kills) * concurrency as u64;
    assert!(
        replays <= bound,
        "{replays} repeated steps, but {kills} kills × {concurrency} running steps allow at most {bound}"
    );
    (replays, agent_replays)
}
