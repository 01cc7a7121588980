//! Heap allocations per run, counted by a global allocator that wraps the system's
//! (`stats_alloc`).
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-bench cargo bench -p flow-benches --bench allocs
//! ```
//!
//! Prints, for the drivers `run_overhead` times, how many allocations one run makes and how
//! many bytes they ask for (the same on every run after the first, so one warm-up run is
//! enough): `plain` trip, `Ctx::new(())` alone, the trip through `run` and through the
//! typestate API, and `run` of 10 and 50 trivial steps, each building and dropping a fresh
//! context (a context is one run; `trip/ctx` is that context's share, which `run_overhead`
//! leaves outside the timing of 10 and 50 steps). A count is exact, unlike a time on a loaded
//! machine: it is the figure to compare between two builds.
//!
//! It also prints the size of the trip's future through `run` and through the typestate API:
//! what a caller moves around and keeps while the run lasts.
//!
//! `allocs -- VARIANT N` instead runs one variant N times and prints nothing else, for
//! `perf stat -e instructions` or `valgrind --tool=callgrind` around it.

use flow_benches::{TRIP, linear10, linear50, plain_trip, trip, typestate_trip};
use flow_runtime::prelude::*;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use std::alloc::System;
use std::hint::black_box;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// One run, with the context it needs built inside it.
type Run = fn(&tokio::runtime::Runtime);

/// The variants, by name.
const VARIANTS: &[(&str, Run)] = &[
    ("trip/plain", |rt| {
        black_box(rt.block_on(plain_trip(black_box(TRIP))).ok());
    }),
    ("trip/ctx", |_| {
        black_box(Ctx::new(()));
    }),
    ("trip/run", |rt| {
        let ctx = Ctx::new(());
        black_box(rt.block_on(trip::Workflow::run(&ctx, black_box(TRIP))).ok());
    }),
    ("trip/typestate", |rt| {
        let ctx = Ctx::new(());
        black_box(rt.block_on(typestate_trip(&ctx, black_box(TRIP))).ok());
    }),
    ("run_overhead_n10/run", |rt| {
        let ctx = Ctx::new(());
        black_box(
            rt.block_on(linear10::Workflow::run(&ctx, black_box(7)))
                .ok(),
        );
    }),
    ("run_overhead_n50/run", |rt| {
        let ctx = Ctx::new(());
        black_box(
            rt.block_on(linear50::Workflow::run(&ctx, black_box(7)))
                .ok(),
        );
    }),
];

/// Allocations and bytes of one run of `f` (after one warm-up run).
fn count(rt: &tokio::runtime::Runtime, f: Run) -> (u64, u64) {
    f(rt);
    let region = Region::new(GLOBAL);
    f(rt);
    let change = region.change();
    (
        (change.allocations + change.reallocations) as u64,
        change.bytes_allocated as u64,
    )
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime");
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if let [variant, times] = args.as_slice() {
        let Some((_, f)) = VARIANTS.iter().find(|(name, _)| name == variant) else {
            let names: Vec<&str> = VARIANTS.iter().map(|v| v.0).collect();
            eprintln!("no variant `{variant}`; the variants: {names:?}");
            std::process::exit(2);
        };
        let times: u64 = times.parse().unwrap_or(1);
        for _ in 0..times {
            f(&rt);
        }
        return;
    }
    println!("| variant | allocations per run | bytes per run |");
    println!("|---|---:|---:|");
    for (name, f) in VARIANTS {
        let (allocs, bytes) = count(&rt, *f);
        println!("| {name} | {allocs} | {bytes} |");
    }
    // What a caller moves and keeps: the futures of one trip through each API.
    let ctx = Ctx::new(());
    let run = trip::Workflow::run(&ctx, TRIP);
    let typestate = typestate_trip(&ctx, TRIP);
    println!(
        "\nfuture sizes: `trip::Workflow::run` {} bytes, typestate trip {} bytes",
        size_of_val(&run),
        size_of_val(&typestate)
    );
}
