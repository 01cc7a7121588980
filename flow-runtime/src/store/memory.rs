//! [`MemoryStore`]: every checkpoint of every run in memory.

use crate::error::{ControlError, StoreError};
use crate::state::RunId;
use crate::store::contract::{
    closed_inbox, conflict, unknown_run, unstorable, unstorable_approval, unstorable_call,
    unstorable_event,
};
use crate::store::control::refused;
use crate::store::queue::lease_lost;
use crate::store::{
    APPROVAL_EVENT, Approval, ApprovalError, Checkpoint, Decision, Failure, Fence, HistoryEntry,
    JournalEntry, JournalResult, Lease, Prune, RunControl, RunFilter, RunHistory, RunInfo,
    RunStatus, Store, StoredEvent, WorkflowInfo, decidable,
};
use crate::tool::Visit;
use std::cmp::Reverse;
use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::SystemTime;

/// A [`Store`] in memory: keeps every checkpoint of every run, in order. For tests, and for
/// runs that need no durability. It offers [`RunControl`] like
/// `SqliteStore` (feature `sqlite`) does.
#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    runs: HashMap<RunId, MemoryRun>,
    next_event: u64,
    /// Each run's call journal: apart from `runs`, since calls come before a run's first
    /// checkpoint.
    journals: HashMap<RunId, RunJournal>,
    /// The recorded workflows, in the order they were recorded.
    workflows: Vec<WorkflowInfo>,
}

/// One run's journaled calls, in the order they were recorded.
#[derive(Default)]
struct RunJournal {
    entries: Vec<JournalEntry>,
    /// (step, visit, position) → index in `entries`.
    index: HashMap<(String, Visit, u32), usize>,
}

struct MemoryRun {
    checkpoints: Vec<Checkpoint>,
    /// For each checkpoint: when it was saved, the attempt that completed its step, and when
    /// that attempt began.
    saved: Vec<(SystemTime, u32, Option<SystemTime>)>,
    /// When the attempt of the run's next step began, if it has.
    step_started: Option<SystemTime>,
    status: RunStatus,
    created_at: SystemTime,
    updated_at: SystemTime,
    /// When the run is due: a sleep's end, a wait's deadline, or the epoch once the event
    /// it waits for has arrived.
    wake_at: Option<SystemTime>,
    waiting: Option<String>,
    /// The event the waiting step waits for, and until when.
    wait_event: Option<(String, SystemTime)>,
    inbox: Vec<StoredEvent>,
    /// See [`Checkpoint::attempt`].
    attempt: u32,
    /// The message of the failure that set the run aside, until its next checkpoint.
    failure: Option<Failure>,
    /// Every failure of the run, with the number (from 1) of the checkpoint its step started
    /// from: the history's failures, kept when the run is retried.
    failures: Vec<(u64, Failure)>,
    /// The run's trace context: the first one a checkpoint carried.
    trace: Option<String>,
    /// Its approval requests, in the order asked.
    approvals: Vec<Approval>,
    /// The worker holding the run's lease and until when; `None` when nobody does.
    lease: Option<(String, SystemTime)>,
    /// The run's lease epoch: how many times it was claimed (see [`Fence`]).
    epoch: u64,
}

impl MemoryRun {
    /// Whether a write carrying `fence` may go ahead: not fenced, or the run's current fence.
    fn fenced(&self, fence: Option<Fence>) -> bool {
        fence.is_none_or(|f| f.epoch() == self.epoch)
    }
}

impl MemoryRun {
    /// `None` before the first checkpoint, which a stored run always has.
    fn info(&self) -> Option<RunInfo> {
        let latest = self.checkpoints.last()?;
        Some(
            RunInfo::new(
                latest.run_id.clone(),
                latest.workflow.clone(),
                latest.fingerprint.clone(),
                self.status,
                latest.step.clone(),
                u64::try_from(self.checkpoints.len()).unwrap_or(u64::MAX),
                self.created_at,
                self.updated_at,
            )
            .with_failure(self.failure.clone())
            .with_schedule(self.wake_at, self.wait_event.clone())
            .with_approval(self.approvals.iter().find(|a| a.is_pending()).cloned()),
        )
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let runs = self.inner.lock().map(|r| r.runs.len()).unwrap_or_default();
        f.debug_struct("MemoryStore")
            .field("runs", &runs)
            .finish_non_exhaustive()
    }
}

