//! [`SqliteStore`]: checkpoints in an embedded SQLite file, committed with group commit by a
//! writer thread of its own.

use crate::error::{ControlError, StoreError, StoreErrorKind};
use crate::state::control::refused;
use crate::state::engine::InProcessLock;
use crate::state::{
    CallKind, CallOutcome, CallRecord, Checkpoint, RunControl, RunFilter, RunId, RunInfo, RunQueue,
    RunStatus, Store, StoredEvent,
};
use crate::state::{EngineError, EngineLock};
use crate::tool::Visit;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::fmt;
use std::io::{Read as _, Seek as _, Write as _};
use std::path::Path;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, oneshot};

/// The version of the JSON envelope in the `runs.state` column.
const ENVELOPE_VERSION: u64 = 1;
/// The schema version, kept in SQLite's `user_version`. Version 2 added `runs.status`;
/// version 3 `runs.wake_at`, `runs.waiting` and the `events` inbox; version 4 `runs.attempt`
/// and `runs.failure`; version 5 `runs.wait_event` and `runs.wait_until`; version 6
/// `calls.visit_back_edges` and `calls.visit_item`. Older files get them when opened (see
/// [`prepare_writer`]).
const SCHEMA_VERSION: i64 = 6;
/// The default for [`SqliteStore::with_max_checkpoint_bytes`]: 1 MiB.
const DEFAULT_MAX_CHECKPOINT_BYTES: usize = 1 << 20;
/// Requests waiting for a store thread; `save` waits for room beyond that (back-pressure).
const QUEUE: usize = 4096;
/// The most checkpoints one transaction commits. Bounded so that one commit's replies are not
/// held back too long by a flood of others; far above what a batch usually holds.
const MAX_BATCH: usize = 1024;
/// How long a connection waits for another process's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

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
const UPSERT_RUN: &str = "
INSERT INTO runs (run_id, workflow, fingerprint, step, state, finished, status, checkpoints, created_at, updated_at, wake_at, waiting, attempt, failure)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 1, ?8, ?8, ?9, NULL, ?10, NULL)
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
    wait_event  = NULL,
    wait_until  = NULL
WHERE runs.workflow = excluded.workflow AND runs.status NOT IN ('paused', 'cancelled', 'failed')
RETURNING checkpoints
";

/// The columns of a [`RunInfo`], in the order [`run_info`] reads them.
const INFO_COLUMNS: &str =
    "run_id, workflow, fingerprint, status, step, checkpoints, created_at, updated_at, failure";

const INSERT_HISTORY: &str =
    "INSERT INTO history (run_id, seq, step, finished, at) VALUES (?1, ?2, ?3, ?4, ?5)";

const INSERT_CALL: &str = "
INSERT INTO calls (run_id, seq, n, kind, name, step, call_index, attempts, duration_us, error, visit_back_edges, visit_item)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
";

