//! What a durable step costs with `SqliteStore`, next to this machine's raw `fsync`.
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-sql cargo bench -p flow-benches --bench sqlite
//! ```
//!
//! Criterion prints each median with its throughput (fsyncs/s, steps/s).
//!
//! * `fsync/write_4k_fsync`: overwrite 4 KiB of a temp file and `fsync` it: the floor under any
//!   durable commit here (SQLite calls `fsync`, not `fdatasync`, as `strace` shows).
//! * `durable_step/sqlite_file`: one run of `linear10` (10 steps that add 1) at a time, with a
//!   checkpoint stored in an SQLite file after every step: per-step latency of a lone run
//!   (throughput is reported per step). `sqlite_memory` is the same against an in-memory
//!   database: the gap between the two is the disk.
//! * `group_commit/runs_1000`: 1,000 runs of `linear10` at once against one file: durable
//!   steps per second when the writer thread commits many runs' checkpoints per transaction.
//!
//! How many `fsync`s a step costs. The file is in WAL mode with `synchronous = FULL`, so each
//! commit appends the transaction's pages to the WAL and `fsync`s it once; every 10,000 WAL
//! pages SQLite also checkpoints the WAL into the database (a few more `fsync`s, amortised).
//! The writer thread commits everything queued in one transaction, so a lone run pays one
//! `fsync` per step, and N concurrent runs share one per batch. Counted with
//! `strace -f -c -e trace=fsync,fdatasync` (all files are new, so the counts include creating
//! the schema):
//!
//! ```text
//! crash_worker DB EFFECTS 50 1          500 steps, one run at a time       510 fsync
//! crash_worker DB EFFECTS 50 8          500 steps, 8 runs at once          182 fsync
//! sqlite_store a_thousand_concurrent…   10,000 steps, 1,000 runs at once    29 fsync
//! ```
//!
//! (The worker's steps sleep 1–3 ms, so 8 runs rarely have more than ~3 checkpoints queued at
//! once; the 1,000-run test's steps do nothing, so batches hold hundreds.)

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use flow_benches::linear10;
use flow_runtime::prelude::*;
use flow_runtime::store::SqliteStore;
use std::fs::File;
use std::hint::black_box;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime")
}

/// A fresh run id for every run, so that every benchmarked step writes a new checkpoint.
fn next_run_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("run-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

fn fsync(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let file = File::create(dir.path().join("fsync")).expect("a temp file");
    let page = [0x5a_u8; 4096];
    let mut g = c.benchmark_group("fsync");
    g.throughput(Throughput::Elements(1));
    g.bench_function("write_4k_fsync", |b| {
        b.iter(|| {
            file.write_all_at(black_box(&page), 0).expect("write");
            file.sync_all().expect("fsync");
        });
    });
    g.finish();
}

fn durable_step(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("a temp dir");
    let file = Arc::new(SqliteStore::open(dir.path().join("steps.sqlite")).expect("open"));
    let memory = Arc::new(SqliteStore::open_in_memory().expect("open"));

    // One run stores one checkpoint per step.
    let ctx = Ctx::builder(())
        .run_id("check")
        .store(Arc::clone(&file))
        .build();
    assert_eq!(rt.block_on(linear10::Workflow::run(&ctx, 7)).unwrap(), 17);
    // The run's start, then its ten steps.
    assert_eq!(rt.block_on(file.history(ctx.run_id())).unwrap().len(), 11);

    let mut g = c.benchmark_group("durable_step");
    g.throughput(Throughput::Elements(10));
    for (name, store) in [("sqlite_file", &file), ("sqlite_memory", &memory)] {
        g.bench_function(name, |b| {
            b.to_async(&rt).iter_batched(
                || {
                    Ctx::builder(())
                        .run_id(next_run_id())
                        .store(Arc::clone(store))
                        .build()
                },
                |ctx| async move {
                    (
                        black_box(linear10::Workflow::run(&ctx, black_box(7)).await),
                        ctx,
                    )
                },
                BatchSize::SmallInput,
            );
        });
    }
    g.finish();
}

/// Runs `runs` runs of `linear10` at once against `store`; returns how long they took.
async fn concurrent_runs(store: &Arc<SqliteStore>, runs: u64) -> Duration {
    let ctxs: Vec<Ctx> = (0..runs)
        .map(|_| {
            Ctx::builder(())
                .run_id(next_run_id())
                .store(Arc::clone(store))
                .build()
        })
        .collect();
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for ctx in ctxs {
        tasks.spawn(async move { linear10::Workflow::run(&ctx, 7).await });
    }
    while let Some(done) = tasks.join_next().await {
        assert_eq!(done.expect("no panic").expect("durable run"), 17);
    }
    start.elapsed()
}

fn group_commit(c: &mut Criterion) {
    const RUNS: u64 = 1000;
    let rt = runtime();
    let dir = tempfile::tempdir().expect("a temp dir");
    let store = Arc::new(SqliteStore::open(dir.path().join("group.sqlite")).expect("open"));

    let mut g = c.benchmark_group("group_commit");
    g.throughput(Throughput::Elements(RUNS * 10));
    g.sample_size(10);
    g.bench_function("runs_1000", |b| {
        let store = &store;
        b.to_async(&rt).iter_custom(|iters| async move {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                total += concurrent_runs(store, RUNS).await;
            }
            total
        });
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
    targets = fsync, durable_step, group_commit
}
criterion_main!(benches);
