//! Approval requests in a [`SqliteStore`](super::SqliteStore): the `approvals` table
//! (schema 9). Requests and decisions are written by the writer thread, each in a transaction
//! of its own; reads are served by the reader thread.

use super::queries::{read_error, visit_of};
use super::writer::write_error;
use super::{from_millis, millis};
use crate::error::{StoreError, StoreErrorKind};
use crate::state::RunId;
use crate::store::contract::unknown_run;
use crate::store::queue::lease_lost;
use crate::store::{APPROVAL_EVENT, Approval, ApprovalError, Decision, decidable};
use crate::tool::Visit;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

const COLUMNS: &str = "run_id, step, visit_back_edges, visit_item, position, call_id, model_call_id, tool, arguments, until, decision";

fn item_column(visit: Visit) -> i64 {
    visit.item_index().map_or(-1, i64::from)
}

fn back_edges_column(visit: Visit) -> i64 {
    i64::try_from(visit.back_edges()).unwrap_or(i64::MAX)
}

/// One row, its JSON columns still text.
struct Row {
    run_id: String,
    step: String,
    back_edges: i64,
    item: i64,
    position: u32,
    call_id: String,
    model_call_id: Option<String>,
    tool: String,
    arguments: String,
    until: i64,
    decision: Option<String>,
}

fn row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok(Row {
        run_id: row.get(0)?,
        step: row.get(1)?,
        back_edges: row.get(2)?,
        item: row.get(3)?,
        position: row.get(4)?,
        call_id: row.get(5)?,
        model_call_id: row.get(6)?,
        tool: row.get(7)?,
        arguments: row.get(8)?,
        until: row.get(9)?,
        decision: row.get(10)?,
    })
}

/// A row as an [`Approval`]; JSON that does not read back (the file was edited) is corrupt,
/// naming the run and the call.
fn decode(row: Row) -> Result<Approval, StoreError> {
    let corrupt = |what: &str, e: serde_json::Error| {
        StoreError::of_kind(
            StoreErrorKind::Corrupt,
            format!(
                "run `{}`: the approval request of call `{}` cannot be read: its {what} is not valid ({e})",
                row.run_id, row.call_id
            ),
        )
    };
    let arguments = serde_json::from_str(&row.arguments).map_err(|e| corrupt("arguments", e))?;
    let decision = match &row.decision {
        Some(text) => {
            Some(serde_json::from_str::<Decision>(text).map_err(|e| corrupt("decision", e))?)
        }
        None => None,
    };
    let item = u32::try_from(row.item).ok();
    Ok(Approval::new(
        RunId::from(row.run_id),
        row.step,
        visit_of(row.back_edges, item),
        row.position,
        row.call_id,
        row.tool,
        arguments,
        from_millis(row.until),
    )
    .with_model_call_id(row.model_call_id)
    .with_decision(decision))
}

fn one(
    conn: &Connection,
    run_id: &RunId,
    step: &str,
    visit: Visit,
    position: u32,
) -> Result<Option<Approval>, StoreError> {
    let found = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM approvals WHERE run_id = ?1 AND step = ?2 \
             AND visit_back_edges = ?3 AND visit_item = ?4 AND position = ?5"
        ))
        .and_then(|mut stmt| {
            stmt.query_row(
                params![
                    run_id.as_str(),
                    step,
                    back_edges_column(visit),
                    item_column(visit),
                    position
                ],
                row,
            )
            .optional()
        })
        .map_err(|e| read_error(run_id, e))?;
    found.map(decode).transpose()
}

/// The approval request of one call, if asked for.
pub(super) fn approval(
    conn: &Connection,
    run_id: &RunId,
    step: &str,
    visit: Visit,
    position: u32,
) -> Result<Option<Approval>, StoreError> {
    one(conn, run_id, step, visit, position)
}

/// A run's approval requests, in the order asked.
pub(super) fn approvals(conn: &Connection, run_id: &RunId) -> Result<Vec<Approval>, StoreError> {
    let rows = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM approvals WHERE run_id = ?1 ORDER BY rowid"
        ))
        .and_then(|mut stmt| {
            stmt.query_map([run_id.as_str()], row)
                .and_then(Iterator::collect::<rusqlite::Result<Vec<Row>>>)
        })
        .map_err(|e| read_error(run_id, e))?;
    rows.into_iter().map(decode).collect()
}

