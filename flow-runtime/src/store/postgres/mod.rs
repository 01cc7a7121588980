//! [`PgStore`]: runs in a PostgreSQL database, which several processes can share.
//!
//! `schema` holds the tables and their ordered migrations, `writes` the writes (each one
//! transaction), `commit` the group commit of checkpoints, `reads` the reads.

mod commit;
mod reads;
mod schema;
mod writes;

use crate::error::{ControlError, StoreError, StoreErrorKind};
use crate::state::{CallRecord, RunId};
use crate::store::envelope::encode_envelope;
use crate::store::{
    Approval, ApprovalError, Checkpoint, Decision, Failure, Fence, HistoryEntry, JournalEntry,
    JournalResult, Lease, Prune, RunControl, RunFilter, RunHistory, RunInfo, RunQueue, RunStatus,
    Store, StoredEvent, WorkflowInfo,
};
use crate::tool::Visit;
use sqlx_postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;
use std::str::FromStr as _;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The default for [`PgStore::with_max_checkpoint_bytes`]: 1 MiB, as for `SqliteStore`.
const DEFAULT_MAX_CHECKPOINT_BYTES: usize = 1 << 20;

/// A [`Store`] in a PostgreSQL database (feature `postgres`): durable checkpoints on a
/// server that many processes can share.
///
/// ```no_run
/// use flow_runtime::prelude::*;
/// use flow_runtime::store::{PgStore, RunHistory, RunStatus};
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
/// // The tables are made (or brought up to date) on connecting.
/// let store = Arc::new(PgStore::connect("postgres://flow@localhost/flow").await?);
/// let ctx = Ctx::builder(()).run_id("r1").store(Arc::clone(&store)).build();
/// assert_eq!(greet::Workflow::run(&ctx, " Ada ".into()).await?, "hello, Ada");
///
/// let steps = store.steps(&"r1".into()).await?;
/// assert_eq!(steps.iter().map(|h| h.step.as_str()).collect::<Vec<_>>(), ["clean", "hello"]);
/// let run = store.status(&"r1".into()).await?.expect("stored");
/// assert_eq!((run.status, run.checkpoints), (RunStatus::Finished, 2));
/// # Ok(())
/// # }
/// ```
///
/// # What it guarantees
///
/// Everything the [store contract](crate::store#the-contract) says, as `SqliteStore` does it:
/// the same semantics, checked by the same conformance suite. Each write is one transaction;
/// a checkpoint writes the run's row with its history row, its step's calls and the removal of
/// the event it consumed in one statement, so after a crash the database holds the state
/// before the step or after it. Checkpoints go by group commit: those saved while the
/// previous batch is on its way are written together, in one statement and one commit, and
/// each caller gets its own run's outcome (one refused or rejected checkpoint fails only its
/// run). A write acknowledged with `Ok`
/// is committed, and so as durable as the server makes commits (`synchronous_commit = on`,
/// PostgreSQL's default: flushed to the WAL on disk). Run control, events and approvals read
/// a run's row and change it in one transaction that locks the row first, so concurrent
/// writers in other processes see it change once.
///
/// # Many processes
///
/// Any number of processes can open the same database: [`connect`](Self::connect) applies
/// the schema's ordered migrations under a PostgreSQL advisory lock, so workers starting at
/// once on a new database make the tables once, and any number of
/// [`Engine`](crate::state::Engine)s can run on it: each claims due runs with a lease in one
/// statement (`FOR UPDATE SKIP LOCKED`, so concurrent claims skip each other's rows instead of
/// waiting), and every write for a run it holds is fenced (see
/// [`RunQueue`](RunQueue#leases-and-fencing)).
///
/// # What is stored
///
/// The tables of `SqliteStore` with the types PostgreSQL has: `runs` (one row per run: its
/// latest state in the versioned JSON envelope, as `text`, its status and schedule), `history`
/// (one row per checkpoint), `calls` (each checkpoint's tool calls and output deliveries),
/// `events` (the inboxes), `journal` (the call journal), `workflows` and `approvals`. Times
/// are Unix milliseconds. The applied migrations are in sqlx's `_sqlx_migrations` table.
///
/// `Debug` shows the database's address without its password, and the size limit; errors
/// never carry the password either.
pub struct PgStore {
    pool: PgPool,
    /// The database's address with its password replaced, for `Debug` and messages.
    address: String,
    max_checkpoint_bytes: usize,
    /// The workflows (name, fingerprint) this handle has recorded: runs record their workflow
    /// at every start, and only the first reaches the database.
    registered: Mutex<HashSet<(String, String)>>,
    /// The listener of `RunQueue::wakeups`, started on first use.
    listener: std::sync::OnceLock<Listener>,
    /// The checkpoints on their way, written many runs' at a time.
    commits: std::sync::Arc<commit::GroupCommit>,
}

