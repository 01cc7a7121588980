use crate::driver::{Annotate, CallSlot, StepScope};
use crate::output::Outputs;
use crate::state::{CallOutcome, CallRecord, Recorder};
use crate::store::DynStore;
use crate::store::Store;
use crate::tool::{CallError, CanCall, NoTools, Tool, ToolCall, Toolbox, Visit};
use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

/// The identifier of one run of a workflow.
///
/// Cheap to clone. Made up of any string; [`RunId::random`] makes a fresh UUID.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct RunId(Arc<str>);

impl RunId {
    /// A new run id: a UUID v4 string, different from every other id this process makes
    /// and, with overwhelming probability, from every id other processes make.
    ///
    /// Cheap: the process draws 128 random bits from the operating system once, the first
    /// time; each id is that seed with its low 62 bits replaced by a one-to-one mix of a
    /// counter, so ids made in one process never repeat (for 2⁶² ids) and no system call is
    /// made per id. An id is not a secret: ids from one process are related to each other.
    #[must_use]
    pub fn random() -> Self {
        Self::from_bits(Self::random_bits())
    }

    /// The 128 bits of a new random id (see [`RunId::random`]), not yet written out: a context
    /// writes its id only when someone reads it.
    fn random_bits() -> u128 {
        /// The low 62 bits of a UUID, below its variant bits.
        const LOW: u128 = (1 << 62) - 1;
        /// An odd multiplier: multiplying by it is one-to-one modulo 2⁶².
        const MIX: u128 = 0x9E37_79B9_7F4A_7C15;
        static SEED: OnceLock<u128> = OnceLock::new();
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let seed = *SEED.get_or_init(|| uuid::Uuid::new_v4().as_u128());
        let count = u128::from(COUNTER.fetch_add(1, Ordering::Relaxed));
        let low = seed.wrapping_add(count.wrapping_mul(MIX)) & LOW;
        (seed & !LOW) | low
    }

    /// The id [`RunId::random_bits`] made, as a UUID v4 string.
    fn from_bits(bits: u128) -> Self {
        let id = uuid::Builder::from_random_bytes(bits.to_be_bytes()).into_uuid();
        let mut text = [0; uuid::fmt::Hyphenated::LENGTH];
        Self(id.hyphenated().encode_lower(&mut text).into())
    }

    /// The id as a string.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RunId({:?})", &*self.0)
    }
}

impl From<&str> for RunId {
    fn from(s: &str) -> Self {
        Self(s.into())
    }
}

impl From<String> for RunId {
    fn from(s: String) -> Self {
        Self(s.into())
    }
}

/// A context's run id: the one it was given, or one made from random bits the first time it
/// is read (a run that nobody asks for its id, in memory, never writes it out).
struct LazyRunId {
    id: OnceLock<RunId>,
    bits: u128,
}

impl LazyRunId {
    fn given(id: RunId) -> Self {
        Self {
            id: OnceLock::from(id),
            bits: 0,
        }
    }

    fn random() -> Self {
        Self {
            id: OnceLock::new(),
            bits: RunId::random_bits(),
        }
    }

    fn get(&self) -> &RunId {
        self.id.get_or_init(|| RunId::from_bits(self.bits))
    }
}

struct Shared<D> {
    run_id: LazyRunId,
    deps: D,
    store: Option<Arc<dyn DynStore>>,
    tools: Toolbox,
    outputs: Option<Arc<Outputs>>,
    calls: Recorder,
    /// How many calls the context has made outside any step (a step's own count is in its
    /// [`StepScope`]).
    outside_calls: AtomicU32,
    first_attempt: u32,
    /// Whether a run has started on this context without a store (with one, the store keeps
    /// that: see [`Ctx::claim_start`]).
    started: AtomicBool,
    /// Where a step waiting for an approval tells the driver to park the run.
    park: crate::driver::ParkSlot,
}

