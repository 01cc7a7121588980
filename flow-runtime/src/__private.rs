//! The only door between generated code and the runtime. Nothing here is public API: it may
//! change in any release, which is why `flow-runtime` pins `flow-macros` to an exact version.

use crate::error::{RuntimeError, StoreErrorKind};
use crate::state::{Checkpoint, Ctx, Done, Pending, RunStatus};
use crate::tool::Visit;
use futures_util::{FutureExt, StreamExt, TryStreamExt};
use std::future::Future;
use std::pin::Pin;

pub use futures_util::stream::FuturesUnordered;
pub use serde;

/// A boxed branch of a fan-out.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A step's future, boxed before the resume loop awaits it. Awaited inline, every step's future
/// would become part of one state machine for the whole run, and LLVM's work on that one
/// function grows much faster than the number of steps (a 100-step workflow took 358 s of CPU
/// to build in release); behind a `dyn` box each step is its own small function, at the cost
/// of one allocation per step.
#[inline]
pub fn boxed_step<'a, T>(step: impl Future<Output = T> + Send + 'a) -> BoxFuture<'a, T> {
    Box::pin(step)
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

impl<T, E> StepReturn for Result<T, E> {
    type Ok = T;
    type Err = E;
    #[inline]
    fn into_result(self) -> Self {
        self
    }
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

/// Asserts at compile time that `T` can be stored in a checkpoint.
#[inline]
pub const fn assert_stored<T: serde::Serialize + serde::de::DeserializeOwned>() {}

/// Autoref specialisation over a step's concrete error type: `(&&&ErrorRef(e)).flow_source()`
/// picks the first of these that applies.
#[derive(Debug)]
pub struct ErrorRef<'a, E: ?Sized>(pub &'a E);

impl<E: ?Sized> Clone for ErrorRef<'_, E> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<E: ?Sized> Copy for ErrorRef<'_, E> {}

/// `E: Error`: the error itself is the source.
pub trait SourceViaError<'a> {
    /// The error as a `source`.
    fn flow_source(self) -> Option<&'a (dyn std::error::Error + 'static)>;
}
impl<'a, E: std::error::Error + 'static> SourceViaError<'a> for &&ErrorRef<'a, E> {
    fn flow_source(self) -> Option<&'a (dyn std::error::Error + 'static)> {
        Some(self.0)
    }
}

/// `E: AsRef<dyn Error>` (`Box<dyn Error + Send + Sync>`, `anyhow::Error`).
pub trait SourceViaAsRef<'a> {
    /// The error as a `source`.
    fn flow_source(self) -> Option<&'a (dyn std::error::Error + 'static)>;
}
impl<'a, E: AsRef<dyn std::error::Error + Send + Sync + 'static>> SourceViaAsRef<'a>
    for &ErrorRef<'a, E>
{
    fn flow_source(self) -> Option<&'a (dyn std::error::Error + 'static)> {
        Some(self.0.as_ref())
    }
}

