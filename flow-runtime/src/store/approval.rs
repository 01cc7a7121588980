//! Approvals: one approval-gated tool call waiting for a person, as the store keeps it.

use crate::error::{StoreError, StoreErrorKind};
use crate::state::RunId;
use crate::tool::Visit;
use std::time::SystemTime;

/// The event name a run waiting for an approval is recorded with ([`Store::wait`]): its
/// [`RunInfo::wait`] reads `("flow.approval", deadline)` while the approval is pending.
///
/// [`Store::wait`]: crate::store::Store::wait
/// [`RunInfo::wait`]: crate::store::RunInfo::wait
pub const APPROVAL_EVENT: &str = "flow.approval";

/// One approval-gated tool call of a run: asked for when the step (or its agent) wanted to
/// make the call, decided by a person ([`Engine::approve`], [`Engine::approve_with`],
/// [`Engine::reject`]) or by its deadline passing.
///
/// It is identified by its run and its call's identity (step, visit, position), like a
/// [`JournalEntry`](crate::store::JournalEntry), and named for people by
/// [`call_id`](Self::call_id): the call's idempotency key, unique across runs and never
/// reused, so an approval given for one call cannot approve another.
///
/// [`Engine::approve`]: crate::state::Engine::approve
/// [`Engine::approve_with`]: crate::state::Engine::approve_with
/// [`Engine::reject`]: crate::state::Engine::reject
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct Approval {
    /// The run.
    pub run_id: RunId,
    /// The step that asked.
    pub step: String,
    /// The step's visit.
    pub visit: Visit,
    /// The call's position among the visit's calls.
    pub position: u32,
    /// The call's id, what a person approves: its idempotency key.
    pub call_id: String,
    /// The id the model gave the tool call, when an agent asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_call_id: Option<String>,
    /// The tool's name.
    pub tool: String,
    /// The arguments the call was asked with, as JSON: what is approved.
    pub arguments: serde_json::Value,
    /// When the request times out: a call still undecided then is
    /// [`Decision::TimedOut`].
    pub until: SystemTime,
    /// The decision, once there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
    /// Written only: the fence of the asking worker's lease on the run (see
    /// [`RunQueue`](crate::store::RunQueue#leases-and-fencing)); the store refuses the
    /// request unless it is the run's current fence. `None`: not fenced. Never read back.
    #[serde(skip)]
    pub fence: Option<crate::store::Fence>,
}

impl Approval {
    /// A pending request for call `position` of `visit` of `step` of run `run_id`.
    #[must_use]
    #[allow(clippy::too_many_arguments)] // one per field; the runtime and stores fill them
    pub fn new(
        run_id: RunId,
        step: impl Into<String>,
        visit: Visit,
        position: u32,
        call_id: impl Into<String>,
        tool: impl Into<String>,
        arguments: serde_json::Value,
        until: SystemTime,
    ) -> Self {
        Self {
            run_id,
            step: step.into(),
            visit,
            position,
            call_id: call_id.into(),
            model_call_id: None,
            tool: tool.into(),
            arguments,
            until,
            decision: None,
            fence: None,
        }
    }

    /// The request, made under a lease with `fence` (see [`Approval::fence`]).
    #[must_use]
    pub fn with_fence(mut self, fence: Option<crate::store::Fence>) -> Self {
        self.fence = fence;
        self
    }

    /// The request with the model's id for the tool call.
    #[must_use]
    pub fn with_model_call_id(mut self, id: Option<String>) -> Self {
        self.model_call_id = id;
        self
    }

    /// The request with `decision`.
    #[must_use]
    pub fn with_decision(mut self, decision: Option<Decision>) -> Self {
        self.decision = decision;
        self
    }

    /// Whether it still waits for a decision.
    #[must_use]
    pub fn is_pending(&self) -> bool {
        self.decision.is_none()
    }
}

/// How an approval was decided.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "decision")]
#[non_exhaustive]
pub enum Decision {
    /// Approved: the call is made, with the arguments it was asked with, or with `edited`.
    Approved {
        /// The arguments a person put in place of the asked ones
        /// ([`Engine::approve_with`](crate::state::Engine::approve_with)).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        edited: Option<serde_json::Value>,
    },
    /// Rejected, for `reason`: the call is not made; an agent's model gets the reason as the
    /// tool's result.
    Rejected {
        /// Why, in a person's words.
        reason: String,
    },
    /// Nobody decided before the deadline: the call is not made.
    TimedOut,
}

