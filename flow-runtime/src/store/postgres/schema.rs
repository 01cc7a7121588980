//! The schema of a [`PgStore`](super::PgStore)'s database: an ordered list of migrations.
//!
//! sqlx's `Migrator` applies the migrations a database lacks, in order, each in a transaction
//! of its own, and records them in `_sqlx_migrations`. It holds a Postgres advisory lock while
//! it does, so several workers starting at once on a new database apply each migration once:
//! the others wait for the lock, then find nothing left to do. A database with a migration this
//! code does not know (made by a newer flow) is refused.
//!
//! A schema change is a new entry at the end of [`MIGRATIONS`], never an edit of an old one:
//! databases out there have applied the old ones as written (sqlx keeps each one's checksum
//! and refuses a database whose applied migration was changed since).
//!
//! Times are Unix milliseconds in `BIGINT` columns throughout, as in the SQLite store, so the
//! two stores share their time arithmetic and a run's times read back to the millisecond.
//! States, payloads and outputs are JSON kept as `TEXT`, as written: the versioned envelope is
//! read back byte for byte, and a record spoiled behind the store's back is reported as
//! corrupt for its run alone instead of failing the statement that wrote it.

use sqlx_core::migrate::{Migration, MigrationType, Migrator};
use sqlx_core::sql_str::SqlSafeStr as _;

