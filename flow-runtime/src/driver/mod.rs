//! The run driver: the rules of a run, in one place.
//!
//! `#[workflow]` generates, per workflow, a [`Graph`] table and a [`Machine`]: small adapters
//! that decode a step's input from the state, call the user's function and encode its output
//! into the next state. Everything else a run does is here, generic over the workflow:
//!
//! 1. before the first step: every declared tool is in the toolbox, every sink is attached to
//!    a step that exists ([`Machine::check_tools`], [`Graph::deliverable`]); then a new run
//!    (`Workflow::run`, `run_or_resume` of a new id) starts: its start is stored, or without a
//!    store the context is claimed, and a run id or context already used is refused
//!    ([`begin`]);
//! 2. at each [`Position`]: an event step first takes its event from the store's inbox, or
//!    parks the run until one comes or its timeout passes ([`Park::Waiting`]);
//! 3. the step runs (a panic in it fails the run, naming the step); a join's pending branches
//!    run concurrently first, each step of each merged into the state and checkpointed as it
//!    ends (a branch that is a chain then goes on at its next step);
//! 4. its output goes to the sinks attached to it, then a checkpoint stores the next state
//!    with the step's calls, the consumed event and the wake time;
//! 5. a step that returned `Sleep`: without a store the driver sleeps, with one the run parks
//!    ([`Park::Sleeping`]); a store that refuses the checkpoint (run control) stops the run
//!    ([`Outcome::Stopped`]);
//! 6. until the state is finished: [`Outcome::Finished`].
//!
//! Attempts: the first step of a turn has the attempt the store counted (a process died in
//! it), later steps attempt 1. [`drive`] is the loop; [`step_alone`] runs one step the same
//! way for the typestate API (no checkpoint: a `Flow` is not stored; [`begin_alone`] claims the
//! context at its entry step).

mod graph;
mod guard;
mod outcome;
mod park;
mod scope;
#[cfg(test)]
mod tests;
pub(crate) mod trace;

use self::graph::EventWait;
pub use self::graph::{Graph, StepInfo, StepKind};
use self::guard::guard;
pub use self::outcome::{FailedAt, Outcome, Park};
pub(crate) use self::park::ParkSlot;
pub(crate) use self::scope::{Annotate, CallSlot, StepScope};

use crate::error::{RuntimeError, StoreErrorKind};
use crate::state::{Ctx, Wake, Workflow};
use crate::store::DynStore;
use crate::store::{Checkpoint, RunStatus};
use crate::tool::Visit;
use futures_util::{FutureExt, StreamExt, TryStreamExt};
use std::future::Future;
use std::pin::Pin;
use std::time::SystemTime;
use tracing::Instrument as _;

/// A boxed future: a step's or a branch's.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where a run is: what the driver does next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Position {
    /// Step `step` runs next, on visit `visit`.
    Step {
        /// The step's index in the [`Graph`].
        step: usize,
        /// Which visit of the step (loop turns taken).
        visit: Visit,
    },
    /// Join `step` runs next, once its `pending` branches (indices) have run.
    Join {
        /// The join's index.
        step: usize,
        /// Which visit.
        visit: Visit,
        /// The branches that have not run yet.
        pending: Vec<usize>,
    },
    /// The run has finished: [`Machine::finish`] gives its output.
    Finished,
}

impl Position {
    /// Step `step` on visit `visit`.
    #[must_use]
    pub const fn step(step: usize, visit: Visit) -> Self {
        Self::Step { step, visit }
    }
}

/// What the driver tells a step's adapter: which step, attempt and visit, and whether a sink
/// waits for its output (only then does the adapter serialise it).
#[derive(Clone, Copy, Debug)]
pub struct StepRun {
    /// The step's index.
    pub step: usize,
    /// The step's name.
    pub name: &'static str,
    /// Which attempt, from 1.
    pub attempt: u32,
    /// Which visit.
    pub visit: Visit,
    /// Whether a sink is attached to the step's output.
    pub sink: bool,
}

/// What a step's adapter returns: the next state (or a branch's output), the output as JSON
/// when [`StepRun::sink`] asked for it, and the step's `Sleep` wake, if any.
pub struct Stepped<T> {
    next: T,
    json: Option<Result<serde_json::Value, OutError>>,
    wake: Option<Wake>,
}

impl<T> std::fmt::Debug for Stepped<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stepped")
            .field("wake", &self.wake)
            .finish_non_exhaustive()
    }
}

impl<T> Stepped<T> {
    /// A step's output `out`, serialised by `json` only when `run` says a sink waits for it.
    pub fn output(
        run: &StepRun,
        out: T,
        wake: Option<Wake>,
        json: impl FnOnce(&T) -> Option<Result<serde_json::Value, OutError>>,
    ) -> Self {
        let json = if run.sink { json(&out) } else { None };
        Self {
            next: out,
            json,
            wake,
        }
    }