/// A [`Store`] in an SQLite file: durable checkpoints with no server to run.
///
/// ```
/// use flow_runtime::prelude::*;
/// use flow_runtime::state::{RunStatus, SqliteStore};
/// use std::sync::Arc;
///
/// #[workflow]
/// pub mod greet {
///     #[step(entry)]
///     pub async fn clean(name: String) -> Result<String, std::io::Error> {
///         Ok(name.trim().to_owned())
///     }
///
///     #[step(after = clean, exit)]
///     pub async fn hello(name: String) -> Result<String, std::io::Error> {
///         Ok(format!("hello, {name}"))
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = std::env::temp_dir().join(format!("flow-doc-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// # let path = dir.join("runs.sqlite");
/// let store = Arc::new(SqliteStore::open(&path)?);
/// let ctx = Ctx::builder(()).run_id("r1").store(Arc::clone(&store)).build();
/// assert_eq!(greet::Workflow::run(&ctx, " Ada ".into()).await?, "hello, Ada");
///
/// // Every step is in the file, and the latest state is the finished one.
/// let history = store.history(&"r1".into()).await?;
/// assert_eq!(history.iter().map(|h| h.step.as_str()).collect::<Vec<_>>(), ["clean", "hello"]);
/// let latest = store.latest(&"r1".into()).await?.expect("stored");
/// assert!(latest.finished);
/// let run = store.status(&"r1".into()).await?.expect("stored");
/// assert_eq!((run.status, run.checkpoints), (RunStatus::Finished, 2));
/// # drop(store);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok(())
/// # }
/// ```
///
/// # Durability
///
/// The file is in WAL mode with `synchronous = FULL`: a commit returns only after SQLite has
/// `fsync`ed the write-ahead log, so
///
/// * a checkpoint whose `save` returned `Ok` survives the process being killed (`SIGKILL`,
///   a panic, an OOM kill) **and** the machine losing power or crashing, as far as the disk
///   honours `fsync`;
/// * a checkpoint whose `save` had not returned may or may not be there after a crash, but
///   never half: the run row and its history row are written in one transaction, so the file
///   always holds either the state before the step or the state after it. A run resumes from
///   its latest stored state, so the step that was running when the process died runs again
///   (at-least-once); a step whose checkpoint was acknowledged never does.
///
/// # Threads and group commit
///
/// Calls never block the async executor on the disk. One writer thread owns the connection
/// that writes: `save` encodes the checkpoint on the caller's task, sends it to that thread
/// and waits for the reply. The thread takes every request waiting in its queue (up to 1,024),
/// commits them all in **one** transaction, then replies to all of them, so N runs saving at
/// once cost about one `fsync` per batch rather than one per step: while one commit syncs, the
/// next batch queues up. Run control ([`pause`](RunControl::pause),
/// [`unpause`](RunControl::unpause), [`cancel`](RunControl::cancel)) and pruning go to the same
/// thread, each in a transaction of its own after the batch's saves, so they serialise with
/// checkpoints. Reads ([`latest`](Store::latest), [`status`](Store::status),
/// [`list`](RunControl::list), [`history`](Self::history),
/// [`unfinished_runs`](Self::unfinished_runs)) go to a second thread with its own connection;
/// WAL lets it read the last committed state while the writer writes. Both threads end when
/// the store is dropped (after finishing what was sent to them).
///
/// # Run control
///
/// The store implements [`RunControl`]: [`status`](Store::status) and
/// [`list`](RunControl::list) (by workflow, by status) show where runs stand, and
/// [`pause`](RunControl::pause), [`unpause`](RunControl::unpause) and
/// [`cancel`](RunControl::cancel) stop and restart them. A checkpoint of a paused or cancelled
/// run is refused in the same statement that would write it, so the run stops with
/// [`RuntimeError::Stopped`](crate::error::RuntimeError::Stopped) before its next step; the step
/// that had just completed is not stored, and runs again if the run is unpaused and resumed.
/// [`history`](Self::history) is the run's history: every stored step with its time and every
/// tool call and output delivery it made, with attempts, durations and outcomes.
///
/// # What is stored
///
/// A `runs` table with one row per run: its id, workflow, fingerprint, latest step, latest
/// state, `finished` flag, number of checkpoints, creation and update times (Unix
/// milliseconds), and [status](RunStatus) (`running`, `paused`, …). The state is a JSON
/// envelope that says which code wrote it:
/// `{"v":1,"workflow":"trip","fingerprint":"…","state":{"Search":{…}}}`. A `history` table has
/// one row per checkpoint (run id, sequence number from 1, step, `finished`, time), without the
/// state, and a `calls` table one row per tool call or output delivery of each checkpoint's
/// step (with the step's visit it was made on and its position in that visit: what its
/// [idempotency key](CallRecord::idempotency_key) is derived from). A run id belongs to one workflow: saving a checkpoint of another workflow under it is
/// an error.
///
/// The schema's version is SQLite's `user_version`. A file made by an older version of this
/// store is brought up to date when opened, in one transaction (version 1 files get the
/// `status` column, `finished` or `running` from their `finished` flag); a file made by a newer
/// version is refused.
///
/// A checkpoint larger than [`max_checkpoint_bytes`](Self::with_max_checkpoint_bytes) (1 MiB
/// unless set) is refused before anything is written. A row that cannot be read back (not
/// JSON, not an envelope, a newer envelope version) is an error for that run only.
///
/// `Debug` shows the file's path and the limit, never a state.
pub struct SqliteStore {
    writer: mpsc::Sender<Write>,
    /// `None` for an in-memory database: its only connection is the writer's, which then
    /// serves reads too.
    reader: Option<mpsc::Sender<Read>>,
    path: Option<Arc<Path>>,
    max_checkpoint_bytes: usize,
    /// The engine lock of an in-memory database; a file's is a lock file beside it.
    engine: InProcessLock,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field(
                "path",
                &self.path.as_deref().unwrap_or(Path::new(":memory:")),
            )
            .field("max_checkpoint_bytes", &self.max_checkpoint_bytes)
            .finish_non_exhaustive()
    }
}

/// One row of a run's history in a [`SqliteStore`]: a checkpoint, without its state.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct HistoryEntry {
    /// The checkpoint's number in its run, from 1.
    pub seq: u64,
    /// The step (or fan-out branch) that had just completed.
    pub step: String,
    /// Whether the run finished with this checkpoint.
    pub finished: bool,
    /// When the checkpoint was saved.
    pub at: SystemTime,
    /// The tool calls and output deliveries of the step, in the order they ended, each with
    /// the visit it was made on (a loop's turn, a `workers` item).
    pub calls: Vec<CallRecord>,
}

/// Which finished runs [`SqliteStore::prune_finished`] deletes; cancelled runs count as
/// finished. Other runs are never deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Prune {
    /// Finished runs that last changed longer ago than this.
    OlderThan(Duration),
    /// All finished runs but this many, the most recently finished.
    KeepLast(u64),
}

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

/// A checkpoint encoded on the caller's task, ready to write.
struct Encoded {
    run_id: RunId,
    workflow: String,
    fingerprint: String,
    step: String,
    finished: bool,
    envelope: String,
    calls: Vec<CallRecord>,
    wake_at: Option<i64>,
    consumed_event: Option<u64>,
    attempt: u32,
    at: i64,
}

enum Write {
    Save(Encoded, Reply<()>),
    /// Done after the batch's saves are committed.
    After(After),
}