/// A task listening on the store's channel, telling a `watch` channel; stopped with the store.
struct Listener {
    hints: tokio::sync::watch::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Listens on `writes::CHANNEL` with a connection of its own, telling `hints` of every
/// notification; reconnects after a second when the connection fails.
async fn listen(pool: PgPool, hints: tokio::sync::watch::Sender<()>) {
    loop {
        match sqlx_postgres::PgListener::connect_with(&pool).await {
            Ok(mut listener) => match listener.listen(writes::CHANNEL).await {
                Ok(()) => loop {
                    match listener.recv().await {
                        Ok(_) => {
                            hints.send_replace(());
                        }
                        Err(error) => {
                            tracing::warn!(%error, "postgres store: lost the wake-up channel; polling until it is back");
                            break;
                        }
                    }
                },
                Err(error) => {
                    tracing::warn!(%error, "postgres store: cannot listen for wake-ups");
                }
            },
            Err(error) => {
                tracing::warn!(%error, "postgres store: cannot connect to listen for wake-ups");
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

impl fmt::Debug for PgStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgStore")
            .field("address", &self.address)
            .field("max_checkpoint_bytes", &self.max_checkpoint_bytes)
            .finish_non_exhaustive()
    }
}

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
    trace: Option<String>,
    at: i64,
    /// The writer's lease epoch (see `Checkpoint::fence`).
    fence: Option<i64>,
    /// The checkpoint starts a new run (see `Checkpoint::new_run`).
    new_run: bool,
}

/// A call journal entry encoded on the caller's task, ready to write.
struct EncodedCall {
    run_id: RunId,
    step: String,
    visit_back_edges: i64,
    /// -1 for a visit that is not an item of a `workers` step.
    visit_item: i64,
    position: u32,
    tool: String,
    attempts: u32,
    output: Option<String>,
    error: Option<String>,
    /// The writer's lease epoch (see `JournalEntry::fence`).
    fence: Option<i64>,
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/database`; a
    /// Unix socket's directory as `?host=/path`), with a pool of connections, and brings its
    /// tables up to date.
    ///
    /// # Errors
    ///
    /// The address is not a PostgreSQL URL, the server cannot be reached
    /// ([`StoreErrorKind::Unavailable`]), refuses the connection, or the database was made by
    /// a newer version of this store. The message names the address without its password.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let address = redact(url);
        let options = PgConnectOptions::from_str(url).map_err(|e| {
            // The parser's message is kept only if it does not quote the user information.
            let why = e.to_string();
            let why = match userinfo(url) {
                Some((start, at)) if why.contains(&url[start..at]) => String::new(),
                _ if password(url).is_some_and(|p| why.contains(p)) => String::new(),
                _ => format!(" ({why})"),
            };
            StoreError::new(format!(
                "postgres store `{}`: not a PostgreSQL URL{why}; write \
                 `postgres://user:password@host:port/database` (with `/`, `?`, `@` and `#` in \
                 the password percent-encoded)",
                redact_unparsed(url)
            ))
        })?;
        // A worker stopped inside a transaction (paused, swapped out) holds its rows' locks:
        // the server ends such a session, so that other workers' claims, which skip locked
        // rows, get those runs once their leases expire.
        //
        // Generic plans: the statement that writes a batch of checkpoints takes its rows as
        // arrays, and PostgreSQL's default would plan it again at every execution for the
        // arrays' lengths, a cost larger than the write's own on a busy worker.
        let options = options.options([
            ("idle_in_transaction_session_timeout", "10s"),
            ("plan_cache_mode", "force_generic_plan"),
        ]);
        let cannot = |e| db_error(format!("postgres store `{address}`: cannot connect"), e);
        // One connection first, alone: a server that is not there, or that refuses us, fails
        // now, where the pool would try again for its acquire timeout (30 s).
        let probe = <PgConnection as sqlx_core::connection::Connection>::connect_with(&options)
            .await
            .map_err(cannot)?;
        drop(sqlx_core::connection::Connection::close(probe).await);
        let pool = PgPoolOptions::new()
            .connect_with(options)
            .await
            .map_err(cannot)?;
        Self::open(pool, address).await
    }

    /// A store on the connections of `pool` (sqlx's `PgPool`), whose tables are brought up to
    /// date first.
    ///
    /// [`connect`](Self::connect) sets `plan_cache_mode = force_generic_plan` on its
    /// connections; set it on the pool's too
    /// (`PgConnectOptions::options([("plan_cache_mode", "force_generic_plan")])`), or
    /// PostgreSQL plans the statement that writes a batch of checkpoints again at every
    /// execution, which costs a fifth or more of a busy worker's throughput.
    ///
    /// # Errors
    ///
    /// The server cannot be reached, or the database was made by a newer version of this
    /// store.
    pub async fn from_pool(pool: PgPool) -> Result<Self, StoreError> {
        let options = pool.connect_options();
        let address = format!(
            "postgres://{}@{}:{}/{}",
            options.get_username(),
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or_default()
        );
        Self::open(pool, address).await
    }

    async fn open(pool: PgPool, address: String) -> Result<Self, StoreError> {
        schema::migrator().run(&pool).await.map_err(|e| {
            let kind = match &e {
                sqlx_core::migrate::MigrateError::Execute(e) if unavailable(e) => {
                    StoreErrorKind::Unavailable
                }
                _ => StoreErrorKind::Other,
            };
            StoreError::with_source(
                format!(
                    "postgres store `{address}`: cannot bring the schema up to date (a database \
                     made by a newer flow is refused)"
                ),
                e,
            )
            .kind_of(kind)
        })?;
        Ok(Self {
            pool,
            address,
            max_checkpoint_bytes: DEFAULT_MAX_CHECKPOINT_BYTES,
            registered: Mutex::default(),
            listener: std::sync::OnceLock::new(),
            commits: std::sync::Arc::default(),
        })
    }

    /// Sets the largest checkpoint the store accepts, in bytes of its JSON envelope (1 MiB
    /// unless set), and the largest call journal entry. A larger one fails before anything is
    /// written: keep large data outside the state and store a reference to it.
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

    /// The pool of connections the store uses.
    #[must_use]
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Deletes finished and cancelled runs and their history, as `policy` says, all at once,
    /// and returns how many runs it deleted. Other runs are kept whatever their age. For a
    /// large backlog, [`RunHistory::prune`] goes in batches.
    ///
    /// # Errors
    ///
    /// The database could not be written.
    pub async fn prune_finished(&self, policy: Prune) -> Result<u64, StoreError> {
        writes::prune(&self.pool, policy, None).await
    }

    async fn conn(
        &self,
    ) -> Result<sqlx_core::pool::PoolConnection<sqlx_postgres::Postgres>, StoreError> {
        self.pool.acquire().await.map_err(|e| {
            db_error(
                format!("postgres store `{}`: no connection", self.address),
                e,
            )
        })
    }

    /// Runs a read on a pooled connection.
    async fn read<T>(
        &self,
        f: impl AsyncFnOnce(&mut PgConnection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.conn().await?;
        f(&mut conn).await
    }

    fn encode(&self, checkpoint: Checkpoint) -> Result<Encoded, StoreError> {
        let envelope = encode_envelope(&checkpoint, self.max_checkpoint_bytes, "PgStore")?;
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

impl Store for PgStore {
    async fn save(&self, checkpoint: Checkpoint) -> Result<(), StoreError> {
        let encoded = self.encode(checkpoint)?;
        self.commits.save(&self.pool, encoded).await
    }

    async fn latest(&self, run_id: &RunId) -> Result<Option<Checkpoint>, StoreError> {
        self.read(async |conn| reads::latest(conn, run_id).await)
            .await
    }

    async fn load_to_resume(
        &self,
        run_id: &RunId,
        fingerprint: &str,
    ) -> Result<Option<Checkpoint>, StoreError> {
        writes::load_to_resume(&self.pool, run_id, fingerprint, millis(crate::state::now())).await
    }

    async fn status(&self, run_id: &RunId) -> Result<Option<RunInfo>, StoreError> {
        self.read(async |conn| reads::status(conn, run_id).await)
            .await
    }

    async fn mark_incompatible(&self, run_id: &RunId, fingerprint: &str) -> Result<(), StoreError> {
        writes::mark_incompatible(&self.pool, run_id, fingerprint).await
    }

    async fn wait(
        &self,
        run_id: &RunId,
        step: &str,
        event: &str,
        until: SystemTime,
        fence: Option<Fence>,
    ) -> Result<(), StoreError> {
        writes::wait(&self.pool, run_id, step, event, millis(until), fence).await
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
        writes::send_event(&self.pool, run_id, name, &payload.to_string()).await
    }

    async fn next_event(
        &self,
        run_id: &RunId,
        name: &str,
    ) -> Result<Option<StoredEvent>, StoreError> {
        self.read(async |conn| reads::next_event(conn, run_id, name).await)
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
                     the tool, or raise the limit with `PgStore::with_max_checkpoint_bytes`",
                    entry.run_id, entry.position, entry.step, entry.tool, self.max_checkpoint_bytes
                ),
            ));
        }
        let call = EncodedCall {
            visit_back_edges: reads::back_edges_column(entry.visit),
            visit_item: reads::item_column(entry.visit),
            run_id: entry.run_id,
            step: entry.step,
            position: entry.position,
            tool: entry.tool,
            attempts: entry.attempts,
            output,
            error,
            fence: entry.fence.map(epoch),
        };
        writes::record_call(&self.pool, &call).await
    }

    async fn recorded_call(
        &self,
        run_id: &RunId,
        step: &str,
        visit: Visit,
        position: u32,
    ) -> Result<Option<JournalEntry>, StoreError> {
        self.read(async |conn| reads::recorded_call(conn, run_id, step, visit, position).await)
            .await
    }

    async fn request_approval(&self, approval: Approval) -> Result<Approval, StoreError> {
        if let Some(reason) = crate::state::too_deep(&approval.arguments) {
            return Err(crate::store::contract::unstorable_approval(
                &approval, &reason,
            ));
        }
        writes::request_approval(&self.pool, &approval).await
    }

    async fn approval(
        &self,
        run_id: &RunId,
        step: &str,
        visit: Visit,
        position: u32,
    ) -> Result<Option<Approval>, StoreError> {
        self.read(async |conn| reads::approval(conn, run_id, step, visit, position).await)
            .await
    }

    async fn approvals(&self, run_id: &RunId) -> Result<Vec<Approval>, StoreError> {
        self.read(async |conn| reads::approvals(conn, run_id).await)
            .await
    }

    async fn decide_approval(
        &self,
        run_id: &RunId,
        call_id: &str,
        decision: Decision,
    ) -> Result<Approval, ApprovalError> {
        writes::decide_approval(
            &self.pool,
            run_id,
            call_id,
            decision,
            millis(crate::state::now()),
        )
        .await
    }

    async fn register_workflow(&self, info: WorkflowInfo) -> Result<(), StoreError> {
        let key = (info.name, info.fingerprint);
        if self
            .registered
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(&key)
        {
            return Ok(());
        }
        let steps = serde_json::to_string(&info.steps).map_err(|e| {
            StoreError::with_source(
                format!(
                    "postgres store: cannot encode the steps of workflow `{}`",
                    key.0
                ),
                e,
            )
        })?;
        writes::register(&self.pool, &key.0, &key.1, &steps, &info.mermaid).await?;
        self.registered
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(key);
        Ok(())
    }
}

