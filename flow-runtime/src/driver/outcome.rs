//! How a run's turn ends: [`Outcome`], a value, not an error.

use crate::error::RuntimeError;
use crate::state::RunId;
use crate::store::RunStatus;
use std::time::SystemTime;

/// How a run ended its turn through the driver: finished with its output, failed, parked
/// until a time or an event, or stopped by run control.
///
/// [`Workflow::advance`](crate::state::Workflow::advance) returns it;
/// [`Workflow::run`](crate::state::Workflow::run) and friends keep their
/// `Result<Output, Error>` and turn a parked or stopped run into
/// [`RuntimeError::Parked`] / [`RuntimeError::Stopped`].
#[derive(Debug)]
#[non_exhaustive]
#[must_use = "a run's turn may have failed, parked or been stopped: its outcome says which"]
pub enum Outcome<O, E> {
    /// The run reached an exit step: its output.
    Finished(O),
    /// A step, a sink, the store or a check failed; [`FailedAt`] says whether a step or the
    /// runtime did.
    Failed(E),
    /// The run waits, stored: it goes on when the engine (or `run_or_resume`) picks it up
    /// after the time or the event.
    Parked(Park),
    /// Run control paused or cancelled (or set aside as failed) the run: the store refused
    /// the checkpoint after `step` (`None`: before the run's first step).
    Stopped {
        /// The step whose checkpoint was refused, if any.
        step: Option<&'static str>,
        /// The status the run has in the store.
        status: RunStatus,
    },
}

/// What a workflow's error says failed: one of its steps (the error is that step's own, in its
/// `FlowError` variant) or the runtime around the steps (a checkpoint not stored, a sink, a
/// panic, a state that does not fit, …). [`Workflow::failed_at`] reads it off the error, typed,
/// for an engine or a store to record. An error that `run` or `resume` return for a run that
/// parked or was stopped is `Runtime` too (`RuntimeError::Parked`, `RuntimeError::Stopped`):
/// nothing failed there, the run goes on later.
///
/// [`Workflow::failed_at`]: crate::state::Workflow::failed_at
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub enum FailedAt<'a> {
    /// The step of this name (as in `Workflow::STEPS`: `type` for `r#type`) returned its error.
    Step(&'static str),
    /// The runtime failed; the error may name a step in its fields ([`FailedAt::step`]).
    Runtime(&'a RuntimeError),
}

impl FailedAt<'_> {
    /// The step the failure belongs to: the failed step, or the step a runtime error names
    /// (the one whose checkpoint, wait or tool failed, or that panicked); `None` for a
    /// runtime error outside any step.
    #[must_use]
    pub fn step(&self) -> Option<&'static str> {
        match *self {
            Self::Step(step) => Some(step),
            Self::Runtime(
                RuntimeError::Checkpoint { step, .. }
                | RuntimeError::Serialize { step, .. }
                | RuntimeError::Parked { step, .. }
                | RuntimeError::NoInbox { step, .. }
                | RuntimeError::Wait { step, .. }
                | RuntimeError::CorruptEvent { step, .. }
                | RuntimeError::Unstorable { step, .. }
                | RuntimeError::InvalidState { step, .. }
                | RuntimeError::MissingTool { step, .. },
            ) => Some(step),
            Self::Runtime(
                RuntimeError::Stopped { step, .. } | RuntimeError::Panicked { step, .. },
            ) => *step,
            Self::Runtime(_) => None,
        }
    }
}

/// Why a parked run waits, and until when.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Park {
    /// A step returned [`Sleep`](crate::state::Sleep): the run is due again at `until`.
    Sleeping {
        /// The step that returned `Sleep`.
        step: &'static str,
        /// When the run is due.
        until: SystemTime,
    },
    /// A step waits for `event`, at the latest until `until` (then it gets
    /// [`Event::TimedOut`](crate::state::Event::TimedOut)).
    Waiting {
        /// The waiting step.
        step: &'static str,
        /// The event's name.
        event: &'static str,
        /// The wait's deadline.
        until: SystemTime,
    },
    /// A step waits for a person's approval of call `call_id` of tool `tool` (see
    /// [`Engine::approve`](crate::state::Engine::approve)), at the latest until `until`, when
    /// the call times out.
    Approval {
        /// The waiting step.
        step: &'static str,
        /// The tool.
        tool: &'static str,
        /// The call's id.
        call_id: String,
        /// When the request times out.
        until: SystemTime,
    },
}