enum After {
    Prune(Prune, Reply<u64>),
    /// Moves a run to a status, as [`RunStatus::transition`] allows.
    Control(
        RunId,
        RunStatus,
        oneshot::Sender<Result<RunInfo, ControlError>>,
    ),
    /// The run id and the fingerprint of the code that refused it.
    MarkIncompatible(RunId, String, Reply<()>),
    /// The run waits in a step for an event (its name) until a time.
    Wait(RunId, String, String, i64, Reply<()>),
    /// An event for a run's inbox: its name and payload.
    SendEvent(RunId, String, String, Reply<()>),
    /// A run's step failed under an engine: the message.
    Fail(RunId, String, Reply<()>),
    /// The latest checkpoint of a run about to be resumed, counting a start of its next step
    /// when the run is due at the time given.
    LoadToResume(RunId, String, i64, Reply<Option<Checkpoint>>),
    /// Reads of an in-memory database.
    Read(Read),
}

enum Read {
    Latest(RunId, Reply<Option<Checkpoint>>),
    Status(RunId, Reply<Option<RunInfo>>),
    List(RunFilter, Reply<Vec<RunInfo>>),
    History(RunId, Reply<Vec<HistoryEntry>>),
    Unfinished(Reply<Vec<RunId>>),
    NextEvent(RunId, String, Reply<Option<StoredEvent>>),
    Due(i64, Vec<String>, usize, Reply<Vec<RunId>>),
    NextWake(i64, Reply<Option<SystemTime>>),
}

#[derive(serde::Serialize)]
struct EnvelopeRef<'a> {
    v: u64,
    workflow: &'a str,
    fingerprint: &'a str,
    state: &'a serde_json::Value,
}

#[derive(serde::Deserialize)]
struct Envelope {
    workflow: String,
    fingerprint: String,
    state: serde_json::Value,
}

