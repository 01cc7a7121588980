//! The process `tests/processes/crash.rs` kills with `SIGKILL` and starts again.
//!
//! ```text
//! crash_worker DB EFFECTS RUNS CONCURRENCY ORIGIN MODEL_URL
//! ```
//!
//! Drives runs `run-0` … `run-{RUNS-1}` of the 12-step workflow [`crashy`] against the
//! `SqliteStore` in `DB`, `CONCURRENCY` runs at a time, each with `Workflow::run_or_resume`: a
//! finished run returns its output, a run with a checkpoint is resumed from it, any other run starts
//! with input `i`. Every step first appends `run-i sK` to the file `EFFECTS` (its side effect,
//! outside the store, so the test can see which steps ran, including those whose checkpoint
//! never made it), then sleeps 1–3 ms so that kills land in the middle of runs, then makes two
//! calls of the tool [`Mix`] against the keyed service at `ORIGIN` (which counts requests per
//! idempotency key), each journaled as it completes. Steps 11 and 12 are agents: the model
//! (the scripted model server at `MODEL_URL`, an OpenAI-compatible endpoint) asks for two
//! [`Mix`] calls at once, then one more, then answers; each model call and tool call is
//! journaled as it completes.
//!
//! Exits 0 once every run has finished, 1 (with a message) on any error.

use flow_runtime::agent::AgentError;
use flow_runtime::model::OpenAiChat;
use flow_runtime::prelude::*;
use flow_runtime::store::SqliteStore;
use flow_runtime::tool::{PolicyTool, ToolPolicy, Toolbox};
use flow_tests::keyed::Mix;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Where steps record that they ran.
#[derive(Clone, Debug)]
pub struct Effects(Arc<File>);

impl Effects {
    /// Appends `run-i sK` and sleeps 1–3 ms. One `write` call on an `O_APPEND` file: the line
    /// is in the file (the kernel's, which a `SIGKILL` does not lose) before the step returns.
    async fn record<P>(&self, ctx: &Ctx<Effects, P>, k: u64) -> Result<(), std::io::Error> {
        let line = format!("{} s{k}\n", ctx.run_id());
        (&*self.0).write_all(line.as_bytes())?;
        (&*self.0).flush()?;
        let jitter = line.bytes().map(u64::from).sum::<u64>() % 3;
        tokio::time::sleep(Duration::from_millis(1 + jitter)).await;
        Ok(())
    }
}

/// What step `k` does to the value with the two tool results `a` and `b`: the test computes
/// the same.
fn step_value(a: u64, b: u64, k: u64) -> u64 {
    a.wrapping_add(b).wrapping_mul(31).wrapping_add(k)
}

/// Step `k`: its effect, then two calls of [`Mix`].
async fn step<P>(ctx: &Ctx<Effects, P>, x: u64, k: u64) -> Result<u64, StepError>
where
    P: flow_runtime::tool::CanCall<Mix>,
{
    ctx.deps().record(ctx, k).await?;
    let a = ctx.call::<Mix>(x).await?;
    let b = ctx.call::<Mix>(x ^ k).await?;
    Ok(step_value(a, b, k))
}