/// What a step receives besides its data: the run it belongs to, the step's name and
/// attempt, and the user's own dependencies `D` (an HTTP client, a model client,
/// configuration…), typed like axum's `State`.
///
/// A step asks for it by taking `&Ctx<Deps>` as its first parameter, where `Deps` is the
/// type named by `#[workflow(deps = Deps)]` (`()` when none is named):
///
/// ```
/// use flow_runtime::prelude::*;
///
/// pub struct Deps {
///     pub greeting: String,
/// }
///
/// #[workflow(deps = Deps)]
/// pub mod hello {
///     use super::*;
///
///     #[step(entry, exit)]
///     pub async fn greet(ctx: &Ctx<Deps>, name: String) -> Result<String, std::io::Error> {
///         assert_eq!(ctx.step(), Some("greet"));
///         Ok(format!("{}, {name}", ctx.deps().greeting))
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let ctx = Ctx::new(Deps { greeting: "Hello".into() });
/// let out = hello::Workflow::run(&ctx, "Ada".to_owned()).await.unwrap();
/// assert_eq!(out, "Hello, Ada");
/// # }
/// ```
///
/// # Tools
///
/// A step that declares tools, `#[step(after = a, tools = [Search, Book])]`, takes its context
/// as `&Ctx<Deps, tools::Step>`, where `tools::Step` is a marker the macro generates in the
/// workflow's `tools` module (the step's name in PascalCase). Through it the step may
/// [`call`](Ctx::call) exactly the tools it declared: calling another is a compile error.
/// The tools themselves, with their policies, come from the [`Toolbox`] the context was built
/// with ([`CtxBuilder::tools`]).
///
/// # One context, one run
///
/// A context is one run: its id (given with [`CtxBuilder::run_id`], or drawn when it is
/// built), and the journal of its tool calls, whose idempotency keys come from that id. Build
/// one per run, as a server does per request: what runs share (the store's `Arc`, a clone of
/// the [`Toolbox`], `deps` behind an `Arc` of yours) costs little to hand to each;
/// [`next_run`](Ctx::next_run) builds the next context from one at hand.
///
/// [`Workflow::run`](crate::state::Workflow::run) keeps to that. With a store, a run on a
/// context whose run the store has already is refused with
/// [`RuntimeError::AlreadyStarted`](crate::error::RuntimeError::AlreadyStarted): it would
/// replay that run's journaled calls. Without a store, a second run on a context (or a clone
/// of it) is refused with [`RuntimeError::CtxReused`](crate::error::RuntimeError::CtxReused):
/// it would run under the first run's id, so its tool calls and outputs would repeat the first
/// run's idempotency keys, and a tool that drops repeated keys would drop them. The typestate
/// `Flow` refuses it the same way without a store, when its entry step runs (with one it stores
/// nothing). Either way nothing runs.
///
/// Cloning is cheap: the run's data is shared, and a clone is the same run.
pub struct Ctx<D = (), P = NoTools> {
    shared: Arc<Shared<D>>,
    /// The step, attempt and visit this context runs, and its calls so far: the driver's.
    scope: StepScope,
    tools: PhantomData<fn() -> P>,
}

impl<D, P> Clone for Ctx<D, P> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
            scope: self.scope.clone(),
            tools: PhantomData,
        }
    }
}

impl<D, P> fmt::Debug for Ctx<D, P> {
    // `deps` is left out on purpose: it may hold credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ctx")
            .field("run_id", self.shared.run_id.get())
            .field("step", &self.scope.step_name())
            .field("attempt", &self.scope.attempt())
            .field("visit", &self.scope.visit())
            .field("store", &self.shared.store.is_some())
            .field("tools", &self.shared.tools)
            .field("outputs", &self.shared.outputs)
            .finish_non_exhaustive()
    }
}

impl<D> Ctx<D> {
    /// A context for a new run with a random [`RunId`], no store, and `deps`.
    pub fn new(deps: D) -> Self {
        Self::builder(deps).build()
    }

    /// A builder, to set the run id, a checkpoint store, the tools or the first attempt number.
    pub fn builder(deps: D) -> CtxBuilder<D> {
        CtxBuilder {
            run_id: None,
            deps,
            store: None,
            tools: Toolbox::new(),
            outputs: None,
            first_attempt: 1,
        }
    }
}

