//! [`CliError`]: everything a command can fail with, and the exit code each one gives.

use flow_runtime::error::{ControlError, StoreError, StoreErrorKind};
use flow_runtime::state::RunId;
use flow_runtime::store::{ApprovalError, Decision};

/// The exit codes scripts can rely on (also in `flow --help`).
pub(crate) mod exit {
    /// The command did what it was asked.
    pub(crate) const OK: u8 = 0;
    /// The store failed, or could not be opened.
    pub(crate) const ERROR: u8 = 1;
    /// The command line is wrong (clap's own errors exit with 2 too).
    pub(crate) const USAGE: u8 = 2;
    /// The run or workflow named is not in the store.
    pub(crate) const NOT_FOUND: u8 = 3;
    /// The run's status does not allow it (cancel a finished run, an event the run does not
    /// wait for).
    pub(crate) const REFUSED: u8 = 4;
    /// `approve`/`reject`: the run waits for the approval of another call.
    pub(crate) const UNKNOWN_CALL: u8 = 5;
    /// `approve`/`reject`: the call was decided already, or its deadline passed.
    pub(crate) const DECIDED: u8 = 6;
    /// `approve`/`reject`: the run waits for no approval.
    pub(crate) const NOT_PENDING: u8 = 7;
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum CliError {
    /// `--db` names a store this build cannot open.
    #[error("{0}")]
    Unsupported(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The run is not in the store.
    #[error("run `{0}` is not in the store: `flow runs list` shows the runs it has")]
    UnknownRun(RunId),
    /// No workflow of that name is recorded in the store.
    #[error("workflow `{name}` is not in the store; {known}")]
    UnknownWorkflow {
        /// The name asked for.
        name: String,
        /// What the store has, as a sentence.
        known: String,
    },
    /// The run's status does not allow what was asked.
    #[error("{0}")]
    Refused(String),
    /// An argument is not what the command takes.
    #[error("{0}")]
    Usage(String),
    /// An approval or rejection was refused: the store's answer, decided atomically.
    #[error("{}", approval_message(.0))]
    Approval(ApprovalError),
    /// Writing the output failed (a closed pipe).
    #[error("cannot write the output: {0}")]
    Output(#[from] std::io::Error),
}

impl CliError {
    /// The process's exit code for this error.
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            Self::UnknownRun(_) | Self::UnknownWorkflow { .. } => exit::NOT_FOUND,
            Self::Refused(_) => exit::REFUSED,
            Self::Usage(_) => exit::USAGE,
            Self::Approval(e) => match e {
                ApprovalError::UnknownRun { .. } => exit::NOT_FOUND,
                ApprovalError::OtherCall { .. } => exit::UNKNOWN_CALL,
                ApprovalError::Decided { .. } | ApprovalError::Expired { .. } => exit::DECIDED,
                ApprovalError::NotPending { .. } => exit::NOT_PENDING,
                ApprovalError::Store(e) => store_code(e),
                _ => exit::ERROR,
            },
            Self::Store(e) => store_code(e),
            Self::Unsupported(_) | Self::Output(_) => exit::ERROR,
        }
    }
}

/// The exit code of a store failure.
fn store_code(e: &StoreError) -> u8 {
    match e.kind() {
        StoreErrorKind::UnknownRun => exit::NOT_FOUND,
        StoreErrorKind::Conflict
        | StoreErrorKind::Paused
        | StoreErrorKind::Cancelled
        | StoreErrorKind::Failed => exit::REFUSED,
        _ => exit::ERROR,
    }
}

/// A decision, as the messages say it.
pub(crate) fn decision_name(decision: &Decision) -> String {
    match decision {
        Decision::Approved { edited: None } => "approved".to_owned(),
        Decision::Approved { edited: Some(_) } => "approved with edited arguments".to_owned(),
        Decision::Rejected { reason } => format!("rejected ({reason})"),
        Decision::TimedOut => "timed out".to_owned(),
        _ => "decided".to_owned(),
    }
}

/// An approval refusal as the CLI says it: what is wrong and what to do.
pub(crate) fn approval_message(error: &ApprovalError) -> String {
    match error {
        ApprovalError::UnknownRun { run_id } => {
            format!("run `{run_id}` is not in the store: `flow runs list` shows the runs it has")
        }
        ApprovalError::NotPending { run_id, call_id } => format!(
            "run `{run_id}` waits for no approval, so call `{call_id}` cannot be decided: \
             `flow runs show {run_id}` shows what it waits for"
        ),
        ApprovalError::OtherCall {
            run_id,
            call_id,
            pending,
            tool,
        } => format!(
            "run `{run_id}` has no pending call `{call_id}`: it waits for the approval of call \
             `{pending}` (tool `{tool}`)"
        ),
        ApprovalError::Decided {
            run_id,
            call_id,
            decision,
        } => format!(
            "call `{call_id}` of run `{run_id}` was {} already: a call is decided once",
            decision_name(decision)
        ),
        ApprovalError::Expired { run_id, call_id } => format!(
            "the approval of call `{call_id}` of run `{run_id}` expired: its deadline passed, \
             so the call times out"
        ),
        other => other.to_string(),
    }
}

impl From<ApprovalError> for CliError {
    fn from(error: ApprovalError) -> Self {
        Self::Approval(error)
    }
}

impl From<ControlError> for CliError {
    fn from(error: ControlError) -> Self {
        match error {
            ControlError::UnknownRun { run_id } => Self::UnknownRun(run_id),
            ControlError::Store(e) => Self::Store(e),
            other => Self::Refused(other.to_string()),
        }
    }
}
