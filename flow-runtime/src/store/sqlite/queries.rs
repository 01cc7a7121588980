//! The reads of a [`SqliteStore`](super::SqliteStore), served by its reader thread (or by
//! the writer thread of an in-memory database).

use super::{Reply, from_millis};
use crate::error::StoreError;
use crate::error::StoreErrorKind;
use crate::state::{CallKind, CallOutcome, CallRecord, RunId};
use crate::store::envelope::decode_envelope;
use crate::store::{
    Approval, Checkpoint, Failure, HistoryEntry, JournalEntry, JournalResult, RunFilter, RunInfo,
    RunStatus, StoredEvent, WorkflowInfo,
};
use crate::tool::Visit;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension, params};
use std::time::{Duration, SystemTime};
use tokio::sync::mpsc;

const INFO_COLUMNS: &str = "run_id, workflow, fingerprint, status, step, checkpoints, created_at, updated_at, failure, \
     failed_step, wake_at, wait_event, wait_until";

pub(super) enum Read {
    Latest(RunId, Reply<Option<Checkpoint>>),
    Status(RunId, Reply<Option<RunInfo>>),
    List(RunFilter, Reply<Vec<RunInfo>>),
    History(RunId, Reply<Vec<HistoryEntry>>),
    Unfinished(Reply<Vec<RunId>>),
    NextEvent(RunId, String, Reply<Option<StoredEvent>>),
    Due(i64, Vec<String>, usize, Reply<Vec<RunId>>),
    NextWake(i64, Reply<Option<SystemTime>>),
    /// A call journal entry: run, step, visit, position.
    Journal(RunId, String, Visit, u32, Reply<Option<JournalEntry>>),
    /// A run's whole call journal.
    Calls(RunId, Reply<Vec<JournalEntry>>),
    Workflows(Reply<Vec<WorkflowInfo>>),
    /// An approval request: run, step, visit, position.
    Approval(RunId, String, Visit, u32, Reply<Option<Approval>>),
    /// A run's approval requests.
    Approvals(RunId, Reply<Vec<Approval>>),
}

pub(super) fn read_loop(conn: &Connection, mut rx: mpsc::Receiver<Read>) {
    while let Some(request) = rx.blocking_recv() {
        serve_read(conn, request);
    }
}

pub(super) fn serve_read(conn: &Connection, request: Read) {
    match request {
        Read::Latest(run_id, reply) => {
            let _ = reply.send(latest(conn, &run_id));
        }
        Read::Status(run_id, reply) => {
            let _ = reply.send(status(conn, &run_id));
        }
        Read::List(filter, reply) => {
            let _ = reply.send(list(conn, &filter));
        }
        Read::History(run_id, reply) => {
            let _ = reply.send(history(conn, &run_id));
        }
        Read::Unfinished(reply) => {
            let _ = reply.send(unfinished(conn));
        }
        Read::NextEvent(run_id, name, reply) => {
            let _ = reply.send(next_event(conn, &run_id, &name));
        }
        Read::Due(now, workflows, limit, reply) => {
            let _ = reply.send(due(conn, now, &workflows, limit));
        }
        Read::NextWake(after, reply) => {
            let _ = reply.send(next_wake(conn, after));
        }
        Read::Journal(run_id, step, visit, position, reply) => {
            let _ = reply.send(recorded_call(conn, run_id, step, visit, position));
        }
        Read::Calls(run_id, reply) => {
            let _ = reply.send(calls(conn, &run_id));
        }
        Read::Workflows(reply) => {
            let _ = reply.send(workflows(conn));
        }
        Read::Approval(run_id, step, visit, position, reply) => {
            let _ = reply.send(super::approvals::approval(
                conn, &run_id, &step, visit, position,
            ));
        }
        Read::Approvals(run_id, reply) => {
            let _ = reply.send(super::approvals::approvals(conn, &run_id));
        }
    }
}

