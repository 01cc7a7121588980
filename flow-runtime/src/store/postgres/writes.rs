//! The writes of a [`PgStore`](super::PgStore), each in one transaction: a checkpoint with
//! its history row, calls and consumed event (one statement); run control, waits, events,
//! failures, approvals.
//!
//! Run control, events and approvals read a run's row and then change it: they lock the row
//! first (`FOR UPDATE`), so what they read is what they change even with other workers
//! writing the database.

use super::reads::{self, back_edges_column, item_column};
use super::{Encoded, EncodedCall, db_error, millis, write_error};
use crate::error::{ControlError, StoreError, StoreErrorKind};
use crate::state::{CallKind, CallOutcome, CallRecord, RunId};
use crate::store::contract::{closed_inbox, unknown_run};
use crate::store::control::refused;
use crate::store::{
    APPROVAL_EVENT, Approval, ApprovalError, Checkpoint, Decision, Failure, Prune, RunInfo,
    RunStatus, decidable,
};
use sqlx_core::query::query;
use sqlx_core::query_as::query_as;
use sqlx_core::query_scalar::query_scalar;
use sqlx_postgres::{PgPool, Postgres};
use std::time::{SystemTime, UNIX_EPOCH};

/// A whole checkpoint in one statement, so in one round trip and one transaction: upserts the
/// run's row, and, if the row was written, adds its history row (with the attempt that
/// completed the step and when it began: the run's before this write, which `before` reads in
/// the statement's snapshot), removes the event the step consumed, and adds the step's calls;
/// returns the run's new checkpoint count.
///
/// `before` takes no lock: a row lock there would be taken after the upsert changed the row
/// in the same statement, and PostgreSQL skips such a row. The upsert locks the row; what
/// `before` read can differ from what it locked only if another write to the same run
/// committed in between, which one driver per run does not do.
///
/// A run id already used by another workflow, or a stopped run (paused, cancelled, failed, or
/// with a status this version does not know), fails the `WHERE` of the upsert's update, so
/// nothing is written and no row comes back: the check and the write are one statement.
const SAVE: &str = "
WITH before AS (
    SELECT attempt, step_started_at FROM runs WHERE run_id = $1
), up AS (
    INSERT INTO runs (run_id, workflow, fingerprint, step, state, finished, status, checkpoints, created_at, updated_at, wake_at, waiting, attempt, failure, step_started_at, trace)
    VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8, $8, $9, NULL, $10, NULL, $11, $12)
    ON CONFLICT (run_id) DO UPDATE SET
        fingerprint = excluded.fingerprint,
        step        = excluded.step,
        state       = excluded.state,
        finished    = excluded.finished,
        status      = excluded.status,
        checkpoints = runs.checkpoints + 1,
        updated_at  = excluded.updated_at,
        wake_at     = excluded.wake_at,
        waiting     = NULL,
        attempt     = excluded.attempt,
        failure     = NULL,
        failed_step = NULL,
        wait_event  = NULL,
        wait_until  = NULL,
        step_started_at = excluded.step_started_at,
        trace       = COALESCE(runs.trace, excluded.trace)
    WHERE runs.workflow = excluded.workflow AND runs.status IN ('running', 'finished', 'incompatible')
    RETURNING checkpoints
), history_row AS (
    INSERT INTO history (run_id, seq, step, finished, at, attempt, started_at)
    SELECT $1, up.checkpoints, $4, $6, $8,
        COALESCE((SELECT GREATEST(attempt, 1) FROM before), 1),
        (SELECT step_started_at FROM before)
    FROM up
), consumed AS (
    DELETE FROM events WHERE id = $13::bigint AND run_id = $1 AND EXISTS (SELECT 1 FROM up)
), step_calls AS (
    INSERT INTO calls (run_id, seq, n, kind, name, step, call_index, attempts, duration_us, error, visit_back_edges, visit_item, input_tokens, output_tokens)
    SELECT $1, up.checkpoints, c.* FROM up, UNNEST($14::bigint[], $15::text[], $16::text[], $17::text[], $18::bigint[], $19::bigint[], $20::bigint[], $21::text[], $22::bigint[], $23::bigint[], $24::bigint[], $25::bigint[]) AS c
)
SELECT checkpoints FROM up
";

