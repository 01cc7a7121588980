//! Group commit: the checkpoints that a [`PgStore`](super::PgStore)'s runs save at about the
//! same time are written together, in one statement and one transaction, so that a worker
//! with many runs in flight pays one round trip and one commit for many steps.
//!
//! A checkpoint joins the queue and its caller waits for its own result. A writer task
//! ([`WRITERS`] at most), started on the caller's tokio runtime when there is work and ending
//! when the queue is empty, takes what is queued (up to [`MAX_BATCH`] checkpoints
//! or [`MAX_BATCH_BYTES`], one per run) and write it with `writes::SAVE`. Nothing waits for a
//! batch to fill: a checkpoint saved when no writer is busy is written at once, alone, and
//! those saved while a batch is on its way form the next one.
//!
//! Each caller learns its own run's outcome: written, or refused for its run alone (a lost
//! lease, a stopped run, another workflow's run id), as if written by itself. If the server
//! rejects the whole statement, nothing of it was written and each checkpoint is written
//! again alone, so one bad checkpoint fails only its own run. Any other failure (the
//! connection lost) is every caller's error, as it would be for a checkpoint written alone.

use super::{Encoded, writes};
use crate::error::StoreError;
use sqlx_postgres::PgPool;
use std::collections::{HashMap, HashSet, VecDeque};
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
            return write(pool, vec![&checkpoint]).await.pop().unwrap_or(Ok(()));
        };
        let (done, outcome) = oneshot::channel();
        let start = {
            let mut queue = self.lock();
            queue.pending.push_back(Pending { checkpoint, done });
            let start = queue.writers < WRITERS;
            if start {
                queue.writers += 1;
            }
            start
        };
        if start {
            runtime.spawn(Arc::clone(self).drain(pool.clone()));
        }
        outcome.await.unwrap_or_else(|_| {
            Err(StoreError::new(
                "postgres store: the checkpoint's writer stopped (its runtime shut down) before \
                 it learnt whether the checkpoint was written; the run resumes from its latest \
                 stored checkpoint",
            ))
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A writer: writes batches until the queue is empty.
    async fn drain(self: Arc<Self>, pool: PgPool) {
        let mut writer = Writer {
            commit: &self,
            counted_out: false,
        };
        loop {
            let batch = self.take();
            if batch.is_empty() {
                writer.counted_out = true;
                return;
            }
            let outcomes = write(&pool, batch.iter().map(|p| &p.checkpoint).collect()).await;
            for (pending, outcome) in batch.into_iter().zip(outcomes) {
                // A caller that stopped waiting has nothing to be told.
                let _ = pending.done.send(outcome);
            }
        }
    }

    /// The next batch: the oldest checkpoints queued, at most one per run (a run's next
    /// checkpoint stays queued for the next batch), within the batch's limits. An empty batch
    /// counts this writer out, under the same lock, so that a checkpoint queued after it
    /// starts a writer of its own.
    fn take(&self) -> Vec<Pending> {
        let mut queue = self.lock();
        let mut batch = Vec::new();
        let mut runs = HashSet::new();
        let mut bytes = 0;
        let mut kept = VecDeque::new();
        while let Some(next) = queue.pending.pop_front() {
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
        batch
    }
}

/// Counts a writer out if it ends before finding the queue empty: dropped mid-batch with its
/// runtime. The callers of the batch it held are told by their dropped senders; if no writer
/// is left, so are those still queued, rather than wait for a writer that may never come.
struct Writer<'a> {
    commit: &'a GroupCommit,
    counted_out: bool,
}

impl Drop for Writer<'_> {
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

/// Writes the checkpoints of distinct runs in one statement, and says each one's outcome, in
/// order.
async fn write(pool: &PgPool, batch: Vec<&Encoded>) -> Vec<Result<(), StoreError>> {
    match writes::save_many(pool, &batch).await {
        Ok(rows) => {
            let written: HashMap<String, i64> = rows.into_iter().collect();
            let mut outcomes = Vec::with_capacity(batch.len());
            let mut due = false;
            for checkpoint in &batch {
                match written.get(checkpoint.run_id.as_str()) {
                    Some(&n) => {
                        due |= writes::starts_due_run(checkpoint, n);
                        outcomes.push(Ok(()));
                    }
                    None => outcomes.push(Err(writes::refusal(pool, checkpoint).await)),
                }
            }
            if due {
                writes::hint(pool).await;
            }
            outcomes
        }
        // The server refused the statement, so nothing of it was written: each checkpoint
        // alone, so that one bad checkpoint fails only its own run.
        Err(sqlx_core::Error::Database(_)) if batch.len() > 1 => {
            let mut outcomes = Vec::with_capacity(batch.len());
            for checkpoint in batch {
                outcomes.extend(Box::pin(write(pool, vec![checkpoint])).await);
            }
            outcomes
        }
        // The connection failed, or the server's answer was lost: every caller's error, with
        // the same kind (a retry may find the checkpoint written, as for one written alone).
        Err(error) => {
            let Some((head, rest)) = batch.split_first() else {
                return Vec::new();
            };
            let message = error.to_string();
            let first = writes::save_error(head, error);
            let kind = first.kind();
            let mut outcomes = vec![Err(first)];
            outcomes.extend(rest.iter().map(|checkpoint| {
                Err(StoreError::of_kind(
                    kind,
                    format!(
                        "run `{}`: could not write the checkpoint after step `{}`: {message}",
                        checkpoint.run_id, checkpoint.step
                    ),
                ))
            }));
            outcomes
        }
    }
}