impl MemoryStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Every checkpoint of a run, oldest first, with the tool calls and output deliveries of
    /// each step: the run's history.
    #[must_use]
    pub fn history(&self, run_id: &RunId) -> Vec<Checkpoint> {
        self.lock()
            .runs
            .get(run_id)
            .map(|run| run.checkpoints.clone())
            .unwrap_or_default()
    }

    /// Every failure that set a run aside, oldest first, each with the number (from 1) of the
    /// checkpoint in [`history`](Self::history) its failed step started from. Kept when the
    /// run is retried and goes on, like `SqliteStore`'s history keeps them.
    #[must_use]
    pub fn failures(&self, run_id: &RunId) -> Vec<(u64, Failure)> {
        self.lock()
            .runs
            .get(run_id)
            .map(|run| run.failures.clone())
            .unwrap_or_default()
    }

    /// A run's call journal, in the order the calls were recorded (see
    /// [`Store::record_call`]).
    #[must_use]
    pub fn journal(&self, run_id: &RunId) -> Vec<JournalEntry> {
        self.lock()
            .journals
            .get(run_id)
            .map(|journal| journal.entries.clone())
            .unwrap_or_default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Nothing that can panic runs while the lock is held after an update has begun (each
        // is a push and plain assignments), so a poisoned lock is still consistent.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Moves a run to `to`, as [`RunStatus::transition`] allows.
    fn control(&self, run_id: &RunId, to: RunStatus) -> Result<RunInfo, ControlError> {
        let mut inner = self.lock();
        let runs = &mut inner.runs;
        let unknown = || ControlError::UnknownRun {
            run_id: run_id.clone(),
        };
        let run = runs.get_mut(run_id).ok_or_else(unknown)?;
        let status = run.status;
        let next = status
            .transition(to)
            .ok_or_else(|| ControlError::Transition {
                run_id: run_id.clone(),
                status,
                to,
            })?;
        if next != status {
            run.status = next;
            run.updated_at = SystemTime::now();
        }
        run.info().ok_or_else(unknown)
    }
}

impl Store for MemoryStore {
    async fn save(&self, checkpoint: Checkpoint) -> Result<(), StoreError> {
        if let Some(reason) = crate::state::too_deep(&checkpoint.state) {
            return Err(unstorable(&checkpoint.run_id, &checkpoint.step, &reason));
        }
        let mut inner = self.lock();
        if checkpoint.new_run && inner.runs.contains_key(&checkpoint.run_id) {
            return Err(crate::store::contract::exists(&checkpoint.run_id));
        }
        // Checked before the run's entry is made: a fence is given only for a stored run, so a
        // fenced checkpoint of a run not stored (pruned meanwhile) is a lost lease, and leaves
        // no empty entry behind to refuse the run id's next start.
        if let Some(fence) = checkpoint.fence
            && !inner
                .runs
                .get(&checkpoint.run_id)
                .is_some_and(|run| run.fenced(Some(fence)))
        {
            return Err(lease_lost(&checkpoint.run_id, "the checkpoint", fence));
        }
        let now = SystemTime::now();
        let run = inner
            .runs
            .entry(checkpoint.run_id.clone())
            .or_insert_with(|| MemoryRun {
                checkpoints: Vec::new(),
                saved: Vec::new(),
                step_started: None,
                status: RunStatus::Running,
                created_at: now,
                updated_at: now,
                wake_at: None,
                waiting: None,
                wait_event: None,
                inbox: Vec::new(),
                attempt: 0,
                failure: None,
                failures: Vec::new(),
                trace: None,
                approvals: Vec::new(),
                lease: None,
                epoch: 0,
            });
        if let Some(owner) = run.checkpoints.first()
            && owner.workflow != checkpoint.workflow
        {
            return Err(conflict(&checkpoint, &owner.workflow));
        }
        if run.status.is_stopped() {
            return Err(refused(&checkpoint.run_id, &checkpoint.step, run.status));
        }
        run.saved
            .push((now, run.attempt.max(1), run.step_started.take()));
        if checkpoint.attempt > 0 {
            run.step_started = Some(now);
        }
        run.status = if checkpoint.finished {
            RunStatus::Finished
        } else {
            RunStatus::Running
        };
        run.updated_at = now;
        run.wake_at = checkpoint.wake_at;
        run.waiting = None;
        run.wait_event = None;
        run.attempt = checkpoint.attempt;
        run.failure = None;
        if run.trace.is_none() {
            run.trace.clone_from(&checkpoint.trace);
        }
        if let Some(id) = checkpoint.consumed_event {
            run.inbox.retain(|e| e.id != id);
        }
        run.checkpoints.push(Checkpoint {
            fence: None,
            new_run: false,
            ..checkpoint
        });
        Ok(())
    }

    async fn latest(&self, run_id: &RunId) -> Result<Option<Checkpoint>, StoreError> {
        Ok(self.lock().runs.get(run_id).and_then(|run| {
            let latest = run.checkpoints.last()?.clone();
            Some(
                latest
                    .with_wake_at(run.wait_event.as_ref().map_or(run.wake_at, |w| Some(w.1)))
                    .with_waiting(run.waiting.clone())
                    .with_consumed_event(None)
                    .with_attempt(run.attempt)
                    .with_trace(run.trace.clone()),
            )
        }))
    }

    async fn load_to_resume(
        &self,
        run_id: &RunId,
        fingerprint: &str,
    ) -> Result<Option<Checkpoint>, StoreError> {
        {
            let mut inner = self.lock();
            if let Some(run) = inner.runs.get_mut(run_id)
                && run
                    .checkpoints
                    .last()
                    .is_some_and(|c| !c.finished && c.fingerprint == fingerprint)
                && run.wake_at.is_none_or(|t| t <= crate::state::now())
            {
                run.attempt = run.attempt.saturating_add(1);
                run.step_started = Some(SystemTime::now());
            }
        }
        self.latest(run_id).await
    }

    async fn status(&self, run_id: &RunId) -> Result<Option<RunInfo>, StoreError> {
        Ok(self.lock().runs.get(run_id).and_then(MemoryRun::info))
    }

    async fn mark_incompatible(&self, run_id: &RunId, fingerprint: &str) -> Result<(), StoreError> {
        if let Some(run) = self.lock().runs.get_mut(run_id)
            && run.status == RunStatus::Running
            && run
                .checkpoints
                .last()
                .is_some_and(|c| c.fingerprint != fingerprint)
        {
            run.status = RunStatus::Incompatible;
            run.updated_at = SystemTime::now();
        }
        Ok(())
    }

    async fn wait(
        &self,
        run_id: &RunId,
        step: &str,
        event: &str,
        until: SystemTime,
        fence: Option<Fence>,
    ) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let run = inner
            .runs
            .get_mut(run_id)
            .ok_or_else(|| unknown_run(run_id))?;
        if let Some(fence) = fence
            && !run.fenced(Some(fence))
        {
            return Err(lease_lost(run_id, "the wait", fence));
        }
        // An event sent after the step looked in the inbox, and before this, wakes it too.
        let arrived = run.inbox.iter().any(|e| e.name == event);
        run.wake_at = Some(if arrived {
            SystemTime::UNIX_EPOCH
        } else {
            until
        });
        run.waiting = Some(step.to_owned());
        run.wait_event = Some((event.to_owned(), until));
        run.attempt = 0;
        run.step_started = None;
        Ok(())
    }

    async fn send_event(
        &self,
        run_id: &RunId,
        name: &str,
        payload: serde_json::Value,
    ) -> Result<(), StoreError> {
        if let Some(reason) = crate::state::too_deep(&payload) {
            return Err(unstorable_event(run_id, name, &reason));
        }
        let mut inner = self.lock();
        inner.next_event += 1;
        let id = inner.next_event;
        let run = inner
            .runs
            .get_mut(run_id)
            .ok_or_else(|| unknown_run(run_id))?;
        if matches!(run.status, RunStatus::Finished | RunStatus::Cancelled) {
            return Err(closed_inbox(run_id, run.status));
        }
        run.inbox.push(StoredEvent::new(id, name, payload));
        // Only the event the run waits for makes it due; the wait's deadline is kept.
        if run.waiting.is_some() && run.wait_event.as_ref().is_some_and(|w| w.0 == name) {
            run.wake_at = Some(SystemTime::UNIX_EPOCH);
        }
        Ok(())
    }

    async fn next_event(
        &self,
        run_id: &RunId,
        name: &str,
    ) -> Result<Option<StoredEvent>, StoreError> {
        Ok(self
            .lock()
            .runs
            .get(run_id)
            .and_then(|run| run.inbox.iter().find(|e| e.name == name).cloned()))
    }

    async fn record_call(&self, entry: JournalEntry) -> Result<(), StoreError> {
        if let JournalResult::Output(value) = &entry.result
            && let Some(reason) = crate::state::too_deep(value)
        {
            return Err(unstorable_call(&entry, &reason));
        }
        let mut inner = self.lock();
        if let Some(fence) = entry.fence
            && !inner
                .runs
                .get(&entry.run_id)
                .is_some_and(|run| run.fenced(Some(fence)))
        {
            return Err(lease_lost(&entry.run_id, "the journal entry", fence));
        }
        let entry = JournalEntry {
            fence: None,
            ..entry
        };
        let journal = inner.journals.entry(entry.run_id.clone()).or_default();
        let key = (entry.step.clone(), entry.visit, entry.position);
        if !journal.index.contains_key(&key) {
            journal.index.insert(key, journal.entries.len());
            journal.entries.push(entry);
        }
        Ok(())
    }

    async fn recorded_call(
        &self,
        run_id: &RunId,
        step: &str,
        visit: Visit,
        position: u32,
    ) -> Result<Option<JournalEntry>, StoreError> {
        let inner = self.lock();
        let Some(journal) = inner.journals.get(run_id) else {
            return Ok(None);
        };
        Ok(journal
            .index
            .get(&(step.to_owned(), visit, position))
            .and_then(|&i| journal.entries.get(i))
            .cloned())
    }

    async fn request_approval(&self, approval: Approval) -> Result<Approval, StoreError> {
        if let Some(reason) = crate::state::too_deep(&approval.arguments) {
            return Err(unstorable_approval(&approval, &reason));
        }
        let mut inner = self.lock();
        let run = inner
            .runs
            .get_mut(&approval.run_id)
            .ok_or_else(|| unknown_run(&approval.run_id))?;
        if let Some(fence) = approval.fence
            && !run.fenced(Some(fence))
        {
            return Err(lease_lost(&approval.run_id, "the approval request", fence));
        }
        let approval = approval.with_fence(None);
        let found = run.approvals.iter().find(|a| {
            a.step == approval.step && a.visit == approval.visit && a.position == approval.position
        });
        let kept = if let Some(kept) = found {
            kept.clone()
        } else {
            run.approvals.push(approval.clone());
            approval
        };
        run.wake_at = Some(if kept.is_pending() {
            kept.until
        } else {
            SystemTime::UNIX_EPOCH
        });
        run.waiting = Some(kept.step.clone());
        run.wait_event = Some((APPROVAL_EVENT.to_owned(), kept.until));
        run.attempt = 0;
        Ok(kept)
    }

    async fn approval(
        &self,
        run_id: &RunId,
        step: &str,
        visit: Visit,
        position: u32,
    ) -> Result<Option<Approval>, StoreError> {
        Ok(self.lock().runs.get(run_id).and_then(|run| {
            run.approvals
                .iter()
                .find(|a| a.step == step && a.visit == visit && a.position == position)
                .cloned()
        }))
    }

    async fn approvals(&self, run_id: &RunId) -> Result<Vec<Approval>, StoreError> {
        Ok(self
            .lock()
            .runs
            .get(run_id)
            .map(|run| run.approvals.clone())
            .unwrap_or_default())
    }

    async fn decide_approval(
        &self,
        run_id: &RunId,
        call_id: &str,
        decision: Decision,
    ) -> Result<Approval, ApprovalError> {
        let mut inner = self.lock();
        let run = inner
            .runs
            .get_mut(run_id)
            .ok_or_else(|| ApprovalError::UnknownRun {
                run_id: run_id.clone(),
            })?;
        let i = decidable(
            run_id,
            call_id,
            &decision,
            &run.approvals,
            crate::state::now(),
        )?;
        run.approvals[i].decision = Some(decision);
        if run.waiting.is_some()
            && run
                .wait_event
                .as_ref()
                .is_some_and(|w| w.0 == APPROVAL_EVENT)
        {
            run.wake_at = Some(SystemTime::UNIX_EPOCH);
        }
        run.updated_at = SystemTime::now();
        Ok(run.approvals[i].clone())
    }

    async fn register_workflow(&self, info: WorkflowInfo) -> Result<(), StoreError> {
        let mut inner = self.lock();
        if !inner
            .workflows
            .iter()
            .any(|w| w.name == info.name && w.fingerprint == info.fingerprint)
        {
            inner.workflows.push(WorkflowInfo {
                registered_at: SystemTime::now(),
                ..info
            });
        }
        Ok(())
    }
}

