//! The conformance suite: what every store must do, written once, run by each store (feature
//! `conformance`).
//!
//! A store author implements [`Harness`] (how to make an empty store, read a run's history,
//! and, where the store can hold one, a corrupt record) and adds one line to a test file,
//! `suite!(MyHarness)`, which expands to one `#[test]` per case of [`cases`], each running on
//! a runtime of its own (the store's crate needs no async runtime for them). `flow`'s own
//! stores run the suite in `tests/tests/store_conformance.rs`. For `MemoryStore`:
//!
//! ```
//! use flow_runtime::error::StoreError;
//! use flow_runtime::state::RunId;
//! use flow_runtime::store::MemoryStore;
//! use flow_runtime::store::conformance::{Harness, HistoryStep, block_on, cases};
//!
//! struct Memory;
//!
//! impl Harness for Memory {
//!     type Store = MemoryStore;
//!
//!     async fn store(&self) -> Result<MemoryStore, StoreError> {
//!         Ok(MemoryStore::new())
//!     }
//!
//!     async fn history(&self, store: &MemoryStore, run_id: &RunId) -> Result<Vec<HistoryStep>, StoreError> {
//!         let history = store.history(run_id).into_iter();
//!         Ok(history.map(|c| HistoryStep::new(c.step, c.finished, c.calls)).collect())
//!     }
//! }
//!
//! // In a test file, the whole suite:
//! mod memory {
//!     flow_runtime::store::conformance::suite!(super::Memory);
//! }
//!
//! // What each of its tests does:
//! block_on(cases::checkpoints_and_history(Memory));
//! ```
//!
//! Each case checks one part of the contract the [store module](crate::store) describes, on
//! the store's public API only; a case that fails names the rule the store broke.

use crate::error::StoreError;
use crate::state::{CallRecord, RunId};
use crate::store::{Failure, RunHistory, RunQueue};
use std::future::Future;

/// One checkpoint of a run's history, as a [`Harness`] reads it back from its store.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct HistoryStep {
    /// The step that had just completed.
    pub step: String,
    /// Whether the run finished with it.
    pub finished: bool,
    /// The tool calls and output deliveries of the step, in order.
    pub calls: Vec<CallRecord>,
    /// The failure of the step after this checkpoint, if one failed and set the run aside.
    pub failure: Option<Failure>,
}

impl HistoryStep {
    /// A step of a run's history.
    #[must_use]
    pub fn new(step: impl Into<String>, finished: bool, calls: Vec<CallRecord>) -> Self {
        Self {
            step: step.into(),
            finished,
            calls,
            failure: None,
        }
    }

    /// The step with the failure of the step after it.
    #[must_use]
    pub fn with_failure(mut self, failure: Option<Failure>) -> Self {
        self.failure = failure;
        self
    }
}

/// What the suite needs to know of a store beyond the traits it implements.
///
/// Each case makes a new harness (the expression given to [`suite!`](crate::store::conformance::suite))
/// and asks it for one store.
pub trait Harness: Send + Sync + 'static {
    /// The store under test.
    type Store: RunQueue + RunHistory;

    /// An empty store.
    fn store(&self) -> impl Future<Output = Result<Self::Store, StoreError>> + Send;

    /// Every checkpoint of a run, oldest first, with its calls; empty for an unknown run.
    fn history(
        &self,
        store: &Self::Store,
        run_id: &RunId,
    ) -> impl Future<Output = Result<Vec<HistoryStep>, StoreError>> + Send;

    /// Spoils the stored state of run `run_id` behind the store's back (raw SQL writing
    /// something that is not a checkpoint envelope), and returns `true`; or returns `false`
    /// for a store that cannot hold a corrupt record (it keeps values, not bytes).
    fn corrupt_state(
        &self,
        store: &Self::Store,
        run_id: &RunId,
    ) -> impl Future<Output = bool> + Send {
        let _ = (store, run_id);
        std::future::ready(false)
    }

    /// Writes a status this version does not know into run `run_id`'s record, and returns
    /// `true`; or returns `false` for a store that cannot hold one.
    fn corrupt_status(
        &self,
        store: &Self::Store,
        run_id: &RunId,
    ) -> impl Future<Output = bool> + Send {
        let _ = (store, run_id);
        std::future::ready(false)
    }

    /// Spoils the payload of every event in run `run_id`'s inbox behind the store's back, and
    /// returns `true`; or returns `false` for a store that cannot hold a corrupt record.
    fn corrupt_events(
        &self,
        store: &Self::Store,
        run_id: &RunId,
    ) -> impl Future<Output = bool> + Send {
        let _ = (store, run_id);
        std::future::ready(false)
    }

    /// Spoils the arguments of every approval request of run `run_id` behind the store's
    /// back, and returns `true`; or returns `false` (the default) for a store that cannot hold
    /// a corrupt record.
    fn corrupt_approvals(
        &self,
        store: &Self::Store,
        run_id: &RunId,
    ) -> impl Future<Output = bool> + Send {
        let _ = (store, run_id);
        std::future::ready(false)
    }

    /// The store's limit on one checkpoint's size, in bytes of its encoding, if it has one.
    fn max_checkpoint_bytes(&self, store: &Self::Store) -> Option<usize> {
        let _ = store;
        None
    }

    /// Drops `store` and opens the same storage again, as a process restarting would; `None`
    /// for a store that keeps nothing once dropped.
    fn reopen(
        &self,
        store: Self::Store,
    ) -> impl Future<Output = Option<Result<Self::Store, StoreError>>> + Send {
        drop(store);
        std::future::ready(None)
    }

    /// Deletes finished and cancelled runs as the store's own pruning does, keeping none of
    /// them, and returns how many it deleted; `None` for a store without pruning.
    fn prune_all_finished(
        &self,
        store: &Self::Store,
    ) -> impl Future<Output = Option<Result<u64, StoreError>>> + Send {
        let _ = store;
        std::future::ready(None)
    }
}

/// Runs one case to completion on a runtime of its own, as [`suite!`](crate::store::conformance::suite)
/// does.
///
/// # Panics
///
/// The runtime cannot be built, or the case fails: that is how a test fails.
pub fn block_on<F: Future>(case: F) -> F::Output {
    #[allow(clippy::expect_used, reason = "a test that cannot run fails")]
    // `enable_all`: the time driver, and the I/O driver where tokio has one (a store that
    // talks to a server over a socket, such as `PgStore`, needs it).
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("the conformance suite needs a tokio runtime")
        .block_on(case)
}

/// Expands to one `#[test]` per case of the conformance suite, each with a harness made by
/// the expression it is given (see [`Harness`] and the [module](self)'s example).
#[doc(hidden)]
#[macro_export]
macro_rules! __store_conformance_suite {
    ($harness:expr) => {
        $crate::__store_conformance_suite!(@cases $harness;
            checkpoints_and_history,
            calls_are_kept_with_their_checkpoint,
            a_run_id_belongs_to_one_workflow,
            a_start_never_overwrites_a_stored_run,
            control_moves_follow_the_table,
            a_stopped_run_refuses_its_next_checkpoint,
            a_failure_is_kept_until_the_next_checkpoint,
            the_state_tells_sleeps_and_waits,
            incompatible_runs_are_marked,
            an_event_sent_before_the_wait_makes_the_run_due,
            an_event_sent_during_the_wait_makes_the_run_due,
            events_need_an_open_run,
            due_runs_and_wake_ups,
            resuming_counts_attempts,
            list_filters_and_orders,
            a_corrupt_state_is_isolated,
            a_corrupt_status_is_isolated,
            a_corrupt_event_is_isolated,
            a_corrupt_approval_is_isolated,
            size_limits,
            prune_keeps_open_runs,
            concurrent_runs,
            concurrent_checkpoints_succeed_or_fail_alone,
            acknowledged_writes_survive_a_reopen,
            the_journal_keeps_each_call_once,
            the_journal_refuses_what_it_cannot_read_back,
            numbers_read_back_exactly,
            the_journal_survives_a_reopen_and_goes_with_its_run,
            workflows_are_recorded_once_per_fingerprint,
            steps_tell_attempts_and_times,
            list_filters_by_time,
            the_journal_reads_back_in_order,
            prune_goes_in_batches,
            the_trace_context_is_kept_with_the_run,
            an_approval_parks_the_run_until_decided_once,
            an_approval_expires_at_its_deadline,
            edited_arguments_that_would_not_read_back_are_refused,
            approvals_survive_a_reopen,
            a_due_run_is_claimed_by_one_worker_at_a_time,
            an_expired_lease_is_taken_over,
            a_lost_lease_fences_every_write,
            a_fenced_checkpoint_never_brings_back_a_deleted_run,
            leases_are_renewed_and_released,
            concurrent_claims_never_share_a_run,
        );
    };
    (@cases $harness:expr; $($case:ident,)*) => {
        $(
            #[test]
            fn $case() {
                $crate::store::conformance::block_on(
                    $crate::store::conformance::cases::$case($harness),
                );
            }
        )*
    };
}

/// Expands to one `#[test]` per case of the suite: `suite!(MyHarness)` (see the [module](self)).
pub use crate::__store_conformance_suite as suite;

/// The cases, one per rule of the contract; [`suite!`](crate::store::conformance::suite) runs
/// them all. Each panics, naming the rule, when the store breaks it.
#[allow(
    clippy::missing_panics_doc,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test cases: a panic is a failure"
)]
pub mod cases {
    use super::{Harness, HistoryStep};
    use crate::error::{ControlError, StoreErrorKind};
    use crate::state::{CallKind, CallOutcome, CallRecord, RunId};
    use crate::store::{
        APPROVAL_EVENT, Approval, ApprovalError, Checkpoint, Decision, Failure, JournalEntry,
        JournalResult, Lease, Prune, RunControl, RunFilter, RunHistory, RunInfo, RunQueue,
        RunState, RunStatus, Store, WorkflowInfo,
    };
    use crate::tool::Visit;
    use serde_json::json;
    use std::time::{Duration, SystemTime};

    const W: &str = "conformance";
    const FP: &str = "fp-1";

    fn checkpoint(run: &str, step: &str, n: u64) -> Checkpoint {
        Checkpoint::new(
            run.into(),
            W,
            FP,
            step,
            false,
            json!({ "step": step, "n": n }),
        )
    }

    fn finished(run: &str) -> Checkpoint {
        Checkpoint::new(
            run.into(),
            W,
            FP,
            "last",
            true,
            json!({ "Completed": { "output": 1 } }),
        )
    }

    async fn store<H: Harness>(harness: &H) -> H::Store {
        harness.store().await.expect("the harness makes a store")
    }

    async fn info<S: Store>(store: &S, run: &str) -> RunInfo {
        store
            .status(&run.into())
            .await
            .expect("status reads")
            .unwrap_or_else(|| panic!("run `{run}` is stored"))
    }

    async fn save<S: Store>(store: &S, checkpoint: Checkpoint) {
        let what = format!("{} after {}", checkpoint.run_id, checkpoint.step);
        store
            .save(checkpoint)
            .await
            .unwrap_or_else(|e| panic!("the checkpoint of {what} is stored: {e}"));
    }

    fn ids(runs: &[RunInfo]) -> Vec<&str> {
        runs.iter().map(|r| r.run_id.as_str()).collect()
    }

    fn sorted(mut runs: Vec<RunId>) -> Vec<RunId> {
        runs.sort();
        runs
    }

