//! The writes of a [`PgStore`](super::PgStore), each in one transaction: a checkpoint with
//! its history row, calls and consumed event (one statement); run control, waits, events,
//! failures, approvals.
//!
//! Run control, events and approvals read a run's row and then change it: they lock the row
//! first (`FOR UPDATE`), so what they read is what they change even with other workers
//! writing the database.

use super::reads::{self, back_edges_column, item_column};
use super::{Encoded, EncodedCall, db_error, epoch, millis, text, write_error};
use crate::error::{ControlError, StoreError, StoreErrorKind};
use crate::state::{CallKind, CallOutcome, CallRecord, RunId};
use crate::store::contract::{closed_inbox, unknown_run};
use crate::store::control::refused;
use crate::store::queue::lease_lost;
use crate::store::{
    APPROVAL_EVENT, Approval, ApprovalError, Checkpoint, Decision, Failure, Fence, Lease, Prune,
    RunInfo, RunStatus, decidable,
};
use sqlx_core::query::query;
use sqlx_core::query_as::query_as;
use sqlx_core::query_scalar::query_scalar;
use sqlx_core::sql_str::AssertSqlSafe;
use sqlx_postgres::{PgPool, Postgres};
use std::borrow::Cow;
use std::time::{SystemTime, UNIX_EPOCH};

/// Checkpoints of several runs (one each) in one statement, so in one round trip and one
/// transaction: upserts each run's row, and, for each row written, adds its history row (with
/// the attempt that completed the step and when it began: the run's before this write, which
/// `before` reads in the statement's snapshot), removes the event the step consumed, and adds
/// the step's calls; returns each written run's id and new checkpoint count.
///
/// Each checkpoint is one element of the arrays `$1` to `$14` and `$28` (`input`), each call one element
/// of `$15` to `$27` (with its run's id in `$15`). A run appears at most once: PostgreSQL
/// refuses an upsert that would change one row twice.
///
/// `before` takes no lock: a row lock there would be taken after the upsert changed the row
/// in the same statement, and PostgreSQL skips such a row. The upsert locks the row; what
/// `before` read can differ from what it locked only if another write to the same run
/// committed in between, which one driver per run does not do.
///
/// A run id already used by another workflow, a stopped run (paused, cancelled, failed, or
/// with a status this version does not know), a fence that is not the run's lease epoch, or
/// any stored run when the checkpoint starts a new one (`new_run`, `$28`) fails the `WHERE` of
/// the upsert's update, so nothing is written for that run and no row
/// comes back for it, while the other runs' checkpoints are written: the check and the write
/// are one statement, and PostgreSQL evaluates that `WHERE` on the row's latest version,
/// locked, so a claim committed meanwhile is seen. A fenced checkpoint of a run not stored is
/// not inserted: a fence is given only for a stored run, so it is a stale worker's, of a run
/// deleted (pruned) meanwhile, which it must not bring back.
const SAVE: &str = "
WITH input AS (
    SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::boolean[], $7::text[],
                         $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[], $12::text[], $13::bigint[], $14::bigint[],
                         $28::boolean[])
        AS i (run_id, workflow, fingerprint, step, state, finished, status, at, wake_at, attempt, step_started_at, trace, consumed, fence, new_run)
), before AS (
    SELECT runs.run_id, runs.attempt, runs.step_started_at FROM runs JOIN input USING (run_id)
), up AS (
    INSERT INTO runs (run_id, workflow, fingerprint, step, state, finished, status, checkpoints, created_at, updated_at, wake_at, waiting, attempt, failure, step_started_at, trace)
    SELECT run_id, workflow, fingerprint, step, state, finished, status, 1, at, at, wake_at, NULL, attempt, NULL, step_started_at, trace
    FROM input WHERE input.fence IS NULL OR input.run_id IN (SELECT run_id FROM before)
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
      AND NOT EXISTS (SELECT 1 FROM input
                      WHERE input.run_id = excluded.run_id AND input.fence IS DISTINCT FROM runs.lease_epoch
                        AND input.fence IS NOT NULL)
      AND NOT EXISTS (SELECT 1 FROM input WHERE input.run_id = excluded.run_id AND input.new_run)
    RETURNING run_id, checkpoints
), history_row AS (
    INSERT INTO history (run_id, seq, step, finished, at, attempt, started_at)
    SELECT up.run_id, up.checkpoints, input.step, input.finished, input.at,
        COALESCE(GREATEST(before.attempt, 1), 1), before.step_started_at
    FROM up JOIN input USING (run_id) LEFT JOIN before USING (run_id)
), consumed AS (
    DELETE FROM events USING input, up
    WHERE events.id = input.consumed AND events.run_id = input.run_id AND up.run_id = input.run_id
), step_calls AS (
    INSERT INTO calls (run_id, seq, n, kind, name, step, call_index, attempts, duration_us, error, visit_back_edges, visit_item, input_tokens, output_tokens)
    SELECT up.run_id, up.checkpoints, c.n, c.kind, c.name, c.step, c.call_index, c.attempts, c.duration_us, c.error,
        c.visit_back_edges, c.visit_item, c.input_tokens, c.output_tokens
    FROM UNNEST($15::text[], $16::bigint[], $17::text[], $18::text[], $19::text[], $20::bigint[], $21::bigint[],
                $22::bigint[], $23::text[], $24::bigint[], $25::bigint[], $26::bigint[], $27::bigint[])
        AS c (run_id, n, kind, name, step, call_index, attempts, duration_us, error, visit_back_edges, visit_item, input_tokens, output_tokens)
    JOIN up USING (run_id)
)
SELECT run_id, checkpoints FROM up
";

