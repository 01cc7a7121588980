//! Orchestrator-workers: a step with `workers = N` runs once per item of the previous step's
//! `Vec`, at most N at once, and the next step receives the outputs in the items' order, even
//! when later items finish first.
//!
//! Completion order is forced with `Notify` rather than timers: item `x` finishes only after
//! item `x + 1` when both are in the same block of `WORKERS` items, so each block finishes
//! back to front. Run one at a time, item 0 would wait forever for item 1; the timeouts turn
//! that into a failure.

use flow_runtime::prelude::*;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::Notify;

const WORKERS: usize = 3;

#[derive(Debug, thiserror::Error)]
#[error("item {0} failed")]
pub struct ItemFailed(usize);

#[derive(Debug, Default)]
pub struct Deps {
    /// `finished[x]` is notified when item `x` finishes.
    pub finished: Vec<Notify>,
    pub in_flight: AtomicUsize,
    pub max_in_flight: AtomicUsize,
    pub started: AtomicUsize,
    /// Items in the order they finished.
    pub order: Mutex<Vec<usize>>,
    pub fail: Option<usize>,
    pub steps: Mutex<Vec<Option<&'static str>>>,
}

impl Deps {
    fn new(items: usize) -> Self {
        Self {
            finished: (0..items).map(|_| Notify::new()).collect(),
            ..Self::default()
        }
    }

    fn enter(&self) {
        self.started.fetch_add(1, Ordering::SeqCst);
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
    }

    fn leave(&self, x: usize) {
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.order.lock().unwrap().push(x);
        self.finished[x].notify_one();
    }
}

#[workflow(deps = Deps)]
pub mod fleet {
    use super::*;

    #[step(entry)]
    pub async fn split(n: usize) -> Result<Vec<usize>, ItemFailed> {
        Ok((0..n).collect())
    }

    #[step(after = split, workers = 3)]
    pub async fn work(ctx: &Ctx<Deps>, x: usize) -> Result<String, ItemFailed> {
        let deps = ctx.deps();
        deps.steps.lock().unwrap().push(ctx.step());
        deps.enter();
        let last_of_block = x % WORKERS == WORKERS - 1 || x + 1 == deps.finished.len();
        if !last_of_block {
            deps.finished[x + 1].notified().await;
        }
        deps.leave(x);
        if deps.fail == Some(x) {
            return Err(ItemFailed(x));
        }
        Ok(format!("w{x}"))
    }

    #[step(after = work, exit)]
    pub async fn gather(results: Vec<String>) -> Result<Vec<String>, ItemFailed> {
        Ok(results)
    }
}

#[derive(Debug, Default)]
pub struct Counter {
    pub in_flight: AtomicUsize,
    pub max_in_flight: AtomicUsize,
}

/// `workers = 1`: one item at a time, even when each item yields to the runtime.
#[workflow(deps = Counter)]
pub mod serial {
    use super::*;

    #[step(entry)]
    pub async fn items(n: u32) -> Result<Vec<u32>, ItemFailed> {
        Ok((0..n).collect())
    }

    #[step(after = items, workers = 1)]
    pub async fn one(ctx: &Ctx<Counter>, x: u32) -> Result<u32, ItemFailed> {
        let now = ctx.deps().in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        ctx.deps().max_in_flight.fetch_max(now, Ordering::SeqCst);
        for _ in 0..5 {
            tokio::task::yield_now().await;
        }
        ctx.deps().in_flight.fetch_sub(1, Ordering::SeqCst);
        Ok(x * x)
    }

    #[step(after = one, exit)]
    pub async fn sum(xs: Vec<u32>) -> Result<u32, ItemFailed> {
        Ok(xs.iter().sum())
    }
}

fn expected(n: usize) -> Vec<String> {
    (0..n).map(|x| format!("w{x}")).collect()
}

