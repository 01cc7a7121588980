//! Group commit: the checkpoints that a [`PgStore`](super::PgStore)'s runs save at about the
//! same time are written together, in one statement and one transaction, so that a worker
//! with many runs in flight pays one round trip and one commit for many steps.
//!
//! A checkpoint joins the queue and its caller waits for its own result. A writer task
//! ([`WRITERS`] at most), started on the caller's tokio runtime when there is work and ending
//! when the queue is empty, takes what is queued (up to [`MAX_BATCH`] checkpoints or
//! [`MAX_BATCH_BYTES`], one per run, in the order of their run ids) and writes it with
//! `writes::SAVE`. Nothing waits for a batch to fill: a checkpoint saved when no writer is
//! busy is written at once, alone, and those saved while a batch is on its way form the next
//! one.
//!
//! Each caller learns its own run's outcome: written, or refused for its run alone (a lost
//! lease, a stopped run, another workflow's run id), as if written by itself; the written
//! ones are told first. If the server rejects the statement for one checkpoint's data,
//! nothing of it was written and each checkpoint is written again alone, so one bad
//! checkpoint fails only its own run; a deadlock or serialization failure retries the batch
//! once. Any other failure (the connection lost, a timeout) is every caller's error, as it
//! would be for a checkpoint written alone.
//!
//! Row locks: a batch locks its runs' rows in the order of their ids, as lease renewals do
//! (`writes::renew`), so the two never wait for each other in a cycle.

use super::{Encoded, writes};
use crate::error::StoreError;
use sqlx_postgres::PgPool;
use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::oneshot;

/// How many batches of one store may be on their way at once. One: the next batch forms
/// while one is written, so batches grow with the server's latency; with two, `fleet.py`'s
/// two workers spent about a tenth more of the server's CPU per step, in smaller batches.
const WRITERS: usize = 1;
/// The most checkpoints in one batch.
const MAX_BATCH: usize = 256;
/// The most bytes of state in one batch (a batch always takes at least one checkpoint).
const MAX_BATCH_BYTES: usize = 8 << 20;

/// The checkpoints waiting to be written, and how many writers are at work.
#[derive(Default)]
pub(super) struct GroupCommit {
    queue: Mutex<Queue>,
}

#[derive(Default)]
struct Queue {
    pending: VecDeque<Pending>,
    writers: usize,
}

/// One checkpoint and where its outcome goes.
struct Pending {
    checkpoint: Encoded,
    done: oneshot::Sender<Result<(), StoreError>>,
}

impl Pending {
    fn tell(self, outcome: Result<(), StoreError>) {
        // A caller that stopped waiting has nothing to be told.
        let _ = self.done.send(outcome);
    }
}

impl GroupCommit {
    /// Writes `checkpoint` with those other runs save meanwhile; returns once it is written
    /// (committed) or refused.
    pub(super) async fn save(
        self: &Arc<Self>,
        pool: &PgPool,
        checkpoint: Encoded,
    ) -> Result<(), StoreError> {
        // Not on a tokio runtime: no writer task can start, so this one is written alone.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            let (done, outcome) = oneshot::channel();
            write(pool, vec![Pending { checkpoint, done }]).await;
            return outcome.await.unwrap_or_else(|_| Err(stopped()));
        };
        let (done, outcome) = oneshot::channel();
        let writer = {
            let mut queue = self.lock();
            queue.pending.push_back(Pending { checkpoint, done });
            (queue.writers < WRITERS).then(|| {
                queue.writers += 1;
                // Made before the task, so that it counts the writer out even if the task
                // is dropped before it first runs (spawned on a runtime shutting down).
                Writer {
                    commit: Arc::clone(self),
                    counted_out: false,
                }
            })
        };
        if let Some(writer) = writer {
            runtime.spawn(writer.drain(pool.clone()));
        }
        outcome.await.unwrap_or_else(|_| Err(stopped()))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The next batch: the oldest checkpoints queued whose callers still wait, at most one
    /// per run (a run's next checkpoint stays queued for the next batch), within the batch's
    /// limits, sorted by run id. An empty batch counts the writer out, under the same lock,
    /// so that a checkpoint queued after it starts a writer of its own.
    fn take(&self) -> Vec<Pending> {
        let mut queue = self.lock();
        let mut batch = Vec::new();
        let mut runs = HashSet::new();
        let mut bytes = 0;
        let mut kept = VecDeque::new();
        while let Some(next) = queue.pending.pop_front() {
            // Its caller is gone (its task was aborted): not written after it gave up.
            if next.done.is_closed() {
                continue;
            }
            let size = next.checkpoint.envelope.len();
            if batch.len() == MAX_BATCH || (!batch.is_empty() && bytes + size > MAX_BATCH_BYTES) {
                queue.pending.push_front(next);
                break;
            }
            if runs.insert(next.checkpoint.run_id.clone()) {
                bytes += size;
                batch.push(next);
            } else {
                kept.push_back(next);
            }
        }
        while let Some(next) = kept.pop_back() {
            queue.pending.push_front(next);
        }
        if batch.is_empty() {
            queue.writers -= 1;
        }
        batch.sort_unstable_by(|a, b| a.checkpoint.run_id.cmp(&b.checkpoint.run_id));
        batch
    }
}

