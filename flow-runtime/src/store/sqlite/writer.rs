//! The writer thread of a [`SqliteStore`](super::SqliteStore): group commit of checkpoints,
//! then run control, waits, events and pruning, each in a transaction of its own.

use super::queries::{Read, latest, serve_read, status};
use super::{Encoded, EncodedCall, Prune, Reply, epoch, millis};
use crate::error::{ControlError, StoreError, StoreErrorKind};
use crate::state::{CallKind, CallOutcome, CallRecord, RunId};
use crate::store::contract::{closed_inbox, unknown_run};
use crate::store::control::refused;
use crate::store::queue::lease_lost;
use crate::store::{
    Approval, ApprovalError, Checkpoint, Decision, Failure, Fence, Lease, RunInfo, RunStatus,
};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, oneshot};

/// The most checkpoints one transaction commits. Bounded so that one commit's replies are not
/// held back too long by a flood of others; far above what a batch usually holds.
const MAX_BATCH: usize = 1024;

/// Upserts the run's row and returns its new checkpoint count. A run id already used by
/// another workflow, a stopped run (paused, cancelled, failed, or with a status this version
/// does not know), or any stored run when the checkpoint starts a new one (`?14`), fails the
/// `WHERE` of the update, so nothing changes and no row comes back: the check and the write are
/// one statement.
const UPSERT_RUN: &str = "
INSERT INTO runs (run_id, workflow, fingerprint, step, state, finished, status, checkpoints, created_at, updated_at, wake_at, waiting, attempt, failure, step_started_at, trace)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 1, ?8, ?8, ?9, NULL, ?10, NULL, ?11, ?12)
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
  AND (?13 IS NULL OR runs.lease_epoch = ?13) AND NOT ?14
RETURNING checkpoints
";

/// The columns of a [`RunInfo`], in the order [`run_info`] reads them.
const INSERT_HISTORY: &str = "INSERT INTO history (run_id, seq, step, finished, at, attempt, started_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

const INSERT_CALL: &str = "
INSERT INTO calls (run_id, seq, n, kind, name, step, call_index, attempts, duration_us, error, visit_back_edges, visit_item, input_tokens, output_tokens)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
";
pub(super) enum Write {
    Save(Encoded, Reply<()>),
    /// A call journal entry, its result as JSON text: committed with the batch's saves.
    Journal(EncodedCall, Reply<()>),
    /// Done after the batch's saves are committed.
    After(After),
}

pub(super) enum After {
    /// Finished runs to delete, and at most how many (-1: all).
    Prune(Prune, i64, Reply<u64>),
    /// A workflow to record: name, fingerprint, steps (a JSON array), Mermaid graph.
    Register(String, String, String, String, Reply<()>),
    /// Moves a run to a status, as [`RunStatus::transition`] allows.
    Control(
        RunId,
        RunStatus,
        oneshot::Sender<Result<RunInfo, ControlError>>,
    ),
    /// The run id and the fingerprint of the code that refused it.
    MarkIncompatible(RunId, String, Reply<()>),
    /// The run waits in a step for an event (its name) until a time, under a lease.
    Wait(RunId, String, String, i64, Option<Fence>, Reply<()>),
    /// An event for a run's inbox: its name and payload.
    SendEvent(RunId, String, String, Reply<()>),
    /// A run's step failed under an engine: the message, and the engine's lease.
    Fail(RunId, Failure, Option<Fence>, Reply<()>),
    /// Leases on due runs for a worker.
    Claim(Claim, Reply<Vec<Lease>>),
    /// Extends leases that are still current until a time.
    Renew(Vec<Lease>, i64, Reply<Vec<Lease>>),
    /// Gives a lease up.
    Release(Lease, Reply<()>),
    /// The latest checkpoint of a run about to be resumed, counting a start of its next step
    /// when the run is due at the time given.
    LoadToResume(RunId, String, i64, Reply<Option<Checkpoint>>),
    /// An approval request to keep, and its run to park.
    RequestApproval(Box<Approval>, Reply<Approval>),
    /// A decision on a run's approval request (its call id), at a time.
    DecideApproval(
        RunId,
        String,
        Decision,
        i64,
        oneshot::Sender<Result<Approval, ApprovalError>>,
    ),
    /// Reads of an in-memory database.
    Read(Read),
}

