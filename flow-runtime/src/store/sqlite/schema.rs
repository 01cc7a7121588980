//! The schema of a [`SqliteStore`](super::SqliteStore)'s file and its upgrades.

use crate::error::StoreError;
use rusqlite::Connection;

/// The schema version, kept in SQLite's `user_version`. Version 2 added `runs.status`;
/// version 3 `runs.wake_at`, `runs.waiting` and the `events` inbox; version 4 `runs.attempt`
/// and `runs.failure`; version 5 `runs.wait_event` and `runs.wait_until`; version 6
/// `calls.visit_back_edges` and `calls.visit_item`. Older files get them when opened (see
/// [`prepare_writer`]).
const SCHEMA_VERSION: i64 = 6;
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS runs (
    run_id      TEXT    PRIMARY KEY NOT NULL,
    workflow    TEXT    NOT NULL,
    fingerprint TEXT    NOT NULL,
    step        TEXT    NOT NULL,
    state       TEXT    NOT NULL,
    finished    INTEGER NOT NULL,
    checkpoints INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    status      TEXT    NOT NULL DEFAULT 'running',
    wake_at     INTEGER,
    waiting     TEXT,
    attempt     INTEGER NOT NULL DEFAULT 0,
    failure     TEXT,
    wait_event  TEXT,
    wait_until  INTEGER
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS runs_by_finished ON runs (finished, updated_at);
CREATE TABLE IF NOT EXISTS history (
    run_id   TEXT    NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    seq      INTEGER NOT NULL,
    step     TEXT    NOT NULL,
    finished INTEGER NOT NULL,
    at       INTEGER NOT NULL,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS calls (
    run_id      TEXT    NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    n           INTEGER NOT NULL,
    kind        TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    step        TEXT    NOT NULL,
    call_index  INTEGER NOT NULL,
    attempts    INTEGER NOT NULL,
    duration_us INTEGER NOT NULL,
    error       TEXT,
    visit_back_edges INTEGER NOT NULL DEFAULT 0,
    visit_item       INTEGER,
    PRIMARY KEY (run_id, seq, n)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id  TEXT    NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    name    TEXT    NOT NULL,
    payload TEXT    NOT NULL,
    sent_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_run ON events (run_id, name, id);
";

/// Schema version 5 to 6: the visit of its step each call was made on (see
/// [`CallRecord::visit`]): the loop back-edges the run had taken when the step began, and the
/// item of a `workers` step (`NULL` for none). Calls stored before read back as made on the
/// first visit, which they were unless their step was in a loop or a `workers` step.
const ADD_CALL_VISIT: &str = "
ALTER TABLE calls ADD COLUMN visit_back_edges INTEGER NOT NULL DEFAULT 0;
ALTER TABLE calls ADD COLUMN visit_item INTEGER;
";

/// Schema version 4 to 5: the event a waiting run waits for, so that only that event makes it
/// due, and the wait's deadline, kept when the event makes the run due sooner (`wake_at` is
/// when the run is due). A run waiting when the file is upgraded keeps its deadline; any event
/// wakes it once, as before, and its step records the event when it waits again.
const ADD_WAIT_EVENT: &str = "
ALTER TABLE runs ADD COLUMN wait_event TEXT;
ALTER TABLE runs ADD COLUMN wait_until INTEGER;
UPDATE runs SET wait_until = wake_at WHERE waiting IS NOT NULL;
";

/// Schema version 3 to 4: which attempt of the run's next step has started (see
/// [`Checkpoint::attempt`]), and the message of the failure that set a run aside.
const ADD_ATTEMPT: &str = "
ALTER TABLE runs ADD COLUMN attempt INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN failure TEXT;
";

/// Schema version 2 to 3: when a run is due, and the step it waits in for an event.
const ADD_WAKE: &str = "
ALTER TABLE runs ADD COLUMN wake_at INTEGER;
ALTER TABLE runs ADD COLUMN waiting TEXT;
";

/// Schema version 1 to 2: the `status` column, `finished` for finished runs and `running` for
/// the others (version 1 had no run control).
const ADD_STATUS: &str = "
ALTER TABLE runs ADD COLUMN status TEXT NOT NULL DEFAULT 'running';
UPDATE runs SET status = 'finished' WHERE finished = 1;
";

/// Indexes on `runs.status`, made once the column exists.
const STATUS_INDEXES: &str = "
CREATE INDEX IF NOT EXISTS runs_by_status ON runs (status, updated_at);
CREATE INDEX IF NOT EXISTS runs_by_workflow ON runs (workflow, updated_at);
CREATE INDEX IF NOT EXISTS runs_by_wake ON runs (status, wake_at);
";

/// Upserts the run's row and returns its new checkpoint count. A run id already used by
/// another workflow, or a paused or cancelled run, fails the `WHERE` of the update, so nothing
/// changes and no row comes back: the check and the write are one statement.
/// Durability and integrity settings of the writing connection, and the schema. `name` is
/// the file's name, for messages.
pub(super) fn prepare_writer(conn: &Connection, name: &str) -> Result<(), StoreError> {
    let fail = |e| {
        StoreError::with_source(
            format!("sqlite store `{name}`: cannot set up the database"),
            e,
        )
    };
    // FULL: in WAL mode, every commit syncs the log, so an acknowledged commit survives power
    // loss. NORMAL would sync only at WAL checkpoints: safe against a process crash, not a
    // power cut.
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(fail)?;
    conn.pragma_update(None, "foreign_keys", true)
        .map_err(fail)?;
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(fail)?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::new(format!(
            "sqlite store `{name}`: the file was made by a newer version of flow's sqlite store \
             (schema {version}, this one knows {SCHEMA_VERSION}); open it with that version"
        )));
    }
    // A process killed while creating or upgrading the schema leaves either all of it or none.
    (|| {
        let tx = conn.unchecked_transaction()?;
        tx.execute_batch(SCHEMA)?;
        // Checked by the column rather than by `user_version`, so that a file is upgraded
        // whatever wrote its version.
        if !has_column(&tx, "runs", "status")? {
            tx.execute_batch(ADD_STATUS)?;
        }
        if !has_column(&tx, "runs", "wake_at")? {
            tx.execute_batch(ADD_WAKE)?;
        }
        if !has_column(&tx, "runs", "attempt")? {
            tx.execute_batch(ADD_ATTEMPT)?;
        }
        if !has_column(&tx, "runs", "wait_event")? {
            tx.execute_batch(ADD_WAIT_EVENT)?;
        }
        if !has_column(&tx, "calls", "visit_back_edges")? {
            tx.execute_batch(ADD_CALL_VISIT)?;
        }
        tx.execute_batch(STATUS_INDEXES)?;
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        tx.commit()
    })()
    .map_err(fail)
}

pub(super) fn has_column(conn: &Connection, table: &str, column: &str) -> rusqlite::Result<bool> {
    let mut stmt = conn.prepare("SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2")?;
    stmt.exists([table, column])
}
