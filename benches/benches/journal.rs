//! What the call journal costs per tool call.
//!
//! ```text
//! cargo bench -p flow-benches --bench journal -- --measurement-time 5
//! ```
//!
//! * `journal/memory`, `journal/sqlite_file`: one call's journal traffic on a store, as
//!   `Ctx::call` makes it for a call never recorded: a lookup that misses, then the record of a
//!   small output (`{"value": n}`). On `SqliteStore` the record is one write the writer thread
//!   group-commits (one transaction, one `fsync` for a lone caller).
//! * `step_100_calls/no_store`, `step_100_calls/memory`: a step making 100 calls of an
//!   in-process tool, without a store (no journal) and with a `MemoryStore` (journal and one
//!   checkpoint). The difference divided by 100 is the journal's cost per call in a real step.

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use flow_runtime::prelude::*;
use flow_runtime::store::{JournalEntry, JournalResult, MemoryStore, SqliteStore, Store};
use flow_runtime::tool::{PolicyTool, ToolPolicy, Toolbox, Visit};
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

/// Doubles its input, in process.
#[derive(Debug)]
pub struct Double;

impl Tool for Double {
    type Input = u64;
    type Output = u64;
    const NAME: &'static str = "double";
    const DESCRIPTION: &'static str = "Doubles a number.";

    async fn call(&self, _: &ToolCtx, n: u64) -> Result<u64, ToolError> {
        Ok(n.wrapping_mul(2))
    }
}

/// One step, 100 calls.
#[workflow]
pub mod hundred {
    use super::{CallError, Ctx, Double};

    /// Calls `Double` 100 times.
    ///
    /// # Errors
    ///
    /// A call failed (it never does).
    #[step(entry, exit, tools = [Double])]
    pub async fn calls(ctx: &Ctx<(), tools::Calls>, n: u64) -> Result<u64, CallError> {
        let mut x = n;
        for _ in 0..100 {
            x = ctx.call::<Double>(x).await?;
        }
        Ok(x)
    }
}

fn entry(run: &RunId, position: u32) -> JournalEntry {
    JournalEntry::new(
        run.clone(),
        "step",
        Visit::FIRST,
        position,
        "double",
        1,
        JournalResult::Output(serde_json::json!({ "value": position })),
    )
}

async fn one_call<S: Store>(store: &S, run: &RunId, position: u32) {
    let missed = store
        .recorded_call(run, "step", Visit::FIRST, position)
        .await
        .expect("lookup");
    assert!(missed.is_none());
    store
        .record_call(entry(run, position))
        .await
        .expect("record");
}

fn journal(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("journal");
    let memory = MemoryStore::new();
    let run = RunId::from("bench");
    let next = AtomicU32::new(0);
    group.bench_function("memory", |b| {
        b.iter(|| {
            let position = next.fetch_add(1, Ordering::Relaxed);
            rt.block_on(one_call(&memory, &run, position));
        });
    });
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(dir.path().join("journal.sqlite")).unwrap();
    let next = AtomicU32::new(0);
    group.bench_function("sqlite_file", |b| {
        b.iter(|| {
            let position = next.fetch_add(1, Ordering::Relaxed);
            rt.block_on(one_call(&sqlite, &run, position));
        });
    });
    group.finish();

    let mut group = c.benchmark_group("step_100_calls");
    let tools = Toolbox::new().with(PolicyTool::new(Double, ToolPolicy::default()));
    group.bench_function("no_store", |b| {
        b.iter_batched(
            || Ctx::builder(()).tools(tools.clone()).build(),
            |ctx| black_box(rt.block_on(hundred::Workflow::run(&ctx, 1)).unwrap()),
            BatchSize::SmallInput,
        );
    });
    group.bench_function("memory", |b| {
        b.iter_batched(
            || {
                Ctx::builder(())
                    .store(Arc::new(MemoryStore::new()))
                    .tools(tools.clone())
                    .build()
            },
            |ctx| black_box(rt.block_on(hundred::Workflow::run(&ctx, 1)).unwrap()),
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

criterion_group!(benches, journal);
criterion_main!(benches);
