//! The only door between generated code and the runtime. Nothing here is public API: it may
//! change in any release, which is why `flow-runtime` pins `flow-macros` to an exact version.

use crate::driver::StepScope;
use crate::error::RuntimeError;
use crate::state::{Ctx, Done, Pending};
use crate::tool::Visit;
use std::future::Future;
use std::pin::Pin;

use crate::driver::EventArg;
pub use crate::driver::{
    BoxFuture, Graph, Machine, OutError, Position, Resume, StepInfo, StepKind, StepRun, Stepped,
    drive, map_ordered, step_alone,
};
pub use serde;

/// The runtime's own root, for `#[workflow(crate = path)]`: the generated code imports
/// `path::__private::flow_runtime_root`, not `path` itself, so a path that names something
/// else (`crate = self`, another crate) fails as one unresolved import, not at every item the
/// code then names through it.
pub use crate as flow_runtime_root;

// Short paths for the expansion: `__flow_p::Ok(…)` is 4 tokens where
// `::core::result::Result::Ok(…)` is 12, and a long workflow's check time grows with the
// number of tokens it expands to.
pub use core::option::Option::{self, None, Some};
pub use core::result::Result::{self, Err, Ok};

/// The step a run in `state` runs next (a join's name while its branches run), by the
/// graph table: `FlowState::step` without a match of its own.
#[must_use]
pub fn step_at<M: Machine>(state: &M::State) -> Option<&'static str> {
    match M::position(state) {
        Position::Step { step, .. } | Position::Join { step, .. } => {
            M::GRAPH.steps.get(step).map(|info| info.name)
        }
        Position::Finished => None,
    }
}

/// What a step adapter returns.
pub type StepResult<T, E> = Result<Stepped<T>, E>;

/// An adapter's `event` parameter: the event a waiting step was woken by.
pub type MaybeEvent = Option<EventArg>;

/// A step's future, boxed before the resume loop awaits it. Awaited inline, every step's future
/// would become part of one state machine for the whole run, and LLVM's work on that one
/// function grows much faster than the number of steps (a 100-step workflow took 358 s of CPU
/// to build in release); behind a `dyn` box each step is its own small function, at the cost
/// of one allocation per step.
#[inline]
pub fn boxed_step<'a, T>(step: impl Future<Output = T> + Send + 'a) -> BoxFuture<'a, T> {
    Box::pin(step)
}

/// A step adapter's future with its output mapped into the next state by `next`: a
/// `Machine::step` arm without an `async` block of its own (one fewer coroutine per step to
/// type-check and lay out).
#[inline]
pub fn then_next<F, T, U, E>(
    step: F,
    next: impl FnOnce(T) -> U + Send,
) -> impl Future<Output = Result<Stepped<U>, E>> + Send
where
    F: Future<Output = Result<Stepped<T>, E>> + Send,
{
    futures_util::FutureExt::map(step, move |stepped| {
        stepped.map(|stepped| stepped.map(next))
    })
}

/// What a step returns: `Result<T, E>`.
#[diagnostic::on_unimplemented(
    message = "a step must return `Result<T, E>`, not `{Self}`",
    label = "not a `Result`",
    note = "the next step receives `T`; `E` fails the run as the workflow's `FlowError`"
)]
pub trait StepReturn {
    /// The output handed to the next step.
    type Ok;
    /// The step's own error.
    type Err;
    /// Into a plain `Result`.
    fn into_result(self) -> Result<Self::Ok, Self::Err>;
}

// Not named in errors: the trait's own message already says "must return `Result<T, E>`".
#[diagnostic::do_not_recommend]
impl<T, E> StepReturn for Result<T, E> {
    type Ok = T;
    type Err = E;
    #[inline]
    fn into_result(self) -> Self {
        self
    }
}

/// The end of a step adapter: the step's result `out`, its error mapped into the workflow's
/// by `error`, its output serialised by `json` when a sink waits for it. One call instead of
/// the same three statements generated per step.
///
/// # Errors
///
/// The step's own error, mapped.
#[inline]
pub fn step_output<R: StepReturn, E>(
    run: &StepRun,
    out: R,
    error: impl FnOnce(R::Err) -> E,
    json: impl FnOnce(&R::Ok) -> Option<Result<serde_json::Value, OutError>>,
) -> StepResult<R::Ok, E> {
    let out = out.into_result().map_err(error)?;
    Ok(Stepped::output(run, out, None, json))
}

/// The whole adapter of a step that takes no context, event or earlier output: the user's
/// future `step`, then [`step_output`] on its result. A plain function of the runtime instead
/// of an `async fn` per step, so a workflow's crate type-checks one coroutine fewer per step.
/// Whether the future is `Send` is checked once, by the adapter's declared return type.
#[inline]
pub fn step_output_after<F, T, E, M, J>(
    run: StepRun,
    step: F,
    error: M,
    json: J,
) -> impl Future<Output = StepResult<T, E>>
where
    F: Future,
    F::Output: StepReturn<Ok = T>,
    M: FnOnce(<F::Output as StepReturn>::Err) -> E,
    J: FnOnce(&T) -> Option<Result<serde_json::Value, OutError>>,
{
    futures_util::FutureExt::map(step, move |out| step_output(&run, out, error, json))
}