/// Writes the checkpoints of `batch` (of distinct runs) in one statement: each run's row,
/// history row and calls, and the removal of the event its step consumed. Returns the id and
/// new checkpoint count of each run whose checkpoint was written; a run missing there was
/// refused (see [`refusals`]). An error the server reported means nothing was written; a lost
/// connection leaves it unknown.
pub(super) async fn save_many(
    pool: &PgPool,
    batch: &[&Encoded],
) -> Result<Vec<(String, i64)>, sqlx_core::Error> {
    let mut runs = Runs::default();
    let mut calls = Calls::default();
    for e in batch {
        runs.push(e);
        calls.push(e.run_id.as_str(), &e.calls);
    }
    query_as(SAVE)
        .bind(runs.run_id)
        .bind(runs.workflow)
        .bind(runs.fingerprint)
        .bind(runs.step)
        .bind(runs.state)
        .bind(runs.finished)
        .bind(runs.status)
        .bind(runs.at)
        .bind(runs.wake_at)
        .bind(runs.attempt)
        .bind(runs.step_started_at)
        .bind(runs.trace)
        .bind(runs.consumed)
        .bind(runs.fence)
        .bind(calls.run_id)
        .bind(calls.n)
        .bind(calls.kind)
        .bind(calls.name.iter().map(AsRef::as_ref).collect::<Vec<&str>>())
        .bind(calls.step)
        .bind(calls.index)
        .bind(calls.attempts)
        .bind(calls.duration)
        .bind(
            calls
                .error
                .iter()
                .map(Option::as_deref)
                .collect::<Vec<Option<&str>>>(),
        )
        .bind(calls.back_edges)
        .bind(calls.item)
        .bind(calls.input_tokens)
        .bind(calls.output_tokens)
        .bind(runs.new_run)
        .fetch_all(pool)
        .await
}

