//! The JSON API, and what the pages and the API both read from the store: a filtered list
//! of runs, a run with its graph, state and call outputs, an action on a run.

use super::Shared;
use super::graph::{Graph, Mark};
use crate::price::PriceArgs;
use crate::view::{CallView, RunDetail, RunView, WorkflowView, visit_name};
use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use flow_runtime::error::{ControlError, StoreError};
use flow_runtime::state::RunId;
use flow_runtime::store::{
    ApprovalError, Decision, HistoryEntry, JournalResult, RunFilter, RunHistory, RunInfo, RunState,
    RunStatus, WorkflowInfo,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::SystemTime;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(super) enum ApiError {
    /// The run is not in the store.
    #[error("run `{0}` is not in the store")]
    UnknownRun(RunId),
    /// The action needs the token, and the request did not carry it.
    #[error("{0}")]
    Forbidden(&'static str),
    /// The run's status does not allow the action.
    #[error("{0}")]
    Refused(String),
    /// A query parameter is wrong.
    #[error("{0}")]
    BadRequest(String),
    /// An approval or rejection was refused (the store changed nothing).
    #[error("{}", crate::error::approval_message(.0))]
    Approval(ApprovalError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ApiError {
    pub(super) fn status(&self) -> StatusCode {
        match self {
            Self::UnknownRun(_) => StatusCode::NOT_FOUND,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::Refused(_) => StatusCode::CONFLICT,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Approval(e) => match e {
                ApprovalError::UnknownRun { .. } | ApprovalError::OtherCall { .. } => {
                    StatusCode::NOT_FOUND
                }
                ApprovalError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
                _ => StatusCode::CONFLICT,
            },
            Self::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<ControlError> for ApiError {
    fn from(error: ControlError) -> Self {
        match error {
            ControlError::UnknownRun { run_id } => Self::UnknownRun(run_id),
            ControlError::Store(e) => Self::Store(e),
            other => Self::Refused(other.to_string()),
        }
    }
}

impl From<ApprovalError> for ApiError {
    fn from(error: ApprovalError) -> Self {
        match error {
            ApprovalError::UnknownRun { run_id } => Self::UnknownRun(run_id),
            other => Self::Approval(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status(),
            Json(serde_json::json!({ "error": self.to_string() })),
        )
            .into_response()
    }
}

/// The runs list's filters, as query parameters; empty values (an unfilled form field) are
/// no filter.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub(super) struct ListQuery {
    pub(super) workflow: Option<String>,
    pub(super) status: Option<String>,
    pub(super) since: Option<String>,
    pub(super) limit: Option<u64>,
}

fn given(value: Option<&String>) -> Option<&str> {
    value.map(|v| v.trim()).filter(|v| !v.is_empty())
}

impl ListQuery {
    pub(super) fn workflow(&self) -> Option<&str> {
        given(self.workflow.as_ref())
    }

    pub(super) fn status(&self) -> Option<&str> {
        given(self.status.as_ref())
    }

    pub(super) fn since(&self) -> Option<&str> {
        given(self.since.as_ref())
    }

    /// The store's filter.
    fn filter(&self) -> Result<RunFilter, ApiError> {
        let mut filter = RunFilter::new().limit(self.limit.unwrap_or(100).clamp(1, 1000));
        if let Some(workflow) = self.workflow() {
            filter = filter.workflow(workflow);
        }
        if let Some(status) = self.status() {
            let status = RunStatus::from_name(status).ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "`{status}` is not a status; expected one of: running, paused, cancelled, \
                     finished, incompatible, failed, corrupt"
                ))
            })?;
            filter = filter.status(status);
        }
        if let Some(since) = self.since() {
            filter = filter.since(crate::cli::parse_since(since).map_err(ApiError::BadRequest)?);
        }
        Ok(filter)
    }
}

/// The runs the query selects, the most recently updated first.
pub(super) async fn list<S: RunHistory>(
    store: &S,
    query: &ListQuery,
) -> Result<Vec<RunInfo>, ApiError> {
    let mut runs = store.list(&query.filter()?).await?;
    crate::commands::with_pending_approvals(store, &mut runs).await?;
    Ok(runs)
}

/// A journaled call's result: its output, or its permanent failure.
#[derive(Clone, Debug, Serialize)]
pub(super) struct CallOutput {
    pub(super) step: String,
    pub(super) visit: String,
    pub(super) position: u32,
    pub(super) tool: String,
    pub(super) output: Option<Value>,
    pub(super) error: Option<String>,
}

impl CallOutput {
    /// Whether this is the output of `call`.
    pub(super) fn is_of(&self, call: &CallView) -> bool {
        call.kind == "tool"
            && self.step == call.step
            && self.visit == call.visit
            && self.position == call.position
    }
}

/// A run as its page shows it.
#[derive(Clone, Debug, Serialize)]
pub(super) struct RunPage {
    #[serde(flatten)]
    pub(super) detail: RunDetail,
    /// The workflow's graph with the run's marks; `null` when the store has no record of the
    /// workflow.
    pub(super) graph: Option<Graph>,
    /// The step that runs now, or next when the run goes on; `null` when not known (a
    /// route decides), when several are (a fan-out's branches), or when the run is over.
    pub(super) current_step: Option<String>,
    /// Every step that runs now or next: a fan-out's pending branches, or the one step.
    pub(super) current_steps: Vec<String>,
    /// The step that waits for an event.
    pub(super) waiting_step: Option<String>,
    /// The latest checkpoint's state (the outputs so far and what the next step takes).
    pub(super) checkpoint_state: Option<Value>,
    /// Each journaled call's output or error.
    pub(super) outputs: Vec<CallOutput>,
    /// Which actions the run's status allows: `cancel`, `pause`, `resume`.
    pub(super) actions: Vec<&'static str>,
    /// Where each step's attempt lies in the run's time, for the timeline's bars.
    pub(super) bars: Vec<Bar>,
}

/// A step's attempt on the run's time line, in thousandths of the time from the run's
/// creation to its latest update: where it starts and how long it is (at least 4, so a
/// short step stays visible).
#[derive(Clone, Copy, Debug, Serialize)]
pub(super) struct Bar {
    pub(super) start: u32,
    pub(super) width: u32,
}

/// The bars of `history`'s steps, on the span of `info`'s times.
#[allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "both are clamped to 0..=1000 first"
)]
fn bars(info: &RunInfo, history: &[HistoryEntry]) -> Vec<Bar> {
    let t0 = info.created_at;
    let end = history
        .iter()
        .map(|h| h.at)
        .chain([info.updated_at])
        .max()
        .unwrap_or(info.updated_at);
    let span = end.duration_since(t0).unwrap_or_default().as_secs_f64();
    let thousandths = |t: SystemTime| {
        if span <= 0.0 {
            return 0.0;
        }
        (t.duration_since(t0).unwrap_or_default().as_secs_f64() / span * 1000.0).clamp(0.0, 1000.0)
    };
    history
        .iter()
        .map(|h| {
            let start = thousandths(h.started_at.unwrap_or(h.at));
            let width = (thousandths(h.at) - start).max(4.0);
            Bar {
                start: start.min(996.0) as u32,
                width: width.min(1000.0) as u32,
            }
        })
        .collect()
}

/// The recorded workflow of a run: the fingerprint that wrote it, else the latest recorded.
fn workflow_of<'a>(workflows: &'a [WorkflowInfo], info: &RunInfo) -> Option<&'a WorkflowInfo> {
    workflows
        .iter()
        .filter(|w| w.name == info.workflow)
        .max_by_key(|w| (w.fingerprint == info.fingerprint, w.registered_at))
}