/// Anything else: no source; `FlowError` shows the message itself.
pub trait SourceNone<'a> {
    /// `None`.
    fn flow_source(self) -> Option<&'a (dyn std::error::Error + 'static)>;
}
impl<'a, E: ?Sized> SourceNone<'a> for ErrorRef<'a, E> {
    fn flow_source(self) -> Option<&'a (dyn std::error::Error + 'static)> {
        None
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

/// The context a step sees, on visit `visit`.
#[inline]
#[must_use]
pub fn step_ctx<D, P>(ctx: &Ctx<D>, step: &'static str, attempt: u32, visit: Visit) -> Ctx<D, P> {
    ctx.for_step(step, attempt, visit)
}

/// The context item `index` of a `workers` step sees: its own visit, its own calls.
#[inline]
#[must_use]
pub fn item_ctx<D, P>(ctx: &Ctx<D, P>, index: usize) -> Ctx<D, P> {
    ctx.for_item(u32::try_from(index).unwrap_or(u32::MAX))
}

/// The visit of a step that begins with these loop counters: how many back-edges the run
/// has taken in all. Counters never go down, so two visits of one step never share it.
#[must_use]
pub fn visit(counters: &[u32]) -> Visit {
    Visit::after(counters.iter().map(|&c| u64::from(c)).sum())
}

/// Runs a step's own code (and the tools it calls), so that a panic in it fails the run with
/// [`RuntimeError::Panicked`] naming the step instead of unwinding. Not an `async fn`, which
/// would hold the step's future twice.
///
/// # Errors
///
/// The step panicked.
pub fn guard<D, T>(
    ctx: &Ctx<D>,
    workflow: &'static str,
    step: &'static str,
    future: impl Future<Output = T>,
) -> impl Future<Output = Result<T, RuntimeError>> {
    let run_id = ctx.run_id().clone();
    crate::error::catch_panic(future).map(move |caught| {
        caught.map_err(|message| RuntimeError::Panicked {
            run_id,
            workflow,
            step: Some(step),
            message,
        })
    })
}

/// Runs a whole run (or what is left of it): a panic anywhere in it, the runtime's own code
/// included, fails the run with [`RuntimeError::Panicked`] instead of unwinding.
///
/// # Errors
///
/// The run's own error, or the panic.
pub fn guard_run<D, T, E: From<RuntimeError>>(
    ctx: &Ctx<D>,
    workflow: &'static str,
    run: impl Future<Output = Result<T, E>>,
) -> impl Future<Output = Result<T, E>> {
    let run_id = ctx.run_id().clone();
    crate::error::catch_panic(run).map(move |caught| {
        caught.unwrap_or_else(|message| {
            Err(RuntimeError::Panicked {
                run_id,
                workflow,
                step: None,
                message,
            }
            .into())
        })
    })
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

/// The seal of [`EventOf`](crate::state::EventOf): `#[workflow]` implements both for every
/// step's `event = …`. Not meant to be named outside generated code.
#[diagnostic::on_unimplemented(
    message = "`EventOf` is implemented by `#[workflow]` for the event a step waits for in `#[step(event = …)]`; declare the event there instead of implementing it by hand",
    label = "`EventOf<{W}>` implemented by hand",
    note = "a step waits for an event with `#[step(after = …, event = {Self}, timeout = …)]`"
)]
pub trait DeclaredEvent<W> {}

/// Refuses sinks attached to steps the workflow does not have (or to its routing steps):
/// checked before a run's first step. `steps` are the steps whose outputs can be delivered.
///
/// # Errors
///
/// Some attachment names another step.
pub fn check_outputs<D>(
    ctx: &Ctx<D>,
    workflow: &'static str,
    steps: &[&'static str],
) -> Result<(), RuntimeError> {
    let Some(outputs) = ctx.outputs() else {
        return Ok(());
    };
    let unknown = outputs.unknown_steps(steps);
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(RuntimeError::UnknownOutputStep {
            workflow,
            steps: unknown,
            valid: steps.to_vec(),
        })
    }
}

/// A step's output on its way to the sinks: serialised only when some sink is attached, through
/// [`ToJson`] (any `Serialize` type) or [`NoJson`] (anything else, never reached: every step
/// output a sink can be attached to is checked to be `Serialize` where the user wrote it, and
/// a second error here would only repeat it).
#[allow(
    missing_debug_implementations,
    reason = "a borrowed value for one call"
)]
pub struct Out<'a, T>(pub &'a T);

/// Why a step's output cannot go to the sinks.
#[derive(Debug)]
pub enum OutError {
    /// Its `Serialize` failed.
    Serialize(serde_json::Error),
    /// It would not read back as it was written (a NaN, nesting too deep): why.
    Unreadable(String),
}

/// [`Out`] of a `Serialize` type.
pub trait ToJson {
    /// The value as JSON, if it reads back as it was written.
    fn json(&self) -> Option<Result<serde_json::Value, OutError>>;
}

impl<T: serde::Serialize> ToJson for Out<'_, T> {
    fn json(&self) -> Option<Result<serde_json::Value, OutError>> {
        let json = match serde_json::to_value(self.0) {
            Ok(json) => json,
            Err(source) => return Some(Err(OutError::Serialize(source))),
        };
        Some(match crate::state::unreadable(self.0, &json) {
            Some(reason) => Err(OutError::Unreadable(reason)),
            None => Ok(json),
        })
    }
}

