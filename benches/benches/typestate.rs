//! The typestate API and `Workflow::run` against the same steps called by hand.
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-bench cargo bench -p flow-benches --bench typestate -- --measurement-time 5 --sample-size 50
//! python3 benches/report.py
//! ```
//!
//! Two workflows of 10 linear steps from `flow_benches`, each driven three ways on a
//! current-thread tokio runtime:
//!
//! * `typestate`: `Flow::new(&ctx, x).s1().await?.s2().await?…` (each step method returns a
//!   boxed future: one allocation per step, chosen for the quality of out-of-order errors);
//! * `run`: the generated runner, `Workflow::run(&ctx, x)`, with no store;
//! * `hand`: the same step functions called in order by a hand-written `async fn`.
//!
//! Each run of the first two gets a context of its own (a context is one run), built outside
//! the timing.
//!
//! `trivial10` steps add 1 to a `u64`, so the figures are the runtime's own overhead;
//! `hash10` steps hash 4 KiB (about 1 µs each), to show that overhead next to steps that do a
//! little work.

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use flow_benches::{
    hand_hash10, hand_linear10, hash10, linear10, typestate_hash10, typestate_linear10,
};
use flow_runtime::prelude::*;
use std::hint::black_box;
use std::time::Duration;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime")
}

/// A context per run (a context is one run), built outside the timing.
fn fresh_ctx() -> Ctx {
    Ctx::new(())
}

fn trivial10(c: &mut Criterion) {
    let rt = runtime();
    // The three drivers must compute the same thing, or the comparison means nothing.
    let expected = rt.block_on(hand_linear10(7)).unwrap();
    assert_eq!(expected, 17);
    assert_eq!(
        rt.block_on(typestate_linear10(&fresh_ctx(), 7)).unwrap(),
        expected
    );
    assert_eq!(
        rt.block_on(linear10::Workflow::run(&fresh_ctx(), 7))
            .unwrap(),
        expected
    );

    let mut g = c.benchmark_group("typestate_trivial10");
    g.bench_function("typestate", |b| {
        b.to_async(&rt).iter_batched(
            fresh_ctx,
            |ctx| async move { (black_box(typestate_linear10(&ctx, black_box(7)).await), ctx) },
            BatchSize::SmallInput,
        );
    });
    g.bench_function("run", |b| {
        b.to_async(&rt).iter_batched(
            fresh_ctx,
            |ctx| async move {
                (
                    black_box(linear10::Workflow::run(&ctx, black_box(7)).await),
                    ctx,
                )
            },
            BatchSize::SmallInput,
        );
    });
    g.bench_function("hand", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(hand_linear10(black_box(7)).await) });
    });
    g.finish();
}

fn hash10(c: &mut Criterion) {
    let rt = runtime();
    let expected = rt.block_on(hand_hash10(7)).unwrap();
    assert_eq!(
        rt.block_on(typestate_hash10(&fresh_ctx(), 7)).unwrap(),
        expected
    );
    assert_eq!(
        rt.block_on(hash10::Workflow::run(&fresh_ctx(), 7)).unwrap(),
        expected
    );

    let mut g = c.benchmark_group("typestate_hash10");
    g.bench_function("typestate", |b| {
        b.to_async(&rt).iter_batched(
            fresh_ctx,
            |ctx| async move { (black_box(typestate_hash10(&ctx, black_box(7)).await), ctx) },
            BatchSize::SmallInput,
        );
    });
    g.bench_function("run", |b| {
        b.to_async(&rt).iter_batched(
            fresh_ctx,
            |ctx| async move {
                (
                    black_box(hash10::Workflow::run(&ctx, black_box(7)).await),
                    ctx,
                )
            },
            BatchSize::SmallInput,
        );
    });
    g.bench_function("hand", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(hand_hash10(black_box(7)).await) });
    });
    g.finish();
}

fn config() -> Criterion {
    // Modest defaults for a shared machine; the command line (`--measurement-time`,
    // `--sample-size`) overrides them.
    Criterion::default()
        .measurement_time(Duration::from_secs(5))
        .sample_size(50)
}

criterion_group! {
    name = benches;
    config = config();
    targets = trivial10, hash10
}
criterion_main!(benches);