    /// A step's result.
    pub fn new(
        next: T,
        json: Option<Result<serde_json::Value, OutError>>,
        wake: Option<Wake>,
    ) -> Self {
        Self { next, json, wake }
    }

    /// The same result with `next` mapped (a step's output into the next state).
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Stepped<U> {
        Stepped {
            next: f(self.next),
            json: self.json,
            wake: self.wake,
        }
    }
}

/// Why a step's output cannot go to the sinks.
#[derive(Debug)]
pub enum OutError {
    /// Its `Serialize` failed.
    Serialize(serde_json::Error),
    /// It would not read back as it was written (a NaN, nesting too deep): why.
    Unreadable(String),
}

/// The event an event step takes: its stored payload, or `None` when its timeout passed.
#[derive(Debug)]
pub struct EventArg {
    pub(crate) payload: Option<serde_json::Value>,
}

/// What a stored run's checkpoint tells the driver besides its state.
#[derive(Clone, Debug, Default)]
pub struct Resume {
    /// The attempt of the step it resumes at, as the store counted it.
    pub(crate) attempt: Option<u32>,
    /// The step it waited in for an event, and the wait's deadline.
    pub(crate) waiting: Option<(String, SystemTime)>,
    /// The run's trace context (see [`Checkpoint::trace`]).
    pub(crate) trace: Option<String>,
    /// A new run of `Workflow::run` or `run_or_resume`: the driver starts it ([`begin`])
    /// before its first step.
    pub(crate) start: bool,
}

impl Resume {
    /// A new run, which the driver starts ([`begin`]) before its first step.
    pub(crate) fn new_run() -> Self {
        Self {
            start: true,
            ..Self::default()
        }
    }

    /// What `checkpoint` says about the run's next step.
    pub(crate) fn of(checkpoint: &Checkpoint) -> Self {
        Self {
            attempt: Some(checkpoint.attempt),
            waiting: checkpoint.waiting.clone().zip(checkpoint.wake_at),
            trace: checkpoint.trace.clone(),
            start: false,
        }
    }
}

/// The adapters `#[workflow]` generates for a workflow: everything type-specific the driver
/// needs, and nothing else. Not meant to be implemented by hand (but the driver's tests do).
pub trait Machine: Workflow {
    /// The graph table.
    const GRAPH: Graph;
    /// A branch's output on its way to [`Machine::merge`].
    type Branch: Send + 'static;

    /// Every tool a step declares is in the run's toolbox.
    ///
    /// # Errors
    ///
    /// A tool is missing.
    fn check_tools(ctx: &Ctx<Self::Deps>) -> Result<(), RuntimeError> {
        let _ = ctx;
        Ok(())
    }

    /// Where a run in `state` is.
    fn position(state: &Self::State) -> Position;

    /// Runs the step at `state`'s position (a join once its branches have run): decodes its
    /// input, calls the user's function, encodes the output into the next state.
    fn step(
        ctx: &Ctx<Self::Deps>,
        run: StepRun,
        state: Self::State,
        event: Option<EventArg>,
    ) -> BoxFuture<'_, Result<Stepped<Self::State>, Self::Error>>;

    /// Runs branch `run.step` of the join at `state`'s position, on a clone of the fork's
    /// output. The future does not borrow `state`. A workflow without a fan-out keeps this
    /// default, which the driver never calls (no step of its graph is a join).
    fn branch<'a>(
        ctx: &'a Ctx<Self::Deps>,
        run: StepRun,
        state: &Self::State,
    ) -> BoxFuture<'a, Result<Stepped<Self::Branch>, Self::Error>> {
        let _ = (ctx, state);
        let graph = Self::GRAPH;
        let error = invalid(
            &graph,
            graph.steps.get(run.step),
            "the run's state is not at this step",
        );
        Box::pin(std::future::ready(Err(error.into())))
    }

    /// Puts a branch's output into its slot of the join's state; drops the fork's output once
    /// every slot is filled. A workflow without a fan-out keeps this default.
    ///
    /// # Errors
    ///
    /// The state is not at that branch's join.
    fn merge(state: &mut Self::State, out: Self::Branch) -> Result<(), RuntimeError> {
        let _ = (state, out);
        Err(invalid(
            &Self::GRAPH,
            None,
            "a branch's output does not fit the run's state",
        ))
    }

    /// The output of a finished run, or the state back.
    ///
    /// # Errors
    ///
    /// The run has not finished.
    fn finish(state: Self::State) -> Result<Self::Output, Self::State>;
}

