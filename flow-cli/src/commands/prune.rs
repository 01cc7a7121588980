//! `flow prune`: deletes finished and cancelled runs in batches, with progress on a terminal.

use crate::cli::PruneArgs;
use crate::error::CliError;
use crate::output::{Output, line};
use flow_runtime::store::{Prune, RunFilter, RunHistory, RunStatus};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use std::io::IsTerminal as _;
use std::time::SystemTime;

/// What `--json` prints.
#[derive(Debug, Serialize)]
struct Pruned {
    pruned: u64,
}

/// Deletes the runs the policy selects, a batch per transaction, until none is left.
pub(crate) async fn prune<S: RunHistory>(
    store: &S,
    args: PruneArgs,
    out: Output,
) -> Result<(), CliError> {
    let policy = match args.keep_last {
        Some(keep) => Prune::KeepLast(keep),
        None => Prune::OlderThan(args.older_than),
    };
    let progress = if std::io::stderr().is_terminal() {
        let total = candidates(store, policy).await?;
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        if let Ok(style) =
            ProgressStyle::with_template("{bar:40} {pos}/{len} runs pruned ({per_sec}, {eta})")
        {
            bar.set_style(style);
        }
        bar
    } else {
        ProgressBar::hidden()
    };
    let mut pruned = 0;
    loop {
        let n = store.prune(policy, args.batch).await?;
        if n == 0 {
            break;
        }
        pruned += n;
        progress.inc(n);
    }
    progress.finish_and_clear();
    if out.json {
        return crate::output::json(&Pruned { pruned });
    }
    line(&format!(
        "pruned {pruned} finished or cancelled run{}",
        if pruned == 1 { "" } else { "s" }
    ))
}

/// How many runs `policy` selects now: the progress bar's length.
async fn candidates<S: RunHistory>(store: &S, policy: Prune) -> Result<u64, CliError> {
    let mut done = 0u64;
    let mut old = 0u64;
    let cutoff = match policy {
        Prune::OlderThan(age) => SystemTime::now().checked_sub(age),
        _ => None,
    };
    for status in [RunStatus::Finished, RunStatus::Cancelled] {
        for run in store.list(&RunFilter::new().status(status)).await? {
            done += 1;
            if cutoff.is_some_and(|c| run.updated_at <= c) {
                old += 1;
            }
        }
    }
    Ok(match policy {
        Prune::KeepLast(keep) => done.saturating_sub(keep),
        _ => old,
    })
}