/// Writes one checkpoint in one statement: the run's row, its history row, its calls, and
/// the removal of the event its step consumed.
pub(super) async fn save(pool: &PgPool, e: &Encoded) -> Result<(), StoreError> {
    let failed = |err| {
        db_error(
            format!(
                "run `{}`: could not write the checkpoint after step `{}`",
                e.run_id, e.step
            ),
            err,
        )
    };
    // The run goes straight on into its next step: that step's attempt begins now.
    let next_started_at = (e.attempt > 0).then_some(e.at);
    let status = if e.finished {
        RunStatus::Finished
    } else {
        RunStatus::Running
    };
    let calls = Calls::of(&e.calls);
    let seq: Option<i64> = query_scalar(SAVE)
        .bind(e.run_id.as_str())
        .bind(&e.workflow)
        .bind(&e.fingerprint)
        .bind(&e.step)
        .bind(&e.envelope)
        .bind(e.finished)
        .bind(status.as_str())
        .bind(e.at)
        .bind(e.wake_at)
        .bind(i64::from(e.attempt))
        .bind(next_started_at)
        .bind(e.trace.as_deref())
        .bind(
            e.consumed_event
                .map(|id| i64::try_from(id).unwrap_or(i64::MAX)),
        )
        .bind(calls.n)
        .bind(calls.kind)
        .bind(calls.name)
        .bind(calls.step)
        .bind(calls.index)
        .bind(calls.attempts)
        .bind(calls.duration)
        .bind(calls.error)
        .bind(calls.back_edges)
        .bind(calls.item)
        .bind(calls.input_tokens)
        .bind(calls.output_tokens)
        .fetch_optional(pool)
        .await
        .map_err(failed)?;
    if seq.is_some() {
        return Ok(());
    }
    // The upsert's `WHERE` failed: say which part.
    let (owner, status): (String, String) =
        query_as("SELECT workflow, status FROM runs WHERE run_id = $1")
            .bind(e.run_id.as_str())
            .fetch_one(pool)
            .await
            .map_err(failed)?;
    if owner != e.workflow {
        return Err(StoreError::of_kind(
            StoreErrorKind::Conflict,
            format!(
                "run `{}` belongs to workflow `{owner}`, not `{}`: give each run its own id",
                e.run_id, e.workflow
            ),
        ));
    }
    // The only other way to fail the `WHERE`: the run is stopped (paused, cancelled, failed),
    // or its status is one this version does not know.
    let status = RunStatus::from_name(&status).unwrap_or(RunStatus::Corrupt);
    Err(refused(&e.run_id, &e.step, status))
}

/// The calls of one checkpoint's step, column by column, for `UNNEST`.
#[derive(Default)]
struct Calls<'a> {
    n: Vec<i64>,
    kind: Vec<&'static str>,
    name: Vec<&'a str>,
    step: Vec<&'a str>,
    index: Vec<i64>,
    attempts: Vec<i64>,
    duration: Vec<i64>,
    error: Vec<Option<&'a str>>,
    back_edges: Vec<i64>,
    item: Vec<Option<i64>>,
    input_tokens: Vec<Option<i64>>,
    output_tokens: Vec<Option<i64>>,
}