pub(super) fn next_event(
    conn: &Connection,
    run_id: &RunId,
    name: &str,
) -> Result<Option<StoredEvent>, StoreError> {
    conn.prepare_cached(
        "SELECT id, payload FROM events WHERE run_id = ?1 AND name = ?2 ORDER BY id LIMIT 1",
    )
    .and_then(|mut stmt| {
        stmt.query_row(params![run_id.as_str(), name], |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?))
        })
        .optional()
    })
    .map_err(|e| read_error(run_id, e))?
    .map(|(id, payload)| {
        let payload = serde_json::from_str(&payload).map_err(|e| {
            StoreError::of_kind(
                StoreErrorKind::Corrupt,
                format!("run `{run_id}`: event {id} (`{name}`) is not JSON: {e}"),
            )
        })?;
        Ok(StoredEvent::new(
            u64::try_from(id).unwrap_or_default(),
            name,
            payload,
        ))
    })
    .transpose()
}

pub(super) fn due(
    conn: &Connection,
    now: i64,
    workflows: &[String],
    limit: usize,
) -> Result<Vec<RunId>, StoreError> {
    let fail = |e| StoreError::with_source("sqlite store: could not list due runs", e);
    if workflows.is_empty() {
        return Ok(Vec::new());
    }
    let names = (3..3 + workflows.len())
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(", ");
    // Two range searches of `runs_by_wake` rather than one `wake_at IS NULL OR wake_at <= ?1`,
    // which SQLite answers by reading every running run: with 100,000 sleeping runs that was
    // 35 ms of CPU at every look for due runs.
    let sql = format!(
        "SELECT run_id FROM ( \
           SELECT * FROM (SELECT run_id, wake_at, updated_at FROM runs \
             WHERE status = 'running' AND wake_at IS NULL AND workflow IN ({names}) LIMIT ?2) \
           UNION ALL \
           SELECT * FROM (SELECT run_id, wake_at, updated_at FROM runs \
             WHERE status = 'running' AND wake_at <= ?1 AND workflow IN ({names}) \
             ORDER BY wake_at LIMIT ?2) \
         ) ORDER BY wake_at, updated_at LIMIT ?2"
    );
    let mut stmt = conn.prepare_cached(&sql).map_err(fail)?;
    let mut values: Vec<rusqlite::types::Value> =
        vec![now.into(), i64::try_from(limit).unwrap_or(i64::MAX).into()];
    values.extend(workflows.iter().map(|w| w.clone().into()));
    stmt.query_map(rusqlite::params_from_iter(values), |row| {
        row.get::<_, String>(0).map(RunId::from)
    })
    .and_then(Iterator::collect)
    .map_err(fail)
}

pub(super) fn next_wake(conn: &Connection, after: i64) -> Result<Option<SystemTime>, StoreError> {
    conn.query_row(
        "SELECT MIN(wake_at) FROM runs WHERE status = 'running' AND wake_at > ?1",
        [after],
        |row| row.get::<_, Option<i64>>(0),
    )
    .map(|t| t.map(from_millis))
    .map_err(|e| StoreError::with_source("sqlite store: could not read the next wake-up", e))
}

pub(super) fn read_error(run_id: &RunId, e: rusqlite::Error) -> StoreError {
    StoreError::with_source(format!("run `{run_id}`: could not read the store"), e)
}