/// The errors for the checkpoints `SAVE` did not write, once their batch has committed: the
/// `WHERE` of the upsert failed, and one read of their runs says which part, for each.
pub(super) async fn refusals(pool: &PgPool, refused: &[&Encoded]) -> Vec<StoreError> {
    let ids: Vec<&str> = refused.iter().map(|e| e.run_id.as_str()).collect();
    let rows: Vec<(String, String, String, i64)> = match query_as(
        "SELECT run_id, workflow, status, lease_epoch FROM runs WHERE run_id = ANY($1)",
    )
    .bind(&ids)
    .fetch_all(pool)
    .await
    {
        Ok(rows) => rows,
        Err(error) => {
            let message = error.to_string();
            return refused
                .iter()
                .map(|e| {
                    StoreError::new(format!(
                        "run `{}`: the checkpoint after step `{}` was refused, and the store \
                         could not read why: {message}",
                        e.run_id, e.step
                    ))
                })
                .collect();
        }
    };
    let runs: std::collections::HashMap<&str, (&str, &str, i64)> = rows
        .iter()
        .map(|(run, owner, status, epoch)| {
            (run.as_str(), (owner.as_str(), status.as_str(), *epoch))
        })
        .collect();
    refused
        .iter()
        .map(|e| match runs.get(e.run_id.as_str()) {
            Some(&(owner, status, current)) => refusal(e, owner, status, current),
            // Not stored: a stale worker's fenced checkpoint of a run deleted (pruned)
            // meanwhile.
            None if let Some(fence) = e.fence => lease_lost(
                &e.run_id,
                "the checkpoint",
                Fence::new(u64::try_from(fence).unwrap_or_default()),
            ),
            // Deleted between the two statements (pruned, or by hand).
            None => StoreError::of_kind(
                StoreErrorKind::Conflict,
                format!(
                    "run `{}`: the checkpoint after step `{}` was refused, and the run is no \
                     longer stored",
                    e.run_id, e.step
                ),
            ),
        })
        .collect()
}

/// Why the upsert's `WHERE` refused `e` for a run of workflow `owner` with `status` and lease
/// epoch `current`.
fn refusal(e: &Encoded, owner: &str, status: &str, current: i64) -> StoreError {
    if e.new_run {
        return crate::store::contract::exists(&e.run_id);
    }
    if let Some(fence) = e.fence
        && fence != current
    {
        let fence = Fence::new(u64::try_from(fence).unwrap_or_default());
        return lease_lost(&e.run_id, "the checkpoint", fence);
    }
    if owner != e.workflow {
        return StoreError::of_kind(
            StoreErrorKind::Conflict,
            format!(
                "run `{}` belongs to workflow `{owner}`, not `{}`: give each run its own id",
                e.run_id, e.workflow
            ),
        );
    }
    // The only other way to fail the `WHERE`: the run is stopped (paused, cancelled, failed),
    // or its status is one this version does not know.
    let status = RunStatus::from_name(status).unwrap_or(RunStatus::Corrupt);
    refused(&e.run_id, &e.step, status)
}

/// What a checkpoint's caller is told when the statement that held it failed.
pub(super) fn save_error(e: &Encoded, error: sqlx_core::Error) -> StoreError {
    db_error(
        format!(
            "run `{}`: could not write the checkpoint after step `{}`",
            e.run_id, e.step
        ),
        error,
    )
}

/// Tells listening engines that runs may be due, outside a transaction: a hint, so a failure
/// is only logged.
pub(super) async fn hint(pool: &PgPool) {
    if let Err(error) = notify(pool).await {
        tracing::debug!(%error, "could not notify engines of a new run; they poll");
    }
}

/// Whether `e` started a run that is due at once, which engines listening elsewhere should
/// look for: its first checkpoint, not finished, with no wake-up time.
pub(super) fn starts_due_run(e: &Encoded, checkpoints: i64) -> bool {
    checkpoints == 1 && !e.finished && e.wake_at.is_none()
}

/// The checkpoints of one statement, column by column, for `UNNEST`.
#[derive(Default)]
struct Runs<'a> {
    run_id: Vec<&'a str>,
    workflow: Vec<&'a str>,
    fingerprint: Vec<&'a str>,
    step: Vec<&'a str>,
    state: Vec<&'a str>,
    finished: Vec<bool>,
    status: Vec<&'static str>,
    at: Vec<i64>,
    wake_at: Vec<Option<i64>>,
    attempt: Vec<i64>,
    step_started_at: Vec<Option<i64>>,
    trace: Vec<Option<&'a str>>,
    consumed: Vec<Option<i64>>,
    fence: Vec<Option<i64>>,
    new_run: Vec<bool>,
}

