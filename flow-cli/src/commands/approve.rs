//! `flow approve` and `flow reject`: decide the approval-gated call a run waits for.

use crate::cli::{ApproveArgs, RejectArgs};
use crate::error::{CliError, decision_name};
use crate::output::{Output, line};
use crate::view::ApprovalView;
use flow_runtime::state::RunId;
use flow_runtime::store::{Decision, RunHistory};
use serde::Serialize;

/// What `--json` prints once the call is decided.
#[derive(Debug, Serialize)]
struct Decided {
    run_id: String,
    #[serde(flatten)]
    approval: ApprovalView,
}

/// `flow approve RUN CALL [--arguments JSON]`.
pub(crate) async fn approve<S: RunHistory>(
    store: &S,
    args: ApproveArgs,
    out: Output,
) -> Result<(), CliError> {
    let edited = match &args.arguments {
        None => None,
        Some(text) => Some(serde_json::from_str(text).map_err(|e| {
            CliError::Usage(format!(
                "--arguments is not JSON ({e}): pass the tool's input quoted, e.g. '{{\"cents\":100}}'"
            ))
        })?),
    };
    decide(
        store,
        &args.run,
        &args.call,
        Decision::Approved { edited },
        out,
    )
    .await
}

/// `flow reject RUN CALL [--reason WHY]`.
pub(crate) async fn reject<S: RunHistory>(
    store: &S,
    args: RejectArgs,
    out: Output,
) -> Result<(), CliError> {
    if args.reason.trim().is_empty() {
        return Err(CliError::Usage(
            "--reason is empty: say why, or leave the option out".to_owned(),
        ));
    }
    decide(
        store,
        &args.run,
        &args.call,
        Decision::Rejected {
            reason: args.reason,
        },
        out,
    )
    .await
}

/// Decides the call through the store, which refuses atomically (and changes nothing) an
/// unknown run, another call's id, a call decided already or past its deadline, a run that
/// waits for no approval. The decided run is due: the engine running its workflow takes it
/// at its next poll.
async fn decide<S: RunHistory>(
    store: &S,
    run: &str,
    call: &str,
    decision: Decision,
    out: Output,
) -> Result<(), CliError> {
    let run = RunId::from(run);
    let decided = store.decide_approval(&run, call, decision).await?;
    if out.json {
        return crate::output::json(&Decided {
            run_id: run.as_str().to_owned(),
            approval: ApprovalView::of(&decided),
        });
    }
    let how = decided
        .decision
        .as_ref()
        .map_or_else(|| "decided".to_owned(), decision_name);
    line(&format!(
        "run {run}: call `{}` of tool `{}` {how}; the run is due now",
        decided.call_id, decided.tool
    ))
}