/// [`Out`] of any other type.
pub trait NoJson {
    /// Nothing.
    fn json(&self) -> Option<Result<serde_json::Value, OutError>> {
        None
    }
}

impl<T> NoJson for &Out<'_, T> {}

/// Delivers the output of visit `visit` of a step to the sinks attached to it (and to the
/// exit's when `exit`), recording every delivery with the step's calls. Does nothing, and does
/// not call `value`, when no sink is attached.
///
/// # Errors
///
/// The output would not read back as it was written ([`RuntimeError::Unstorable`], like its
/// checkpoint: no sink sees it); some sink did not take it; see
/// [`crate::output::OutputError`]; a sink panicked.
pub async fn deliver<D>(
    ctx: &Ctx<D>,
    workflow: &'static str,
    step: &'static str,
    visit: Visit,
    exit: bool,
    value: impl FnOnce() -> Option<Result<serde_json::Value, OutError>>,
) -> Result<(), RuntimeError> {
    let Some(outputs) = ctx.outputs() else {
        return Ok(());
    };
    if !outputs.is_attached(step, exit) {
        return Ok(());
    }
    let value = match value() {
        Some(Ok(value)) => value,
        Some(Err(OutError::Unreadable(reason))) => {
            return Err(RuntimeError::Unstorable {
                run_id: ctx.run_id().clone(),
                workflow,
                step,
                reason,
            });
        }
        Some(Err(OutError::Serialize(source))) => {
            return Err(RuntimeError::Output(
                crate::output::OutputError::Serialize {
                    run_id: ctx.run_id().clone(),
                    workflow: workflow.to_owned(),
                    step: step.to_owned(),
                    source,
                },
            ));
        }
        None => return Ok(()),
    };
    let mut records = Vec::new();
    let result = guard(
        ctx,
        workflow,
        step,
        outputs.deliver(
            ctx.run_id(),
            workflow,
            step,
            visit,
            exit,
            &value,
            &mut records,
        ),
    )
    .await;
    ctx.recorder().extend(records);
    result?.map_err(RuntimeError::Output)
}

/// The attempt number of the first step a run executes: the context's, or more when the
/// store counted earlier starts of that step (a process died during it).
#[inline]
#[must_use]
pub fn first_attempt<D>(ctx: &Ctx<D>) -> u32 {
    let resumed = ctx.waits().attempt;
    ctx.first_attempt().max(resumed.unwrap_or(0))
}

/// Stores `state` after `step`, when the context has a store. Without one, does nothing
/// (and serialises nothing).
///
/// # Errors
///
/// The state could not be serialised, or would not read back ([`RuntimeError::Unstorable`]:
/// nothing is stored), the store failed, or the store refused the checkpoint because run
/// control paused or cancelled the run ([`RuntimeError::Stopped`]).
pub async fn checkpoint<D, S: serde::Serialize>(
    ctx: &Ctx<D>,
    workflow: &'static str,
    fingerprint: &'static str,
    step: &'static str,
    finished: bool,
    state: &S,
) -> Result<(), RuntimeError> {
    // Taken with or without a store, so that a run without one does not keep them twice.
    let calls = ctx.recorder().take(step);
    let (wake_at, consumed) = {
        let mut waits = ctx.waits();
        waits.waiting = None;
        (waits.wake_at.take(), waits.consumed.take())
    };
    let Some(store) = ctx.store() else {
        return Ok(());
    };
    let run_id = ctx.run_id().clone();
    let json = serde_json::to_value(state).map_err(|source| RuntimeError::Serialize {
        run_id: run_id.clone(),
        workflow,
        step,
        source,
    })?;
    // What the store acknowledges, it can read back: a state that would not round-trip is
    // refused here, before the store sees it.
    if let Some(reason) = crate::state::unreadable(state, &json) {
        return Err(RuntimeError::Unstorable {
            run_id,
            workflow,
            step,
            reason,
        });
    }
    let parks = wake_at.is_some_and(|until| until > crate::state::now());
    let checkpoint = Checkpoint {
        run_id: run_id.clone(),
        workflow: workflow.to_owned(),
        fingerprint: fingerprint.to_owned(),
        step: step.to_owned(),
        finished,
        state: json,
        calls,
        wake_at,
        waiting: None,
        consumed_event: consumed,
        // The run goes straight on into its next step, which counts as started with this
        // commit; one that parks, or has finished, starts nothing.
        attempt: u32::from(!finished && !parks),
    };
    store
        .save_boxed(checkpoint)
        .await
        .map_err(|source| match source.kind() {
            // Run control stopped the run: the store refused the checkpoint, so the run stops
            // before its next step.
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
        })?;
    // A step returned `Sleep`: the run stops here, stored, until it is due.
    match wake_at {
        Some(until) if parks => Err(RuntimeError::Parked {
            run_id,
            workflow,
            step,
            event: None,
            until,
        }),
        _ => Ok(()),
    }
}

