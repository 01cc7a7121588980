//! [`JournalEntry`]: one completed tool call of a step, as the call journal keeps it.

use crate::state::RunId;
use crate::tool::Visit;

/// One completed tool call (a model call included) of a step, kept in the store's call
/// journal so that the step, run again, gets the call's result back without calling the tool.
///
/// A call is identified by its run, [`step`](Self::step), [`visit`](Self::visit) and
/// [`position`](Self::position) among the visit's calls: the same identity its
/// [`IdempotencyKey`](crate::tool::IdempotencyKey) is derived from.
///
/// ```
/// use flow_runtime::state::RunId;
/// use flow_runtime::store::{JournalEntry, JournalResult};
/// use flow_runtime::tool::Visit;
///
/// let entry = JournalEntry::new(
///     RunId::from("run-1"),
///     "search",
///     Visit::FIRST,
///     0,
///     "wiki_search",
///     1,
///     JournalResult::Output(serde_json::json!(["flow", "docs"])),
/// );
/// assert_eq!(entry.position, 0);
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct JournalEntry {
    /// The run that made the call.
    pub run_id: RunId,
    /// The step that made it.
    pub step: String,
    /// The visit of the step (a loop's turn, a `workers` item) that made it.
    pub visit: Visit,
    /// Its position among the visit's calls, from 0.
    pub position: u32,
    /// The tool's name.
    pub tool: String,
    /// How many attempts the call took.
    pub attempts: u32,
    /// Its result: the tool's output as JSON, or its permanent failure.
    pub result: JournalResult,
    /// Written only: the fence of the writer's lease on the run (see
    /// [`RunQueue`](crate::store::RunQueue#leases-and-fencing)); the store refuses the entry
    /// unless it is the run's current fence. `None`: not fenced.
    pub fence: Option<crate::store::Fence>,
}

impl JournalEntry {
    /// An entry for call `position` of `visit` of `step` in run `run_id`.
    #[must_use]
    pub fn new(
        run_id: RunId,
        step: impl Into<String>,
        visit: Visit,
        position: u32,
        tool: impl Into<String>,
        attempts: u32,
        result: JournalResult,
    ) -> Self {
        Self {
            run_id,
            step: step.into(),
            visit,
            position,
            tool: tool.into(),
            attempts,
            result,
            fence: None,
        }
    }

    /// The entry, written under a lease with `fence` (see [`JournalEntry::fence`]).
    #[must_use]
    pub fn with_fence(mut self, fence: Option<crate::store::Fence>) -> Self {
        self.fence = fence;
        self
    }

    /// How many bytes the entry's result takes as JSON text (its output, or its error's
    /// message): what a store keeps for it besides the key.
    #[must_use]
    pub fn result_bytes(&self) -> usize {
        match &self.result {
            JournalResult::Output(value) => value.to_string().len(),
            JournalResult::Failed(message) => message.len(),
        }
    }
}

/// How a journaled call ended.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum JournalResult {
    /// The tool returned this output (as JSON).
    Output(serde_json::Value),
    /// The tool failed with a permanent error, whose message this is: running the call
    /// again would fail the same way, so a replay fails with it too.
    Failed(String),
}