impl SqliteStore {
    /// Opens the store in the SQLite file at `path`, creating the file and its tables if
    /// needed, and starts its two threads.
    ///
    /// # Errors
    ///
    /// The file cannot be opened or created, is not an SQLite database, cannot use WAL mode
    /// (e.g. on a network file system), or was made by a newer version of this store.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path: Arc<Path> = path.as_ref().into();
        let fail = |what: &str, e: rusqlite::Error| {
            StoreError::with_source(format!("sqlite store `{}`: {what}", path.display()), e)
        };
        let writer = Connection::open(&path).map_err(|e| fail("cannot open the file", e))?;
        writer
            .busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| fail("cannot set the busy timeout", e))?;
        let mode: String = writer
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(|e| fail("cannot switch to WAL mode", e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::new(format!(
                "sqlite store `{}`: the file cannot use WAL mode (journal mode is `{mode}`); \
                 put it on a local file system",
                path.display()
            )));
        }
        prepare_writer(&writer, &path.display().to_string())?;

        let reader = Connection::open(&path).map_err(|e| fail("cannot open the file", e))?;
        reader
            .busy_timeout(BUSY_TIMEOUT)
            .and_then(|()| reader.pragma_update(None, "query_only", true))
            .map_err(|e| fail("cannot set up the reading connection", e))?;

        let (writer_tx, writer_rx) = mpsc::channel(QUEUE);
        let (reader_tx, reader_rx) = mpsc::channel(QUEUE);
        spawn("flow-sqlite-writer", move || write_loop(writer, writer_rx)).map_err(|e| {
            StoreError::with_source("sqlite store: cannot start its writer thread", e)
        })?;
        spawn("flow-sqlite-reader", move || read_loop(&reader, reader_rx)).map_err(|e| {
            StoreError::with_source("sqlite store: cannot start its reader thread", e)
        })?;
        Ok(Self {
            writer: writer_tx,
            reader: Some(reader_tx),
            path: Some(path),
            max_checkpoint_bytes: DEFAULT_MAX_CHECKPOINT_BYTES,
            engine: InProcessLock::default(),
        })
    }

    /// A store in a private in-memory database, gone when the store is dropped: the same code
    /// and schema as a file, without durability. For tests.
    ///
    /// # Errors
    ///
    /// SQLite could not allocate the database, or the thread could not start.
    pub fn open_in_memory() -> Result<Self, StoreError> {
        let conn = Connection::open_in_memory().map_err(|e| {
            StoreError::with_source("sqlite store: cannot open a memory database", e)
        })?;
        prepare_writer(&conn, ":memory:")?;
        let (tx, rx) = mpsc::channel(QUEUE);
        spawn("flow-sqlite-writer", move || write_loop(conn, rx)).map_err(|e| {
            StoreError::with_source("sqlite store: cannot start its writer thread", e)
        })?;
        Ok(Self {
            writer: tx,
            reader: None,
            path: None,
            max_checkpoint_bytes: DEFAULT_MAX_CHECKPOINT_BYTES,
            engine: InProcessLock::default(),
        })
    }

    /// Sets the largest checkpoint the store accepts, in bytes of its JSON envelope (1 MiB
    /// unless set). A larger one fails its `save` before anything is written, and the run
    /// stops with [`RuntimeError::Checkpoint`](crate::error::RuntimeError::Checkpoint): keep
    /// large data (documents, images) outside the state and store a reference to it.
    #[must_use]
    pub fn with_max_checkpoint_bytes(mut self, bytes: usize) -> Self {
        self.max_checkpoint_bytes = bytes;
        self
    }

    /// The largest checkpoint the store accepts, in bytes.
    #[must_use]
    pub fn max_checkpoint_bytes(&self) -> usize {
        self.max_checkpoint_bytes
    }

    /// The run's history: every checkpoint of the run, oldest first, without states, each with
    /// its step, when it was stored, and the tool calls and output deliveries the step made
    /// (each with its attempts, duration and outcome). Empty for an unknown run.
    ///
    /// A step whose checkpoint was not stored (the process died, the step failed, run control
    /// stopped the run) is not in it; when it runs again, its new checkpoint is.
    ///
    /// # Errors
    ///
    /// The database could not be read.
    pub async fn history(&self, run_id: &RunId) -> Result<Vec<HistoryEntry>, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.read(Read::History(run_id.clone(), reply), rx).await
    }

    /// The runs to resume after a restart: those whose latest checkpoint is not finished and
    /// that are neither paused nor cancelled, least recently updated first.
    ///
    /// # Errors
    ///
    /// The database could not be read.
    pub async fn unfinished_runs(&self) -> Result<Vec<RunId>, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.read(Read::Unfinished(reply), rx).await
    }

    /// Deletes finished and cancelled runs and their history, as `policy` says, and returns
    /// how many runs it deleted. Other runs are kept whatever their age.
    ///
    /// # Errors
    ///
    /// The database could not be written.
    pub async fn prune_finished(&self, policy: Prune) -> Result<u64, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.send_write(Write::After(After::Prune(policy, reply)))
            .await?;
        rx.await.map_err(|_| stopped())?
    }

    async fn read<T>(
        &self,
        request: Read,
        rx: oneshot::Receiver<Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        match &self.reader {
            Some(reader) => reader.send(request).await.map_err(|_| stopped())?,
            None => self.send_write(Write::After(After::Read(request))).await?,
        }
        rx.await.map_err(|_| stopped())?
    }

    async fn send_write(&self, request: Write) -> Result<(), StoreError> {
        self.writer.send(request).await.map_err(|_| stopped())
    }

    async fn control(&self, run_id: &RunId, to: RunStatus) -> Result<RunInfo, ControlError> {
        let (reply, rx) = oneshot::channel();
        self.send_write(Write::After(After::Control(run_id.clone(), to, reply)))
            .await?;
        rx.await.map_err(|_| stopped())?
    }

    fn encode(&self, checkpoint: Checkpoint) -> Result<Encoded, StoreError> {
        // The envelope adds one level, which `MAX_JSON_DEPTH` leaves room for: what is
        // written here, `decode_envelope` reads back.
        if let Some(reason) = crate::state::too_deep(&checkpoint.state) {
            return Err(crate::state::store::unstorable(
                &checkpoint.run_id,
                &checkpoint.step,
                &reason,
            ));
        }
        let envelope = serde_json::to_string(&EnvelopeRef {
            v: ENVELOPE_VERSION,
            workflow: &checkpoint.workflow,
            fingerprint: &checkpoint.fingerprint,
            state: &checkpoint.state,
        })
        .map_err(|e| {
            StoreError::with_source(
                format!("run `{}`: cannot encode the checkpoint", checkpoint.run_id),
                e,
            )
        })?;
        if envelope.len() > self.max_checkpoint_bytes {
            return Err(StoreError::of_kind(
                StoreErrorKind::TooLarge,
                format!(
                    "run `{}`: the checkpoint after step `{}` is {} bytes, over this store's limit of \
                 {} bytes; keep large data outside the workflow's state (store a reference to it), \
                 or raise the limit with `SqliteStore::with_max_checkpoint_bytes`",
                    checkpoint.run_id,
                    checkpoint.step,
                    envelope.len(),
                    self.max_checkpoint_bytes
                ),
            ));
        }
        Ok(Encoded {
            run_id: checkpoint.run_id,
            workflow: checkpoint.workflow,
            fingerprint: checkpoint.fingerprint,
            step: checkpoint.step,
            finished: checkpoint.finished,
            envelope,
            calls: checkpoint.calls,
            wake_at: checkpoint.wake_at.map(millis),
            consumed_event: checkpoint.consumed_event,
            attempt: checkpoint.attempt,
            at: millis(SystemTime::now()),
        })
    }
}

impl Store for SqliteStore {
    async fn save(&self, checkpoint: Checkpoint) -> Result<(), StoreError> {
        let encoded = self.encode(checkpoint)?;
        let (reply, rx) = oneshot::channel();
        self.send_write(Write::Save(encoded, reply)).await?;
        rx.await.map_err(|_| stopped())?
    }