/// Runs a whole run (or what is left of it) from `state`: see the module's documentation. A
/// panic anywhere in it, the driver's own code included, fails the run with
/// [`RuntimeError::Panicked`] instead of unwinding.
///
/// The turn runs in a `run {workflow}` span (see `driver/trace.rs`), which continues the run's stored
/// trace context, if it has one, and whose own context is stored with the run otherwise.
pub fn drive<W: Machine>(
    ctx: &Ctx<W::Deps>,
    state: W::State,
    resume: Resume,
) -> impl Future<Output = Outcome<W::Output, W::Error>> + Send + '_ {
    let (span, trace) = trace::run_span(W::NAME, || ctx.run_id(), resume.trace.as_deref());
    let turn = drive_inner::<W>(ctx, state, resume, trace);
    guard(ctx, W::NAME, None, span.clone(), turn).map(move |caught| {
        let outcome = caught.unwrap_or_else(|panicked| Outcome::Failed(panicked.into()));
        trace::ended(&span, outcome_name::<W>(&outcome));
        if let Outcome::Failed(error) = &outcome {
            trace::failed(&span, error);
        }
        outcome
    })
}

/// How a turn ended, as its span records it: [`Outcome::name`], or `refused` for a new run
/// that never began (its id is taken, [`RuntimeError::AlreadyStarted`], or its context has run
/// already, [`RuntimeError::CtxReused`]). Such a turn ran nothing, so it is not a failure of the
/// run its id names, which may be running fine elsewhere.
fn outcome_name<W: Workflow>(outcome: &Outcome<W::Output, W::Error>) -> &'static str {
    match outcome {
        Outcome::Failed(error)
            if matches!(
                W::failed_at(error),
                FailedAt::Runtime(
                    RuntimeError::AlreadyStarted { .. } | RuntimeError::CtxReused { .. }
                )
            ) =>
        {
            "refused"
        }
        other => other.name(),
    }
}

/// The start of a run through [`Workflow::run`], before its first step: with a store, the run's
/// start is stored ([`Checkpoint::new_run`]: only if the store has no run with its id, in one
/// step with that check), so that a run id already stored is never run again from its entry
/// (its journal would hand the new run the old run's results), and a run whose process dies in
/// its first step is not lost. Without a store, the context keeps that it has started a run,
/// and refuses a second ([`RuntimeError::CtxReused`]). Refused, nothing runs and nothing is
/// written.
pub(crate) fn begin<'a, W: Workflow + ?Sized>(
    ctx: &'a Ctx<W::Deps>,
    state: &W::State,
    trace: Option<&str>,
) -> impl Future<Output = Result<(), RuntimeError>> + Send + use<'a, W> {
    let start = |source| RuntimeError::Start {
        run_id: ctx.run_id().clone(),
        workflow: W::NAME,
        source,
    };
    // Serialised before the first await: the future does not hold `&state`, which would make
    // it `Send` only for a `Sync` state.
    let prepared = ctx.store().map(|store| {
        start_checkpoint::<W>(ctx.run_id(), state)
            .map(|checkpoint| (store, checkpoint.with_trace(trace.map(str::to_owned))))
            .map_err(start)
    });
    async move {
        let Some((store, checkpoint)) = prepared.transpose()? else {
            return claim(ctx, W::NAME);
        };
        match store.save_boxed(checkpoint).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == StoreErrorKind::Exists => Err(RuntimeError::AlreadyStarted {
                run_id: ctx.run_id().clone(),
                workflow: W::NAME,
            }),
            Err(e) => Err(start(e)),
        }
    }
}

/// Claims a context without a store for its one run: [`RuntimeError::CtxReused`] when a run
/// (of workflow `workflow` or another) has started on it, or on a clone of it, already.
fn claim<D>(ctx: &Ctx<D>, workflow: &'static str) -> Result<(), RuntimeError> {
    if ctx.claim_start() {
        Ok(())
    } else {
        Err(RuntimeError::CtxReused {
            run_id: ctx.run_id().clone(),
            workflow,
        })
    }
}

/// The checkpoint that starts run `run_id` at `state`; its entry step counts as started with
/// it. A state that would not read back is refused as [`StoreErrorKind::Unstorable`].
fn start_checkpoint<W: Workflow + ?Sized>(
    run_id: &crate::state::RunId,
    state: &W::State,
) -> Result<Checkpoint, crate::error::StoreError> {
    use crate::error::StoreError;
    let json = serde_json::to_value(state).map_err(|source| {
        StoreError::with_source("the input does not serialise", source)
            .kind_of(StoreErrorKind::Unstorable)
    })?;
    if let Some(reason) = crate::state::unreadable(state, &json) {
        return Err(StoreError::of_kind(
            StoreErrorKind::Unstorable,
            format!("the input would not read back: {reason}"),
        ));
    }
    Ok(
        Checkpoint::new(run_id.clone(), W::NAME, W::FINGERPRINT, "", false, json)
            .with_attempt(1)
            .starting_a_run(),
    )
}