/// Asserts at compile time that `R` is `Result<T, E>`, as the macro read it.
#[inline]
pub const fn assert_step_return<R: StepReturn<Ok = T, Err = E>, T, E>() {}

/// A step's error type: anything that can be shown and sent between threads. `std::error::Error`
/// types become the `source` of `FlowError`; so do `Box<dyn Error + Send + Sync>` and
/// `anyhow::Error` (through `AsRef<dyn Error>`); other types (a `String`) are shown in
/// `FlowError`'s message instead.
#[diagnostic::on_unimplemented(
    message = "the error type `{Self}` of a step must implement `Display + Debug + Send + Sync + 'static`",
    label = "this step's error type",
    note = "a `std::error::Error` type (e.g. derived with `thiserror`) is best: `FlowError` returns it as its `source`"
)]
pub trait StepError: std::fmt::Display + std::fmt::Debug + Send + Sync + 'static {}
impl<T: std::fmt::Display + std::fmt::Debug + Send + Sync + 'static> StepError for T {}

/// Asserts at compile time that `E` is usable as a step error.
#[inline]
pub const fn assert_step_error<E: StepError>() {}

/// Autoref specialisation over a step's concrete error type, for `FlowError`:
/// `(&&&&Failing(e)).failure(variant, step)` picks the first of the four `Failing*` traits that
/// applies, in their order here.
#[derive(Debug)]
pub struct Failing<'a, E>(pub &'a E);

impl<E> Clone for Failing<'_, E> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<E> Copy for Failing<'_, E> {}

/// `E: Error`: the error itself is the source, and `Display` does not repeat it.
pub trait FailingViaError<'a> {
    /// The step's failure.
    fn failure(self, variant: &'static str, step: &'static str) -> StepFailure<'a>;
}
impl<'a, E: std::error::Error + 'static> FailingViaError<'a> for &&&Failing<'a, E> {
    fn failure(self, variant: &'static str, step: &'static str) -> StepFailure<'a> {
        StepFailure::new(variant, step, self.0, Some(self.0), None)
    }
}

/// `E: AsRef<dyn Error>` (`Box<dyn Error + Send + Sync>`, `anyhow::Error`): the same, through
/// `as_ref`.
pub trait FailingViaAsRef<'a> {
    /// The step's failure.
    fn failure(self, variant: &'static str, step: &'static str) -> StepFailure<'a>;
}
impl<'a, E> FailingViaAsRef<'a> for &&Failing<'a, E>
where
    E: AsRef<dyn std::error::Error + Send + Sync + 'static> + std::fmt::Debug,
{
    fn failure(self, variant: &'static str, step: &'static str) -> StepFailure<'a> {
        StepFailure::new(variant, step, self.0, Some(self.0.as_ref()), None)
    }
}

/// `E: Display` but not an error (a `String`): no source; `Display` shows the message.
pub trait FailingViaDisplay<'a> {
    /// The step's failure.
    fn failure(self, variant: &'static str, step: &'static str) -> StepFailure<'a>;
}
impl<'a, E: std::fmt::Display + std::fmt::Debug> FailingViaDisplay<'a> for &Failing<'a, E> {
    fn failure(self, variant: &'static str, step: &'static str) -> StepFailure<'a> {
        StepFailure::new(variant, step, self.0, None, Some(self.0))
    }
}

/// Anything else, `Debug` or not: `assert_step_error` reports such a type (once), so this
/// never runs; it exists so that the same mistake is not reported again here.
pub trait FailingOther<'a> {
    /// The step's failure.
    fn failure(self, variant: &'static str, step: &'static str) -> StepFailure<'a>;
}
impl<'a, E> FailingOther<'a> for Failing<'a, E> {
    fn failure(self, variant: &'static str, step: &'static str) -> StepFailure<'a> {
        StepFailure::new(
            variant,
            step,
            &"(a step error that is not `Debug`)",
            None,
            None,
        )
    }
}

/// A step's error inside a `FlowError`, seen through what `FlowError`'s impls need: its
/// variant and step, and the error as `Debug`, as a `source` and as `Display` (the last two
/// picked at the error's concrete type, by [`Failing`]).
#[derive(Clone, Copy)]
#[allow(missing_debug_implementations)] // holds a user's error; `debug` is how it is shown
pub struct StepFailure<'a> {
    variant: &'static str,
    /// The step's name.
    pub step: &'static str,
    error: &'a dyn std::fmt::Debug,
    /// The error as `FlowError::source` returns it.
    pub source: Option<&'a (dyn std::error::Error + 'static)>,
    /// The error as `Display` shows it after the step's name: only one that is no `source`.
    shown: Option<&'a dyn std::fmt::Display>,
}

