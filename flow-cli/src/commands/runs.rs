//! `flow runs list|show|cancel|pause|resume`.

use crate::cli::ListArgs;
use crate::error::CliError;
use crate::output::{self, Output, line, paint, print_table, relative, short, table};
use crate::price::PriceArgs;
use crate::view::{RunDetail, RunView, state_name};
use anstyle::Style;
use flow_runtime::state::RunId;
use flow_runtime::store::{APPROVAL_EVENT, RunFilter, RunHistory, RunInfo, RunState};
use std::time::{Duration, SystemTime};

/// `flow runs list`: a table of runs, or a JSON array of [`RunView`]s.
pub(crate) async fn list<S: RunHistory>(
    store: &S,
    args: ListArgs,
    out: Output,
) -> Result<(), CliError> {
    let mut filter = RunFilter::new().limit(args.limit);
    if let Some(workflow) = args.workflow {
        filter = filter.workflow(workflow);
    }
    if let Some(status) = args.status {
        filter = filter.status(status);
    }
    if let Some(since) = args.since {
        filter = filter.since(since);
    }
    let mut runs = store.list(&filter).await?;
    super::with_pending_approvals(store, &mut runs).await?;
    if out.json {
        return crate::output::json(&runs.iter().map(RunView::of).collect::<Vec<_>>());
    }
    if runs.is_empty() {
        return line("no runs");
    }
    let now = SystemTime::now();
    let mut t = table([
        "RUN",
        "WORKFLOW",
        "STATE",
        "STEP",
        "CHECKPOINTS",
        "UPDATED",
        "DETAIL",
    ]);
    for run in &runs {
        t.add_row([
            run.run_id.as_str().to_owned(),
            run.workflow.clone(),
            output::state(state_name(run)),
            step_name(&run.step),
            run.checkpoints.to_string(),
            relative(run.updated_at, now),
            detail(run, now),
        ]);
    }
    print_table(&t)
}

/// A step's name; a run's start checkpoint (an engine's or `run`'s), before the first step, has none.
fn step_name(step: &str) -> String {
    if step.is_empty() {
        "(start)".to_owned()
    } else {
        step.to_owned()
    }
}

/// What a run's state says beyond its name: why it failed, what it waits for, until when.
fn detail(run: &RunInfo, now: SystemTime) -> String {
    match run.state() {
        // The reason names the step.
        RunState::Failed { reason, .. } => reason,
        RunState::AwaitingApproval {
            call_id,
            tool,
            until,
            ..
        } => format!(
            "approval of `{tool}` call `{call_id}`, deadline {}",
            relative(until, now)
        ),
        RunState::Waiting { event, until } => {
            format!("event `{event}`, deadline {}", relative(until, now))
        }
        RunState::Sleeping { until } => format!("wakes {}", relative(until, now)),
        RunState::Corrupt { what } => what,
        _ => String::new(),
    }
}

/// Whether the run waits for an approval rather than an event.
pub(crate) fn is_approval(run: &RunInfo) -> bool {
    run.wait
        .as_ref()
        .is_some_and(|(event, _)| event == APPROVAL_EVENT)
}

/// A run's info, or exit code 3 when the store does not have it.
pub(crate) async fn info<S: RunHistory>(store: &S, run: &RunId) -> Result<RunInfo, CliError> {
    store
        .status(run)
        .await?
        .ok_or_else(|| CliError::UnknownRun(run.clone()))
}