impl RunHistory for PgStore {
    async fn workflows(&self) -> Result<Vec<WorkflowInfo>, StoreError> {
        self.read(async |conn| reads::workflows(conn).await).await
    }

    async fn steps(&self, run_id: &RunId) -> Result<Vec<HistoryEntry>, StoreError> {
        self.read(async |conn| reads::history(conn, run_id).await)
            .await
    }

    async fn calls(&self, run_id: &RunId) -> Result<Vec<JournalEntry>, StoreError> {
        self.read(async |conn| reads::calls(conn, run_id).await)
            .await
    }

    /// Each batch is one `DELETE` of at most `batch` runs, with their history, calls,
    /// events and journal; rows another pruner is deleting at the same time are skipped, not
    /// waited for.
    async fn prune(&self, policy: Prune, batch: u64) -> Result<u64, StoreError> {
        writes::prune(
            &self.pool,
            policy,
            Some(i64::try_from(batch).unwrap_or(i64::MAX)),
        )
        .await
    }
}

impl RunQueue for PgStore {
    fn wakeups(&self) -> Option<tokio::sync::watch::Receiver<()>> {
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let listener = self.listener.get_or_init(|| {
            let (hints, _) = tokio::sync::watch::channel(());
            let task = runtime.spawn(listen(self.pool.clone(), hints.clone()));
            Listener { hints, task }
        });
        Some(listener.hints.subscribe())
    }