impl<'a> StepFailure<'a> {
    fn new(
        variant: &'static str,
        step: &'static str,
        error: &'a dyn std::fmt::Debug,
        source: Option<&'a (dyn std::error::Error + 'static)>,
        shown: Option<&'a dyn std::fmt::Display>,
    ) -> Self {
        Self {
            variant,
            step,
            error,
            source,
            shown,
        }
    }

    /// `FlowError`'s `Debug`: the variant and the error, as a derive writes them.
    ///
    /// # Errors
    ///
    /// The formatter's.
    pub fn debug(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple(self.variant).field(self.error).finish()
    }

    /// `FlowError`'s `Display`: names the workflow and the step, and shows the error itself
    /// only when it is not the `source` (which a reporter prints next).
    ///
    /// # Errors
    ///
    /// The formatter's.
    pub fn display(&self, f: &mut std::fmt::Formatter<'_>, workflow: &str) -> std::fmt::Result {
        write!(f, "workflow `{workflow}`: step `{}` failed", self.step)?;
        match self.shown {
            Some(error) => write!(f, ": {error}"),
            None => Ok(()),
        }
    }
}

/// A typestate slot: whether a fan-out branch has run.
pub trait Slot {
    /// `()` while pending; the branch's output once done.
    type Of<T: Send + 'static>: Send + 'static;
    /// The branch's output, if it has run.
    fn into_option<T: Send + 'static>(value: Self::Of<T>) -> Option<T>;
}

impl Slot for Pending {
    type Of<T: Send + 'static> = ();
    #[inline]
    fn into_option<T: Send + 'static>((): ()) -> Option<T> {
        None
    }
}

impl Slot for Done {
    type Of<T: Send + 'static> = T;
    #[inline]
    fn into_option<T: Send + 'static>(value: T) -> Option<T> {
        Some(value)
    }
}

/// The context a step sees: its own scope (step, attempt, visit, calls).
#[inline]
#[must_use]
pub fn step_ctx<D, P>(ctx: &Ctx<D>, run: &StepRun) -> Ctx<D, P> {
    ctx.scoped(StepScope::step(run.name, run.attempt, run.visit))
}

/// The context item `index` of a `workers` step sees: its own visit, its own calls.
#[inline]
#[must_use]
pub fn item_ctx<D, P>(ctx: &Ctx<D, P>, index: usize) -> Ctx<D, P> {
    ctx.scoped(ctx.scope().item(u32::try_from(index).unwrap_or(u32::MAX)))
}

/// The visit of a step that begins with these loop counters: how many back-edges the run
/// has taken in all. Counters never go down, so two visits of one step never share it.
#[must_use]
pub fn visit(counters: &[u32]) -> Visit {
    Visit::after(counters.iter().map(|&c| u64::from(c)).sum())
}

/// Whether the run's toolbox has tool `T`, which `step` declares; checked for every declared
/// tool before a run's first step.
///
/// # Errors
///
/// The tool is missing.
pub fn require_tool<D, T: crate::tool::Tool>(
    ctx: &Ctx<D>,
    workflow: &'static str,
    step: &'static str,
) -> Result<(), RuntimeError> {
    if ctx.toolbox().contains::<T>() {
        Ok(())
    } else {
        Err(RuntimeError::MissingTool {
            run_id: ctx.run_id().clone(),
            workflow,
            step,
            tool: T::NAME,
        })
    }
}

/// The seal of [`CanCall`](crate::tool::CanCall): `#[workflow]` implements both for every tool
/// a step declares. Not meant to be named outside generated code.
#[diagnostic::on_unimplemented(
    message = "`CanCall` is implemented by `#[workflow]` for the tools a step declares in `#[step(tools = [...])]`; declare the tool there instead of implementing it by hand",
    label = "`CanCall<{T}>` implemented by hand",
    note = "a step calls `{T}` once its `#[step(..., tools = [{T}])]` lists it: the run then checks that its `Toolbox` has `{T}` before the first step"
)]
pub trait DeclaredTool<T> {}

/// The seal of [`StepTools`](crate::agent::StepTools): `#[workflow]` implements both for the
/// tools marker of every step that declares `#[step(tools = [...])]`. Not meant to be named
/// outside generated code.
#[diagnostic::on_unimplemented(
    message = "`StepTools` is implemented by `#[workflow]` for the tools marker of a step that declares `#[step(tools = [...])]`; declare the tools there instead of implementing it by hand",
    label = "`StepTools` implemented by hand for `{Self}`",
    note = "an agent is offered exactly the tools its step declares"
)]
pub trait DeclaredToolset {
    /// How long a request for a person's approval of a call of the tool named `tool` waits,
    /// when the step lists it in `approve = [...]`; `None` for a tool called freely.
    #[must_use]
    fn approval(tool: &str) -> Option<std::time::Duration> {
        let _ = tool;
        None
    }
}

/// A step's tools as a tuple, `(Search, Book)`, each of which step `P` may call: what the
/// `StepTools` impl `#[workflow]` generates for a step delegates to. Implemented in `agent` for
/// tuples of up to 16 tools.
pub trait ToolList<P> {
    /// The tools' definitions, in order.
    fn defs() -> Vec<crate::model::ToolDef>;

