//! The store conformance suite (`flow_runtime::store::conformance`), run against every store
//! flow ships: one line per store, below its harness.

use flow_runtime::error::StoreError;
use flow_runtime::state::RunId;
use flow_runtime::store::conformance::{Harness, HistoryStep};
use flow_runtime::store::{MemoryStore, PgStore, Prune, RunHistory as _, SqliteStore};
use std::path::PathBuf;

/// A `MemoryStore`: it keeps values, so it cannot hold a corrupt record, and has no size limit
/// or pruning.
struct Memory;

impl Harness for Memory {
    type Store = MemoryStore;

    async fn store(&self) -> Result<MemoryStore, StoreError> {
        Ok(MemoryStore::new())
    }

    async fn history(
        &self,
        store: &MemoryStore,
        run_id: &RunId,
    ) -> Result<Vec<HistoryStep>, StoreError> {
        let failures = store.failures(run_id);
        let failure = |seq: u64| {
            failures
                .iter()
                .rev()
                .find(|(at, _)| *at == seq)
                .map(|(_, failure)| failure.clone())
        };
        Ok(store
            .history(run_id)
            .into_iter()
            .zip(1..)
            .map(|(c, seq)| {
                HistoryStep::new(c.step, c.finished, c.calls).with_failure(failure(seq))
            })
            .collect())
    }
}

mod memory {
    flow_runtime::store::conformance::suite!(super::Memory);
}

/// A `SqliteStore` in a file of a temporary directory, corrupted with raw SQL.
struct Sqlite {
    dir: tempfile::TempDir,
}

impl Sqlite {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("a temporary directory"),
        }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("runs.sqlite")
    }

    fn execute(&self, sql: &str, run_id: &RunId) -> bool {
        let conn = rusqlite::Connection::open(self.path()).expect("the file opens");
        conn.execute(sql, [run_id.as_str()])
            .expect("the row is written")
            == 1
    }
}

impl Harness for Sqlite {
    type Store = SqliteStore;

    async fn store(&self) -> Result<SqliteStore, StoreError> {
        SqliteStore::open(self.path())
    }

    async fn history(
        &self,
        store: &SqliteStore,
        run_id: &RunId,
    ) -> Result<Vec<HistoryStep>, StoreError> {
        sqlite_history(store, run_id).await
    }

    async fn corrupt_state(&self, _store: &SqliteStore, run_id: &RunId) -> bool {
        self.execute(
            "UPDATE runs SET state = 'not json' WHERE run_id = ?1",
            run_id,
        )
    }

    async fn corrupt_status(&self, _store: &SqliteStore, run_id: &RunId) -> bool {
        self.execute(
            "UPDATE runs SET status = 'sleepy' WHERE run_id = ?1",
            run_id,
        )
    }

    async fn reopen(&self, store: SqliteStore) -> Option<Result<SqliteStore, StoreError>> {
        drop(store);
        Some(SqliteStore::open(self.path()))
    }

    async fn corrupt_events(&self, _store: &SqliteStore, run_id: &RunId) -> bool {
        self.execute(
            "UPDATE events SET payload = 'not json' WHERE run_id = ?1",
            run_id,
        )
    }

    async fn corrupt_approvals(&self, _store: &SqliteStore, run_id: &RunId) -> bool {
        self.execute(
            "UPDATE approvals SET arguments = 'not json' WHERE run_id = ?1",
            run_id,
        )
    }

    fn max_checkpoint_bytes(&self, store: &SqliteStore) -> Option<usize> {
        Some(store.max_checkpoint_bytes())
    }

    async fn prune_all_finished(&self, store: &SqliteStore) -> Option<Result<u64, StoreError>> {
        Some(store.prune_finished(Prune::KeepLast(0)).await)
    }
}

async fn sqlite_history(
    store: &SqliteStore,
    run_id: &RunId,
) -> Result<Vec<HistoryStep>, StoreError> {
    Ok(store
        .history(run_id)
        .await?
        .into_iter()
        .map(|h| HistoryStep::new(h.step, h.finished, h.calls).with_failure(h.failure))
        .collect())
}