impl<D, P> Ctx<D, P> {
    /// A context for another run with this one's setup: a clone of its deps, the same store,
    /// tools and output sinks, a new random [`RunId`], and first attempt 1.
    ///
    /// A context is one run (a second run on it is refused:
    /// [`RuntimeError::AlreadyStarted`](crate::error::RuntimeError::AlreadyStarted) with a
    /// store, [`RuntimeError::CtxReused`](crate::error::RuntimeError::CtxReused) without), so
    /// code that runs workflows again builds a context per run; this builds it from one at
    /// hand. Keep what runs share behind an `Arc` in `D`, so that the clone is cheap and
    /// shares it.
    ///
    /// ```
    /// # use flow_runtime::prelude::*;
    /// # use std::sync::Arc;
    /// # #[workflow(deps = Arc<String>)]
    /// # pub mod greet {
    /// #     use super::*;
    /// #     #[step(entry, exit)]
    /// #     pub async fn hello(ctx: &Ctx<Arc<String>>, name: String) -> Result<String, Invalid> {
    /// #         Ok(format!("{}, {name}", ctx.deps()))
    /// #     }
    /// # }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), greet::FlowError> {
    /// let ctx = Ctx::new(Arc::new("hello".to_owned()));
    /// assert_eq!(greet::Workflow::run(&ctx, "Ada".into()).await?, "hello, Ada");
    /// let next = ctx.next_run();
    /// assert_ne!(next.run_id(), ctx.run_id());
    /// assert_eq!(greet::Workflow::run(&next, "Bob".into()).await?, "hello, Bob");
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn next_run(&self) -> Ctx<D>
    where
        D: Clone,
    {
        CtxBuilder {
            run_id: None,
            deps: self.shared.deps.clone(),
            store: self.shared.store.clone(),
            tools: self.shared.tools.clone(),
            outputs: self.shared.outputs.clone(),
            first_attempt: 1,
        }
        .build()
    }

    /// The user's dependencies.
    #[must_use]
    pub fn deps(&self) -> &D {
        &self.shared.deps
    }

    /// The run this context belongs to.
    #[must_use]
    pub fn run_id(&self) -> &RunId {
        self.shared.run_id.get()
    }

