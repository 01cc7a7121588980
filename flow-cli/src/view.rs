//! The shapes the CLI prints with `--json`: stable field names scripts can rely on (and that a
//! web viewer can serve), built from the store's records. Times are RFC 3339 in UTC with
//! milliseconds; durations are whole milliseconds; absent values are `null`.

use crate::price::{Cost, PriceArgs};
use flow_runtime::state::{CallKind, CallOutcome, CallRecord};
use flow_runtime::store::{
    Approval, Decision, Failure, HistoryEntry, JournalEntry, JournalResult, RunInfo, RunState,
    WorkflowInfo,
};
use flow_runtime::tool::Visit;
use serde::Serialize;
use std::time::{Duration, SystemTime};

/// A time as the JSON output writes it: RFC 3339, UTC, milliseconds.
pub(crate) fn time(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(crate::output::writable(t)).to_string()
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// One run, as `flow runs list` prints it.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct RunView {
    pub(crate) run_id: String,
    pub(crate) workflow: String,
    pub(crate) fingerprint: String,
    /// The stored status: `running`, `paused`, `cancelled`, `finished`, `incompatible`,
    /// `failed`, `corrupt`.
    pub(crate) status: &'static str,
    /// Where it stands: the status, or for a running run `sleeping`, `waiting` (for an
    /// event) or `awaiting_approval` (of a tool call).
    pub(crate) state: &'static str,
    /// The step of its latest checkpoint.
    pub(crate) step: String,
    pub(crate) checkpoints: u64,
    pub(crate) created_at: String,
    pub(crate) updated_at: String,
    pub(crate) failure: Option<FailureView>,
    /// A sleeping run's wake-up time.
    pub(crate) wake_at: Option<String>,
    /// A waiting run's event and deadline.
    pub(crate) wait: Option<WaitView>,
    /// What in the run's record cannot be read.
    pub(crate) corrupt: Option<String>,
    /// The approval-gated call the run waits for, if it waits for one.
    pub(crate) approval: Option<ApprovalView>,
}

/// An approval-gated call: asked for, then decided by a person or its deadline.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct ApprovalView {
    /// What `flow approve RUN CALL` names.
    pub(crate) call_id: String,
    pub(crate) tool: String,
    /// The arguments the call was asked with.
    pub(crate) arguments: serde_json::Value,
    pub(crate) step: String,
    pub(crate) visit: String,
    pub(crate) position: u32,
    /// The id an agent's model gave the tool call.
    pub(crate) model_call_id: Option<String>,
    /// The deadline: undecided then, the call times out.
    pub(crate) until: String,
    /// `null` while pending; `approved`, `rejected` or `timed_out`.
    pub(crate) decision: Option<&'static str>,
    /// The arguments a person approved in place of the asked ones.
    pub(crate) edited: Option<serde_json::Value>,
    /// A rejection's reason.
    pub(crate) reason: Option<String>,
}

impl ApprovalView {
    pub(crate) fn of(approval: &Approval) -> Self {
        let (decision, edited, reason) = match &approval.decision {
            None => (None, None, None),
            Some(Decision::Approved { edited }) => (Some("approved"), edited.clone(), None),
            Some(Decision::Rejected { reason }) => (Some("rejected"), None, Some(reason.clone())),
            Some(Decision::TimedOut) => (Some("timed_out"), None, None),
            Some(_) => (Some("decided"), None, None),
        };
        Self {
            call_id: approval.call_id.clone(),
            tool: approval.tool.clone(),
            arguments: approval.arguments.clone(),
            step: approval.step.clone(),
            visit: visit_name(approval.visit),
            position: approval.position,
            model_call_id: approval.model_call_id.clone(),
            until: time(approval.until),
            decision,
            edited,
            reason,
        }
    }
}

/// Why a run failed.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct FailureView {
    pub(crate) step: Option<String>,
    pub(crate) reason: String,
}

impl FailureView {
    fn of(failure: &Failure) -> Self {
        Self {
            step: failure.step.clone(),
            reason: failure.reason.clone(),
        }
    }
}

/// The event a run waits for, and until when.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct WaitView {
    pub(crate) event: String,
    pub(crate) until: String,
}

/// The name of a run's state.
pub(crate) fn state_name(info: &RunInfo) -> &'static str {
    match info.state() {
        RunState::Sleeping { .. } => "sleeping",
        RunState::Waiting { .. } => "waiting",
        RunState::AwaitingApproval { .. } => "awaiting_approval",
        _ => info.status.as_str(),
    }
}