    async fn due(
        &self,
        now: SystemTime,
        workflows: &[&str],
        limit: usize,
    ) -> Result<Vec<RunId>, StoreError> {
        let workflows: Vec<String> = workflows.iter().map(|w| (*w).to_owned()).collect();
        self.read(async |conn| reads::due(conn, millis(now), &workflows, limit).await)
            .await
    }

    async fn next_wake(&self, after: SystemTime) -> Result<Option<SystemTime>, StoreError> {
        self.read(async |conn| reads::next_wake(conn, millis(after)).await)
            .await
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
        let workflows: Vec<String> = workflows.iter().map(|w| (*w).to_owned()).collect();
        writes::claim(
            &self.pool,
            millis(now),
            &workflows,
            limit,
            worker,
            millis(until),
        )
        .await
    }

    async fn renew(&self, leases: &[Lease], until: SystemTime) -> Result<Vec<Lease>, StoreError> {
        if leases.is_empty() {
            return Ok(Vec::new());
        }
        writes::renew(&self.pool, leases, millis(until)).await
    }

    async fn release(&self, lease: &Lease) -> Result<(), StoreError> {
        writes::release(&self.pool, lease).await
    }

    async fn fail(
        &self,
        run_id: &RunId,
        failure: &Failure,
        fence: Option<Fence>,
    ) -> Result<(), StoreError> {
        writes::fail(&self.pool, run_id, failure, fence).await
    }
}

