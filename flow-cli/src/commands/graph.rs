//! `flow graph`: a workflow's Mermaid graph, as the store recorded it.

use crate::cli::GraphArgs;
use crate::error::CliError;
use crate::output::{Output, line};
use crate::view::WorkflowView;
use flow_runtime::store::RunHistory;

/// Prints the graph of the most recently recorded version of the workflow (or of the one
/// with `--fingerprint`); `--json` prints the workflow's record.
pub(crate) async fn graph<S: RunHistory>(
    store: &S,
    args: GraphArgs,
    out: Output,
) -> Result<(), CliError> {
    let workflows = store.workflows().await?;
    let found = workflows.iter().find(|w| {
        w.name == args.workflow
            && args
                .fingerprint
                .as_ref()
                .is_none_or(|fingerprint| *fingerprint == w.fingerprint)
    });
    let Some(workflow) = found else {
        let mut names: Vec<&str> = workflows.iter().map(|w| w.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        let known = if names.is_empty() {
            "the store has recorded no workflow yet (an engine records its workflows when it \
             starts, a run when it starts)"
                .to_owned()
        } else if let (Some(fingerprint), true) =
            (&args.fingerprint, names.contains(&args.workflow.as_str()))
        {
            format!("no version with fingerprint `{fingerprint}` is recorded")
        } else {
            format!("it has: {}", names.join(", "))
        };
        return Err(CliError::UnknownWorkflow {
            name: args.workflow,
            known,
        });
    };
    if out.json {
        return crate::output::json(&WorkflowView::of(workflow));
    }
    line(workflow.mermaid.trim_end())
}