impl RunHistory for MemoryStore {
    async fn workflows(&self) -> Result<Vec<WorkflowInfo>, StoreError> {
        let mut workflows = self.lock().workflows.clone();
        // Recorded in order: the last recorded first, also between equal times.
        workflows.reverse();
        workflows.sort_by_key(|w| Reverse(w.registered_at));
        Ok(workflows)
    }

    async fn steps(&self, run_id: &RunId) -> Result<Vec<HistoryEntry>, StoreError> {
        let inner = self.lock();
        let Some(run) = inner.runs.get(run_id) else {
            return Ok(Vec::new());
        };
        Ok(run
            .checkpoints
            .iter()
            .zip(&run.saved)
            .zip(1..)
            .map(|((checkpoint, &(at, attempt, started_at)), seq)| {
                let failure = run
                    .failures
                    .iter()
                    .rev()
                    .find(|(at, _)| *at == seq)
                    .map(|(_, failure)| failure.clone());
                HistoryEntry::new(seq, checkpoint.step.clone(), checkpoint.finished, at)
                    .with_attempt(attempt, started_at)
                    .with_calls(checkpoint.calls.clone())
                    .with_failure(failure)
            })
            .collect())
    }

    async fn calls(&self, run_id: &RunId) -> Result<Vec<JournalEntry>, StoreError> {
        Ok(self.journal(run_id))
    }