impl<'a> Runs<'a> {
    fn push(&mut self, e: &'a Encoded) {
        let status = if e.finished {
            RunStatus::Finished
        } else {
            RunStatus::Running
        };
        self.run_id.push(e.run_id.as_str());
        self.workflow.push(&e.workflow);
        self.fingerprint.push(&e.fingerprint);
        self.step.push(&e.step);
        self.state.push(&e.envelope);
        self.finished.push(e.finished);
        self.status.push(status.as_str());
        self.at.push(e.at);
        self.wake_at.push(e.wake_at);
        self.attempt.push(i64::from(e.attempt));
        // The run goes straight on into its next step: that step's attempt begins now.
        self.step_started_at.push((e.attempt > 0).then_some(e.at));
        self.trace.push(e.trace.as_deref());
        self.consumed.push(
            e.consumed_event
                .map(|id| i64::try_from(id).unwrap_or(i64::MAX)),
        );
        self.fence.push(e.fence);
        self.new_run.push(e.new_run);
    }
}

/// The calls of the checkpoints of one statement, column by column, for `UNNEST`, each with
/// its run's id.
#[derive(Default)]
struct Calls<'a> {
    run_id: Vec<&'a str>,
    n: Vec<i64>,
    kind: Vec<&'static str>,
    name: Vec<Cow<'a, str>>,
    step: Vec<&'a str>,
    index: Vec<i64>,
    attempts: Vec<i64>,
    duration: Vec<i64>,
    error: Vec<Option<Cow<'a, str>>>,
    back_edges: Vec<i64>,
    item: Vec<Option<i64>>,
    input_tokens: Vec<Option<i64>>,
    output_tokens: Vec<Option<i64>>,
}

