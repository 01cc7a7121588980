//! The engine: runs stored workflows to completion, resuming them after restarts, waking them
//! when their timers are due or their events arrive.

use crate::driver::Loaded;
use crate::error::{RuntimeError, StoreError, StoreErrorKind};
use crate::output::Outputs;
use crate::state::{Ctx, EventOf, FailedAt, Outcome, RunId, Workflow, now};
use crate::store::{Approval, ApprovalError, Checkpoint, Decision, Failure, RunInfo, RunState};
use crate::store::{DynStore, Fence, Fenced, Held, RunQueue};
use crate::tool::Toolbox;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinSet;

/// An engine's failure outside any run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No workflow of this name is registered with the engine.
    #[error(
        "workflow `{0}` is not registered with this engine: `Engine::builder(store).register::<W>(..)`"
    )]
    Unregistered(&'static str),
    /// A run with this id exists and belongs to another workflow.
    #[error(
        "run `{run_id}` belongs to workflow `{owner}`, not `{workflow}`: give each run its own id"
    )]
    Conflict {
        /// The run.
        run_id: RunId,
        /// The workflow asked to start it.
        workflow: &'static str,
        /// The workflow that has it.
        owner: String,
    },
    /// An input or an event would not read back as it was written (a NaN or infinite
    /// number, nesting deeper than [`MAX_JSON_DEPTH`](crate::state::MAX_JSON_DEPTH)), so it
    /// was refused and nothing was stored.
    #[error("run `{run_id}`: {what} is refused: {reason}")]
    Unstorable {
        /// The run.
        run_id: RunId,
        /// `the input` or `event `…``.
        what: String,
        /// What is wrong with it, and where.
        reason: String,
    },
    /// No run with this id is stored.
    #[error("run `{run_id}` is not stored: start it with `Engine::start` first")]
    UnknownRun {
        /// The run.
        run_id: RunId,
    },
    /// A finished run's stored state does not hold this workflow's output: it was written by
    /// hand, or by code whose output type differs.
    #[error(
        "run `{run_id}` finished, but its stored output cannot be read as the output of \
         workflow `{workflow}`: {reason}"
    )]
    UnreadableOutput {
        /// The run.
        run_id: RunId,
        /// The workflow asked for.
        workflow: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// An input or an event could not be serialised.
    #[error("run `{run_id}`: could not serialise {what}")]
    Serialize {
        /// The run.
        run_id: RunId,
        /// `the input` or `event `…``.
        what: String,
        /// The serialiser's error.
        #[source]
        source: serde_json::Error,
    },
}

/// What a run of one registered workflow gets: its deps (cloned for every run; share big
/// things through an `Arc`), its tools and its outputs.
pub struct Setup<D> {
    deps: D,
    tools: Toolbox,
    outputs: Option<Arc<Outputs>>,
}

impl<D> fmt::Debug for Setup<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Setup")
            .field("tools", &self.tools)
            .field("outputs", &self.outputs)
            .finish_non_exhaustive()
    }
}

impl<D> Setup<D> {
    /// Runs get a clone of `deps`, no tools and no outputs.
    pub fn new(deps: D) -> Self {
        Self {
            deps,
            tools: Toolbox::new(),
            outputs: None,
        }
    }

    /// The tools the workflow's steps call.
    #[must_use]
    pub fn tools(mut self, tools: Toolbox) -> Self {
        self.tools = tools;
        self
    }

    /// Where the workflow's results go.
    #[must_use]
    pub fn outputs(mut self, outputs: Outputs) -> Self {
        self.outputs = Some(Arc::new(outputs));
        self
    }
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How one run ended its turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Turn {
    Finished,
    Parked,
    Stopped,
    Failed,
    /// The run failed but the store refused to mark it failed: its lease is kept until it
    /// expires, so the run runs again only then, not at once and again and again.
    Unrecorded,
    Incompatible,
    /// The run's lease passed to another worker during the turn: that worker goes on with it.
    Lost,
}

/// One registered workflow, type-erased: what the engine knows of it.
trait Runner: Send + Sync {
    /// The workflow's fingerprint.
    fn fingerprint(&self) -> &'static str;
    /// The workflow, as the store records it.
    fn info(&self) -> crate::store::WorkflowInfo;
    /// Drives the run whose latest checkpoint is `checkpoint` through its turn, under the
    /// lease `held`.
    fn turn(
        &self,
        store: Arc<dyn DynStore>,
        checkpoint: Checkpoint,
        held: Arc<Held>,
    ) -> BoxFuture<'_, Turn>;
}

/// The longest poll interval and lease an engine takes, and the longest `wait_for` when its
/// timeout is too long for the clock: 100 years. The engine adds them to the clock (a lease's
/// end, the next renewal, a jittered poll), which would overflow and panic for
/// `Duration::MAX`.
const LONGEST_SETTING: Duration = Duration::from_hours(100 * 365 * 24);

/// Marks a run failed under a lease (its fence): `Turn::Failed`, or `Turn::Unrecorded` when
/// the store refused.
type FailFn = dyn Fn(RunId, Failure, Fence) -> BoxFuture<'static, Turn> + Send + Sync;

struct Registered<W: Workflow> {
    setup: Setup<W::Deps>,
    fail: Arc<FailFn>,
}

impl<W: Workflow> Runner for Registered<W>
where
    W::Deps: Clone,
{
    fn fingerprint(&self) -> &'static str {
        W::FINGERPRINT
    }