    /// The call of the tool named by `call`; a name not among these gets
    /// [`ToolResult::Error`](crate::agent::ToolResult::Error) listing the names that are.
    fn dispatch<'a, D: Send + Sync>(
        ctx: &'a Ctx<D, P>,
        call: &'a crate::model::ToolCall,
    ) -> crate::agent::Dispatch<'a>;
}

/// Never implemented: the bound `#[workflow]` puts on `CanCall<T>` for a tool `T` the step
/// lists in `approve = [...]`, so that calling it with `ctx.call` does not compile, with this
/// message.
#[diagnostic::on_unimplemented(
    message = "tool `{Self}` needs a person's approval in this step: it cannot be called with `ctx.call`",
    label = "`{Self}` is in this step's `#[step(approve = [...])]`",
    note = "ask for the approval first, `let approved = ctx.approval::<{Self}>(input).await?;`, then make the call with `ctx.call_approved(approved)`; an agent (`ctx.agent`) asks for approvals by itself"
)]
pub trait CalledWithoutApproval<P> {}

/// The seal of [`EventOf`](crate::state::EventOf): `#[workflow]` implements both for every
/// step's `event = …`. Not meant to be named outside generated code.
#[diagnostic::on_unimplemented(
    message = "`EventOf` is implemented by `#[workflow]` for the event a step waits for in `#[step(event = …)]`; declare the event there instead of implementing it by hand",
    label = "`EventOf<{W}>` implemented by hand",
    note = "a step waits for an event with `#[step(after = …, event = {Self}, timeout = …)]`"
)]
pub trait DeclaredEvent<W> {}

/// How a step's output `T` goes to the sinks, picked by autoref where `T` is known:
/// `(&JsonOf::<T>::new()).json_fn()` is [`json_of::<T>`] through [`ToJson`] when `T` is
/// `Serialize`, and a function that gives nothing through [`NoJson`] otherwise (never reached:
/// every step output a sink can be attached to is checked to be `Serialize` where the user
/// wrote it, and a second error here would only repeat it). A function pointer, not a closure
/// per step: one body fewer for rustc to check in every step's adapter.
#[allow(
    missing_debug_implementations,
    reason = "a zero-sized probe used in one expression"
)]
pub struct JsonOf<T>(std::marker::PhantomData<fn(&T)>);

impl<T> JsonOf<T> {
    /// The probe.
    #[must_use]
    pub const fn new() -> Self {
        Self(std::marker::PhantomData)
    }
}

impl<T> Default for JsonOf<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// What serialises a step's output for the sinks (see [`JsonOf`]).
pub type JsonFn<T> = fn(&T) -> Option<Result<serde_json::Value, OutError>>;

/// [`JsonOf`] of a `Serialize` type.
pub trait ToJson<T> {
    /// [`json_of::<T>`].
    fn json_fn(&self) -> JsonFn<T>;
}

impl<T: serde::Serialize> ToJson<T> for JsonOf<T> {
    fn json_fn(&self) -> JsonFn<T> {
        json_of::<T>
    }
}

/// [`JsonOf`] of any other type.
pub trait NoJson<T> {
    /// [`no_json::<T>`].
    fn json_fn(&self) -> JsonFn<T> {
        no_json::<T>
    }
}

impl<T> NoJson<T> for &JsonOf<T> {}

/// Nothing for the sinks: a routing step's output (the route taken), or one that is not
/// `Serialize`.
#[must_use]
pub fn no_json<T>(_: &T) -> Option<Result<serde_json::Value, OutError>> {
    None
}

/// A step's output as JSON for the sinks: an error inside when its `Serialize` failed or the
/// JSON would not read back as it was written.
pub fn json_of<T: serde::Serialize>(out: &T) -> Option<Result<serde_json::Value, OutError>> {
    let json = match serde_json::to_value(out) {
        Ok(json) => json,
        Err(source) => return Some(Err(OutError::Serialize(source))),
    };
    Some(match crate::state::unreadable(out, &json) {
        Some(reason) => Err(OutError::Unreadable(reason)),
        None => Ok(json),
    })
}

/// The attempt number of the first step a typestate `Flow` runs: the context's.
#[inline]
#[must_use]
pub fn first_attempt<D>(ctx: &Ctx<D>) -> u32 {
    ctx.first_attempt()
}

/// A state that `resume` cannot continue from.
#[must_use]
pub fn invalid_state(
    workflow: &'static str,
    step: &'static str,
    reason: &'static str,
) -> RuntimeError {
    RuntimeError::InvalidState {
        workflow,
        step,
        reason,
    }
}

/// What a typestate step method returns. Boxed on purpose: an `impl Future` return type
/// repeats an out-of-order error at the method, the call and the `.await`; a concrete type
/// reports it once.
pub type StepFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// The body of a generated stand-in method, one that exists only for the error its bound
/// gives (a step called on a future not awaited, or on a route not matched): the bound is never
/// met, so this never runs.
#[cold]
#[must_use]
pub fn stand_in<T>() -> T {
    unreachable!("internal error in flow-macros: a stand-in ran")
}