/// Records the workflow in the store of a run started (or resumed from a state) by
/// `Workflow::run`, `resume` or `advance`, for tools that read the store; runs resumed by an
/// engine (which records its workflows when it starts) or `run_or_resume` from a stored
/// checkpoint skip it. A store that cannot record it does not stop the run, which needs only
/// its checkpoints: it is logged.
async fn register<W: Workflow>(ctx: &Ctx<W::Deps>) {
    if let Some(store) = ctx.store()
        && let Err(error) = store
            .register_workflow_boxed(crate::store::WorkflowInfo::of::<W>())
            .await
    {
        tracing::warn!(workflow = W::NAME, %error, "could not record the workflow in the store");
    }
}

/// Ends `drive` with what a runtime error means: a refused checkpoint stops the run.
fn halt<O, E: From<RuntimeError>>(error: RuntimeError) -> Outcome<O, E> {
    match error {
        RuntimeError::Stopped { step, status, .. } => Outcome::Stopped { step, status },
        error => Outcome::Failed(error.into()),
    }
}

/// Unwraps a `Result<T, RuntimeError>` inside `drive_inner`.
macro_rules! tri {
    ($e:expr) => {
        match $e {
            Ok(value) => value,
            Err(error) => return halt(error),
        }
    };
}

#[allow(clippy::too_many_lines, reason = "the loop reads best as one piece")]
async fn drive_inner<W: Machine>(
    ctx: &Ctx<W::Deps>,
    mut state: W::State,
    resume: Resume,
    trace: Option<String>,
) -> Outcome<W::Output, W::Error> {
    let trace = trace.as_deref();
    let graph = &W::GRAPH;
    tri!(W::check_tools(ctx));
    tri!(check_outputs(ctx, graph));
    if resume.start
        && let Err(error) = begin::<W>(ctx, &state, trace).await
    {
        return Outcome::Failed(error.into());
    }
    if resume.attempt.is_none() {
        register::<W>(ctx).await;
    }
    let mut attempt = ctx.first_attempt().max(resume.attempt.unwrap_or(0));
    let mut waiting = resume.waiting;
    loop {
        let (step, visit) = match W::position(&state) {
            Position::Finished => {
                return match W::finish(state) {
                    Ok(output) => Outcome::Finished(output),
                    Err(_) => halt(invalid(
                        graph,
                        graph.steps.first(),
                        "finished without an output",
                    )),
                };
            }
            Position::Step { step, visit } => (step, visit),
            Position::Join {
                step,
                visit,
                pending,
            } => {
                if !pending.is_empty() {
                    // Boxed like the other rare parts: awaited inline, its future (the
                    // branches' stream, a checkpoint) would make the whole run's larger.
                    if let Err(outcome) = Box::pin(run_branches::<W>(
                        ctx, &mut state, &pending, attempt, visit, trace,
                    ))
                    .await
                    {
                        return outcome;
                    }
                    // The branches were the first steps of this turn; the join is not.
                    attempt = 1;
                }
                (step, visit)
            }
        };
        let Some(info) = graph.step(step) else {
            return halt(invalid(
                graph,
                None,
                "the state names a step the graph lacks",
            ));
        };
        let ran = run_one(
            ctx,
            graph,
            step,
            attempt,
            visit,
            Runner::Drive(waiting.as_ref()),
            |run, event| W::step(ctx, run, state, event),
        )
        .await;
        let ran = match ran {
            Ok(ran) => ran,
            Err(Halt::Failed(error)) => return Outcome::Failed(error),
            Err(Halt::Parked(park)) => return Outcome::Parked(park),
        };
        state = ran.next;
        let wake_at = match ran.wake {
            Some(until) => Box::pin(sleep_or_park(ctx, until)).await,
            None => None,
        };
        if ctx.store().is_some() {
            let finished = matches!(W::position(&state), Position::Finished);
            let stored = checkpoint(
                ctx,
                graph,
                info.name,
                finished,
                &state,
                wake_at,
                ran.consumed,
                trace,
            );
            tri!(Box::pin(stored).await);
        } else {
            // A run without a store keeps no step's calls twice.
            ctx.recorder().take(info.name);
        }
        if let Some(until) = wake_at {
            return Outcome::Parked(Park::Sleeping {
                step: info.name,
                until,
            });
        }
        waiting = None;
        attempt = 1;
    }
}

