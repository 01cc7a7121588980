//! [`SqliteStore`]: checkpoints in an embedded SQLite file, committed with group commit by a
//! writer thread of its own.
//!
//! `schema` holds the tables and their ordered migrations, `writer` the writer thread (group
//! commit, run control, events), `queries` the reads (served by a reader thread of their own).

mod approvals;
mod queries;
mod schema;
mod writer;

use self::queries::Read;
use self::queries::read_loop;
use self::schema::prepare_writer;
use self::writer::{After, Write, write_loop};
use crate::error::{ControlError, StoreError, StoreErrorKind};
use crate::state::{CallRecord, RunId};
use crate::store::envelope::encode_envelope;
use crate::store::{
    Approval, ApprovalError, Checkpoint, Decision, Failure, Fence, HistoryEntry, JournalEntry,
    JournalResult, Lease, Prune, RunControl, RunFilter, RunHistory, RunInfo, RunQueue, RunStatus,
    Store, StoredEvent, WorkflowInfo,
};
use crate::tool::Visit;
use rusqlite::Connection;
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, oneshot};

/// The default for [`SqliteStore::with_max_checkpoint_bytes`]: 1 MiB.
const DEFAULT_MAX_CHECKPOINT_BYTES: usize = 1 << 20;
/// Requests waiting for a store thread; `save` waits for room beyond that (back-pressure).
const QUEUE: usize = 4096;
/// WAL frames (4 KiB pages) after which the commit that added them checkpoints the log into
/// the database file: `wal_autocheckpoint`, 10× SQLite's default of 1,000. A checkpoint runs
/// on the committing thread and costs two more `fsync`s (the log, then the database file); at
/// 1,000 frames one lone run's step in ~160 paid for it, enough to set its p99. The cost is a
/// WAL file of about 40 MiB (written over from its start once a checkpoint has copied all of
/// it) and up to that much log to read when the file is opened after a crash.
const WAL_CHECKPOINT_FRAMES: i64 = 10_000;

/// How long a connection waits for another process's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A [`Store`] in an SQLite file: durable checkpoints with no server to run.
///
/// ```
/// use flow_runtime::prelude::*;
/// use flow_runtime::store::{RunStatus, SqliteStore};
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
/// // The run's start (`""`), then each step.
/// assert_eq!(history.iter().map(|h| h.step.as_str()).collect::<Vec<_>>(), ["", "clean", "hello"]);
/// let latest = store.latest(&"r1".into()).await?.expect("stored");
/// assert!(latest.finished);
/// let run = store.status(&"r1".into()).await?.expect("stored");
/// assert_eq!((run.status, run.checkpoints), (RunStatus::Finished, 3));
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
/// Every 10,000 WAL frames (about 40 MiB) the commit that reaches them also checkpoints the log
/// into the database file; a checkpoint `fsync`s the log before copying and the database file
/// before the log may be written over, so it changes nothing above. (SQLite's default is every
/// 1,000 frames; the checkpoint's two `fsync`s were then the slowest steps of a lone run, see
/// the README's benchmarks.)
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
/// The schema's version is SQLite's `user_version`: how many of the store's ordered list of
/// migrations the file has applied (9 today). A file made by an older version of this store is
/// brought up to date when opened, one migration per transaction, so a process killed during
/// the upgrade leaves the file at a version it can go on from (version 1 files get the
/// `status` column, `finished` or `running` from their `finished` flag); a file made by a newer
/// version is refused and left as it is.
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
    /// The workflows (name, fingerprint) this handle has recorded: runs record their workflow
    /// at every start, and only the first reaches the writer.
    registered: std::sync::Mutex<std::collections::HashSet<(String, String)>>,
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

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

/// A checkpoint encoded on the caller's task, ready to write.
pub(super) struct Encoded {
    pub(super) run_id: RunId,
    pub(super) workflow: String,
    pub(super) fingerprint: String,
    pub(super) step: String,
    pub(super) finished: bool,
    pub(super) envelope: String,
    pub(super) calls: Vec<CallRecord>,
    pub(super) wake_at: Option<i64>,
    pub(super) consumed_event: Option<u64>,
    pub(super) attempt: u32,
    pub(super) trace: Option<String>,
    pub(super) at: i64,
    /// The writer's lease epoch (see `Checkpoint::fence`).
    pub(super) fence: Option<i64>,
    /// The checkpoint starts a new run (see `Checkpoint::new_run`).
    pub(super) new_run: bool,
}