pub(super) fn write_loop(mut conn: Connection, mut rx: mpsc::Receiver<Write>) {
    let mut saves = Vec::new();
    let mut journal = Vec::new();
    let mut others = Vec::new();
    let mut loads = Vec::new();
    while let Some(first) = rx.blocking_recv() {
        let mut next = Some(first);
        let mut taken = 0;
        while let Some(request) = next {
            match request {
                Write::Save(encoded, reply) => saves.push((encoded, reply)),
                Write::Journal(call, reply) => journal.push((call, reply)),
                Write::After(After::LoadToResume(run_id, fingerprint, now, reply)) => {
                    loads.push((run_id, fingerprint, now, reply));
                }
                Write::After(after) => others.push(after),
            }
            taken += 1;
            next = if taken < MAX_BATCH {
                rx.try_recv().ok()
            } else {
                None
            };
        }
        if !saves.is_empty() || !journal.is_empty() {
            commit_saves(&mut conn, &mut journal, &mut saves);
        }
        // Counted together, in one transaction (one fsync), like saves: an engine picking up
        // many runs at once pays for one commit, not one each.
        if !loads.is_empty() {
            load_to_resume(&mut conn, &mut loads);
        }
        // After the commit, so that a read sees every save acknowledged before it.
        for request in others.drain(..) {
            match request {
                After::Prune(policy, batch, reply) => {
                    let _ = reply.send(prune(&conn, policy, batch));
                }
                After::Register(name, fingerprint, steps, mermaid, reply) => {
                    let _ = reply.send(register(&conn, &name, &fingerprint, &steps, &mermaid));
                }
                After::Control(run_id, to, reply) => {
                    let _ = reply.send(control(&mut conn, &run_id, to));
                }
                After::MarkIncompatible(run_id, fingerprint, reply) => {
                    let _ = reply.send(mark_incompatible(&conn, &run_id, &fingerprint));
                }
                After::Wait(run_id, step, event, until, fence, reply) => {
                    let _ = reply.send(wait(&conn, &run_id, &step, &event, until, fence));
                }
                After::SendEvent(run_id, name, payload, reply) => {
                    let _ = reply.send(send_event(&mut conn, &run_id, &name, &payload));
                }
                After::Fail(run_id, failure, fence, reply) => {
                    let _ = reply.send(fail(&mut conn, &run_id, &failure, fence));
                }
                After::Claim(request, reply) => {
                    let _ = reply.send(claim(&mut conn, &request));
                }
                After::Renew(leases, until, reply) => {
                    let _ = reply.send(renew(&mut conn, &leases, until));
                }
                After::Release(lease, reply) => {
                    let _ = reply.send(release(&conn, &lease));
                }
                // Taken out of the batch above.
                After::LoadToResume(run_id, fingerprint, now, reply) => {
                    loads.push((run_id, fingerprint, now, reply));
                    load_to_resume(&mut conn, &mut loads);
                }
                After::RequestApproval(approval, reply) => {
                    let _ = reply.send(super::approvals::request(&mut conn, &approval));
                }
                After::DecideApproval(run_id, call_id, decision, now, reply) => {
                    let _ = reply.send(super::approvals::decide(
                        &mut conn, &run_id, &call_id, decision, now,
                    ));
                }
                After::Read(read) => serve_read(&conn, read),
            }
        }
    }
}