/// Runs a join's pending branches concurrently; merges and checkpoints each step of each as
/// it ends. A branch that is a chain of steps goes on at its next step (the state's position
/// says which) as soon as its step before is checkpointed, whatever the other branches do.
/// The first failure drops the others.
async fn run_branches<W: Machine>(
    ctx: &Ctx<W::Deps>,
    state: &mut W::State,
    pending: &[usize],
    attempt: u32,
    visit: Visit,
    trace: Option<&str>,
) -> Result<(), Outcome<W::Output, W::Error>> {
    let graph = &W::GRAPH;
    let mut running = futures_util::stream::FuturesUnordered::new();
    // Every step started in this turn: each runs once, so a state whose position does not
    // move on ends at the join's check instead of running a step again.
    let mut started: Vec<usize> = Vec::with_capacity(pending.len());
    let mut pending = pending.to_vec();
    // The branches the run resumed in count the stored attempt; the steps after them are new.
    let mut attempt = attempt;
    loop {
        for branch in pending.drain(..) {
            if started.contains(&branch) {
                continue;
            }
            started.push(branch);
            let Some(info) = graph.step(branch) else {
                return Err(halt(invalid(
                    graph,
                    None,
                    "a join names a branch the graph lacks",
                )));
            };
            let run = StepRun {
                step: branch,
                name: info.name,
                attempt,
                visit,
                sink: sink(ctx, info),
            };
            let span = trace::step_span(info.name, attempt, visit);
            let future = guard(
                ctx,
                graph.workflow,
                Some(info.name),
                span.clone(),
                W::branch(ctx, run, state),
            );
            running.push(async move { (info, span, future.await) });
        }
        attempt = 1;
        let parks = ctx.store().is_some();
        let next = match ctx.park_slot().race(parks, running.next()).await {
            Ok(next) => next,
            Err(park) => return Err(Outcome::Parked(park)),
        };
        let Some((info, span, result)) = next else {
            return Ok(());
        };
        let stepped = match result {
            Ok(Ok(stepped)) => stepped,
            Ok(Err(error)) => {
                trace::failed(&span, &error);
                return Err(Outcome::Failed(error));
            }
            Err(error) => {
                trace::failed(&span, &error);
                return Err(halt(error));
            }
        };
        if let Some(json) = stepped.json {
            Box::pin(deliver(ctx, graph.workflow, info, visit, json))
                .instrument(span.clone())
                .await
                .map_err(|error| {
                    trace::failed(&span, &error);
                    halt(error)
                })?;
        }
        drop(span);
        W::merge(state, stepped.next).map_err(halt)?;
        checkpoint(ctx, graph, info.name, false, &*state, None, None, trace)
            .await
            .map_err(halt)?;
        // The next step of this branch, if it is a chain.
        if let Position::Join { pending: now, .. } = W::position(state) {
            pending = now;
        }
    }
}

/// Why a step did not give a next state.
enum Halt<E> {
    Failed(E),
    Parked(Park),
}

/// A step that ran, its output delivered.
struct Ran<T> {
    next: T,
    wake: Option<SystemTime>,
    consumed: Option<u64>,
}

/// Who runs a step through [`run_one`].
#[derive(Clone, Copy)]
enum Runner<'a> {
    /// [`drive`], whose run may be waiting for the step's event until a stored deadline; it
    /// parks or sleeps after the step itself.
    Drive(Option<&'a (String, SystemTime)>),
    /// [`step_alone`]: no stored wait; a step that returned `Sleep` sleeps in `run_one`.
    Alone,
}

/// Runs step `step` through `call` (its adapter): its event first, then the step under
/// [`guard`], then its output to the sinks.
async fn run_one<D, T, E, F, Fut>(
    ctx: &Ctx<D>,
    graph: &Graph,
    step: usize,
    attempt: u32,
    visit: Visit,
    runner: Runner<'_>,
    call: F,
) -> Result<Ran<T>, Halt<E>>
where
    E: From<RuntimeError> + std::error::Error,
    F: FnOnce(StepRun, Option<EventArg>) -> Fut,
    Fut: Future<Output = Result<Stepped<T>, E>>,
{
    let Some(info) = graph.step(step) else {
        return Err(Halt::Failed(
            invalid(graph, None, "the state names a step the graph lacks").into(),
        ));
    };
    // Rare parts are boxed: awaited inline, their futures would make every step's larger.
    let (event, consumed) = match &info.wait {
        Some(wait) => {
            let waiting = match runner {
                Runner::Drive(waiting) => waiting,
                Runner::Alone => None,
            };
            match Box::pin(await_event(ctx, graph, info, wait, waiting)).await {
                Ok(Ok((arg, consumed))) => (Some(arg), consumed),
                Ok(Err(park)) => return Err(Halt::Parked(park)),
                Err(error) => return Err(Halt::Failed(error.into())),
            }
        }
        None => (None, None),
    };
    let run = StepRun {
        step,
        name: info.name,
        attempt,
        visit,
        sink: sink(ctx, info),
    };
    let span = trace::step_span(info.name, attempt, visit);
    let stepped = match ctx
        .park_slot()
        .race(
            ctx.store().is_some(),
            guard(
                ctx,
                graph.workflow,
                Some(info.name),
                span.clone(),
                call(run, event),
            ),
        )
        .await
    {
        Ok(Ok(Ok(stepped))) => stepped,
        Ok(Ok(Err(error))) => {
            trace::failed(&span, &error);
            return Err(Halt::Failed(error));
        }
        Ok(Err(error)) => {
            trace::failed(&span, &error);
            return Err(Halt::Failed(error.into()));
        }
        Err(park) => return Err(Halt::Parked(park)),
    };
    if let Some(json) = stepped.json {
        Box::pin(deliver(ctx, graph.workflow, info, visit, json))
            .instrument(span.clone())
            .await
            .map_err(|error| {
                trace::failed(&span, &error);
                Halt::Failed(error.into())
            })?;
    }
    let mut wake = stepped.wake.map(|wake| wake.at(crate::state::now()));
    if let Runner::Alone = runner
        && let Some(until) = wake.take()
        && let Ok(wait) = until.duration_since(crate::state::now())
    {
        // Boxed: rare, and a timer inline would make every step's future larger.
        Box::pin(tokio::time::sleep(wait)).await;
    }
    Ok(Ran {
        next: stepped.next,
        wake,
        consumed,
    })
}