mod sqlite {
    flow_runtime::store::conformance::suite!(super::Sqlite::new());
}

/// The same file, in memory: the same code without a reader thread of its own.
struct SqliteInMemory;

impl Harness for SqliteInMemory {
    type Store = SqliteStore;

    async fn store(&self) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_in_memory()
    }

    async fn history(
        &self,
        store: &SqliteStore,
        run_id: &RunId,
    ) -> Result<Vec<HistoryStep>, StoreError> {
        sqlite_history(store, run_id).await
    }

    fn max_checkpoint_bytes(&self, store: &SqliteStore) -> Option<usize> {
        Some(store.max_checkpoint_bytes())
    }

    async fn prune_all_finished(&self, store: &SqliteStore) -> Option<Result<u64, StoreError>> {
        Some(store.prune_finished(Prune::KeepLast(0)).await)
    }
}

mod sqlite_in_memory {
    flow_runtime::store::conformance::suite!(super::SqliteInMemory);
}

/// A `PgStore` on a fresh database of the test process's throwaway PostgreSQL cluster
/// (`flow_tests::pg`), corrupted with raw SQL through `psql`.
struct Pg {
    /// The database, made by the first `store`.
    database: std::sync::OnceLock<flow_tests::pg::Database>,
}

impl Pg {
    fn new() -> Self {
        Self {
            database: std::sync::OnceLock::new(),
        }
    }

    fn database(&self) -> &flow_tests::pg::Database {
        self.database.get_or_init(flow_tests::pg::fresh_database)
    }

    /// Runs `sql` (which names the run as `:'run'`) and says whether it changed one row.
    fn execute(&self, sql: &str, run_id: &RunId) -> bool {
        let out =
            flow_tests::pg::server().psql(&self.database().name, sql, &[("run", run_id.as_str())]);
        out.split_whitespace().last().is_some_and(|n| n != "0")
    }
}

impl Harness for Pg {
    type Store = PgStore;

    async fn store(&self) -> Result<PgStore, StoreError> {
        PgStore::connect(&self.database().url).await
    }

    async fn history(
        &self,
        store: &PgStore,
        run_id: &RunId,
    ) -> Result<Vec<HistoryStep>, StoreError> {
        Ok(store
            .steps(run_id)
            .await?
            .into_iter()
            .map(|h| HistoryStep::new(h.step, h.finished, h.calls).with_failure(h.failure))
            .collect())
    }

    async fn corrupt_state(&self, _store: &PgStore, run_id: &RunId) -> bool {
        self.execute(
            "UPDATE runs SET state = 'not json' WHERE run_id = :'run'",
            run_id,
        )
    }

    async fn corrupt_status(&self, _store: &PgStore, run_id: &RunId) -> bool {
        self.execute(
            "UPDATE runs SET status = 'sleepy' WHERE run_id = :'run'",
            run_id,
        )
    }

    async fn corrupt_events(&self, _store: &PgStore, run_id: &RunId) -> bool {
        self.execute(
            "UPDATE events SET payload = 'not json' WHERE run_id = :'run'",
            run_id,
        )
    }

    async fn corrupt_approvals(&self, _store: &PgStore, run_id: &RunId) -> bool {
        self.execute(
            "UPDATE approvals SET arguments = 'not json' WHERE run_id = :'run'",
            run_id,
        )
    }

    async fn reopen(&self, store: PgStore) -> Option<Result<PgStore, StoreError>> {
        drop(store);
        Some(PgStore::connect(&self.database().url).await)
    }

    fn max_checkpoint_bytes(&self, store: &PgStore) -> Option<usize> {
        Some(store.max_checkpoint_bytes())
    }

    async fn prune_all_finished(&self, store: &PgStore) -> Option<Result<u64, StoreError>> {
        Some(store.prune_finished(Prune::KeepLast(0)).await)
    }
}

mod postgres {
    flow_runtime::store::conformance::suite!(super::Pg::new());
}