impl RunControl for PgStore {
    async fn list(&self, filter: &RunFilter) -> Result<Vec<RunInfo>, StoreError> {
        self.read(async |conn| reads::list(conn, filter).await)
            .await
    }

    async fn pause(&self, run_id: &RunId) -> Result<RunInfo, ControlError> {
        writes::control(&self.pool, run_id, RunStatus::Paused).await
    }

    async fn unpause(&self, run_id: &RunId) -> Result<RunInfo, ControlError> {
        writes::control(&self.pool, run_id, RunStatus::Running).await
    }

    async fn cancel(&self, run_id: &RunId) -> Result<RunInfo, ControlError> {
        writes::control(&self.pool, run_id, RunStatus::Cancelled).await
    }
}

/// Whether a database error means the server is out of reach (a retry may succeed).
fn unavailable(e: &sqlx_core::Error) -> bool {
    matches!(
        e,
        sqlx_core::Error::Io(_)
            | sqlx_core::Error::PoolTimedOut
            | sqlx_core::Error::PoolClosed
            | sqlx_core::Error::WorkerCrashed
    )
}

/// A store error caused by a database error: [`StoreErrorKind::Unavailable`] when the server
/// is out of reach.
fn db_error(message: impl Into<String>, e: sqlx_core::Error) -> StoreError {
    let kind = if unavailable(&e) {
        StoreErrorKind::Unavailable
    } else {
        StoreErrorKind::Other
    };
    StoreError::with_source(message, e).kind_of(kind)
}

fn read_error(run_id: &RunId, e: sqlx_core::Error) -> StoreError {
    db_error(format!("run `{run_id}`: could not read the store"), e)
}

fn write_error(run_id: &RunId, what: &str, e: sqlx_core::Error) -> StoreError {
    db_error(format!("run `{run_id}`: could not {what}"), e)
}

/// Free text (a failure's reason, a call's error, a name shown to people) as PostgreSQL's
/// `text` takes it: every NUL, which `text` refuses (`22021 invalid byte sequence`), replaced
/// by U+FFFD. Without it a step whose error holds a NUL could not be marked failed, and would
/// run again and again. Not for keys (run ids, call ids): two of them would become one, so a
/// NUL there is the server's refusal, a typed error.
fn text(s: &str) -> Cow<'_, str> {
    if s.contains('\0') {
        Cow::Owned(s.replace('\0', "\u{fffd}"))
    } else {
        Cow::Borrowed(s)
    }
}

/// Where `url`'s user information ends (its last `@`), as an offset in `url`, and where it
/// starts (after `://`). A password may hold `/`, `?` and `@` unencoded, so the user
/// information runs to the last `@` before the query, and the query is the first `?` after the
/// first `@`. An `@` in the path, or in a query with no `@` before it, makes it reach too far:
/// more is masked, never less.
fn userinfo(url: &str) -> Option<(usize, usize)> {
    let start = url.find("://")? + 3;
    let rest = &url[start..];
    let first = rest.find('@')?;
    let query = rest[first..].find('?').map_or(rest.len(), |q| first + q);
    let at = rest[..query].rfind('@')?;
    Some((start, start + at))
}