/// The start of a run through the typestate `Flow`, when it runs its entry step for the first
/// time: without a store, the context keeps that it has started a run and refuses a second
/// ([`RuntimeError::CtxReused`]), as [`begin`] does for `Workflow::run`. With a store the
/// typestate `Flow` stores nothing, so there is no stored start to refuse it.
///
/// # Errors
///
/// [`RuntimeError::CtxReused`].
pub(crate) fn begin_alone<D>(
    ctx: &Ctx<D>,
    graph: &Graph,
    step: usize,
    visit: Visit,
) -> Result<(), RuntimeError> {
    if step != graph.entry || visit != Visit::FIRST || ctx.store().is_some() {
        return Ok(());
    }
    claim(ctx, graph.workflow)
}

/// Runs one step of a typestate `Flow` the way [`drive`] runs it (its event, the step under
/// its panic guard, its output to the sinks), without a checkpoint: a step that returned `Sleep`
/// sleeps here, and one whose event has not come fails with [`RuntimeError::Parked`].
///
/// # Errors
///
/// The step's, or the runtime's.
pub fn step_alone<'c, D, T, E, F, Fut>(
    ctx: &'c Ctx<D>,
    graph: &'c Graph,
    step: usize,
    attempt: u32,
    visit: Visit,
    call: F,
) -> impl Future<Output = Result<T, E>>
where
    E: From<RuntimeError> + std::error::Error,
    F: FnOnce(StepRun, Option<EventArg>) -> Fut,
    Fut: Future<Output = Result<Stepped<T>, E>>,
{
    // A plain function over `run_one`'s future, not an `async fn` around it: that would keep
    // its arguments twice in every typestate step's box.
    run_one(ctx, graph, step, attempt, visit, Runner::Alone, call).map(move |ran| match ran {
        Ok(ran) => Ok(ran.next),
        Err(Halt::Failed(error)) => Err(error),
        Err(Halt::Parked(park)) => {
            Err(park.into_error(ctx.run_id().clone(), graph.workflow).into())
        }
    })
}

/// Whether a sink waits for `info`'s output.
fn sink<D>(ctx: &Ctx<D>, info: &StepInfo) -> bool {
    info.deliverable
        && ctx
            .outputs()
            .is_some_and(|outputs| outputs.is_attached(info.name, info.exit))
}

/// A state the driver cannot continue from.
fn invalid(graph: &Graph, step: Option<&StepInfo>, reason: &'static str) -> RuntimeError {
    RuntimeError::InvalidState {
        workflow: graph.workflow,
        step: step.map_or("", |s| s.name),
        reason,
    }
}

/// After a step returned `Sleep` until `until`: without a store, sleeps here and returns
/// `None`; with one, returns the time the run parks until (`None` when it is already due).
async fn sleep_or_park<D>(ctx: &Ctx<D>, until: SystemTime) -> Option<SystemTime> {
    let now = crate::state::now();
    if ctx.store().is_none() {
        if let Ok(wait) = until.duration_since(now) {
            tokio::time::sleep(wait).await;
        }
        return None;
    }
    (until > now).then_some(until)
}

/// Refuses sinks attached to steps the workflow does not have (or to its routing steps).
fn check_outputs<D>(ctx: &Ctx<D>, graph: &Graph) -> Result<(), RuntimeError> {
    let Some(outputs) = ctx.outputs() else {
        return Ok(());
    };
    let valid = graph.deliverable();
    let unknown = outputs.unknown_steps(&valid);
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(RuntimeError::UnknownOutputStep {
            workflow: graph.workflow,
            steps: unknown,
            valid,
        })
    }
}