    async fn latest(&self, run_id: &RunId) -> Result<Option<Checkpoint>, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.read(Read::Latest(run_id.clone(), reply), rx).await
    }

    async fn load_to_resume(
        &self,
        run_id: &RunId,
        fingerprint: &str,
    ) -> Result<Option<Checkpoint>, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.send_write(Write::After(After::LoadToResume(
            run_id.clone(),
            fingerprint.to_owned(),
            millis(crate::state::now()),
            reply,
        )))
        .await?;
        rx.await.map_err(|_| stopped())?
    }

    async fn status(&self, run_id: &RunId) -> Result<Option<RunInfo>, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.read(Read::Status(run_id.clone(), reply), rx).await
    }

    async fn mark_incompatible(&self, run_id: &RunId, fingerprint: &str) -> Result<(), StoreError> {
        let (reply, rx) = oneshot::channel();
        self.send_write(Write::After(After::MarkIncompatible(
            run_id.clone(),
            fingerprint.to_owned(),
            reply,
        )))
        .await?;
        rx.await.map_err(|_| stopped())?
    }

    async fn wait(
        &self,
        run_id: &RunId,
        step: &str,
        event: &str,
        until: SystemTime,
    ) -> Result<(), StoreError> {
        let (reply, rx) = oneshot::channel();
        self.send_write(Write::After(After::Wait(
            run_id.clone(),
            step.to_owned(),
            event.to_owned(),
            millis(until),
            reply,
        )))
        .await?;
        rx.await.map_err(|_| stopped())?
    }

    async fn send_event(
        &self,
        run_id: &RunId,
        name: &str,
        payload: serde_json::Value,
    ) -> Result<(), StoreError> {
        if let Some(reason) = crate::state::too_deep(&payload) {
            return Err(crate::state::store::unstorable_event(run_id, name, &reason));
        }
        let (reply, rx) = oneshot::channel();
        self.send_write(Write::After(After::SendEvent(
            run_id.clone(),
            name.to_owned(),
            payload.to_string(),
            reply,
        )))
        .await?;
        rx.await.map_err(|_| stopped())?
    }

    async fn next_event(
        &self,
        run_id: &RunId,
        name: &str,
    ) -> Result<Option<StoredEvent>, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.read(Read::NextEvent(run_id.clone(), name.to_owned(), reply), rx)
            .await
    }
}

impl RunQueue for SqliteStore {
    async fn due(
        &self,
        now: SystemTime,
        workflows: &[&str],
        limit: usize,
    ) -> Result<Vec<RunId>, StoreError> {
        let (reply, rx) = oneshot::channel();
        let workflows = workflows.iter().map(|w| (*w).to_owned()).collect();
        self.read(Read::Due(millis(now), workflows, limit, reply), rx)
            .await
    }

    async fn next_wake(&self, after: SystemTime) -> Result<Option<SystemTime>, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.read(Read::NextWake(millis(after), reply), rx).await
    }

    async fn fail(&self, run_id: &RunId, message: &str) -> Result<(), StoreError> {
        let (reply, rx) = oneshot::channel();
        self.send_write(Write::After(After::Fail(
            run_id.clone(),
            message.to_owned(),
            reply,
        )))
        .await?;
        rx.await.map_err(|_| stopped())?
    }

    /// A file's engine lock is an exclusive lock on the file `<database>-engine.lock` beside
    /// it (made when needed, left in place), which also excludes engines in other processes
    /// and on other `SqliteStore`s of the same file; the operating system releases it when
    /// the process dies. The file holds the id of the process that holds the lock, for the
    /// message of a refused engine.
    fn lock_engine(&self) -> Result<EngineLock, EngineError> {
        let Some(path) = &self.path else {
            return self.engine.lock("an in-memory sqlite store");
        };
        let mut name = path.as_os_str().to_owned();
        name.push("-engine.lock");
        let lock_path = std::path::PathBuf::from(name);
        let store = format!("sqlite store `{}`", path.display());
        let io = |e: std::io::Error| {
            EngineError::Store(StoreError::with_source(
                format!(
                    "{store}: cannot use its engine lock file `{}`",
                    lock_path.display()
                ),
                e,
            ))
        };
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = match holder.trim() {
                    "" => format!("lock file `{}`", lock_path.display()),
                    pid if pid == std::process::id().to_string() => format!(
                        "an engine in this process holds lock file `{}`",
                        lock_path.display()
                    ),
                    pid => format!("process {pid} holds lock file `{}`", lock_path.display()),
                };
                return Err(EngineError::Locked { store, holder });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        // For the message of an engine refused while this one runs; the lock is what counts.
        let _ = file
            .set_len(0)
            .and_then(|()| file.seek(std::io::SeekFrom::Start(0)))
            .and_then(|_| write!(file, "{}", std::process::id()))
            .and_then(|()| file.flush());
        Ok(EngineLock::new(file))
    }
}

impl RunControl for SqliteStore {
    async fn list(&self, filter: &RunFilter) -> Result<Vec<RunInfo>, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.read(Read::List(filter.clone(), reply), rx).await
    }

    async fn pause(&self, run_id: &RunId) -> Result<RunInfo, ControlError> {
        self.control(run_id, RunStatus::Paused).await
    }

    async fn unpause(&self, run_id: &RunId) -> Result<RunInfo, ControlError> {
        self.control(run_id, RunStatus::Running).await
    }

    async fn cancel(&self, run_id: &RunId) -> Result<RunInfo, ControlError> {
        self.control(run_id, RunStatus::Cancelled).await
    }
}

