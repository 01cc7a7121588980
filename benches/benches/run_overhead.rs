//! What `Workflow::run` costs per step, in memory and with a `MemoryStore`.
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-bench cargo bench -p flow-benches --bench run_overhead -- --measurement-time 5 --sample-size 50
//! python3 benches/report.py
//! ```
//!
//! For N = 10 and N = 50 linear steps that each add 1 to a `u64`, three drivers on a
//! current-thread tokio runtime:
//!
//! * `hand`: the same step functions called in order by a hand-written `async fn`;
//! * `run`: `Workflow::run` with a context that has no store;
//! * `run_store`: `Workflow::run` with a fresh `MemoryStore`, so every step also serialises
//!   the state to a `serde_json::Value` and pushes a `Checkpoint`.
//!
//! Per-step overhead is `(run - hand) / N`; the cost of a checkpoint is
//! `(run_store - run) / (N + 1)` (the run's start is stored too). All three use
//! `iter_batched` with the same setup (a new `Ctx`, with a new store for `run_store`) and
//! return the `Ctx`, so building the context and freeing the stored history are outside the
//! timing for every driver alike.
//!
//! The `trip` group is the travel-booking workflow end to end (`flow_benches::trip`: validate →
//! search → choose → book, garde rules on the request, a 16-byte struct between steps), as a
//! server would run it per request, so building and dropping a fresh `Ctx` is inside the timing:
//!
//! * `plain`: the same step functions called in order by plain async Rust (no `Ctx`);
//! * `run`: `Ctx::new(())`, then `trip::Workflow::run`;
//! * `typestate`: `Ctx::new(())`, then `Flow::new(&ctx, req).validate().await?…book()`;
//! * `ctx`: `Ctx::new(())` alone, built and dropped, the fixed part of the two above.
//!
//! `python3 benches/report.py` prints each against `plain`.

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use flow_benches::{
    TRIP, hand_linear10, hand_linear50, linear10, linear50, plain_trip, trip, typestate_trip,
};
use flow_runtime::prelude::*;
use std::future::Future;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime")
}

fn plain_ctx() -> Ctx {
    Ctx::builder(()).run_id("bench").build()
}

fn store_ctx() -> (Ctx, Arc<MemoryStore>) {
    let store = Arc::new(MemoryStore::new());
    (
        Ctx::builder(())
            .run_id("bench")
            .store(Arc::clone(&store))
            .build(),
        store,
    )
}

/// The three variants for one linear workflow `W` of `steps` steps and its hand-written twin.
fn bench_linear<W, H, F>(c: &mut Criterion, steps: usize, hand: H)
where
    W: Workflow<Deps = (), Input = u64, Output = u64>,
    H: Fn(u64) -> F + Copy,
    F: Future<Output = Result<u64, std::convert::Infallible>>,
{
    let rt = runtime();
    let expected = 7 + steps as u64;
    // Same output everywhere, and a checkpoint per step when there is a store.
    assert_eq!(rt.block_on(hand(7)).unwrap(), expected);
    assert_eq!(rt.block_on(W::run(&plain_ctx(), 7)).unwrap(), expected);
    let (ctx, store) = store_ctx();
    assert_eq!(rt.block_on(W::run(&ctx, 7)).unwrap(), expected);
    // The run's start, then a checkpoint per step.
    assert_eq!(store.history(ctx.run_id()).len(), steps + 1);

    let mut g = c.benchmark_group(format!("run_overhead_n{steps}"));
    g.bench_function("hand", |b| {
        b.to_async(&rt).iter_batched(
            plain_ctx,
            |ctx| async move { (black_box(hand(black_box(7)).await), ctx) },
            BatchSize::SmallInput,
        );
    });
    g.bench_function("run", |b| {
        b.to_async(&rt).iter_batched(
            plain_ctx,
            |ctx| async move { (black_box(W::run(&ctx, black_box(7)).await), ctx) },
            BatchSize::SmallInput,
        );
    });
    g.bench_function("run_store", |b| {
        b.to_async(&rt).iter_batched(
            store_ctx,
            |(ctx, store)| async move { (black_box(W::run(&ctx, black_box(7)).await), ctx, store) },
            BatchSize::SmallInput,
        );
    });
    g.finish();
}

fn n10(c: &mut Criterion) {
    bench_linear::<linear10::Workflow, _, _>(c, 10, hand_linear10);
}

fn n50(c: &mut Criterion) {
    bench_linear::<linear50::Workflow, _, _>(c, 50, hand_linear50);
}

/// The trip workflow end to end, a fresh context per run, beside plain async Rust.
fn trip(c: &mut Criterion) {
    let rt = runtime();
    // The three drivers must compute the same receipt, or the comparison means nothing.
    let expected = rt
        .block_on(plain_trip(TRIP))
        .expect("TRIP is a valid request");
    assert_eq!(
        rt.block_on(trip::Workflow::run(&Ctx::new(()), TRIP))
            .expect("run books TRIP"),
        expected
    );
    assert_eq!(
        rt.block_on(typestate_trip(&Ctx::new(()), TRIP))
            .expect("the typestate API books TRIP"),
        expected
    );

    let mut g = c.benchmark_group("trip");
    g.bench_function("plain", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(plain_trip(black_box(TRIP)).await) });
    });
    g.bench_function("run", |b| {
        b.to_async(&rt).iter(|| async {
            let ctx = Ctx::new(());
            black_box(trip::Workflow::run(&ctx, black_box(TRIP)).await)
        });
    });
    g.bench_function("typestate", |b| {
        b.to_async(&rt).iter(|| async {
            let ctx = Ctx::new(());
            black_box(typestate_trip(&ctx, black_box(TRIP)).await)
        });
    });
    g.bench_function("ctx", |b| {
        b.iter(|| black_box(Ctx::new(())));
    });
    g.finish();
}

fn config() -> Criterion {
    // Modest defaults for a shared machine; the command line overrides them.
    Criterion::default()
        .measurement_time(Duration::from_secs(5))
        .sample_size(50)
}

criterion_group! {
    name = benches;
    config = config();
    targets = n10, n50, trip
}
criterion_main!(benches);