/// Delivers the output of visit `visit` of a step to the sinks attached to it (and to the
/// exit's), recording every delivery with the step's calls. Called only when the adapter
/// serialised the output, which it does only when a sink is attached.
async fn deliver<D>(
    ctx: &Ctx<D>,
    workflow: &'static str,
    info: &StepInfo,
    visit: Visit,
    json: Result<serde_json::Value, OutError>,
) -> Result<(), RuntimeError> {
    let Some(outputs) = ctx.outputs() else {
        return Ok(());
    };
    let step = info.name;
    let value = match json {
        Ok(value) => value,
        Err(OutError::Unreadable(reason)) => {
            return Err(RuntimeError::Unstorable {
                run_id: ctx.run_id().clone(),
                workflow,
                step,
                reason,
            });
        }
        Err(OutError::Serialize(source)) => {
            return Err(RuntimeError::Output(
                crate::output::OutputError::Serialize {
                    run_id: ctx.run_id().clone(),
                    workflow: workflow.to_owned(),
                    step: step.to_owned(),
                    source,
                },
            ));
        }
    };
    let mut records = Vec::new();
    // The caller runs this inside the step's span.
    let result = guard(
        ctx,
        workflow,
        Some(step),
        tracing::Span::none(),
        outputs.deliver(
            ctx.run_id(),
            workflow,
            step,
            visit,
            info.exit,
            &value,
            &mut records,
        ),
    )
    .await;
    ctx.recorder().extend(records);
    result?.map_err(RuntimeError::Output)
}

/// Stores `state` after `step`, when the context has a store, with the step's calls, the
/// event it consumed and the time the run sleeps until. Without a store, only drops the
/// step's calls from the recorder's pending list.
///
/// # Errors
///
/// The state could not be serialised, or would not read back ([`RuntimeError::Unstorable`]:
/// nothing is stored), the store failed, or the store refused the checkpoint because run
/// control paused or cancelled the run ([`RuntimeError::Stopped`]).
#[allow(
    clippy::too_many_arguments,
    reason = "what one checkpoint holds, each from the driver's loop"
)]
fn checkpoint<'a, D, S: serde::Serialize>(
    ctx: &'a Ctx<D>,
    graph: &Graph,
    step: &'static str,
    finished: bool,
    state: &S,
    wake_at: Option<SystemTime>,
    consumed: Option<u64>,
    trace: Option<&str>,
) -> impl Future<Output = Result<(), RuntimeError>> + Send + 'a {
    let workflow = graph.workflow;
    // Taken with or without a store, so that a run without one does not keep them twice.
    let calls = ctx.recorder().take(step);
    // Serialised before the first await: the future does not hold the state.
    let prepared = ctx.store().map(|store| {
        let run_id = ctx.run_id().clone();
        let json = serde_json::to_value(state).map_err(|source| RuntimeError::Serialize {
            run_id: run_id.clone(),
            workflow,
            step,
            source,
        })?;
        // What the store acknowledges, it can read back: a state that would not round-trip
        // is refused here, before the store sees it.
        if let Some(reason) = crate::state::unreadable(state, &json) {
            return Err(RuntimeError::Unstorable {
                run_id: run_id.clone(),
                workflow,
                step,
                reason,
            });
        }
        let checkpoint = Checkpoint {
            run_id: run_id.clone(),
            workflow: workflow.to_owned(),
            fingerprint: graph.fingerprint.to_owned(),
            step: step.to_owned(),
            finished,
            state: json,
            calls,
            wake_at,
            waiting: None,
            consumed_event: consumed,
            // The run goes straight on into its next step, which counts as started with
            // this commit; one that parks, or has finished, starts nothing.
            attempt: u32::from(!finished && wake_at.is_none()),
            trace: trace.map(str::to_owned),
            fence: None,
            new_run: false,
        };
        Ok((store, checkpoint, run_id))
    });
    async move {
        let Some(prepared) = prepared else {
            return Ok(());
        };
        let (store, checkpoint, run_id) = prepared?;
        store
            .save_boxed(checkpoint)
            .await
            .map_err(|source| match source.kind() {
                // Run control stopped the run: the store refused the checkpoint, so the run
                // stops before its next step.
                StoreErrorKind::Paused | StoreErrorKind::Cancelled | StoreErrorKind::Failed => {
                    RuntimeError::Stopped {
                        run_id: run_id.clone(),
                        workflow,
                        step: Some(step),
                        status: match source.kind() {
                            StoreErrorKind::Cancelled => RunStatus::Cancelled,
                            StoreErrorKind::Failed => RunStatus::Failed,
                            _ => RunStatus::Paused,
                        },
                    }
                }
                _ => RuntimeError::Checkpoint {
                    run_id: run_id.clone(),
                    workflow,
                    step,
                    source,
                },
            })
    }
}

