//! Stores: where runs keep their checkpoints, events and status, and the contract every store
//! implements.
//!
//! flow ships two stores: [`MemoryStore`] (everything in memory, for tests and runs that need
//! no durability) and `SqliteStore` (feature `sqlite`, on by default: an embedded SQLite
//! file). Both pass the [conformance suite](#the-conformance-suite), which any other store
//! runs with one line.
//!
//! # The contract
//!
//! A store implements up to four traits, each building on the one before:
//!
//! | trait | what it is for | who calls it |
//! | --- | --- | --- |
//! | [`Store`] | checkpoints; the attempt count; events and waits; a run's status | every run ([`Workflow::run`](crate::state::Workflow::run), `resume`, `run_or_resume`) |
//! | [`RunControl`] | listing runs; pause, unpause, cancel | operators, CLIs, engines |
//! | [`RunQueue`] | due runs, leases on them (claim, renew, release), the next wake-up, failing a run | the [`Engine`](crate::state::Engine) |
//! | [`RunHistory`] | the workflows' graphs, a run's steps and calls, pruning finished runs | the `flow` CLI, run viewers |
//!
//! Only [`Store::save`] and [`Store::latest`] are required of a store that just keeps
//! checkpoints; the other methods of [`Store`] have defaults for stores without run control or
//! events (they report no status, and refuse waits as unsupported). A store that implements
//! [`RunControl`] or [`RunQueue`] overrides them all.
//!
//! What each method guarantees:
//!
//! - **Atomic checkpoints.** [`save`](Store::save) writes the run's new latest state, its
//!   history entry, the tool calls and output deliveries of its step, and the removal of the
//!   event the step consumed ([`Checkpoint::consumed_event`]) all at once, or none of it. After
//!   a crash the store holds the state before the step or after it, never a mix.
//! - **Durable on return.** What `save` acknowledged with `Ok` is there to be read back by the
//!   next [`latest`](Store::latest), from any handle on the store, and, for a durable store,
//!   after the process or the machine dies (`SqliteStore`: `synchronous = FULL` in WAL mode).
//!   The same holds for every write the traits make: run control, waits, events, failures.
//! - **Read back as written.** A store acknowledges only what it can read back: the runtime
//!   refuses states and events nested deeper than
//!   [`MAX_JSON_DEPTH`](crate::state::MAX_JSON_DEPTH) (and non-finite numbers) before they
//!   reach the store, and a store refuses them too
//!   ([`StoreErrorKind::Unstorable`](crate::error::StoreErrorKind::Unstorable)). A store may
//!   have a size limit ([`StoreErrorKind::TooLarge`](crate::error::StoreErrorKind::TooLarge));
//!   a refused checkpoint changes nothing.
//! - **One workflow per run id.** A checkpoint of another workflow under a stored run's id is
//!   refused as a [conflict](crate::error::StoreErrorKind::Conflict).
//! - **A stopped run's next checkpoint is refused**, in the same atomic step as the write would
//!   have been: a paused run's with [`Paused`](crate::error::StoreErrorKind::Paused), a
//!   cancelled one's with [`Cancelled`](crate::error::StoreErrorKind::Cancelled), a failed
//!   one's with [`Failed`](crate::error::StoreErrorKind::Failed), and a run whose stored status
//!   cannot be read ([`RunStatus::Corrupt`]) is refused too. The run then stops before its next
//!   step; the step whose checkpoint was refused runs again if the run is unpaused and resumed
//!   (at-least-once). Status moves follow the table on [`RunStatus`]; a checkpoint moves a
//!   `Running`, `Incompatible` or `Finished` run to `Running`, or to `Finished` when the
//!   checkpoint is the finished one, and clears the failure message and any wait.
//! - **Attempts.** [`load_to_resume`](Store::load_to_resume) counts a start of the resumed step
//!   in the same atomic step as the read, when the run is due and stored with the resuming
//!   code's fingerprint; a checkpoint sets the count ([`Checkpoint::attempt`]) and a wait sets
//!   it to 0.
//! - **Events and waits.** [`send_event`](Store::send_event) keeps an event in the run's inbox
//!   until a checkpoint consumes it; a finished or cancelled run takes no more events, an
//!   unknown run none. [`wait`](Store::wait) records that the run waits for an event of one
//!   name until a deadline: the run is due at the deadline, or as soon as an event of that name
//!   is in its inbox (even one sent before the wait); other events leave it waiting.
//! - **Failures and schedules are read back.** [`RunQueue::fail`] keeps the [`Failure`] (the
//!   step and the reason) with a `Running` run, read back as [`RunInfo::failure`] until the
//!   run's next checkpoint, and in the run's history on the checkpoint the failed step started
//!   from, for good. [`Store::status`] and [`RunControl::list`] report a sleeping run's
//!   wake-up time ([`RunInfo::wake_at`]) and a waiting run's event and deadline
//!   ([`RunInfo::wait`], kept after the event arrived until the next checkpoint), from which
//!   [`RunInfo::state`] tells the [`RunState`].
//! - **The call journal.** [`record_call`](Store::record_call) keeps a completed tool call's
//!   result (its output as JSON, or its permanent failure) under the call's identity (run,
//!   step, visit, position), durably, before the step goes on; the first entry for a call is
//!   kept. [`recorded_call`](Store::recorded_call) reads it back, so a step run again returns
//!   a recorded call's result without calling the tool. A store without a journal (the
//!   defaults) records nothing, and a step run again makes its calls again.
//! - **Workflows and history are read back.** [`register_workflow`](Store::register_workflow)
//!   keeps a workflow's name, fingerprint, steps and Mermaid graph once per name and
//!   fingerprint, read back by [`RunHistory::workflows`]. [`RunHistory::steps`] reads a run's
//!   history back: each checkpoint's step, time, the attempt that completed it and when that
//!   attempt began, its calls and the failure of the step after it.
//!   [`RunHistory::calls`] reads its call journal back in the order it was recorded.
//!   [`RunHistory::prune`] deletes finished and cancelled runs, in batches, never others.
//! - **Approvals.** [`request_approval`](Store::request_approval) keeps an approval-gated
//!   call's request (first kept) and parks the run on it like an event wait;
//!   [`decide_approval`](Store::decide_approval) decides an undecided request once, by its call
//!   id, and makes the run due; [`Store::status`] shows the pending request
//!   ([`RunInfo::approval`]).
//! - **Due runs.** [`RunQueue::due`] lists `Running` runs whose wake-up time
//!   ([`Checkpoint::wake_at`], a wait's deadline, or at once for an awaited event) has come.
//!   Paused, failed, cancelled, finished, incompatible and corrupt runs are never due.
//! - **Leases and fences.** [`RunQueue::claim`] leases due runs that no worker holds to one
//!   worker, in one atomic step, raising each run's [`Fence`]; [`renew`](RunQueue::renew)
//!   extends a worker's leases, [`release`](RunQueue::release) gives one up. A write carrying a
//!   fence that is not the run's current one is refused as
//!   [`LeaseLost`](crate::error::StoreErrorKind::LeaseLost) and changes nothing (see
//!   [`RunQueue`](RunQueue#leases-and-fencing)).
//! - **Corrupt records are isolated.** A run whose record cannot be read fails alone: reading
//!   its state is an error of kind [`Corrupt`](crate::error::StoreErrorKind::Corrupt) naming
//!   the run, an unknown status reads as [`RunStatus::Corrupt`] with
//!   [`RunInfo::corrupt`] saying why, a pending approval request that cannot be read shows as
//!   its run's [`RunInfo::corrupt`] (in `list` and `status`), and listing, running and
//!   controlling the other runs go on.
//!
//! # The envelope
//!
//! A run's state travels as a [`Checkpoint`]: the run, the workflow's name and the
//! fingerprint of the code that wrote it (so that code whose graph changed refuses it), the
//! step just completed, whether the run finished, the state itself (the workflow's
//! `FlowState` as JSON), and the step's calls, wake-up time, consumed event and attempt.
//! Events travel as [`StoredEvent`]s: an id increasing in the order events were sent, a name,
//! and a JSON payload. A store that keeps the state as text keeps it in a versioned envelope,
//! `{"v":1,"workflow":"trip","fingerprint":"…","state":{…}}`, and reads the version first, so
//! that a state written by a newer flow is reported as such (and as
//! [`Corrupt`](crate::error::StoreErrorKind::Corrupt) for that run only).
//!
//! # The conformance suite
//!
//! `store::conformance` (feature `conformance`) holds one test per rule above, written once
//! against the traits. A store's tests implement `conformance::Harness` (make an empty store,
//! read a run's history, corrupt a record where the store can hold one) and add one line:
//! `flow_runtime::store::conformance::suite!(MyHarness::new());`.

mod approval;
mod checkpoint;
#[cfg(feature = "conformance")]
#[cfg_attr(docsrs, doc(cfg(feature = "conformance")))]
pub mod conformance;
mod contract;
mod control;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) mod envelope;
mod fenced;
mod history;
mod journal;
mod memory;
#[cfg(feature = "postgres")]
mod postgres;
mod queue;
#[cfg(feature = "sqlite")]
mod sqlite;

pub use self::approval::{APPROVAL_EVENT, Approval, ApprovalError, Decision, decidable};
pub use self::checkpoint::{Checkpoint, StoredEvent};
pub(crate) use self::contract::DynStore;
pub use self::contract::Store;
pub use self::control::{Failure, RunControl, RunFilter, RunInfo, RunState, RunStatus};
pub(crate) use self::fenced::{Fenced, Held, heartbeat};
pub use self::history::{HistoryEntry, Prune, RunHistory, WorkflowInfo};
pub use self::journal::{JournalEntry, JournalResult};
pub use self::memory::MemoryStore;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use self::postgres::PgStore;
pub use self::queue::{Fence, Lease, RunQueue};
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use self::sqlite::SqliteStore;