/// The password in `url`'s user information, if any.
fn password(url: &str) -> Option<&str> {
    let (start, at) = userinfo(url)?;
    let colon = start + url[start..at].find(':')?;
    Some(&url[colon + 1..at])
}

/// `url` with the password of its user information, and of a `password=` parameter,
/// replaced by `***`.
fn redact(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(password) = password(url) {
        // The password is a slice of `url`: its offset there is its offset in `out`.
        let start = password.as_ptr() as usize - url.as_ptr() as usize;
        out.replace_range(start..start + password.len(), "***");
    }
    if let Some(query) = out.find('?') {
        let (head, params) = out.split_at(query + 1);
        let params: Vec<String> = params
            .split('&')
            .map(|param| match param.split_once('=') {
                Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
                _ => param.to_owned(),
            })
            .collect();
        out = format!("{head}{}", params.join("&"));
    }
    out
}

/// A URL that does not parse, as [`redact`] shows it, but with its whole authority (user
/// information, host and port) masked when it has user information: where its password ends
/// cannot be known for sure.
fn redact_unparsed(url: &str) -> String {
    let redacted = redact(url);
    let Some((start, at)) = userinfo(&redacted) else {
        return redacted;
    };
    let end = redacted[at..]
        .find(['/', '?'])
        .map_or(redacted.len(), |i| at + i);
    format!("{}***{}", &redacted[..start], &redacted[end..])
}

fn millis(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A fence as the `lease_epoch` column holds it.
fn epoch(fence: Fence) -> i64 {
    i64::try_from(fence.epoch()).unwrap_or(i64::MAX)
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
        check::<PgStore>();
    }

    #[test]
    fn passwords_are_redacted() {
        for (url, expected) in [
            (
                "postgres://flow:s3cret@db:5432/runs",
                "postgres://flow:***@db:5432/runs",
            ),
            (
                "postgres://flow:p@ss:w@rd@db/runs?sslmode=disable",
                "postgres://flow:***@db/runs?sslmode=disable",
            ),
            (
                "postgres://flow@/runs?host=/tmp/pg&password=s3cret",
                "postgres://flow@/runs?host=/tmp/pg&password=***",
            ),
            ("postgres://db/runs", "postgres://db/runs"),
            ("not a url", "not a url"),
            // Unencoded `/`, `?` and `@` in the password.
            (
                "postgres://flow:Ab/9+xY=@host/runs",
                "postgres://flow:***@host/runs",
            ),
            (
                "postgres://flow:a?b=c@host:5432/runs?sslmode=disable",
                "postgres://flow:***@host:5432/runs?sslmode=disable",
            ),
            (
                "postgres://flow:p/q?r@s@host/runs?application_name=x",
                "postgres://flow:***@host/runs?application_name=x",
            ),
            // An `@` in the query only: no user information, nothing taken for a password.
            (
                "postgres://flow@host/runs?application_name=a@b",
                "postgres://flow@host/runs?application_name=a@b",
            ),
        ] {
            assert_eq!(redact(url), expected);
        }
        assert_eq!(
            redact_unparsed("postgres://flow:Ab/9+xY=@host:5432/runs?sslmode=disable"),
            "postgres://***/runs?sslmode=disable"
        );
        assert_eq!(
            redact_unparsed("postgres://[::1/runs"),
            "postgres://[::1/runs"
        );
    }

    /// A URL that does not parse: the error does not say the password. (A server that
    /// refuses the connection: `tests/tests/durable/pg_store.rs`, against a real server.)
    #[tokio::test]
    async fn parse_errors_do_not_carry_the_password() {
        let e = PgStore::connect("postgres://flow:s3cret@[::1/runs")
            .await
            .unwrap_err();
        let text = format!("{e}\n{e:?}");
        assert!(!text.contains("s3cret"), "{text}");
        assert!(text.contains("postgres://***/runs"), "{text}");
        // A password with an unencoded `/` or `?`, which the parser takes for the path's or
        // the query's start.
        for url in [
            "postgres://flow:Ab/9+xY=@localhost/runs",
            "postgres://flow:Ab?9+xY=@localhost/runs",
        ] {
            let e = PgStore::connect(url).await.unwrap_err();
            let text = format!("{e}\n{e:?}");
            assert!(!text.contains("9+xY"), "{text}");
            assert!(text.contains("not a PostgreSQL URL"), "{text}");
        }
    }
}
