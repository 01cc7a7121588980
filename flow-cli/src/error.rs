//! [`CliError`]: everything a command can fail with, and the exit code each one gives.

use flow_runtime::error::{ControlError, StoreError, StoreErrorKind};
use flow_runtime::state::RunId;

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
            Self::Store(e) => match e.kind() {
                StoreErrorKind::UnknownRun => exit::NOT_FOUND,
                StoreErrorKind::Conflict
                | StoreErrorKind::Paused
                | StoreErrorKind::Cancelled
                | StoreErrorKind::Failed => exit::REFUSED,
                _ => exit::ERROR,
            },
            Self::Unsupported(_) | Self::Output(_) => exit::ERROR,
        }
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
