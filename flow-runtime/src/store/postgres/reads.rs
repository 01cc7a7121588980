//! The reads of a [`PgStore`](super::PgStore): each one statement (or two, for a run's
//! history with its calls), on a pooled connection or inside a write's transaction.

use super::{db_error, from_millis, read_error};
use crate::error::{StoreError, StoreErrorKind};
use crate::state::{CallKind, CallOutcome, CallRecord, RunId};
use crate::store::envelope::decode_envelope;
use crate::store::{
    Approval, Checkpoint, Decision, Failure, HistoryEntry, JournalEntry, JournalResult, RunFilter,
    RunInfo, RunStatus, StoredEvent, WorkflowInfo,
};
use crate::tool::Visit;
use sqlx_core::query::query;
use sqlx_core::query_as::query_as;
use sqlx_core::query_scalar::query_scalar;
use sqlx_core::row::Row as _;
use sqlx_core::sql_str::AssertSqlSafe;
use sqlx_postgres::{PgConnection, PgRow, Postgres};
use std::time::{Duration, SystemTime};

/// The columns of a [`RunInfo`], in the order [`run_info`] reads them.
const INFO_COLUMNS: &str = "run_id, workflow, fingerprint, status, step, checkpoints, created_at, updated_at, failure, \
     failed_step, wake_at, wait_event, wait_until";

/// The latest checkpoint of a run; a state that does not read back is an error of kind
/// [`Corrupt`](StoreErrorKind::Corrupt) for that run alone.
pub(super) async fn latest(
    conn: &mut PgConnection,
    run_id: &RunId,
) -> Result<Option<Checkpoint>, StoreError> {
    let row: Option<LatestColumns> = query_as(AssertSqlSafe(format!(
        "SELECT {LATEST_COLUMNS} FROM runs WHERE run_id = $1"
    )))
    .bind(run_id.as_str())
    .fetch_optional(&mut *conn)
    .await
    .map_err(|e| read_error(run_id, e))?;
    decode_latest(run_id, row)
}

/// The columns of a run's latest checkpoint, in the order of [`LatestColumns`].
pub(super) const LATEST_COLUMNS: &str = "workflow, fingerprint, step, finished, state, \
     COALESCE(wait_until, wake_at), waiting, attempt, trace";

/// A row of [`LATEST_COLUMNS`].
pub(super) type LatestColumns = (
    String,
    String,
    String,
    bool,
    String,
    Option<i64>,
    Option<String>,
    i64,
    Option<String>,
);

/// The checkpoint a row of [`LATEST_COLUMNS`] holds; a state that does not read back is an
/// error of kind [`Corrupt`](StoreErrorKind::Corrupt) for that run alone.
pub(super) fn decode_latest(
    run_id: &RunId,
    row: Option<LatestColumns>,
) -> Result<Option<Checkpoint>, StoreError> {
    let Some((workflow, fingerprint, step, finished, state, wake_at, waiting, attempt, trace)) =
        row
    else {
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
    let envelope = decode_envelope(state.as_bytes()).map_err(corrupt)?;
    if envelope.workflow != workflow || envelope.fingerprint != fingerprint {
        return Err(corrupt(format!(
            "the envelope says workflow `{}` fingerprint `{}`, the row `{workflow}` `{fingerprint}`",
            envelope.workflow, envelope.fingerprint
        )));
    }
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
        .with_attempt(u32::try_from(attempt).unwrap_or(u32::MAX))
        .with_trace(trace),
    ))
}

/// A run's row as a [`RunInfo`], from the columns [`INFO_COLUMNS`] names. A status this
/// version does not know makes that run's info [`RunStatus::Corrupt`], saying which: one bad
/// row never fails a read of the others.
fn run_info(row: &PgRow) -> Result<RunInfo, sqlx_core::Error> {
    let run_id: String = row.try_get(0)?;
    let status: String = row.try_get(3)?;
    let failure: Option<String> = row.try_get(8)?;
    let failed_step: Option<String> = row.try_get(9)?;
    let wake_at: Option<i64> = row.try_get(10)?;
    let wait_event: Option<String> = row.try_get(11)?;
    let wait_until: Option<i64> = row.try_get(12)?;
    let known = RunStatus::from_name(&status);
    let info = RunInfo::new(
        RunId::from(run_id),
        row.try_get::<String, _>(1)?,
        row.try_get::<String, _>(2)?,
        known.unwrap_or(RunStatus::Corrupt),
        row.try_get::<String, _>(4)?,
        // Written from a positive count: never negative.
        u64::try_from(row.try_get::<i64, _>(5)?).unwrap_or_default(),
        from_millis(row.try_get(6)?),
        from_millis(row.try_get(7)?),
    )
    .with_failure(failure.map(|reason| Failure::new(failed_step, reason)))
    .with_schedule(
        wake_at.map(from_millis),
        wait_event.zip(wait_until.map(from_millis)),
    );
    Ok(match known {
        Some(_) => info,
        None => info.corrupted(format!(
            "unknown status `{status}`; this version of flow knows `running`, `paused`, \
             `cancelled`, `finished`, `incompatible`, `failed`"
        )),
    })
}