/// A step's adapter (`__flow_call_x(ctx, run, input, kept, event)`), called with the context
/// and the earlier outputs a typestate step's future owns: an `async fn` item, whose future
/// borrows both for as long as they live.
pub trait StepCall<'a, D: 'a, I, K: 'a, T, E> {
    /// The adapter's future.
    type Future: Future<Output = Result<Stepped<T>, E>> + Send + 'a;
    /// Calls the adapter.
    fn call(
        self,
        ctx: &'a Ctx<D>,
        run: StepRun,
        input: I,
        kept: &'a K,
        event: Option<EventArg>,
    ) -> Self::Future;
}

impl<'a, D: 'a, I, K: 'a, T, E, F, Fut> StepCall<'a, D, I, K, T, E> for F
where
    F: FnOnce(&'a Ctx<D>, StepRun, I, &'a K, Option<EventArg>) -> Fut,
    Fut: Future<Output = Result<Stepped<T>, E>> + Send + 'a,
{
    type Future = Fut;
    #[inline]
    fn call(
        self,
        ctx: &'a Ctx<D>,
        run: StepRun,
        input: I,
        kept: &'a K,
        event: Option<EventArg>,
    ) -> Fut {
        self(ctx, run, input, kept, event)
    }
}

/// The future of a typestate step method (one step of one input) of workflow `W`: runs step
/// `step` through its adapter `call` as [`step_alone`] does, then `next` makes the method's
/// result from the context, the earlier outputs kept and the step's output. Generic, so that
/// a generated method is a call of this function (a step that carries no earlier outputs calls
/// it through `Flow`'s own generic `__flow_then` or `__flow_exit`) instead of an `async` block
/// of its own to type-check. The context's type is `W`'s, so that a `Deps` that is not `Sync` is reported
/// once, at the workflow, not again here.
///
/// # Errors
///
/// The future's: the step's, or the runtime's.
#[allow(clippy::too_many_arguments)]
pub fn flow_step<W, I, K, T, R, C, N>(
    ctx: Ctx<W::Deps>,
    step: usize,
    attempt: u32,
    visit: Visit,
    input: I,
    kept: K,
    call: C,
    next: N,
) -> StepFuture<Result<R, W::Error>>
where
    W: Machine,
    I: Send + 'static,
    K: Send + Sync + 'static,
    T: Send + 'static,
    C: for<'a> StepCall<'a, W::Deps, I, K, T, W::Error> + Send + 'static,
    N: FnOnce(Ctx<W::Deps>, K, T) -> Result<R, W::Error> + Send + 'static,
{
    Box::pin(async move {
        let graph = W::GRAPH;
        crate::driver::begin_alone(&ctx, &graph, step, visit)?;
        let out = step_alone(&ctx, &graph, step, attempt, visit, |run, event| {
            call.call(&ctx, run, input, &kept, event)
        })
        .await?;
        next(ctx, kept, out)
    })
}

/// `FlowState`'s serde support. The generated `Serialize`/`Deserialize` impls are one match arm
/// per variant over these generic helpers: much less code to type-check than a derive over
/// struct variants (the largest share of a workflow's compile time otherwise), with the same
/// JSON: `{"Search": {"input": …, "loops": …}}`.
pub mod state_serde {
    // These hold users' step data, which need not be `Debug` and must never be printed.
    #![allow(missing_debug_implementations)]

    use serde::de::{self, Visitor};
    use serde::{Deserialize, Deserializer, Serialize};
    use std::fmt;

    /// A position variant's content, borrowed for serialising.
    #[derive(Serialize)]
    #[serde(crate = "serde")]
    pub struct PosRef<'a, I, L> {
        /// The next step's input.
        pub input: &'a I,
        /// Loop counters.
        pub loops: &'a L,
    }

    /// A position variant's content, owned for deserialising.
    #[derive(Deserialize)]
    #[serde(crate = "serde")]
    pub struct Pos<I, L> {
        /// The next step's input.
        pub input: I,
        /// Loop counters.
        pub loops: L,
    }

    /// `Completed`'s content, borrowed.
    #[derive(Serialize)]
    #[serde(crate = "serde")]
    pub struct DoneRef<'a, O> {
        /// The run's output.
        pub output: &'a O,
    }

    /// `Completed`'s content, owned.
    #[derive(Deserialize)]
    #[serde(crate = "serde")]
    pub struct Done<O> {
        /// The run's output.
        pub output: O,
    }

    /// A variant's identifier: its name (self-describing formats) or its index.
    #[derive(Debug)]
    pub enum VariantKey {
        /// By name.
        Name(String),
        /// By position in declaration order.
        Index(u64),
    }

    impl VariantKey {
        /// The position in `variants` this key denotes: its name's, or the index itself.
        ///
        /// # Errors
        ///
        /// A key that denotes no variant, as [`VariantKey::unknown`] reports it.
        pub fn position<E: de::Error>(&self, variants: &'static [&'static str]) -> Result<u64, E> {
            let found = match self {
                Self::Name(n) => variants
                    .iter()
                    .position(|v| v == n)
                    .and_then(|i| u64::try_from(i).ok()),
                Self::Index(i) => {
                    (usize::try_from(*i).is_ok_and(|i| i < variants.len())).then_some(*i)
                }
            };
            found.ok_or_else(|| self.unknown(variants))
        }

        /// The error for a key that matched no variant.
        #[must_use]
        pub fn unknown<E: de::Error>(&self, variants: &'static [&'static str]) -> E {
            match self {
                Self::Name(n) => E::unknown_variant(n, variants),
                Self::Index(i) => E::invalid_value(
                    de::Unexpected::Unsigned(*i),
                    &"a variant index of FlowState",
                ),
            }
        }
    }

    impl<'de> Deserialize<'de> for VariantKey {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct KeyVisitor;
            impl Visitor<'_> for KeyVisitor {
                type Value = VariantKey;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a variant name or index")
                }
                fn visit_str<E: de::Error>(self, v: &str) -> Result<VariantKey, E> {
                    Ok(VariantKey::Name(v.to_owned()))
                }
                fn visit_u64<E: de::Error>(self, v: u64) -> Result<VariantKey, E> {
                    Ok(VariantKey::Index(v))
                }
            }
            deserializer.deserialize_identifier(KeyVisitor)
        }
    }
}