impl RunView {
    pub(crate) fn of(info: &RunInfo) -> Self {
        Self {
            run_id: info.run_id.as_str().to_owned(),
            workflow: info.workflow.clone(),
            fingerprint: info.fingerprint.clone(),
            status: info.status.as_str(),
            state: state_name(info),
            step: info.step.clone(),
            checkpoints: info.checkpoints,
            created_at: time(info.created_at),
            updated_at: time(info.updated_at),
            failure: info.failure.as_ref().map(FailureView::of),
            wake_at: info.wake_at.map(time),
            wait: info.wait.as_ref().map(|(event, until)| WaitView {
                event: event.clone(),
                until: time(*until),
            }),
            corrupt: info.corrupt.clone(),
            approval: info.approval.as_ref().map(ApprovalView::of),
        }
    }
}

/// A run with its history and calls, as `flow runs show` prints it.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct RunDetail {
    #[serde(flatten)]
    pub(crate) run: RunView,
    pub(crate) steps: Vec<StepView>,
    pub(crate) calls: Vec<CallView>,
    /// The tokens of the run's model calls, when any call said.
    pub(crate) tokens: Option<Tokens>,
    /// What those tokens cost at the prices given with `--price` (`null` without prices).
    pub(crate) cost: Option<Cost>,
    /// Every approval the run asked for, in the order asked, decided or not.
    pub(crate) approvals: Vec<ApprovalView>,
}

/// One checkpoint of a run's history.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct StepView {
    pub(crate) seq: u64,
    pub(crate) step: String,
    pub(crate) finished: bool,
    /// The attempt that completed the step (0: not recorded).
    pub(crate) attempt: u32,
    pub(crate) started_at: Option<String>,
    pub(crate) at: String,
    /// How long the attempt that completed the step took.
    pub(crate) duration_ms: Option<u64>,
    /// How many calls the step made.
    pub(crate) calls: usize,
    /// The failure of the step after this checkpoint, if it failed.
    pub(crate) failure: Option<FailureView>,
}

impl StepView {
    pub(crate) fn of(entry: &HistoryEntry) -> Self {
        Self {
            seq: entry.seq,
            step: entry.step.clone(),
            finished: entry.finished,
            attempt: entry.attempt,
            started_at: entry.started_at.map(time),
            at: time(entry.at),
            duration_ms: entry.duration().map(millis),
            calls: entry.calls.len(),
            failure: entry.failure.as_ref().map(FailureView::of),
        }
    }
}

/// Tokens a model call (or a run's model calls) used.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub(crate) struct Tokens {
    pub(crate) input: u64,
    pub(crate) output: u64,
}

impl Tokens {
    /// The tokens a journaled call's output reports: a model's answer
    /// ([`ChatResponse`](flow_runtime::model::ChatResponse)) says them in its `usage`.
    fn of(entry: &JournalEntry) -> Option<Self> {
        let JournalResult::Output(output) = &entry.result else {
            return None;
        };
        let usage = output.get("usage")?;
        Some(Self {
            input: usage.get("input_tokens")?.as_u64()?,
            output: usage.get("output_tokens")?.as_u64()?,
        })
    }

    /// Both counts added; the counts come from model servers, so a huge one saturates rather
    /// than wrap or panic.
    fn plus(self, other: Self) -> Self {
        Self {
            input: self.input.saturating_add(other.input),
            output: self.output.saturating_add(other.output),
        }
    }
}

/// One call a step made: a tool or model call, or an output delivery.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct CallView {
    pub(crate) step: String,
    /// The step's visit: `""` for its first, `turn N` in a loop, `item N` of a `workers`
    /// step.
    pub(crate) visit: String,
    /// The call's position among its visit's calls, from 0.
    pub(crate) position: u32,
    /// `tool` or `output`.
    pub(crate) kind: &'static str,
    pub(crate) name: String,
    pub(crate) attempts: u32,
    /// From the first attempt's start to the end of the last one; `null` for a call of a
    /// step whose checkpoint is not stored yet (known from the call journal only).
    pub(crate) duration_ms: Option<u64>,
    /// `ok` or `failed`.
    pub(crate) outcome: &'static str,
    pub(crate) error: Option<String>,
    pub(crate) tokens: Option<Tokens>,
    /// The model that answered, as the provider named it, for a model call that said.
    pub(crate) model: Option<String>,
    /// Whether the step's checkpoint holding the call is stored.
    pub(crate) checkpointed: bool,
}

/// How a visit reads in output.
pub(crate) fn visit_name(visit: Visit) -> String {
    match (visit.back_edges(), visit.item_index()) {
        (0, None) => String::new(),
        (turn, None) => format!("turn {turn}"),
        (0, Some(item)) => format!("item {item}"),
        (turn, Some(item)) => format!("turn {turn}, item {item}"),
    }
}