    /// The step being run, or `None` outside a step.
    #[must_use]
    pub fn step(&self) -> Option<&'static str> {
        self.scope.step_name()
    }

    /// Which attempt of the current step this is, from 1.
    ///
    /// Outside a step, the attempt the first step will have (see
    /// [`CtxBuilder::first_attempt`]).
    #[must_use]
    pub fn attempt(&self) -> u32 {
        self.scope.attempt()
    }

    /// Which visit of the current step this is: a step inside a loop runs once per turn, a
    /// `workers` step once per item. With the run, the step and a call's position within the
    /// visit, it makes the call's [`IdempotencyKey`](crate::tool::IdempotencyKey). [`Visit::FIRST`] outside a step.
    #[must_use]
    pub fn visit(&self) -> Visit {
        self.scope.visit()
    }

    /// The tools the run was given. Not public: through it, step code could call any tool of
    /// the run, one its step does not declare or one that needs a person's approval, with no
    /// journal entry ([`Ctx::call`] is the way in).
    #[must_use]
    pub(crate) fn toolbox(&self) -> &Toolbox {
        &self.shared.tools
    }

    /// Every tool call and output delivery of the run so far, in the order they ended, failed
    /// ones and those of failed steps included. A store keeps each step's calls with the
    /// step's checkpoint.
    #[must_use]
    pub fn calls(&self) -> Vec<CallRecord> {
        self.shared.calls.all()
    }

    /// Calls tool `T`, one the step declared in `#[step(tools = [...])]`, under its policy
    /// from the run's [`Toolbox`].
    ///
    /// The call's [`IdempotencyKey`](crate::tool::IdempotencyKey) is derived from the run, the step, the step's
    /// [`visit`](Ctx::visit) (a loop's turn, a `workers` item) and the call's position among the
    /// visit's calls: the same for every retry, and for the same call when the step runs again
    /// after a crash; different for every other call. The call is recorded in the run's history ([`Ctx::calls`],
    /// and the store with the step's checkpoint): tool, attempts, duration, outcome.
    ///
    /// ```
    /// use flow_runtime::prelude::*;
    /// use flow_runtime::tool::Toolbox;
    ///
    /// pub struct Shout;
    ///
    /// impl Tool for Shout {
    ///     type Input = String;
    ///     type Output = String;
    ///     const NAME: &'static str = "shout";
    ///     const DESCRIPTION: &'static str = "Upper-cases its input.";
    ///
    ///     async fn call(&self, _: &ToolCtx, input: String) -> Result<String, ToolError> {
    ///         Ok(input.to_uppercase())
    ///     }
    /// }
    ///
    /// #[workflow]
    /// pub mod greet {
    ///     use super::*;
    ///
    ///     #[step(entry, exit, tools = [Shout])]
    ///     pub async fn hello(ctx: &Ctx<(), tools::Hello>, name: String) -> Result<String, CallError> {
    ///         ctx.call::<Shout>(format!("hello, {name}")).await
    ///     }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let tools = Toolbox::new().with(PolicyTool::new(Shout, ToolPolicy::default()));
    /// let ctx = Ctx::builder(()).tools(tools).build();
    /// assert_eq!(greet::Workflow::run(&ctx, "Ada".into()).await.unwrap(), "HELLO, ADA");
    /// assert_eq!(ctx.calls()[0].name, "shout");
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// The tool is not in the run's toolbox, or its call failed: see [`CallError`].
    pub fn call<T: Tool>(&self, input: T::Input) -> ToolCall<'_, T>
    where
        P: CanCall<T>,
        D: Send + Sync,
    {
        ToolCall::new(self.call_with::<T>(None, input))
    }

    /// [`call`](Ctx::call), counting the call against `rate_key`'s own rate budget as well
    /// (a tenant, a user): see
    /// [`ToolPolicyBuilder::rate_limit_per_key`](crate::tool::ToolPolicyBuilder::rate_limit_per_key).
    ///
    /// # Errors
    ///
    /// As [`call`](Ctx::call).
    pub fn call_for<'a, T: Tool>(&'a self, rate_key: &'a str, input: T::Input) -> ToolCall<'a, T>
    where
        P: CanCall<T>,
        D: Send + Sync,
    {
        ToolCall::new(self.call_with::<T>(Some(rate_key), input))
    }

    pub(crate) async fn call_with<T: Tool>(
        &self,
        rate_key: Option<&str>,
        input: T::Input,
    ) -> Result<T::Output, CallError> {
        self.call_as::<T>(rate_key, input, &Annotate::tool()).await
    }

    /// [`call_with`](Self::call_with), recorded as `annotate` says (a model call with its
    /// tokens).
    pub(crate) async fn call_as<T: Tool>(
        &self,
        rate_key: Option<&str>,
        input: T::Input,
        annotate: &Annotate<T::Output>,
    ) -> Result<T::Output, CallError> {
        let slot = self.begin_call();
        if let Some(replayed) = self.replay_as::<T>(&slot, annotate).await {
            return replayed;
        }
        self.call_in_as::<T>(&slot, rate_key, input, annotate).await
    }

    /// The journal's result for the call in `slot`, if it was recorded.
    pub(crate) async fn replay<T: Tool>(
        &self,
        slot: &CallSlot,
    ) -> Option<Result<T::Output, CallError>> {
        self.replay_as::<T>(slot, &Annotate::tool()).await
    }

    async fn replay_as<T: Tool>(
        &self,
        slot: &CallSlot,
        annotate: &Annotate<T::Output>,
    ) -> Option<Result<T::Output, CallError>> {
        self.scope
            .replay::<T>(
                self.shared.store.as_deref(),
                self.shared.run_id.get(),
                &self.shared.calls,
                slot,
                annotate,
            )
            .await
    }

    /// Makes the call in `slot` (not journaled): under its policy, recorded in the history
    /// and the journal.
    pub(crate) async fn call_in<T: Tool>(
        &self,
        slot: &CallSlot,
        rate_key: Option<&str>,
        input: T::Input,
    ) -> Result<T::Output, CallError> {
        self.call_in_as::<T>(slot, rate_key, input, &Annotate::tool())
            .await
    }

    async fn call_in_as<T: Tool>(
        &self,
        slot: &CallSlot,
        rate_key: Option<&str>,
        input: T::Input,
        annotate: &Annotate<T::Output>,
    ) -> Result<T::Output, CallError> {
        let store = self.shared.store.as_deref();
        let (result, attempts) = match self.shared.tools.get::<T>() {
            Some(tool) => tool.call_counted(rate_key, &slot.key, input).await,
            None => (Err(CallError::NotRegistered { tool: T::NAME }), 0),
        };
        let outcome = match &result {
            Ok(_) => CallOutcome::Ok,
            Err(e) => CallOutcome::Failed(e.to_string()),
        };
        self.scope.end(
            &self.shared.calls,
            slot,
            annotate.kind,
            T::NAME,
            attempts,
            outcome,
            result.as_ref().ok().and_then(annotate.usage),
        );
        // The entry is made before the write's await: the output need not be `Sync`.
        let entry = self.scope.journal_entry::<T>(
            store,
            self.shared.run_id.get(),
            slot,
            attempts,
            &result,
        )?;
        if let (Some(store), Some(entry)) = (store, entry) {
            StepScope::record(store, T::NAME, entry).await?;
        }
        result
    }

    /// The context of one visit of one step, as the driver scoped it.
    pub(crate) fn scoped<Q>(&self, scope: StepScope) -> Ctx<D, Q> {
        Ctx {
            shared: Arc::clone(&self.shared),
            scope,
            tools: PhantomData,
        }
    }

    /// Begins the next call of this context: its slot (identity) in the step's scope, or
    /// outside a step.
    pub(crate) fn begin_call(&self) -> CallSlot {
        self.scope
            .begin(self.shared.run_id.get(), &self.shared.outside_calls)
    }

    /// The step scope this context runs in.
    pub(crate) fn scope(&self) -> &StepScope {
        &self.scope
    }

    pub(crate) fn recorder(&self) -> &Recorder {
        &self.shared.calls
    }

    pub(crate) fn outputs(&self) -> Option<&Outputs> {
        self.shared.outputs.as_deref()
    }

    pub(crate) fn store(&self) -> Option<&dyn DynStore> {
        self.shared.store.as_deref()
    }

    /// Claims this context's one run, for a run that starts without a store: `false` when a
    /// run has started on it (or a clone of it) already. With a store, the store's refusal of
    /// a second start ([`Checkpoint::new_run`](crate::store::Checkpoint::new_run)) says that
    /// instead, and a start the store failed to record may be tried again.
    pub(crate) fn claim_start(&self) -> bool {
        !self.shared.started.swap(true, Ordering::AcqRel)
    }

    pub(crate) fn first_attempt(&self) -> u32 {
        self.shared.first_attempt
    }

    /// Where a step tells the driver to park the run.
    pub(crate) fn park_slot(&self) -> &crate::driver::ParkSlot {
        &self.shared.park
    }
}