/// Imported as `serde` into a module with `#[workflow(crate = path)]`: when `path` is wrong,
/// that import fails silently and quiets the generated `#[serde(…)]` helper attributes, so the
/// wrong path is reported once. A value, so it never shadows the `serde` crate in user code.
pub const SERDE_HELPER: () = ();

/// What a checkpoint stores, checked once per stored type at the user's type, through autoref
/// specialisation: `(&&Probe::<T>::new()).value()` resolves to a method that compiles when `T`
/// is serde, and otherwise to one bounded on a trait implemented for no type, whose message says
/// what to derive. One error for a type that lacks both derives (bounds on the serde traits
/// themselves would report each missing one).
pub mod stored_check {
    use crate::input::Rules;
    use serde::Serialize;
    use serde::de::DeserializeOwned;
    use std::marker::PhantomData;

    /// The stored type `T`.
    #[derive(Debug)]
    pub struct Probe<T: ?Sized>(PhantomData<fn() -> T>);

    impl<T: ?Sized> Probe<T> {
        /// The type `T`.
        #[must_use]
        pub const fn new() -> Self {
            Self(PhantomData)
        }
    }

    impl<T: ?Sized> Default for Probe<T> {
        fn default() -> Self {
            Self::new()
        }
    }

    /// Passes for a serde type.
    pub trait ValueOk {
        /// Passes.
        fn value(&self) {}
    }

    impl<T: Serialize + DeserializeOwned> ValueOk for &Probe<T> {}

    /// The fallback for a type that is not serde: the one error.
    pub trait ValueMissing<T: ?Sized> {
        /// Fails to compile.
        fn value(&self)
        where
            T: SerializeAndDeserialize,
        {
        }
    }

    impl<T: ?Sized> ValueMissing<T> for Probe<T> {}

    /// Implemented for no type: the error of a stored type that is not serde.
    #[diagnostic::on_unimplemented(
        message = "`{Self}` is stored in the run's checkpoints, so it must implement `Serialize` and `Deserialize`",
        label = "stored in checkpoints",
        note = "derive them: `#[derive(serde::Serialize, serde::Deserialize)]`"
    )]
    pub trait SerializeAndDeserialize {}

    /// Passes for the `T` of an entry step's `Valid<T>`: serde, with garde rules.
    pub trait ValidOk {
        /// Passes.
        fn valid(&self) {}
    }

    impl<T: Rules + Serialize + DeserializeOwned> ValidOk for &Probe<T> {}

    /// The fallback for a `T` that lacks one of them: the one error.
    pub trait ValidMissing<T: ?Sized> {
        /// Fails to compile.
        fn valid(&self)
        where
            T: ValidateSerializeAndDeserialize,
        {
        }
    }

    impl<T: ?Sized> ValidMissing<T> for Probe<T> {}

    /// Implemented for no type: the error of an entry `Valid<T>` whose `T` lacks garde rules or
    /// serde. A checkpoint is validated again when it is read.
    #[diagnostic::on_unimplemented(
        message = "`Valid<{Self}>` is stored in the run's checkpoints and validated again when read, so `{Self}` must implement `garde::Validate`, `Serialize` and `Deserialize`",
        label = "stored in checkpoints as `Valid<{Self}>`",
        note = "derive them: `#[derive(garde::Validate, serde::Serialize, serde::Deserialize)]`, with `#[garde(skip)]` on a field that has no rules"
    )]
    pub trait ValidateSerializeAndDeserialize {}
}