/// Commits a batch of saves in one transaction, then answers each. A save that fails on its
/// own (a run id of another workflow, a statement SQLite refused) is rolled back to its
/// savepoint and fails alone; a failed commit fails them all.
pub(super) fn commit_saves(
    conn: &mut Connection,
    journal: &mut Vec<(EncodedCall, Reply<()>)>,
    saves: &mut Vec<(Encoded, Reply<()>)>,
) {
    let outcome = (|| {
        let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Journal entries first: a step's calls are recorded before its checkpoint.
        let mut recorded = Vec::with_capacity(journal.len());
        for (call, _) in journal.iter() {
            let sp = tx.savepoint()?;
            let result = write_call(&sp, call).unwrap_or_else(|e| {
                Err(StoreError::with_source(
                    format!(
                        "run `{}`: could not record call {} of step `{}` in the journal",
                        call.run_id, call.position, call.step
                    ),
                    e,
                ))
            });
            if result.is_ok() {
                sp.commit()?;
            } else {
                sp.finish()?;
            }
            recorded.push(result);
        }
        let mut results = Vec::with_capacity(saves.len());
        for (encoded, _) in saves.iter() {
            let sp = tx.savepoint()?;
            let result = write_one(&sp, encoded).unwrap_or_else(|e| {
                Err(StoreError::with_source(
                    format!(
                        "run `{}`: could not write the checkpoint after step `{}`",
                        encoded.run_id, encoded.step
                    ),
                    e,
                ))
            });
            if result.is_ok() {
                sp.commit()?;
            } else {
                // Rolls back to the savepoint and releases it; an error here (SQLite gave up
                // the whole transaction) fails the batch.
                sp.finish()?;
            }
            results.push(result);
        }
        tx.commit()?;
        Ok::<_, rusqlite::Error>((recorded, results))
    })();
    match outcome {
        Ok((recorded, results)) => {
            for ((_, reply), result) in journal.drain(..).zip(recorded) {
                let _ = reply.send(result);
            }
            for ((_, reply), result) in saves.drain(..).zip(results) {
                let _ = reply.send(result);
            }
        }
        Err(e) => {
            let message = e.to_string();
            for (call, reply) in journal.drain(..) {
                let _ = reply.send(Err(StoreError::new(format!(
                    "run `{}`: could not commit call {} of step `{}` to the journal: {message}",
                    call.run_id, call.position, call.step
                ))));
            }
            for (encoded, reply) in saves.drain(..) {
                let _ = reply.send(Err(StoreError::new(format!(
                    "run `{}`: could not commit the checkpoint after step `{}`: {message}",
                    encoded.run_id, encoded.step
                ))));
            }
        }
    }
}

/// Records one call in the journal; the first entry for a call is kept. A fenced entry is
/// refused unless its fence is the run's. The outer error is SQLite's, the inner one this
/// entry's own.
fn write_call(conn: &Connection, call: &EncodedCall) -> rusqlite::Result<Result<(), StoreError>> {
    if let Some(fence) = call.fence {
        let current: Option<i64> = conn
            .prepare_cached("SELECT lease_epoch FROM runs WHERE run_id = ?1")?
            .query_row([call.run_id.as_str()], |row| row.get(0))
            .optional()?;
        if current != Some(fence) {
            return Ok(Err(lease_lost(
                &call.run_id,
                "the journal entry",
                Fence::new(u64::try_from(fence).unwrap_or_default()),
            )));
        }
    }
    conn.prepare_cached(
        "INSERT INTO journal (run_id, step, visit_back_edges, visit_item, position, tool, attempts, output, error, seq)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9,
                 (SELECT COALESCE(MAX(seq), 0) + 1 FROM journal WHERE run_id = ?1))
         ON CONFLICT DO NOTHING",
    )?
    .execute(params![
        call.run_id.as_str(),
        call.step,
        call.visit_back_edges,
        call.visit_item,
        call.position,
        call.tool,
        call.attempts,
        call.output,
        call.error,
    ])?;
    Ok(Ok(()))
}

