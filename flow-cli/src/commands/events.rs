//! `flow events send`: an event for a run, checked against what the run waits for.

use crate::cli::SendArgs;
use crate::commands::runs::info;
use crate::error::CliError;
use crate::output::{Output, line};
use crate::view::state_name;
use flow_runtime::state::RunId;
use flow_runtime::store::{APPROVAL_EVENT, RunHistory};
use serde::Serialize;

/// What `--json` prints once the event is sent.
#[derive(Debug, Serialize)]
struct Sent<'a> {
    run_id: &'a str,
    event: &'a str,
    /// Whether the run was waiting for it (so it is due now).
    awaited: bool,
}

/// Sends the event, unless the run waits for another one, or for none (without `--force`).
pub(crate) async fn send<S: RunHistory>(
    store: &S,
    args: SendArgs,
    out: Output,
) -> Result<(), CliError> {
    let payload: serde_json::Value = serde_json::from_str(&args.payload).map_err(|e| {
        CliError::Usage(format!(
            "the event is not JSON ({e}): pass it quoted, e.g. '{{\"by\":\"ada\"}}'"
        ))
    })?;
    let run = RunId::from(args.run.as_str());
    let info = info(store, &run).await?;
    if let Some(approval) = &info.approval {
        return Err(CliError::Refused(format!(
            "run `{run}` waits for the approval of call `{}` (tool `{}`), not for an event: \
             `flow approve {run} {}` or `flow reject {run} {}`",
            approval.call_id, approval.tool, approval.call_id, approval.call_id
        )));
    }
    if args.name == APPROVAL_EVENT {
        return Err(CliError::Refused(format!(
            "`{APPROVAL_EVENT}` is not an event a run can be sent: approvals are decided with \
             `flow approve` and `flow reject`"
        )));
    }
    let awaited = info
        .wait
        .as_ref()
        .is_some_and(|(event, _)| *event == args.name);
    if !awaited && !args.force {
        let why = match &info.wait {
            Some((event, _)) => format!("it waits for event `{event}`"),
            None => format!("it waits for no event (it is {})", state_name(&info)),
        };
        return Err(CliError::Refused(format!(
            "run `{run}` does not wait for event `{}`: {why}; check the event's name, or pass \
             --force to keep it in the run's inbox for a later step",
            args.name
        )));
    }
    store.send_event(&run, &args.name, payload).await?;
    if out.json {
        return crate::output::json(&Sent {
            run_id: run.as_str(),
            event: &args.name,
            awaited,
        });
    }
    if awaited {
        line(&format!(
            "run {run}: sent event `{}`; the run is due now",
            args.name
        ))
    } else {
        line(&format!(
            "run {run}: event `{}` is in the run's inbox until a step waits for it",
            args.name
        ))
    }
}
