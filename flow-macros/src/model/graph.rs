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
    /// A step of a branch of a fan-out: the branches run concurrently after `fork`, each a
    /// chain of one or more steps; the chain's last step feeds `join` at position `slot`.
    Branch { join: usize, slot: usize },
    /// Waits for every branch of `fork`. `branches` are the branches' last steps, in the
    /// join's `after` order (slot `k` is the join's parameter `k`); `chains[k]` is branch
    /// `k`'s steps, first to last (one step for a branch that is not a chain).
    Join {
        fork: usize,
        branches: Vec<usize>,
        chains: Vec<Vec<usize>>,
    },
}

/// What happens after a step.
pub(crate) enum Next {
    Exit,
    Step(usize),
    /// The step's successors are the first steps of the branches of `join`.
    Fork {
        join: usize,
    },
    /// The step is a branch's last step; its output waits in `join`'s state. (The steps of a
    /// chain before its last have `Step` of the next one.)
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

impl Graph {
    /// Step `i`'s branch, when it is a step of a branch of a fan-out: the join's index, the
    /// branch's steps (first to last), and `i`'s position among them.
    pub(crate) fn chain(&self, i: usize) -> Option<(usize, &[usize], usize)> {
        let Role::Branch { join, slot } = self.roles[i] else {
            return None;
        };
        let Role::Join { chains, .. } = &self.roles[join] else {
            return None;
        };
        let chain = chains.get(slot)?;
        let pos = chain.iter().position(|&s| s == i)?;
        Some((join, chain, pos))
    }

    /// The first steps of join `join`'s branches, in slot order (its fork's successors).
    pub(crate) fn heads(&self, join: usize) -> Vec<usize> {
        match &self.roles[join] {
            Role::Join { chains, .. } => chains.iter().filter_map(|c| c.first().copied()).collect(),
            _ => Vec::new(),
        }
    }

    /// Every step of every branch of join `join`, slot by slot, first to last.
    pub(crate) fn chain_steps(&self, join: usize) -> Vec<usize> {
        match &self.roles[join] {
            Role::Join { chains, .. } => chains.iter().flatten().copied().collect(),
            _ => Vec::new(),
        }
    }
}