#[tokio::test]
async fn results_come_in_input_order_when_later_items_finish_first() {
    let ctx = Ctx::new(Deps::new(8));
    let out = tokio::time::timeout(Duration::from_secs(10), fleet::Workflow::run(&ctx, 8))
        .await
        .expect("workers did not run concurrently")
        .unwrap();
    assert_eq!(out, expected(8));
    let order = ctx.deps().order.lock().unwrap().clone();
    assert_eq!(order[0], 2, "item 2 finishes first: {order:?}");
    assert_ne!(
        order,
        (0..8).collect::<Vec<_>>(),
        "items finished in input order, so ordering was not tested"
    );
}

#[tokio::test]
async fn at_most_n_items_are_in_flight() {
    let ctx = Ctx::new(Deps::new(9));
    let out = tokio::time::timeout(Duration::from_secs(10), fleet::Workflow::run(&ctx, 9))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(out, expected(9));
    // Three items of a block wait for each other, so three are in flight at once; never more.
    assert_eq!(ctx.deps().max_in_flight.load(Ordering::SeqCst), WORKERS);
    assert_eq!(ctx.deps().started.load(Ordering::SeqCst), 9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bound_holds_on_a_multi_thread_runtime() {
    let ctx = Ctx::new(Deps::new(12));
    let out = tokio::time::timeout(Duration::from_secs(10), fleet::Workflow::run(&ctx, 12))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(out, expected(12));
    assert_eq!(ctx.deps().max_in_flight.load(Ordering::SeqCst), WORKERS);
}

#[tokio::test]
async fn fewer_items_than_workers() {
    let ctx = Ctx::new(Deps::new(2));
    let out = tokio::time::timeout(Duration::from_secs(10), fleet::Workflow::run(&ctx, 2))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(out, expected(2));
    assert_eq!(*ctx.deps().order.lock().unwrap(), [1, 0]);
}

#[tokio::test]
async fn no_items_give_an_empty_vec() {
    let ctx = Ctx::new(Deps::new(0));
    assert_eq!(
        fleet::Workflow::run(&ctx, 0).await.unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(ctx.deps().started.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn workers_one_runs_items_one_at_a_time() {
    let ctx = Ctx::new(Counter::default());
    assert_eq!(
        serial::Workflow::run(&ctx, 5).await.unwrap(),
        1 + 4 + 9 + 16
    );
    assert_eq!(ctx.deps().max_in_flight.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn every_worker_sees_the_step_name() {
    let ctx = Ctx::new(Deps::new(4));
    tokio::time::timeout(Duration::from_secs(10), fleet::Workflow::run(&ctx, 4))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(*ctx.deps().steps.lock().unwrap(), [Some("work"); 4]);
}

#[tokio::test]
async fn a_failing_item_fails_the_step_and_the_next_step_does_not_run() {
    let ctx = Ctx::new(Deps {
        fail: Some(4),
        ..Deps::new(9)
    });
    let err = tokio::time::timeout(Duration::from_secs(10), fleet::Workflow::run(&ctx, 9))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(err.step(), Some("work"));
    assert!(
        matches!(err, fleet::FlowError::Work(ItemFailed(4))),
        "{err:?}"
    );
    // The items after the failing one's block never start.
    let started = ctx.deps().started.load(Ordering::SeqCst);
    assert!(started < 9, "{started} items started");
}

#[tokio::test]
async fn typestate_runs_the_workers_step_too() {
    let ctx = Ctx::new(Deps::new(5));
    let flow = fleet::Flow::new(&ctx, 5).split().await.unwrap();
    assert_eq!(flow.input(), &[0, 1, 2, 3, 4]);
    let flow = tokio::time::timeout(Duration::from_secs(10), flow.work())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(flow.input(), &expected(5));
    assert_eq!(flow.gather().await.unwrap(), expected(5));
    assert_eq!(ctx.deps().max_in_flight.load(Ordering::SeqCst), WORKERS);
}

#[test]
fn the_diagram_shows_the_workers() {
    assert!(fleet::MERMAID.contains("work ×3"), "{}", fleet::MERMAID);
}