/// A run's page, or `None` when the store does not have it.
pub(super) async fn load<S: RunHistory>(
    store: &S,
    run: &RunId,
    prices: &PriceArgs,
) -> Result<RunPage, ApiError> {
    let info = store
        .status(run)
        .await?
        .ok_or_else(|| ApiError::UnknownRun(run.clone()))?;
    let history = store.steps(run).await?;
    let journal = store.calls(run).await?;
    let approvals = store.approvals(run).await?;
    let latest = store.latest(run).await?;
    let workflows = store.workflows().await?;
    let detail = RunDetail::of(&info, &history, &journal, &approvals, prices);

    // A run waits for an event at a step's start (the checkpoint says which step), or for
    // an approval inside a step (the request says which).
    let waiting_step = match (info.state(), &info.approval) {
        (RunState::AwaitingApproval { .. }, Some(approval)) => Some(approval.step.clone()),
        (RunState::Waiting { .. }, _) => latest.as_ref().and_then(|c| c.waiting.clone()),
        _ => None,
    };
    let mut graph = workflow_of(&workflows, &info).map(|w| Graph::parse(&w.mermaid));
    let done: Vec<&str> = history.iter().map(|h| h.step.as_str()).collect();
    let current_steps: Vec<String> = match (info.state(), &graph) {
        (RunState::Failed { .. }, _) => info
            .failure
            .as_ref()
            .and_then(|f| f.step.clone())
            .into_iter()
            .collect(),
        (RunState::Waiting { .. } | RunState::AwaitingApproval { .. }, _) => {
            waiting_step.clone().into_iter().collect()
        }
        (RunState::Running | RunState::Paused | RunState::Sleeping { .. }, Some(graph)) => {
            graph.current_after(&info.step, &done)
        }
        _ => Vec::new(),
    };
    if let Some(graph) = &mut graph {
        for step in &done {
            graph.mark(step, Mark::Done);
        }
        let mark = match info.state() {
            RunState::Failed { .. } => Mark::Failed,
            RunState::Waiting { .. } | RunState::AwaitingApproval { .. } => Mark::Waiting,
            _ => Mark::Current,
        };
        for step in &current_steps {
            graph.mark(step, mark);
        }
    }
    let current_step = match current_steps.as_slice() {
        [one] => Some(one.clone()),
        _ => None,
    };
    let outputs = journal
        .iter()
        .map(|entry| {
            let (output, error) = match &entry.result {
                JournalResult::Output(value) => (Some(value.clone()), None),
                JournalResult::Failed(message) => (None, Some(message.clone())),
                _ => (None, None),
            };
            CallOutput {
                step: entry.step.clone(),
                visit: visit_name(entry.visit),
                position: entry.position,
                tool: entry.tool.clone(),
                output,
                error,
            }
        })
        .collect();
    let actions = [
        (RunStatus::Cancelled, "cancel"),
        (RunStatus::Paused, "pause"),
        (RunStatus::Running, "resume"),
    ]
    .into_iter()
    .filter(|(to, _)| {
        info.status
            .transition(*to)
            .is_some_and(|s| s != info.status)
    })
    .map(|(_, name)| name)
    .collect();
    Ok(RunPage {
        detail,
        graph,
        current_step,
        current_steps,
        waiting_step,
        checkpoint_state: latest.map(|c| c.state),
        outputs,
        actions,
        bars: bars(&info, &history),
    })
}