/// Before a step that waits for an event: the oldest such event in the run's inbox (and its
/// id, consumed with the step's checkpoint), or a timed-out wait once the wait (which began
/// when the run first reached the step) has lasted its timeout; otherwise the run parks.
async fn await_event<D>(
    ctx: &Ctx<D>,
    graph: &Graph,
    info: &StepInfo,
    wait: &EventWait,
    waiting: Option<&(String, SystemTime)>,
) -> Result<Result<(EventArg, Option<u64>), Park>, RuntimeError> {
    let (workflow, step, event) = (graph.workflow, info.name, wait.event);
    let run_id = ctx.run_id();
    let Some(store) = ctx.store() else {
        return Err(RuntimeError::NoInbox {
            run_id: run_id.clone(),
            workflow,
            step,
            event,
        });
    };
    let failed = |source| RuntimeError::Wait {
        run_id: run_id.clone(),
        workflow,
        step,
        source,
    };
    if let Some(stored) = store
        .next_event_boxed(run_id, event)
        .await
        .map_err(failed)?
    {
        let arg = EventArg {
            payload: Some(stored.payload),
        };
        return Ok(Ok((arg, Some(stored.id))));
    }
    let now = crate::state::now();
    let until = match waiting {
        Some((waiting, until)) if waiting == step => {
            if now >= *until {
                return Ok(Ok((EventArg { payload: None }, None)));
            }
            *until
        }
        _ => crate::state::later(now, (wait.timeout)()),
    };
    // Recorded again when the run resumed in its wait: a wait stored before the store knew
    // its event is woken by an event of any name, and must be due at its deadline again,
    // not at once.
    store
        .wait_boxed(run_id, step, event, until, None)
        .await
        .map_err(failed)?;
    Ok(Err(Park::Waiting { step, event, until }))
}

/// A stored run, ready to drive, or why not.
pub(crate) enum Loaded<S> {
    /// Its state and what the checkpoint says about its next step.
    Ready(S, Resume),
    /// It sleeps and is not due.
    Parked(Park),
}

/// Opens a stored run of `W` from its latest `checkpoint` (loaded with
/// `load_to_resume`): refuses one of another workflow or fingerprint (marking it
/// incompatible in a store with run control), parks one that sleeps and is not due, and
/// decodes its state. `run_or_resume` and the [`Engine`](crate::state::Engine) both go through
/// here.
///
/// # Errors
///
/// [`RuntimeError::Incompatible`], [`RuntimeError::CorruptState`].
pub(crate) async fn load<W: Workflow + ?Sized>(
    store: &dyn DynStore,
    checkpoint: Checkpoint,
) -> Result<Loaded<W::State>, RuntimeError> {
    let run_id = &checkpoint.run_id;
    if checkpoint.workflow != W::NAME || checkpoint.fingerprint != W::FINGERPRINT {
        if checkpoint.workflow == W::NAME {
            // The refusal is the answer; a failure to mark the run only means operators do
            // not find it by its status, so it is logged, not returned.
            if let Err(error) = store.mark_incompatible_boxed(run_id, W::FINGERPRINT).await {
                tracing::warn!(run_id = %run_id, workflow = W::NAME, %error, "could not mark the run incompatible");
            }
        }
        return Err(RuntimeError::Incompatible {
            run_id: run_id.clone(),
            workflow: W::NAME,
            fingerprint: W::FINGERPRINT,
            stored_workflow: checkpoint.workflow,
            stored_fingerprint: checkpoint.fingerprint,
        });
    }
    // A run asleep after a `Sleep` step is not due before its time.
    if let (Some(until), None) = (checkpoint.wake_at, &checkpoint.waiting)
        && until > crate::state::now()
        && !checkpoint.finished
    {
        let step = W::STEPS
            .iter()
            .find(|s| **s == checkpoint.step)
            .copied()
            .unwrap_or_default();
        return Ok(Loaded::Parked(Park::Sleeping { step, until }));
    }
    let resume = Resume::of(&checkpoint);
    let state =
        serde_json::from_value(checkpoint.state).map_err(|source| RuntimeError::CorruptState {
            run_id: run_id.clone(),
            workflow: W::NAME,
            source,
        })?;
    Ok(Loaded::Ready(state, resume))
}

/// Runs `f` on every item with its index, at most `limit` at once, and collects the results
/// in the items' order (a `workers` step). A worker that finishes frees its slot at once,
/// whatever the others do. The first error stops the rest.
///
/// # Errors
///
/// The first error `f` returns.
pub async fn map_ordered<T, U, E, F, Fut>(
    items: Vec<T>,
    limit: usize,
    mut f: F,
) -> Result<Vec<U>, E>
where
    F: FnMut(usize, T) -> Fut,
    Fut: Future<Output = Result<U, E>>,
{
    let mut slots: Vec<Option<U>> = std::iter::repeat_with(|| None).take(items.len()).collect();
    let mut running = futures_util::stream::iter(items.into_iter().enumerate())
        .map(|(index, item)| {
            let work = f(index, item);
            async move { work.await.map(|out| (index, out)) }
        })
        .buffer_unordered(limit.max(1));
    while let Some((index, out)) = running.try_next().await? {
        slots[index] = Some(out);
    }
    // Every index was filled exactly once: the stream ended without an error.
    Ok(slots.into_iter().flatten().collect())
}
