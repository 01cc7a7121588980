//! The schema of a [`SqliteStore`](super::SqliteStore)'s file: an ordered list of migrations.
//!
//! The file's schema version is SQLite's `user_version`: the number of migrations applied to
//! it. Opening a file applies the migrations it lacks, in order, each in a transaction of its
//! own that also sets `user_version`, so a process killed during an upgrade leaves the file at
//! the version before the step or after it, never between; the next open goes on from there.
//! Each transaction is `IMMEDIATE` and reads the version inside it, so two processes opening
//! the same old file do not apply a step twice. A file made by a newer version (a version past
//! the end of the list) is refused.
//!
//! A schema change is a new entry at the end of [`MIGRATIONS`], never an edit of an old one:
//! files out there have applied the old ones as written.

use crate::error::StoreError;
use rusqlite::{Connection, Transaction, TransactionBehavior};

/// One step of the schema, from version `version - 1` to `version`.
struct Migration {
    /// The version the file is at once the step is applied.
    version: i64,
    /// The SQL of the step, run as one batch in the step's transaction.
    sql: &'static str,
}

/// Every version of the schema, oldest first; a file at version `n` has applied the first `n`.
const MIGRATIONS: &[Migration] = &[
    // Version 1: runs (latest state, in a JSON envelope), their history, and the tool calls
    // of each checkpoint's step.
    Migration {
        version: 1,
        sql: "
CREATE TABLE IF NOT EXISTS runs (
    run_id      TEXT    PRIMARY KEY NOT NULL,
    workflow    TEXT    NOT NULL,
    fingerprint TEXT    NOT NULL,
    step        TEXT    NOT NULL,
    state       TEXT    NOT NULL,
    finished    INTEGER NOT NULL,
    checkpoints INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
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
    PRIMARY KEY (run_id, seq, n)
) WITHOUT ROWID;
",
    },
    // Version 2: run control. The `status` column, `finished` for finished runs and `running`
    // for the others. The `calls` table came while files were still at version 1, so a file
    // made before it gets it here.
    Migration {
        version: 2,
        sql: "
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
    PRIMARY KEY (run_id, seq, n)
) WITHOUT ROWID;
ALTER TABLE runs ADD COLUMN status TEXT NOT NULL DEFAULT 'running';
UPDATE runs SET status = 'finished' WHERE finished = 1;
CREATE INDEX IF NOT EXISTS runs_by_status ON runs (status, updated_at);
CREATE INDEX IF NOT EXISTS runs_by_workflow ON runs (workflow, updated_at);
",
    },
    // Version 3: durable sleeps and events. When a run is due, the step it waits in for an
    // event, and the runs' inboxes.
    Migration {
        version: 3,
        sql: "
ALTER TABLE runs ADD COLUMN wake_at INTEGER;
ALTER TABLE runs ADD COLUMN waiting TEXT;
CREATE INDEX IF NOT EXISTS runs_by_wake ON runs (status, wake_at);
CREATE TABLE IF NOT EXISTS events (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id  TEXT    NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    name    TEXT    NOT NULL,
    payload TEXT    NOT NULL,
    sent_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_run ON events (run_id, name, id);
",
    },
    // Version 4: which attempt of the run's next step has started (see
    // `Checkpoint::attempt`), and the message of the failure that set a run aside.
    Migration {
        version: 4,
        sql: "
ALTER TABLE runs ADD COLUMN attempt INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN failure TEXT;
",
    },
    // Version 5: the event a waiting run waits for, so that only that event makes it due, and
    // the wait's deadline, kept when the event makes the run due sooner (`wake_at` is when
    // the run is due). A run waiting when the file is upgraded keeps its deadline; any event
    // wakes it once, as before, and its step records the event when it waits again.
    Migration {
        version: 5,
        sql: "
ALTER TABLE runs ADD COLUMN wait_event TEXT;
ALTER TABLE runs ADD COLUMN wait_until INTEGER;
UPDATE runs SET wait_until = wake_at WHERE waiting IS NOT NULL;
",
    },
    // Version 6: the visit of its step each call was made on (see `CallRecord::visit`): the
    // loop back-edges the run had taken when the step began, and the item of a `workers`
    // step (`NULL` for none). Calls stored before read back as made on the first visit, which
    // they were unless their step was in a loop or a `workers` step.
    Migration {
        version: 6,
        sql: "
ALTER TABLE calls ADD COLUMN visit_back_edges INTEGER NOT NULL DEFAULT 0;
ALTER TABLE calls ADD COLUMN visit_item INTEGER;
",
    },
    // Version 7: the step that failed, beside the failure's message, on the run and on the
    // history entry the failed step started from, so that a failure stays in the history
    // after the run is retried. Failures stored before read back with no step.
    Migration {
        version: 7,
        sql: "
ALTER TABLE runs ADD COLUMN failed_step TEXT;
ALTER TABLE history ADD COLUMN failed_step TEXT;
ALTER TABLE history ADD COLUMN failure TEXT;
",
    },
    // Version 8: the call journal (see `Store::record_call`): each completed tool call's
    // output (JSON text) or permanent failure, keyed by run, step, visit and position. Not a
    // child of `runs` by foreign key, since a run's first step records its calls before the
    // run's first checkpoint; a trigger removes a run's journal with the run. `visit_item` is
    // -1 for a visit that is not an item of a `workers` step (a key column cannot be NULL).
    Migration {
        version: 8,
        sql: "
CREATE TABLE IF NOT EXISTS journal (
    run_id           TEXT    NOT NULL,
    step             TEXT    NOT NULL,
    visit_back_edges INTEGER NOT NULL,
    visit_item       INTEGER NOT NULL,
    position         INTEGER NOT NULL,
    tool             TEXT    NOT NULL,
    attempts         INTEGER NOT NULL,
    output           TEXT,
    error            TEXT,
    PRIMARY KEY (run_id, step, visit_back_edges, visit_item, position)
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS journal_goes_with_its_run AFTER DELETE ON runs
BEGIN
    DELETE FROM journal WHERE run_id = old.run_id;
END;
",
    },
    // Version 9: what tools reading the store need (see `RunHistory`). The workflows' names,
    // fingerprints, steps (a JSON array) and Mermaid graphs; on each history entry the attempt
    // that completed its step and when that attempt began (from `runs.step_started_at`, set
    // when the next step's attempt begins); the journal's order of recording (`seq`, per run;
    // entries recorded before read back first, in key order). Entries stored before read back
    // with attempt 0 and no start time.
    Migration {
        version: 9,
        sql: "
CREATE TABLE IF NOT EXISTS workflows (
    name          TEXT    NOT NULL,
    fingerprint   TEXT    NOT NULL,
    steps         TEXT    NOT NULL,
    mermaid       TEXT    NOT NULL,
    registered_at INTEGER NOT NULL,
    PRIMARY KEY (name, fingerprint)
) WITHOUT ROWID;
ALTER TABLE history ADD COLUMN attempt INTEGER NOT NULL DEFAULT 0;
ALTER TABLE history ADD COLUMN started_at INTEGER;
ALTER TABLE runs ADD COLUMN step_started_at INTEGER;
ALTER TABLE journal ADD COLUMN seq INTEGER;
CREATE INDEX IF NOT EXISTS journal_by_seq ON journal (run_id, seq);
",
    },
    // Version 10: the run's trace context (see `Checkpoint::trace`), a W3C `traceparent`: set
    // by the first checkpoint that carries one, never changed after. Runs stored before have
    // none; their next turn begins a trace that their later turns continue.
    Migration {
        version: 10,
        sql: "
ALTER TABLE runs ADD COLUMN trace TEXT;
",
    },
    // Version 11: approval requests of approval-gated tool calls (see
    // `Store::request_approval`), keyed like the journal by run, step, visit and position,
    // named for people by `call_id` (the call's idempotency key); `decision` is the decision
    // as JSON, `NULL` while pending. A request comes after the run's first checkpoint, so it
    // is a child of `runs`. `visit_item` is -1 for no item, as in `journal`. And the tokens
    // each model call used (`CallRecord::usage`; `NULL` for other calls and older rows).
    Migration {
        version: 11,
        sql: "
CREATE TABLE IF NOT EXISTS approvals (
    run_id           TEXT    NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    step             TEXT    NOT NULL,
    visit_back_edges INTEGER NOT NULL,
    visit_item       INTEGER NOT NULL,
    position         INTEGER NOT NULL,
    call_id          TEXT    NOT NULL,
    model_call_id    TEXT,
    tool             TEXT    NOT NULL,
    arguments        TEXT    NOT NULL,
    until            INTEGER NOT NULL,
    decision         TEXT,
    PRIMARY KEY (run_id, step, visit_back_edges, visit_item, position)
);
CREATE UNIQUE INDEX IF NOT EXISTS approvals_by_call ON approvals (run_id, call_id);
ALTER TABLE calls ADD COLUMN input_tokens INTEGER;
ALTER TABLE calls ADD COLUMN output_tokens INTEGER;
",
    },
    // Version 12: leases (see `RunQueue::claim`): the worker holding the run and until when
    // (epoch milliseconds; both `NULL` when nobody does), and the lease epoch, the fence
    // every fenced write compares in its own statement. The claim's query reads
    // `runs_by_wake` as `due` does, then these columns of the rows it found.
    Migration {
        version: 12,
        sql: "
ALTER TABLE runs ADD COLUMN lease_owner TEXT;
ALTER TABLE runs ADD COLUMN lease_until INTEGER;
ALTER TABLE runs ADD COLUMN lease_epoch INTEGER NOT NULL DEFAULT 0;
",
    },
];

/// The schema version this code writes: the last migration's.
const SCHEMA_VERSION: i64 = 12;

/// Durability and integrity settings of the writing connection, and the schema brought up to
/// date. `name` is the file's name, for messages.
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
    migrate(conn, name)
}