/// A call journal entry encoded on the caller's task, ready to write.
pub(super) struct EncodedCall {
    pub(super) run_id: RunId,
    pub(super) step: String,
    pub(super) visit_back_edges: i64,
    /// -1 for a visit that is not an item of a `workers` step.
    pub(super) visit_item: i64,
    pub(super) position: u32,
    pub(super) tool: String,
    pub(super) attempts: u32,
    pub(super) output: Option<String>,
    pub(super) error: Option<String>,
    /// The writer's lease epoch (see `JournalEntry::fence`).
    pub(super) fence: Option<i64>,
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
        writer
            .pragma_update(None, "wal_autocheckpoint", WAL_CHECKPOINT_FRAMES)
            .map_err(|e| fail("cannot set how often the WAL is checkpointed", e))?;

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
            registered: std::sync::Mutex::default(),
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
            registered: std::sync::Mutex::default(),
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
        self.prune_batch(policy, -1).await
    }

    async fn prune_batch(&self, policy: Prune, batch: i64) -> Result<u64, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.send_write(Write::After(After::Prune(policy, batch, reply)))
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
        let envelope = encode_envelope(&checkpoint, self.max_checkpoint_bytes, "SqliteStore")?;
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
            trace: checkpoint.trace,
            at: millis(SystemTime::now()),
            fence: checkpoint.fence.map(epoch),
            new_run: checkpoint.new_run,
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
        fence: Option<Fence>,
    ) -> Result<(), StoreError> {
        let (reply, rx) = oneshot::channel();
        self.send_write(Write::After(After::Wait(
            run_id.clone(),
            step.to_owned(),
            event.to_owned(),
            millis(until),
            fence,
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
            return Err(crate::store::contract::unstorable_event(
                run_id, name, &reason,
            ));
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

    async fn record_call(&self, entry: JournalEntry) -> Result<(), StoreError> {
        let (output, error) = match &entry.result {
            JournalResult::Output(value) => {
                if let Some(reason) = crate::state::too_deep(value) {
                    return Err(crate::store::contract::unstorable_call(&entry, &reason));
                }
                (Some(value.to_string()), None)
            }
            JournalResult::Failed(message) => (None, Some(message.clone())),
        };
        let bytes = output.as_deref().or(error.as_deref()).map_or(0, str::len);
        if bytes > self.max_checkpoint_bytes {
            return Err(StoreError::of_kind(
                StoreErrorKind::TooLarge,
                format!(
                    "run `{}`: the result of call {} of step `{}` (tool `{}`) is {bytes} bytes, \
                     over this store's limit of {} bytes; return a reference to large data from \
                     the tool, or raise the limit with `SqliteStore::with_max_checkpoint_bytes`",
                    entry.run_id, entry.position, entry.step, entry.tool, self.max_checkpoint_bytes
                ),
            ));
        }
        let call = EncodedCall {
            visit_back_edges: i64::try_from(entry.visit.back_edges()).unwrap_or(i64::MAX),
            visit_item: entry.visit.item_index().map_or(-1, i64::from),
            run_id: entry.run_id,
            step: entry.step,
            position: entry.position,
            tool: entry.tool,
            attempts: entry.attempts,
            output,
            error,
            fence: entry.fence.map(epoch),
        };
        let (reply, rx) = oneshot::channel();
        self.send_write(Write::Journal(call, reply)).await?;
        rx.await.map_err(|_| stopped())?
    }

    async fn recorded_call(
        &self,
        run_id: &RunId,
        step: &str,
        visit: Visit,
        position: u32,
    ) -> Result<Option<JournalEntry>, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.read(
            Read::Journal(run_id.clone(), step.to_owned(), visit, position, reply),
            rx,
        )
        .await
    }

    async fn request_approval(&self, approval: Approval) -> Result<Approval, StoreError> {
        if let Some(reason) = crate::state::too_deep(&approval.arguments) {
            return Err(crate::store::contract::unstorable_approval(
                &approval, &reason,
            ));
        }
        let (reply, rx) = oneshot::channel();
        self.send_write(Write::After(After::RequestApproval(
            Box::new(approval),
            reply,
        )))
        .await?;
        rx.await.map_err(|_| stopped())?
    }

    async fn approval(
        &self,
        run_id: &RunId,
        step: &str,
        visit: Visit,
        position: u32,
    ) -> Result<Option<Approval>, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.read(
            Read::Approval(run_id.clone(), step.to_owned(), visit, position, reply),
            rx,
        )
        .await
    }

    async fn approvals(&self, run_id: &RunId) -> Result<Vec<Approval>, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.read(Read::Approvals(run_id.clone(), reply), rx).await
    }

    async fn decide_approval(
        &self,
        run_id: &RunId,
        call_id: &str,
        decision: Decision,
    ) -> Result<Approval, ApprovalError> {
        let (reply, rx) = oneshot::channel();
        self.send_write(Write::After(After::DecideApproval(
            run_id.clone(),
            call_id.to_owned(),
            decision,
            millis(crate::state::now()),
            reply,
        )))
        .await?;
        rx.await.map_err(|_| stopped())?
    }

    async fn register_workflow(&self, info: WorkflowInfo) -> Result<(), StoreError> {
        let key = (info.name, info.fingerprint);
        let known =
            |registered: &std::collections::HashSet<(String, String)>| registered.contains(&key);
        if known(
            &self
                .registered
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        ) {
            return Ok(());
        }
        let steps = serde_json::to_string(&info.steps).map_err(|e| {
            StoreError::with_source(
                format!(
                    "sqlite store: cannot encode the steps of workflow `{}`",
                    key.0
                ),
                e,
            )
        })?;
        let (reply, rx) = oneshot::channel();
        self.send_write(Write::After(After::Register(
            key.0.clone(),
            key.1.clone(),
            steps,
            info.mermaid,
            reply,
        )))
        .await?;
        rx.await.map_err(|_| stopped())??;
        self.registered
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(key);
        Ok(())
    }
}