fn stopped() -> StoreError {
    StoreError::of_kind(
        StoreErrorKind::Unavailable,
        "sqlite store: its thread has stopped (it panicked); open the store again",
    )
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> std::io::Result<()> {
    thread::Builder::new()
        .name(name.to_owned())
        .spawn(f)
        .map(drop)
}

/// Durability and integrity settings of the writing connection, and the schema. `name` is
/// the file's name, for messages.
fn prepare_writer(conn: &Connection, name: &str) -> Result<(), StoreError> {
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

fn has_column(conn: &Connection, table: &str, column: &str) -> rusqlite::Result<bool> {
    let mut stmt = conn.prepare("SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2")?;
    stmt.exists([table, column])
}

fn write_loop(mut conn: Connection, mut rx: mpsc::Receiver<Write>) {
    let mut saves = Vec::new();
    let mut others = Vec::new();
    let mut loads = Vec::new();
    while let Some(first) = rx.blocking_recv() {
        let mut next = Some(first);
        let mut taken = 0;
        while let Some(request) = next {
            match request {
                Write::Save(encoded, reply) => saves.push((encoded, reply)),
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
        if !saves.is_empty() {
            commit_saves(&mut conn, &mut saves);
        }
        // Counted together, in one transaction (one fsync), like saves: an engine picking up
        // many runs at once pays for one commit, not one each.
        if !loads.is_empty() {
            load_to_resume(&mut conn, &mut loads);
        }
        // After the commit, so that a read sees every save acknowledged before it.
        for request in others.drain(..) {
            match request {
                After::Prune(policy, reply) => {
                    let _ = reply.send(prune(&conn, policy));
                }
                After::Control(run_id, to, reply) => {
                    let _ = reply.send(control(&mut conn, &run_id, to));
                }
                After::MarkIncompatible(run_id, fingerprint, reply) => {
                    let _ = reply.send(mark_incompatible(&conn, &run_id, &fingerprint));
                }
                After::Wait(run_id, step, event, until, reply) => {
                    let _ = reply.send(wait(&conn, &run_id, &step, &event, until));
                }
                After::SendEvent(run_id, name, payload, reply) => {
                    let _ = reply.send(send_event(&mut conn, &run_id, &name, &payload));
                }
                After::Fail(run_id, message, reply) => {
                    let _ = reply.send(fail(&conn, &run_id, &message));
                }
                // Taken out of the batch above.
                After::LoadToResume(run_id, fingerprint, now, reply) => {
                    loads.push((run_id, fingerprint, now, reply));
                    load_to_resume(&mut conn, &mut loads);
                }
                After::Read(read) => serve_read(&conn, read),
            }
        }
    }
}

/// Commits a batch of saves in one transaction, then answers each. A save that fails on its
/// own (a run id of another workflow, a statement SQLite refused) is rolled back to its
/// savepoint and fails alone; a failed commit fails them all.
fn commit_saves(conn: &mut Connection, saves: &mut Vec<(Encoded, Reply<()>)>) {
    let outcome = (|| {
        let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
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
        Ok::<_, rusqlite::Error>(results)
    })();
    match outcome {
        Ok(results) => {
            for ((_, reply), result) in saves.drain(..).zip(results) {
                let _ = reply.send(result);
            }
        }
        Err(e) => {
            let message = e.to_string();
            for (encoded, reply) in saves.drain(..) {
                let _ = reply.send(Err(StoreError::new(format!(
                    "run `{}`: could not commit the checkpoint after step `{}`: {message}",
                    encoded.run_id, encoded.step
                ))));
            }
        }
    }
}

/// Writes one checkpoint: the run's row and one history row. The outer error is SQLite's,
/// the inner one this save's own.
fn write_one(conn: &Connection, e: &Encoded) -> rusqlite::Result<Result<(), StoreError>> {
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
                e.attempt
            ],
            |row| row.get(0),
        )
        .optional()?;
    let Some(seq) = seq else {
        // The update's `WHERE` failed: say which part.
        let (owner, status): (String, String) = conn.query_row(
            "SELECT workflow, status FROM runs WHERE run_id = ?1",
            [e.run_id.as_str()],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )?;
        if owner != e.workflow {
            return Ok(Err(StoreError::of_kind(
                StoreErrorKind::Conflict,
                format!(
                    "run `{}` belongs to workflow `{owner}`, not `{}`: give each run its own id",
                    e.run_id, e.workflow
                ),
            )));
        }
        // The only other way to fail the `WHERE`: the run is paused or cancelled.
        let status = RunStatus::from_name(&status).unwrap_or(RunStatus::Paused);
        return Ok(Err(refused(&e.run_id, &e.step, status)));
    };
    conn.prepare_cached(INSERT_HISTORY)?.execute(params![
        e.run_id.as_str(),
        seq,
        e.step,
        e.finished,
        e.at
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
            ])?;
        }
    }
    Ok(Ok(()))
}