/// Writes one checkpoint: the run's row and one history row. The outer error is SQLite's,
/// the inner one this save's own.
pub(super) fn write_one(
    conn: &Connection,
    e: &Encoded,
) -> rusqlite::Result<Result<(), StoreError>> {
    // The attempt that completed the step, and when it began: the run's before this write.
    let stored: Option<(i64, Option<i64>)> = conn
        .prepare_cached("SELECT attempt, step_started_at FROM runs WHERE run_id = ?1")?
        .query_row([e.run_id.as_str()], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    // A fence is given only for a stored run: a fenced checkpoint of a run not stored is a
    // stale worker's, of a run deleted (pruned) meanwhile, which it must not bring back.
    if let (None, Some(fence)) = (stored, e.fence) {
        let fence = Fence::new(u64::try_from(fence).unwrap_or_default());
        return Ok(Err(lease_lost(&e.run_id, "the checkpoint", fence)));
    }
    let (attempt, started_at) = stored.unwrap_or((1, None));
    // The run goes straight on into its next step: that step's attempt begins now.
    let next_started_at = (e.attempt > 0).then_some(e.at);
    let seq: Option<i64> = conn
        .prepare_cached(UPSERT_RUN)?
        .query_row(
            params![
                e.run_id.as_str(),
                e.workflow,
                e.fingerprint,
                e.step,
                e.envelope,
                e.finished,
                if e.finished {
                    RunStatus::Finished
                } else {
                    RunStatus::Running
                }
                .as_str(),
                e.at,
                e.wake_at,
                e.attempt,
                next_started_at,
                e.trace,
                e.fence,
                e.new_run
            ],
            |row| row.get(0),
        )
        .optional()?;
    let Some(seq) = seq else {
        // The update's `WHERE` failed: say which part.
        let (owner, status, current): (String, String, i64) = conn.query_row(
            "SELECT workflow, status, lease_epoch FROM runs WHERE run_id = ?1",
            [e.run_id.as_str()],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )?;
        if e.new_run {
            return Ok(Err(crate::store::contract::exists(&e.run_id)));
        }
        if let Some(fence) = e.fence
            && fence != current
        {
            let fence = Fence::new(u64::try_from(fence).unwrap_or_default());
            return Ok(Err(lease_lost(&e.run_id, "the checkpoint", fence)));
        }
        if owner != e.workflow {
            return Ok(Err(StoreError::of_kind(
                StoreErrorKind::Conflict,
                format!(
                    "run `{}` belongs to workflow `{owner}`, not `{}`: give each run its own id",
                    e.run_id, e.workflow
                ),
            )));
        }
        // The only other way to fail the `WHERE`: the run is stopped (paused, cancelled,
        // failed), or its status is one this version does not know.
        let status = RunStatus::from_name(&status).unwrap_or(RunStatus::Corrupt);
        return Ok(Err(refused(&e.run_id, &e.step, status)));
    };
    conn.prepare_cached(INSERT_HISTORY)?.execute(params![
        e.run_id.as_str(),
        seq,
        e.step,
        e.finished,
        e.at,
        attempt.max(1),
        started_at
    ])?;
    if let Some(id) = e.consumed_event {
        conn.prepare_cached("DELETE FROM events WHERE id = ?1 AND run_id = ?2")?
            .execute(params![
                i64::try_from(id).unwrap_or(i64::MAX),
                e.run_id.as_str()
            ])?;
    }
    if !e.calls.is_empty() {
        let mut insert = conn.prepare_cached(INSERT_CALL)?;
        for (n, call) in e.calls.iter().enumerate() {
            let (kind, error) = call_columns(call);
            insert.execute(params![
                e.run_id.as_str(),
                seq,
                i64::try_from(n).unwrap_or(i64::MAX),
                kind,
                call.name,
                call.step,
                call.index,
                call.attempts,
                i64::try_from(call.duration.as_micros()).unwrap_or(i64::MAX),
                error,
                i64::try_from(call.visit.back_edges()).unwrap_or(i64::MAX),
                call.visit.item_index(),
                call.usage
                    .map(|u| i64::try_from(u.input_tokens).unwrap_or(i64::MAX)),
                call.usage
                    .map(|u| i64::try_from(u.output_tokens).unwrap_or(i64::MAX)),
            ])?;
        }
    }
    Ok(Ok(()))
}

pub(super) fn call_columns(call: &CallRecord) -> (&'static str, Option<&str>) {
    let kind = match call.kind {
        CallKind::Output => "output",
        CallKind::Model => "model",
        _ => "tool",
    };
    let error = match &call.outcome {
        CallOutcome::Failed(message) => Some(message.as_str()),
        _ => None,
    };
    (kind, error)
}

/// Deletes at most `batch` (-1: all) of the finished runs `policy` selects, the least
/// recently updated first.
pub(super) fn prune(conn: &Connection, policy: Prune, batch: i64) -> Result<u64, StoreError> {
    let deleted = match policy {
        Prune::OlderThan(age) => {
            let cutoff = millis(SystemTime::now().checked_sub(age).unwrap_or(UNIX_EPOCH));
            conn.execute(
                "DELETE FROM runs WHERE run_id IN (
                     SELECT run_id FROM runs WHERE status IN ('finished', 'cancelled')
                     AND updated_at <= ?1 ORDER BY updated_at, run_id LIMIT ?2)",
                [cutoff, batch],
            )
        }
        Prune::KeepLast(keep) => conn.execute(
            "DELETE FROM runs WHERE run_id IN (
                 SELECT run_id FROM runs WHERE status IN ('finished', 'cancelled')
                 AND run_id NOT IN (
                     SELECT run_id FROM runs WHERE status IN ('finished', 'cancelled')
                     ORDER BY updated_at DESC, run_id DESC LIMIT ?1)
                 ORDER BY updated_at, run_id LIMIT ?2)",
            [i64::try_from(keep).unwrap_or(i64::MAX), batch],
        ),
    };
    // History rows go with their run (ON DELETE CASCADE), in the same statement.
    deleted
        .map(|n| u64::try_from(n).unwrap_or(u64::MAX))
        .map_err(|e| StoreError::with_source("sqlite store: could not prune finished runs", e))
}