/// `flow runs show`: the run's status, its steps and its calls.
pub(crate) async fn show<S: RunHistory>(
    store: &S,
    run: &str,
    prices: &PriceArgs,
    out: Output,
) -> Result<(), CliError> {
    let run = RunId::from(run);
    let info = info(store, &run).await?;
    let history = store.steps(&run).await?;
    let journal = store.calls(&run).await?;
    let approvals = store.approvals(&run).await?;
    let detail_view = RunDetail::of(&info, &history, &journal, &approvals, prices);
    if out.json {
        return crate::output::json(&detail_view);
    }
    let now = SystemTime::now();
    let key = |k: &str| paint(&format!("{k:<10}"), Style::new().bold());
    line(&format!("{} {}", key("run"), info.run_id))?;
    line(&format!(
        "{} {} (fingerprint {})",
        key("workflow"),
        info.workflow,
        info.fingerprint
    ))?;
    // The approval's own line says what it waits for.
    let extra = if info.approval.is_some() {
        String::new()
    } else {
        detail(&info, now)
    };
    line(&format!(
        "{} {}{}",
        key("state"),
        output::state(state_name(&info)),
        if extra.is_empty() {
            String::new()
        } else {
            format!(": {extra}")
        }
    ))?;
    if let Some(approval) = &info.approval {
        line(&format!(
            "{} call `{}` of tool `{}` with arguments {}, until {} ({})",
            key("approval"),
            approval.call_id,
            approval.tool,
            approval.arguments,
            output::time(approval.until),
            relative(approval.until, now),
        ))?;
        line(&format!(
            "{} `flow approve {run} {call}` or `flow reject {run} {call} --reason '<why>'`",
            key("decide"),
            run = info.run_id,
            call = approval.call_id,
        ))?;
    } else if let Some((event, until)) = info.wait.as_ref().filter(|_| !is_approval(&info)) {
        line(&format!(
            "{} event `{event}` until {} ({}): `flow events send {} {event} '<json>'`",
            key("waits for"),
            output::time(*until),
            relative(*until, now),
            info.run_id
        ))?;
    }
    if let Some(until) = info.wake_at {
        line(&format!(
            "{} {} ({})",
            key("sleeps"),
            output::time(until),
            relative(until, now)
        ))?;
    }
    line(&format!(
        "{} {} ({} checkpoints)",
        key("step"),
        step_name(&info.step),
        info.checkpoints
    ))?;
    line(&format!(
        "{} {} ({})",
        key("created"),
        output::time(info.created_at),
        relative(info.created_at, now)
    ))?;
    line(&format!(
        "{} {} ({})",
        key("updated"),
        output::time(info.updated_at),
        relative(info.updated_at, now)
    ))?;
    if let Some(tokens) = detail_view.tokens {
        line(&format!(
            "{} {} in, {} out",
            key("tokens"),
            tokens.input,
            tokens.output
        ))?;
    }
    if let Some(cost) = detail_view.cost {
        line(&format!("{} {}", key("cost"), cost.text()))?;
    }

    line("")?;
    line(&paint("Steps", Style::new().bold().underline()))?;
    let mut steps = table(["#", "STEP", "ATTEMPT", "DURATION", "AT", "CALLS", "NOTE"]);
    for entry in &history {
        let note = match &entry.failure {
            Some(f) => paint(
                &format!("then: {}", f.reason),
                Style::new().fg_color(Some(anstyle::AnsiColor::Red.into())),
            ),
            None if entry.finished => "finished".to_owned(),
            None => String::new(),
        };
        steps.add_row([
            entry.seq.to_string(),
            step_name(&entry.step),
            match entry.attempt {
                // Not recorded, or a run's start checkpoint, which no step made.
                _ if entry.step.is_empty() => "-".to_owned(),
                0 => "-".to_owned(),
                n => n.to_string(),
            },
            entry.duration().map_or_else(|| "-".to_owned(), short),
            output::time(entry.at),
            entry.calls.len().to_string(),
            note,
        ]);
    }
    print_table(&steps)?;

    if !detail_view.calls.is_empty() {
        line("")?;
        line(&paint("Calls", Style::new().bold().underline()))?;
        let mut calls = table([
            "STEP", "VISIT", "#", "KIND", "NAME", "ATTEMPTS", "DURATION", "OUTCOME", "TOKENS",
        ]);
        for call in &detail_view.calls {
            let outcome = match &call.error {
                Some(error) => paint(
                    &format!("failed: {error}"),
                    Style::new().fg_color(Some(anstyle::AnsiColor::Red.into())),
                ),
                None => call.outcome.to_owned(),
            };
            calls.add_row([
                call.step.clone(),
                call.visit.clone(),
                call.position.to_string(),
                call.kind.to_owned(),
                call.name.clone(),
                call.attempts.to_string(),
                call.duration_ms.map_or_else(
                    || "(not checkpointed)".to_owned(),
                    |ms| short(Duration::from_millis(ms)),
                ),
                outcome,
                call.tokens
                    .map(|t| format!("{}/{}", t.input, t.output))
                    .unwrap_or_default(),
            ]);
        }
        print_table(&calls)?;
    }

    if !detail_view.approvals.is_empty() {
        line("")?;
        line(&paint("Approvals", Style::new().bold().underline()))?;
        let mut table = table(["CALL", "STEP", "TOOL", "ARGUMENTS", "DEADLINE", "DECISION"]);
        for approval in &detail_view.approvals {
            let decision = match (approval.decision, &approval.reason, &approval.edited) {
                (None, ..) => paint(
                    "pending",
                    Style::new().fg_color(Some(anstyle::AnsiColor::Yellow.into())),
                ),
                (Some(_), Some(reason), _) => format!("rejected: {reason}"),
                (Some(_), _, Some(edited)) => format!("approved with {edited}"),
                (Some(name), ..) => name.replace('_', " "),
            };
            table.add_row([
                approval.call_id.clone(),
                step_name(&approval.step),
                approval.tool.clone(),
                approval.arguments.to_string(),
                approval.until.clone(),
                decision,
            ]);
        }
        print_table(&table)?;
    }
    Ok(())
}

/// What `flow runs cancel|pause|resume` does.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Control {
    Cancel,
    Pause,
    Resume,
}

/// Moves a run to another status, as the store's table of moves allows.
pub(crate) async fn control<S: RunHistory>(
    store: &S,
    run: &str,
    what: Control,
    out: Output,
) -> Result<(), CliError> {
    let run = RunId::from(run);
    let before = info(store, &run).await?;
    let after = match what {
        Control::Cancel => store.cancel(&run).await?,
        Control::Pause => store.pause(&run).await?,
        Control::Resume => store.unpause(&run).await?,
    };
    if out.json {
        return crate::output::json(&RunView::of(&after));
    }
    let was = state_name(&before);
    let now = state_name(&after);
    if before.status == after.status {
        line(&format!("run {run}: already {}", output::state(now)))
    } else {
        line(&format!("run {run}: {} (was {was})", output::state(now)))
    }
}