pub(super) fn latest(conn: &Connection, run_id: &RunId) -> Result<Option<Checkpoint>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT workflow, fingerprint, step, finished, state, COALESCE(wait_until, wake_at), \
             waiting, attempt, trace FROM runs WHERE run_id = ?1",
        )
        .map_err(|e| read_error(run_id, e))?;
    let mut rows = stmt
        .query([run_id.as_str()])
        .map_err(|e| read_error(run_id, e))?;
    let Some(row) = rows.next().map_err(|e| read_error(run_id, e))? else {
        return Ok(None);
    };
    let corrupt = |what: String| {
        StoreError::of_kind(
            StoreErrorKind::Corrupt,
            format!(
                "run `{run_id}`: its stored checkpoint is corrupt ({what}); the run cannot be \
             resumed from this store. Other runs are not affected"
            ),
        )
    };
    let text = |i: usize| -> Result<String, StoreError> {
        match row.get_ref(i).map_err(|e| read_error(run_id, e))? {
            ValueRef::Text(t) => String::from_utf8(t.to_vec())
                .map_err(|_| corrupt(format!("column {i} is not UTF-8"))),
            other => Err(corrupt(format!(
                "column {i} holds {:?}, not text",
                other.data_type()
            ))),
        }
    };
    let workflow = text(0)?;
    let fingerprint = text(1)?;
    let step = text(2)?;
    let finished = match row.get_ref(3).map_err(|e| read_error(run_id, e))? {
        ValueRef::Integer(0) => false,
        ValueRef::Integer(1) => true,
        other => return Err(corrupt(format!("`finished` is {other:?}"))),
    };
    let envelope = match row.get_ref(4).map_err(|e| read_error(run_id, e))? {
        ValueRef::Text(t) | ValueRef::Blob(t) => decode_envelope(t).map_err(corrupt)?,
        other => {
            return Err(corrupt(format!(
                "`state` holds {:?}, not a JSON envelope",
                other.data_type()
            )));
        }
    };
    if envelope.workflow != workflow || envelope.fingerprint != fingerprint {
        return Err(corrupt(format!(
            "the envelope says workflow `{}` fingerprint `{}`, the row `{workflow}` `{fingerprint}`",
            envelope.workflow, envelope.fingerprint
        )));
    }
    let wake_at: Option<i64> = row.get(5).map_err(|e| read_error(run_id, e))?;
    let waiting: Option<String> = row.get(6).map_err(|e| read_error(run_id, e))?;
    let attempt = match row.get_ref(7).map_err(|e| read_error(run_id, e))? {
        ValueRef::Integer(n) => u32::try_from(n).unwrap_or(u32::MAX),
        other => return Err(corrupt(format!("`attempt` is {other:?}"))),
    };
    let trace = match row.get_ref(8).map_err(|e| read_error(run_id, e))? {
        ValueRef::Null => None,
        ValueRef::Text(_) => Some(text(8)?),
        other => {
            return Err(corrupt(format!(
                "`trace` holds {:?}, not text",
                other.data_type()
            )));
        }
    };
    Ok(Some(
        Checkpoint::new(
            run_id.clone(),
            workflow,
            fingerprint,
            step,
            finished,
            envelope.state,
        )
        .with_wake_at(wake_at.map(from_millis))
        .with_waiting(waiting)
        .with_attempt(attempt)
        .with_trace(trace),
    ))
}

pub(super) fn history(conn: &Connection, run_id: &RunId) -> Result<Vec<HistoryEntry>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT seq, step, finished, at, failure, failed_step, attempt, started_at \
             FROM history WHERE run_id = ?1 ORDER BY seq",
        )
        .map_err(|e| read_error(run_id, e))?;
    let mut entries: Vec<HistoryEntry> = stmt
        .query_map([run_id.as_str()], |row| {
            let failure = match row.get::<_, Option<String>>(4)? {
                Some(reason) => Some(Failure::new(row.get::<_, Option<String>>(5)?, reason)),
                None => None,
            };
            Ok(HistoryEntry::new(
                // Written from a positive count: never negative.
                u64::try_from(row.get::<_, i64>(0)?).unwrap_or_default(),
                row.get::<_, String>(1)?,
                row.get(2)?,
                from_millis(row.get(3)?),
            )
            .with_attempt(
                u32::try_from(row.get::<_, i64>(6)?).unwrap_or_default(),
                row.get::<_, Option<i64>>(7)?.map(from_millis),
            )
            .with_failure(failure))
        })
        .and_then(Iterator::collect)
        .map_err(|e| read_error(run_id, e))?;
    let mut stmt = conn
        .prepare_cached(
            "SELECT seq, kind, name, step, call_index, attempts, duration_us, error, \
             visit_back_edges, visit_item, input_tokens, output_tokens FROM calls \
             WHERE run_id = ?1 ORDER BY seq, n",
        )
        .map_err(|e| read_error(run_id, e))?;
    let calls = stmt
        .query_map([run_id.as_str()], |row| {
            let kind = match row.get_ref(1)?.as_str()? {
                "output" => CallKind::Output,
                "model" => CallKind::Model,
                _ => CallKind::Tool,
            };
            let tokens = |i| {
                row.get::<_, Option<i64>>(i)
                    .map(|n| n.map(|n| u64::try_from(n).unwrap_or_default()))
            };
            let usage = match (tokens(10)?, tokens(11)?) {
                (Some(input_tokens), Some(output_tokens)) => Some(crate::model::Usage {
                    input_tokens,
                    output_tokens,
                }),
                _ => None,
            };
            let outcome = match row.get::<_, Option<String>>(7)? {
                None => CallOutcome::Ok,
                Some(message) => CallOutcome::Failed(message),
            };
            let record = CallRecord::new(
                kind,
                row.get::<_, String>(2)?,
                row.get::<_, String>(3)?,
                row.get(4)?,
                row.get(5)?,
                Duration::from_micros(u64::try_from(row.get::<_, i64>(6)?).unwrap_or_default()),
                outcome,
            )
            .with_visit(visit_of(row.get(8)?, row.get(9)?))
            .with_usage(usage);
            Ok((
                u64::try_from(row.get::<_, i64>(0)?).unwrap_or_default(),
                record,
            ))
        })
        .map_err(|e| read_error(run_id, e))?;
    for call in calls {
        let (seq, record) = call.map_err(|e| read_error(run_id, e))?;
        if let Some(entry) = entries.iter_mut().find(|h| h.seq == seq) {
            entry.calls.push(record);
        }
    }
    Ok(entries)
}