    fn info(&self) -> crate::store::WorkflowInfo {
        crate::store::WorkflowInfo::of::<W>()
    }

    fn turn(
        &self,
        store: Arc<dyn DynStore>,
        checkpoint: Checkpoint,
        held: Arc<Held>,
    ) -> BoxFuture<'_, Turn> {
        Box::pin(async move {
            let run_id = checkpoint.run_id.clone();
            let attempt = checkpoint.attempt;
            let fence = held.fence();
            let store: Arc<dyn DynStore> = Arc::new(Fenced::new(store, Arc::clone(&held)));
            let (state, resume) = match crate::driver::load::<W>(&*store, checkpoint).await {
                Ok(Loaded::Ready(state, resume)) => (state, resume),
                Ok(Loaded::Parked(_)) => return Turn::Parked,
                Err(error @ RuntimeError::Incompatible { .. }) => {
                    tracing::warn!(%error, "not resuming the run");
                    return Turn::Incompatible;
                }
                Err(_) if held.is_lost() => return Turn::Lost,
                Err(error) => {
                    return (self.fail)(run_id, runtime_failure(&error), fence).await;
                }
            };
            let ctx = Ctx::builder(self.setup.deps.clone())
                .run_id(run_id.clone())
                .first_attempt(attempt)
                .dyn_store(store)
                .tools(self.setup.tools.clone())
                .shared_outputs(self.setup.outputs.clone())
                .build();
            match W::drive(&ctx, state, resume).await {
                // A write the store refused, or a call not made, because the lease passed to
                // another worker: whatever the turn ended with, that worker has the run.
                _ if held.is_lost() => Turn::Lost,
                Outcome::Finished(_) => Turn::Finished,
                Outcome::Parked(_) => Turn::Parked,
                Outcome::Stopped { .. } => Turn::Stopped,
                Outcome::Failed(error) => (self.fail)(run_id, failure_of::<W>(&error), fence).await,
            }
        })
    }
}

/// Resolves when the store's wake-up hint changes; never, for a store without hints (or one
/// whose hints stopped).
async fn hinted(hints: Option<&mut watch::Receiver<()>>) {
    if let Some(hints) = hints
        && hints.changed().await.is_ok()
    {
        return;
    }
    std::future::pending::<()>().await;
}

/// A run whose checkpoint could not be loaded. An unreadable row stays unreadable: the run is
/// set aside rather than retried for ever. Anything else (the store is down) is retried.
async fn unloadable<S: RunQueue>(
    store: &S,
    run_id: &RunId,
    error: &StoreError,
    fence: Fence,
) -> Turn {
    tracing::warn!(run_id = %run_id, %error, "could not load the run");
    if error.kind() == StoreErrorKind::Corrupt {
        return mark_failed(store, run_id, &Failure::new(None, error.to_string()), fence).await;
    }
    Turn::Failed
}

/// Marks a run failed; `Turn::Unrecorded` when the store refuses. Such a run is still
/// `running` in the store: releasing its lease would make it due at once, to fail the same way
/// at every poll, so the caller keeps the lease and the run is taken again when it expires.
async fn mark_failed<S: RunQueue + ?Sized>(
    store: &S,
    run_id: &RunId,
    failure: &Failure,
    fence: Fence,
) -> Turn {
    match store.fail(run_id, failure, Some(fence)).await {
        Ok(()) => Turn::Failed,
        Err(error) => {
            tracing::warn!(
                run_id = %run_id,
                %error,
                "could not mark the run failed; it is retried when its lease expires"
            );
            Turn::Unrecorded
        }
    }
}

/// Why a run of `W` failed with `error`: the step that failed (or that a runtime error names,
/// see [`FailedAt::step`]), and the error's message chain. Tool errors have had the secrets of
/// their calls taken out where they were made (see `tool::redact`), so the chain holds none.
fn failure_of<W: Workflow>(error: &W::Error) -> Failure {
    let step = W::failed_at(error).step();
    Failure::new(step.map(str::to_owned), error_chain(error))
}

/// The failure of a run the runtime failed (a checkpoint not stored, a state not read, a
/// panic…), with the step the error names, if any.
fn runtime_failure(error: &RuntimeError) -> Failure {
    let step = FailedAt::Runtime(error).step();
    Failure::new(step.map(str::to_owned), error_chain(error))
}

/// An error and its sources, one line.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

/// Builds an [`Engine`]: made by [`Engine::builder`].
#[must_use]
pub struct EngineBuilder<S> {
    store: Arc<S>,
    workflows: HashMap<&'static str, Arc<dyn Runner>>,
    concurrency: usize,
    poll: Duration,
    grace: Duration,
    lease: Duration,
    worker: Option<String>,
}

impl<S> fmt::Debug for EngineBuilder<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EngineBuilder")
            .field("workflows", &self.workflows.keys().collect::<Vec<_>>())
            .field("concurrency", &self.concurrency)
            .field("poll", &self.poll)
            .field("grace", &self.grace)
            .finish_non_exhaustive()
    }
}

