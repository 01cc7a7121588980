//! `Workflow::run_or_resume`: the run id is an idempotency key. A run that exists in the store
//! is continued (or its output returned), never started a second time; a run stored by other
//! code is refused and left alone.

use flow_runtime::prelude::*;
use flow_runtime::store::Checkpoint;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

/// Counts step executions; `fail_once` makes `charge` fail the first time.
#[derive(Default)]
pub struct Deps {
    /// Executions of any step.
    pub executed: AtomicU32,
    /// When set, `charge` fails once and clears it.
    pub fail_once: AtomicBool,
}

/// The step error.
#[derive(Debug, thiserror::Error)]
#[error("card declined")]
pub struct Declined;

/// reserve → charge → confirm.
#[workflow(deps = Deps)]
pub mod order {
    use super::{Ctx, Declined, Deps, Ordering};

    /// Reserves stock.
    #[step(entry)]
    pub async fn reserve(ctx: &Ctx<Deps>, qty: u32) -> Result<u32, Declined> {
        ctx.deps().executed.fetch_add(1, Ordering::SeqCst);
        Ok(qty)
    }

    /// Charges the card, failing once when asked to.
    #[step(after = reserve)]
    pub async fn charge(ctx: &Ctx<Deps>, qty: u32) -> Result<u32, Declined> {
        ctx.deps().executed.fetch_add(1, Ordering::SeqCst);
        if ctx.deps().fail_once.swap(false, Ordering::SeqCst) {
            return Err(Declined);
        }
        Ok(qty * 10)
    }

    /// Confirms.
    #[step(after = charge, exit)]
    pub async fn confirm(ctx: &Ctx<Deps>, cents: u32) -> Result<String, Declined> {
        ctx.deps().executed.fetch_add(1, Ordering::SeqCst);
        Ok(format!("paid {cents}"))
    }
}

fn ctx(store: &Arc<MemoryStore>, deps: Deps) -> Ctx<Deps> {
    Ctx::builder(deps)
        .store(Arc::clone(store))
        .run_id("order-1")
        .build()
}

#[tokio::test]
async fn a_finished_run_returns_its_output_without_running_again() {
    let store = Arc::new(MemoryStore::new());
    let first = ctx(&store, Deps::default());
    assert_eq!(
        order::Workflow::run_or_resume(&first, 3).await.unwrap(),
        "paid 30"
    );
    assert_eq!(first.deps().executed.load(Ordering::SeqCst), 3);

    let again = ctx(&store, Deps::default());
    // Another input under the same run id: the stored run wins.
    assert_eq!(
        order::Workflow::run_or_resume(&again, 99).await.unwrap(),
        "paid 30"
    );
    assert_eq!(again.deps().executed.load(Ordering::SeqCst), 0);
    // The run's start, then its three steps; the second call stored nothing.
    assert_eq!(store.history(&RunId::from("order-1")).len(), 4);
}

#[tokio::test]
async fn an_interrupted_run_continues_after_its_last_completed_step() {
    let store = Arc::new(MemoryStore::new());
    let failing = ctx(
        &store,
        Deps {
            fail_once: AtomicBool::new(true),
            ..Deps::default()
        },
    );
    let error = order::Workflow::run_or_resume(&failing, 3)
        .await
        .unwrap_err();
    assert_eq!(error.step(), Some("charge"));

    let retry = ctx(&store, Deps::default());
    assert_eq!(
        order::Workflow::run_or_resume(&retry, 3).await.unwrap(),
        "paid 30"
    );
    // `reserve` completed before the failure and is not run again.
    assert_eq!(retry.deps().executed.load(Ordering::SeqCst), 2);
    let steps: Vec<String> = store
        .history(&RunId::from("order-1"))
        .into_iter()
        .map(|c| c.step)
        .collect();
    // The run's start (""), then each step once.
    assert_eq!(steps, ["", "reserve", "charge", "confirm"]);
}

#[tokio::test]
async fn a_run_stored_with_another_fingerprint_is_refused_and_left_alone() {
    let store = Arc::new(MemoryStore::new());
    let first = ctx(&store, Deps::default());
    order::Workflow::run(&first, 3).await.unwrap();
    let mut stored = store.history(&RunId::from("order-1")).remove(0);
    stored.fingerprint = "0000000000000000".to_owned();
    store.save(stored).await.unwrap();
    let before = store.history(&RunId::from("order-1"));

    let again = ctx(&store, Deps::default());
    let error = order::Workflow::run_or_resume(&again, 3).await.unwrap_err();
    let order::FlowError::Runtime(RuntimeError::Incompatible {
        stored_fingerprint,
        fingerprint,
        ..
    }) = &error
    else {
        panic!("expected Incompatible, got {error:?}");
    };
    assert_eq!(stored_fingerprint, "0000000000000000");
    assert_eq!(*fingerprint, order::FINGERPRINT);
    let message = error.to_string();
    assert!(
        message.contains("order") && message.contains(order::FINGERPRINT),
        "{message}"
    );
    assert_eq!(again.deps().executed.load(Ordering::SeqCst), 0);
    assert_eq!(store.history(&RunId::from("order-1")), before);
}

#[tokio::test]
async fn a_corrupt_stored_state_is_a_clear_error() {
    let store = Arc::new(MemoryStore::new());
    let first = ctx(&store, Deps::default());
    order::Workflow::run(&first, 3).await.unwrap();
    let mut stored: Checkpoint = store.history(&RunId::from("order-1")).remove(0);
    stored.state = serde_json::json!({ "Charge": { "input": "not a number", "loops": {} } });
    store.save(stored).await.unwrap();

    let again = ctx(&store, Deps::default());
    let error = order::Workflow::run_or_resume(&again, 3).await.unwrap_err();
    assert!(
        matches!(
            error,
            order::FlowError::Runtime(RuntimeError::CorruptState { .. })
        ),
        "{error:?}"
    );
    assert_eq!(again.deps().executed.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn without_a_store_it_is_run() {
    let plain = Ctx::new(Deps::default());
    assert_eq!(
        order::Workflow::run_or_resume(&plain, 1).await.unwrap(),
        "paid 10"
    );
    assert_eq!(plain.deps().executed.load(Ordering::SeqCst), 3);
}
