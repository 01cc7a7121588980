use crate::error::RuntimeError;
use crate::state::Ctx;
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

    /// Runs the whole graph to its output, parallel branches concurrently, storing a
    /// checkpoint after every step when `ctx` has a store.
    fn run(
        ctx: &Ctx<Self::Deps>,
        input: Self::Input,
    ) -> impl Future<Output = Result<Self::Output, Self::Error>> + Send {
        Self::resume(ctx, Self::start(input))
    }

    /// Continues a run from `state` (for example the latest checkpoint) to its output.
    fn resume(
        ctx: &Ctx<Self::Deps>,
        state: Self::State,
    ) -> impl Future<Output = Result<Self::Output, Self::Error>> + Send;

    /// Runs `input` under the context's run id, unless the context's store already has that
    /// run: then it continues the stored run from its latest checkpoint (and returns its output
    /// at once if it had finished) instead of starting a second one. The run id is the
    /// idempotency key; `input` is used only for a new run.
    ///
    /// It refuses, running nothing and leaving the stored state as it is:
    ///
    /// * a run that [run control](crate::state::RunControl) has paused or cancelled, with
    ///   [`RuntimeError::Stopped`] (`step: None`); once a paused run is unpaused, this
    ///   continues it from its latest checkpoint;
    /// * a stored run of another workflow, or one stored with another [`FINGERPRINT`] (the
    ///   graph or a step signature changed), with [`RuntimeError::Incompatible`]. A run of this
    ///   workflow stored with another fingerprint is also marked
    ///   [`RunStatus::Incompatible`](crate::state::RunStatus::Incompatible) in a store with run
    ///   control (see [`Store::mark_incompatible`](crate::state::Store::mark_incompatible)).
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
        let run = async move {
            let Some(store) = ctx.store() else {
                return Self::run(ctx, input).await;
            };
            let run_id = ctx.run_id();
            let load = |source| RuntimeError::Load {
                run_id: run_id.clone(),
                workflow: Self::NAME,
                source,
            };
            let info = store.status_boxed(run_id).await.map_err(load)?;
            if let Some(info) = info.filter(|info| info.status.is_stopped()) {
                return Err(RuntimeError::Stopped {
                    run_id: run_id.clone(),
                    workflow: Self::NAME,
                    step: None,
                    status: info.status,
                }
                .into());
            }
            // Counts a start of the step the run resumes at (when it is due): a step a crash
            // interrupted runs again as attempt 2.
            let Some(checkpoint) = store
                .load_to_resume_boxed(run_id, Self::FINGERPRINT)
                .await
                .map_err(load)?
            else {
                ctx.waits().attempt = None;
                return Self::run(ctx, input).await;
            };
            if checkpoint.workflow != Self::NAME || checkpoint.fingerprint != Self::FINGERPRINT {
                if checkpoint.workflow == Self::NAME {
                    // The refusal below is the answer; a failure to mark the run only means
                    // operators do not find it by its status, so it is logged, not returned.
                    if let Err(error) = store
                        .mark_incompatible_boxed(run_id, Self::FINGERPRINT)
                        .await
                    {
                        tracing::warn!(
                            run_id = %run_id,
                            workflow = Self::NAME,
                            %error,
                            "could not mark the run incompatible"
                        );
                    }
                }
                return Err(RuntimeError::Incompatible {
                    run_id: run_id.clone(),
                    workflow: Self::NAME,
                    fingerprint: Self::FINGERPRINT,
                    stored_workflow: checkpoint.workflow,
                    stored_fingerprint: checkpoint.fingerprint,
                }
                .into());
            }
            // A run asleep after a `Sleep` step is not due before its time.
            if let (Some(until), None) = (checkpoint.wake_at, &checkpoint.waiting)
                && until > crate::state::now()
                && !checkpoint.finished
            {
                return Err(RuntimeError::Parked {
                    run_id: run_id.clone(),
                    workflow: Self::NAME,
                    step: Self::STEPS
                        .iter()
                        .find(|s| **s == checkpoint.step)
                        .copied()
                        .unwrap_or_default(),
                    event: None,
                    until,
                }
                .into());
            }
            {
                let mut waits = ctx.waits();
                waits.waiting = checkpoint.waiting.clone().zip(checkpoint.wake_at);
                waits.attempt = Some(checkpoint.attempt);
            }
            let state = serde_json::from_value(checkpoint.state).map_err(|source| {
                RuntimeError::CorruptState {
                    run_id: run_id.clone(),
                    workflow: Self::NAME,
                    source,
                }
            })?;
            Self::resume(ctx, state).await
        };
        // Mapped, not awaited in another `async` block: that would hold `run` twice.
        futures_util::FutureExt::map(crate::error::catch_panic(run), |caught| {
            caught.unwrap_or_else(|message| {
                Err(RuntimeError::Panicked {
                    run_id: ctx.run_id().clone(),
                    workflow: Self::NAME,
                    step: None,
                    message,
                }
                .into())
            })
        })
    }

    /// The runtime's error inside this workflow's error, if it is one: how an
    /// [`Engine`](crate::state::Engine) tells a parked or stopped run from a failed step.
    fn runtime_error(error: &Self::Error) -> Option<&RuntimeError>;
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
    #[doc(hidden)]
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