/// The visit stored in a call's `visit_back_edges` and `visit_item` columns (written from a
/// `u64` and a `u32`: never negative).
pub(super) fn visit_of(back_edges: i64, item: Option<u32>) -> Visit {
    let visit = Visit::after(u64::try_from(back_edges).unwrap_or_default());
    match item {
        Some(index) => visit.item(index),
        None => visit,
    }
}

/// The journal's entry for one call, if recorded. An entry whose output is not JSON (the
/// file was edited) is reported as corrupt, naming the run.
pub(super) fn recorded_call(
    conn: &Connection,
    run_id: RunId,
    step: String,
    visit: Visit,
    position: u32,
) -> Result<Option<JournalEntry>, StoreError> {
    let row = conn
        .prepare_cached(
            "SELECT tool, attempts, output, error FROM journal
             WHERE run_id = ?1 AND step = ?2 AND visit_back_edges = ?3 AND visit_item = ?4 AND position = ?5",
        )
        .and_then(|mut stmt| {
            stmt.query_row(
                params![
                    run_id.as_str(),
                    step,
                    i64::try_from(visit.back_edges()).unwrap_or(i64::MAX),
                    visit.item_index().map_or(-1, i64::from),
                    position
                ],
                |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, u32>(1)?,
                        row.get::<_, Option<String>>(2)?,
                        row.get::<_, Option<String>>(3)?,
                    ))
                },
            )
            .optional()
        })
        .map_err(|e| read_error(&run_id, e))?;
    let Some((tool, attempts, output, error)) = row else {
        return Ok(None);
    };
    let corrupt = |why: String| {
        StoreError::of_kind(
            StoreErrorKind::Corrupt,
            format!(
                "run `{run_id}`: the journal entry of call {position} of step `{step}` cannot be read: {why}"
            ),
        )
    };
    let result = match (output, error) {
        (Some(text), _) => JournalResult::Output(
            serde_json::from_str(&text)
                .map_err(|e| corrupt(format!("its output is not JSON ({e})")))?,
        ),
        (None, Some(message)) => JournalResult::Failed(message),
        (None, None) => return Err(corrupt("it has neither an output nor an error".to_owned())),
    };
    Ok(Some(JournalEntry::new(
        run_id, step, visit, position, tool, attempts, result,
    )))
}

/// A run's call journal, in the order it was recorded (entries recorded before the journal
/// kept that order first, in key order). An entry whose output is not JSON is reported as
/// corrupt, naming the run.
pub(super) fn calls(conn: &Connection, run_id: &RunId) -> Result<Vec<JournalEntry>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT step, visit_back_edges, visit_item, position, tool, attempts, output, error \
             FROM journal WHERE run_id = ?1 \
             ORDER BY seq IS NOT NULL, seq, step, visit_back_edges, visit_item, position",
        )
        .map_err(|e| read_error(run_id, e))?;
    let rows = stmt
        .query_map([run_id.as_str()], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, i64>(2)?,
                row.get::<_, u32>(3)?,
                row.get::<_, String>(4)?,
                row.get::<_, u32>(5)?,
                row.get::<_, Option<String>>(6)?,
                row.get::<_, Option<String>>(7)?,
            ))
        })
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| read_error(run_id, e))?;
    rows.into_iter()
        .map(
            |(step, back_edges, item, position, tool, attempts, output, error)| {
                let result = match (output, error) {
                    (Some(text), _) => {
                        JournalResult::Output(serde_json::from_str(&text).map_err(|e| {
                            StoreError::of_kind(
                                StoreErrorKind::Corrupt,
                                format!(
                                    "run `{run_id}`: the journal entry of call {position} of \
                                     step `{step}` cannot be read: its output is not JSON ({e})"
                                ),
                            )
                        })?)
                    }
                    (None, Some(message)) => JournalResult::Failed(message),
                    (None, None) => {
                        return Err(StoreError::of_kind(
                            StoreErrorKind::Corrupt,
                            format!(
                                "run `{run_id}`: the journal entry of call {position} of step \
                                 `{step}` has neither an output nor an error"
                            ),
                        ));
                    }
                };
                // -1: not an item of a `workers` step.
                let visit = visit_of(back_edges, u32::try_from(item).ok());
                Ok(JournalEntry::new(
                    run_id.clone(),
                    step,
                    visit,
                    position,
                    tool,
                    attempts,
                    result,
                ))
            },
        )
        .collect()
}