/// Records a workflow once per name and fingerprint; the first record is kept.
pub(super) fn register(
    conn: &Connection,
    name: &str,
    fingerprint: &str,
    steps: &str,
    mermaid: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO workflows (name, fingerprint, steps, mermaid, registered_at) \
         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            name,
            fingerprint,
            steps,
            mermaid,
            millis(SystemTime::now())
        ])
    })
    .map(drop)
    .map_err(|e| {
        StoreError::with_source(
            format!("sqlite store: could not record workflow `{name}`"),
            e,
        )
    })
}

pub(super) fn write_error(run_id: &RunId, what: &str, e: rusqlite::Error) -> StoreError {
    StoreError::with_source(format!("run `{run_id}`: could not {what}"), e)
}

pub(super) fn wait(
    conn: &Connection,
    run_id: &RunId,
    step: &str,
    event: &str,
    until: i64,
    fence: Option<Fence>,
) -> Result<(), StoreError> {
    // Due at once when the event is in the inbox already: sent after the step looked there,
    // and before this.
    let changed = conn
        .execute(
            "UPDATE runs SET wake_at = CASE WHEN EXISTS \
               (SELECT 1 FROM events WHERE run_id = ?1 AND name = ?4) THEN 0 ELSE ?2 END, \
             waiting = ?3, wait_event = ?4, wait_until = ?2, attempt = 0, step_started_at = NULL \
             WHERE run_id = ?1 AND finished = 0 AND (?5 IS NULL OR lease_epoch = ?5)",
            params![run_id.as_str(), until, step, event, fence.map(epoch)],
        )
        .map_err(|e| write_error(run_id, "record its wait", e))?;
    if changed == 0 {
        return match fence {
            Some(fence) if stored(conn, run_id)? => Err(lease_lost(run_id, "the wait", fence)),
            _ => Err(unknown_run(run_id)),
        };
    }
    Ok(())
}