/// A run's status, with its pending approval request.
pub(super) async fn status(
    conn: &mut PgConnection,
    run_id: &RunId,
) -> Result<Option<RunInfo>, StoreError> {
    let row = query::<Postgres>(AssertSqlSafe(format!(
        "SELECT {INFO_COLUMNS} FROM runs WHERE run_id = $1"
    )))
    .bind(run_id.as_str())
    .fetch_optional(&mut *conn)
    .await
    .map_err(|e| read_error(run_id, e))?;
    let Some(row) = row else {
        return Ok(None);
    };
    let info = run_info(&row).map_err(|e| read_error(run_id, e))?;
    Ok(Some(with_pending(conn, info).await?))
}

/// `info` with its run's pending approval request (one that cannot be read marks the run
/// corrupt, as in `list`).
async fn with_pending(conn: &mut PgConnection, info: RunInfo) -> Result<RunInfo, StoreError> {
    let pending = pending(conn, &info.run_id).await;
    info.with_listed_approval(pending)
}

/// A value bound to a statement [`list`] writes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Slot {
    Workflow,
    Since,
    Status,
    Limit,
}

/// The parameters of a statement being written: each value gets its number (`$1`, ...) where
/// it is first used, and keeps it wherever it is used again.
#[derive(Default)]
struct Slots {
    order: Vec<Slot>,
}

impl Slots {
    /// Appends `fragment` and `slot`'s parameter to `sql`.
    fn put(&mut self, sql: &mut String, fragment: &str, slot: Slot) {
        let n = self
            .order
            .iter()
            .position(|s| *s == slot)
            .unwrap_or_else(|| {
                self.order.push(slot);
                self.order.len() - 1
            });
        sql.push_str(fragment);
        sql.push('$');
        sql.push_str(&(n + 1).to_string());
    }
}

