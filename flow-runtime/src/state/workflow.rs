use crate::driver::{FailedAt, Loaded, Outcome, Resume};
use crate::error::RuntimeError;
use crate::state::Ctx;
use futures_util::FutureExt;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::future::Future;

/// A workflow an engine can drive without knowing its steps. `#[workflow]` implements it for
/// the generated `Workflow` type of each workflow module.
///
/// ```
/// use flow_runtime::prelude::*;
///
/// /// Runs any workflow to its output.
/// async fn run_any<W: Workflow<Deps = ()>>(input: W::Input) -> Result<W::Output, W::Error> {
///     W::run(&Ctx::new(()), input).await
/// }
///
/// #[workflow]
/// pub mod double {
///     #[step(entry, exit)]
///     pub async fn double(n: u32) -> Result<u32, std::num::TryFromIntError> {
///         u32::try_from(u64::from(n) * 2)
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// assert_eq!(run_any::<double::Workflow>(21).await.unwrap(), 42);
/// # }
/// ```
pub trait Workflow: Send + Sync + 'static {
    /// The workflow's name: its module's name.
    const NAME: &'static str;
    /// A hash of the graph and every step's signature. Code with a different fingerprint may
    /// not understand a stored state, so it must not resume it blindly.
    const FINGERPRINT: &'static str;
    /// The graph as a Mermaid `flowchart`.
    const MERMAID: &'static str;
    /// The step names, in declaration order.
    const STEPS: &'static [&'static str];

    /// What steps receive through `&Ctx<Deps>`.
    type Deps: Send + Sync + 'static;
    /// The entry step's input.
    type Input: Send + 'static;
    /// The exit steps' output.
    type Output: Send + 'static;
    /// The generated `FlowError`: which step failed, with its own error.
    type Error: std::error::Error + From<RuntimeError> + Send + Sync + 'static;
    /// The generated `FlowState`: where a run is, plus the data it carries.
    type State: Serialize + DeserializeOwned + Send + 'static;

    /// The state of a new run, before its entry step.
    fn start(input: Self::Input) -> Self::State;

    /// Starts a new run, the context's, and runs the whole graph to its output, parallel
    /// branches concurrently, storing a checkpoint after every step when `ctx` has a store.
    ///
    /// A context is one run (see [`Ctx`]): build one for each run; one that is not given an id
    /// draws a new one.
    ///
    /// With a store, the run's start is stored first, and only if the store has no run with
    /// this id: a run id already stored, by this context, another or another process, is
    /// refused with [`RuntimeError::AlreadyStarted`], running nothing and leaving the stored run
    /// as it is (continue a stored run with [`run_or_resume`](Workflow::run_or_resume)). A
    /// store that fails to store the start gives [`RuntimeError::Start`].
    fn run(
        ctx: &Ctx<Self::Deps>,
        input: Self::Input,
    ) -> impl Future<Output = Result<Self::Output, Self::Error>> + Send {
        Self::drive(ctx, Self::start(input), Resume::new_run())
            .map(|outcome| outcome.into_result_with(|| ctx.run_id(), Self::NAME))
    }

    /// Continues a run from `state` (for example the latest checkpoint) to its output. A run
    /// that parks or is stopped returns [`RuntimeError::Parked`] or [`RuntimeError::Stopped`]:
    /// [`advance`](Workflow::advance) returns them as values.
    fn resume(
        ctx: &Ctx<Self::Deps>,
        state: Self::State,
    ) -> impl Future<Output = Result<Self::Output, Self::Error>> + Send {
        Self::advance(ctx, state)
            .map(|outcome| outcome.into_result_with(|| ctx.run_id(), Self::NAME))
    }

    /// Drives a run from `state` until it finishes, fails, parks (sleeping, or waiting for an
    /// event, with a store) or is stopped by run control: how the turn ended, as a value.
    fn advance(
        ctx: &Ctx<Self::Deps>,
        state: Self::State,
    ) -> impl Future<Output = Outcome<Self::Output, Self::Error>> + Send {
        Self::drive(ctx, state, Resume::default())
    }

    /// The driver over this workflow's generated adapters. Not meant to be called: use
    /// [`advance`](Workflow::advance).
    #[doc(hidden)]
    fn drive(
        ctx: &Ctx<Self::Deps>,
        state: Self::State,
        resume: Resume,
    ) -> impl Future<Output = Outcome<Self::Output, Self::Error>> + Send;

    /// The output of a finished run's `state`, or the state back when the run has not
    /// finished. Not meant to be called: use [`Engine::outcome`](crate::state::Engine::outcome).
    #[doc(hidden)]
    fn output(state: Self::State) -> Result<Self::Output, Self::State>;

    /// Runs `input` under the context's run id, unless the context's store already has that
    /// run: then it continues the stored run from its latest checkpoint (and returns its output
    /// at once if it had finished) instead of starting a second one. The run id is the
    /// idempotency key; `input` is used only for a new run.
    ///
    /// A new run starts as [`run`](Workflow::run) starts one: its start is stored first, and
    /// only if the store still has no run with this id. Of two calls at once with one new id,
    /// one runs it and the other gets [`RuntimeError::AlreadyStarted`]; a process that dies in
    /// the first step leaves the start, from which the next call continues.
    ///
    /// It refuses, running nothing and leaving the stored state as it is:
    ///
    /// * a run that [run control](crate::store::RunControl) has paused or cancelled, with
    ///   [`RuntimeError::Stopped`] (`step: None`); once a paused run is unpaused, this
    ///   continues it from its latest checkpoint;
    /// * a stored run of another workflow, or one stored with another [`FINGERPRINT`] (the
    ///   graph or a step signature changed), with [`RuntimeError::Incompatible`]. A run of this
    ///   workflow stored with another fingerprint is also marked
    ///   [`RunStatus::Incompatible`](crate::store::RunStatus::Incompatible) in a store with run
    ///   control (see [`Store::mark_incompatible`](crate::store::Store::mark_incompatible)).
    ///
    /// Without a store this is [`run`]. A panic while loading the run (in a store, in a
    /// `Deserialize` impl) fails it with [`RuntimeError::Panicked`], like one in a step.
    ///
    /// [`FINGERPRINT`]: Workflow::FINGERPRINT
    /// [`run`]: Workflow::run
    fn run_or_resume(
        ctx: &Ctx<Self::Deps>,
        input: Self::Input,
    ) -> impl Future<Output = Result<Self::Output, Self::Error>> + Send {
        Self::advance_or_start(ctx, input)
            .map(|outcome| outcome.into_result_with(|| ctx.run_id(), Self::NAME))
    }

    /// [`run_or_resume`](Workflow::run_or_resume), with how the turn ended as a value (see
    /// [`advance`](Workflow::advance)).
    fn advance_or_start(
        ctx: &Ctx<Self::Deps>,
        input: Self::Input,
    ) -> impl Future<Output = Outcome<Self::Output, Self::Error>> + Send {
        let run = async move {
            let Some(store) = ctx.store() else {
                // Nothing to continue: a new run, once per context.
                return Self::drive(ctx, Self::start(input), Resume::new_run()).await;
            };
            let run_id = ctx.run_id();
            let load = |source| {
                Outcome::Failed(
                    RuntimeError::Load {
                        run_id: run_id.clone(),
                        workflow: Self::NAME,
                        source,
                    }
                    .into(),
                )
            };
            let info = match store.status_boxed(run_id).await {
                Ok(info) => info,
                Err(source) => return load(source),
            };
            if let Some(info) = info.filter(|info| info.status.is_stopped()) {
                return Outcome::Stopped {
                    step: None,
                    status: info.status,
                };
            }
            // Counts a start of the step the run resumes at (when it is due): a step a crash
            // interrupted runs again as attempt 2.
            let checkpoint = match store.load_to_resume_boxed(run_id, Self::FINGERPRINT).await {
                Ok(Some(checkpoint)) => checkpoint,
                // A new run: its start is stored first, as `run` does, so that of two calls at
                // once with one id only one runs it, and a crash in its first step leaves it to
                // resume.
                Ok(None) => {
                    return Self::drive(ctx, Self::start(input), Resume::new_run()).await;
                }
                Err(source) => return load(source),
            };
            match crate::driver::load::<Self>(store, checkpoint).await {
                Ok(Loaded::Ready(state, resume)) => Self::drive(ctx, state, resume).await,
                Ok(Loaded::Parked(park)) => Outcome::Parked(park),
                Err(error) => Outcome::Failed(error.into()),
            }
        };
        // Mapped, not awaited in another `async` block: that would hold `run` twice.
        crate::error::catch_panic(run).map(|caught| {
            caught.unwrap_or_else(|message| {
                Outcome::Failed(
                    RuntimeError::Panicked {
                        run_id: ctx.run_id().clone(),
                        workflow: Self::NAME,
                        step: None,
                        message,
                    }
                    .into(),
                )
            })
        })
    }

    /// What failed, read off this workflow's error: the step whose own error it is, or the
    /// runtime's error inside it. An [`Engine`](crate::state::Engine) records the failed step
    /// from it.
    fn failed_at(error: &Self::Error) -> FailedAt<'_>;
}

/// What a bounded loop hands on when its back-edge was taken `max` times and the route asks
/// for it once more: the step named by `exhausted = …` receives this instead.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct LoopExhausted<T> {
    /// How many times the back-edge was taken.
    pub iterations: u32,
    /// The value the route carried on the attempt that went over the bound.
    pub last: T,
}

impl<T> LoopExhausted<T> {
    /// What the runtime hands the `exhausted = …` step after `iterations` turns, `last` being
    /// the value of the turn that went over the bound; for a test that calls that step's
    /// function directly.
    #[must_use]
    pub fn new(iterations: u32, last: T) -> Self {
        Self { iterations, last }
    }
}

/// Typestate slot of a fan-out branch that has not run yet: `Flow<state::Join<Pending, Done>>`.
#[derive(Debug)]
pub enum Pending {}

/// Typestate slot of a fan-out branch that has run.
#[derive(Debug)]
pub enum Done {}