impl CallView {
    fn of_record(record: &CallRecord, journaled: Option<&JournalEntry>) -> Self {
        let (outcome, error) = match &record.outcome {
            CallOutcome::Failed(message) => ("failed", Some(message.clone())),
            _ => ("ok", None),
        };
        Self {
            step: record.step.clone(),
            visit: visit_name(record.visit),
            position: record.index,
            kind: match record.kind {
                CallKind::Output => "output",
                _ => "tool",
            },
            name: record.name.clone(),
            attempts: record.attempts,
            duration_ms: Some(millis(record.duration)),
            outcome,
            error,
            tokens: journaled.and_then(Tokens::of),
            model: journaled.and_then(model_of),
            checkpointed: true,
        }
    }

    fn of_journal(entry: &JournalEntry) -> Self {
        let (outcome, error) = match &entry.result {
            JournalResult::Failed(message) => ("failed", Some(message.clone())),
            _ => ("ok", None),
        };
        Self {
            step: entry.step.clone(),
            visit: visit_name(entry.visit),
            position: entry.position,
            kind: "tool",
            name: entry.tool.clone(),
            attempts: entry.attempts,
            duration_ms: None,
            outcome,
            error,
            tokens: Tokens::of(entry),
            model: model_of(entry),
            checkpointed: false,
        }
    }

    /// A model call that used `tokens`, for tests of what is computed from calls.
    #[cfg(test)]
    pub(crate) fn model_call(model: Option<&str>, tokens: Tokens) -> Self {
        Self {
            step: "ask".to_owned(),
            visit: String::new(),
            position: 0,
            kind: "tool",
            name: "model".to_owned(),
            attempts: 1,
            duration_ms: None,
            outcome: "ok",
            error: None,
            tokens: Some(tokens),
            model: model.map(str::to_owned),
            checkpointed: true,
        }
    }
}

/// The model a journaled call's output names: a model's answer says which model answered.
fn model_of(entry: &JournalEntry) -> Option<String> {
    let JournalResult::Output(output) = &entry.result else {
        return None;
    };
    Some(output.get("model")?.as_str()?.to_owned())
}

impl RunDetail {
    /// A run's detail: its steps, and its calls — those of stored checkpoints in order (with
    /// their durations, and tokens from the journal), then the journal's calls of steps whose
    /// checkpoint is not stored (a failed or running step).
    pub(crate) fn of(
        info: &RunInfo,
        history: &[HistoryEntry],
        journal: &[JournalEntry],
        approvals: &[Approval],
        prices: &PriceArgs,
    ) -> Self {
        let journaled = |record: &CallRecord| {
            journal.iter().find(|e| {
                record.kind == CallKind::Tool
                    && e.step == record.step
                    && e.visit == record.visit
                    && e.position == record.index
            })
        };
        let mut calls: Vec<CallView> = history
            .iter()
            .flat_map(|entry| &entry.calls)
            .map(|record| CallView::of_record(record, journaled(record)))
            .collect();
        let in_history = |entry: &JournalEntry| {
            history.iter().flat_map(|h| &h.calls).any(|record| {
                record.kind == CallKind::Tool
                    && entry.step == record.step
                    && entry.visit == record.visit
                    && entry.position == record.index
            })
        };
        calls.extend(
            journal
                .iter()
                .filter(|entry| !in_history(entry))
                .map(CallView::of_journal),
        );
        let tokens = calls.iter().filter_map(|c| c.tokens).reduce(Tokens::plus);
        Self {
            run: RunView::of(info),
            steps: history.iter().map(StepView::of).collect(),
            cost: prices.cost(&calls),
            calls,
            tokens,
            approvals: approvals.iter().map(ApprovalView::of).collect(),
        }
    }
}

/// A workflow recorded in the store.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct WorkflowView {
    pub(crate) name: String,
    pub(crate) fingerprint: String,
    pub(crate) steps: Vec<String>,
    pub(crate) mermaid: String,
    pub(crate) registered_at: String,
}

impl WorkflowView {
    pub(crate) fn of(info: &WorkflowInfo) -> Self {
        Self {
            name: info.name.clone(),
            fingerprint: info.fingerprint.clone(),
            steps: info.steps.clone(),
            mermaid: info.mermaid.clone(),
            registered_at: time(info.registered_at),
        }
    }
}

#[cfg(test)]
mod token_tests {
    use super::Tokens;

    #[test]
    fn token_sums_saturate() {
        let huge = Tokens {
            input: u64::MAX,
            output: 1,
        };
        let sum = huge.plus(Tokens {
            input: 2,
            output: 2,
        });
        assert_eq!((sum.input, sum.output), (u64::MAX, 3));
    }
}
