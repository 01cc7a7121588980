//! The only door between generated code and the runtime. Nothing here is public API: it may
//! change in any release, which is why `flow-runtime` pins `flow-macros` to an exact version.

use crate::error::{RuntimeError, StoreErrorKind};
use crate::state::{Checkpoint, Ctx, Done, Pending, RunStatus};
use futures_util::{StreamExt, TryStreamExt};
use std::future::Future;
use std::pin::Pin;

pub use futures_util::stream::FuturesUnordered;
pub use serde;

/// A boxed branch of a fan-out.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

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

/// The context a step sees.
#[inline]
#[must_use]
pub fn step_ctx<D, P>(ctx: &Ctx<D>, step: &'static str, attempt: u32) -> Ctx<D, P> {
    ctx.for_step(step, attempt)
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

/// Delivers a step's output to the sinks attached to it (and to the exit's when `exit`),
/// recording every delivery with the step's calls. Does nothing, and does not call `value`,
/// when no sink is attached.
///
/// # Errors
///
/// The output would not read back as it was written ([`RuntimeError::Unstorable`], like its
/// checkpoint: no sink sees it); some sink did not take it; see
/// [`crate::output::OutputError`].
pub async fn deliver<D>(
    ctx: &Ctx<D>,
    workflow: &'static str,
    step: &'static str,
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
    let result = outputs
        .send(ctx.run_id(), workflow, step, exit, &value, &mut records)
        .await;
    ctx.recorder().extend(records);
    result.map_err(RuntimeError::Output)
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

/// Runs `f` on every item, at most `limit` at once, and collects the results in the items'
/// order. A worker that finishes frees its slot at once, whatever the others do. The first
/// error stops the rest.
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
    F: FnMut(T) -> Fut,
    Fut: Future<Output = Result<U, E>>,
{
    let mut slots: Vec<Option<U>> = std::iter::repeat_with(|| None).take(items.len()).collect();
    let mut running = futures_util::stream::iter(items.into_iter().enumerate())
        .map(|(index, item)| {
            let work = f(item);
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
