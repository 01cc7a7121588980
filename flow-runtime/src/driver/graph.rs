//! The graph table `#[workflow]` generates as a `const`, and the driver reads: the run's rules
//! come from here, not from generated code.

use std::time::Duration;

/// A workflow's graph, as the driver needs it.
#[derive(Clone, Copy, Debug)]
pub struct Graph {
    /// The workflow's name.
    pub workflow: &'static str,
    /// Its fingerprint (see [`Workflow::FINGERPRINT`](crate::state::Workflow::FINGERPRINT)).
    pub fingerprint: &'static str,
    /// The entry step's index.
    pub entry: usize,
    /// Every step, in declaration order: a [`Position`](super::Position) names them by index.
    pub steps: &'static [StepInfo],
}

/// One step of a [`Graph`].
#[derive(Clone, Copy, Debug)]
pub struct StepInfo {
    /// The step's name.
    pub name: &'static str,
    /// Where it sits in the graph.
    pub kind: StepKind,
    /// Whether its output ends the run.
    pub exit: bool,
    /// Whether its output can go to sinks (every step's but a routing step's, whose output
    /// is the route taken).
    pub deliverable: bool,
    /// The event it waits for before it runs, if any.
    pub wait: Option<EventWait>,
    /// Whether it returns `Sleep<T>`.
    pub sleeps: bool,
}

/// Where a step sits in the graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepKind {
    /// One input, one next step (or the exit).
    Plain,
    /// A step of a branch of the fan-out that join `join` collects: the branch's only step,
    /// or any step of a branch that is a chain (the join's state says which runs next).
    Branch {
        /// The join's index.
        join: usize,
    },
    /// A join: runs once all of `branches` (indices) have run.
    Join {
        /// Its branches' last steps' indices, in the order of its parameters.
        branches: &'static [usize],
    },
    /// Returns a route enum: its variant picks the next step.
    Route,
}

/// A step's event wait.
#[derive(Clone, Copy, Debug)]
pub struct EventWait {
    /// The event's name (its type's name).
    pub event: &'static str,
    /// How long the wait lasts: the user's `timeout = …` expression.
    pub timeout: fn() -> Duration,
}

impl StepInfo {
    /// A step named `name` of kind `kind`: not an exit, deliverable, no wait, no sleep.
    #[must_use]
    pub const fn new(name: &'static str, kind: StepKind) -> Self {
        Self {
            name,
            kind,
            exit: false,
            deliverable: true,
            wait: None,
            sleeps: false,
        }
    }

    /// The step returns a route enum (a plain step or a join): no sink takes its output.
    #[must_use]
    pub const fn routes(mut self) -> Self {
        self.deliverable = false;
        self
    }

    /// The step is an exit.
    #[must_use]
    pub const fn exit(mut self) -> Self {
        self.exit = true;
        self
    }

    /// The step waits for `event` for `timeout()` before it runs.
    #[must_use]
    pub const fn waits(mut self, event: &'static str, timeout: fn() -> Duration) -> Self {
        self.wait = Some(EventWait { event, timeout });
        self
    }

    /// The step returns `Sleep<T>`.
    #[must_use]
    pub const fn sleeps(mut self) -> Self {
        self.sleeps = true;
        self
    }
}

impl Graph {
    /// The steps whose outputs sinks can be attached to.
    #[must_use]
    pub fn deliverable(&self) -> Vec<&'static str> {
        self.steps
            .iter()
            .filter(|s| s.deliverable)
            .map(|s| s.name)
            .collect()
    }

    /// Step `index`, if the graph has it.
    #[must_use]
    pub fn step(&self, index: usize) -> Option<&'static StepInfo> {
        self.steps.get(index)
    }
}
