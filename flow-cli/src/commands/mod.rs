//! The commands, one module each, generic over the store contract: they read and steer runs
//! only through `Store`, `RunControl` and `RunHistory`, so every store that implements them
//! works.

mod approve;
mod events;
mod graph;
mod prune;
mod runs;

use crate::cli::{Command, EventsCommand, RunsCommand};
use crate::error::CliError;
use crate::output::Output;
use flow_runtime::error::StoreError;
use flow_runtime::store::{RunHistory, RunInfo};

/// Runs `command` on `store`.
pub(crate) async fn run<S: RunHistory>(
    store: &S,
    command: Command,
    out: Output,
) -> Result<(), CliError> {
    match command {
        Command::Runs(RunsCommand::List(args)) => runs::list(store, args, out).await,
        Command::Runs(RunsCommand::Show(args)) => {
            runs::show(store, &args.run, &args.prices, out).await
        }
        Command::Runs(RunsCommand::Cancel(args)) => {
            runs::control(store, &args.run, runs::Control::Cancel, out).await
        }
        Command::Runs(RunsCommand::Pause(args)) => {
            runs::control(store, &args.run, runs::Control::Pause, out).await
        }
        Command::Runs(RunsCommand::Resume(args)) => {
            runs::control(store, &args.run, runs::Control::Resume, out).await
        }
        Command::Events(EventsCommand::Send(args)) => events::send(store, args, out).await,
        Command::Approve(args) => approve::approve(store, args, out).await,
        Command::Reject(args) => approve::reject(store, args, out).await,
        Command::Graph(args) => graph::graph(store, args, out).await,
        Command::Prune(args) => prune::prune(store, args, out).await,
    }
}

/// `runs` with the pending approval of each run that waits for one: a store's `list` need
/// not read them (the SQLite store's does not), its `status` does.
pub(crate) async fn with_pending_approvals<S: RunHistory>(
    store: &S,
    runs: &mut [RunInfo],
) -> Result<(), StoreError> {
    for run in runs {
        if run.approval.is_none()
            && runs::is_approval(run)
            && let Some(fresh) = store.status(&run.run_id).await?
        {
            *run = fresh;
        }
    }
    Ok(())
}