    async fn prune(&self, policy: Prune, batch: u64) -> Result<u64, StoreError> {
        let mut inner = self.lock();
        let mut done: Vec<(SystemTime, RunId)> = inner
            .runs
            .iter()
            .filter(|(_, run)| matches!(run.status, RunStatus::Finished | RunStatus::Cancelled))
            .map(|(id, run)| (run.updated_at, id.clone()))
            .collect();
        done.sort();
        let selected = match policy {
            Prune::OlderThan(age) => {
                let cutoff = SystemTime::now()
                    .checked_sub(age)
                    .unwrap_or(SystemTime::UNIX_EPOCH);
                done.iter().take_while(|(at, _)| *at <= cutoff).count()
            }
            Prune::KeepLast(keep) => done
                .len()
                .saturating_sub(usize::try_from(keep).unwrap_or(usize::MAX)),
        };
        let take = selected.min(usize::try_from(batch).unwrap_or(usize::MAX));
        for (_, run_id) in &done[..take] {
            inner.runs.remove(run_id);
            inner.journals.remove(run_id);
        }
        Ok(u64::try_from(take).unwrap_or(u64::MAX))
    }
}

impl crate::store::RunQueue for MemoryStore {
    async fn due(
        &self,
        now: SystemTime,
        workflows: &[&str],
        limit: usize,
    ) -> Result<Vec<RunId>, StoreError> {
        let inner = self.lock();
        let mut due: Vec<(Option<SystemTime>, SystemTime, RunId)> = inner
            .runs
            .iter()
            .filter(|(_, run)| {
                run.status == RunStatus::Running
                    && run.wake_at.is_none_or(|t| t <= now)
                    && run
                        .checkpoints
                        .last()
                        .is_some_and(|c| workflows.contains(&c.workflow.as_str()))
            })
            .map(|(id, run)| (run.wake_at, run.updated_at, id.clone()))
            .collect();
        due.sort();
        Ok(due.into_iter().take(limit).map(|(_, _, id)| id).collect())
    }