impl<S: RunQueue> EngineBuilder<S> {
    /// Runs of workflow `W` get what `setup` says.
    pub fn register<W: Workflow>(mut self, setup: Setup<W::Deps>) -> Self
    where
        W::Deps: Clone,
    {
        let store = Arc::clone(&self.store);
        let fail = Arc::new(move |run_id: RunId, failure: Failure, fence: Fence| {
            let store = Arc::clone(&store);
            Box::pin(async move {
                tracing::warn!(run_id = %run_id, error = %failure, "run failed");
                mark_failed(&*store, &run_id, &failure, fence).await
            }) as BoxFuture<'static, Turn>
        });
        self.workflows
            .insert(W::NAME, Arc::new(Registered::<W> { setup, fail }));
        self
    }

    /// At most this many runs in flight at once (64 by default).
    pub fn concurrency(mut self, max: usize) -> Self {
        self.concurrency = max.max(1);
        self
    }

    /// How often the engine looks for due runs when nothing tells it to (1 s by default):
    /// runs started or sent events through this engine wake it at once, and it sleeps until
    /// the next timer, so this bounds only how late it notices runs added behind its back.
    /// At least 1 ms, at most 100 years (a longer one is taken as 100 years).
    pub fn poll_interval(mut self, poll: Duration) -> Self {
        self.poll = poll.clamp(Duration::from_millis(1), LONGEST_SETTING);
        self
    }

    /// How long [`Engine::run_until`] waits, once asked to stop, for runs in flight to reach
    /// their next checkpoint (10 s by default). Runs still going then are dropped between
    /// awaits; they resume from their last checkpoint when an engine starts again.
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// How long a lease on a run lasts (60 s by default; at least 40 ms, at most 100 years: a
    /// longer one is taken as 100 years). The engine renews
    /// its leases every quarter of it, so a run whose step makes a model call of many minutes
    /// keeps its lease; if this engine dies (or is paused, or cut off from the store) for
    /// longer, another engine on the store takes its runs over from their last checkpoints
    /// once their leases expire. Shorter: a crashed engine's runs resume sooner; longer: an
    /// engine survives longer pauses without losing its runs.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease.clamp(Duration::from_millis(40), LONGEST_SETTING);
        self
    }

    /// The name this engine's leases are held under in the store (by default the process id
    /// and a random suffix). Give each engine its own: two engines with one name would renew
    /// each other's leases.
    pub fn worker(mut self, name: impl Into<String>) -> Self {
        self.worker = Some(name.into());
        self
    }

    /// The engine.
    #[must_use]
    pub fn build(self) -> Engine<S> {
        let worker = self
            .worker
            .unwrap_or_else(|| format!("pid-{}-{:08x}", std::process::id(), fastrand::u32(..)));
        Engine {
            inner: Arc::new(Inner {
                store: self.store,
                workflows: self.workflows,
                concurrency: self.concurrency,
                poll: self.poll,
                grace: self.grace,
                lease: self.lease,
                worker,
                held: Mutex::default(),
                wake: Notify::new(),
                in_flight: Mutex::default(),
                ended: Mutex::default(),
            }),
        }
    }
}

/// Runs stored workflows: starts runs, resumes unfinished ones at start-up, wakes sleeping runs
/// when they are due and waiting ones when their event arrives, at most
/// [`concurrency`](EngineBuilder::concurrency) at a time, and shuts down gracefully.
///
/// A run that waits (a [`Sleep`](crate::state::Sleep), an event) holds no task and no memory
/// in the engine: it is a row in the store with a wake-up time. A step that fails sets its run
/// aside as [`Failed`](crate::store::RunStatus::Failed) (see [`RunQueue::fail`]); a run that
/// is paused or cancelled stops at its next checkpoint; a run stored by other code (another
/// fingerprint) is marked incompatible and left alone.
///
/// Many engines can share one store, in one process or many: each holds a lease on the runs
/// it runs (see [`run_until`](Engine::run_until)), so no two run a run at once.
///
/// ```
/// use flow_runtime::prelude::*;
/// use flow_runtime::state::{Engine, Event, RunResult, Setup};
/// use flow_runtime::store::{MemoryStore, RunStatus};
/// use std::sync::Arc;
/// use std::time::Duration;
///
/// #[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
/// pub struct Approval {
///     pub by: String,
/// }
///
/// #[workflow]
/// pub mod expense {
///     use super::*;
///
///     #[step(entry)]
///     pub async fn submit(amount: u32) -> Result<u32, Invalid> {
///         Ok(amount)
///     }
///
///     #[step(after = submit, exit, event = Approval, timeout = Duration::from_secs(86_400))]
///     pub async fn decide(amount: u32, approval: Event<Approval>) -> Result<String, Invalid> {
///         Ok(match approval {
///             Event::Received(a) => format!("{amount} approved by {}", a.by),
///             Event::TimedOut => format!("{amount} expired"),
///         })
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = Arc::new(MemoryStore::new());
/// let engine = Engine::builder(Arc::clone(&store))
///     .register::<expense::Workflow>(Setup::new(()))
///     .build();
/// let run = engine.start::<expense::Workflow>("exp-1", 120).await?;
/// engine.send::<expense::Workflow, _>(&run, Approval { by: "Grace".into() }).await?;
///
/// // Runs what is due until the run has ended, awaited without polling; then stops.
/// let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
/// let (report, result) = tokio::join!(
///     engine.run_until(async {
///         let _ = stopped.await;
///     }),
///     async {
///         let result = engine.wait_for::<expense::Workflow>(&run, Duration::from_secs(5)).await;
///         let _ = stop.send(());
///         result
///     },
/// );
/// assert_eq!(report?.finished, 1);
/// assert_eq!(result?, RunResult::Finished("120 approved by Grace".to_owned()));
/// assert_eq!(store.status(&run).await?.map(|i| i.status), Some(RunStatus::Finished));
/// # Ok(())
/// # }
/// ```
pub struct Engine<S> {
    inner: Arc<Inner<S>>,
}

