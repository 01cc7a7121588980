//! Stores in temporary files.

use flow_runtime::store::SqliteStore;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tempfile::TempDir;

/// The schema version `SqliteStore` writes today (its last migration): what a file it opened
/// reads back as `PRAGMA user_version`. One place to bump when a migration is added.
pub const SQLITE_SCHEMA: i64 = 12;

/// The path of an SQLite file (`runs.sqlite`, not created yet) in a new temporary directory,
/// removed with everything in it when the [`TempDb`] drops: open it, close it, reopen it,
/// corrupt its rows with rusqlite, or hand its path to a child process.
#[derive(Debug)]
pub struct TempDb {
    // Held for its `Drop`, which removes the directory.
    dir: TempDir,
    path: PathBuf,
}

impl TempDb {
    /// A new temporary directory and the path of `runs.sqlite` in it.
    ///
    /// # Panics
    ///
    /// If the system's temporary directory cannot be written: the test cannot run.
    #[must_use]
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("create a temporary directory");
        let path = dir.path().join("runs.sqlite");
        Self { dir, path }
    }

    /// The SQLite file's path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The temporary directory the file is in, for other files a test needs beside it.
    #[must_use]
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Opens (creating on first use) an [`SqliteStore`] on the file.
    ///
    /// # Panics
    ///
    /// If the store cannot be opened: the test cannot run.
    #[must_use]
    pub fn open(&self) -> Arc<SqliteStore> {
        Arc::new(SqliteStore::open(&self.path).expect("open the SqliteStore in a temporary file"))
    }
}

impl Default for TempDb {
    fn default() -> Self {
        Self::new()
    }
}

/// The lease of engines in tests on tokio's paused clock (`start_paused`): the clock jumps to
/// the next timer whenever the runtime waits for a store thread, so an engine's heartbeat can
/// fall behind its lease by hours of virtual time, and the engine would (rightly) stop a run
/// whose lease it can no longer prove. A year outlasts any jump these tests make.
pub const PAUSED_LEASE: std::time::Duration = std::time::Duration::from_secs(365 * 24 * 3600);