/// Whether an unfinished run `run_id` is stored.
fn stored(conn: &Connection, run_id: &RunId) -> Result<bool, StoreError> {
    conn.query_row(
        "SELECT 1 FROM runs WHERE run_id = ?1 AND finished = 0",
        [run_id.as_str()],
        |_| Ok(()),
    )
    .optional()
    .map(|found| found.is_some())
    .map_err(|e| write_error(run_id, "read it", e))
}

/// What [`claim`] is asked for: see `RunQueue::claim`.
pub(super) struct Claim {
    pub(super) now: i64,
    pub(super) workflows: Vec<String>,
    pub(super) limit: usize,
    pub(super) worker: String,
    pub(super) until: i64,
}

/// Leases due runs nobody holds to a worker, in one transaction: the due-run query of
/// `queries::due` (two range searches of `runs_by_wake`) with the lease's condition, then one
/// update of the rows found, which increases their epochs.
fn claim(conn: &mut Connection, request: &Claim) -> Result<Vec<Lease>, StoreError> {
    let fail = |e| StoreError::with_source("sqlite store: could not claim due runs", e);
    let names = (5..5 + request.workflows.len())
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let free = "(lease_until IS NULL OR lease_until <= ?1)";
    let sql = format!(
        "UPDATE runs SET lease_owner = ?3, lease_until = ?4, lease_epoch = lease_epoch + 1 \
         WHERE run_id IN (SELECT run_id FROM ( \
           SELECT * FROM (SELECT run_id, wake_at, updated_at FROM runs \
             WHERE status = 'running' AND wake_at IS NULL AND workflow IN ({names}) AND {free} \
             LIMIT ?2) \
           UNION ALL \
           SELECT * FROM (SELECT run_id, wake_at, updated_at FROM runs \
             WHERE status = 'running' AND wake_at <= ?1 AND workflow IN ({names}) AND {free} \
             ORDER BY wake_at LIMIT ?2) \
         ) ORDER BY wake_at, updated_at LIMIT ?2) \
         RETURNING run_id, lease_epoch"
    );
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(fail)?;
    let leases = {
        let mut stmt = tx.prepare_cached(&sql).map_err(fail)?;
        let mut values: Vec<rusqlite::types::Value> = vec![
            request.now.into(),
            i64::try_from(request.limit).unwrap_or(i64::MAX).into(),
            request.worker.clone().into(),
            request.until.into(),
        ];
        values.extend(request.workflows.iter().map(|w| w.clone().into()));
        let until = super::from_millis(request.until);
        stmt.query_map(rusqlite::params_from_iter(values), |row| {
            Ok(Lease::new(
                RunId::from(row.get::<_, String>(0)?),
                Fence::new(u64::try_from(row.get::<_, i64>(1)?).unwrap_or_default()),
                until,
            ))
        })
        .and_then(Iterator::collect::<rusqlite::Result<Vec<_>>>)
        .map_err(fail)?
    };
    tx.commit().map_err(fail)?;
    Ok(leases)
}