    /// Each checkpoint becomes the run's latest, counted and kept in its history in order; a
    /// finished one finishes the run.
    pub async fn checkpoints_and_history<H: Harness>(harness: H) {
        let store = store(&harness).await;
        let run = RunId::from("r1");
        assert_eq!(
            store.latest(&run).await.unwrap(),
            None,
            "an unknown run has no checkpoint"
        );
        assert_eq!(
            store.status(&run).await.unwrap(),
            None,
            "an unknown run has no status"
        );
        assert!(harness.history(&store, &run).await.unwrap().is_empty());

        save(&store, checkpoint("r1", "first", 1)).await;
        save(&store, checkpoint("r1", "second", 2)).await;
        let latest = store.latest(&run).await.unwrap().expect("stored");
        assert_eq!(
            (latest.step.as_str(), &latest.state, latest.finished),
            ("second", &json!({ "step": "second", "n": 2 }), false),
            "the latest checkpoint is the last one saved"
        );
        assert_eq!(
            (latest.workflow.as_str(), latest.fingerprint.as_str()),
            (W, FP)
        );
        let running = info(&store, "r1").await;
        assert_eq!(
            (running.status, running.step.as_str(), running.checkpoints),
            (RunStatus::Running, "second", 2)
        );
        assert_eq!(
            (running.workflow.as_str(), running.fingerprint.as_str()),
            (W, FP)
        );
        assert!(running.created_at <= running.updated_at);

        save(&store, finished("r1")).await;
        let done = info(&store, "r1").await;
        assert_eq!((done.status, done.checkpoints), (RunStatus::Finished, 3));
        assert_eq!(
            done.created_at, running.created_at,
            "a run's creation time is its first checkpoint's"
        );
        assert!(done.updated_at >= running.updated_at);
        let latest = store.latest(&run).await.unwrap().unwrap();
        assert!(latest.finished);
        assert_eq!(
            (latest.consumed_event, latest.waiting, latest.wake_at),
            (None, None, None),
            "a checkpoint read back says no event, no wait and no wake-up it was not given"
        );
        let history = harness.history(&store, &run).await.unwrap();
        assert_eq!(
            history,
            [
                HistoryStep::new("first", false, Vec::new()),
                HistoryStep::new("second", false, Vec::new()),
                HistoryStep::new("last", true, Vec::new()),
            ],
            "the history holds every checkpoint, oldest first"
        );
    }

    /// The calls a step made are kept with its checkpoint, in order, with their visit and, for
    /// a model call, the tokens it used.
    pub async fn calls_are_kept_with_their_checkpoint<H: Harness>(harness: H) {
        let store = store(&harness).await;
        let calls = vec![
            CallRecord::new(
                CallKind::Tool,
                "search",
                "first",
                0,
                2,
                Duration::from_millis(12),
                CallOutcome::Ok,
            )
            .with_visit(Visit::after(3).item(1)),
            CallRecord::new(
                CallKind::Output,
                "file",
                "first",
                1,
                1,
                Duration::from_micros(7),
                CallOutcome::Failed("disk full".into()),
            ),
            CallRecord::new(
                CallKind::Model,
                "openai_chat",
                "first",
                2,
                1,
                Duration::from_millis(900),
                CallOutcome::Ok,
            )
            .with_usage(Some(crate::model::Usage {
                input_tokens: 1200,
                output_tokens: 48,
            })),
        ];
        save(
            &store,
            checkpoint("r1", "first", 1).with_calls(calls.clone()),
        )
        .await;
        save(&store, checkpoint("r1", "second", 2)).await;
        let history = harness.history(&store, &"r1".into()).await.unwrap();
        assert_eq!(history.len(), 2);
        assert_eq!(history[0].calls, calls, "the calls read back as saved");
        assert!(
            history[1].calls.is_empty(),
            "calls belong to their own checkpoint"
        );
    }

    /// A run id belongs to the workflow of its first checkpoint: a checkpoint of another
    /// workflow under it is refused as a conflict, and changes nothing.
    pub async fn a_run_id_belongs_to_one_workflow<H: Harness>(harness: H) {
        let store = store(&harness).await;
        save(&store, checkpoint("r1", "first", 1)).await;
        let other = Checkpoint::new("r1".into(), "other", FP, "first", false, json!(0));
        let e = store
            .save(other)
            .await
            .expect_err("another workflow's checkpoint is refused");
        assert_eq!(e.kind(), StoreErrorKind::Conflict, "{e}");
        let run = info(&store, "r1").await;
        assert_eq!((run.workflow.as_str(), run.checkpoints), (W, 1));
        assert_eq!(
            store.latest(&"r1".into()).await.unwrap().unwrap().workflow,
            W
        );
    }

    /// A checkpoint that starts a run ([`Checkpoint::new_run`]) is written only when the store
    /// has no such run: over a run that has moved on, finished or belongs to another workflow,
    /// it is refused as `Exists` and changes nothing; of two at once, one is written.
    pub async fn a_start_never_overwrites_a_stored_run<H: Harness>(harness: H) {
        let store = store(&harness).await;
        save(&store, checkpoint("r1", "", 0).starting_a_run()).await;
        save(&store, checkpoint("r1", "first", 1)).await;
        save(&store, finished("r2")).await;
        let other = Checkpoint::new("r3".into(), "other", FP, "", false, json!(0));
        save(&store, other).await;
        for run in ["r1", "r2", "r3"] {
            let before = info(&store, run).await;
            let e = store
                .save(checkpoint(run, "", 9).starting_a_run())
                .await
                .expect_err("a start of a stored run is refused");
            assert_eq!(e.kind(), StoreErrorKind::Exists, "{run}: {e}");
            let after = info(&store, run).await;
            assert_eq!(
                (after.workflow, after.step, after.checkpoints, after.status),
                (
                    before.workflow,
                    before.step,
                    before.checkpoints,
                    before.status
                ),
                "{run} is unchanged"
            );
        }
        assert_eq!(
            store.latest(&"r1".into()).await.unwrap().unwrap().state,
            json!({ "step": "first", "n": 1 })
        );
        // Two starts at once: one is written, the other refused.
        let (a, b) = tokio::join!(
            store.save(checkpoint("r4", "", 1).starting_a_run()),
            store.save(checkpoint("r4", "", 2).starting_a_run()),
        );
        assert!(
            a.is_ok() != b.is_ok(),
            "exactly one start is written: {a:?} {b:?}"
        );
        assert_eq!(info(&store, "r4").await.checkpoints, 1);
    }

    /// Pause, unpause and cancel move a run as the table on [`RunStatus`] says, return the run
    /// as it is afterwards, and refuse other moves and unknown runs without changing anything.
    pub async fn control_moves_follow_the_table<H: Harness>(harness: H) {
        let store = store(&harness).await;
        save(&store, checkpoint("r1", "first", 1)).await;
        save(&store, finished("done")).await;

        assert_eq!(
            store.pause(&"r1".into()).await.unwrap().status,
            RunStatus::Paused
        );
        assert_eq!(
            store.pause(&"r1".into()).await.unwrap().status,
            RunStatus::Paused
        );
        assert_eq!(info(&store, "r1").await.status, RunStatus::Paused);
        assert_eq!(
            store.unpause(&"r1".into()).await.unwrap().status,
            RunStatus::Running
        );
        assert_eq!(
            store.unpause(&"r1".into()).await.unwrap().status,
            RunStatus::Running
        );
        let cancelled = store.cancel(&"r1".into()).await.unwrap();
        assert_eq!(
            (cancelled.status, cancelled.checkpoints),
            (RunStatus::Cancelled, 1)
        );
        assert_eq!(
            store.cancel(&"r1".into()).await.unwrap().status,
            RunStatus::Cancelled
        );
        for refused in [
            store.pause(&"r1".into()).await,
            store.unpause(&"r1".into()).await,
        ] {
            assert!(
                matches!(
                    refused,
                    Err(ControlError::Transition {
                        status: RunStatus::Cancelled,
                        ..
                    })
                ),
                "a cancelled run stays cancelled: {refused:?}"
            );
        }
        let done = info(&store, "done").await;
        for (verb, to, refused) in [
            (
                "pause",
                RunStatus::Paused,
                store.pause(&"done".into()).await,
            ),
            (
                "unpause",
                RunStatus::Running,
                store.unpause(&"done".into()).await,
            ),
            (
                "cancel",
                RunStatus::Cancelled,
                store.cancel(&"done".into()).await,
            ),
        ] {
            let error = refused.expect_err("a finished run cannot be moved");
            assert!(
                matches!(
                    &error,
                    ControlError::Transition { run_id, status: RunStatus::Finished, to: t }
                        if run_id.as_str() == "done" && *t == to
                ),
                "{error:?}"
            );
            assert_eq!(
                error.to_string(),
                format!("cannot {verb} run `done`: it is finished")
            );
        }
        assert_eq!(
            info(&store, "done").await,
            done,
            "a refused move changes nothing"
        );
        for refused in [
            store.pause(&"nobody".into()).await,
            store.unpause(&"nobody".into()).await,
            store.cancel(&"nobody".into()).await,
        ] {
            assert!(
                matches!(&refused, Err(ControlError::UnknownRun { run_id }) if run_id.as_str() == "nobody"),
                "{refused:?}"
            );
        }
        assert_eq!(store.status(&"nobody".into()).await.unwrap(), None);

        // Unpausing a running run changes nothing, and returns it as it is.
        save(&store, checkpoint("open", "first", 1)).await;
        let open = info(&store, "open").await;
        assert_eq!(store.unpause(&"open".into()).await.unwrap(), open);
        assert_eq!(info(&store, "open").await, open);
    }

    /// The checkpoint of a paused, failed or cancelled run is refused with the kind saying
    /// which, and nothing of it is stored; once unpaused, the run's checkpoints are stored
    /// again.
    pub async fn a_stopped_run_refuses_its_next_checkpoint<H: Harness>(harness: H) {
        let store = store(&harness).await;
        save(&store, checkpoint("r1", "first", 1)).await;
        let refused = |kind: StoreErrorKind| {
            let store = &store;
            async move {
                let before = info(store, "r1").await;
                let e = store
                    .save(checkpoint("r1", "second", 2))
                    .await
                    .expect_err("the checkpoint of a stopped run is refused");
                assert_eq!(e.kind(), kind, "{e}");
                let status = before.status;
                assert!(
                    e.to_string().contains(&format!(
                        "run `r1` is {status}: the checkpoint after step `second` is refused"
                    )),
                    "the message names the run, its status and the step: {e}"
                );
                let run = info(store, "r1").await;
                assert_eq!(run, before, "a refused checkpoint changes nothing");
                assert_eq!((run.step.as_str(), run.checkpoints), ("first", 1));
                let latest = store.latest(&"r1".into()).await.unwrap().unwrap();
                assert_eq!(
                    latest.step, "first",
                    "nothing of a refused checkpoint is stored"
                );
            }
        };
        store.pause(&"r1".into()).await.unwrap();
        refused(StoreErrorKind::Paused).await;
        store.unpause(&"r1".into()).await.unwrap();
        store.fail(&"r1".into(), &boom(), None).await.unwrap();
        refused(StoreErrorKind::Failed).await;
        store.unpause(&"r1".into()).await.unwrap();
        store.cancel(&"r1".into()).await.unwrap();
        refused(StoreErrorKind::Cancelled).await;
        assert_eq!(
            harness.history(&store, &"r1".into()).await.unwrap().len(),
            1
        );

        save(&store, checkpoint("r2", "first", 1)).await;
        store.pause(&"r2".into()).await.unwrap();
        store.unpause(&"r2".into()).await.unwrap();
        save(&store, checkpoint("r2", "second", 2)).await;
        assert_eq!(
            info(&store, "r2").await.checkpoints,
            2,
            "unpaused, it is stored again"
        );
    }

    /// A run an engine failed is `Failed` with the step and the reason, until unpaused and
    /// checkpointed; only a running run fails.
    pub async fn a_failure_is_kept_until_the_next_checkpoint<H: Harness>(harness: H) {
        let store = store(&harness).await;
        save(&store, checkpoint("r1", "first", 1)).await;
        store.fail(&"r1".into(), &boom(), None).await.unwrap();
        let failed = info(&store, "r1").await;
        assert_eq!(failed.status, RunStatus::Failed);
        assert_eq!(failed.failure, Some(boom()));
        assert_eq!(
            failed.state(),
            RunState::Failed {
                step: Some("second".to_owned()),
                reason: "workflow `conformance`: step `second` failed: boom".to_owned(),
            }
        );
        let listed = store
            .list(&RunFilter::new().status(RunStatus::Failed))
            .await
            .unwrap();
        assert_eq!(listed, [failed], "list and status agree");

        let history = harness.history(&store, &"r1".into()).await.unwrap();
        assert_eq!(
            history.last().and_then(|h| h.failure.clone()),
            Some(boom()),
            "the failure is in the history, on the checkpoint its step started from"
        );

        store.unpause(&"r1".into()).await.unwrap();
        save(&store, checkpoint("r1", "second", 2)).await;
        let run = info(&store, "r1").await;
        assert_eq!((run.status, run.failure), (RunStatus::Running, None));
        let history = harness.history(&store, &"r1".into()).await.unwrap();
        assert_eq!(
            history
                .iter()
                .map(|h| h.failure.clone())
                .collect::<Vec<_>>(),
            [Some(boom()), None],
            "the history keeps the failure after the retry"
        );

        save(&store, checkpoint("paused", "first", 1)).await;
        store.pause(&"paused".into()).await.unwrap();
        store.fail(&"paused".into(), &boom(), None).await.unwrap();
        let paused = info(&store, "paused").await;
        assert_eq!((paused.status, paused.failure), (RunStatus::Paused, None));
    }

