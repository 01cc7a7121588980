use crate::state::Store;
use crate::state::store::DynStore;
use std::fmt;
use std::sync::Arc;

/// The identifier of one run of a workflow.
///
/// Cheap to clone. Made up of any string; [`RunId::random`] makes a fresh UUID.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct RunId(Arc<str>);

impl RunId {
    /// A new random (UUID v4) run id.
    #[must_use]
    pub fn random() -> Self {
        Self(uuid::Uuid::new_v4().to_string().into())
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

struct Shared<D> {
    run_id: RunId,
    deps: D,
    store: Option<Arc<dyn DynStore>>,
    first_attempt: u32,
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
/// Cloning is cheap: the run's data is shared.
pub struct Ctx<D = ()> {
    shared: Arc<Shared<D>>,
    step: Option<&'static str>,
    attempt: u32,
}

impl<D> Clone for Ctx<D> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
            step: self.step,
            attempt: self.attempt,
        }
    }
}

impl<D> fmt::Debug for Ctx<D> {
    // `deps` is left out on purpose: it may hold credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ctx")
            .field("run_id", &self.shared.run_id)
            .field("step", &self.step)
            .field("attempt", &self.attempt)
            .field("store", &self.shared.store.is_some())
            .finish_non_exhaustive()
    }
}

impl<D> Ctx<D> {
    /// A context for a new run with a random [`RunId`], no store, and `deps`.
    pub fn new(deps: D) -> Self {
        Self::builder(deps).build()
    }

    /// A builder, to set the run id, a checkpoint store or the first attempt number.
    pub fn builder(deps: D) -> CtxBuilder<D> {
        CtxBuilder {
            run_id: None,
            deps,
            store: None,
            first_attempt: 1,
        }
    }

    /// The user's dependencies.
    #[must_use]
    pub fn deps(&self) -> &D {
        &self.shared.deps
    }

    /// The run this context belongs to.
    #[must_use]
    pub fn run_id(&self) -> &RunId {
        &self.shared.run_id
    }

    /// The step being run, or `None` outside a step.
    #[must_use]
    pub fn step(&self) -> Option<&'static str> {
        self.step
    }

    /// Which attempt of the current step this is, from 1.
    ///
    /// Outside a step, the attempt the first step will have (see
    /// [`CtxBuilder::first_attempt`]).
    #[must_use]
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    pub(crate) fn for_step(&self, step: &'static str, attempt: u32) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
            step: Some(step),
            attempt,
        }
    }

    pub(crate) fn store(&self) -> Option<&dyn DynStore> {
        self.shared.store.as_deref()
    }

    pub(crate) fn first_attempt(&self) -> u32 {
        self.shared.first_attempt
    }
}

/// Builds a [`Ctx`]; made by [`Ctx::builder`].
#[must_use]
pub struct CtxBuilder<D> {
    run_id: Option<RunId>,
    deps: D,
    store: Option<Arc<dyn DynStore>>,
    first_attempt: u32,
}

impl<D> fmt::Debug for CtxBuilder<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CtxBuilder")
            .field("run_id", &self.run_id)
            .field("store", &self.store.is_some())
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
                run_id: self.run_id.unwrap_or_else(RunId::random),
                deps: self.deps,
                store: self.store,
                first_attempt: attempt,
            }),
            step: None,
            attempt,
        }
    }
}