/// After a step returned `Sleep`: without a store, waits here; with one, notes when the run is
/// due, for the checkpoint after the step to store it and stop the run.
///
/// # Errors
///
/// None yet; a `Result` so that the generated code stays the same when waits can fail.
pub async fn schedule<D>(ctx: &Ctx<D>, wake: crate::state::Wake) -> Result<(), RuntimeError> {
    let now = crate::state::now();
    let until = wake.at(now);
    if ctx.store().is_none() {
        if let Ok(wait) = until.duration_since(now) {
            tokio::time::sleep(wait).await;
        }
    } else {
        ctx.waits().wake_at = Some(until);
    }
    Ok(())
}

/// Before a step that waits for event `event`: the oldest such event in the run's inbox, or
/// `TimedOut` once the wait (which began when the run first reached the step) has lasted
/// `timeout`; otherwise the run stops here, stored, until one of those happens.
///
/// # Errors
///
/// [`RuntimeError::Parked`] while the run waits; the run has no store; the store failed; the
/// event does not deserialise.
pub async fn wait_event<D, E: serde::de::DeserializeOwned>(
    ctx: &Ctx<D>,
    workflow: &'static str,
    step: &'static str,
    event: &'static str,
    timeout: std::time::Duration,
) -> Result<crate::state::Event<E>, RuntimeError> {
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
        let value = serde_json::from_value(stored.payload).map_err(|source| {
            RuntimeError::CorruptEvent {
                run_id: run_id.clone(),
                workflow,
                step,
                event,
                source,
            }
        })?;
        ctx.waits().consumed = Some(stored.id);
        return Ok(crate::state::Event::Received(value));
    }
    let now = crate::state::now();
    let waiting = ctx.waits().waiting.clone();
    let until = match waiting {
        Some((waiting, until)) if waiting == step => {
            if now >= until {
                return Ok(crate::state::Event::TimedOut);
            }
            until
        }
        _ => now.checked_add(timeout).unwrap_or(now),
    };
    // Recorded again when the run resumed in its wait: a wait stored before the store knew
    // its event is woken by an event of any name, and must be due at its deadline again,
    // not at once.
    store
        .wait_boxed(run_id, step, event, until)
        .await
        .map_err(failed)?;
    ctx.waits().waiting = Some((step.to_owned(), until));
    Err(RuntimeError::Parked {
        run_id: run_id.clone(),
        workflow,
        step,
        event: Some(event),
        until,
    })
}

/// Runs `f` on every item with its index, at most `limit` at once, and collects the results
/// in the items' order. A worker that finishes frees its slot at once, whatever the others do.
/// The first error stops the rest.
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

