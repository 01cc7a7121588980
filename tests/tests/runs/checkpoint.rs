//! The checkpoint hook: with a store, `run` and `resume` save the state after every step and
//! after each fan-out branch, in order, and never start a step before the previous state is
//! stored. A store that fails stops the run.

use flow_runtime::error::{RuntimeError, StoreError};
use flow_runtime::prelude::*;
use flow_runtime::store::Checkpoint;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

#[derive(Debug, thiserror::Error)]
#[error("checkpoint test step failed")]
pub struct Never;

/// Which steps ran; `web_done` lets `papers` finish only after `web`, so the order of the
/// branch checkpoints is known.
#[derive(Debug, Default)]
pub struct Deps {
    pub ran: Mutex<Vec<&'static str>>,
    pub web_done: Notify,
}

impl Deps {
    fn ran(&self, step: &'static str) {
        self.ran.lock().unwrap().push(step);
    }

    fn log(&self) -> Vec<&'static str> {
        self.ran.lock().unwrap().clone()
    }
}

#[workflow(deps = Deps)]
pub mod chain {
    use super::*;

    #[step(entry)]
    pub async fn first(ctx: &Ctx<Deps>, n: u32) -> Result<u32, Never> {
        ctx.deps().ran("first");
        Ok(n + 1)
    }

    #[step(after = first)]
    pub async fn second(ctx: &Ctx<Deps>, n: u32) -> Result<u32, Never> {
        ctx.deps().ran("second");
        Ok(n * 2)
    }

    #[step(after = second, exit)]
    pub async fn third(ctx: &Ctx<Deps>, n: u32) -> Result<String, Never> {
        ctx.deps().ran("third");
        Ok(n.to_string())
    }
}

#[workflow(deps = Deps)]
pub mod fan {
    use super::*;

    #[step(entry)]
    pub async fn plan(ctx: &Ctx<Deps>, topic: String) -> Result<String, Never> {
        ctx.deps().ran("plan");
        Ok(topic)
    }

    #[step(after = plan)]
    pub async fn web(ctx: &Ctx<Deps>, topic: String) -> Result<String, Never> {
        ctx.deps().ran("web");
        ctx.deps().web_done.notify_one();
        Ok(format!("web {topic}"))
    }

    #[step(after = plan)]
    pub async fn papers(ctx: &Ctx<Deps>, topic: String) -> Result<u32, Never> {
        ctx.deps().web_done.notified().await;
        ctx.deps().ran("papers");
        Ok(u32::try_from(topic.len()).unwrap_or(u32::MAX))
    }

    #[step(after = [web, papers])]
    pub async fn summarize(ctx: &Ctx<Deps>, web: String, papers: u32) -> Result<String, Never> {
        ctx.deps().ran("summarize");
        Ok(format!("{web}, {papers} papers"))
    }

    #[step(after = summarize, exit)]
    pub async fn publish(ctx: &Ctx<Deps>, summary: String) -> Result<String, Never> {
        ctx.deps().ran("publish");
        Ok(format!("# {summary}"))
    }
}

#[workflow]
pub mod looping {
    use super::*;

    pub enum Verdict {
        #[to(step, max = 2, exhausted = stop)]
        Again(u32),
    }

    #[step(entry)]
    pub async fn step(n: u32) -> Result<u32, Never> {
        Ok(n + 1)
    }

    #[step(after = step, routes = Verdict)]
    pub async fn check(n: u32) -> Result<Verdict, Never> {
        Ok(Verdict::Again(n))
    }

    #[step(after = check, exit)]
    pub async fn stop(e: LoopExhausted<u32>) -> Result<u32, Never> {
        Ok(e.last)
    }
}

#[workflow]
pub mod many {
    use super::*;

    #[step(entry)]
    pub async fn split(n: u32) -> Result<Vec<u32>, Never> {
        Ok((0..n).collect())
    }

    #[step(after = split, workers = 2)]
    pub async fn work(x: u32) -> Result<u32, Never> {
        Ok(x * 3)
    }

    #[step(after = work, exit)]
    pub async fn sum(xs: Vec<u32>) -> Result<u32, Never> {
        Ok(xs.iter().sum())
    }
}