/// What a request asks to do to a run: move it to another status, or decide the
/// approval-gated call it waits for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Action {
    Cancel,
    Pause,
    Resume,
    /// Approve call `call` (its id).
    Approve {
        call: String,
    },
    /// Reject call `call` for `reason`.
    Reject {
        call: String,
        reason: String,
    },
}

/// What a rejection without a reason says.
const NO_REASON: &str = "rejected in the run viewer";

impl Action {
    /// The action named by a route's last segment: `cancel`, `pause`, `resume`.
    pub(super) fn of_run(name: &str) -> Result<Self, ApiError> {
        match name {
            "cancel" => Ok(Self::Cancel),
            "pause" => Ok(Self::Pause),
            "resume" => Ok(Self::Resume),
            _ => Err(ApiError::BadRequest(format!(
                "`{name}` is not an action; expected one of: cancel, pause, resume"
            ))),
        }
    }

    /// The decision named by an approval route's last segment: `approve`, `reject` (with
    /// `reason`, or a default one when none is given).
    pub(super) fn of_call(
        call: String,
        name: &str,
        reason: Option<&str>,
    ) -> Result<Self, ApiError> {
        match name {
            "approve" => Ok(Self::Approve { call }),
            "reject" => Ok(Self::Reject {
                call,
                reason: reason
                    .map(str::trim)
                    .filter(|r| !r.is_empty())
                    .unwrap_or(NO_REASON)
                    .to_owned(),
            }),
            _ => Err(ApiError::BadRequest(format!(
                "`{name}` is not a decision; expected one of: approve, reject"
            ))),
        }
    }

    /// The action's name, as the page's notice says it.
    pub(super) fn name(&self) -> &'static str {
        match self {
            Self::Cancel => "cancel",
            Self::Pause => "pause",
            Self::Resume => "resume",
            Self::Approve { .. } => "approve",
            Self::Reject { .. } => "reject",
        }
    }
}

/// Checks `given` against the viewer's token, then does `action` to `run`; the run as it
/// stands after.
pub(super) async fn act<S: RunHistory>(
    state: &Shared<S>,
    run: &str,
    action: Result<Action, ApiError>,
    given: Option<&str>,
) -> Result<RunInfo, ApiError> {
    let Some(token) = &state.token else {
        return Err(ApiError::Forbidden(
            "this viewer is read-only: start `flow serve` with --token or --write-token-file \
             to steer runs",
        ));
    };
    if !given.is_some_and(|given| token.matches(given)) {
        return Err(ApiError::Forbidden(
            "this action needs the viewer's token (`Authorization: Bearer <token>`, or the \
             form's token field)",
        ));
    }
    let run = RunId::from(run);
    let store = &state.store;
    Ok(match action? {
        Action::Cancel => store.cancel(&run).await?,
        Action::Pause => store.pause(&run).await?,
        Action::Resume => store.unpause(&run).await?,
        Action::Approve { call } => {
            decide(store, &run, &call, Decision::Approved { edited: None }).await?
        }
        Action::Reject { call, reason } => {
            decide(store, &run, &call, Decision::Rejected { reason }).await?
        }
    })
}