fn call_columns(call: &CallRecord) -> (&'static str, Option<&str>) {
    let kind = match call.kind {
        CallKind::Output => "output",
        _ => "tool",
    };
    let error = match &call.outcome {
        CallOutcome::Failed(message) => Some(message.as_str()),
        _ => None,
    };
    (kind, error)
}

fn prune(conn: &Connection, policy: Prune) -> Result<u64, StoreError> {
    let deleted = match policy {
        Prune::OlderThan(age) => {
            let cutoff = millis(SystemTime::now().checked_sub(age).unwrap_or(UNIX_EPOCH));
            conn.execute(
                "DELETE FROM runs WHERE status IN ('finished', 'cancelled') AND updated_at <= ?1",
                [cutoff],
            )
        }
        Prune::KeepLast(keep) => conn.execute(
            "DELETE FROM runs WHERE status IN ('finished', 'cancelled') AND run_id NOT IN (
                 SELECT run_id FROM runs WHERE status IN ('finished', 'cancelled')
                 ORDER BY updated_at DESC, run_id DESC LIMIT ?1)",
            [i64::try_from(keep).unwrap_or(i64::MAX)],
        ),
    };
    // History rows go with their run (ON DELETE CASCADE), in the same statement.
    deleted
        .map(|n| u64::try_from(n).unwrap_or(u64::MAX))
        .map_err(|e| StoreError::with_source("sqlite store: could not prune finished runs", e))
}

fn read_loop(conn: &Connection, mut rx: mpsc::Receiver<Read>) {
    while let Some(request) = rx.blocking_recv() {
        serve_read(conn, request);
    }
}

fn serve_read(conn: &Connection, request: Read) {
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
    }
}

fn write_error(run_id: &RunId, what: &str, e: rusqlite::Error) -> StoreError {
    StoreError::with_source(format!("run `{run_id}`: could not {what}"), e)
}

fn wait(
    conn: &Connection,
    run_id: &RunId,
    step: &str,
    event: &str,
    until: i64,
) -> Result<(), StoreError> {
    // Due at once when the event is in the inbox already: sent after the step looked there,
    // and before this.
    let changed = conn
        .execute(
            "UPDATE runs SET wake_at = CASE WHEN EXISTS \
               (SELECT 1 FROM events WHERE run_id = ?1 AND name = ?4) THEN 0 ELSE ?2 END, \
             waiting = ?3, wait_event = ?4, wait_until = ?2, attempt = 0 \
             WHERE run_id = ?1 AND finished = 0",
            params![run_id.as_str(), until, step, event],
        )
        .map_err(|e| write_error(run_id, "record its wait", e))?;
    if changed == 0 {
        return Err(crate::state::store::unknown_run(run_id));
    }
    Ok(())
}

