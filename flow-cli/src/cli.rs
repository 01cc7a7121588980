//! The command line: every command and its arguments (clap's derive).

use clap::{Args, Parser, Subcommand};
use flow_runtime::store::RunStatus;
use std::time::{Duration, SystemTime};

/// See and steer the runs in a flow store.
#[derive(Debug, Parser)]
#[command(
    name = "flow",
    version,
    after_help = "\
Exit codes:
  0  done
  1  the store failed or could not be opened
  2  the command line is wrong
  3  the run or workflow is not in the store
  4  refused: the run's status does not allow it (cancel a finished run, an event the
     run does not wait for)
  5  approve/reject: the run waits for the approval of another call (the call id is wrong)
  6  approve/reject: the call was decided already (approved, rejected, timed out), or its
     deadline has passed
  7  approve/reject: the run waits for no approval"
)]
pub(crate) struct Cli {
    /// The store: an SQLite file's path, or a PostgreSQL database's `postgres://` URL.
    // `--help` names `FLOW_DB` without its value: a `postgres://` URL may hold a password.
    #[arg(
        long,
        env = "FLOW_DB",
        hide_env_values = true,
        global = true,
        value_name = "PATH|URL"
    )]
    pub(crate) db: Option<String>,
    /// Print JSON (stable field names) instead of tables.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    #[command(subcommand)]
    pub(crate) command: TopCommand,
}

/// Every command: those that act once on the store, and `serve`, which keeps it open.
#[derive(Debug, Subcommand)]
pub(crate) enum TopCommand {
    #[command(flatten)]
    Once(Command),
    /// Serve the web run viewer: runs list, run pages (graph, timeline, calls), and with a
    /// token, cancel, pause, resume, approve and reject.
    Serve(crate::serve::ServeArgs),
}

/// The commands. Each has a module of its own in `commands/`.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// List runs, show one, cancel, pause or resume it.
    #[command(subcommand)]
    Runs(RunsCommand),
    /// Send events to runs.
    #[command(subcommand)]
    Events(EventsCommand),
    /// Approve the tool call a run waits for: the run makes it (with its arguments, or
    /// those given with --arguments).
    Approve(ApproveArgs),
    /// Reject the tool call a run waits for: the run does not make it; a step gets the
    /// rejection (an agent's model gets the reason as the tool's result).
    Reject(RejectArgs),
    /// Print a workflow's graph (Mermaid), as the store recorded it.
    Graph(GraphArgs),
    /// Delete finished and cancelled runs, in batches.
    Prune(PruneArgs),
}

/// `flow runs …`
#[derive(Debug, Subcommand)]
pub(crate) enum RunsCommand {
    /// List runs, the most recently updated first.
    List(ListArgs),
    /// A run's status, steps (attempts, durations), calls (outcomes, tokens, cost) and
    /// pending wait.
    Show(ShowArgs),
    /// Cancel a run for good: it stops before its next step.
    Cancel(RunArg),
    /// Pause a run: it stops before its next step, until resumed.
    Pause(RunArg),
    /// Resume a paused (or retry a failed) run: the engine running its workflow picks it up.
    Resume(RunArg),
}

/// `flow runs list` filters.
#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// Only runs of this workflow.
    #[arg(long, short)]
    pub(crate) workflow: Option<String>,
    /// Only runs in this status.
    #[arg(long, short, value_parser = parse_status)]
    pub(crate) status: Option<RunStatus>,
    /// Only runs updated since: a duration ago (`90s`, `2h`, `3days`) or a time
    /// (`2026-01-31T12:00:00Z`).
    #[arg(long, value_parser = parse_since, value_name = "DURATION|TIME")]
    pub(crate) since: Option<SystemTime>,
    /// At most this many runs.
    #[arg(long, short = 'n', default_value_t = 100)]
    pub(crate) limit: u64,
}

/// A run's id.
#[derive(Debug, Args)]
pub(crate) struct RunArg {
    /// The run's id.
    pub(crate) run: String,
}

/// `flow runs show` arguments.
#[derive(Debug, Args)]
pub(crate) struct ShowArgs {
    /// The run's id.
    pub(crate) run: String,
    #[command(flatten)]
    pub(crate) prices: crate::price::PriceArgs,
}

/// `flow events …`
#[derive(Debug, Subcommand)]
pub(crate) enum EventsCommand {
    /// Send a run an event: kept in its inbox until the step waiting for that event takes
    /// it. Refused unless the run waits for an event of that name (see --force).
    Send(SendArgs),
}

/// `flow events send` arguments.
#[derive(Debug, Args)]
pub(crate) struct SendArgs {
    /// The run's id.
    pub(crate) run: String,
    /// The event's name: its type's name, as `flow runs show` prints the run's wait.
    #[arg(value_name = "TYPE")]
    pub(crate) name: String,
    /// The event, as JSON (`'{"by":"ada"}'`).
    #[arg(value_name = "JSON")]
    pub(crate) payload: String,
    /// Send it even when the run is not waiting for it (a step reached later takes it).
    #[arg(long)]
    pub(crate) force: bool,
}

/// `flow approve` arguments.
#[derive(Debug, Args)]
pub(crate) struct ApproveArgs {
    /// The run's id.
    pub(crate) run: String,
    /// The call's id, as `flow runs show RUN` prints the run's pending approval.
    pub(crate) call: String,
    /// Make the call with these arguments (the tool's input, as JSON) instead of the ones
    /// asked for.
    #[arg(long, value_name = "JSON")]
    pub(crate) arguments: Option<String>,
}

/// `flow reject` arguments.
#[derive(Debug, Args)]
pub(crate) struct RejectArgs {
    /// The run's id.
    pub(crate) run: String,
    /// The call's id, as `flow runs show RUN` prints the run's pending approval.
    pub(crate) call: String,
    /// Why, in a person's words: the step's error says it, an agent's model reads it.
    #[arg(long, default_value = "rejected by an operator")]
    pub(crate) reason: String,
}

/// `flow graph` arguments.
#[derive(Debug, Args)]
pub(crate) struct GraphArgs {
    /// The workflow's name.
    pub(crate) workflow: String,
    /// The graph of this fingerprint (of the code that ran a run) rather than the most
    /// recently recorded one.
    #[arg(long)]
    pub(crate) fingerprint: Option<String>,
}

/// `flow prune` arguments.
#[derive(Debug, Args)]
pub(crate) struct PruneArgs {
    /// Delete finished and cancelled runs last updated longer ago than this.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "30days", conflicts_with = "keep_last")]
    pub(crate) older_than: Duration,
    /// Instead: delete all finished and cancelled runs but the N most recent.
    #[arg(long, value_name = "N")]
    pub(crate) keep_last: Option<u64>,
    /// Runs deleted per transaction.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) batch: u64,
}

fn parse_status(text: &str) -> Result<RunStatus, String> {
    RunStatus::from_name(text).ok_or_else(|| {
        format!(
            "`{text}` is not a status; expected one of: running, paused, cancelled, finished, \
             incompatible, failed, corrupt"
        )
    })
}

pub(crate) fn parse_since(text: &str) -> Result<SystemTime, String> {
    if let Ok(ago) = humantime::parse_duration(text) {
        return SystemTime::now()
            .checked_sub(ago)
            .ok_or_else(|| format!("`{text}` reaches before 1970"));
    }
    humantime::parse_rfc3339_weak(text).map_err(|_| {
        format!(
            "`{text}` is neither a duration (`90s`, `2h`, `3days`) nor a time \
             (`2026-01-31T12:00:00Z`)"
        )
    })
}