/// Runs as `filter` says, the most recently updated first.
pub(super) async fn list(
    conn: &mut PgConnection,
    filter: &RunFilter,
) -> Result<Vec<RunInfo>, StoreError> {
    // Two parts, each read in the order of the list: running runs (sleeping and waiting ones
    // included), sorted by `updated_at`, which no index holds so that checkpoints update rows
    // in place, so this part costs in proportion to the running runs; and the others, whose
    // `settled_at` is their `updated_at`, read from the `runs_settled` indexes. One statement per combination of filters, so that
    // each can use its index; the text is made of the fixed fragments below only, every value
    // is bound.
    let status = filter.status.map(RunStatus::as_str);
    let mut slots = Slots::default();
    let mut parts = Vec::new();
    if matches!(status, None | Some("running")) {
        let mut sql = format!("SELECT {INFO_COLUMNS} FROM runs WHERE status = 'running'");
        if filter.workflow.is_some() {
            slots.put(&mut sql, " AND workflow = ", Slot::Workflow);
        }
        if filter.since.is_some() {
            slots.put(&mut sql, " AND updated_at >= ", Slot::Since);
        }
        slots.put(
            &mut sql,
            " ORDER BY updated_at DESC, run_id LIMIT ",
            Slot::Limit,
        );
        parts.push(sql);
    }
    if status != Some("running") {
        let mut sql = format!("SELECT {INFO_COLUMNS} FROM runs WHERE settled_at IS NOT NULL");
        if filter.workflow.is_some() {
            slots.put(&mut sql, " AND workflow = ", Slot::Workflow);
        }
        if filter.since.is_some() {
            slots.put(&mut sql, " AND settled_at >= ", Slot::Since);
        }
        match status {
            // Rows whose status this version does not know are listed as corrupt too.
            Some("corrupt") => sql.push_str(
                " AND status NOT IN ('running', 'paused', 'cancelled', 'finished', 'incompatible', 'failed')",
            ),
            Some(_) => slots.put(&mut sql, " AND status = ", Slot::Status),
            None => {}
        }
        slots.put(
            &mut sql,
            " ORDER BY settled_at DESC, run_id LIMIT ",
            Slot::Limit,
        );
        parts.push(sql);
    }
    let sql = match parts.as_slice() {
        [one] => one.clone(),
        parts => {
            let mut sql = format!(
                "SELECT * FROM (({})) AS listed",
                parts.join(") UNION ALL (")
            );
            slots.put(
                &mut sql,
                " ORDER BY updated_at DESC, run_id LIMIT ",
                Slot::Limit,
            );
            sql
        }
    };
    let mut q = query::<Postgres>(AssertSqlSafe(sql));
    for slot in slots.order {
        q = match slot {
            Slot::Workflow => q.bind(filter.workflow.as_deref()),
            Slot::Since => q.bind(filter.since.map(super::millis)),
            Slot::Status => q.bind(status),
            // `LIMIT NULL` is no limit.
            Slot::Limit => q.bind(filter.limit.map(|n| i64::try_from(n).unwrap_or(i64::MAX))),
        };
    }
    let fail = |e| db_error("postgres store: could not list runs", e);
    let rows = q.fetch_all(&mut *conn).await.map_err(fail)?;
    let infos = rows
        .iter()
        .map(run_info)
        .collect::<Result<Vec<_>, _>>()
        .map_err(fail)?;
    // The listed runs' pending approval requests in one query, not one per run.
    let ids: Vec<&str> = infos.iter().map(|info| info.run_id.as_str()).collect();
    let rows: Vec<ApprovalRow> = query_as(AssertSqlSafe(format!(
        "SELECT {APPROVAL_COLUMNS} FROM approvals WHERE run_id = ANY($1) AND decision IS NULL \
         ORDER BY id"
    )))
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await
    .map_err(fail)?;
    // The first asked of a run's pending requests, as `pending` reads it; one that cannot be
    // read marks its run corrupt, not the list.
    let mut pending = std::collections::HashMap::new();
    for row in rows {
        let run_id = RunId::from(row.0.as_str());
        pending
            .entry(run_id)
            .or_insert_with(|| decode_approval(row));
    }
    infos
        .into_iter()
        .map(|info| {
            let approval = pending.remove(&info.run_id).transpose();
            info.with_listed_approval(approval)
        })
        .collect()
}

/// A run's history: its checkpoints, oldest first, each with its calls.
pub(super) async fn history(
    conn: &mut PgConnection,
    run_id: &RunId,
) -> Result<Vec<HistoryEntry>, StoreError> {
    type Entry = (
        i64,
        String,
        bool,
        i64,
        Option<String>,
        Option<String>,
        i64,
        Option<i64>,
    );
    let rows: Vec<Entry> = query_as(
        "SELECT seq, step, finished, at, failure, failed_step, attempt, started_at \
         FROM history WHERE run_id = $1 ORDER BY seq",
    )
    .bind(run_id.as_str())
    .fetch_all(&mut *conn)
    .await
    .map_err(|e| read_error(run_id, e))?;
    let mut entries: Vec<HistoryEntry> = rows
        .into_iter()
        .map(
            |(seq, step, finished, at, failure, failed_step, attempt, started_at)| {
                HistoryEntry::new(
                    u64::try_from(seq).unwrap_or_default(),
                    step,
                    finished,
                    from_millis(at),
                )
                .with_attempt(
                    u32::try_from(attempt).unwrap_or_default(),
                    started_at.map(from_millis),
                )
                .with_failure(failure.map(|reason| Failure::new(failed_step, reason)))
            },
        )
        .collect();
    let rows = query::<Postgres>(
        "SELECT seq, kind, name, step, call_index, attempts, duration_us, error, \
         visit_back_edges, visit_item, input_tokens, output_tokens FROM calls \
         WHERE run_id = $1 ORDER BY seq, n",
    )
    .bind(run_id.as_str())
    .fetch_all(&mut *conn)
    .await
    .map_err(|e| read_error(run_id, e))?;
    for row in rows {
        let (seq, record) = call_record(&row).map_err(|e| read_error(run_id, e))?;
        if let Some(entry) = entries.iter_mut().find(|h| h.seq == seq) {
            entry.calls.push(record);
        }
    }
    Ok(entries)
}