/// Decides `call` of `run` through the store (which refuses atomically); the run after.
async fn decide<S: RunHistory>(
    store: &S,
    run: &RunId,
    call: &str,
    decision: Decision,
) -> Result<RunInfo, ApiError> {
    store.decide_approval(run, call, decision).await?;
    store
        .status(run)
        .await?
        .ok_or_else(|| ApiError::UnknownRun(run.clone()))
}

/// `GET /api/runs`
pub(super) async fn runs<S: RunHistory>(
    State(state): State<Shared<S>>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Vec<RunView>>, ApiError> {
    // A parameter that does not parse (`limit=abc`) is the API's JSON error, as every other.
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let runs = list(&state.store, &query).await?;
    Ok(Json(runs.iter().map(RunView::of).collect()))
}

/// `GET /api/runs/{run}`
pub(super) async fn run<S: RunHistory>(
    State(state): State<Shared<S>>,
    Path(run): Path<String>,
) -> Result<Json<RunPage>, ApiError> {
    Ok(Json(
        load(&state.store, &RunId::from(run), &state.prices).await?,
    ))
}

/// `GET /api/workflows`
pub(super) async fn workflows<S: RunHistory>(
    State(state): State<Shared<S>>,
) -> Result<Json<Vec<WorkflowView>>, ApiError> {
    let workflows = state.store.workflows().await?;
    Ok(Json(workflows.iter().map(WorkflowView::of).collect()))
}

/// `POST /api/runs/{run}/{action}` with `Authorization: Bearer <token>`.
pub(super) async fn act_json<S: RunHistory>(
    State(state): State<Shared<S>>,
    Path((run, action)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<RunView>, ApiError> {
    let bearer = bearer(&headers);
    let after = act(&state, &run, Action::of_run(&action), bearer).await?;
    Ok(Json(RunView::of(&after)))
}

/// A rejection's reason, in a decision's JSON body.
#[derive(Debug, Default, Deserialize)]
pub(super) struct DecisionBody {
    reason: Option<String>,
}

/// `POST /api/runs/{run}/approvals/{call}/{decision}` with `Authorization: Bearer <token>`
/// and, to reject, an optional body `{"reason": "…"}`.
pub(super) async fn decide_json<S: RunHistory>(
    State(state): State<Shared<S>>,
    Path((run, call, decision)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Result<Option<Json<DecisionBody>>, JsonRejection>,
) -> Result<Json<RunView>, ApiError> {
    let bearer = bearer(&headers);
    // A body that is not the JSON it should be is the API's JSON error, and decides nothing.
    let body = body.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let reason = body.and_then(|Json(b)| b.reason);
    let action = Action::of_call(call, &decision, reason.as_deref());
    let after = act(&state, &run, action, bearer).await?;
    Ok(Json(RunView::of(&after)))
}

/// The token of an `Authorization: Bearer <token>` header.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bars_lie_on_the_runs_time() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let at = |s: u64| t0 + Duration::from_secs(s);
        let info = RunInfo::new(
            RunId::from("r"),
            "w",
            "f",
            RunStatus::Running,
            "b",
            3,
            t0,
            at(10),
        );
        let history = [
            HistoryEntry::new(1, "", false, t0),
            HistoryEntry::new(2, "a", false, at(4)).with_attempt(1, Some(at(2))),
            HistoryEntry::new(3, "b", false, at(10)).with_attempt(2, Some(at(9))),
        ];
        let got: Vec<(u32, u32)> = bars(&info, &history)
            .iter()
            .map(|b| (b.start, b.width))
            .collect();
        assert_eq!(got, [(0, 4), (200, 200), (900, 100)]);
    }

    #[test]
    fn a_run_without_time_has_bars_at_its_start() {
        let t0 = SystemTime::UNIX_EPOCH;
        let info = RunInfo::new(
            RunId::from("r"),
            "w",
            "f",
            RunStatus::Running,
            "",
            1,
            t0,
            t0,
        );
        let history = [HistoryEntry::new(1, "", false, t0)];
        let got: Vec<(u32, u32)> = bars(&info, &history)
            .iter()
            .map(|b| (b.start, b.width))
            .collect();
        assert_eq!(got, [(0, 4)]);
    }
}