/// Extends each lease that is still current (held, with the run's epoch) until `until`, in
/// one transaction; returns those.
fn renew(conn: &mut Connection, leases: &[Lease], until: i64) -> Result<Vec<Lease>, StoreError> {
    let fail = |e| StoreError::with_source("sqlite store: could not renew leases", e);
    let at = super::from_millis(until);
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(fail)?;
    let mut renewed = Vec::with_capacity(leases.len());
    {
        let mut stmt = tx
            .prepare_cached(
                "UPDATE runs SET lease_until = ?3 \
                 WHERE run_id = ?1 AND lease_epoch = ?2 AND lease_owner IS NOT NULL",
            )
            .map_err(fail)?;
        for lease in leases {
            let changed = stmt
                .execute(params![lease.run_id.as_str(), epoch(lease.fence), until])
                .map_err(fail)?;
            if changed > 0 {
                renewed.push(Lease::new(lease.run_id.clone(), lease.fence, at));
            }
        }
    }
    tx.commit().map_err(fail)?;
    Ok(renewed)
}

/// Gives up a lease that is still the run's.
fn release(conn: &Connection, lease: &Lease) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE runs SET lease_owner = NULL, lease_until = NULL \
         WHERE run_id = ?1 AND lease_epoch = ?2",
    )
    .and_then(|mut stmt| stmt.execute(params![lease.run_id.as_str(), epoch(lease.fence)]))
    .map(|_| ())
    .map_err(|e| write_error(&lease.run_id, "release its lease", e))
}

pub(super) fn send_event(
    conn: &mut Connection,
    run_id: &RunId,
    name: &str,
    payload: &str,
) -> Result<(), StoreError> {
    let failed = |e| write_error(run_id, "store the event", e);
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(failed)?;
    let status: Option<String> = tx
        .query_row(
            "SELECT status FROM runs WHERE run_id = ?1",
            [run_id.as_str()],
            |row| row.get(0),
        )
        .optional()
        .map_err(failed)?;
    let Some(status) = status else {
        return Err(unknown_run(run_id));
    };
    let status = RunStatus::from_name(&status).unwrap_or(RunStatus::Running);
    if matches!(status, RunStatus::Finished | RunStatus::Cancelled) {
        return Err(closed_inbox(run_id, status));
    }
    let now = millis(SystemTime::now());
    tx.execute(
        "INSERT INTO events (run_id, name, payload, sent_at) VALUES (?1, ?2, ?3, ?4)",
        params![run_id.as_str(), name, payload, now],
    )
    .map_err(failed)?;
    // A run waiting for this event is due at once (`wait_until` keeps the wait's deadline);
    // one waiting for another event, or asleep, keeps its time. A wait recorded before schema
    // 5 does not say its event: any event wakes it, and its step waits again if it was not
    // this one.
    tx.execute(
        "UPDATE runs SET wake_at = 0 WHERE run_id = ?1 AND waiting IS NOT NULL \
         AND (wait_event = ?2 OR wait_event IS NULL)",
        params![run_id.as_str(), name],
    )
    .map_err(failed)?;
    tx.commit().map_err(failed)
}

pub(super) fn fail(
    conn: &mut Connection,
    run_id: &RunId,
    failure: &Failure,
    fence: Option<Fence>,
) -> Result<(), StoreError> {
    let failed = |e| write_error(run_id, "mark it failed", e);
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(failed)?;
    if let Some(fence) = fence {
        let current: Option<i64> = tx
            .query_row(
                "SELECT lease_epoch FROM runs WHERE run_id = ?1",
                [run_id.as_str()],
                |row| row.get(0),
            )
            .optional()
            .map_err(failed)?;
        if current.is_some_and(|current| current != epoch(fence)) {
            return Err(lease_lost(run_id, "marking the run failed", fence));
        }
    }
    tracing::warn!(run_id = %run_id, error = %failure, "run failed");
    let changed = tx
        .execute(
            "UPDATE runs SET status = 'failed', updated_at = ?2, failure = ?3, failed_step = ?4 \
             WHERE run_id = ?1 AND status = 'running'",
            params![
                run_id.as_str(),
                millis(SystemTime::now()),
                failure.reason,
                failure.step
            ],
        )
        .map_err(failed)?;
    // The history keeps the failure on the checkpoint the failed step started from, so that
    // it is still there after the run is retried.
    if changed > 0 {
        tx.execute(
            "UPDATE history SET failure = ?2, failed_step = ?3 WHERE run_id = ?1 \
             AND seq = (SELECT checkpoints FROM runs WHERE run_id = ?1)",
            params![run_id.as_str(), failure.reason, failure.step],
        )
        .map_err(failed)?;
    }
    tx.commit().map_err(failed)
}