fn send_event(
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
        return Err(crate::state::store::unknown_run(run_id));
    };
    let status = RunStatus::from_name(&status).unwrap_or(RunStatus::Running);
    if matches!(status, RunStatus::Finished | RunStatus::Cancelled) {
        return Err(crate::state::store::closed_inbox(run_id, status));
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

fn fail(conn: &Connection, run_id: &RunId, message: &str) -> Result<(), StoreError> {
    tracing::warn!(run_id = %run_id, error = message, "run failed");
    conn.execute(
        "UPDATE runs SET status = 'failed', updated_at = ?2, failure = ?3 \
         WHERE run_id = ?1 AND status = 'running'",
        params![run_id.as_str(), millis(SystemTime::now()), message],
    )
    .map_err(|e| write_error(run_id, "mark it failed", e))?;
    Ok(())
}

fn next_event(
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

fn due(
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

fn next_wake(conn: &Connection, after: i64) -> Result<Option<SystemTime>, StoreError> {
    conn.query_row(
        "SELECT MIN(wake_at) FROM runs WHERE status = 'running' AND wake_at > ?1",
        [after],
        |row| row.get::<_, Option<i64>>(0),
    )
    .map(|t| t.map(from_millis))
    .map_err(|e| StoreError::with_source("sqlite store: could not read the next wake-up", e))
}

fn read_error(run_id: &RunId, e: rusqlite::Error) -> StoreError {
    StoreError::with_source(format!("run `{run_id}`: could not read the store"), e)
}

/// A request to load a run to resume it: run id, fingerprint, now.
type Load = (RunId, String, i64, Reply<Option<Checkpoint>>);

/// For each request, counts a start of the run's next step when the run is due at `now` (not
/// finished, no wake-up time after `now`) and stored with `fingerprint`, and reads its latest
/// checkpoint with the count; all in one transaction, then answers each. A run whose row
/// cannot be read fails alone; a failed commit fails them all.
fn load_to_resume(conn: &mut Connection, loads: &mut Vec<Load>) {
    let outcome = (|| {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut results = Vec::with_capacity(loads.len());
        for (run_id, fingerprint, now, _) in loads.iter() {
            let counted = tx
                .prepare_cached(
                    "UPDATE runs SET attempt = attempt + 1 \
                     WHERE run_id = ?1 AND finished = 0 AND fingerprint = ?3 \
                     AND (wake_at IS NULL OR wake_at <= ?2)",
                )
                .and_then(|mut stmt| stmt.execute(params![run_id.as_str(), now, fingerprint]))
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

fn latest(conn: &Connection, run_id: &RunId) -> Result<Option<Checkpoint>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT workflow, fingerprint, step, finished, state, COALESCE(wait_until, wake_at), \
             waiting, attempt FROM runs WHERE run_id = ?1",
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
        .with_attempt(attempt),
    ))
}

/// Reads `{"v":1,"workflow":…,"fingerprint":…,"state":…}`, checking the version first so that a
/// newer envelope is reported as such rather than as a missing field.
fn decode_envelope(bytes: &[u8]) -> Result<Envelope, String> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("`state` is not JSON: {e}"))?;
    match value.get("v").and_then(serde_json::Value::as_u64) {
        Some(ENVELOPE_VERSION) => {}
        Some(v) => {
            return Err(format!(
                "envelope version {v}, this version of flow reads {ENVELOPE_VERSION}: \
                 written by a newer flow"
            ));
        }
        None => return Err("`state` is not a checkpoint envelope (no `v`)".to_owned()),
    }
    serde_json::from_value(value).map_err(|e| format!("bad checkpoint envelope: {e}"))
}

fn history(conn: &Connection, run_id: &RunId) -> Result<Vec<HistoryEntry>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT seq, step, finished, at FROM history WHERE run_id = ?1 ORDER BY seq",
        )
        .map_err(|e| read_error(run_id, e))?;
    let mut entries: Vec<HistoryEntry> = stmt
        .query_map([run_id.as_str()], |row| {
            Ok(HistoryEntry {
                // Written from a positive count: never negative.
                seq: u64::try_from(row.get::<_, i64>(0)?).unwrap_or_default(),
                step: row.get(1)?,
                finished: row.get(2)?,
                at: from_millis(row.get(3)?),
                calls: Vec::new(),
            })
        })
        .and_then(Iterator::collect)
        .map_err(|e| read_error(run_id, e))?;
    let mut stmt = conn
        .prepare_cached(
            "SELECT seq, kind, name, step, call_index, attempts, duration_us, error, \
             visit_back_edges, visit_item FROM calls WHERE run_id = ?1 ORDER BY seq, n",
        )
        .map_err(|e| read_error(run_id, e))?;
    let calls = stmt
        .query_map([run_id.as_str()], |row| {
            let kind = match row.get_ref(1)?.as_str()? {
                "output" => CallKind::Output,
                _ => CallKind::Tool,
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
            .with_visit(visit_of(row.get(8)?, row.get(9)?));
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
fn visit_of(back_edges: i64, item: Option<u32>) -> Visit {
    let visit = Visit::after(u64::try_from(back_edges).unwrap_or_default());
    match item {
        Some(index) => visit.item(index),
        None => visit,
    }
}

fn unfinished(conn: &Connection) -> Result<Vec<RunId>, StoreError> {
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
fn run_info(row: &rusqlite::Row<'_>) -> rusqlite::Result<RunInfo> {
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
    let failure: Option<String> = row.get(8).unwrap_or_else(|e| {
        problems.push(format!("`failure`: {e}"));
        None
    });
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
    .with_failure(failure);
    Ok(if problems.is_empty() {
        info
    } else {
        info.corrupted(problems.join("; "))
    })
}

fn status(conn: &Connection, run_id: &RunId) -> Result<Option<RunInfo>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {INFO_COLUMNS} FROM runs WHERE run_id = ?1"
    ))
    .and_then(|mut stmt| stmt.query_row([run_id.as_str()], run_info).optional())
    .map_err(|e| read_error(run_id, e))
}

fn list(conn: &Connection, filter: &RunFilter) -> Result<Vec<RunInfo>, StoreError> {
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
    stmt.query_map(values.as_slice(), run_info)
        .and_then(Iterator::collect)
        .map_err(fail)
}

/// Moves a run to `to` in a transaction of its own: the status it is read in is the status
/// it is changed from, even with other processes writing the file.
fn control(conn: &mut Connection, run_id: &RunId, to: RunStatus) -> Result<RunInfo, ControlError> {
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

fn mark_incompatible(
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

fn millis(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn from_millis(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_is_send_sync() {
        fn check<T: Send + Sync + 'static>() {}
        check::<SqliteStore>();
    }

    #[test]
    fn envelope_versions() {
        assert!(
            decode_envelope(br#"{"v":1,"workflow":"w","fingerprint":"f","state":null}"#).is_ok()
        );
        let newer = decode_envelope(br#"{"v":2,"x":1}"#).err().unwrap();
        assert!(newer.contains("newer flow"), "{newer}");
        let bare = decode_envelope(br#"{"Search":{}}"#).err().unwrap();
        assert!(bare.contains("no `v`"), "{bare}");
        let junk = decode_envelope(b"garbage").err().unwrap();
        assert!(junk.contains("not JSON"), "{junk}");
    }

    #[test]
    fn paths_are_kept_for_debug() {
        let store = SqliteStore::open_in_memory().unwrap();
        assert_eq!(
            format!("{store:?}"),
            "SqliteStore { path: \":memory:\", max_checkpoint_bytes: 1048576, .. }"
        );
    }
}