/// A state that cannot be serialised.
#[derive(Debug, serde::Deserialize)]
pub struct Unserialisable;

impl serde::Serialize for Unserialisable {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("cannot serialise this"))
    }
}

#[workflow(deps = Deps)]
pub mod opaque {
    use super::*;

    #[step(entry)]
    pub async fn make(ctx: &Ctx<Deps>, (): ()) -> Result<Unserialisable, Never> {
        ctx.deps().ran("make");
        Ok(Unserialisable)
    }

    #[step(after = make, exit)]
    pub async fn keep(ctx: &Ctx<Deps>, _: Unserialisable) -> Result<(), Never> {
        ctx.deps().ran("keep");
        Ok(())
    }
}

/// A store whose `save` fails from the `fail_from`-th call on (counting from 1), keeping the
/// checkpoints it accepted before.
#[derive(Debug)]
pub struct Failing {
    fail_from: usize,
    calls: AtomicUsize,
    kept: MemoryStore,
}

impl Failing {
    fn from_save(fail_from: usize) -> Arc<Self> {
        Arc::new(Self {
            fail_from,
            calls: AtomicUsize::new(0),
            kept: MemoryStore::new(),
        })
    }
}

impl Store for Failing {
    async fn save(&self, checkpoint: Checkpoint) -> Result<(), StoreError> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if call >= self.fail_from {
            return Err(StoreError::new("disk full"));
        }
        self.kept.save(checkpoint).await
    }

    async fn latest(&self, run_id: &RunId) -> Result<Option<Checkpoint>, StoreError> {
        self.kept.latest(run_id).await
    }
}

fn ctx_with(store: Arc<impl Store>) -> Ctx<Deps> {
    Ctx::builder(Deps::default())
        .store(store)
        .run_id("r1")
        .build()
}

fn id() -> RunId {
    RunId::from("r1")
}