    async fn next_wake(&self, after: SystemTime) -> Result<Option<SystemTime>, StoreError> {
        Ok(self
            .lock()
            .runs
            .values()
            .filter(|run| run.status == RunStatus::Running)
            .filter_map(|run| run.wake_at)
            .filter(|t| *t > after)
            .min())
    }

    async fn claim(
        &self,
        now: SystemTime,
        workflows: &[&str],
        limit: usize,
        worker: &str,
        until: SystemTime,
    ) -> Result<Vec<Lease>, StoreError> {
        let mut inner = self.lock();
        let mut free: Vec<(Option<SystemTime>, SystemTime, RunId)> = inner
            .runs
            .iter()
            .filter(|(_, run)| {
                run.status == RunStatus::Running
                    && run.wake_at.is_none_or(|t| t <= now)
                    && run.lease.as_ref().is_none_or(|(_, until)| *until <= now)
                    && run
                        .checkpoints
                        .last()
                        .is_some_and(|c| workflows.contains(&c.workflow.as_str()))
            })
            .map(|(id, run)| (run.wake_at, run.updated_at, id.clone()))
            .collect();
        free.sort();
        let mut leases = Vec::new();
        for (_, _, run_id) in free.into_iter().take(limit) {
            if let Some(run) = inner.runs.get_mut(&run_id) {
                run.epoch += 1;
                run.lease = Some((worker.to_owned(), until));
                leases.push(Lease::new(run_id, Fence::new(run.epoch), until));
            }
        }
        Ok(leases)
    }

