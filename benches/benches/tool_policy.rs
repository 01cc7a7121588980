//! What the tool policy stack costs per call, and how closely its rate limiter keeps the rate.
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-bench cargo bench -p flow-benches --bench tool_policy -- --measurement-time 5 --sample-size 50
//! ```
//!
//! Overhead (`tool_policy` group), around a tool whose `call` returns `Ok(())` at once, on a
//! current-thread tokio runtime:
//!
//! * `direct`: `Tool::call` with a ready-made `ToolCtx`, no policy;
//! * `default_policy`: `PolicyTool::call` with `ToolPolicy::default()` (span, context, no
//!   limits);
//! * `full_policy`: every layer on, none of them ever waiting: a 1 s timeout, 3 attempts with
//!   backoff, a rate limit and a per-key rate limit too high to bind, 64 concurrency slots, and
//!   a bearer credential given in code (loaded and formatted at every call).
//!
//! The stack's overhead per call is `full_policy - direct` (criterion's median).
//!
//! Through a step (`tool_step` group): `Workflow::run` of a one-step workflow, with a fresh
//! context per run, whose step calls the no-op tool once through its context
//! (`ctx.call_for::<Noop>`, full policy: toolbox lookup, idempotency key, boxed future, the
//! call's record) against the same workflow whose step calls nothing. The difference is what
//! a tool call from a step costs on top of the policy stack.
//!
//! Accuracy (printed before the timings): 8 callers on a two-worker runtime call a no-op tool
//! as fast as the limit lets them for one second; the achieved rate is the calls admitted in
//! that second beyond the initial burst, per second.

use criterion::{Criterion, criterion_group, criterion_main};
use flow_runtime::state::RunId;
use flow_runtime::tool::{
    Auth, Credential, IdempotencyKey, PolicyTool, RateLimit, Retry, Tool, ToolCtx, ToolError,
    ToolPolicy,
};
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Does nothing, successfully.
#[derive(Debug)]
struct Noop;

impl Tool for Noop {
    type Input = ();
    type Output = ();
    const NAME: &'static str = "noop";
    const DESCRIPTION: &'static str = "Does nothing.";

    async fn call(&self, _ctx: &ToolCtx, _input: ()) -> Result<(), ToolError> {
        Ok(())
    }
}

/// One step that calls [`Noop`] once.
#[flow_runtime::workflow]
mod one_call {
    use super::Noop;
    use flow_runtime::prelude::*;

    #[step(entry, exit, tools = [Noop])]
    pub(crate) async fn step(ctx: &Ctx<(), tools::Step>, n: u32) -> Result<u32, CallError> {
        ctx.call_for::<Noop>("tenant", ()).await?;
        Ok(n)
    }
}

/// The same step, calling nothing.
#[flow_runtime::workflow]
mod no_call {
    use flow_runtime::prelude::*;

    #[step(entry, exit)]
    pub(crate) async fn step(ctx: &Ctx, n: u32) -> Result<u32, CallError> {
        let _ = ctx;
        Ok(n)
    }
}

fn key() -> IdempotencyKey {
    IdempotencyKey::new(
        &RunId::from("bench"),
        "noop",
        flow_runtime::tool::Visit::FIRST,
        0,
    )
}

fn overhead(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime");
    let key = key();
    let ctx = ToolCtx::new(Noop::NAME, key.clone());
    let default = PolicyTool::new(Noop, ToolPolicy::default());
    let full = PolicyTool::new(
        Noop,
        ToolPolicy::builder()
            .timeout(Duration::from_secs(1))
            .retry(Retry::exponential(Duration::from_millis(10)).max_attempts(3))
            .rate_limit(RateLimit::per_second(u32::MAX))
            .rate_limit_per_key(RateLimit::per_second(u32::MAX))
            .concurrency(64)
            .auth(Auth::bearer(Credential::new("bench-token")))
            .build(),
    );
    // Every driver succeeds.
    rt.block_on(async {
        Noop.call(&ctx, ()).await.unwrap();
        default.call(&key, ()).await.unwrap();
        full.call_for("tenant", &key, ()).await.unwrap();
    });

    let mut g = c.benchmark_group("tool_policy");
    g.bench_function("direct", |b| {
        b.to_async(&rt).iter(|| Noop.call(black_box(&ctx), ()));
    });
    g.bench_function("default_policy", |b| {
        b.to_async(&rt).iter(|| default.call(black_box(&key), ()));
    });
    g.bench_function("full_policy", |b| {
        b.to_async(&rt)
            .iter(|| full.call_for(black_box("tenant"), black_box(&key), ()));
    });
    g.finish();

    let toolbox = flow_runtime::tool::Toolbox::new().with(full.clone());
    let mut g = c.benchmark_group("tool_step");
    g.bench_function("no_call", |b| {
        b.to_async(&rt).iter(|| async {
            let ctx = flow_runtime::state::Ctx::builder(())
                .tools(toolbox.clone())
                .build();
            no_call::Workflow::run(&ctx, black_box(1)).await
        });
    });
    g.bench_function("one_call_full_policy", |b| {
        b.to_async(&rt).iter(|| async {
            let ctx = flow_runtime::state::Ctx::builder(())
                .tools(toolbox.clone())
                .build();
            one_call::Workflow::run(&ctx, black_box(1)).await
        });
    });
    g.finish();
}

/// Calls admitted beyond the initial burst in `window`, per second, with 8 callers.
fn achieved_rate(rt: &tokio::runtime::Runtime, limit: RateLimit, window: Duration) -> f64 {
    let tool = PolicyTool::new(Noop, ToolPolicy::builder().rate_limit(limit).build());
    let admitted = Arc::new(AtomicU64::new(0));
    rt.block_on(async {
        let deadline = tokio::time::Instant::now() + window;
        let mut callers = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let tool = tool.clone();
            let admitted = Arc::clone(&admitted);
            callers.spawn(async move {
                let key = key();
                loop {
                    tool.call(&key, ()).await.unwrap();
                    if tokio::time::Instant::now() >= deadline {
                        break;
                    }
                    admitted.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        callers.join_all().await;
    });
    let beyond_burst = admitted
        .load(Ordering::Relaxed)
        .saturating_sub(u64::from(limit.burst_size()));
    #[allow(clippy::cast_precision_loss, reason = "call counts far below 2^52")]
    let calls = beyond_burst as f64;
    calls / window.as_secs_f64()
}

fn accuracy(_c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .expect("a multi-thread runtime");
    println!("rate limiter accuracy, 8 concurrent callers, 1 s window:");
    println!(
        "{:>12} {:>6} {:>12} {:>8}",
        "configured", "burst", "achieved", "ratio"
    );
    for (rate, burst) in [
        (100, 1),
        (1_000, 1),
        (1_000, 10),
        (10_000, 1),
        (10_000, 100),
    ] {
        let limit = RateLimit::per_second(rate).burst(burst);
        let achieved = achieved_rate(&rt, limit, Duration::from_secs(1));
        println!(
            "{:>10}/s {burst:>6} {achieved:>10.0}/s {:>8.3}",
            rate,
            achieved / f64::from(rate)
        );
    }
}

criterion_group!(benches, accuracy, overhead);
criterion_main!(benches);