/// The messages of `err` and of each of its sources.
fn error_chain(err: &(dyn std::error::Error + 'static)) -> Vec<String> {
    std::iter::successors(Some(err), |e| e.source())
        .map(ToString::to_string)
        .collect()
}

/// `history` after the run's start, which `run` stores before the first step: the checkpoints
/// the steps stored.
fn after_start(history: Vec<Checkpoint>) -> Vec<Checkpoint> {
    assert!(
        history
            .first()
            .is_some_and(|c| c.step.is_empty() && !c.finished),
        "the run's start was not stored first: {history:?}"
    );
    history[1..].to_vec()
}

fn steps(history: &[Checkpoint]) -> Vec<&str> {
    history.iter().map(|c| c.step.as_str()).collect()
}

#[tokio::test]
async fn every_step_stores_a_checkpoint_in_order() {
    let store = Arc::new(MemoryStore::new());
    let ctx = ctx_with(Arc::clone(&store));
    assert_eq!(chain::Workflow::run(&ctx, 1).await.unwrap(), "4");
    let history = after_start(store.history(&id()));
    assert_eq!(steps(&history), ["first", "second", "third"]);

    let states: Vec<chain::FlowState> = history
        .iter()
        .map(|c| serde_json::from_value(c.state.clone()).unwrap())
        .collect();
    let next: Vec<Option<&str>> = states.iter().map(chain::FlowState::step).collect();
    assert_eq!(next, [Some("second"), Some("third"), None]);
    assert!(matches!(
        states[0],
        chain::FlowState::Second { input: 2, .. }
    ));
    assert!(matches!(
        states[1],
        chain::FlowState::Third { input: 4, .. }
    ));
    let chain::FlowState::Completed { output } = &states[2] else {
        panic!("{:?}", states[2])
    };
    assert_eq!(output, "4");

    assert_eq!(
        history.iter().map(|c| c.finished).collect::<Vec<_>>(),
        [false, false, true]
    );
    for c in &history {
        assert_eq!(c.run_id, id());
        assert_eq!(c.workflow, chain::NAME);
        assert_eq!(c.fingerprint, chain::FINGERPRINT);
    }
    assert_eq!(store.latest(&id()).await.unwrap().as_ref(), history.last());
}

#[tokio::test]
async fn a_fan_out_stores_a_checkpoint_after_each_branch() {
    let store = Arc::new(MemoryStore::new());
    let ctx = ctx_with(Arc::clone(&store));
    assert_eq!(
        fan::Workflow::run(&ctx, "rust".into()).await.unwrap(),
        "# web rust, 4 papers"
    );
    let history = after_start(store.history(&id()));
    assert_eq!(
        steps(&history),
        ["plan", "web", "papers", "summarize", "publish"]
    );

    let states: Vec<fan::FlowState> = history
        .iter()
        .map(|c| serde_json::from_value(c.state.clone()).unwrap())
        .collect();
    let next: Vec<Option<&str>> = states.iter().map(fan::FlowState::step).collect();
    assert_eq!(
        next,
        [
            Some("summarize"),
            Some("summarize"),
            Some("summarize"),
            Some("publish"),
            None
        ]
    );

    let slots: Vec<(Option<&str>, Option<&str>, Option<u32>)> = states[..3]
        .iter()
        .map(|s| match s {
            fan::FlowState::Summarize {
                input, web, papers, ..
            } => (input.as_deref(), web.as_deref(), *papers),
            other => panic!("not in the fan-out: {other:?}"),
        })
        .collect();
    assert_eq!(
        slots,
        [
            (Some("rust"), None, None),
            (Some("rust"), Some("web rust"), None),
            // Every branch has run: the input is no longer needed.
            (None, Some("web rust"), Some(4)),
        ]
    );
    assert_eq!(
        history.iter().map(|c| c.finished).collect::<Vec<_>>(),
        [false, false, false, false, true]
    );
    assert!(states[4].is_completed());
}

#[tokio::test]
async fn loop_counters_are_stored() {
    let store = Arc::new(MemoryStore::new());
    let ctx = Ctx::builder(())
        .store(Arc::clone(&store))
        .run_id("r1")
        .build();
    assert_eq!(looping::Workflow::run(&ctx, 0).await.unwrap(), 3);
    let history = after_start(store.history(&id()));
    assert_eq!(
        steps(&history),
        ["step", "check", "step", "check", "step", "check", "stop"]
    );
    let counters: Vec<Option<u32>> = history
        .iter()
        .map(|c| {
            serde_json::from_value::<looping::FlowState>(c.state.clone())
                .unwrap()
                .loops()
                .map(|l| l.check_again)
        })
        .collect();
    assert_eq!(
        counters,
        [Some(0), Some(1), Some(1), Some(2), Some(2), Some(2), None]
    );
}

#[tokio::test]
async fn a_workers_step_stores_one_checkpoint() {
    let store = Arc::new(MemoryStore::new());
    let ctx = Ctx::builder(())
        .store(Arc::clone(&store))
        .run_id("r1")
        .build();
    assert_eq!(many::Workflow::run(&ctx, 4).await.unwrap(), 18);
    let history = after_start(store.history(&id()));
    assert_eq!(steps(&history), ["split", "work", "sum"]);
    let state: many::FlowState = serde_json::from_value(history[1].state.clone()).unwrap();
    assert!(
        matches!(&state, many::FlowState::Sum { input, .. } if *input == [0, 3, 6, 9]),
        "{state:?}"
    );
}

#[tokio::test]
async fn resume_stores_checkpoints_too() {
    let store = Arc::new(MemoryStore::new());
    let ctx = ctx_with(Arc::clone(&store));
    let state = chain::FlowState::Third {
        input: 21,
        loops: chain::Loops::default(),
    };
    assert_eq!(chain::Workflow::resume(&ctx, state).await.unwrap(), "21");
    assert_eq!(steps(&store.history(&id())), ["third"]);
    assert_eq!(ctx.deps().log(), ["third"]);
}

#[tokio::test]
async fn runs_are_stored_apart_by_run_id() {
    let store = Arc::new(MemoryStore::new());
    let a = Ctx::builder(Deps::default())
        .store(Arc::clone(&store))
        .run_id("a")
        .build();
    let b = Ctx::builder(Deps::default())
        .store(Arc::clone(&store))
        .run_id("b")
        .build();
    chain::Workflow::run(&a, 1).await.unwrap();
    chain::Workflow::run(&b, 2).await.unwrap();
    let last = |id: &str| {
        store
            .history(&RunId::from(id))
            .last()
            .map(|c| c.state.clone())
    };
    assert_eq!(
        last("a"),
        Some(serde_json::json!({ "Completed": { "output": "4" } }))
    );
    assert_eq!(
        last("b"),
        Some(serde_json::json!({ "Completed": { "output": "6" } }))
    );
    assert_eq!(store.history(&RunId::from("c")), []);
}

#[tokio::test]
async fn typestate_steps_do_not_checkpoint() {
    let store = Arc::new(MemoryStore::new());
    let ctx = ctx_with(Arc::clone(&store));
    let flow = chain::Flow::new(&ctx, 1)
        .first()
        .await
        .unwrap()
        .second()
        .await
        .unwrap();
    assert_eq!(flow.third().await.unwrap(), "4");
    assert_eq!(store.history(&id()), []);
}

#[tokio::test]
async fn a_store_that_cannot_store_the_start_runs_nothing() {
    let store = Failing::from_save(1);
    let ctx = ctx_with(Arc::clone(&store));
    let err = chain::Workflow::run(&ctx, 1).await.unwrap_err();
    let chain::FlowError::Runtime(RuntimeError::Start { run_id, source, .. }) = &err else {
        panic!("expected a start error, got {err:?}")
    };
    assert_eq!(
        (run_id.as_str(), source.to_string().as_str()),
        ("r1", "disk full")
    );
    assert_eq!(
        error_chain(&err),
        [
            "run `r1` of workflow `chain`: could not store its start",
            "disk full"
        ]
    );
    assert!(ctx.deps().log().is_empty(), "{:?}", ctx.deps().log());
    assert_eq!(store.kept.history(&id()), []);
}

#[tokio::test]
async fn a_failing_store_stops_the_run_before_the_next_step() {
    // Saves: 1 the run's start, 2 after `first` (fails).
    let store = Failing::from_save(2);
    let ctx = ctx_with(Arc::clone(&store));
    let err = chain::Workflow::run(&ctx, 1).await.unwrap_err();
    let chain::FlowError::Runtime(RuntimeError::Checkpoint {
        run_id,
        workflow,
        step,
        source,
    }) = &err
    else {
        panic!("expected a checkpoint error, got {err:?}")
    };
    assert_eq!(
        (run_id.as_str(), *workflow, *step),
        ("r1", "chain", "first")
    );
    assert_eq!(source.to_string(), "disk full");
    assert_eq!(err.step(), None);
    // Each message says its part once; the store's own message comes through `source()`.
    let messages = error_chain(&err);
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert!(
        messages[0].contains("`first`") && messages[0].contains("`r1`"),
        "{messages:?}"
    );
    assert_eq!(messages[1], "disk full");
    // `first` ran; its result was not stored, so `second` must not run.
    assert_eq!(ctx.deps().log(), ["first"]);
    assert_eq!(store.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_store_failing_later_stops_the_run_at_that_step() {
    let store = Failing::from_save(3);
    let ctx = ctx_with(Arc::clone(&store));
    let err = chain::Workflow::run(&ctx, 1).await.unwrap_err();
    assert!(
        matches!(
            &err,
            chain::FlowError::Runtime(RuntimeError::Checkpoint { step: "second", .. })
        ),
        "{err:?}"
    );
    assert_eq!(ctx.deps().log(), ["first", "second"]);
    assert_eq!(steps(&after_start(store.kept.history(&id()))), ["first"]);
}

#[tokio::test]
async fn a_store_failing_after_a_branch_stops_the_fan_out() {
    // Saves: 1 the run's start, 2 after `plan`, 3 after `web` (fails).
    let store = Failing::from_save(3);
    let ctx = ctx_with(Arc::clone(&store));
    let err = fan::Workflow::run(&ctx, "x".into()).await.unwrap_err();
    assert!(
        matches!(
            &err,
            fan::FlowError::Runtime(RuntimeError::Checkpoint { step: "web", .. })
        ),
        "{err:?}"
    );
    let log = ctx.deps().log();
    assert!(!log.contains(&"summarize"), "the join ran: {log:?}");
    assert!(!log.contains(&"publish"), "{log:?}");
    assert_eq!(steps(&after_start(store.kept.history(&id()))), ["plan"]);
}

#[tokio::test]
async fn a_failing_store_on_the_last_step_still_fails_the_run() {
    let store = Failing::from_save(4);
    let ctx = ctx_with(Arc::clone(&store));
    let err = chain::Workflow::run(&ctx, 1).await.unwrap_err();
    assert!(
        matches!(
            &err,
            chain::FlowError::Runtime(RuntimeError::Checkpoint { step: "third", .. })
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_state_that_cannot_be_serialised_stops_the_run() {
    let store = Arc::new(MemoryStore::new());
    let ctx = ctx_with(Arc::clone(&store));
    let err = opaque::Workflow::run(&ctx, ()).await.unwrap_err();
    let opaque::FlowError::Runtime(RuntimeError::Serialize { step, workflow, .. }) = &err else {
        panic!("expected a serialisation error, got {err:?}")
    };
    assert_eq!((*step, *workflow), ("make", "opaque"));
    let messages = error_chain(&err);
    assert!(messages[0].contains("`make`"), "{messages:?}");
    assert!(
        messages[1..]
            .iter()
            .any(|m| m.contains("cannot serialise this")),
        "{messages:?}"
    );
    assert_eq!(ctx.deps().log(), ["make"]);
    assert_eq!(after_start(store.history(&id())), []);
}

#[tokio::test]
async fn without_a_store_nothing_is_serialised() {
    // The same workflow runs fine when there is nowhere to store its state.
    let ctx = Ctx::new(Deps::default());
    opaque::Workflow::run(&ctx, ()).await.unwrap();
    assert_eq!(ctx.deps().log(), ["make", "keep"]);
}

#[tokio::test]
async fn a_second_run_of_a_stored_id_runs_nothing_and_keeps_the_stored_run() {
    let store = Arc::new(MemoryStore::new());
    let first = ctx_with(Arc::clone(&store));
    assert_eq!(chain::Workflow::run(&first, 1).await.unwrap(), "4");
    let stored = store.history(&id());
    // Another context, or another process, with the same id: a redelivered request.
    let again = ctx_with(Arc::clone(&store));
    let err = chain::Workflow::run(&again, 7).await.unwrap_err();
    assert!(
        matches!(
            &err,
            chain::FlowError::Runtime(RuntimeError::AlreadyStarted { .. })
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("`run_or_resume`"),
        "the error says how to continue the run: {err}"
    );
    assert!(again.deps().log().is_empty(), "{:?}", again.deps().log());
    assert_eq!(store.history(&id()), stored);
    // `run_or_resume` is the way to it: the stored run's output, nothing run again.
    let resumed = ctx_with(Arc::clone(&store));
    assert_eq!(
        chain::Workflow::run_or_resume(&resumed, 7).await.unwrap(),
        "4"
    );
    assert!(resumed.deps().log().is_empty());
}

#[tokio::test]
async fn a_context_with_a_store_is_one_run() {
    // A context reused for a second run, its id drawn when it was built: the store has that run,
    // whose journal would hand the second run the first one's results.
    let store = Arc::new(MemoryStore::new());
    let ctx = Ctx::builder(Deps::default())
        .store(Arc::clone(&store))
        .build();
    chain::Workflow::run(&ctx, 1).await.unwrap();
    for again in [ctx.clone(), ctx.clone()] {
        let err = chain::Workflow::run(&again, 2).await.unwrap_err();
        assert!(
            matches!(
                &err,
                chain::FlowError::Runtime(RuntimeError::AlreadyStarted { .. })
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("a `Ctx` of its own"), "{err}");
    }
    assert_eq!(ctx.deps().log(), ["first", "second", "third"]);
    let last = store.history(ctx.run_id()).last().cloned().unwrap();
    assert!(last.finished);
    assert_eq!(
        last.state,
        serde_json::json!({ "Completed": { "output": "4" } })
    );
}

#[tokio::test]
async fn a_context_without_a_store_is_one_run() {
    // Without a store nothing refuses the second run's start but the context itself: under the
    // first run's id, its tool calls and outputs would repeat the first run's idempotency keys.
    let ctx = Ctx::new(Deps::default());
    // A run's future dropped before it is polled has started nothing.
    drop(chain::Workflow::run(&ctx, 1));
    assert_eq!(chain::Workflow::run(&ctx, 1).await.unwrap(), "4");
    let reused = |err: &chain::FlowError| {
        matches!(
            err,
            chain::FlowError::Runtime(RuntimeError::CtxReused { run_id, workflow: "chain" })
                if run_id == ctx.run_id()
        )
    };
    let err = chain::Workflow::run(&ctx, 2).await.unwrap_err();
    assert!(reused(&err), "{err:?}");
    assert!(
        err.to_string().contains("build a `Ctx` for each run"),
        "{err}"
    );
    // A clone is the same run, and `run_or_resume` has nothing to continue without a store.
    let err = chain::Workflow::run(&ctx.clone(), 2).await.unwrap_err();
    assert!(reused(&err), "{err:?}");
    let err = chain::Workflow::run_or_resume(&ctx, 2).await.unwrap_err();
    assert!(reused(&err), "{err:?}");
    // The typestate API too, at its entry step.
    let err = chain::Flow::new(&ctx, 2).first().await.unwrap_err();
    assert!(reused(&err), "{err:?}");
    assert_eq!(ctx.deps().log(), ["first", "second", "third"]);
    // A context of its own runs.
    let next = Ctx::new(Deps::default());
    assert_eq!(chain::Workflow::run_or_resume(&next, 2).await.unwrap(), "6");
    // One `Flow` per context: the step after the entry runs, a second entry does not.
    let own = Ctx::new(Deps::default());
    let flow = chain::Flow::new(&own, 1).first().await.unwrap();
    let err = chain::Flow::new(&own, 1).first().await.unwrap_err();
    assert!(matches!(
        err,
        chain::FlowError::Runtime(RuntimeError::CtxReused { .. })
    ));
    assert_eq!(flow.second().await.unwrap().third().await.unwrap(), "4");
    assert_eq!(own.deps().log(), ["first", "second", "third"]);
}

/// Counts its runs in deps shared behind an `Arc`, as a server shares its clients.
#[workflow(deps = Arc<AtomicUsize>)]
pub mod counted {
    use super::*;

    #[step(entry, exit)]
    pub async fn count(ctx: &Ctx<Arc<AtomicUsize>>, n: usize) -> Result<usize, Never> {
        Ok(ctx.deps().fetch_add(1, Ordering::SeqCst) + n)
    }
}

#[tokio::test]
async fn next_run_builds_a_context_for_another_run_with_the_same_setup() {
    let store = Arc::new(MemoryStore::new());
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    let outputs =
        flow_runtime::output::Outputs::new().on_exit(flow_runtime::output::ChannelSink::new(tx));
    let first = Ctx::builder(Arc::new(AtomicUsize::new(0)))
        .store(Arc::clone(&store))
        .outputs(outputs)
        .run_id("first")
        .first_attempt(3)
        .build();
    assert_eq!(counted::Workflow::run(&first, 10).await.unwrap(), 10);

    let second = first.next_run();
    assert_ne!(second.run_id(), first.run_id());
    assert_eq!(second.attempt(), 1);
    assert!(Arc::ptr_eq(first.deps(), second.deps()));
    assert_eq!(counted::Workflow::run(&second, 10).await.unwrap(), 11);
    // The same store and the same sinks.
    for ctx in [&first, &second] {
        let last = store.history(ctx.run_id()).last().cloned().unwrap();
        assert!(last.finished, "{last:?}");
        let delivery = rx.recv().await.unwrap();
        assert_eq!(delivery.run_id(), ctx.run_id());
    }

    // Without a store, a context a run has used gives the next one.
    let plain = Ctx::new(Arc::new(AtomicUsize::new(0)));
    assert_eq!(counted::Workflow::run(&plain, 1).await.unwrap(), 1);
    assert!(counted::Workflow::run(&plain, 1).await.is_err());
    assert_eq!(
        counted::Workflow::run(&plain.next_run(), 1).await.unwrap(),
        2
    );
}