struct Inner<S> {
    store: Arc<S>,
    workflows: HashMap<&'static str, Arc<dyn Runner>>,
    concurrency: usize,
    poll: Duration,
    grace: Duration,
    /// How long a lease lasts, and this engine's name in the store's leases.
    lease: Duration,
    worker: String,
    /// The leases of the runs in flight.
    held: Mutex<HashMap<RunId, Arc<Held>>>,
    wake: Notify,
    in_flight: Mutex<HashSet<RunId>>,
    /// Who awaits which run's end ([`Engine::wait_for`]): told when a turn of the run in
    /// this engine ends it (finished, failed, stopped).
    ended: Mutex<HashMap<RunId, watch::Sender<()>>>,
}

impl<S> Clone for Engine<S> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<S> fmt::Debug for Engine<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field(
                "workflows",
                &self.inner.workflows.keys().collect::<Vec<_>>(),
            )
            .field("concurrency", &self.inner.concurrency)
            .finish_non_exhaustive()
    }
}

/// What [`Engine::run_until`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EngineReport {
    /// Runs that finished.
    pub finished: u64,
    /// Turns that ended with the run waiting (asleep, or for an event).
    pub parked: u64,
    /// Runs that failed and were set aside.
    pub failed: u64,
    /// Turns that ended because the run was paused or cancelled.
    pub stopped: u64,
    /// Runs dropped at shutdown after the grace period; they resume at the next start.
    pub interrupted: u64,
    /// Turns cut short because the run's lease passed to another engine (this one was paused
    /// or cut off from the store past the lease): that engine goes on with the run.
    pub lost: u64,
    /// Runs that failed but that the store refused to mark failed: each keeps its lease
    /// until it expires and runs again then (see the engine's logs for the store's error).
    pub unrecorded: u64,
}

/// A run's result, typed: what [`Engine::outcome`] and [`Engine::wait_for`] return.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RunResult<O> {
    /// The run finished with this output.
    Finished(O),
    /// A step failed (or the runtime around it) and the run is set aside: which step and why.
    /// [`unpause`](crate::store::RunControl::unpause) retries it.
    Failed(Failure),
    /// The run has not ended: where it stands ([`RunInfo::state`]: running, sleeping,
    /// waiting for an event and until when, paused, cancelled…). Boxed: it is the large one.
    Unfinished(Box<RunInfo>),
}

impl<O> RunResult<O> {
    /// The output, if the run finished.
    #[must_use]
    pub fn finished(self) -> Option<O> {
        match self {
            Self::Finished(output) => Some(output),
            _ => None,
        }
    }
}

impl<S: RunQueue> Engine<S> {
    /// A builder for an engine on `store`.
    pub fn builder(store: Arc<S>) -> EngineBuilder<S> {
        EngineBuilder {
            store,
            workflows: HashMap::new(),
            concurrency: 64,
            poll: Duration::from_secs(1),
            grace: Duration::from_secs(10),
            lease: Duration::from_mins(1),
            worker: None,
        }
    }

    /// The engine's store.
    #[must_use]
    pub fn store(&self) -> &Arc<S> {
        &self.inner.store
    }

    /// Stores a new run of `W` with id `run_id` and input `input`, for the engine to run. The
    /// run id is an idempotency key: when the store has the run already, nothing changes and
    /// its id is returned, never a second run.
    ///
    /// # Errors
    ///
    /// `W` is not registered; the run id belongs to another workflow; the input does not
    /// serialise; the store failed.
    pub async fn start<W: Workflow>(
        &self,
        run_id: impl Into<RunId>,
        input: W::Input,
    ) -> Result<RunId, EngineError> {
        let run_id = run_id.into();
        if !self.inner.workflows.contains_key(W::NAME) {
            return Err(EngineError::Unregistered(W::NAME));
        }
        let store = &self.inner.store;
        let start = W::start(input);
        let state = serde_json::to_value(&start).map_err(|source| EngineError::Serialize {
            run_id: run_id.clone(),
            what: "the input".to_owned(),
            source,
        })?;
        if let Some(reason) = crate::state::unreadable(&start, &state) {
            return Err(EngineError::Unstorable {
                run_id,
                what: "the input".to_owned(),
                reason,
            });
        }
        // The run's trace begins here (feature `otel`): its turns continue it.
        let (span, trace) = crate::driver::trace::start_span(W::NAME, &run_id);
        // Written only if the store has no such run, in one step with the check: a second
        // start of the same id (a redelivered request) changes nothing, even one that races
        // the first, and never resets a run that has moved on.
        let checkpoint = Checkpoint::new(run_id.clone(), W::NAME, W::FINGERPRINT, "", false, state)
            .with_trace(trace)
            .starting_a_run();
        match tracing::Instrument::instrument(store.save(checkpoint), span).await {
            Ok(()) => {
                self.inner.wake.notify_one();
                Ok(run_id)
            }
            Err(e) if e.kind() == StoreErrorKind::Exists => match store.status(&run_id).await? {
                Some(info) if info.workflow != W::NAME => Err(EngineError::Conflict {
                    run_id,
                    workflow: W::NAME,
                    owner: info.workflow,
                }),
                _ => Ok(run_id),
            },
            Err(e) => Err(e.into()),
        }
    }