/// A run's pending approval request, if any: for [`RunInfo::approval`](crate::store::RunInfo::approval).
pub(super) fn pending(conn: &Connection, run_id: &RunId) -> Result<Option<Approval>, StoreError> {
    let found = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM approvals WHERE run_id = ?1 AND decision IS NULL \
             ORDER BY rowid LIMIT 1"
        ))
        .and_then(|mut stmt| stmt.query_row([run_id.as_str()], row).optional())
        .map_err(|e| read_error(run_id, e))?;
    found.map(decode).transpose()
}

/// Keeps a request (the first for its call) and parks the run on it, in one transaction.
pub(super) fn request(conn: &mut Connection, approval: &Approval) -> Result<Approval, StoreError> {
    let run_id = &approval.run_id;
    let failed = |e| write_error(run_id, "store its approval request", e);
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(failed)?;
    let epoch: Option<i64> = tx
        .query_row(
            "SELECT lease_epoch FROM runs WHERE run_id = ?1 AND finished = 0",
            [run_id.as_str()],
            |row| row.get(0),
        )
        .optional()
        .map_err(failed)?;
    let Some(epoch) = epoch else {
        return Err(unknown_run(run_id));
    };
    if let Some(fence) = approval.fence
        && super::epoch(fence) != epoch
    {
        return Err(lease_lost(run_id, "the approval request", fence));
    }
    let arguments = approval.arguments.to_string();
    tx.execute(
        "INSERT INTO approvals (run_id, step, visit_back_edges, visit_item, position, call_id, \
         model_call_id, tool, arguments, until, decision) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, NULL) \
         ON CONFLICT (run_id, step, visit_back_edges, visit_item, position) DO NOTHING",
        params![
            run_id.as_str(),
            approval.step,
            back_edges_column(approval.visit),
            item_column(approval.visit),
            approval.position,
            approval.call_id,
            approval.model_call_id,
            approval.tool,
            arguments,
            millis(approval.until),
        ],
    )
    .map_err(failed)?;
    let kept = one(
        &tx,
        run_id,
        &approval.step,
        approval.visit,
        approval.position,
    )?
    .ok_or_else(|| unknown_run(run_id))?;
    let until = millis(kept.until);
    let wake = if kept.is_pending() { until } else { 0 };
    tx.execute(
        "UPDATE runs SET wake_at = ?2, waiting = ?3, wait_event = ?4, wait_until = ?5, attempt = 0 \
         WHERE run_id = ?1",
        params![run_id.as_str(), wake, kept.step, APPROVAL_EVENT, until],
    )
    .map_err(failed)?;
    tx.commit().map_err(failed)?;
    Ok(kept)
}

/// Decides a request by its call id, in one transaction: see
/// [`Store::decide_approval`](crate::store::Store::decide_approval).
pub(super) fn decide(
    conn: &mut Connection,
    run_id: &RunId,
    call_id: &str,
    decision: Decision,
    now: i64,
) -> Result<Approval, ApprovalError> {
    let failed = |e| ApprovalError::Store(write_error(run_id, "decide its approval", e));
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(failed)?;
    let exists: Option<i64> = tx
        .query_row(
            "SELECT 1 FROM runs WHERE run_id = ?1",
            [run_id.as_str()],
            |row| row.get(0),
        )
        .optional()
        .map_err(failed)?;
    if exists.is_none() {
        return Err(ApprovalError::UnknownRun {
            run_id: run_id.clone(),
        });
    }
    let all = approvals(&tx, run_id)?;
    let i = decidable(run_id, call_id, &decision, &all, from_millis(now))?;
    let text = serde_json::to_string(&decision).map_err(|e| {
        ApprovalError::Store(StoreError::with_source(
            format!("run `{run_id}`: the decision on call `{call_id}` does not serialize"),
            e,
        ))
    })?;
    tx.execute(
        "UPDATE approvals SET decision = ?3 WHERE run_id = ?1 AND call_id = ?2",
        params![run_id.as_str(), call_id, text],
    )
    .map_err(failed)?;
    tx.execute(
        "UPDATE runs SET wake_at = 0, updated_at = ?3 \
         WHERE run_id = ?1 AND waiting IS NOT NULL AND wait_event = ?2",
        params![
            run_id.as_str(),
            APPROVAL_EVENT,
            millis(std::time::SystemTime::now())
        ],
    )
    .map_err(failed)?;
    tx.commit().map_err(failed)?;
    Ok(all[i].clone().with_decision(Some(decision)))
}