    /// `mark_incompatible` marks a running run stored with another fingerprint, and nothing
    /// else; the run's next checkpoint makes it `Running` again.
    pub async fn incompatible_runs_are_marked<H: Harness>(harness: H) {
        let store = store(&harness).await;
        save(&store, checkpoint("r1", "first", 1)).await;
        store.mark_incompatible(&"r1".into(), FP).await.unwrap();
        assert_eq!(
            info(&store, "r1").await.status,
            RunStatus::Running,
            "same fingerprint"
        );
        store.mark_incompatible(&"r1".into(), "fp-2").await.unwrap();
        assert_eq!(info(&store, "r1").await.status, RunStatus::Incompatible);
        assert_eq!(
            store.due(SystemTime::now(), &[W], 10).await.unwrap(),
            Vec::<RunId>::new(),
            "an incompatible run is not due"
        );
        save(&store, checkpoint("r1", "second", 2)).await;
        assert_eq!(info(&store, "r1").await.status, RunStatus::Running);

        save(&store, finished("done")).await;
        store
            .mark_incompatible(&"done".into(), "fp-2")
            .await
            .unwrap();
        assert_eq!(info(&store, "done").await.status, RunStatus::Finished);
        store
            .mark_incompatible(&"nobody".into(), "fp-2")
            .await
            .unwrap();
    }

    /// An event sent before the step waits stays in the inbox; the wait then makes the run
    /// due at once; the checkpoint that consumes the event removes it and ends the wait.
    pub async fn an_event_sent_before_the_wait_makes_the_run_due<H: Harness>(harness: H) {
        let store = store(&harness).await;
        let run = RunId::from("r1");
        save(&store, checkpoint("r1", "first", 1)).await;
        store
            .send_event(&run, "approval", json!({ "ok": true }))
            .await
            .unwrap();
        let event = store
            .next_event(&run, "approval")
            .await
            .unwrap()
            .expect("in the inbox");
        assert_eq!(
            (event.name.as_str(), &event.payload),
            ("approval", &json!({ "ok": true }))
        );
        assert_eq!(store.next_event(&run, "other").await.unwrap(), None);

        let until = SystemTime::now() + Duration::from_hours(1);
        store
            .wait(&run, "second", "approval", until, None)
            .await
            .unwrap();
        assert_eq!(
            store.due(SystemTime::now(), &[W], 10).await.unwrap(),
            std::slice::from_ref(&run),
            "the event is there: the run is due at once"
        );
        let latest = store.latest(&run).await.unwrap().unwrap();
        assert_eq!(latest.waiting.as_deref(), Some("second"));
        assert_eq!(
            latest.wake_at.map(secs),
            Some(secs(until)),
            "the wait's deadline reads back"
        );

        save(
            &store,
            checkpoint("r1", "second", 2).with_consumed_event(Some(event.id)),
        )
        .await;
        assert_eq!(
            store.next_event(&run, "approval").await.unwrap(),
            None,
            "consumed"
        );
        let latest = store.latest(&run).await.unwrap().unwrap();
        assert_eq!(
            (latest.waiting, latest.wake_at),
            (None, None),
            "the wait has ended"
        );
    }

    /// A run waiting for an event is not due before its deadline; an event of another name
    /// leaves it waiting; the event it waits for makes it due, keeping the deadline.
    pub async fn an_event_sent_during_the_wait_makes_the_run_due<H: Harness>(harness: H) {
        let store = store(&harness).await;
        let run = RunId::from("r1");
        save(&store, checkpoint("r1", "first", 1)).await;
        let until = SystemTime::now() + Duration::from_hours(1);
        store
            .wait(&run, "second", "approval", until, None)
            .await
            .unwrap();
        let now = SystemTime::now();
        assert!(
            store.due(now, &[W], 10).await.unwrap().is_empty(),
            "waiting"
        );
        assert_eq!(
            store.next_wake(now).await.unwrap().map(secs),
            Some(secs(until)),
            "the deadline is the next wake-up"
        );
        assert_eq!(
            store
                .due(until + Duration::from_secs(1), &[W], 10)
                .await
                .unwrap(),
            std::slice::from_ref(&run),
            "due at its deadline"
        );

        store.send_event(&run, "other", json!(1)).await.unwrap();
        assert!(
            store.due(now, &[W], 10).await.unwrap().is_empty(),
            "another event"
        );
        store.send_event(&run, "approval", json!(2)).await.unwrap();
        assert_eq!(
            store.due(now, &[W], 10).await.unwrap(),
            std::slice::from_ref(&run)
        );
        let latest = store.latest(&run).await.unwrap().unwrap();
        assert_eq!(
            latest.wake_at.map(secs),
            Some(secs(until)),
            "the deadline is kept"
        );
        assert_eq!(latest.waiting.as_deref(), Some("second"));
        let first = store.next_event(&run, "approval").await.unwrap().unwrap();
        assert_eq!(first.payload, json!(2));
        let other = store.next_event(&run, "other").await.unwrap().unwrap();
        assert!(
            other.id < first.id,
            "ids increase in the order events were sent"
        );
    }