/// Applies the migrations the file lacks, one transaction each.
fn migrate(conn: &Connection, name: &str) -> Result<(), StoreError> {
    loop {
        let fail =
            |what: String, e| StoreError::with_source(format!("sqlite store `{name}`: {what}"), e);
        let tx = Transaction::new_unchecked(conn, TransactionBehavior::Immediate)
            .map_err(|e| fail("cannot begin upgrading the schema".to_owned(), e))?;
        let version: i64 = tx
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(|e| fail("cannot read the schema version".to_owned(), e))?;
        if version < 0 {
            return Err(StoreError::new(format!(
                "sqlite store `{name}`: the file's schema version is {version}, which no \
                 version of flow's sqlite store writes: it was not made by this store"
            )));
        }
        if version > SCHEMA_VERSION {
            return Err(StoreError::new(format!(
                "sqlite store `{name}`: the file was made by a newer version of flow's sqlite \
                 store (schema {version}, this one knows {SCHEMA_VERSION}); open it with that \
                 version"
            )));
        }
        let Some(step) = MIGRATIONS.iter().find(|m| m.version == version + 1) else {
            // Up to date.
            return tx
                .commit()
                .map_err(|e| fail("cannot read the schema version".to_owned(), e));
        };
        let what = || format!("cannot upgrade the schema to version {}", step.version);
        tx.execute_batch(step.sql).map_err(|e| fail(what(), e))?;
        tx.pragma_update(None, "user_version", step.version)
            .map_err(|e| fail(what(), e))?;
        tx.commit().map_err(|e| fail(what(), e))?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every table's columns and every index, as SQLite describes them.
    fn shape(conn: &Connection) -> Vec<String> {
        let mut stmt = conn
            .prepare(
                "SELECT m.type, m.name, p.cid, p.name, p.type, p.\"notnull\", p.dflt_value, p.pk \
                 FROM sqlite_master m LEFT JOIN pragma_table_info(m.name) p \
                 WHERE m.name NOT LIKE 'sqlite_%' ORDER BY m.type, m.name, p.cid",
            )
            .unwrap();
        stmt.query_map([], |row| {
            Ok((0..8)
                .map(|i| format!("{:?}", row.get::<_, rusqlite::types::Value>(i).unwrap()))
                .collect::<Vec<_>>()
                .join(" "))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    }

    fn version(conn: &Connection) -> i64 {
        conn.pragma_query_value(None, "user_version", |row| row.get(0))
            .unwrap()
    }

    /// A file at `version`, as the code of that version left it.
    fn at_version(version: i64) -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        for step in MIGRATIONS.iter().take_while(|m| m.version <= version) {
            conn.execute_batch(step.sql).unwrap();
            conn.pragma_update(None, "user_version", step.version)
                .unwrap();
        }
        conn
    }

    #[test]
    fn versions_are_numbered_in_order() {
        for (i, step) in MIGRATIONS.iter().enumerate() {
            assert_eq!(step.version, i64::try_from(i).unwrap() + 1);
        }
        assert_eq!(MIGRATIONS.last().map(|m| m.version), Some(SCHEMA_VERSION));
    }

    #[test]
    fn every_older_version_upgrades_to_the_same_schema() {
        let fresh = at_version(0);
        prepare_writer(&fresh, "fresh").unwrap();
        assert_eq!(version(&fresh), SCHEMA_VERSION);
        let expected = shape(&fresh);
        assert!(expected.iter().any(|c| c.contains("visit_item")));
        for old in 1..SCHEMA_VERSION {
            let conn = at_version(old);
            conn.execute(
                "INSERT INTO runs (run_id, workflow, fingerprint, step, state, finished, \
                 checkpoints, created_at, updated_at) VALUES ('r', 'w', 'f', 's', '{}', 1, 1, 0, 0)",
                [],
            )
            .unwrap();
            prepare_writer(&conn, "old").unwrap();
            assert_eq!(version(&conn), SCHEMA_VERSION, "from version {old}");
            assert_eq!(shape(&conn), expected, "from version {old}");
            let status: String = conn
                .query_row("SELECT status FROM runs", [], |row| row.get(0))
                .unwrap();
            // A version 1 file has no status: its finished runs become `finished`.
            let expected_status = if old == 1 { "finished" } else { "running" };
            assert_eq!(status, expected_status, "from version {old}");
            // Opening it again changes nothing.
            prepare_writer(&conn, "old").unwrap();
            assert_eq!(shape(&conn), expected, "from version {old}");
        }
    }

    #[test]
    fn a_version_1_file_made_before_calls_gets_them() {
        let conn = at_version(1);
        conn.execute_batch("DROP TABLE calls").unwrap();
        prepare_writer(&conn, "old").unwrap();
        let fresh = at_version(0);
        prepare_writer(&fresh, "fresh").unwrap();
        assert_eq!(shape(&conn), shape(&fresh));
    }

    #[test]
    fn a_newer_file_is_refused_and_left_alone() {
        let conn = at_version(SCHEMA_VERSION);
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        let e = prepare_writer(&conn, "new").unwrap_err().to_string();
        let newer = format!("schema {}", SCHEMA_VERSION + 1);
        assert!(e.contains("newer version") && e.contains(&newer), "{e}");
        assert_eq!(version(&conn), SCHEMA_VERSION + 1);
    }

    #[test]
    fn a_failed_step_leaves_the_file_at_the_version_before_it() {
        // A version 3 file whose `runs` already has `attempt`: step 4 fails, and nothing of
        // it is kept.
        let conn = at_version(3);
        conn.execute_batch("ALTER TABLE runs ADD COLUMN attempt INTEGER")
            .unwrap();
        let before = shape(&conn);
        let e = prepare_writer(&conn, "odd").unwrap_err().to_string();
        assert!(e.contains("cannot upgrade the schema to version 4"), "{e}");
        assert_eq!(version(&conn), 3);
        assert_eq!(shape(&conn), before);
    }
}