/// One row of `calls`: the checkpoint it belongs to and the call.
fn call_record(row: &PgRow) -> Result<(u64, CallRecord), sqlx_core::Error> {
    let kind = match row.try_get::<&str, _>(1)? {
        "output" => CallKind::Output,
        "model" => CallKind::Model,
        _ => CallKind::Tool,
    };
    let tokens = |i| {
        row.try_get::<Option<i64>, _>(i)
            .map(|n| n.map(|n| u64::try_from(n).unwrap_or_default()))
    };
    let usage = match (tokens(10)?, tokens(11)?) {
        (Some(input_tokens), Some(output_tokens)) => Some(crate::model::Usage {
            input_tokens,
            output_tokens,
        }),
        _ => None,
    };
    let outcome = match row.try_get::<Option<String>, _>(7)? {
        None => CallOutcome::Ok,
        Some(message) => CallOutcome::Failed(message),
    };
    let count = |i| {
        row.try_get::<i64, _>(i)
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
    };
    let item = row
        .try_get::<Option<i64>, _>(9)?
        .and_then(|n| u32::try_from(n).ok());
    let record = CallRecord::new(
        kind,
        row.try_get::<String, _>(2)?,
        row.try_get::<String, _>(3)?,
        count(4)?,
        count(5)?,
        Duration::from_micros(u64::try_from(row.try_get::<i64, _>(6)?).unwrap_or_default()),
        outcome,
    )
    .with_visit(visit_of(row.try_get(8)?, item))
    .with_usage(usage);
    Ok((
        u64::try_from(row.try_get::<i64, _>(0)?).unwrap_or_default(),
        record,
    ))
}

/// The visit stored in `visit_back_edges` and `visit_item` columns (written from a `u64` and
/// a `u32`, or -1 for no item).
pub(super) fn visit_of(back_edges: i64, item: Option<u32>) -> Visit {
    let visit = Visit::after(u64::try_from(back_edges).unwrap_or_default());
    match item {
        Some(index) => visit.item(index),
        None => visit,
    }
}