impl<'a> Calls<'a> {
    fn of(calls: &'a [CallRecord]) -> Self {
        let big = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        let mut columns = Self::default();
        for (n, call) in (0_i64..).zip(calls) {
            columns.n.push(n);
            columns.kind.push(match call.kind {
                CallKind::Output => "output",
                CallKind::Model => "model",
                _ => "tool",
            });
            columns.name.push(&call.name);
            columns.step.push(&call.step);
            columns.index.push(i64::from(call.index));
            columns.attempts.push(i64::from(call.attempts));
            columns
                .duration
                .push(i64::try_from(call.duration.as_micros()).unwrap_or(i64::MAX));
            columns.error.push(match &call.outcome {
                CallOutcome::Failed(message) => Some(message.as_str()),
                _ => None,
            });
            columns.back_edges.push(big(call.visit.back_edges()));
            columns.item.push(call.visit.item_index().map(i64::from));
            columns
                .input_tokens
                .push(call.usage.map(|u| big(u.input_tokens)));
            columns
                .output_tokens
                .push(call.usage.map(|u| big(u.output_tokens)));
        }
        columns
    }
}

/// Records one call in the journal; the first entry for a call is kept.
pub(super) async fn record_call(pool: &PgPool, call: &EncodedCall) -> Result<(), StoreError> {
    query::<Postgres>(
        "INSERT INTO journal (run_id, step, visit_back_edges, visit_item, position, tool, \
         attempts, output, error) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT DO NOTHING",
    )
    .bind(call.run_id.as_str())
    .bind(&call.step)
    .bind(call.visit_back_edges)
    .bind(call.visit_item)
    .bind(i64::from(call.position))
    .bind(&call.tool)
    .bind(i64::from(call.attempts))
    .bind(call.output.as_deref())
    .bind(call.error.as_deref())
    .execute(pool)
    .await
    .map(drop)
    .map_err(|e| {
        db_error(
            format!(
                "run `{}`: could not record call {} of step `{}` in the journal",
                call.run_id, call.position, call.step
            ),
            e,
        )
    })
}

/// Counts a start of the run's next step when the run is due at `now` (not finished, no
/// wake-up time after `now`) and stored with `fingerprint`, and reads its latest checkpoint
/// with the count, in one transaction.
pub(super) async fn load_to_resume(
    pool: &PgPool,
    run_id: &RunId,
    fingerprint: &str,
    now: i64,
) -> Result<Option<Checkpoint>, StoreError> {
    let failed = |e| write_error(run_id, "count a start of its next step", e);
    let mut tx = pool.begin().await.map_err(failed)?;
    query::<Postgres>(
        "UPDATE runs SET attempt = attempt + 1, step_started_at = $4 \
         WHERE run_id = $1 AND NOT finished AND fingerprint = $3 \
         AND (wake_at IS NULL OR wake_at <= $2)",
    )
    .bind(run_id.as_str())
    .bind(now)
    .bind(fingerprint)
    // When the attempt begins, on the clock checkpoints are timed by (`now` is the
    // runtime's, which tests may pause).
    .bind(millis(SystemTime::now()))
    .execute(&mut *tx)
    .await
    .map_err(failed)?;
    let latest = reads::latest(&mut tx, run_id).await?;
    tx.commit().await.map_err(failed)?;
    Ok(latest)
}