/// A step's failure: its effects file, or a call.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// The effects file.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A tool call.
    #[error(transparent)]
    Call(#[from] flow_runtime::tool::CallError),
    /// An agent.
    #[error(transparent)]
    Agent(#[from] AgentError),
}

/// Agent step `k`: its effect, then a model choosing [`Mix`] calls until it answers; the
/// value is mixed with the answer. The test computes the same ([`agent_value`]).
async fn agent_step<P>(ctx: &Ctx<Effects, P>, x: u64, k: u64) -> Result<u64, StepError>
where
    P: flow_runtime::agent::StepTools,
{
    ctx.deps().record(ctx, k).await?;
    // Any JSON: the scripted model answers `{"k": 5}`.
    let answer: serde_json::Value = ctx
        .agent::<OpenAiChat>()
        .instructions("Mix the number, then answer with a `k`.")
        .run(format!("{x}"))
        .await?;
    let answer = answer["k"]
        .as_u64()
        .ok_or_else(|| std::io::Error::other(format!("the model answered {answer}")))?;
    Ok(agent_value(x, answer, k))
}

/// What agent step `k` does to the value with the model's answer `answer`.
fn agent_value(x: u64, answer: u64, k: u64) -> u64 {
    x.wrapping_mul(3).wrapping_add(answer).wrapping_add(k)
}

/// 10 steps in a line; each records its effect and mixes the value with two tool calls.
#[workflow(deps = Effects)]
pub mod crashy {
    use super::*;

    #[step(entry, tools = [Mix])]
    pub async fn s1(ctx: &Ctx<Effects, tools::S1>, x: u64) -> Result<u64, StepError> {
        step(ctx, x, 1).await
    }

    #[step(after = s1, tools = [Mix])]
    pub async fn s2(ctx: &Ctx<Effects, tools::S2>, x: u64) -> Result<u64, StepError> {
        step(ctx, x, 2).await
    }

    #[step(after = s2, tools = [Mix])]
    pub async fn s3(ctx: &Ctx<Effects, tools::S3>, x: u64) -> Result<u64, StepError> {
        step(ctx, x, 3).await
    }

    #[step(after = s3, tools = [Mix])]
    pub async fn s4(ctx: &Ctx<Effects, tools::S4>, x: u64) -> Result<u64, StepError> {
        step(ctx, x, 4).await
    }

    #[step(after = s4, tools = [Mix])]
    pub async fn s5(ctx: &Ctx<Effects, tools::S5>, x: u64) -> Result<u64, StepError> {
        step(ctx, x, 5).await
    }

    #[step(after = s5, tools = [Mix])]
    pub async fn s6(ctx: &Ctx<Effects, tools::S6>, x: u64) -> Result<u64, StepError> {
        step(ctx, x, 6).await
    }

    #[step(after = s6, tools = [Mix])]
    pub async fn s7(ctx: &Ctx<Effects, tools::S7>, x: u64) -> Result<u64, StepError> {
        step(ctx, x, 7).await
    }

    #[step(after = s7, tools = [Mix])]
    pub async fn s8(ctx: &Ctx<Effects, tools::S8>, x: u64) -> Result<u64, StepError> {
        step(ctx, x, 8).await
    }

    #[step(after = s8, tools = [Mix])]
    pub async fn s9(ctx: &Ctx<Effects, tools::S9>, x: u64) -> Result<u64, StepError> {
        step(ctx, x, 9).await
    }

    #[step(after = s9, tools = [Mix])]
    pub async fn s10(ctx: &Ctx<Effects, tools::S10>, x: u64) -> Result<u64, StepError> {
        step(ctx, x, 10).await
    }

    #[step(after = s10, tools = [Mix])]
    pub async fn s11(ctx: &Ctx<Effects, tools::S11>, x: u64) -> Result<u64, StepError> {
        agent_step(ctx, x, 11).await
    }

    #[step(after = s11, exit, tools = [Mix])]
    pub async fn s12(ctx: &Ctx<Effects, tools::S12>, x: u64) -> Result<u64, StepError> {
        agent_step(ctx, x, 12).await
    }
}

/// Drives run `run-{i}` to its end, from wherever the store says it is.
async fn drive(
    store: &Arc<SqliteStore>,
    effects: &Effects,
    tools: &Toolbox,
    i: u64,
) -> Result<(), String> {
    let run_id = RunId::from(format!("run-{i}"));
    let ctx = Ctx::builder(effects.clone())
        .run_id(run_id.clone())
        .store(Arc::clone(store))
        .tools(tools.clone())
        .build();
    // The run id is the idempotency key: a stored run continues from its latest checkpoint
    // (after `run_or_resume` checks that this code wrote it), a finished one returns its output.
    let output = crashy::Workflow::run_or_resume(&ctx, i)
        .await
        .map_err(|e| format!("{run_id}: {e}"))?;
    if output == expected(i) {
        Ok(())
    } else {
        Err(format!(
            "{run_id}: output {output}, expected {}",
            expected(i)
        ))
    }
}

/// Run `i`'s output: the test computes the same.
fn expected(i: u64) -> u64 {
    use flow_tests::keyed::mix;
    let x = (1..=10).fold(i, |x, k| step_value(mix(x), mix(x ^ k), k));
    (11..=12).fold(x, |x, k| agent_value(x, 5, k))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [db, effects, runs, concurrency, origin, model_url] = args.as_slice() else {
        eprintln!("usage: crash_worker DB EFFECTS RUNS CONCURRENCY ORIGIN MODEL_URL");
        return ExitCode::FAILURE;
    };
    let (Ok(runs), Ok(concurrency)) = (runs.parse::<u64>(), concurrency.parse::<usize>()) else {
        eprintln!("crash_worker: RUNS and CONCURRENCY must be numbers");
        return ExitCode::FAILURE;
    };
    match work(db, effects, runs, concurrency.max(1), origin, model_url) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("crash_worker: {e}");
            ExitCode::FAILURE
        }
    }
}

fn work(
    db: &str,
    effects: &str,
    runs: u64,
    concurrency: usize,
    origin: &str,
    model_url: &str,
) -> Result<(), String> {
    let mix = Mix::new(origin).map_err(|e| e.to_string())?;
    let model = OpenAiChat::new(model_url, "scripted").map_err(|e| e.to_string())?;
    let tools = Toolbox::new()
        .with(PolicyTool::new(mix, ToolPolicy::default()))
        .with(PolicyTool::new(model, ToolPolicy::default()));
    let store = Arc::new(SqliteStore::open(db).map_err(|e| e.to_string())?);
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(effects)
        .map_err(|e| format!("{effects}: {e}"))?;
    let effects = Effects(Arc::new(file));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        // `concurrency` workers take the next run id from a shared counter.
        let next = Arc::new(AtomicU64::new(0));
        let mut workers = tokio::task::JoinSet::<Result<(), String>>::new();
        for _ in 0..concurrency {
            let (store, effects, next) = (Arc::clone(&store), effects.clone(), Arc::clone(&next));
            let tools = tools.clone();
            workers.spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= runs {
                        return Ok(());
                    }
                    drive(&store, &effects, &tools, i).await?;
                }
            });
        }
        while let Some(done) = workers.join_next().await {
            done.map_err(|e| e.to_string())??;
        }
        Ok(())
    })
}