/// The oldest event named `name` in a run's inbox.
pub(super) async fn next_event(
    conn: &mut PgConnection,
    run_id: &RunId,
    name: &str,
) -> Result<Option<StoredEvent>, StoreError> {
    let row: Option<(i64, String)> = query_as(
        "SELECT id, payload FROM events WHERE run_id = $1 AND name = $2 ORDER BY id LIMIT 1",
    )
    .bind(run_id.as_str())
    .bind(name)
    .fetch_optional(&mut *conn)
    .await
    .map_err(|e| read_error(run_id, e))?;
    row.map(|(id, payload)| {
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

/// Running runs of `workflows` due at `now`, the longest-due first (among those due at once,
/// the oldest first).
pub(super) async fn due(
    conn: &mut PgConnection,
    now: i64,
    workflows: &[String],
    limit: usize,
) -> Result<Vec<RunId>, StoreError> {
    if workflows.is_empty() {
        return Ok(Vec::new());
    }
    // Two range scans of the partial index `runs_due` (runs due at once, then runs whose
    // wake-up time has come), each stopping after `limit` rows, rather than one
    // `wake_at IS NULL OR wake_at <= $1` that the planner may answer by reading every
    // running run.
    let ids: Vec<String> = query_scalar(
        "SELECT run_id FROM ( \
           (SELECT run_id, wake_at, created_at FROM runs \
             WHERE status = 'running' AND wake_at IS NULL AND workflow = ANY($2) \
             ORDER BY wake_at NULLS FIRST, created_at LIMIT $3) \
           UNION ALL \
           (SELECT run_id, wake_at, created_at FROM runs \
             WHERE status = 'running' AND wake_at <= $1 AND workflow = ANY($2) \
             ORDER BY wake_at NULLS FIRST, created_at LIMIT $3) \
         ) AS due ORDER BY wake_at NULLS FIRST, created_at LIMIT $3",
    )
    .bind(now)
    .bind(workflows)
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(&mut *conn)
    .await
    .map_err(|e| db_error("postgres store: could not list due runs", e))?;
    Ok(ids.into_iter().map(RunId::from).collect())
}

/// The earliest wake-up time after `after` among running runs.
pub(super) async fn next_wake(
    conn: &mut PgConnection,
    after: i64,
) -> Result<Option<SystemTime>, StoreError> {
    let wake: Option<i64> =
        query_scalar("SELECT MIN(wake_at) FROM runs WHERE status = 'running' AND wake_at > $1")
            .bind(after)
            .fetch_one(&mut *conn)
            .await
            .map_err(|e| db_error("postgres store: could not read the next wake-up", e))?;
    Ok(wake.map(from_millis))
}

/// A journal row's result, or why it cannot be read.
fn journal_result(output: Option<String>, error: Option<String>) -> Result<JournalResult, String> {
    match (output, error) {
        (Some(text), _) => serde_json::from_str(&text)
            .map(JournalResult::Output)
            .map_err(|e| format!("its output is not JSON ({e})")),
        (None, Some(message)) => Ok(JournalResult::Failed(message)),
        (None, None) => Err("it has neither an output nor an error".to_owned()),
    }
}

fn corrupt_call(run_id: &RunId, position: u32, step: &str, why: &str) -> StoreError {
    StoreError::of_kind(
        StoreErrorKind::Corrupt,
        format!(
            "run `{run_id}`: the journal entry of call {position} of step `{step}` cannot be read: {why}"
        ),
    )
}

/// The journal's entry for one call, if recorded.
pub(super) async fn recorded_call(
    conn: &mut PgConnection,
    run_id: &RunId,
    step: &str,
    visit: Visit,
    position: u32,
) -> Result<Option<JournalEntry>, StoreError> {
    let row: Option<(String, i64, Option<String>, Option<String>)> = query_as(
        "SELECT tool, attempts, output, error FROM journal \
         WHERE run_id = $1 AND step = $2 AND visit_back_edges = $3 AND visit_item = $4 \
         AND position = $5",
    )
    .bind(run_id.as_str())
    .bind(step)
    .bind(back_edges_column(visit))
    .bind(item_column(visit))
    .bind(i64::from(position))
    .fetch_optional(&mut *conn)
    .await
    .map_err(|e| read_error(run_id, e))?;
    let Some((tool, attempts, output, error)) = row else {
        return Ok(None);
    };
    let result =
        journal_result(output, error).map_err(|why| corrupt_call(run_id, position, step, &why))?;
    Ok(Some(JournalEntry::new(
        run_id.clone(),
        step,
        visit,
        position,
        tool,
        u32::try_from(attempts).unwrap_or(u32::MAX),
        result,
    )))
}

/// A run's call journal, in the order it was recorded.
pub(super) async fn calls(
    conn: &mut PgConnection,
    run_id: &RunId,
) -> Result<Vec<JournalEntry>, StoreError> {
    type Columns = (
        String,
        i64,
        i64,
        i64,
        String,
        i64,
        Option<String>,
        Option<String>,
    );
    let rows: Vec<Columns> = query_as(
        "SELECT step, visit_back_edges, visit_item, position, tool, attempts, output, error \
         FROM journal WHERE run_id = $1 ORDER BY seq",
    )
    .bind(run_id.as_str())
    .fetch_all(&mut *conn)
    .await
    .map_err(|e| read_error(run_id, e))?;
    rows.into_iter()
        .map(
            |(step, back_edges, item, position, tool, attempts, output, error)| {
                let position = u32::try_from(position).unwrap_or(u32::MAX);
                let result = journal_result(output, error)
                    .map_err(|why| corrupt_call(run_id, position, &step, &why))?;
                // -1: not an item of a `workers` step.
                let visit = visit_of(back_edges, u32::try_from(item).ok());
                Ok(JournalEntry::new(
                    run_id.clone(),
                    step,
                    visit,
                    position,
                    tool,
                    u32::try_from(attempts).unwrap_or(u32::MAX),
                    result,
                ))
            },
        )
        .collect()
}

/// Every recorded workflow, the most recently recorded first. Steps that are not a JSON array
/// of strings read back as none, with a warning.
pub(super) async fn workflows(conn: &mut PgConnection) -> Result<Vec<WorkflowInfo>, StoreError> {
    let rows: Vec<(String, String, String, String, i64)> = query_as(
        "SELECT name, fingerprint, steps, mermaid, registered_at FROM workflows \
         ORDER BY registered_at DESC, name, fingerprint",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(|e| db_error("postgres store: could not read the workflows", e))?;
    Ok(rows
        .into_iter()
        .map(|(name, fingerprint, steps, mermaid, at)| {
            let steps = serde_json::from_str(&steps).unwrap_or_else(|error| {
                tracing::warn!(workflow = %name, %error, "the recorded steps are not a JSON array");
                Vec::new()
            });
            WorkflowInfo::new(name, fingerprint, steps, mermaid, from_millis(at))
        })
        .collect())
}

pub(super) fn item_column(visit: Visit) -> i64 {
    visit.item_index().map_or(-1, i64::from)
}

pub(super) fn back_edges_column(visit: Visit) -> i64 {
    i64::try_from(visit.back_edges()).unwrap_or(i64::MAX)
}

const APPROVAL_COLUMNS: &str = "run_id, step, visit_back_edges, visit_item, position, call_id, model_call_id, tool, arguments, until, decision";

type ApprovalRow = (
    String,
    String,
    i64,
    i64,
    i64,
    String,
    Option<String>,
    String,
    String,
    i64,
    Option<String>,
);

/// A row as an [`Approval`]; JSON that does not read back is corrupt, naming the run and the
/// call.
fn decode_approval(row: ApprovalRow) -> Result<Approval, StoreError> {
    let (
        run_id,
        step,
        back_edges,
        item,
        position,
        call_id,
        model_call_id,
        tool,
        arguments,
        until,
        decision,
    ) = row;
    let corrupt = |what: &str, e: serde_json::Error| {
        StoreError::of_kind(
            StoreErrorKind::Corrupt,
            format!(
                "run `{run_id}`: the approval request of call `{call_id}` cannot be read: its \
                 {what} is not valid ({e})"
            ),
        )
    };
    let arguments = serde_json::from_str(&arguments).map_err(|e| corrupt("arguments", e))?;
    let decision = match &decision {
        Some(text) => {
            Some(serde_json::from_str::<Decision>(text).map_err(|e| corrupt("decision", e))?)
        }
        None => None,
    };
    Ok(Approval::new(
        RunId::from(run_id),
        step,
        visit_of(back_edges, u32::try_from(item).ok()),
        u32::try_from(position).unwrap_or(u32::MAX),
        call_id,
        tool,
        arguments,
        from_millis(until),
    )
    .with_model_call_id(model_call_id)
    .with_decision(decision))
}

/// The approval request of one call, if asked for.
pub(super) async fn approval(
    conn: &mut PgConnection,
    run_id: &RunId,
    step: &str,
    visit: Visit,
    position: u32,
) -> Result<Option<Approval>, StoreError> {
    let row: Option<ApprovalRow> = query_as(AssertSqlSafe(format!(
        "SELECT {APPROVAL_COLUMNS} FROM approvals WHERE run_id = $1 AND step = $2 \
         AND visit_back_edges = $3 AND visit_item = $4 AND position = $5"
    )))
    .bind(run_id.as_str())
    .bind(step)
    .bind(back_edges_column(visit))
    .bind(item_column(visit))
    .bind(i64::from(position))
    .fetch_optional(&mut *conn)
    .await
    .map_err(|e| read_error(run_id, e))?;
    row.map(decode_approval).transpose()
}

/// A run's approval requests, in the order asked.
pub(super) async fn approvals(
    conn: &mut PgConnection,
    run_id: &RunId,
) -> Result<Vec<Approval>, StoreError> {
    let rows: Vec<ApprovalRow> = query_as(AssertSqlSafe(format!(
        "SELECT {APPROVAL_COLUMNS} FROM approvals WHERE run_id = $1 ORDER BY id"
    )))
    .bind(run_id.as_str())
    .fetch_all(&mut *conn)
    .await
    .map_err(|e| read_error(run_id, e))?;
    rows.into_iter().map(decode_approval).collect()
}

/// A run's pending approval request, if any.
async fn pending(conn: &mut PgConnection, run_id: &RunId) -> Result<Option<Approval>, StoreError> {
    let row: Option<ApprovalRow> = query_as(AssertSqlSafe(format!(
        "SELECT {APPROVAL_COLUMNS} FROM approvals WHERE run_id = $1 AND decision IS NULL \
         ORDER BY id LIMIT 1"
    )))
    .bind(run_id.as_str())
    .fetch_optional(&mut *conn)
    .await
    .map_err(|e| read_error(run_id, e))?;
    row.map(decode_approval).transpose()
}