impl<'a> Calls<'a> {
    fn push(&mut self, run_id: &'a str, calls: &'a [CallRecord]) {
        let big = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        let columns = self;
        for (n, call) in (0_i64..).zip(calls) {
            columns.run_id.push(run_id);
            columns.n.push(n);
            columns.kind.push(match call.kind {
                CallKind::Output => "output",
                CallKind::Model => "model",
                _ => "tool",
            });
            columns.name.push(text(&call.name));
            columns.step.push(&call.step);
            columns.index.push(i64::from(call.index));
            columns.attempts.push(i64::from(call.attempts));
            columns
                .duration
                .push(i64::try_from(call.duration.as_micros()).unwrap_or(i64::MAX));
            columns.error.push(match &call.outcome {
                CallOutcome::Failed(message) => Some(text(message)),
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
    }
}

/// Records one call in the journal; the first entry for a call is kept. A fenced entry
/// (`$10`) is written only if its fence is the run's lease epoch, read with the row locked
/// (`FOR SHARE`, so on its latest version, and a claim waits for this statement): the check and
/// the write are one statement.
const RECORD_CALL: &str = "
WITH lease AS (
    SELECT lease_epoch FROM runs WHERE run_id = $1 FOR SHARE
), fenced AS (
    SELECT $10::bigint IS NULL OR EXISTS (SELECT 1 FROM lease WHERE lease_epoch = $10) AS held
), entry AS (
    INSERT INTO journal (run_id, step, visit_back_edges, visit_item, position, tool, attempts, output, error)
    SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9 FROM fenced WHERE held
    ON CONFLICT DO NOTHING
)
SELECT held FROM fenced
";

/// Records one call in the journal; see [`RECORD_CALL`].
pub(super) async fn record_call(pool: &PgPool, call: &EncodedCall) -> Result<(), StoreError> {
    let held: bool = query_scalar(RECORD_CALL)
        .bind(call.run_id.as_str())
        .bind(&call.step)
        .bind(call.visit_back_edges)
        .bind(call.visit_item)
        .bind(i64::from(call.position))
        .bind(text(&call.tool))
        .bind(i64::from(call.attempts))
        .bind(call.output.as_deref())
        .bind(call.error.as_deref().map(text))
        .bind(call.fence)
        .fetch_one(pool)
        .await
        .map_err(|e| {
            db_error(
                format!(
                    "run `{}`: could not record call {} of step `{}` in the journal",
                    call.run_id, call.position, call.step
                ),
                e,
            )
        })?;
    match call.fence {
        Some(fence) if !held => Err(lease_lost(
            &call.run_id,
            "the journal entry",
            Fence::new(u64::try_from(fence).unwrap_or_default()),
        )),
        _ => Ok(()),
    }
}

/// Counts a start of the run's next step when the run is due at `now` (not finished, no
/// wake-up time after `now`) and stored with `fingerprint`, and reads its latest checkpoint
/// with the count, in one statement.
pub(super) async fn load_to_resume(
    pool: &PgPool,
    run_id: &RunId,
    fingerprint: &str,
    now: i64,
) -> Result<Option<Checkpoint>, StoreError> {
    // One statement: the count of the attempt when the run is due (and not finished, and of
    // this fingerprint), and the run's latest checkpoint, counted or not.
    let row: Option<reads::LatestColumns> = query_as(AssertSqlSafe(format!(
        "WITH up AS ( \
             UPDATE runs SET attempt = attempt + 1, step_started_at = $4 \
             WHERE run_id = $1 AND NOT finished AND fingerprint = $3 \
             AND (wake_at IS NULL OR wake_at <= $2) \
             RETURNING {columns} \
         ) \
         SELECT * FROM up \
         UNION ALL \
         SELECT {columns} FROM runs WHERE run_id = $1 AND NOT EXISTS (SELECT 1 FROM up)",
        columns = reads::LATEST_COLUMNS
    )))
    .bind(run_id.as_str())
    .bind(now)
    .bind(fingerprint)
    // When the attempt begins, on the clock checkpoints are timed by (`now` is the
    // runtime's, which tests may pause).
    .bind(millis(SystemTime::now()))
    .fetch_optional(pool)
    .await
    .map_err(|e| write_error(run_id, "count a start of its next step", e))?;
    reads::decode_latest(run_id, row)
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
    if next == RunStatus::Running {
        notify(&mut *tx).await.map_err(fail)?;
    }
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
    fence: Option<Fence>,
) -> Result<(), StoreError> {
    let changed = query::<Postgres>(
        "UPDATE runs SET wake_at = CASE WHEN EXISTS \
           (SELECT 1 FROM events WHERE run_id = $1 AND name = $4) THEN 0 ELSE $2 END, \
         waiting = $3, wait_event = $4, wait_until = $2, attempt = 0, step_started_at = NULL \
         WHERE run_id = $1 AND NOT finished AND ($5::bigint IS NULL OR lease_epoch = $5)",
    )
    .bind(run_id.as_str())
    .bind(until)
    .bind(step)
    .bind(event)
    .bind(fence.map(epoch))
    .execute(pool)
    .await
    .map_err(|e| write_error(run_id, "record its wait", e))?
    .rows_affected();
    if changed == 0 {
        return match fence {
            Some(fence) if open(pool, run_id).await? => Err(lease_lost(run_id, "the wait", fence)),
            _ => Err(unknown_run(run_id)),
        };
    }
    Ok(())
}

/// Whether an unfinished run `run_id` is stored.
async fn open(pool: &PgPool, run_id: &RunId) -> Result<bool, StoreError> {
    query_scalar::<Postgres, i32>("SELECT 1 FROM runs WHERE run_id = $1 AND NOT finished")
        .bind(run_id.as_str())
        .fetch_optional(pool)
        .await
        .map(|found| found.is_some())
        .map_err(|e| write_error(run_id, "read it", e))
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
    let woken = query::<Postgres>(
        "UPDATE runs SET wake_at = 0 WHERE run_id = $1 AND waiting IS NOT NULL \
         AND wait_event = $2",
    )
    .bind(run_id.as_str())
    .bind(name)
    .execute(&mut *tx)
    .await
    .map_err(failed)?;
    if woken.rows_affected() > 0 {
        notify(&mut *tx).await.map_err(failed)?;
    }
    tx.commit().await.map_err(failed)
}

/// Marks a running run failed, keeping the failure on the run and on the history entry its
/// failed step started from.
pub(super) async fn fail(
    pool: &PgPool,
    run_id: &RunId,
    failure: &Failure,
    fence: Option<Fence>,
) -> Result<(), StoreError> {
    let failed = |e| write_error(run_id, "mark it failed", e);
    let mut tx = pool.begin().await.map_err(failed)?;
    if let Some(fence) = fence {
        let current: Option<i64> =
            query_scalar("SELECT lease_epoch FROM runs WHERE run_id = $1 FOR UPDATE")
                .bind(run_id.as_str())
                .fetch_optional(&mut *tx)
                .await
                .map_err(failed)?;
        if current.is_some_and(|current| current != epoch(fence)) {
            return Err(lease_lost(run_id, "marking the run failed", fence));
        }
    }
    tracing::warn!(run_id = %run_id, error = %failure, "run failed");
    let changed = query::<Postgres>(
        "UPDATE runs SET status = 'failed', updated_at = $2, failure = $3, failed_step = $4 \
         WHERE run_id = $1 AND status = 'running'",
    )
    .bind(run_id.as_str())
    .bind(millis(SystemTime::now()))
    .bind(text(&failure.reason))
    .bind(failure.step.as_deref().map(text))
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
        .bind(text(&failure.reason))
        .bind(failure.step.as_deref().map(text))
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
                     SELECT run_id FROM runs WHERE settled_at IS NOT NULL
                     AND status IN ('finished', 'cancelled') AND settled_at <= $1
                     ORDER BY settled_at, run_id LIMIT $2
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
                     SELECT run_id FROM runs WHERE settled_at IS NOT NULL
                     AND status IN ('finished', 'cancelled')
                     AND run_id NOT IN (
                         SELECT run_id FROM runs WHERE settled_at IS NOT NULL
                         AND status IN ('finished', 'cancelled')
                         ORDER BY settled_at DESC, run_id DESC LIMIT $1)
                     ORDER BY settled_at, run_id LIMIT $2
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
    let current: Option<i64> =
        query_scalar("SELECT lease_epoch FROM runs WHERE run_id = $1 AND NOT finished FOR UPDATE")
            .bind(run_id.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(failed)?;
    let Some(current) = current else {
        return Err(unknown_run(run_id));
    };
    if let Some(fence) = approval.fence
        && epoch(fence) != current
    {
        return Err(lease_lost(run_id, "the approval request", fence));
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
    .bind(approval.model_call_id.as_deref().map(text))
    .bind(text(&approval.tool))
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
    let woken = query::<Postgres>(
        "UPDATE runs SET wake_at = 0, updated_at = $3 \
         WHERE run_id = $1 AND waiting IS NOT NULL AND wait_event = $2",
    )
    .bind(run_id.as_str())
    .bind(APPROVAL_EVENT)
    .bind(millis(SystemTime::now()))
    .execute(&mut *tx)
    .await
    .map_err(failed)?;
    if woken.rows_affected() > 0 {
        notify(&mut *tx).await.map_err(failed)?;
    }
    tx.commit().await.map_err(failed)?;
    Ok(all[i].clone().with_decision(Some(decision)))
}

/// Leases due runs nobody holds to a worker, in one statement: the due-run query of
/// `reads::due` (two range scans of `runs_due`) with the lease's condition, each branch
/// locking the rows it finds and skipping rows another claim has locked (`FOR UPDATE SKIP
/// LOCKED`), then one update of the rows picked, which increases their epochs. A row another
/// claim leased and committed meanwhile fails the lease condition when it is locked (PostgreSQL
/// checks the `WHERE` again on the row's latest version), so two claims never lease one run.
const CLAIM: &str = "
WITH at_once AS (
    SELECT run_id, wake_at, created_at FROM runs
    WHERE status = 'running' AND wake_at IS NULL AND workflow = ANY($5)
      AND (lease_until IS NULL OR lease_until <= $1)
    ORDER BY wake_at NULLS FIRST, created_at LIMIT $2
    FOR UPDATE SKIP LOCKED
), woken AS (
    SELECT run_id, wake_at, created_at FROM runs
    WHERE status = 'running' AND wake_at <= $1 AND workflow = ANY($5)
      AND (lease_until IS NULL OR lease_until <= $1)
    ORDER BY wake_at NULLS FIRST, created_at LIMIT $2
    FOR UPDATE SKIP LOCKED
), picked AS (
    SELECT run_id, wake_at, created_at FROM (SELECT * FROM at_once UNION ALL SELECT * FROM woken) AS due
    ORDER BY wake_at NULLS FIRST, created_at LIMIT $2
), claimed AS (
    UPDATE runs SET lease_owner = $3, lease_until = $4, lease_epoch = runs.lease_epoch + 1
    FROM picked WHERE runs.run_id = picked.run_id
    RETURNING runs.run_id, runs.lease_epoch, picked.wake_at, picked.created_at
)
SELECT run_id, lease_epoch FROM claimed ORDER BY wake_at NULLS FIRST, created_at
";

/// Leases up to `limit` due runs of `workflows` nobody holds at `now` to `worker` until
/// `until`.
pub(super) async fn claim(
    pool: &PgPool,
    now: i64,
    workflows: &[String],
    limit: usize,
    worker: &str,
    until: i64,
) -> Result<Vec<Lease>, StoreError> {
    let rows: Vec<(String, i64)> = query_as(CLAIM)
        .bind(now)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .bind(text(worker))
        .bind(until)
        .bind(workflows)
        .fetch_all(pool)
        .await
        .map_err(|e| db_error("postgres store: could not claim due runs", e))?;
    Ok(leases(rows, until))
}

fn leases(rows: Vec<(String, i64)>, until: i64) -> Vec<Lease> {
    let until = super::from_millis(until);
    rows.into_iter()
        .map(|(run_id, epoch)| {
            Lease::new(
                RunId::from(run_id),
                Fence::new(u64::try_from(epoch).unwrap_or_default()),
                until,
            )
        })
        .collect()
}

/// Extends each lease that is still current (held, with the run's epoch) until `until`, in
/// one statement.
pub(super) async fn renew(
    pool: &PgPool,
    held: &[Lease],
    until: i64,
) -> Result<Vec<Lease>, StoreError> {
    let runs: Vec<&str> = held.iter().map(|l| l.run_id.as_str()).collect();
    let epochs: Vec<i64> = held.iter().map(|l| epoch(l.fence)).collect();
    // The rows are locked first, in the order of their ids (byte order, as a checkpoint batch
    // sorts them in `commit`), so that a renewal and a batch never wait for each other in a
    // cycle.
    let rows: Vec<(String, i64)> = query_as(
        "WITH locked AS ( \
             SELECT run_id FROM runs WHERE run_id = ANY($2) \
             ORDER BY run_id COLLATE \"C\" FOR NO KEY UPDATE \
         ) \
         UPDATE runs SET lease_until = $1 \
         FROM unnest($2::text[], $3::bigint[]) AS held (run_id, epoch), locked \
         WHERE runs.run_id = held.run_id AND runs.run_id = locked.run_id \
           AND runs.lease_epoch = held.epoch AND runs.lease_owner IS NOT NULL \
         RETURNING runs.run_id, runs.lease_epoch",
    )
    .bind(until)
    .bind(runs)
    .bind(epochs)
    .fetch_all(pool)
    .await
    .map_err(|e| db_error("postgres store: could not renew leases", e))?;
    Ok(leases(rows, until))
}

/// Gives up a lease that is still the run's.
pub(super) async fn release(pool: &PgPool, lease: &Lease) -> Result<(), StoreError> {
    query::<Postgres>(
        "UPDATE runs SET lease_owner = NULL, lease_until = NULL \
         WHERE run_id = $1 AND lease_epoch = $2",
    )
    .bind(lease.run_id.as_str())
    .bind(epoch(lease.fence))
    .execute(pool)
    .await
    .map(drop)
    .map_err(|e| write_error(&lease.run_id, "release its lease", e))
}

/// The channel engines listen on for runs that became due through another process.
pub(super) const CHANNEL: &str = "flow_due";

/// Tells listening engines that a run may be due (a hint: they poll as well). Inside a
/// transaction, delivered when it commits, so the run is visible when they look.
async fn notify<'c, E>(executor: E) -> Result<(), sqlx_core::Error>
where
    E: sqlx_core::executor::Executor<'c, Database = Postgres>,
{
    query::<Postgres>("SELECT pg_notify($1, '')")
        .bind(CHANNEL)
        .execute(executor)
        .await
        .map(drop)
}