/// The next finished branch of a fan-out.
pub async fn next_branch<T>(running: &mut FuturesUnordered<BoxFuture<'_, T>>) -> Option<T> {
    running.next().await
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

    /// One variant of `FlowState`, serialised from borrowed content (a fan-out's checkpoint
    /// between branches).
    pub struct Variant<'a, T> {
        /// The variant's position.
        pub index: u32,
        /// The variant's name.
        pub name: &'static str,
        /// Its content.
        pub value: &'a T,
    }

    impl<T: Serialize> Serialize for Variant<'_, T> {
        fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.serialize_newtype_variant("FlowState", self.index, self.name, self.value)
        }
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
        /// Whether this key denotes the variant `name` at `index`.
        #[must_use]
        pub fn is(&self, name: &str, index: u64) -> bool {
            match self {
                Self::Name(n) => n == name,
                Self::Index(i) => *i == index,
            }
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

/// An event step's wait through autoref specialisation over the event type, like
/// [`stored`]: an event type that is not serde is reported by its `EventOf` impl alone, not
/// again at every wait.
pub mod event_wait {
    use crate::error::RuntimeError;
    use crate::state::{Ctx, Event};
    use serde::de::{DeserializeOwned, Error as _};
    use std::future::Future;
    use std::marker::PhantomData;
    use std::time::Duration;

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

    /// Waiting for a `DeserializeOwned` event: [`super::wait_event`].
    pub trait ViaSerde {
        /// The event type.
        type Event;
        /// See [`super::wait_event`].
        fn wait<'a, D: Send + Sync>(
            &self,
            ctx: &'a Ctx<D>,
            workflow: &'static str,
            step: &'static str,
            event: &'static str,
            timeout: Duration,
        ) -> impl Future<Output = Result<Event<Self::Event>, RuntimeError>> + Send + 'a;
    }

    impl<E: DeserializeOwned + Send + 'static> ViaSerde for &Wait<E> {
        type Event = E;
        fn wait<'a, D: Send + Sync>(
            &self,
            ctx: &'a Ctx<D>,
            workflow: &'static str,
            step: &'static str,
            event: &'static str,
            timeout: Duration,
        ) -> impl Future<Output = Result<Event<E>, RuntimeError>> + Send + 'a {
            super::wait_event::<D, E>(ctx, workflow, step, event, timeout)
        }
    }

    /// The stand-in for an event type that is not serde (its `EventOf` impl does not compile).
    pub trait ViaNothing {
        /// The event type.
        type Event;
        /// Fails.
        fn wait<'a, D: Send + Sync>(
            &self,
            ctx: &'a Ctx<D>,
            workflow: &'static str,
            step: &'static str,
            event: &'static str,
            timeout: Duration,
        ) -> impl Future<Output = Result<Event<Self::Event>, RuntimeError>> + Send + 'a;
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

    impl<E> ViaNothing for Wait<E> {
        type Event = E;
        fn wait<'a, D: Send + Sync>(
            &self,
            ctx: &'a Ctx<D>,
            workflow: &'static str,
            step: &'static str,
            event: &'static str,
            _: Duration,
        ) -> impl Future<Output = Result<Event<E>, RuntimeError>> + Send + 'a {
            let run_id = ctx.run_id().clone();
            async move {
                Err(RuntimeError::CorruptEvent {
                    run_id,
                    workflow,
                    step,
                    event,
                    source: serde_json::Error::custom(
                        "internal error in flow-macros: the event type is not serde",
                    ),
                })
            }
        }
    }
}

/// `FlowError`'s `Display` of a step error through autoref specialisation: a step error that
/// is not `Display` is reported once, at the user's type (`assert_step_error`), not again
/// inside the generated `Display` impl.
pub mod show {
    use std::fmt;

    /// A step error, borrowed for display.
    #[derive(Debug)]
    pub struct Show<'a, E: ?Sized>(pub &'a E);

    /// Writes `: {error}`.
    pub trait ViaDisplay {
        /// Writes `: ` and the error.
        ///
        /// # Errors
        ///
        /// The formatter's.
        fn flow_show(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result;
    }

    impl<E: fmt::Display + ?Sized> ViaDisplay for &Show<'_, E> {
        fn flow_show(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, ": {}", self.0)
        }
    }

    /// The stand-in for an error that is not `Display` (reported by `assert_step_error`).
    pub trait ViaNothing {
        /// Writes nothing.
        ///
        /// # Errors
        ///
        /// Never.
        fn flow_show(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result;
    }

    impl<E: ?Sized> ViaNothing for Show<'_, E> {
        fn flow_show(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
            Ok(())
        }
    }
}