    /// Events go to stored runs that can still take them: unknown runs are refused as such,
    /// finished and cancelled ones as conflicts.
    pub async fn events_need_an_open_run<H: Harness>(harness: H) {
        let store = store(&harness).await;
        let e = store
            .send_event(&"nobody".into(), "e", json!(1))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), StoreErrorKind::UnknownRun, "{e}");
        let e = store
            .wait(&"nobody".into(), "s", "e", SystemTime::now(), None)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), StoreErrorKind::UnknownRun, "{e}");
        save(&store, finished("done")).await;
        let e = store
            .send_event(&"done".into(), "e", json!(1))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), StoreErrorKind::Conflict, "{e}");
        save(&store, checkpoint("gone", "first", 1)).await;
        store.cancel(&"gone".into()).await.unwrap();
        let e = store
            .send_event(&"gone".into(), "e", json!(1))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), StoreErrorKind::Conflict, "{e}");
        save(&store, checkpoint("held", "first", 1)).await;
        store.pause(&"held".into()).await.unwrap();
        store
            .send_event(&"held".into(), "e", json!(1))
            .await
            .unwrap();
        assert!(
            store
                .next_event(&"held".into(), "e")
                .await
                .unwrap()
                .is_some(),
            "paused: kept"
        );
    }

    /// `due` returns the running runs of the named workflows whose wake-up time has come, at
    /// most `limit`; `next_wake` the earliest wake-up time still to come.
    pub async fn due_runs_and_wake_ups<H: Harness>(harness: H) {
        let store = store(&harness).await;
        let now = SystemTime::now();
        let past = now - Duration::from_mins(1);
        let soon = now + Duration::from_mins(1);
        let later = now + Duration::from_mins(10);
        save(&store, checkpoint("now", "first", 1)).await;
        save(
            &store,
            checkpoint("woken", "first", 1).with_wake_at(Some(past)),
        )
        .await;
        save(
            &store,
            checkpoint("asleep", "first", 1).with_wake_at(Some(soon)),
        )
        .await;
        save(
            &store,
            checkpoint("later", "first", 1).with_wake_at(Some(later)),
        )
        .await;
        save(&store, checkpoint("held", "first", 1)).await;
        store.pause(&"held".into()).await.unwrap();
        save(&store, finished("done")).await;
        let other = Checkpoint::new("other".into(), "elsewhere", FP, "first", false, json!(0));
        save(&store, other).await;

        assert_eq!(
            sorted(store.due(now, &[W], 10).await.unwrap()),
            [RunId::from("now"), RunId::from("woken")],
            "running, due, of the workflow asked for"
        );
        assert_eq!(
            store.due(now, &[W], 1).await.unwrap().len(),
            1,
            "at most `limit`"
        );
        assert!(
            store.due(now, &[], 10).await.unwrap().is_empty(),
            "no workflow, no run"
        );
        assert_eq!(
            sorted(store.due(now, &[W, "elsewhere"], 10).await.unwrap()),
            [
                RunId::from("now"),
                RunId::from("other"),
                RunId::from("woken")
            ]
        );
        assert_eq!(
            store.next_wake(now).await.unwrap().map(secs),
            Some(secs(soon))
        );
        assert_eq!(
            store.next_wake(soon).await.unwrap().map(secs),
            Some(secs(later))
        );
        assert_eq!(store.next_wake(later).await.unwrap(), None);
        let held =
            checkpoint("held-asleep", "first", 1).with_wake_at(Some(now + Duration::from_secs(5)));
        save(&store, held).await;
        store.pause(&"held-asleep".into()).await.unwrap();
        assert_eq!(
            store.next_wake(now).await.unwrap().map(secs),
            Some(secs(soon)),
            "a paused run's wake-up is no one's"
        );
        assert_eq!(
            sorted(store.due(later, &[W], 10).await.unwrap()),
            ["asleep", "later", "now", "woken"].map(RunId::from)
        );
        let asleep = store.latest(&"asleep".into()).await.unwrap().unwrap();
        assert_eq!(
            asleep.wake_at.map(secs),
            Some(secs(soon)),
            "a sleep's end reads back"
        );
    }

    /// `load_to_resume` counts a start of the run's next step when the run is due and stored
    /// with the fingerprint asked for; a wait sets the count back to 0.
    pub async fn resuming_counts_attempts<H: Harness>(harness: H) {
        let store = store(&harness).await;
        let run = RunId::from("r1");
        save(&store, checkpoint("r1", "first", 1).with_attempt(1)).await;
        assert_eq!(store.latest(&run).await.unwrap().unwrap().attempt, 1);
        let resumed = store.load_to_resume(&run, FP).await.unwrap().unwrap();
        assert_eq!((resumed.step.as_str(), resumed.attempt), ("first", 2));
        let other = store.load_to_resume(&run, "fp-2").await.unwrap().unwrap();
        assert_eq!(other.attempt, 2, "code that refuses the run does not count");
        assert_eq!(
            store
                .load_to_resume(&run, FP)
                .await
                .unwrap()
                .unwrap()
                .attempt,
            3
        );

        let until = SystemTime::now() + Duration::from_hours(1);
        store
            .wait(&run, "second", "approval", until, None)
            .await
            .unwrap();
        let waiting = store.load_to_resume(&run, FP).await.unwrap().unwrap();
        assert_eq!(waiting.attempt, 0, "a waiting run is not due: not counted");

        let asleep = checkpoint("r2", "first", 1).with_wake_at(Some(until));
        save(&store, asleep).await;
        assert_eq!(
            store
                .load_to_resume(&"r2".into(), FP)
                .await
                .unwrap()
                .unwrap()
                .attempt,
            0,
            "a sleeping run is not due"
        );
        save(&store, finished("done")).await;
        assert_eq!(
            store
                .load_to_resume(&"done".into(), FP)
                .await
                .unwrap()
                .unwrap()
                .attempt,
            0
        );
        assert_eq!(
            store.load_to_resume(&"nobody".into(), FP).await.unwrap(),
            None
        );
    }

    /// `list` narrows by workflow and status, returns the most recently updated first, and
    /// stops at its limit.
    pub async fn list_filters_and_orders<H: Harness>(harness: H) {
        let store = store(&harness).await;
        for run in ["a", "b", "c"] {
            save(&store, checkpoint(run, "first", 1)).await;
            // Updates a millisecond apart at least, so that the order is the stores' to keep.
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
        save(&store, finished("d")).await;
        tokio::time::sleep(Duration::from_millis(3)).await;
        let other = Checkpoint::new("e".into(), "elsewhere", FP, "first", false, json!(0));
        save(&store, other).await;
        tokio::time::sleep(Duration::from_millis(3)).await;
        store.pause(&"a".into()).await.unwrap();

        let all = store.list(&RunFilter::new()).await.unwrap();
        assert_eq!(
            ids(&all),
            ["a", "e", "d", "c", "b"],
            "the most recently updated first"
        );
        let mine = store.list(&RunFilter::new().workflow(W)).await.unwrap();
        assert_eq!(ids(&mine), ["a", "d", "c", "b"]);
        let running = store
            .list(&RunFilter::new().workflow(W).status(RunStatus::Running))
            .await
            .unwrap();
        assert_eq!(ids(&running), ["c", "b"]);
        let two = store.list(&RunFilter::new().limit(2)).await.unwrap();
        assert_eq!(ids(&two), ["a", "e"]);
        for run in &all {
            assert_eq!(
                &info(&store, run.run_id.as_str()).await,
                run,
                "list and status agree"
            );
        }
    }

    /// A run whose stored state cannot be read fails alone, as corrupt: the other runs read,
    /// list, run and take control as before.
    pub async fn a_corrupt_state_is_isolated<H: Harness>(harness: H) {
        let store = store(&harness).await;
        save(&store, checkpoint("bad", "first", 1)).await;
        save(&store, checkpoint("good", "first", 1)).await;
        if !harness.corrupt_state(&store, &"bad".into()).await {
            return; // The store cannot hold a corrupt record.
        }
        let e = store
            .latest(&"bad".into())
            .await
            .expect_err("a corrupt state is an error");
        assert_eq!(e.kind(), StoreErrorKind::Corrupt, "{e}");
        assert!(
            e.to_string().contains("bad"),
            "the message names the run: {e}"
        );
        let e = store.load_to_resume(&"bad".into(), FP).await.unwrap_err();
        assert_eq!(e.kind(), StoreErrorKind::Corrupt, "{e}");

        assert_eq!(
            store.latest(&"good".into()).await.unwrap().unwrap().step,
            "first"
        );
        assert_eq!(store.list(&RunFilter::new()).await.unwrap().len(), 2);
        assert_eq!(info(&store, "bad").await.status, RunStatus::Running);
        save(&store, checkpoint("good", "second", 2)).await;
        store.pause(&"good".into()).await.unwrap();
        assert_eq!(
            sorted(store.due(SystemTime::now(), &[W], 10).await.unwrap()),
            [RunId::from("bad")],
            "due lists it, so that an engine can set it aside"
        );
        store
            .fail(&"bad".into(), &Failure::new(None, "corrupt"), None)
            .await
            .unwrap();
        assert_eq!(info(&store, "bad").await.status, RunStatus::Failed);
    }

    /// A run whose stored status this version does not know is listed as
    /// [`RunStatus::Corrupt`], saying so, without hiding the others; it is never due, and
    /// cancelling it sets it aside for good.
    pub async fn a_corrupt_status_is_isolated<H: Harness>(harness: H) {
        let store = store(&harness).await;
        save(&store, checkpoint("bad", "first", 1)).await;
        save(&store, checkpoint("good", "first", 1)).await;
        if !harness.corrupt_status(&store, &"bad".into()).await {
            return; // The store cannot hold a corrupt record.
        }
        let bad = info(&store, "bad").await;
        assert_eq!(bad.status, RunStatus::Corrupt);
        assert!(bad.corrupt.is_some(), "it says what is wrong");
        let all = store.list(&RunFilter::new()).await.unwrap();
        assert_eq!(all.len(), 2, "one bad record never hides the others");
        let corrupt = store
            .list(&RunFilter::new().status(RunStatus::Corrupt))
            .await
            .unwrap();
        assert_eq!(ids(&corrupt), ["bad"]);
        assert_eq!(
            store.due(SystemTime::now(), &[W], 10).await.unwrap(),
            [RunId::from("good")]
        );
        let e = store.save(checkpoint("bad", "second", 2)).await;
        assert!(e.is_err(), "a corrupt run takes no checkpoint");
        assert!(store.pause(&"bad".into()).await.is_err());
        let cancelled = store.cancel(&"bad".into()).await.unwrap();
        assert_eq!(cancelled.status, RunStatus::Cancelled);
        assert_eq!(info(&store, "bad").await.status, RunStatus::Cancelled);
    }

    /// An event whose stored payload cannot be read fails alone, as corrupt: the other runs'
    /// events read as before.
    pub async fn a_corrupt_event_is_isolated<H: Harness>(harness: H) {
        let store = store(&harness).await;
        save(&store, checkpoint("bad", "first", 1)).await;
        save(&store, checkpoint("good", "first", 1)).await;
        for run in ["bad", "good"] {
            store
                .send_event(&run.into(), "e", json!({ "n": 1 }))
                .await
                .unwrap();
        }
        if !harness.corrupt_events(&store, &"bad".into()).await {
            return; // The store cannot hold a corrupt record.
        }
        let e = store
            .next_event(&"bad".into(), "e")
            .await
            .expect_err("a corrupt event is an error");
        assert_eq!(e.kind(), StoreErrorKind::Corrupt, "{e}");
        assert!(
            e.to_string().contains("bad"),
            "the message names the run: {e}"
        );
        let good = store
            .next_event(&"good".into(), "e")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(good.payload, json!({ "n": 1 }));
        assert_eq!(info(&store, "bad").await.status, RunStatus::Running);
    }

    /// A pending approval request that cannot be read marks its run in `list` and `status`
    /// (its `RunInfo::corrupt` names the run and the call), and the other runs are listed as
    /// before: one bad record never fails the list nor hides its run.
    pub async fn a_corrupt_approval_is_isolated<H: Harness>(harness: H) {
        let store = store(&harness).await;
        let until = SystemTime::UNIX_EPOCH
            + Duration::from_secs(secs(SystemTime::now() + Duration::from_hours(1)));
        for run in ["bad", "good"] {
            save(&store, checkpoint(run, "first", 1)).await;
            store
                .request_approval(approval(run, 2, &format!("key-{run}"), until))
                .await
                .unwrap();
        }
        if !harness.corrupt_approvals(&store, &"bad".into()).await {
            return; // The store cannot hold a corrupt record.
        }
        let listed = store.list(&RunFilter::new()).await.unwrap();
        assert_eq!(listed.len(), 2, "both runs are listed");
        let of = |run: &str| listed.iter().find(|i| i.run_id.as_str() == run).unwrap();
        let bad = of("bad");
        let what = bad.corrupt.as_deref().unwrap_or_default();
        assert!(
            what.contains("bad") && what.contains("key-bad"),
            "the run says what cannot be read: {bad:?}"
        );
        assert_eq!(bad.approval, None);
        // The run alone is shown the same way, not hidden behind an error.
        let alone = info(&store, "bad").await;
        assert_eq!(
            (alone.corrupt.as_deref(), alone.approval),
            (Some(what), None)
        );
        let good = of("good");
        assert_eq!(good.corrupt, None);
        assert_eq!(
            good.approval.as_ref().map(|a| a.call_id.as_str()),
            Some("key-good")
        );
    }

    /// A state or event nested deeper than the runtime's limit is refused as unstorable, and
    /// nothing of it is stored; a store with a size limit refuses a larger checkpoint as too
    /// large, leaving the run as it was.
    pub async fn size_limits<H: Harness>(harness: H) {
        let store = store(&harness).await;
        save(&store, checkpoint("r1", "first", 1)).await;
        let mut deep = json!(0);
        for _ in 0..=crate::state::MAX_JSON_DEPTH {
            deep = json!([deep]);
        }
        let mut c = checkpoint("r1", "second", 2);
        c.state = deep.clone();
        let e = store.save(c).await.expect_err("too deep");
        assert_eq!(e.kind(), StoreErrorKind::Unstorable, "{e}");
        let e = store
            .send_event(&"r1".into(), "e", deep)
            .await
            .expect_err("too deep");
        assert_eq!(e.kind(), StoreErrorKind::Unstorable, "{e}");
        assert_eq!(store.next_event(&"r1".into(), "e").await.unwrap(), None);

        let mut deepest = json!(0);
        for _ in 0..crate::state::MAX_JSON_DEPTH {
            deepest = json!([deepest]);
        }
        let mut c = checkpoint("r1", "second", 2);
        c.state = deepest.clone();
        save(&store, c).await;
        let latest = store.latest(&"r1".into()).await.unwrap().unwrap();
        assert_eq!(
            latest.state, deepest,
            "a state just inside the limit reads back"
        );

        if let Some(limit) = harness.max_checkpoint_bytes(&store) {
            let mut c = checkpoint("r1", "third", 3);
            c.state = json!("x".repeat(limit));
            let e = store.save(c).await.expect_err("over the size limit");
            assert_eq!(e.kind(), StoreErrorKind::TooLarge, "{e}");
            assert_eq!(info(&store, "r1").await.checkpoints, 2);
        }
        assert_eq!(
            harness.history(&store, &"r1".into()).await.unwrap().len(),
            2
        );
    }

    /// Pruning deletes finished and cancelled runs with their history and events, and keeps
    /// every other run whatever its age.
    pub async fn prune_keeps_open_runs<H: Harness>(harness: H) {
        let store = store(&harness).await;
        save(&store, finished("done")).await;
        save(&store, checkpoint("gone", "first", 1)).await;
        store.cancel(&"gone".into()).await.unwrap();
        save(&store, checkpoint("open", "first", 1)).await;
        save(&store, checkpoint("held", "first", 1)).await;
        store.pause(&"held".into()).await.unwrap();
        save(&store, checkpoint("failed", "first", 1)).await;
        store.fail(&"failed".into(), &boom(), None).await.unwrap();
        let Some(pruned) = harness.prune_all_finished(&store).await else {
            return; // The store has no pruning.
        };
        assert_eq!(pruned.unwrap(), 2);
        let mut left: Vec<String> = store
            .list(&RunFilter::new())
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.run_id.as_str().to_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["failed", "held", "open"]);
        assert_eq!(store.latest(&"done".into()).await.unwrap(), None);
        assert!(
            harness
                .history(&store, &"done".into())
                .await
                .unwrap()
                .is_empty()
        );
    }

    /// Many runs checkpointing at once each keep every checkpoint, in order.
    pub async fn concurrent_runs<H: Harness>(harness: H) {
        const RUNS: u64 = 32;
        const STEPS: u64 = 5;
        let store = store(&harness).await;
        let runs = (0..RUNS).map(|r| {
            let store = &store;
            async move {
                let run = format!("run-{r}");
                for n in 1..=STEPS {
                    save(store, checkpoint(&run, &format!("step-{n}"), n)).await;
                }
            }
        });
        futures_util::future::join_all(runs).await;
        let all = store.list(&RunFilter::new()).await.unwrap();
        assert_eq!(all.len(), usize::try_from(RUNS).unwrap());
        for r in 0..RUNS {
            let run = RunId::from(format!("run-{r}"));
            let latest = store.latest(&run).await.unwrap().unwrap();
            assert_eq!(
                latest.state,
                json!({ "step": format!("step-{STEPS}"), "n": STEPS })
            );
            assert_eq!(info(&store, run.as_str()).await.checkpoints, STEPS);
            let steps: Vec<String> = harness
                .history(&store, &run)
                .await
                .unwrap()
                .into_iter()
                .map(|h| h.step)
                .collect();
            let expected: Vec<String> = (1..=STEPS).map(|n| format!("step-{n}")).collect();
            assert_eq!(steps, expected, "run {run}: every checkpoint, in order");
        }
    }

    /// Checkpoints of many runs saved at the same moment (which a store may write together)
    /// each have their own outcome: a refused one (a paused run, another workflow's run id)
    /// fails alone and changes nothing of its run, and every other one is stored with its own
    /// calls, in its own run's history.
    pub async fn concurrent_checkpoints_succeed_or_fail_alone<H: Harness>(harness: H) {
        const RUNS: u64 = 24;
        const STEPS: u64 = 3;
        let store = store(&harness).await;
        for r in 0..4 {
            let run = format!("paused-{r}");
            save(&store, checkpoint(&run, "first", 1)).await;
            store.pause(&run.as_str().into()).await.unwrap();
        }
        let foreign = Checkpoint::new("taken".into(), "elsewhere", FP, "first", false, json!(0));
        save(&store, foreign).await;
        let call = |run: &str, n: u64| {
            CallRecord::new(
                CallKind::Tool,
                format!("tool-of-{run}"),
                format!("step-{n}"),
                0,
                1,
                Duration::from_millis(n),
                CallOutcome::Ok,
            )
        };
        let good = (0..RUNS).map(|r| {
            let store = &store;
            async move {
                let run = format!("run-{r}");
                for n in 1..=STEPS {
                    let next =
                        checkpoint(&run, &format!("step-{n}"), n).with_calls(vec![call(&run, n)]);
                    save(store, next).await;
                }
            }
        });
        let refused = (0..4)
            .map(|r| checkpoint(&format!("paused-{r}"), "second", 2))
            .chain([checkpoint("taken", "second", 2)])
            .map(|next| {
                let store = &store;
                async move {
                    let run = next.run_id.clone();
                    let e = store.save(next).await.expect_err("refused");
                    (run, e.kind())
                }
            });
        let (_, refused) = futures_util::future::join(
            futures_util::future::join_all(good),
            futures_util::future::join_all(refused),
        )
        .await;
        for (run, kind) in refused {
            let expected = if run.as_str() == "taken" {
                StoreErrorKind::Conflict
            } else {
                StoreErrorKind::Paused
            };
            assert_eq!(kind, expected, "run {run}: refused for its own reason");
            assert_eq!(
                info(&store, run.as_str()).await.checkpoints,
                1,
                "run {run}: a refused checkpoint changes nothing"
            );
        }
        for r in 0..RUNS {
            let run = RunId::from(format!("run-{r}"));
            assert_eq!(info(&store, run.as_str()).await.checkpoints, STEPS);
            let history = harness.history(&store, &run).await.unwrap();
            let expected: Vec<HistoryStep> = (1..=STEPS)
                .map(|n| HistoryStep::new(format!("step-{n}"), false, vec![call(run.as_str(), n)]))
                .collect();
            assert_eq!(
                history, expected,
                "run {run}: its own checkpoints and calls"
            );
        }
    }

    /// What a store acknowledged is there when the storage is opened again: checkpoints and
    /// their history, statuses and failures, waits and events.
    pub async fn acknowledged_writes_survive_a_reopen<H: Harness>(harness: H) {
        let store = store(&harness).await;
        let until = SystemTime::now() + Duration::from_hours(1);
        save(&store, checkpoint("waiting", "first", 1).with_attempt(1)).await;
        store
            .wait(&"waiting".into(), "second", "approval", until, None)
            .await
            .unwrap();
        store
            .send_event(&"waiting".into(), "comment", json!("hi"))
            .await
            .unwrap();
        save(&store, checkpoint("held", "first", 1)).await;
        store.pause(&"held".into()).await.unwrap();
        save(&store, checkpoint("failed", "first", 1)).await;
        store.fail(&"failed".into(), &boom(), None).await.unwrap();
        save(&store, checkpoint("done", "first", 1)).await;
        save(&store, finished("done")).await;
        let before = store.list(&RunFilter::new()).await.unwrap();
        let latest_before = store.latest(&"waiting".into()).await.unwrap();

        let Some(store) = harness.reopen(store).await else {
            return; // The store keeps nothing once dropped.
        };
        let store = store.expect("the storage opens again");
        assert_eq!(store.list(&RunFilter::new()).await.unwrap(), before);
        assert_eq!(
            store.latest(&"waiting".into()).await.unwrap(),
            latest_before
        );
        let event = store
            .next_event(&"waiting".into(), "comment")
            .await
            .unwrap()
            .expect("the event is kept");
        assert_eq!(event.payload, json!("hi"));
        assert!(
            store
                .due(SystemTime::now(), &[W], 10)
                .await
                .unwrap()
                .is_empty(),
            "the wait is kept"
        );
        assert_eq!(info(&store, "failed").await.failure, Some(boom()));
        let history = harness.history(&store, &"done".into()).await.unwrap();
        assert_eq!(history.len(), 2);
        assert!(
            store.save(checkpoint("held", "second", 2)).await.is_err(),
            "still paused"
        );
    }

    /// The failure of step `second`.
    fn boom() -> Failure {
        Failure::new(
            Some("second".to_owned()),
            "workflow `conformance`: step `second` failed: boom",
        )
    }

    /// A run's state tells a sleep's end, the event a run waits for and the wait's deadline
    /// (also once the event arrived, until the run's next checkpoint), and each status.
    pub async fn the_state_tells_sleeps_and_waits<H: Harness>(harness: H) {
        let store = store(&harness).await;
        let run = RunId::from("r1");
        let at_secs = |t: SystemTime| SystemTime::UNIX_EPOCH + Duration::from_secs(secs(t));
        let state = |info: RunInfo| match info.state() {
            RunState::Sleeping { until } => RunState::Sleeping {
                until: at_secs(until),
            },
            RunState::Waiting { event, until } => RunState::Waiting {
                event,
                until: at_secs(until),
            },
            other => other,
        };
        save(&store, checkpoint("r1", "first", 1)).await;
        assert_eq!(info(&store, "r1").await.state(), RunState::Running);

        let wake = at_secs(SystemTime::now() + Duration::from_hours(2));
        save(&store, checkpoint("r1", "nap", 2).with_wake_at(Some(wake))).await;
        assert_eq!(
            state(info(&store, "r1").await),
            RunState::Sleeping { until: wake },
            "a sleep's end reads back"
        );

        let until = at_secs(SystemTime::now() + Duration::from_hours(1));
        save(&store, checkpoint("r1", "second", 3)).await;
        store
            .wait(&run, "third", "approval", until, None)
            .await
            .unwrap();
        let waiting = RunState::Waiting {
            event: "approval".to_owned(),
            until,
        };
        assert_eq!(state(info(&store, "r1").await), waiting);
        let listed = store.list(&RunFilter::new()).await.unwrap();
        assert_eq!(
            listed.into_iter().map(state).collect::<Vec<_>>(),
            std::slice::from_ref(&waiting),
            "list and status agree"
        );
        store.send_event(&run, "other", json!(1)).await.unwrap();
        assert_eq!(state(info(&store, "r1").await), waiting, "another event");
        store.send_event(&run, "approval", json!(2)).await.unwrap();
        assert_eq!(
            state(info(&store, "r1").await),
            waiting,
            "the event arrived; the wait ends with the next checkpoint"
        );
        save(&store, checkpoint("r1", "third", 4)).await;
        assert_eq!(info(&store, "r1").await.state(), RunState::Running);

        store.pause(&run).await.unwrap();
        assert_eq!(info(&store, "r1").await.state(), RunState::Paused);
        store.cancel(&run).await.unwrap();
        assert_eq!(info(&store, "r1").await.state(), RunState::Cancelled);
        save(&store, finished("done")).await;
        assert_eq!(info(&store, "done").await.state(), RunState::Finished);
    }

    fn call(
        run: &str,
        step: &str,
        visit: Visit,
        position: u32,
        output: serde_json::Value,
    ) -> JournalEntry {
        JournalEntry::new(
            run.into(),
            step,
            visit,
            position,
            "search",
            1,
            JournalResult::Output(output),
        )
    }

    async fn recorded<S: Store>(
        store: &S,
        run: &str,
        step: &str,
        visit: Visit,
        position: u32,
    ) -> Option<JournalEntry> {
        store
            .recorded_call(&run.into(), step, visit, position)
            .await
            .expect("the journal reads")
    }

    /// A recorded call reads back under its identity (run, step, visit, position) and no
    /// other, before the run's first checkpoint too; the first entry for a call is kept; a
    /// permanent failure reads back as one; many calls recorded at once are all kept.
    pub async fn the_journal_keeps_each_call_once<H: Harness>(harness: H) {
        const CALLS: u32 = 64;
        let store = store(&harness).await;
        let first = call(
            "r1",
            "think",
            Visit::FIRST,
            0,
            json!({ "answer": [1, 2, 3] }),
        );
        store.record_call(first.clone()).await.expect("recorded");
        assert_eq!(
            recorded(&store, "r1", "think", Visit::FIRST, 0).await,
            Some(first.clone()),
            "a call recorded before the run's first checkpoint reads back as written"
        );
        for (run, step, visit, position) in [
            ("r2", "think", Visit::FIRST, 0),
            ("r1", "act", Visit::FIRST, 0),
            ("r1", "think", Visit::after(1), 0),
            ("r1", "think", Visit::FIRST.item(0), 0),
            ("r1", "think", Visit::FIRST, 1),
        ] {
            assert_eq!(
                recorded(&store, run, step, visit, position).await,
                None,
                "a call of another run, step, visit or position is not recorded: {run} {step} {visit:?} {position}"
            );
        }
        store
            .record_call(call("r1", "think", Visit::FIRST, 0, json!("other")))
            .await
            .expect("recording a call again is not an error");
        assert_eq!(
            recorded(&store, "r1", "think", Visit::FIRST, 0).await,
            Some(first),
            "the first entry for a call is kept"
        );
        let failed = JournalEntry::new(
            "r1".into(),
            "think",
            Visit::after(2).item(3),
            4,
            "refund",
            2,
            JournalResult::Failed("card declined".into()),
        );
        store.record_call(failed.clone()).await.expect("recorded");
        assert_eq!(
            recorded(&store, "r1", "think", Visit::after(2).item(3), 4).await,
            Some(failed),
            "a permanent failure reads back as one"
        );
        save(&store, checkpoint("r1", "think", 1)).await;
        let calls = (0..CALLS).map(|n| {
            let store = &store;
            async move {
                store
                    .record_call(call("r3", "act", Visit::FIRST, n, json!(n)))
                    .await
                    .expect("recorded");
            }
        });
        futures_util::future::join_all(calls).await;
        for n in 0..CALLS {
            let entry = recorded(&store, "r3", "act", Visit::FIRST, n)
                .await
                .unwrap_or_else(|| panic!("call {n} of many recorded at once is kept"));
            assert_eq!(entry.result, JournalResult::Output(json!(n)));
        }
    }

    /// An output the store could not read back is refused, and leaves nothing recorded.
    pub async fn the_journal_refuses_what_it_cannot_read_back<H: Harness>(harness: H) {
        let store = store(&harness).await;
        let mut deep = json!(1);
        for _ in 0..=crate::state::MAX_JSON_DEPTH {
            deep = json!([deep]);
        }
        let error = store
            .record_call(call("r1", "think", Visit::FIRST, 0, deep))
            .await
            .expect_err("an output nested too deep is refused");
        assert_eq!(error.kind(), StoreErrorKind::Unstorable);
        assert_eq!(recorded(&store, "r1", "think", Visit::FIRST, 0).await, None);
        if let Some(limit) = harness.max_checkpoint_bytes(&store) {
            let big = json!("x".repeat(limit + 1));
            let error = store
                .record_call(call("r1", "think", Visit::FIRST, 1, big))
                .await
                .expect_err("an output over the store's size limit is refused");
            assert_eq!(error.kind(), StoreErrorKind::TooLarge);
            assert_eq!(recorded(&store, "r1", "think", Visit::FIRST, 1).await, None);
        }
    }

    /// Every number reads back as the same number: a state, an event, a journaled output and
    /// an approval's arguments holding floats whose shortest decimal form takes 17 digits
    /// (`0.1 + 0.003`, a price times a rate) are read back equal, not one unit off in the last
    /// place (a step would resume with other data, an approval would not match its call).
    pub async fn numbers_read_back_exactly<H: Harness>(harness: H) {
        let store = store(&harness).await;
        let numbers = json!([
            0.103_000_000_000_000_01,
            0.173_000_000_000_000_01,
            0.416_000_000_000_000_04,
            1.071_566_039_146_582_6e-75,
            -1.603_964_615_428_183e143,
            u64::MAX,
            i64::MIN,
        ]);
        let mut first = checkpoint("r1", "first", 1);
        first.state = json!({ "numbers": numbers });
        save(&store, first).await;
        let latest = store.latest(&"r1".into()).await.unwrap().unwrap();
        assert_eq!(latest.state, json!({ "numbers": numbers }), "a state");

        store
            .send_event(&"r1".into(), "rates", numbers.clone())
            .await
            .unwrap();
        let event = store
            .next_event(&"r1".into(), "rates")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(event.payload, numbers, "an event");

        store
            .record_call(call("r1", "first", Visit::FIRST, 0, numbers.clone()))
            .await
            .unwrap();
        let entry = store
            .recorded_call(&"r1".into(), "first", Visit::FIRST, 0)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            entry.result,
            JournalResult::Output(numbers.clone()),
            "a journaled output"
        );

        let until = SystemTime::UNIX_EPOCH
            + Duration::from_secs(secs(SystemTime::now() + Duration::from_hours(1)));
        let mut asked = approval("r1", 1, "key-1", until);
        asked.arguments = numbers.clone();
        store.request_approval(asked).await.unwrap();
        let kept = store
            .approval(&"r1".into(), "act", Visit::FIRST, 1)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(kept.arguments, numbers, "an approval's arguments");
    }

    /// Recorded calls are there when the storage is opened again; pruning a finished run
    /// removes its journal, and keeps the journal of an open run.
    pub async fn the_journal_survives_a_reopen_and_goes_with_its_run<H: Harness>(harness: H) {
        let store = store(&harness).await;
        store
            .record_call(call("done", "think", Visit::FIRST, 0, json!("a")))
            .await
            .unwrap();
        store
            .record_call(call("open", "think", Visit::FIRST, 0, json!("b")))
            .await
            .unwrap();
        save(&store, finished("done")).await;
        save(&store, checkpoint("open", "think", 1)).await;
        if let Some(pruned) = harness.prune_all_finished(&store).await {
            assert_eq!(pruned.unwrap(), 1);
            assert_eq!(
                recorded(&store, "done", "think", Visit::FIRST, 0).await,
                None,
                "a pruned run's journal goes with it"
            );
        }
        let Some(store) = harness.reopen(store).await else {
            return; // The store keeps nothing once dropped.
        };
        let store = store.expect("the storage opens again");
        assert_eq!(
            recorded(&store, "open", "think", Visit::FIRST, 0)
                .await
                .map(|e| e.result),
            Some(JournalResult::Output(json!("b"))),
            "a recorded call survives a reopen"
        );
    }

    /// A pause long enough for a store that keeps times to the millisecond to tell two
    /// writes apart.
    async fn tick() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    fn workflow(name: &str, fingerprint: &str, mermaid: &str) -> WorkflowInfo {
        WorkflowInfo::new(
            name,
            fingerprint,
            vec!["first".to_owned(), "second".to_owned()],
            mermaid,
            SystemTime::UNIX_EPOCH,
        )
    }

    /// A workflow is recorded once per name and fingerprint (the first record is kept, with
    /// the time the store recorded it), read back the most recently recorded first, and
    /// kept when the storage is opened again.
    pub async fn workflows_are_recorded_once_per_fingerprint<H: Harness>(harness: H) {
        let store = store(&harness).await;
        assert!(store.workflows().await.unwrap().is_empty());
        let before = SystemTime::now() - Duration::from_secs(1);
        store
            .register_workflow(workflow("trip", "fp-1", "flowchart TD\n  a --> b"))
            .await
            .unwrap();
        store
            .register_workflow(workflow("trip", "fp-1", "flowchart TD\n  changed"))
            .await
            .unwrap();
        tick().await;
        store
            .register_workflow(workflow("trip", "fp-2", "flowchart TD\n  b --> c"))
            .await
            .unwrap();
        tick().await;
        store
            .register_workflow(workflow("order", "fp-9", "flowchart TD\n  x"))
            .await
            .unwrap();
        let check = |workflows: Vec<WorkflowInfo>| {
            let seen: Vec<(&str, &str, &str)> = workflows
                .iter()
                .map(|w| (w.name.as_str(), w.fingerprint.as_str(), w.mermaid.as_str()))
                .collect();
            assert_eq!(
                seen,
                [
                    ("order", "fp-9", "flowchart TD\n  x"),
                    ("trip", "fp-2", "flowchart TD\n  b --> c"),
                    ("trip", "fp-1", "flowchart TD\n  a --> b"),
                ],
                "once per name and fingerprint, the first record kept, the most recent first"
            );
            for w in &workflows {
                assert_eq!(w.steps, ["first", "second"], "the steps are kept in order");
                assert!(
                    w.registered_at >= before,
                    "the store sets the time it recorded the workflow"
                );
            }
        };
        check(store.workflows().await.unwrap());
        let Some(store) = harness.reopen(store).await else {
            return; // The store keeps nothing once dropped.
        };
        check(
            store
                .expect("the storage opens again")
                .workflows()
                .await
                .unwrap(),
        );
    }

    /// A run's steps read back in order with their time, calls and failures, the attempt that
    /// completed each step (counted by resumes), and when that attempt began: the previous
    /// checkpoint when the run went straight on, the resume otherwise, nothing for the run's
    /// first checkpoint or after a wait.
    pub async fn steps_tell_attempts_and_times<H: Harness>(harness: H) {
        let store = store(&harness).await;
        let run = RunId::from("r1");
        assert!(store.steps(&run).await.unwrap().is_empty(), "unknown run");
        let calls = vec![
            CallRecord::new(
                CallKind::Tool,
                "search",
                "second",
                0,
                2,
                Duration::from_millis(30),
                CallOutcome::Ok,
            ),
            CallRecord::new(
                CallKind::Tool,
                "book",
                "second",
                1,
                1,
                Duration::from_millis(7),
                CallOutcome::Failed("sold out".to_owned()),
            ),
        ];
        save(&store, checkpoint("r1", "first", 1).with_attempt(1)).await;
        tick().await;
        save(
            &store,
            checkpoint("r1", "second", 2)
                .with_attempt(1)
                .with_calls(calls.clone()),
        )
        .await;
        // A crash: the next step is resumed as attempt 2.
        tick().await;
        let resumed_at = SystemTime::now();
        tick().await;
        store.load_to_resume(&run, FP).await.unwrap().unwrap();
        tick().await;
        save(&store, checkpoint("r1", "third", 3)).await;
        // A wait: the step has not started until the resume.
        let until = SystemTime::now() + Duration::from_hours(1);
        store.wait(&run, "fourth", "go", until, None).await.unwrap();
        store.send_event(&run, "go", json!(1)).await.unwrap();
        tick().await;
        let woken_at = SystemTime::now();
        tick().await;
        store.load_to_resume(&run, FP).await.unwrap().unwrap();
        save(&store, checkpoint("r1", "fourth", 4).with_attempt(1)).await;
        store.fail(&run, &boom(), None).await.unwrap();

        let steps = store.steps(&run).await.unwrap();
        let seen: Vec<(u64, &str, bool, u32)> = steps
            .iter()
            .map(|s| (s.seq, s.step.as_str(), s.finished, s.attempt))
            .collect();
        assert_eq!(
            seen,
            [
                (1, "first", false, 1),
                (2, "second", false, 1),
                (3, "third", false, 2),
                (4, "fourth", false, 1)
            ],
            "each step with the attempt that completed it"
        );
        assert_eq!(steps[1].calls, calls, "the calls are kept with their step");
        assert_eq!(
            steps[3].failure,
            Some(boom()),
            "the failure of the step after it"
        );
        assert!(steps.windows(2).all(|w| w[0].at <= w[1].at));
        assert_eq!(steps[0].started_at, None, "the run's first checkpoint");
        assert_eq!(
            steps[1].started_at,
            Some(steps[0].at),
            "straight on: the attempt began at the previous checkpoint"
        );
        let third = steps[2].started_at.expect("the resume's time");
        assert!(
            third >= resumed_at && third <= steps[2].at,
            "a resumed attempt began when it was counted"
        );
        let fourth = steps[3].started_at.expect("the resume's time");
        assert!(
            fourth >= woken_at && fourth <= steps[3].at,
            "after a wait, the attempt began at the resume, not the wait"
        );
        assert!(
            steps[2]
                .duration()
                .is_some_and(|d| d <= steps[2].at.duration_since(steps[1].at).unwrap())
        );
    }

    /// `RunFilter::since` lists only runs updated at or after its time, with the other
    /// filters.
    pub async fn list_filters_by_time<H: Harness>(harness: H) {
        let store = store(&harness).await;
        save(&store, checkpoint("old", "first", 1)).await;
        save(&store, finished("old-done")).await;
        tick().await;
        let since = SystemTime::now();
        tick().await;
        save(&store, checkpoint("new", "first", 1)).await;
        tick().await;
        save(&store, finished("new-done")).await;
        let recent = store.list(&RunFilter::new().since(since)).await.unwrap();
        assert_eq!(
            ids(&recent),
            ["new-done", "new"],
            "updated since, newest first"
        );
        let recent_done = store
            .list(&RunFilter::new().since(since).status(RunStatus::Finished))
            .await
            .unwrap();
        assert_eq!(ids(&recent_done), ["new-done"]);
        // A change of status is an update.
        tick().await;
        store.pause(&"old".into()).await.unwrap();
        let recent = store.list(&RunFilter::new().since(since)).await.unwrap();
        assert_eq!(ids(&recent), ["old", "new-done", "new"]);
        assert!(
            store
                .list(&RunFilter::new().since(SystemTime::now() + Duration::from_hours(1)))
                .await
                .unwrap()
                .is_empty()
        );
    }

    /// A run's call journal reads back whole, in the order it was recorded, each call once;
    /// an unknown run's is empty.
    pub async fn the_journal_reads_back_in_order<H: Harness>(harness: H) {
        let store = store(&harness).await;
        assert!(store.calls(&"r1".into()).await.unwrap().is_empty());
        let failed = JournalEntry::new(
            "r1".into(),
            "act",
            Visit::after(1),
            0,
            "book",
            3,
            JournalResult::Failed("sold out".to_owned()),
        );
        let entries = [
            call(
                "r1",
                "think",
                Visit::FIRST,
                0,
                json!({ "usage": { "input_tokens": 10 } }),
            ),
            call("r1", "act", Visit::FIRST, 0, json!("a")),
            call("r1", "think", Visit::FIRST, 1, json!("b")),
            failed,
            call("r1", "act", Visit::FIRST.item(2), 0, json!("c")),
        ];
        for entry in entries.iter().cloned() {
            store.record_call(entry).await.unwrap();
        }
        store
            .record_call(call("r1", "act", Visit::FIRST, 0, json!("again")))
            .await
            .unwrap();
        store
            .record_call(call("r2", "other", Visit::FIRST, 0, json!("x")))
            .await
            .unwrap();
        save(&store, checkpoint("r1", "think", 1)).await;
        assert_eq!(
            store.calls(&"r1".into()).await.unwrap(),
            entries,
            "the whole journal, in the order recorded, the first entry of each call kept"
        );
    }

    /// Pruning in batches deletes at most a batch of the finished and cancelled runs the
    /// policy selects, the least recently updated first, with their history and journal,
    /// until none is left; other runs stay.
    pub async fn prune_goes_in_batches<H: Harness>(harness: H) {
        let store = store(&harness).await;
        for n in 0..5 {
            save(&store, finished(&format!("done-{n}"))).await;
            tick().await;
        }
        store
            .record_call(call("done-0", "last", Visit::FIRST, 0, json!(1)))
            .await
            .unwrap();
        save(&store, checkpoint("gone", "first", 1)).await;
        store.cancel(&"gone".into()).await.unwrap();
        save(&store, checkpoint("open", "first", 1)).await;
        save(&store, checkpoint("held", "first", 1)).await;
        store.pause(&"held".into()).await.unwrap();
        save(&store, checkpoint("failed", "first", 1)).await;
        store.fail(&"failed".into(), &boom(), None).await.unwrap();

        // Keep the two most recent of the six finished or cancelled runs.
        assert_eq!(store.prune(Prune::KeepLast(2), 3).await.unwrap(), 3);
        let mut left: Vec<String> = store
            .list(&RunFilter::new())
            .await
            .unwrap()
            .iter()
            .map(|r| r.run_id.as_str().to_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            ["done-3", "done-4", "failed", "gone", "held", "open"],
            "the least recently updated first"
        );
        assert!(store.steps(&"done-0".into()).await.unwrap().is_empty());
        assert!(
            store.calls(&"done-0".into()).await.unwrap().is_empty(),
            "the journal goes with its run"
        );
        assert_eq!(store.prune(Prune::KeepLast(2), 3).await.unwrap(), 1);
        assert_eq!(store.prune(Prune::KeepLast(2), 3).await.unwrap(), 0);
        assert_eq!(
            store
                .prune(Prune::OlderThan(Duration::from_hours(1)), 10)
                .await
                .unwrap(),
            0,
            "none is an hour old"
        );
        assert_eq!(
            store
                .prune(Prune::OlderThan(Duration::ZERO), 1)
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            store
                .prune(Prune::OlderThan(Duration::ZERO), 10)
                .await
                .unwrap(),
            1
        );
        let mut left: Vec<String> = store
            .list(&RunFilter::new())
            .await
            .unwrap()
            .iter()
            .map(|r| r.run_id.as_str().to_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            ["failed", "held", "open"],
            "open runs are never pruned"
        );
    }

    fn approval(run: &str, position: u32, call_id: &str, until: SystemTime) -> Approval {
        Approval::new(
            run.into(),
            "act",
            Visit::FIRST,
            position,
            call_id,
            "refund",
            json!({ "order": "A1", "amount": 30 }),
            until,
        )
        .with_model_call_id(Some("call_1_0".to_owned()))
    }

    /// A request for an approval is kept (the first for its call), parks the run (not due
    /// until its deadline; status and list show it), is decided once by its call id (another
    /// id is refused and changes nothing), and a decision makes the run due.
    pub async fn an_approval_parks_the_run_until_decided_once<H: Harness>(harness: H) {
        let store = store(&harness).await;
        let run = RunId::from("r1");
        let until = SystemTime::UNIX_EPOCH
            + Duration::from_secs(secs(SystemTime::now() + Duration::from_hours(1)));
        let asked = approval("r1", 2, "key-2", until);
        let refused = store.request_approval(asked.clone()).await.unwrap_err();
        assert_eq!(
            refused.kind(),
            StoreErrorKind::UnknownRun,
            "a run not stored cannot ask"
        );
        save(&store, checkpoint("r1", "first", 1)).await;
        let kept = store.request_approval(asked.clone()).await.unwrap();
        assert_eq!(kept, asked, "the request reads back as asked");
        let mut again = approval("r1", 2, "key-other", until + Duration::from_hours(5));
        again.arguments = json!({ "amount": 1 });
        assert_eq!(
            store.request_approval(again).await.unwrap(),
            asked,
            "the first request for a call is kept"
        );
        let status = info(&store, "r1").await;
        assert_eq!(status.approval.as_ref(), Some(&asked), "status shows it");
        assert_eq!(
            status.wait.as_ref().map(|w| w.0.as_str()),
            Some(APPROVAL_EVENT)
        );
        match status.state() {
            RunState::AwaitingApproval {
                call_id,
                tool,
                arguments,
                until: deadline,
            } => {
                assert_eq!((call_id.as_str(), tool.as_str()), ("key-2", "refund"));
                assert_eq!(arguments, asked.arguments);
                assert_eq!(deadline, until);
            }
            other => panic!("a run waiting for an approval is AwaitingApproval, not {other:?}"),
        }
        let listed = store.list(&RunFilter::new()).await.unwrap();
        assert_eq!(listed[0].approval.as_ref(), Some(&asked), "list shows it");
        assert!(
            store
                .due(SystemTime::now(), &[W], 10)
                .await
                .unwrap()
                .is_empty(),
            "a run waiting for an approval is not due"
        );
        assert_eq!(
            store.approval(&run, "act", Visit::FIRST, 2).await.unwrap(),
            Some(asked.clone())
        );
        assert_eq!(
            store.approval(&run, "act", Visit::FIRST, 1).await.unwrap(),
            None
        );

        match store
            .decide_approval(&run, "key-9", Decision::Approved { edited: None })
            .await
        {
            Err(ApprovalError::OtherCall { pending, tool, .. }) => {
                assert_eq!((pending.as_str(), tool.as_str()), ("key-2", "refund"));
            }
            other => panic!("another call's id is refused with OtherCall, not {other:?}"),
        }
        match store
            .decide_approval(&"r9".into(), "key-2", Decision::TimedOut)
            .await
        {
            Err(ApprovalError::UnknownRun { .. }) => {}
            other => panic!("an unknown run is refused with UnknownRun, not {other:?}"),
        }
        assert!(
            info(&store, "r1").await.approval.is_some(),
            "refusals change nothing"
        );

        let rejected = Decision::Rejected {
            reason: "no".to_owned(),
        };
        let decided = store
            .decide_approval(&run, "key-2", rejected.clone())
            .await
            .unwrap();
        assert_eq!(decided.decision.as_ref(), Some(&rejected));
        assert_eq!(
            store.due(SystemTime::now(), &[W], 10).await.unwrap(),
            std::slice::from_ref(&run),
            "a decision makes the run due"
        );
        assert_eq!(info(&store, "r1").await.approval, None, "nothing pending");
        match store
            .decide_approval(&run, "key-2", Decision::Approved { edited: None })
            .await
        {
            Err(ApprovalError::Decided { decision, .. }) => assert_eq!(decision, rejected),
            other => panic!("a decided call is refused with Decided, not {other:?}"),
        }
        assert_eq!(
            store
                .request_approval(asked.clone())
                .await
                .unwrap()
                .decision,
            Some(rejected.clone()),
            "asking again returns the decision"
        );
        let all = store.approvals(&run).await.unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].decision.as_ref(), Some(&rejected));

        let mut deep = json!(1);
        for _ in 0..=crate::state::MAX_JSON_DEPTH {
            deep = json!([deep]);
        }
        let mut too_deep = approval("r1", 3, "key-3", until);
        too_deep.arguments = deep;
        assert_eq!(
            store.request_approval(too_deep).await.unwrap_err().kind(),
            StoreErrorKind::Unstorable,
            "arguments that would not read back are refused"
        );
    }

    /// An approval whose edited arguments the store could not read back (nested deeper than
    /// `MAX_JSON_DEPTH`) is refused as `Unstorable` and changes nothing: the request stays
    /// pending and readable, and can still be decided.
    pub async fn edited_arguments_that_would_not_read_back_are_refused<H: Harness>(harness: H) {
        let store = store(&harness).await;
        let run = RunId::from("r1");
        let until = SystemTime::UNIX_EPOCH
            + Duration::from_secs(secs(SystemTime::now() + Duration::from_hours(1)));
        save(&store, checkpoint("r1", "first", 1)).await;
        let asked = store
            .request_approval(approval("r1", 2, "key-2", until))
            .await
            .unwrap();
        let mut deep = json!(1);
        for _ in 0..=crate::state::MAX_JSON_DEPTH {
            deep = json!([deep]);
        }
        let edited = Decision::Approved { edited: Some(deep) };
        match store.decide_approval(&run, "key-2", edited).await {
            Err(ApprovalError::Store(e)) => assert_eq!(e.kind(), StoreErrorKind::Unstorable),
            other => panic!("edited arguments too deep are refused as Unstorable, not {other:?}"),
        }
        assert_eq!(
            info(&store, "r1").await.approval.as_ref(),
            Some(&asked),
            "refusals change nothing"
        );
        assert_eq!(store.approvals(&run).await.unwrap(), [asked]);
        let mut deepest = json!(1);
        for _ in 0..crate::state::MAX_JSON_DEPTH {
            deepest = json!([deepest]);
        }
        let edited = Decision::Approved {
            edited: Some(deepest),
        };
        let decided = store
            .decide_approval(&run, "key-2", edited.clone())
            .await
            .unwrap();
        assert_eq!(decided.decision.as_ref(), Some(&edited));
        assert_eq!(
            store.approvals(&run).await.unwrap()[0].decision.as_ref(),
            Some(&edited),
            "arguments as deep as the limit read back"
        );
    }

    /// A person's decision after the deadline is refused (the call times out); the timeout
    /// itself is a decision; a run with no request has nothing to decide.
    pub async fn an_approval_expires_at_its_deadline<H: Harness>(harness: H) {
        let store = store(&harness).await;
        let run = RunId::from("r1");
        save(&store, checkpoint("r1", "first", 1)).await;
        match store
            .decide_approval(&run, "key-1", Decision::TimedOut)
            .await
        {
            Err(ApprovalError::NotPending { .. }) => {}
            other => panic!("nothing pending is NotPending, not {other:?}"),
        }
        let past = SystemTime::UNIX_EPOCH + Duration::from_secs(secs(SystemTime::now()) - 60);
        store
            .request_approval(approval("r1", 0, "key-1", past))
            .await
            .unwrap();
        match store
            .decide_approval(&run, "key-1", Decision::Approved { edited: None })
            .await
        {
            Err(ApprovalError::Expired { .. }) => {}
            other => panic!("an approval after the deadline is Expired, not {other:?}"),
        }
        let decided = store
            .decide_approval(&run, "key-1", Decision::TimedOut)
            .await
            .unwrap();
        assert_eq!(decided.decision, Some(Decision::TimedOut));
    }

    /// Requests and decisions survive a reopen; a decision works on the reopened storage.
    pub async fn approvals_survive_a_reopen<H: Harness>(harness: H) {
        let store = store(&harness).await;
        let run = RunId::from("r1");
        let until = SystemTime::UNIX_EPOCH
            + Duration::from_secs(secs(SystemTime::now() + Duration::from_hours(1)));
        save(&store, checkpoint("r1", "first", 1)).await;
        let asked = approval("r1", 1, "key-1", until);
        store.request_approval(asked.clone()).await.unwrap();
        let Some(store) = harness.reopen(store).await else {
            return; // The store keeps nothing once dropped.
        };
        let store = store.expect("the storage opens again");
        assert_eq!(info(&store, "r1").await.approval, Some(asked));
        let edited = Decision::Approved {
            edited: Some(json!({ "order": "A1", "amount": 25 })),
        };
        store
            .decide_approval(&run, "key-1", edited.clone())
            .await
            .unwrap();
        assert_eq!(
            store
                .approval(&run, "act", Visit::FIRST, 1)
                .await
                .unwrap()
                .and_then(|a| a.decision),
            Some(edited)
        );
    }

    /// A time to the second: stores may keep times to the millisecond.
    fn secs(t: SystemTime) -> u64 {
        t.duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }

    /// A run's trace context is the first one a checkpoint carried: later checkpoints, with
    /// another or none, do not change it; every read of the run's checkpoint gives it back,
    /// also after a wait and a reopen.
    pub async fn the_trace_context_is_kept_with_the_run<H: Harness>(harness: H) {
        const FIRST: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        const OTHER: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let store = store(&harness).await;
        let run = RunId::from("traced");
        let trace = |c: Option<Checkpoint>| c.expect("the run is stored").trace;

        save(&store, checkpoint("traced", "start", 0)).await;
        assert_eq!(trace(store.latest(&run).await.unwrap()), None);
        save(
            &store,
            checkpoint("traced", "first", 1).with_trace(Some(FIRST.to_owned())),
        )
        .await;
        assert_eq!(
            trace(store.latest(&run).await.unwrap()).as_deref(),
            Some(FIRST),
            "the first trace context a checkpoint carries is kept"
        );
        save(
            &store,
            checkpoint("traced", "second", 2)
                .with_trace(Some(OTHER.to_owned()))
                .with_attempt(1),
        )
        .await;
        save(&store, checkpoint("traced", "third", 3).with_attempt(1)).await;
        assert_eq!(
            trace(store.latest(&run).await.unwrap()).as_deref(),
            Some(FIRST),
            "later checkpoints do not change the run's trace context"
        );
        assert_eq!(
            trace(store.load_to_resume(&run, FP).await.unwrap()).as_deref(),
            Some(FIRST),
            "a resumed run continues its trace"
        );
        let until = SystemTime::now() + Duration::from_hours(1);
        store
            .wait(&run, "fourth", "approval", until, None)
            .await
            .unwrap();
        assert_eq!(
            trace(store.latest(&run).await.unwrap()).as_deref(),
            Some(FIRST)
        );
        save(
            &store,
            checkpoint("other", "first", 1).with_trace(Some(OTHER.to_owned())),
        )
        .await;
        assert_eq!(
            trace(store.latest(&"other".into()).await.unwrap()).as_deref(),
            Some(OTHER),
            "each run has its own"
        );

        let Some(store) = harness.reopen(store).await else {
            return; // The store keeps nothing once dropped.
        };
        let store = store.expect("the storage opens again");
        assert_eq!(
            trace(store.latest(&run).await.unwrap()).as_deref(),
            Some(FIRST),
            "the trace context is durable"
        );
    }

    fn claimed(leases: &[Lease]) -> Vec<&str> {
        let mut ids: Vec<&str> = leases.iter().map(|l| l.run_id.as_str()).collect();
        ids.sort_unstable();
        ids
    }

    /// `claim` leases due runs nobody holds, the longest-due first, at most `limit`, and
    /// never a run another worker holds while its lease lasts; each claim raises the fence.
    pub async fn a_due_run_is_claimed_by_one_worker_at_a_time<H: Harness>(harness: H) {
        let store = store(&harness).await;
        let now = SystemTime::now();
        let until = now + Duration::from_mins(1);
        save(&store, checkpoint("a", "first", 1)).await;
        save(&store, checkpoint("b", "first", 1)).await;
        save(
            &store,
            checkpoint("asleep", "first", 1).with_wake_at(Some(now + Duration::from_mins(5))),
        )
        .await;
        save(&store, finished("done")).await;
        save(&store, checkpoint("held", "first", 1)).await;
        store.pause(&"held".into()).await.unwrap();

        assert!(
            store
                .claim(now, &[], 10, "w1", until)
                .await
                .unwrap()
                .is_empty(),
            "no workflow, no run"
        );
        let first = store.claim(now, &[W], 1, "w1", until).await.unwrap();
        assert_eq!(first.len(), 1, "at most `limit`");
        let rest = store.claim(now, &[W], 10, "w2", until).await.unwrap();
        assert_eq!(rest.len(), 1, "only the due run nobody holds");
        let mut both = [first[0].run_id.as_str(), rest[0].run_id.as_str()];
        both.sort_unstable();
        assert_eq!(
            both,
            ["a", "b"],
            "due, running runs of the workflow asked for"
        );
        assert!(
            store
                .claim(now, &[W], 10, "w3", until)
                .await
                .unwrap()
                .is_empty(),
            "a held run is not claimed again while its lease lasts"
        );
        assert!(first[0].fence.epoch() > 0 && rest[0].fence.epoch() > 0);
        assert_eq!(
            first[0]
                .until
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_secs(),
            until
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_secs()
        );
        assert_eq!(
            sorted(store.due(now, &[W], 10).await.unwrap()),
            [RunId::from("a"), RunId::from("b")],
            "`due` is a read: it lists held runs too"
        );
    }

    /// A lease that expired can be claimed by another worker, with a higher fence; the first
    /// worker's renewal no longer includes it.
    pub async fn an_expired_lease_is_taken_over<H: Harness>(harness: H) {
        let store = store(&harness).await;
        let now = SystemTime::now();
        save(&store, checkpoint("r1", "first", 1)).await;
        let first = store
            .claim(now, &[W], 10, "w1", now + Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(claimed(&first), ["r1"]);
        let later = now + Duration::from_mins(1);
        let second = store
            .claim(later, &[W], 10, "w2", later + Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(claimed(&second), ["r1"], "an expired lease is taken over");
        assert!(
            second[0].fence > first[0].fence,
            "the new holder's fence is higher"
        );
        assert!(
            store
                .renew(&first, later + Duration::from_mins(1))
                .await
                .unwrap()
                .is_empty(),
            "the old holder's renewal finds no lease"
        );
        let renewed = store
            .renew(&second, later + Duration::from_mins(1))
            .await
            .unwrap();
        assert_eq!(claimed(&renewed), ["r1"]);
        assert_eq!(renewed[0].fence, second[0].fence);
    }

    /// A run cancelled and pruned while a worker's turn of it is in flight stays deleted: the
    /// worker's next checkpoint, fenced with its lease, is refused as a lost lease and stores
    /// nothing (a fence is only ever given for a stored run), and the run id can start a new
    /// run afterwards.
    pub async fn a_fenced_checkpoint_never_brings_back_a_deleted_run<H: Harness>(harness: H) {
        let store = store(&harness).await;
        let now = SystemTime::now();
        let run = RunId::from("r1");
        save(&store, checkpoint("r1", "first", 1)).await;
        let fence = store
            .claim(now, &[W], 10, "w1", now + Duration::from_mins(1))
            .await
            .unwrap()[0]
            .fence;
        store.cancel(&run).await.unwrap();
        assert_eq!(store.prune(Prune::KeepLast(0), 100).await.unwrap(), 1);
        assert_eq!(store.status(&run).await.unwrap(), None, "pruned");

        let error = store
            .save(checkpoint("r1", "second", 2).with_fence(Some(fence)))
            .await
            .expect_err("the stale worker's checkpoint of a deleted run is refused");
        assert_eq!(error.kind(), StoreErrorKind::LeaseLost, "{error}");
        assert_eq!(
            store.status(&run).await.unwrap(),
            None,
            "the deleted run is not stored again"
        );
        assert_eq!(store.latest(&run).await.unwrap(), None);
        assert!(
            store.due(now, &[W], 10).await.unwrap().is_empty(),
            "nothing is due"
        );
        store
            .save(checkpoint("r1", "", 0).starting_a_run())
            .await
            .expect("the run id starts a new run");
        assert_eq!(info(&store, "r1").await.checkpoints, 1);
    }

    /// Every write carrying a fence that is not the run's is refused as `LeaseLost` and
    /// changes nothing: checkpoints, journal entries, waits, approval requests, failures. The
    /// current holder's writes, and writes without a fence, go through.
    pub async fn a_lost_lease_fences_every_write<H: Harness>(harness: H) {
        let store = store(&harness).await;
        let now = SystemTime::now();
        let run = RunId::from("r1");
        save(&store, checkpoint("r1", "first", 1)).await;
        let old = store
            .claim(now, &[W], 10, "w1", now + Duration::from_secs(1))
            .await
            .unwrap()[0]
            .fence;
        let later = now + Duration::from_mins(1);
        let new = store
            .claim(later, &[W], 10, "w2", later + Duration::from_mins(1))
            .await
            .unwrap()[0]
            .fence;
        let lost = |result: Result<(), crate::error::StoreError>, what: &str| {
            let error = result.expect_err(what);
            assert_eq!(error.kind(), StoreErrorKind::LeaseLost, "{what}: {error}");
        };

        lost(
            store
                .save(checkpoint("r1", "stale", 2).with_fence(Some(old)))
                .await,
            "a stale checkpoint is refused",
        );
        let entry = |position| {
            JournalEntry::new(
                run.clone(),
                "second",
                Visit::FIRST,
                position,
                "tool",
                1,
                JournalResult::Output(json!(position)),
            )
        };
        lost(
            store.record_call(entry(0).with_fence(Some(old))).await,
            "a stale journal entry is refused",
        );
        let until = now + Duration::from_hours(1);
        lost(
            store.wait(&run, "second", "go", until, Some(old)).await,
            "a stale wait is refused",
        );
        let approval = Approval::new(
            run.clone(),
            "second",
            Visit::FIRST,
            1,
            "call-1",
            "tool",
            json!({}),
            until,
        );
        lost(
            store
                .request_approval(approval.clone().with_fence(Some(old)))
                .await
                .map(|_| ()),
            "a stale approval request is refused",
        );
        lost(
            store.fail(&run, &boom(), Some(old)).await,
            "a stale failure is refused",
        );

        let latest = store.latest(&run).await.unwrap().unwrap();
        assert_eq!(
            latest.step, "first",
            "nothing of the stale writer's is kept"
        );
        assert_eq!(latest.waiting, None);
        assert!(
            store
                .recorded_call(&run, "second", Visit::FIRST, 0)
                .await
                .unwrap()
                .is_none()
        );
        assert!(store.approvals(&run).await.unwrap().is_empty());
        assert_eq!(info(&store, "r1").await.status, RunStatus::Running);
        assert_eq!(
            harness.history(&store, &run).await.unwrap().len(),
            1,
            "no history entry of the stale writer's"
        );

        store
            .record_call(entry(0).with_fence(Some(new)))
            .await
            .expect("the holder's journal entry is kept");
        store
            .save(checkpoint("r1", "second", 2).with_fence(Some(new)))
            .await
            .expect("the holder's checkpoint is kept");
        store
            .save(checkpoint("r1", "third", 3))
            .await
            .expect("a write without a fence is not fenced");
        store
            .fail(&run, &boom(), Some(new))
            .await
            .expect("the holder fails the run");
        assert_eq!(info(&store, "r1").await.status, RunStatus::Failed);
        assert!(matches!(
            store.claim(later, &[W], 10, "w3", later).await,
            Ok(leases) if leases.is_empty()
        ));
    }

    /// `renew` extends the leases given that are still current and tells which; `release`
    /// gives one up, so the run can be claimed at once; a stale lease's release changes
    /// nothing.
    pub async fn leases_are_renewed_and_released<H: Harness>(harness: H) {
        let store = store(&harness).await;
        let now = SystemTime::now();
        save(&store, checkpoint("a", "first", 1)).await;
        save(&store, checkpoint("b", "first", 1)).await;
        let leases = store
            .claim(now, &[W], 10, "w1", now + Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(claimed(&leases), ["a", "b"]);
        assert!(store.renew(&[], now).await.unwrap().is_empty());
        let far = now + Duration::from_mins(10);
        let renewed = store.renew(&leases, far).await.unwrap();
        assert_eq!(claimed(&renewed), ["a", "b"]);
        let soon = now + Duration::from_mins(1);
        assert!(
            store
                .claim(soon, &[W], 10, "w2", far)
                .await
                .unwrap()
                .is_empty(),
            "a renewed lease lasts until its new time"
        );
        let a = leases.iter().find(|l| l.run_id.as_str() == "a").unwrap();
        store.release(a).await.unwrap();
        let taken = store.claim(now, &[W], 10, "w2", far).await.unwrap();
        assert_eq!(claimed(&taken), ["a"], "a released run is claimed at once");
        store.release(a).await.unwrap();
        assert!(
            store
                .claim(now, &[W], 10, "w3", far)
                .await
                .unwrap()
                .is_empty(),
            "releasing a stale lease leaves the new holder's"
        );
        assert_eq!(
            claimed(&store.renew(&leases, far).await.unwrap()),
            ["b"],
            "a lease taken over is not renewed for its old holder"
        );
        assert_eq!(claimed(&store.renew(&taken, far).await.unwrap()), ["a"]);
        store.release(&taken[0]).await.unwrap();
        assert!(
            store.renew(&taken, far).await.unwrap().is_empty(),
            "a released lease is not renewed"
        );
        assert_eq!(
            claimed(&store.claim(now, &[W], 10, "w3", far).await.unwrap()),
            ["a"],
            "and stays free"
        );
    }

    /// Many workers claiming at once never get the same run.
    pub async fn concurrent_claims_never_share_a_run<H: Harness>(harness: H) {
        let store = std::sync::Arc::new(store(&harness).await);
        for n in 0..40 {
            save(&*store, checkpoint(&format!("run-{n}"), "first", 1)).await;
        }
        let now = SystemTime::now();
        let until = now + Duration::from_mins(1);
        let mut claims = Vec::new();
        for worker in 0..8 {
            let store = std::sync::Arc::clone(&store);
            claims.push(async move {
                let name = format!("w{worker}");
                let mut mine = Vec::new();
                for _ in 0..4 {
                    mine.extend(store.claim(now, &[W], 3, &name, until).await.unwrap());
                }
                mine
            });
        }
        let all: Vec<Lease> = futures_util::future::join_all(claims)
            .await
            .into_iter()
            .flatten()
            .collect();
        let mut ids: Vec<&str> = all.iter().map(|l| l.run_id.as_str()).collect();
        ids.sort_unstable();
        let total = ids.len();
        ids.dedup();
        assert_eq!(ids.len(), total, "no run was claimed twice");
        assert_eq!(total, 40, "every due run was claimed");
    }
}
