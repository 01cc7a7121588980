//! The store conformance suite (`flow_runtime::store::conformance`), run against every store
//! flow ships: one line per store, below its harness.

use flow_runtime::error::StoreError;
use flow_runtime::state::RunId;
use flow_runtime::store::conformance::{Harness, HistoryStep};
use flow_runtime::store::{MemoryStore, Prune, SqliteStore};
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
        Ok(store
            .history(run_id)
            .into_iter()
            .map(|c| HistoryStep::new(c.step, c.finished, c.calls))
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
        .map(|h| HistoryStep::new(h.step, h.finished, h.calls))
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