/// `FlowState`'s position variants through autoref specialisation over the stored type:
/// `(&&Pick(input)).pos(…)` serialises when the type is `Serialize`, and otherwise resolves to
/// a stand-in that is never compiled into a working program, because the same type's
/// `stored_check` fails. So a type that is not serde is reported once, at the user's
/// type, instead of again inside `FlowState`'s impls.
pub mod stored {
    use super::state_serde::{DoneRef, Pos, PosRef};
    use serde::de::{DeserializeOwned, Error as _, VariantAccess};
    use serde::ser::Error as _;
    use serde::{Deserialize, Serialize, Serializer};
    use std::marker::PhantomData;

    const NOT_STORED: &str = "internal error in flow-macros: a stored type is not serde";

    /// A stored value, borrowed for serialising.
    #[derive(Debug)]
    pub struct Pick<'a, T>(pub &'a T);

    /// A stored type, for deserialising.
    #[derive(Debug)]
    pub struct PickDe<T>(PhantomData<fn() -> T>);

    impl<T> PickDe<T> {
        /// The type `T`.
        #[must_use]
        pub const fn new() -> Self {
            Self(PhantomData)
        }
    }

    impl<T> Default for PickDe<T> {
        fn default() -> Self {
            Self::new()
        }
    }

    /// Serialising a `Serialize` value.
    pub trait ViaSerde {
        /// A position variant `name` holding the value and the loop counters.
        ///
        /// # Errors
        ///
        /// The serializer's.
        fn pos<S: Serializer, L: Serialize>(
            &self,
            serializer: S,
            index: u32,
            name: &'static str,
            loops: &L,
        ) -> Result<S::Ok, S::Error>;
        /// The `Completed` variant holding the value.
        ///
        /// # Errors
        ///
        /// The serializer's.
        fn done<S: Serializer>(&self, serializer: S, index: u32) -> Result<S::Ok, S::Error>;
    }

    impl<T: Serialize> ViaSerde for &Pick<'_, T> {
        fn pos<S: Serializer, L: Serialize>(
            &self,
            serializer: S,
            index: u32,
            name: &'static str,
            loops: &L,
        ) -> Result<S::Ok, S::Error> {
            serializer.serialize_newtype_variant(
                "FlowState",
                index,
                name,
                &PosRef {
                    input: self.0,
                    loops,
                },
            )
        }
        fn done<S: Serializer>(&self, serializer: S, index: u32) -> Result<S::Ok, S::Error> {
            serializer.serialize_newtype_variant(
                "FlowState",
                index,
                "Completed",
                &DoneRef { output: self.0 },
            )
        }
    }

    /// The stand-in for a type that is not `Serialize` (reported by `stored_check`).
    pub trait ViaNothing {
        /// Fails.
        ///
        /// # Errors
        ///
        /// Always.
        fn pos<S: Serializer, L: Serialize>(
            &self,
            serializer: S,
            index: u32,
            name: &'static str,
            loops: &L,
        ) -> Result<S::Ok, S::Error>;
        /// Fails.
        ///
        /// # Errors
        ///
        /// Always.
        fn done<S: Serializer>(&self, serializer: S, index: u32) -> Result<S::Ok, S::Error>;
    }

    impl<T> ViaNothing for Pick<'_, T> {
        fn pos<S: Serializer, L: Serialize>(
            &self,
            _: S,
            _: u32,
            _: &'static str,
            _: &L,
        ) -> Result<S::Ok, S::Error> {
            Err(S::Error::custom(NOT_STORED))
        }
        fn done<S: Serializer>(&self, _: S, _: u32) -> Result<S::Ok, S::Error> {
            Err(S::Error::custom(NOT_STORED))
        }
    }

    /// Deserialising a `DeserializeOwned` type.
    pub trait DeViaSerde {
        /// The stored type.
        type Value;
        /// A position variant's value and loop counters.
        ///
        /// # Errors
        ///
        /// The deserializer's.
        fn pos<'de, L: Deserialize<'de>, V: VariantAccess<'de>>(
            &self,
            variant: V,
        ) -> Result<(Self::Value, L), V::Error>;
        /// `Completed`'s output.
        ///
        /// # Errors
        ///
        /// The deserializer's.
        fn done<'de, V: VariantAccess<'de>>(&self, variant: V) -> Result<Self::Value, V::Error>;
    }

    impl<T: DeserializeOwned> DeViaSerde for &PickDe<T> {
        type Value = T;
        fn pos<'de, L: Deserialize<'de>, V: VariantAccess<'de>>(
            &self,
            variant: V,
        ) -> Result<(T, L), V::Error> {
            let p: Pos<T, L> = variant.newtype_variant()?;
            Ok((p.input, p.loops))
        }
        fn done<'de, V: VariantAccess<'de>>(&self, variant: V) -> Result<T, V::Error> {
            let p: super::state_serde::Done<T> = variant.newtype_variant()?;
            Ok(p.output)
        }
    }

    /// The stand-in for a type that is not `Deserialize` (reported by `stored_check`).
    pub trait DeViaNothing {
        /// The stored type.
        type Value;
        /// Fails.
        ///
        /// # Errors
        ///
        /// Always.
        fn pos<'de, L: Deserialize<'de>, V: VariantAccess<'de>>(
            &self,
            variant: V,
        ) -> Result<(Self::Value, L), V::Error>;
        /// Fails.
        ///
        /// # Errors
        ///
        /// Always.
        fn done<'de, V: VariantAccess<'de>>(&self, variant: V) -> Result<Self::Value, V::Error>;
    }

    impl<T> DeViaNothing for PickDe<T> {
        type Value = T;
        fn pos<'de, L: Deserialize<'de>, V: VariantAccess<'de>>(
            &self,
            _: V,
        ) -> Result<(T, L), V::Error> {
            Err(V::Error::custom(NOT_STORED))
        }
        fn done<'de, V: VariantAccess<'de>>(&self, _: V) -> Result<T, V::Error> {
            Err(V::Error::custom(NOT_STORED))
        }
    }
}