/// A request to load a run to resume it: run id, fingerprint, now.
pub(super) type Load = (RunId, String, i64, Reply<Option<Checkpoint>>);

/// For each request, counts a start of the run's next step when the run is due at `now` (not
/// finished, no wake-up time after `now`) and stored with `fingerprint`, and reads its latest
/// checkpoint with the count; all in one transaction, then answers each. A run whose row
/// cannot be read fails alone; a failed commit fails them all.
pub(super) fn load_to_resume(conn: &mut Connection, loads: &mut Vec<Load>) {
    let outcome = (|| {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut results = Vec::with_capacity(loads.len());
        for (run_id, fingerprint, now, _) in loads.iter() {
            let counted = tx
                .prepare_cached(
                    "UPDATE runs SET attempt = attempt + 1, step_started_at = ?4 \
                     WHERE run_id = ?1 AND finished = 0 AND fingerprint = ?3 \
                     AND (wake_at IS NULL OR wake_at <= ?2)",
                )
                .and_then(|mut stmt| {
                    // When the attempt begins, on the clock checkpoints are timed by (`now`
                    // is the runtime's, which tests may pause).
                    let wall = millis(SystemTime::now());
                    stmt.execute(params![run_id.as_str(), now, fingerprint, wall])
                })
                .map_err(|e| write_error(run_id, "count a start of its next step", e));
            results.push(counted.and_then(|_| latest(&tx, run_id)));
        }
        tx.commit()?;
        Ok::<_, rusqlite::Error>(results)
    })();
    match outcome {
        Ok(results) => {
            for ((.., reply), result) in loads.drain(..).zip(results) {
                let _ = reply.send(result);
            }
        }
        Err(e) => {
            let message = e.to_string();
            for (run_id, .., reply) in loads.drain(..) {
                let _ = reply.send(Err(StoreError::new(format!(
                    "run `{run_id}`: could not load it to resume it: {message}"
                ))));
            }
        }
    }
}

/// Moves a run to `to` in a transaction of its own: the status it is read in is the status
/// it is changed from, even with other processes writing the file.
pub(super) fn control(
    conn: &mut Connection,
    run_id: &RunId,
    to: RunStatus,
) -> Result<RunInfo, ControlError> {
    let fail = |e| {
        ControlError::Store(StoreError::with_source(
            format!("run `{run_id}`: could not change its status in the store"),
            e,
        ))
    };
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(fail)?;
    let unknown = || ControlError::UnknownRun {
        run_id: run_id.clone(),
    };
    let info = status(&tx, run_id)?.ok_or_else(unknown)?;
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
    tx.execute(
        "UPDATE runs SET status = ?2, updated_at = ?3 WHERE run_id = ?1",
        params![run_id.as_str(), next.as_str(), millis(SystemTime::now())],
    )
    .map_err(fail)?;
    let info = status(&tx, run_id)?.ok_or_else(unknown)?;
    tx.commit().map_err(fail)?;
    Ok(info)
}

pub(super) fn mark_incompatible(
    conn: &Connection,
    run_id: &RunId,
    fingerprint: &str,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE runs SET status = 'incompatible', updated_at = ?3 \
         WHERE run_id = ?1 AND status = 'running' AND fingerprint <> ?2",
        params![run_id.as_str(), fingerprint, millis(SystemTime::now())],
    )
    .map(drop)
    .map_err(|e| {
        StoreError::with_source(
            format!("run `{run_id}`: could not mark it incompatible in the store"),
            e,
        )
    })
}