/// A writer, counted in [`Queue::writers`] until it finds the queue empty, or until it is
/// dropped (never run, or stopped mid-batch with its runtime, or panicked). Dropped with no
/// other writer left, it fails the callers still queued (their senders dropped) rather than
/// leave them waiting for a writer that may never come.
struct Writer {
    commit: Arc<GroupCommit>,
    counted_out: bool,
}

impl Writer {
    /// Writes batches until the queue is empty.
    async fn drain(mut self, pool: PgPool) {
        loop {
            let batch = self.commit.take();
            if batch.is_empty() {
                self.counted_out = true;
                return;
            }
            write(&pool, batch).await;
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if self.counted_out {
            return;
        }
        let mut queue = self.commit.lock();
        queue.writers = queue.writers.saturating_sub(1);
        if queue.writers == 0 {
            queue.pending.clear();
        }
    }
}

/// What a caller is told when its checkpoint's writer stopped before telling it.
fn stopped() -> StoreError {
    StoreError::new(
        "postgres store: the checkpoint's writer stopped (its runtime shut down, or it panicked) \
         before it learnt whether the checkpoint was written; the run resumes from its latest \
         stored checkpoint",
    )
}

/// Writes the checkpoints of distinct runs, sorted by run id, in one statement, and tells each
/// caller its outcome.
async fn write(pool: &PgPool, batch: Vec<Pending>) {
    let mut retried = false;
    loop {
        let checkpoints: Vec<&Encoded> = batch.iter().map(|p| &p.checkpoint).collect();
        let error = match writes::save_many(pool, &checkpoints).await {
            Ok(rows) => return tell(pool, batch, &rows).await,
            Err(error) => error,
        };
        match error
            .as_database_error()
            .and_then(sqlx_core::error::DatabaseError::code)
        {
            // The server refused one checkpoint's data (class 22, data exception; class 23,
            // integrity constraint violation), so nothing of the batch was written: each
            // checkpoint alone, so that a bad one fails only its own run.
            Some(code) if batch.len() > 1 && (code.starts_with("22") || code.starts_with("23")) => {
                for pending in batch {
                    Box::pin(write(pool, vec![pending])).await;
                }
                return;
            }
            // Serialization failure, deadlock: nothing was written; once more.
            Some(code) if !retried && (code == "40001" || code == "40P01") => retried = true,
            _ => return fail(batch, error),
        }
    }
}

/// Tells the callers of a written batch: first those whose checkpoints `rows` has (written),
/// then the others (refused; why is read in one query), then wakes listening engines if a
/// written checkpoint started a run due at once.
async fn tell(pool: &PgPool, batch: Vec<Pending>, rows: &[(String, i64)]) {
    let written: std::collections::HashMap<&str, i64> =
        rows.iter().map(|(run, n)| (run.as_str(), *n)).collect();
    let mut due = false;
    let mut refused = Vec::new();
    for pending in batch {
        match written.get(pending.checkpoint.run_id.as_str()) {
            Some(&n) => {
                due |= writes::starts_due_run(&pending.checkpoint, n);
                pending.tell(Ok(()));
            }
            None => refused.push(pending),
        }
    }
    if !refused.is_empty() {
        let checkpoints: Vec<&Encoded> = refused.iter().map(|p| &p.checkpoint).collect();
        let errors = writes::refusals(pool, &checkpoints).await;
        for (pending, error) in refused.into_iter().zip(errors) {
            pending.tell(Err(error));
        }
    }
    if due {
        writes::hint(pool).await;
    }
}

/// Tells every caller of `batch` that `error` stopped the statement that held its checkpoint,
/// each with its own run and step and the same kind (a retry may find the checkpoint written,
/// as for one written alone).
fn fail(batch: Vec<Pending>, error: sqlx_core::Error) {
    let message = error.to_string();
    let mut batch = batch.into_iter();
    let Some(head) = batch.next() else {
        return;
    };
    let first = writes::save_error(&head.checkpoint, error);
    let kind = first.kind();
    head.tell(Err(first));
    for pending in batch {
        let error = StoreError::of_kind(
            kind,
            format!(
                "run `{}`: could not write the checkpoint after step `{}`: {message}",
                pending.checkpoint.run_id, pending.checkpoint.step
            ),
        );
        pending.tell(Err(error));
    }
}