impl Park {
    /// The step the run waits in or after.
    #[must_use]
    pub fn step(&self) -> &'static str {
        match self {
            Self::Sleeping { step, .. }
            | Self::Waiting { step, .. }
            | Self::Approval { step, .. } => step,
        }
    }

    /// When the run is due at the latest.
    #[must_use]
    pub fn until(&self) -> SystemTime {
        match self {
            Self::Sleeping { until, .. }
            | Self::Waiting { until, .. }
            | Self::Approval { until, .. } => *until,
        }
    }

    /// The same wait as [`RuntimeError::Parked`].
    #[must_use]
    pub fn into_error(self, run_id: RunId, workflow: &'static str) -> RuntimeError {
        match self {
            Self::Sleeping { step, until } => RuntimeError::Parked {
                run_id,
                workflow,
                step,
                event: None,
                until,
            },
            Self::Waiting { step, event, until } => RuntimeError::Parked {
                run_id,
                workflow,
                step,
                event: Some(event),
                until,
            },
            Self::Approval { step, until, .. } => RuntimeError::Parked {
                run_id,
                workflow,
                step,
                event: Some(crate::store::APPROVAL_EVENT),
                until,
            },
        }
    }
}

impl<O, E> Outcome<O, E> {
    /// The output, if the run finished.
    #[must_use]
    pub fn finished(self) -> Option<O> {
        match self {
            Self::Finished(output) => Some(output),
            _ => None,
        }
    }

    /// Whether the run finished.
    #[must_use]
    pub fn is_finished(&self) -> bool {
        matches!(self, Self::Finished(_))
    }

    /// How the turn ended, in one word: what a run's span records as `flow.run.outcome`.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Self::Finished(_) => "finished",
            Self::Failed(_) => "failed",
            Self::Parked(_) => "parked",
            Self::Stopped { .. } => "stopped",
        }
    }
}

impl<O, E: From<RuntimeError>> Outcome<O, E> {
    /// The outcome as `run` returns it: a parked run as [`RuntimeError::Parked`], a stopped one
    /// as [`RuntimeError::Stopped`], inside the workflow's error.
    ///
    /// # Errors
    ///
    /// Everything but [`Outcome::Finished`].
    pub fn into_result(self, run_id: &RunId, workflow: &'static str) -> Result<O, E> {
        self.into_result_with(|| run_id, workflow)
    }

    /// [`Outcome::into_result`], reading the run id only for a run that parked or stopped (a
    /// context writes out its random id only when it is read).
    pub(crate) fn into_result_with<'a>(
        self,
        run_id: impl FnOnce() -> &'a RunId,
        workflow: &'static str,
    ) -> Result<O, E> {
        match self {
            Self::Finished(output) => Ok(output),
            Self::Failed(error) => Err(error),
            Self::Parked(park) => Err(park.into_error(run_id().clone(), workflow).into()),
            Self::Stopped { step, status } => Err(RuntimeError::Stopped {
                run_id: run_id().clone(),
                workflow,
                step,
                status,
            }
            .into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::FailedAt;
    use crate::error::RuntimeError;

    #[test]
    fn the_step_of_a_failure_is_the_failed_step_or_the_one_a_runtime_error_names() {
        assert_eq!(FailedAt::Step("book").step(), Some("book"));
        let invalid = RuntimeError::InvalidState {
            workflow: "trip",
            step: "search",
            reason: "not here",
        };
        assert_eq!(FailedAt::Runtime(&invalid).step(), Some("search"));
        let between = RuntimeError::Panicked {
            run_id: "r".into(),
            workflow: "trip",
            step: None,
            message: "boom".into(),
        };
        assert_eq!(FailedAt::Runtime(&between).step(), None);
        let unknown = RuntimeError::UnknownOutputStep {
            workflow: "trip",
            steps: vec!["nowhere".into()],
            valid: vec!["search"],
        };
        assert_eq!(FailedAt::Runtime(&unknown).step(), None);
    }
}