/// Every recorded workflow, the most recently recorded first. Steps that are not a JSON
/// array of strings (the file was edited) read back as none, with a warning: the graph is
/// still there, and one bad row never hides the others.
pub(super) fn workflows(conn: &Connection) -> Result<Vec<WorkflowInfo>, StoreError> {
    let fail = |e| StoreError::with_source("sqlite store: could not read the workflows", e);
    let mut stmt = conn
        .prepare_cached(
            "SELECT name, fingerprint, steps, mermaid, registered_at FROM workflows \
             ORDER BY registered_at DESC, name, fingerprint",
        )
        .map_err(fail)?;
    stmt.query_map([], |row| {
        let name: String = row.get(0)?;
        let steps: String = row.get(2)?;
        let steps = serde_json::from_str(&steps).unwrap_or_else(|error| {
            tracing::warn!(workflow = %name, %error, "the recorded steps are not a JSON array");
            Vec::new()
        });
        Ok(WorkflowInfo::new(
            name,
            row.get::<_, String>(1)?,
            steps,
            row.get::<_, String>(3)?,
            from_millis(row.get(4)?),
        ))
    })
    .and_then(Iterator::collect)
    .map_err(fail)
}

pub(super) fn unfinished(conn: &Connection) -> Result<Vec<RunId>, StoreError> {
    let fail = |e| StoreError::with_source("sqlite store: could not list unfinished runs", e);
    let mut stmt = conn
        .prepare_cached(
            "SELECT run_id FROM runs WHERE finished = 0 AND status IN ('running', 'incompatible') \
             ORDER BY updated_at, run_id",
        )
        .map_err(fail)?;
    stmt.query_map([], |row| row.get::<_, String>(0).map(RunId::from))
        .and_then(Iterator::collect)
        .map_err(fail)
}