impl RunHistory for SqliteStore {
    async fn workflows(&self) -> Result<Vec<WorkflowInfo>, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.read(Read::Workflows(reply), rx).await
    }

    async fn steps(&self, run_id: &RunId) -> Result<Vec<HistoryEntry>, StoreError> {
        self.history(run_id).await
    }

    async fn calls(&self, run_id: &RunId) -> Result<Vec<JournalEntry>, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.read(Read::Calls(run_id.clone(), reply), rx).await
    }

    async fn prune(&self, policy: Prune, batch: u64) -> Result<u64, StoreError> {
        self.prune_batch(policy, i64::try_from(batch).unwrap_or(i64::MAX))
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

    async fn claim(
        &self,
        now: SystemTime,
        workflows: &[&str],
        limit: usize,
        worker: &str,
        until: SystemTime,
    ) -> Result<Vec<Lease>, StoreError> {
        if workflows.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let (reply, rx) = oneshot::channel();
        self.send_write(Write::After(After::Claim(
            writer::Claim {
                now: millis(now),
                workflows: workflows.iter().map(|w| (*w).to_owned()).collect(),
                limit,
                worker: worker.to_owned(),
                until: millis(until),
            },
            reply,
        )))
        .await?;
        rx.await.map_err(|_| stopped())?
    }

    async fn renew(&self, leases: &[Lease], until: SystemTime) -> Result<Vec<Lease>, StoreError> {
        if leases.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, rx) = oneshot::channel();
        self.send_write(Write::After(After::Renew(
            leases.to_vec(),
            millis(until),
            reply,
        )))
        .await?;
        rx.await.map_err(|_| stopped())?
    }

    async fn release(&self, lease: &Lease) -> Result<(), StoreError> {
        let (reply, rx) = oneshot::channel();
        self.send_write(Write::After(After::Release(lease.clone(), reply)))
            .await?;
        rx.await.map_err(|_| stopped())?
    }

    async fn fail(
        &self,
        run_id: &RunId,
        failure: &Failure,
        fence: Option<Fence>,
    ) -> Result<(), StoreError> {
        let (reply, rx) = oneshot::channel();
        self.send_write(Write::After(After::Fail(
            run_id.clone(),
            failure.clone(),
            fence,
            reply,
        )))
        .await?;
        rx.await.map_err(|_| stopped())?
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

pub(super) fn millis(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A fence as the `lease_epoch` column holds it.
pub(super) fn epoch(fence: Fence) -> i64 {
    i64::try_from(fence.epoch()).unwrap_or(i64::MAX)
}

pub(super) fn from_millis(ms: i64) -> SystemTime {
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

    /// A new directory for one test's files, removed when dropped.
    struct Dir(std::path::PathBuf);

    impl Dir {
        fn new() -> Self {
            let dir = std::env::temp_dir().join(format!("flow-sqlite-unit-{}", RunId::random()));
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Bytes of one WAL frame: a 24-byte header and a 4 KiB page.
    const FRAME: u64 = 24 + 4096;

    /// Saves `n` checkpoints of one run, each with 64 KiB of state (16 overflow pages, so at
    /// least 16 WAL frames per commit), and returns the WAL file's size.
    async fn wal_after(n: u64) -> u64 {
        let dir = Dir::new();
        let path = dir.0.join("wal.sqlite");
        let store = SqliteStore::open(&path).unwrap();
        for i in 0..n {
            // Different in every page from the last save's, which SQLite would not write again.
            let filler = format!("{i:016}").repeat(4 * 1024);
            let state = serde_json::json!({ "filler": filler });
            store
                .save(Checkpoint::new("run".into(), "w", "fp", "s", false, state))
                .await
                .unwrap();
        }
        let wal = std::fs::metadata(dir.0.join("wal.sqlite-wal"))
            .unwrap()
            .len();
        drop(store);
        wal
    }

    /// A lone run's commit does not checkpoint the log every 1,000 frames (SQLite's default),
    /// which made one step in ~160 pay two more `fsync`s.
    #[tokio::test]
    async fn the_wal_is_not_checkpointed_every_thousand_frames() {
        // At least 2,080 frames.
        let wal = wal_after(130).await;
        assert!(
            wal >= 2_000 * FRAME,
            "the WAL is {wal} bytes: it was checkpointed and written over before 2,000 frames"
        );
    }

    /// The log is still checkpointed, and so bounded: past 10,000 frames it is written over
    /// from its start.
    #[tokio::test]
    async fn the_wal_stays_near_ten_thousand_frames() {
        // At least 12,800 frames.
        let wal = wal_after(800).await;
        assert!(
            wal <= (u64::try_from(WAL_CHECKPOINT_FRAMES).unwrap() + 100) * FRAME,
            "the WAL is {wal} bytes: it was not checkpointed at 10,000 frames"
        );
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