/// Why an approval, rejection or timeout was refused: [`Store::decide_approval`] and the
/// engine's [`approve`](crate::state::Engine::approve) family.
///
/// [`Store::decide_approval`]: crate::store::Store::decide_approval
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApprovalError {
    /// The run is not in the store.
    #[error("run `{run_id}` is not in the store")]
    UnknownRun {
        /// The run.
        run_id: RunId,
    },
    /// The run waits for no approval.
    #[error(
        "run `{run_id}` waits for no approval (call `{call_id}`): read its pending approval from `RunInfo::approval`"
    )]
    NotPending {
        /// The run.
        run_id: RunId,
        /// The call id given.
        call_id: String,
    },
    /// The run waits for the approval of another call: an approval applies only to the call
    /// it names.
    #[error(
        "run `{run_id}` waits for the approval of call `{pending}` (tool `{tool}`), not of `{call_id}`: approve the call that is pending"
    )]
    OtherCall {
        /// The run.
        run_id: RunId,
        /// The call id given.
        call_id: String,
        /// The call that is pending.
        pending: String,
        /// Its tool.
        tool: String,
    },
    /// The call was decided already (approved, rejected or timed out): a decision is given
    /// once, and a stale one is never reused.
    #[error(
        "call `{call_id}` of run `{run_id}` was decided already ({decision:?}): it cannot be decided again"
    )]
    Decided {
        /// The run.
        run_id: RunId,
        /// The call.
        call_id: String,
        /// How it was decided.
        decision: Decision,
    },
    /// The approval's deadline passed before the decision came: the call times out.
    #[error(
        "the approval of call `{call_id}` of run `{run_id}` expired: its deadline passed before a decision"
    )]
    Expired {
        /// The run.
        run_id: RunId,
        /// The call.
        call_id: String,
    },
    /// The store failed, or has no approvals.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a store does when asked to decide `call_id` of a run with approvals `approvals`
/// (the run's, in the order asked): the index of the approval to decide, or why not. For
/// stores implementing [`Store::decide_approval`](crate::store::Store::decide_approval) over
/// their own records; `now` is the store's clock.
///
/// # Errors
///
/// [`ApprovalError::NotPending`], [`OtherCall`](ApprovalError::OtherCall),
/// [`Decided`](ApprovalError::Decided), [`Expired`](ApprovalError::Expired); and
/// [`Store`](ApprovalError::Store) of kind [`Unstorable`](crate::error::StoreErrorKind::Unstorable)
/// for edited arguments the store could not read back (nested deeper than
/// [`MAX_JSON_DEPTH`](crate::state::MAX_JSON_DEPTH)): stored, they would make the run
/// unreadable.
pub fn decidable(
    run_id: &RunId,
    call_id: &str,
    decision: &Decision,
    approvals: &[Approval],
    now: SystemTime,
) -> Result<usize, ApprovalError> {
    if let Decision::Approved {
        edited: Some(edited),
    } = decision
        && let Some(reason) = crate::state::too_deep(edited)
    {
        return Err(ApprovalError::Store(StoreError::of_kind(
            StoreErrorKind::Unstorable,
            format!(
                "run `{run_id}`: the arguments approved for call `{call_id}` are refused: {reason}"
            ),
        )));
    }
    match approvals.iter().position(|a| a.call_id == call_id) {
        Some(i) => {
            let approval = &approvals[i];
            if let Some(decided) = &approval.decision {
                return Err(ApprovalError::Decided {
                    run_id: run_id.clone(),
                    call_id: call_id.to_owned(),
                    decision: decided.clone(),
                });
            }
            // A timeout is the deadline's own decision; a person's comes before it.
            if *decision != Decision::TimedOut && now >= approval.until {
                return Err(ApprovalError::Expired {
                    run_id: run_id.clone(),
                    call_id: call_id.to_owned(),
                });
            }
            Ok(i)
        }
        None => match approvals.iter().find(|a| a.is_pending()) {
            Some(pending) => Err(ApprovalError::OtherCall {
                run_id: run_id.clone(),
                call_id: call_id.to_owned(),
                pending: pending.call_id.clone(),
                tool: pending.tool.clone(),
            }),
            None => Err(ApprovalError::NotPending {
                run_id: run_id.clone(),
                call_id: call_id.to_owned(),
            }),
        },
    }
}