/// Moves a run to `to`: the status it is read in is the status it is changed from.
pub(super) async fn control(
    pool: &PgPool,
    run_id: &RunId,
    to: RunStatus,
) -> Result<RunInfo, ControlError> {
    let fail = |e| {
        ControlError::Store(db_error(
            format!("run `{run_id}`: could not change its status in the store"),
            e,
        ))
    };
    let unknown = || ControlError::UnknownRun {
        run_id: run_id.clone(),
    };
    let mut tx = pool.begin().await.map_err(fail)?;
    let locked: Option<i32> = query_scalar("SELECT 1 FROM runs WHERE run_id = $1 FOR UPDATE")
        .bind(run_id.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(fail)?;
    if locked.is_none() {
        return Err(unknown());
    }
    let info = reads::status(&mut tx, run_id).await?.ok_or_else(unknown)?;
    let next = info
        .status
        .transition(to)
        .ok_or_else(|| ControlError::Transition {
            run_id: run_id.clone(),
            status: info.status,
            to,
        })?;
    if next == info.status {
        return Ok(info);
    }
    query::<Postgres>("UPDATE runs SET status = $2, updated_at = $3 WHERE run_id = $1")
        .bind(run_id.as_str())
        .bind(next.as_str())
        .bind(millis(SystemTime::now()))
        .execute(&mut *tx)
        .await
        .map_err(fail)?;
    let info = reads::status(&mut tx, run_id).await?.ok_or_else(unknown)?;
    tx.commit().await.map_err(fail)?;
    Ok(info)
}

/// Marks a running run stored with another fingerprint incompatible.
pub(super) async fn mark_incompatible(
    pool: &PgPool,
    run_id: &RunId,
    fingerprint: &str,
) -> Result<(), StoreError> {
    query::<Postgres>(
        "UPDATE runs SET status = 'incompatible', updated_at = $3 \
         WHERE run_id = $1 AND status = 'running' AND fingerprint <> $2",
    )
    .bind(run_id.as_str())
    .bind(fingerprint)
    .bind(millis(SystemTime::now()))
    .execute(pool)
    .await
    .map(drop)
    .map_err(|e| write_error(run_id, "mark it incompatible in the store", e))
}

/// Records that the run waits in `step` for `event` until `until`; due at once when the
/// event is in its inbox already.
pub(super) async fn wait(
    pool: &PgPool,
    run_id: &RunId,
    step: &str,
    event: &str,
    until: i64,
) -> Result<(), StoreError> {
    let changed = query::<Postgres>(
        "UPDATE runs SET wake_at = CASE WHEN EXISTS \
           (SELECT 1 FROM events WHERE run_id = $1 AND name = $4) THEN 0 ELSE $2 END, \
         waiting = $3, wait_event = $4, wait_until = $2, attempt = 0, step_started_at = NULL \
         WHERE run_id = $1 AND NOT finished",
    )
    .bind(run_id.as_str())
    .bind(until)
    .bind(step)
    .bind(event)
    .execute(pool)
    .await
    .map_err(|e| write_error(run_id, "record its wait", e))?
    .rows_affected();
    if changed == 0 {
        return Err(unknown_run(run_id));
    }
    Ok(())
}

/// Puts an event in an open run's inbox, and makes the run due if it waits for it.
pub(super) async fn send_event(
    pool: &PgPool,
    run_id: &RunId,
    name: &str,
    payload: &str,
) -> Result<(), StoreError> {
    let failed = |e| write_error(run_id, "store the event", e);
    let mut tx = pool.begin().await.map_err(failed)?;
    let status: Option<String> =
        query_scalar("SELECT status FROM runs WHERE run_id = $1 FOR UPDATE")
            .bind(run_id.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(failed)?;
    let Some(status) = status else {
        return Err(unknown_run(run_id));
    };
    let status = RunStatus::from_name(&status).unwrap_or(RunStatus::Running);
    if matches!(status, RunStatus::Finished | RunStatus::Cancelled) {
        return Err(closed_inbox(run_id, status));
    }
    query::<Postgres>(
        "INSERT INTO events (run_id, name, payload, sent_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(run_id.as_str())
    .bind(name)
    .bind(payload)
    .bind(millis(SystemTime::now()))
    .execute(&mut *tx)
    .await
    .map_err(failed)?;
    // A run waiting for this event is due at once (`wait_until` keeps the wait's deadline);
    // one waiting for another event, or asleep, keeps its time.
    query::<Postgres>(
        "UPDATE runs SET wake_at = 0 WHERE run_id = $1 AND waiting IS NOT NULL \
         AND wait_event = $2",
    )
    .bind(run_id.as_str())
    .bind(name)
    .execute(&mut *tx)
    .await
    .map_err(failed)?;
    tx.commit().await.map_err(failed)
}

/// Marks a running run failed, keeping the failure on the run and on the history entry its
/// failed step started from.
pub(super) async fn fail(
    pool: &PgPool,
    run_id: &RunId,
    failure: &Failure,
) -> Result<(), StoreError> {
    tracing::warn!(run_id = %run_id, error = %failure, "run failed");
    let failed = |e| write_error(run_id, "mark it failed", e);
    let mut tx = pool.begin().await.map_err(failed)?;
    let changed = query::<Postgres>(
        "UPDATE runs SET status = 'failed', updated_at = $2, failure = $3, failed_step = $4 \
         WHERE run_id = $1 AND status = 'running'",
    )
    .bind(run_id.as_str())
    .bind(millis(SystemTime::now()))
    .bind(&failure.reason)
    .bind(failure.step.as_deref())
    .execute(&mut *tx)
    .await
    .map_err(failed)?
    .rows_affected();
    // The history keeps the failure on the checkpoint the failed step started from, so that
    // it is still there after the run is retried.
    if changed > 0 {
        query::<Postgres>(
            "UPDATE history SET failure = $2, failed_step = $3 WHERE run_id = $1 \
             AND seq = (SELECT checkpoints FROM runs WHERE run_id = $1)",
        )
        .bind(run_id.as_str())
        .bind(&failure.reason)
        .bind(failure.step.as_deref())
        .execute(&mut *tx)
        .await
        .map_err(failed)?;
    }
    tx.commit().await.map_err(failed)
}

/// Deletes at most `batch` (`None`: all) of the finished and cancelled runs `policy` selects,
/// the least recently updated first; their history, calls, events and journal go with them.
/// Rows another pruner is deleting are skipped, not waited for.
pub(super) async fn prune(
    pool: &PgPool,
    policy: Prune,
    batch: Option<i64>,
) -> Result<u64, StoreError> {
    let deleted = match policy {
        Prune::OlderThan(age) => {
            let cutoff = millis(SystemTime::now().checked_sub(age).unwrap_or(UNIX_EPOCH));
            query::<Postgres>(
                "DELETE FROM runs WHERE run_id IN (
                     SELECT run_id FROM runs WHERE status IN ('finished', 'cancelled')
                     AND updated_at <= $1 ORDER BY updated_at, run_id LIMIT $2
                     FOR UPDATE SKIP LOCKED)",
            )
            .bind(cutoff)
            .bind(batch)
            .execute(pool)
            .await
        }
        Prune::KeepLast(keep) => {
            query::<Postgres>(
                "DELETE FROM runs WHERE run_id IN (
                     SELECT run_id FROM runs WHERE status IN ('finished', 'cancelled')
                     AND run_id NOT IN (
                         SELECT run_id FROM runs WHERE status IN ('finished', 'cancelled')
                         ORDER BY updated_at DESC, run_id DESC LIMIT $1)
                     ORDER BY updated_at, run_id LIMIT $2
                     FOR UPDATE SKIP LOCKED)",
            )
            .bind(i64::try_from(keep).unwrap_or(i64::MAX))
            .bind(batch)
            .execute(pool)
            .await
        }
    };
    deleted
        .map(|done| done.rows_affected())
        .map_err(|e| db_error("postgres store: could not prune finished runs", e))
}

/// Records a workflow once per name and fingerprint; the first record is kept.
pub(super) async fn register(
    pool: &PgPool,
    name: &str,
    fingerprint: &str,
    steps: &str,
    mermaid: &str,
) -> Result<(), StoreError> {
    query::<Postgres>(
        "INSERT INTO workflows (name, fingerprint, steps, mermaid, registered_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
    )
    .bind(name)
    .bind(fingerprint)
    .bind(steps)
    .bind(mermaid)
    .bind(millis(SystemTime::now()))
    .execute(pool)
    .await
    .map(drop)
    .map_err(|e| {
        db_error(
            format!("postgres store: could not record workflow `{name}`"),
            e,
        )
    })
}

/// Keeps an approval request (the first for its call) and parks the run on it, in one
/// transaction.
pub(super) async fn request_approval(
    pool: &PgPool,
    approval: &Approval,
) -> Result<Approval, StoreError> {
    let run_id = &approval.run_id;
    let failed = |e| write_error(run_id, "store its approval request", e);
    let mut tx = pool.begin().await.map_err(failed)?;
    let open: Option<i32> =
        query_scalar("SELECT 1 FROM runs WHERE run_id = $1 AND NOT finished FOR UPDATE")
            .bind(run_id.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(failed)?;
    if open.is_none() {
        return Err(unknown_run(run_id));
    }
    query::<Postgres>(
        "INSERT INTO approvals (run_id, step, visit_back_edges, visit_item, position, call_id, \
         model_call_id, tool, arguments, until, decision) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL) \
         ON CONFLICT (run_id, step, visit_back_edges, visit_item, position) DO NOTHING",
    )
    .bind(run_id.as_str())
    .bind(&approval.step)
    .bind(back_edges_column(approval.visit))
    .bind(item_column(approval.visit))
    .bind(i64::from(approval.position))
    .bind(&approval.call_id)
    .bind(approval.model_call_id.as_deref())
    .bind(&approval.tool)
    .bind(approval.arguments.to_string())
    .bind(millis(approval.until))
    .execute(&mut *tx)
    .await
    .map_err(failed)?;
    let kept = reads::approval(
        &mut tx,
        run_id,
        &approval.step,
        approval.visit,
        approval.position,
    )
    .await?
    .ok_or_else(|| unknown_run(run_id))?;
    let until = millis(kept.until);
    let wake = if kept.is_pending() { until } else { 0 };
    query::<Postgres>(
        "UPDATE runs SET wake_at = $2, waiting = $3, wait_event = $4, wait_until = $5, \
         attempt = 0 WHERE run_id = $1",
    )
    .bind(run_id.as_str())
    .bind(wake)
    .bind(&kept.step)
    .bind(APPROVAL_EVENT)
    .bind(until)
    .execute(&mut *tx)
    .await
    .map_err(failed)?;
    tx.commit().await.map_err(failed)?;
    Ok(kept)
}

/// Decides a request by its call id, in one transaction: see
/// [`Store::decide_approval`](crate::store::Store::decide_approval).
pub(super) async fn decide_approval(
    pool: &PgPool,
    run_id: &RunId,
    call_id: &str,
    decision: Decision,
    now: i64,
) -> Result<Approval, ApprovalError> {
    let failed = |e| ApprovalError::Store(write_error(run_id, "decide its approval", e));
    let mut tx = pool.begin().await.map_err(failed)?;
    let exists: Option<i32> = query_scalar("SELECT 1 FROM runs WHERE run_id = $1 FOR UPDATE")
        .bind(run_id.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(failed)?;
    if exists.is_none() {
        return Err(ApprovalError::UnknownRun {
            run_id: run_id.clone(),
        });
    }
    let all = reads::approvals(&mut tx, run_id).await?;
    let i = decidable(run_id, call_id, &decision, &all, super::from_millis(now))?;
    let text = serde_json::to_string(&decision).map_err(|e| {
        ApprovalError::Store(StoreError::with_source(
            format!("run `{run_id}`: the decision on call `{call_id}` does not serialize"),
            e,
        ))
    })?;
    query::<Postgres>("UPDATE approvals SET decision = $3 WHERE run_id = $1 AND call_id = $2")
        .bind(run_id.as_str())
        .bind(call_id)
        .bind(text)
        .execute(&mut *tx)
        .await
        .map_err(failed)?;
    query::<Postgres>(
        "UPDATE runs SET wake_at = 0, updated_at = $3 \
         WHERE run_id = $1 AND waiting IS NOT NULL AND wait_event = $2",
    )
    .bind(run_id.as_str())
    .bind(APPROVAL_EVENT)
    .bind(millis(SystemTime::now()))
    .execute(&mut *tx)
    .await
    .map_err(failed)?;
    tx.commit().await.map_err(failed)?;
    Ok(all[i].clone().with_decision(Some(decision)))
}
