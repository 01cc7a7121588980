//! The validated graph: what `check` builds from the [`Workflow`](super::Workflow) and
//! `expand` reads. Every edge, join and loop counter here has been checked; indices are
//! positions in `Workflow::steps`.

/// A validated workflow graph. Indices are positions in `Workflow::steps`.
pub(crate) struct Graph {
    pub(crate) entry: usize,
    pub(crate) exits: Vec<usize>,
    pub(crate) roles: Vec<Role>,
    pub(crate) next: Vec<Next>,
    /// One counter per back-edge, bounded or not: (route step, variant).
    pub(crate) counters: Vec<(usize, usize)>,
    /// Per step, the earlier outputs (`#[from(x)]`) its `FlowState` variant carries, in step
    /// order: those that this step or a step after it still reads. Empty for branches (their
    /// join's variant carries them) and for steps nothing after reads through.
    pub(crate) carry: Vec<Vec<usize>>,
}

/// How a step receives its input.
pub(crate) enum Role {
    /// Takes the workflow's raw input.
    Entry,
    /// Takes the output of one predecessor (or a route's payload).
    Single,
    /// Runs concurrently with its siblings after `fork`, then feeds `join` at position `slot`.
    Branch { join: usize, slot: usize },
    /// Waits for every branch of `fork`.
    Join { fork: usize, branches: Vec<usize> },
}

/// What happens after a step.
pub(crate) enum Next {
    Exit,
    Step(usize),
    /// The step's successors are the branches of `join`.
    Fork {
        join: usize,
    },
    /// The step is a branch; its output waits in `join`'s state.
    Join {
        join: usize,
    },
    Route {
        enum_index: usize,
        arms: Vec<Arm>,
    },
}

pub(crate) struct Arm {
    pub(crate) variant: usize,
    pub(crate) target: usize,
    pub(crate) back: bool,
    pub(crate) bound: Option<Bound>,
    /// The back-edge's counter (every back-edge has one: their sum tells a step's visits
    /// apart), `None` for a forward route.
    pub(crate) counter: Option<usize>,
}

pub(crate) struct Bound {
    pub(crate) max: u32,
    pub(crate) exhausted: usize,
    pub(crate) counter: usize,
}