    /// Sends run `run_id` of workflow `W` an event: kept in the run's inbox until the step
    /// that waits for it consumes it (also when it arrives before the run reaches that step),
    /// and wakes the run if it is waiting. `E` must be an event `W` declares: sending another
    /// does not compile.
    ///
    /// # Errors
    ///
    /// The run is unknown, finished or cancelled; the event does not serialise, or would not
    /// read back ([`EngineError::Unstorable`]: a NaN, too deep); the store failed.
    // Returns a boxed future rather than being an `async fn`: with an opaque future, sending
    // an event the workflow does not declare is reported three times; with a named one, once.
    #[allow(
        clippy::needless_pass_by_value,
        reason = "events are sent by value, like `start`'s input"
    )]
    #[allow(
        clippy::multiple_bound_locations,
        reason = "`EventOf` inline, so an undeclared event's error shows the bound that says so"
    )]
    pub fn send<'a, W: Workflow, E: EventOf<W>>(
        &'a self,
        run_id: &'a RunId,
        event: E,
    ) -> BoxFuture<'a, Result<(), EngineError>>
    where
        // Not implied by `EventOf` (see there); the macro checks it for every event.
        E: serde::Serialize,
    {
        let payload = serde_json::to_value(&event)
            .map_err(|source| EngineError::Serialize {
                run_id: run_id.clone(),
                what: format!("event `{}`", E::NAME),
                source,
            })
            .and_then(|payload| match crate::state::unreadable(&event, &payload) {
                Some(reason) => Err(EngineError::Unstorable {
                    run_id: run_id.clone(),
                    what: format!("event `{}`", E::NAME),
                    reason,
                }),
                None => Ok(payload),
            });
        Box::pin(async move {
            self.inner
                .store
                .send_event(run_id, E::NAME, payload?)
                .await?;
            self.inner.wake.notify_one();
            Ok(())
        })
    }

    /// Approves call `call_id` of run `run_id`, the approval-gated call the run waits for
    /// (its [`RunInfo::approval`](crate::store::RunInfo::approval)), with the arguments it
    /// was asked with, and wakes the run: the call is made. An approval applies to that call
    /// only, once, and only before its deadline.
    ///
    /// # Errors
    ///
    /// [`ApprovalError::OtherCall`] (the run waits for another call),
    /// [`NotPending`](ApprovalError::NotPending), [`Decided`](ApprovalError::Decided) (a
    /// stale id), [`Expired`](ApprovalError::Expired),
    /// [`UnknownRun`](ApprovalError::UnknownRun), or the store failed.
    pub async fn approve(&self, run_id: &RunId, call_id: &str) -> Result<Approval, ApprovalError> {
        self.decide(run_id, call_id, Decision::Approved { edited: None })
            .await
    }

    /// [`approve`](Self::approve), with `arguments` in place of those asked for (the tool's
    /// input as JSON): the call is made with them. Arguments that do not decode as the
    /// tool's input are not sent: an agent's model is told, a step gets
    /// [`Denied::Unusable`](crate::tool::Denied::Unusable).
    ///
    /// # Errors
    ///
    /// As [`approve`](Self::approve).
    pub async fn approve_with(
        &self,
        run_id: &RunId,
        call_id: &str,
        arguments: serde_json::Value,
    ) -> Result<Approval, ApprovalError> {
        self.decide(
            run_id,
            call_id,
            Decision::Approved {
                edited: Some(arguments),
            },
        )
        .await
    }

    /// Rejects call `call_id` of run `run_id` for `reason`, and wakes the run: the call is
    /// not made; an agent's model gets the reason as the tool's result, a step
    /// [`Denied::Rejected`](crate::tool::Denied::Rejected).
    ///
    /// # Errors
    ///
    /// As [`approve`](Self::approve).
    pub async fn reject(
        &self,
        run_id: &RunId,
        call_id: &str,
        reason: impl Into<String>,
    ) -> Result<Approval, ApprovalError> {
        self.decide(
            run_id,
            call_id,
            Decision::Rejected {
                reason: reason.into(),
            },
        )
        .await
    }

    async fn decide(
        &self,
        run_id: &RunId,
        call_id: &str,
        decision: Decision,
    ) -> Result<Approval, ApprovalError> {
        let decided = self
            .inner
            .store
            .decide_approval(run_id, call_id, decision)
            .await?;
        self.inner.wake.notify_one();
        Ok(decided)
    }

    /// The result of run `run_id` of workflow `W` as it stands: its typed output if it
    /// finished, its [`Failure`] (the step and the reason) if it failed, or its [`RunInfo`]
    /// if it has not ended (running, sleeping, waiting for an event, paused, cancelled…).
    ///
    /// `W` is a `#[workflow]`'s `Workflow` type.
    ///
    /// # Errors
    ///
    /// The run is unknown ([`EngineError::UnknownRun`]) or belongs to another workflow
    /// ([`EngineError::Conflict`]); a finished run's output cannot be read as `W::Output`
    /// ([`EngineError::UnreadableOutput`]); the store failed.
    pub async fn outcome<W: Workflow>(
        &self,
        run_id: &RunId,
    ) -> Result<RunResult<W::Output>, EngineError> {
        let store = &self.inner.store;
        let info = store
            .status(run_id)
            .await?
            .ok_or_else(|| EngineError::UnknownRun {
                run_id: run_id.clone(),
            })?;
        if info.workflow != W::NAME {
            return Err(EngineError::Conflict {
                run_id: run_id.clone(),
                workflow: W::NAME,
                owner: info.workflow,
            });
        }
        match info.state() {
            RunState::Finished => {}
            RunState::Failed { step, reason } => {
                return Ok(RunResult::Failed(Failure::new(step, reason)));
            }
            _ => return Ok(RunResult::Unfinished(Box::new(info))),
        }
        let unreadable = |reason: String| EngineError::UnreadableOutput {
            run_id: run_id.clone(),
            workflow: W::NAME,
            reason,
        };
        let checkpoint = store
            .latest(run_id)
            .await?
            .ok_or_else(|| unreadable("the run has no checkpoint".to_owned()))?;
        let state: W::State =
            serde_json::from_value(checkpoint.state).map_err(|e| unreadable(e.to_string()))?;
        W::output(state)
            .map(RunResult::Finished)
            .map_err(|_| unreadable("its state is not at an exit step".to_owned()))
    }

    /// Awaits the end of run `run_id` of workflow `W` (finished, failed, cancelled, or set
    /// aside as incompatible or corrupt), at most `timeout`, and returns its
    /// [`outcome`](Self::outcome). A paused run has not ended: it may be unpaused.
    ///
    /// It does not poll: a run this engine drives tells it the moment its turn ends. A run
    /// driven elsewhere (another process on the same store), or cancelled while it waits, is
    /// noticed by reading its status once every [`poll_interval`](EngineBuilder::poll_interval).
    /// The engine must be running ([`run_until`](Self::run_until)) for the run to move.
    ///
    /// After `timeout`, it returns [`RunResult::Unfinished`] with where the run stands then
    /// (for example [`RunState::Waiting`] with the event and the deadline). A timeout too long
    /// for the clock (`Duration::MAX`) waits for as long as the run takes.
    ///
    /// # Errors
    ///
    /// As [`outcome`](Self::outcome).
    pub async fn wait_for<W: Workflow>(
        &self,
        run_id: &RunId,
        timeout: Duration,
    ) -> Result<RunResult<W::Output>, EngineError> {
        let now = tokio::time::Instant::now();
        let deadline = now
            .checked_add(timeout)
            .unwrap_or_else(|| now + LONGEST_SETTING);
        // Subscribed before the status is read: an end between the two is not missed.
        let mut ended = self.subscribe(run_id);
        let result = loop {
            let result = self.outcome::<W>(run_id).await?;
            if let RunResult::Unfinished(info) = &result
                && !matches!(
                    info.state(),
                    RunState::Cancelled | RunState::Incompatible | RunState::Corrupt { .. }
                )
            {
                tokio::select! {
                    changed = ended.changed() => {
                        if changed.is_err() {
                            // The engine is gone: nothing will tell us any more.
                            tokio::time::sleep_until(deadline.min(
                                tokio::time::Instant::now() + self.inner.poll,
                            ))
                            .await;
                        }
                    }
                    () = tokio::time::sleep(self.inner.poll) => {}
                    () = tokio::time::sleep_until(deadline) => {
                        break self.outcome::<W>(run_id).await?;
                    }
                }
                continue;
            }
            break result;
        };
        drop(ended);
        self.forget_idle(run_id);
        Ok(result)
    }

    fn subscribe(&self, run_id: &RunId) -> watch::Receiver<()> {
        self.lock_ended()
            .entry(run_id.clone())
            .or_insert_with(|| watch::channel(()).0)
            .subscribe()
    }

    /// Tells whoever awaits `run_id` that its turn ended it.
    fn tell_ended(&self, run_id: &RunId) {
        let mut ended = self.lock_ended();
        if let Some(sender) = ended.get(run_id) {
            sender.send_replace(());
            if sender.receiver_count() == 0 {
                ended.remove(run_id);
            }
        }
    }

    /// Drops `run_id`'s channel once nobody awaits it.
    fn forget_idle(&self, run_id: &RunId) {
        let mut ended = self.lock_ended();
        if ended.get(run_id).is_some_and(|s| s.receiver_count() == 0) {
            ended.remove(run_id);
        }
    }

    fn lock_ended(&self) -> std::sync::MutexGuard<'_, HashMap<RunId, watch::Sender<()>>> {
        self.inner
            .ended
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs due runs until `shutdown` completes, then stops taking new ones and gives those in
    /// flight the [grace](EngineBuilder::grace) period to reach their next checkpoint. Call it
    /// once at start-up: it first resumes every unfinished run (those that were running when
    /// the process died are due at once, or when their leases expire).
    ///
    /// Several engines may share one store (an SQLite file, a PostgreSQL database), in one
    /// process or many: each runs a run only while it holds the run's lease (see
    /// [`RunQueue`](crate::store::RunQueue#leases-and-fencing)), claimed with the run,
    /// renewed every quarter of the [lease](EngineBuilder::lease) while the run is in flight,
    /// and given up when its turn ends. A run whose lease passed to another engine (this one
    /// was paused past it) stops at its next write, which the store refuses.
    ///
    /// # Errors
    ///
    /// The store failed while the engine recorded its workflows. Store failures while looking
    /// for due runs are logged and retried after the poll interval.
    pub async fn run_until(
        &self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<EngineReport, EngineError>
    where
        S: 'static,
    {
        let inner = &self.inner;
        // Tools that read the store (the `flow` CLI) draw the runs of these workflows.
        for runner in inner.workflows.values() {
            inner.store.register_workflow(runner.info()).await?;
        }
        let names: Vec<&str> = inner.workflows.keys().copied().collect();
        let slots = Arc::new(Semaphore::new(inner.concurrency));
        let mut tasks: JoinSet<(RunId, Option<Turn>)> = JoinSet::new();
        let mut report = EngineReport::default();
        let mut shutdown = std::pin::pin!(shutdown);
        // A deadline, not a `tokio::time::Interval`: an interval's timer stays registered
        // while the loop awaits the store, and on tokio's paused clock (tests) the clock jumps
        // to the only registered timer whenever the runtime waits for a store thread.
        let heartbeat = crate::store::heartbeat(inner.lease);
        let mut renew_at = tokio::time::Instant::now() + heartbeat;
        // Runs made due by other processes, when the store can tell (PostgreSQL's NOTIFY).
        let mut hints = inner.store.wakeups();
        loop {
            // Jittered, so that engines sharing a store do not all look at once.
            let mut wait = inner.poll.mul_f64(0.9 + fastrand::f64() * 0.2);
            let free = slots.available_permits();
            if free > 0 {
                let at = now();
                // A read first: an idle engine (or many) looking for work every poll writes
                // nothing; only runs found due are claimed, in one write.
                let claimed = match inner.store.due(at, &names, free).await {
                    Ok(due) if due.is_empty() => Ok(Vec::new()),
                    Ok(_) => {
                        inner
                            .store
                            .claim(at, &names, free, &inner.worker, at + inner.lease)
                            .await
                    }
                    Err(error) => Err(error),
                };
                match claimed {
                    Ok(leases) => {
                        for lease in leases {
                            let held =
                                Arc::new(Held::new(lease.run_id.clone(), lease.fence, lease.until));
                            let run_id = lease.run_id;
                            // Claimed again while a turn of it is in flight here (this
                            // engine's lease had expired): that turn's writes are refused now,
                            // and the run is claimed anew once it ends.
                            let slot = match Arc::clone(&slots).try_acquire_owned() {
                                Ok(slot) if self.lock_in_flight().insert(run_id.clone()) => slot,
                                _ => {
                                    self.release(&held).await;
                                    continue;
                                }
                            };
                            self.lock_held().insert(run_id.clone(), Arc::clone(&held));
                            let engine = self.clone();
                            tasks.spawn(async move {
                                let turn = engine.guarded_turn(&held).await;
                                // A finished run is never due again: its lease can lapse.
                                // Any other is given up, so that an event, a decision or an
                                // unpause is taken at once, not after the lease expires.
                                // A lost lease is released too: if this engine only thought
                                // it lost it (its heartbeat fell behind, nobody took the run),
                                // the run is free again at once; if another engine holds it,
                                // the stale fence leaves that lease alone.
                                // A run that could not be marked failed keeps its lease
                                // too (see `mark_failed`).
                                if !matches!(turn, Some(Turn::Finished | Turn::Unrecorded)) {
                                    engine.release(&held).await;
                                }
                                drop(slot);
                                (run_id, turn)
                            });
                        }
                        match inner.store.next_wake(now()).await {
                            Ok(Some(next)) => {
                                let until = next.duration_since(now()).unwrap_or_default();
                                wait = wait.min(until);
                            }
                            Ok(None) => {}
                            Err(error) => tracing::warn!(%error, "could not read the next wake-up"),
                        }
                    }
                    Err(error) => tracing::warn!(%error, "could not claim due runs; retrying"),
                }
            }
            tokio::select! {
                () = &mut shutdown => break,
                Some(done) = tasks.join_next() => {
                    self.finish(done, &mut report);
                }
                () = tokio::time::sleep_until(renew_at) => {
                    self.renew().await;
                    renew_at = tokio::time::Instant::now() + heartbeat;
                }
                () = inner.wake.notified() => {}
                () = hinted(hints.as_mut()) => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
        // Graceful: no new runs; those in flight get the grace period, leases renewed.
        let drained = tokio::time::timeout(inner.grace, async {
            loop {
                tokio::select! {
                    done = tasks.join_next() => match done {
                        Some(done) => self.finish(done, &mut report),
                        None => break,
                    },
                    () = tokio::time::sleep_until(renew_at) => {
                        self.renew().await;
                        renew_at = tokio::time::Instant::now() + heartbeat;
                    }
                }
            }
        })
        .await;
        if drained.is_err() {
            report.interrupted = u64::try_from(tasks.len()).unwrap_or(u64::MAX);
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
            self.lock_in_flight().clear();
            // Given up, so that another engine can take them over at once.
            let held: Vec<Arc<Held>> = self.lock_held().drain().map(|(_, h)| h).collect();
            for held in held {
                self.release(&held).await;
            }
        }
        Ok(report)
    }

    /// Renews the leases of the runs in flight; a lease the store no longer has for this
    /// engine is lost, and its run stops at its next write or call.
    async fn renew(&self) {
        let inner = &self.inner;
        let until = now() + inner.lease;
        let held: Vec<crate::store::Lease> = self
            .lock_held()
            .values()
            .map(|h| crate::store::Lease::new(h.run_id().clone(), h.fence(), until))
            .collect();
        if held.is_empty() {
            return;
        }
        match inner.store.renew(&held, until).await {
            Ok(leases) => {
                let renewed: HashMap<&RunId, Fence> =
                    leases.iter().map(|l| (&l.run_id, l.fence)).collect();
                for held in self.lock_held().values() {
                    if renewed.get(held.run_id()) == Some(&held.fence()) {
                        held.renewed(until);
                    } else {
                        tracing::warn!(run_id = %held.run_id(), "lost the run's lease to another engine; stopping it");
                        held.lose();
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "could not renew leases; retrying"),
        }
    }

    /// Gives up a run's lease at the end of its turn.
    async fn release(&self, held: &Held) {
        let lease = crate::store::Lease::new(held.run_id().clone(), held.fence(), now());
        if let Err(error) = self.inner.store.release(&lease).await {
            // It expires on its own.
            tracing::warn!(run_id = %held.run_id(), %error, "could not release the run's lease");
        }
    }

    fn finish(
        &self,
        done: Result<(RunId, Option<Turn>), tokio::task::JoinError>,
        report: &mut EngineReport,
    ) {
        let Ok((run_id, turn)) = done else { return };
        self.lock_in_flight().remove(&run_id);
        self.lock_held().remove(&run_id);
        if matches!(
            turn,
            Some(Turn::Finished | Turn::Failed | Turn::Stopped | Turn::Incompatible)
        ) {
            self.tell_ended(&run_id);
        }
        match turn {
            Some(Turn::Finished) => report.finished += 1,
            Some(Turn::Parked) => report.parked += 1,
            Some(Turn::Failed) => report.failed += 1,
            Some(Turn::Stopped | Turn::Incompatible) => report.stopped += 1,
            Some(Turn::Lost) => report.lost += 1,
            Some(Turn::Unrecorded) => report.unrecorded += 1,
            None => {}
        }
    }

    /// [`turn`](Self::turn), with a panic that escaped the run's own guards (in a store, in
    /// the engine) failing the run rather than its task: the run never stays `Running` to
    /// panic again at every restart, and the engine goes on.
    async fn guarded_turn(&self, held: &Arc<Held>) -> Option<Turn> {
        let run_id = held.run_id();
        let message = match crate::error::catch_panic(self.turn(held)).await {
            Ok(turn) => return turn,
            Err(message) => message,
        };
        let message = format!("run `{run_id}`: the engine panicked while running it: {message}");
        tracing::warn!(run_id = %run_id, error = %message, "run failed");
        let failure = Failure::new(None, message);
        Some(mark_failed(&*self.inner.store, run_id, &failure, held.fence()).await)
    }

    /// Runs one due run, whose lease `held` is, until it finishes, waits, stops or fails.
    async fn turn(&self, held: &Arc<Held>) -> Option<Turn> {
        let run_id = held.run_id();
        let fence = held.fence();
        let store: Arc<S> = Arc::clone(&self.inner.store);
        let checkpoint = match store.latest(run_id).await {
            Ok(Some(checkpoint)) => checkpoint,
            Ok(None) => return None,
            Err(error) => return Some(unloadable(&*store, run_id, &error, fence).await),
        };
        let driver = Arc::clone(self.inner.workflows.get(checkpoint.workflow.as_str())?);
        // Counts a start of the step the run resumes at, for code that will resume it: a step
        // a crash interrupted runs again as attempt 2.
        let checkpoint = if checkpoint.fingerprint == driver.fingerprint() {
            match store.load_to_resume(run_id, driver.fingerprint()).await {
                Ok(Some(checkpoint)) => checkpoint,
                Ok(None) => return None,
                Err(error) => return Some(unloadable(&*store, run_id, &error, fence).await),
            }
        } else {
            checkpoint
        };
        let store: Arc<dyn DynStore> = store;
        Some(driver.turn(store, checkpoint, Arc::clone(held)).await)
    }

    fn lock_held(&self) -> std::sync::MutexGuard<'_, HashMap<RunId, Arc<Held>>> {
        self.inner
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_in_flight(&self) -> std::sync::MutexGuard<'_, HashSet<RunId>> {
        self.inner
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}