/// Every version of the schema, oldest first: (version, description, SQL).
const MIGRATIONS: &[(i64, &str, &str)] = &[
    // Version 1: everything the SQLite store has at its schema 11, in its final shape, plus
    // the lease columns of runs (`lease_owner`, `lease_epoch`, `lease_until`, Unix
    // milliseconds like every time here) that many workers sharing the database claim runs
    // with.
    (
        1,
        "runs, history, calls, events, journal, workflows, approvals",
        r"
CREATE TABLE runs (
    run_id          TEXT    PRIMARY KEY,
    workflow        TEXT    NOT NULL,
    fingerprint     TEXT    NOT NULL,
    step            TEXT    NOT NULL,
    state           TEXT    NOT NULL,
    finished        BOOLEAN NOT NULL,
    status          TEXT    NOT NULL DEFAULT 'running',
    checkpoints     BIGINT  NOT NULL,
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL,
    wake_at         BIGINT,
    waiting         TEXT,
    wait_event      TEXT,
    wait_until      BIGINT,
    attempt         BIGINT  NOT NULL DEFAULT 0,
    failure         TEXT,
    failed_step     TEXT,
    step_started_at BIGINT,
    trace           TEXT,
    lease_owner     TEXT,
    lease_epoch     BIGINT  NOT NULL DEFAULT 0,
    lease_until     BIGINT
);
-- The due-run query: running runs by wake-up time (NULL, due at once, first), the longest
-- waiting first. Partial: only running runs are ever due, and finished runs pile up.
CREATE INDEX runs_due ON runs (wake_at NULLS FIRST, updated_at) WHERE status = 'running';
-- A worker's leases, which it renews by heartbeat: only leased runs are in it.
CREATE INDEX runs_by_lease_owner ON runs (lease_owner) WHERE lease_owner IS NOT NULL;
CREATE INDEX runs_by_status ON runs (status, updated_at);
CREATE INDEX runs_by_workflow ON runs (workflow, updated_at);
CREATE INDEX runs_by_update ON runs (updated_at);

CREATE TABLE history (
    run_id      TEXT    NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    seq         BIGINT  NOT NULL,
    step        TEXT    NOT NULL,
    finished    BOOLEAN NOT NULL,
    at          BIGINT  NOT NULL,
    attempt     BIGINT  NOT NULL DEFAULT 0,
    started_at  BIGINT,
    failure     TEXT,
    failed_step TEXT,
    PRIMARY KEY (run_id, seq)
);

CREATE TABLE calls (
    run_id           TEXT   NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    seq              BIGINT NOT NULL,
    n                BIGINT NOT NULL,
    kind             TEXT   NOT NULL,
    name             TEXT   NOT NULL,
    step             TEXT   NOT NULL,
    call_index       BIGINT NOT NULL,
    attempts         BIGINT NOT NULL,
    duration_us      BIGINT NOT NULL,
    error            TEXT,
    visit_back_edges BIGINT NOT NULL DEFAULT 0,
    visit_item       BIGINT,
    input_tokens     BIGINT,
    output_tokens    BIGINT,
    PRIMARY KEY (run_id, seq, n)
);

CREATE TABLE events (
    id      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id  TEXT   NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    name    TEXT   NOT NULL,
    payload TEXT   NOT NULL,
    sent_at BIGINT NOT NULL
);
CREATE INDEX events_by_run ON events (run_id, name, id);

-- The call journal: not a child of `runs` by foreign key, since a run's first step records
-- its calls before the run's first checkpoint; a trigger removes a run's journal with the
-- run. `visit_item` is -1 for a visit that is not an item of a `workers` step (a key column
-- cannot be NULL). `seq` orders a run's entries as they were recorded.
CREATE TABLE journal (
    run_id           TEXT   NOT NULL,
    step             TEXT   NOT NULL,
    visit_back_edges BIGINT NOT NULL,
    visit_item       BIGINT NOT NULL,
    position         BIGINT NOT NULL,
    tool             TEXT   NOT NULL,
    attempts         BIGINT NOT NULL,
    output           TEXT,
    error            TEXT,
    seq              BIGINT GENERATED ALWAYS AS IDENTITY,
    PRIMARY KEY (run_id, step, visit_back_edges, visit_item, position)
);
CREATE INDEX journal_by_seq ON journal (run_id, seq);
CREATE FUNCTION flow_journal_goes_with_its_run() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM journal WHERE run_id = OLD.run_id;
    RETURN NULL;
END;
$$;
CREATE TRIGGER journal_goes_with_its_run AFTER DELETE ON runs
    FOR EACH ROW EXECUTE FUNCTION flow_journal_goes_with_its_run();

CREATE TABLE workflows (
    name          TEXT   NOT NULL,
    fingerprint   TEXT   NOT NULL,
    steps         TEXT   NOT NULL,
    mermaid       TEXT   NOT NULL,
    registered_at BIGINT NOT NULL,
    PRIMARY KEY (name, fingerprint)
);

-- Approval requests, keyed like the journal; `id` orders a run's requests as asked.
CREATE TABLE approvals (
    id               BIGINT GENERATED ALWAYS AS IDENTITY,
    run_id           TEXT   NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    step             TEXT   NOT NULL,
    visit_back_edges BIGINT NOT NULL,
    visit_item       BIGINT NOT NULL,
    position         BIGINT NOT NULL,
    call_id          TEXT   NOT NULL,
    model_call_id    TEXT,
    tool             TEXT   NOT NULL,
    arguments        TEXT   NOT NULL,
    until            BIGINT NOT NULL,
    decision         TEXT,
    PRIMARY KEY (run_id, step, visit_back_edges, visit_item, position),
    UNIQUE (run_id, call_id)
);
",
    ),
    // Version 2: a checkpoint that takes a running run on to its next step (no sleep, not
    // finished: the common case) changes no indexed column of its run's row, so PostgreSQL
    // updates the row in place (a HOT update: no new index entries, less to vacuum), on pages
    // left a quarter free for it. `updated_at` leaves every index: the due-run index orders
    // runs by `created_at`, and the lists and pruning read `settled_at`, the `updated_at` of a
    // run that is not running (NULL for a running one), which no checkpoint of a running run
    // changes. Adding the generated column rewrites `runs` under an exclusive lock: workers
    // wait for the migration, in proportion to the runs stored.
    (
        2,
        "checkpoints update runs in place",
        r"
ALTER TABLE runs SET (fillfactor = 75);
ALTER TABLE runs ADD COLUMN settled_at BIGINT
    GENERATED ALWAYS AS (CASE WHEN status = 'running' THEN NULL ELSE updated_at END) STORED;
DROP INDEX runs_due;
DROP INDEX runs_by_status;
DROP INDEX runs_by_workflow;
DROP INDEX runs_by_update;
-- The due-run query: running runs by wake-up time (NULL, due at once, first), the oldest
-- first. Partial: only running runs are ever due, and finished runs pile up.
CREATE INDEX runs_due ON runs (wake_at NULLS FIRST, created_at) WHERE status = 'running';
-- Lists and pruning of runs that are not running, the most recently settled first.
CREATE INDEX runs_settled ON runs (settled_at) WHERE settled_at IS NOT NULL;
CREATE INDEX runs_settled_by_status ON runs (status, settled_at) WHERE settled_at IS NOT NULL;
CREATE INDEX runs_settled_by_workflow ON runs (workflow, settled_at) WHERE settled_at IS NOT NULL;
",
    ),
];

/// The migrator of this schema: the migrations above, applied under sqlx's advisory lock.
pub(super) fn migrator() -> Migrator {
    Migrator::with_migrations(
        MIGRATIONS
            .iter()
            .map(|&(version, description, sql)| {
                Migration::new(
                    version,
                    description.into(),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

/// The schema version this code writes: the last migration's.
#[cfg(test)]
pub(super) const SCHEMA_VERSION: i64 = 2;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_numbered_in_order() {
        for (i, (version, ..)) in MIGRATIONS.iter().enumerate() {
            assert_eq!(*version, i64::try_from(i).unwrap() + 1);
        }
        assert_eq!(MIGRATIONS.last().map(|m| m.0), Some(SCHEMA_VERSION));
        assert_eq!(migrator().iter().count(), MIGRATIONS.len());
    }
}