/// An event step's event through autoref specialisation over the event type, like
/// [`stored`]: an event type that is not serde is reported by its `EventOf` impl alone, not
/// again at every wait.
pub mod event_wait {
    use crate::driver::EventArg;
    use crate::error::RuntimeError;
    use crate::state::{Event, RunId};
    use serde::de::{DeserializeOwned, Error as _};
    use std::marker::PhantomData;

    /// The event type a step waits for.
    #[derive(Debug)]
    pub struct Wait<E>(PhantomData<fn() -> E>);

    impl<E> Wait<E> {
        /// The type `E`.
        #[must_use]
        pub const fn new() -> Self {
            Self(PhantomData)
        }
    }

    impl<E> Default for Wait<E> {
        fn default() -> Self {
            Self::new()
        }
    }

    /// Where the event is for, for its errors.
    #[derive(Debug, Clone, Copy)]
    pub struct At<'a> {
        /// The run.
        pub run_id: &'a RunId,
        /// The workflow.
        pub workflow: &'static str,
        /// The waiting step.
        pub step: &'static str,
        /// The event's name.
        pub event: &'static str,
    }

    impl At<'_> {
        fn corrupt(self, source: serde_json::Error) -> RuntimeError {
            RuntimeError::CorruptEvent {
                run_id: self.run_id.clone(),
                workflow: self.workflow,
                step: self.step,
                event: self.event,
                source,
            }
        }
    }

    /// Decoding a `DeserializeOwned` event the driver took from the inbox.
    pub trait ViaSerde {
        /// The event type.
        type Event;
        /// The event, or `TimedOut`.
        ///
        /// # Errors
        ///
        /// The stored event does not deserialise.
        fn take(
            &self,
            at: At<'_>,
            arg: Option<EventArg>,
        ) -> Result<Event<Self::Event>, RuntimeError>;
    }

    impl<E: DeserializeOwned> ViaSerde for &Wait<E> {
        type Event = E;
        fn take(&self, at: At<'_>, arg: Option<EventArg>) -> Result<Event<E>, RuntimeError> {
            match arg.and_then(|arg| arg.payload) {
                Some(payload) => serde_json::from_value(payload)
                    .map(Event::Received)
                    .map_err(|source| at.corrupt(source)),
                None => Ok(Event::TimedOut),
            }
        }
    }

    /// The stand-in for an event type that is not serde (its `EventOf` impl does not compile).
    pub trait ViaNothing {
        /// The event type.
        type Event;
        /// Fails.
        ///
        /// # Errors
        ///
        /// Always.
        fn take(
            &self,
            at: At<'_>,
            arg: Option<EventArg>,
        ) -> Result<Event<Self::Event>, RuntimeError>;
    }

    impl<E> ViaNothing for Wait<E> {
        type Event = E;
        fn take(&self, at: At<'_>, _: Option<EventArg>) -> Result<Event<E>, RuntimeError> {
            Err(at.corrupt(serde_json::Error::custom(
                "internal error in flow-macros: the event type is not serde",
            )))
        }
    }

    /// Checks once per event type, at the user's `event = …`, that it is serde: the
    /// generated `EventOf` impl does not require it, because a supertrait reports `Serialize`
    /// and `Deserialize` as two errors; this reports both as one.
    pub trait CheckSerde {
        /// Passes.
        fn check(&self) {}
    }

    impl<E: serde::Serialize + DeserializeOwned> CheckSerde for &Wait<E> {}

    /// The stand-in [`CheckSerde`] falls back to for a type that is not serde: its bound is
    /// implemented for nothing, so calling it is the one error.
    pub trait CheckNothing<E> {
        /// Fails to compile.
        fn check(&self)
        where
            E: EventSerde,
        {
        }
    }

    impl<E> CheckNothing<E> for Wait<E> {}

    /// Implemented for no type: the error of an event type that is not serde.
    #[diagnostic::on_unimplemented(
        message = "event `{Self}` is kept in the run's inbox until its step takes it, so it must implement `Serialize` and `Deserialize`",
        label = "kept in the run's inbox",
        note = "derive them: `#[derive(serde::Serialize, serde::Deserialize)]`"
    )]
    pub trait EventSerde {}
}