/// A run's row as a [`RunInfo`], from the columns [`INFO_COLUMNS`] names. A column that
/// cannot be read (an unknown status, a text where a number belongs) makes that run's info
/// [`RunStatus::Corrupt`], saying which: one bad row never fails a read of the others.
#[allow(
    clippy::unnecessary_wraps,
    reason = "the signature `query_row` and `query_map` take"
)]
pub(super) fn run_info(row: &rusqlite::Row<'_>) -> rusqlite::Result<RunInfo> {
    let mut problems: Vec<String> = Vec::new();
    let mut text = |i: usize, name: &str| match row.get_ref(i) {
        Ok(ValueRef::Text(t)) => String::from_utf8_lossy(t).into_owned(),
        Ok(other) => {
            problems.push(format!("`{name}` holds {:?}, not text", other.data_type()));
            String::new()
        }
        Err(e) => {
            problems.push(format!("`{name}`: {e}"));
            String::new()
        }
    };
    let run_id = text(0, "run_id");
    let workflow = text(1, "workflow");
    let fingerprint = text(2, "fingerprint");
    let status = text(3, "status");
    let step = text(4, "step");
    let mut integer = |i: usize, name: &str| match row.get_ref(i) {
        Ok(ValueRef::Integer(n)) => n,
        Ok(other) => {
            problems.push(format!(
                "`{name}` holds {:?}, not an integer",
                other.data_type()
            ));
            0
        }
        Err(e) => {
            problems.push(format!("`{name}`: {e}"));
            0
        }
    };
    // Written from a positive count: never negative.
    let checkpoints = u64::try_from(integer(5, "checkpoints")).unwrap_or_default();
    let created_at = from_millis(integer(6, "created_at"));
    let updated_at = from_millis(integer(7, "updated_at"));
    let mut optional = |i: usize, name: &str| {
        row.get::<_, Option<String>>(i).unwrap_or_else(|e| {
            problems.push(format!("`{name}`: {e}"));
            None
        })
    };
    let failure = optional(8, "failure");
    let failed_step = optional(9, "failed_step");
    let wait_event = optional(11, "wait_event");
    let mut time = |i: usize, name: &str| match row.get_ref(i) {
        Ok(ValueRef::Integer(n)) => Some(from_millis(n)),
        Ok(ValueRef::Null) => None,
        Ok(other) => {
            problems.push(format!(
                "`{name}` holds {:?}, not an integer",
                other.data_type()
            ));
            None
        }
        Err(e) => {
            problems.push(format!("`{name}`: {e}"));
            None
        }
    };
    let wake_at = time(10, "wake_at");
    let wait_until = time(12, "wait_until");
    let known = RunStatus::from_name(&status);
    if known.is_none() && !status.is_empty() {
        problems.push(format!(
            "unknown status `{status}`; this version of flow knows `running`, `paused`, \
             `cancelled`, `finished`, `incompatible`, `failed`"
        ));
    }
    let info = RunInfo::new(
        RunId::from(run_id),
        workflow,
        fingerprint,
        known.unwrap_or(RunStatus::Corrupt),
        step,
        checkpoints,
        created_at,
        updated_at,
    )
    .with_failure(failure.map(|reason| Failure::new(failed_step, reason)))
    .with_schedule(wake_at, wait_event.zip(wait_until));
    Ok(if problems.is_empty() {
        info
    } else {
        info.corrupted(problems.join("; "))
    })
}

pub(super) fn status(conn: &Connection, run_id: &RunId) -> Result<Option<RunInfo>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {INFO_COLUMNS} FROM runs WHERE run_id = ?1"
    ))
    .and_then(|mut stmt| stmt.query_row([run_id.as_str()], run_info).optional())
    .map_err(|e| read_error(run_id, e))?
    .map(|info| with_pending(conn, info))
    .transpose()
}

/// `info` with its run's pending approval request (one that cannot be read marks the run
/// corrupt, as in `list`).
fn with_pending(conn: &Connection, info: RunInfo) -> Result<RunInfo, StoreError> {
    let pending = super::approvals::pending(conn, &info.run_id);
    info.with_listed_approval(pending)
}

pub(super) fn list(conn: &Connection, filter: &RunFilter) -> Result<Vec<RunInfo>, StoreError> {
    // One statement per combination of filters, so that each can use its index.
    let limit = filter
        .limit
        .map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX));
    let status = filter.status.map(RunStatus::as_str);
    let mut sql = format!("SELECT {INFO_COLUMNS} FROM runs WHERE 1");
    let mut values: Vec<(&str, &dyn rusqlite::ToSql)> = vec![(":limit", &limit)];
    if let Some(workflow) = &filter.workflow {
        sql.push_str(" AND workflow = :workflow");
        values.push((":workflow", workflow));
    }
    let since = filter.since.map(super::millis);
    if let Some(since) = &since {
        sql.push_str(" AND updated_at >= :since");
        values.push((":since", since));
    }
    match &status {
        // Rows whose status this version does not know are listed as corrupt too.
        Some("corrupt") => sql.push_str(
            " AND status NOT IN ('running', 'paused', 'cancelled', 'finished', 'incompatible', 'failed')",
        ),
        Some(status) => {
            sql.push_str(" AND status = :status");
            values.push((":status", status));
        }
        None => {}
    }
    sql.push_str(" ORDER BY updated_at DESC, run_id LIMIT :limit");
    let fail = |e| StoreError::with_source("sqlite store: could not list runs", e);
    let mut stmt = conn.prepare_cached(&sql).map_err(fail)?;
    let infos: Vec<RunInfo> = stmt
        .query_map(values.as_slice(), run_info)
        .and_then(Iterator::collect)
        .map_err(fail)?;
    infos
        .into_iter()
        .map(|info| {
            let pending = super::approvals::pending(conn, &info.run_id);
            info.with_listed_approval(pending)
        })
        .collect()
}