/// Builds a [`Ctx`]; made by [`Ctx::builder`].
#[must_use]
pub struct CtxBuilder<D> {
    run_id: Option<RunId>,
    deps: D,
    store: Option<Arc<dyn DynStore>>,
    tools: Toolbox,
    outputs: Option<Arc<Outputs>>,
    first_attempt: u32,
}

impl<D> fmt::Debug for CtxBuilder<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CtxBuilder")
            .field("run_id", &self.run_id)
            .field("store", &self.store.is_some())
            .field("tools", &self.tools)
            .field("outputs", &self.outputs)
            .field("first_attempt", &self.first_attempt)
            .finish_non_exhaustive()
    }
}

impl<D> CtxBuilder<D> {
    /// The run's id; random when not set.
    pub fn run_id(mut self, run_id: impl Into<RunId>) -> Self {
        self.run_id = Some(run_id.into());
        self
    }

    /// Where to store a checkpoint after every step. Without one, runs are in memory only.
    pub fn store(mut self, store: Arc<impl Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// The tools the run's steps may call, each as its `#[step(tools = [...])]` allows.
    pub fn tools(mut self, tools: Toolbox) -> Self {
        self.tools = tools;
        self
    }

    /// Where the run's results go: sinks attached to steps and to the exit, delivered after
    /// the step that produced them and before its checkpoint (see [`crate::output`]). A run
    /// refuses to start when a sink is attached to a step the workflow does not have.
    pub fn outputs(mut self, outputs: Outputs) -> Self {
        self.outputs = Some(Arc::new(outputs));
        self
    }

    /// [`outputs`](Self::outputs), shared with other contexts (an engine's runs).
    pub(crate) fn shared_outputs(mut self, outputs: Option<Arc<Outputs>>) -> Self {
        self.outputs = outputs;
        self
    }

    /// [`store`](Self::store) for a store already type-erased.
    pub(crate) fn dyn_store(mut self, store: Arc<dyn DynStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// The attempt number of the first step this context runs, for resuming a run whose step
    /// was interrupted: an engine that finds the run's last checkpoint before a step that had
    /// started passes 2. Later steps start at 1. Values below 1 are taken as 1.
    pub fn first_attempt(mut self, attempt: u32) -> Self {
        self.first_attempt = attempt.max(1);
        self
    }

    /// The context.
    pub fn build(self) -> Ctx<D> {
        let attempt = self.first_attempt;
        Ctx {
            shared: Arc::new(Shared {
                run_id: self.run_id.map_or_else(LazyRunId::random, LazyRunId::given),
                deps: self.deps,
                store: self.store,
                tools: self.tools,
                outputs: self.outputs,
                calls: Recorder::default(),
                outside_calls: AtomicU32::new(0),
                first_attempt: attempt,
                started: AtomicBool::new(false),
                park: crate::driver::ParkSlot::default(),
            }),
            scope: StepScope::outside(attempt),
            tools: PhantomData,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RunId;
    use std::collections::HashSet;

    #[test]
    fn random_run_ids_are_distinct_v4_uuids() {
        let ids: Vec<RunId> = (0..10_000).map(|_| RunId::random()).collect();
        let distinct: HashSet<&str> = ids.iter().map(RunId::as_str).collect();
        assert_eq!(distinct.len(), ids.len());
        for id in &ids[..100] {
            let uuid = uuid::Uuid::parse_str(id.as_str()).unwrap();
            assert_eq!(uuid.get_version(), Some(uuid::Version::Random));
            assert_eq!(uuid.get_variant(), uuid::Variant::RFC4122);
            assert_eq!(uuid.hyphenated().to_string(), id.as_str());
        }
    }

    #[test]
    fn random_run_ids_from_other_threads_are_distinct_too() {
        let threads: Vec<_> = (0..4)
            .map(|_| std::thread::spawn(|| (0..1000).map(|_| RunId::random()).collect::<Vec<_>>()))
            .collect();
        let mut distinct = HashSet::new();
        for thread in threads {
            for id in thread.join().unwrap() {
                assert!(distinct.insert(id));
            }
        }
        assert_eq!(distinct.len(), 4000);
    }

    /// A context made without an id writes its random one out when first read: every read,
    /// from any clone and any thread, sees that same id, and two contexts never share one.
    #[test]
    fn a_contexts_own_id_is_made_once_and_shared_by_its_clones() {
        let ctx = super::Ctx::new(());
        let clones: Vec<_> = (0..4).map(|_| ctx.clone()).collect();
        let read: Vec<RunId> = std::thread::scope(|scope| {
            let readers: Vec<_> = clones
                .iter()
                .map(|clone| scope.spawn(move || clone.run_id().clone()))
                .collect();
            readers.into_iter().map(|r| r.join().unwrap()).collect()
        });
        assert!(read.iter().all(|id| id == ctx.run_id()));
        assert!(uuid::Uuid::parse_str(ctx.run_id().as_str()).is_ok());
        assert_ne!(super::Ctx::new(()).run_id(), ctx.run_id());
        let given = super::Ctx::builder(()).run_id("given").build();
        assert_eq!(given.run_id().as_str(), "given");
    }
}