    async fn renew(&self, leases: &[Lease], until: SystemTime) -> Result<Vec<Lease>, StoreError> {
        let mut inner = self.lock();
        let mut renewed = Vec::new();
        for lease in leases {
            if let Some(run) = inner.runs.get_mut(&lease.run_id)
                && run.epoch == lease.fence.epoch()
                && let Some((_, expires)) = &mut run.lease
            {
                *expires = until;
                renewed.push(Lease::new(lease.run_id.clone(), lease.fence, until));
            }
        }
        Ok(renewed)
    }

    async fn release(&self, lease: &Lease) -> Result<(), StoreError> {
        if let Some(run) = self.lock().runs.get_mut(&lease.run_id)
            && run.epoch == lease.fence.epoch()
        {
            run.lease = None;
        }
        Ok(())
    }

    async fn fail(
        &self,
        run_id: &RunId,
        failure: &Failure,
        fence: Option<Fence>,
    ) -> Result<(), StoreError> {
        let mut inner = self.lock();
        if let Some(run) = inner.runs.get_mut(run_id)
            && let Some(fence) = fence
            && !run.fenced(Some(fence))
        {
            return Err(lease_lost(run_id, "marking the run failed", fence));
        }
        tracing::warn!(run_id = %run_id, error = %failure, "run failed");
        if let Some(run) = inner.runs.get_mut(run_id)
            && run.status == RunStatus::Running
        {
            run.status = RunStatus::Failed;
            run.updated_at = SystemTime::now();
            run.failure = Some(failure.clone());
            let seq = u64::try_from(run.checkpoints.len()).unwrap_or(u64::MAX);
            run.failures.push((seq, failure.clone()));
        }
        Ok(())
    }
}

impl RunControl for MemoryStore {
    async fn list(&self, filter: &RunFilter) -> Result<Vec<RunInfo>, StoreError> {
        let mut runs: Vec<RunInfo> = self
            .lock()
            .runs
            .values()
            .filter_map(MemoryRun::info)
            .filter(|info| filter.matches(info))
            .collect();
        runs.sort_by_key(|info| (Reverse(info.updated_at), info.run_id.clone()));
        if let Some(limit) = filter.limit {
            runs.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        }
        Ok(runs)
    }

    async fn pause(&self, run_id: &RunId) -> Result<RunInfo, ControlError> {
        self.control(run_id, RunStatus::Paused)
    }

    async fn unpause(&self, run_id: &RunId) -> Result<RunInfo, ControlError> {
        self.control(run_id, RunStatus::Running)
    }

    async fn cancel(&self, run_id: &RunId) -> Result<RunInfo, ControlError> {
        self.control(run_id, RunStatus::Cancelled)
    }
}
