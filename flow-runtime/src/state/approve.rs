//! Approval-gated calls: [`Ctx::approval`], [`Approved`], [`Ctx::call_approved`].

use crate::driver::{BoxFuture, CallSlot, Park};
use crate::state::{Ctx, RunId};
use crate::store::{Approval, Decision};
use crate::tool::{CallError, Denied, NeedsApproval, Tool, Visit};
use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

/// A person's approval of one call of tool `T`: what [`Ctx::approval`] returns once the call
/// is approved, and the only way to make it ([`Ctx::call_approved`]). It holds the call's
/// place among the step's calls and the approved input (edited, when the person edited
/// it): it applies to that call only, and is used once.
pub struct Approved<T: Tool> {
    input: T::Input,
    call_id: String,
    run_id: RunId,
    step: &'static str,
    visit: Visit,
    position: u32,
    tool: PhantomData<fn() -> T>,
}

impl<T: Tool> fmt::Debug for Approved<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Approved")
            .field("tool", &T::NAME)
            .field("call_id", &self.call_id)
            .finish_non_exhaustive()
    }
}

impl<T: Tool> Approved<T> {
    /// The input approved: the one asked for, or the person's edit of it.
    #[must_use]
    pub fn input(&self) -> &T::Input {
        &self.input
    }

    /// The call's id.
    #[must_use]
    pub fn call_id(&self) -> &str {
        &self.call_id
    }
}

impl<D: Send + Sync, P> Ctx<D, P> {
    /// Asks a person to approve a call of `T` with `input`, a tool this step lists in
    /// `#[step(tools = [...], approve = [...])]`.
    ///
    /// The first time, the request (tool, call id, arguments, deadline: now plus the step's
    /// `timeout`) is stored with the run and **the run parks**: the step stops here, holding
    /// no task, and [`RunInfo::approval`](crate::store::RunInfo::approval) shows the request.
    /// [`Engine::approve`](crate::state::Engine::approve),
    /// [`approve_with`](crate::state::Engine::approve_with) or
    /// [`reject`](crate::state::Engine::reject) decide it and make the run due; the step runs
    /// again (its journaled calls replay) and gets here the decision: an [`Approved`] to
    /// make the call with ([`Ctx::call_approved`]), or why not.
    ///
    /// ```
    /// use flow_runtime::prelude::*;
    /// use flow_runtime::state::{Engine, RunResult, Setup};
    /// use std::sync::Arc;
    /// use std::time::Duration;
    ///
    /// /// Refunds an amount: money leaves, so a person approves each call.
    /// pub struct Refund;
    ///
    /// impl Tool for Refund {
    ///     type Input = u32;
    ///     type Output = String;
    ///     const NAME: &'static str = "refund";
    ///     const DESCRIPTION: &'static str = "Refunds an amount.";
    ///     async fn call(&self, _: &ToolCtx, cents: u32) -> Result<String, ToolError> {
    ///         Ok(format!("refunded {cents}"))
    ///     }
    /// }
    ///
    /// #[workflow]
    /// pub mod payout {
    ///     use super::*;
    ///
    ///     #[step(entry, exit, tools = [Refund], approve = [Refund], timeout = Duration::from_hours(24))]
    ///     pub async fn pay(ctx: &Ctx<(), tools::Pay>, cents: u32) -> Result<String, CallError> {
    ///         // `ctx.call::<Refund>(cents)` does not compile here: Refund needs an approval.
    ///         let approved = ctx.approval::<Refund>(cents).await?; // the run parks here
    ///         ctx.call_approved(approved).await
    ///     }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = Arc::new(MemoryStore::new());
    /// let tools = Toolbox::new().with(PolicyTool::new(Refund, ToolPolicy::default()));
    /// let engine = Engine::builder(Arc::clone(&store))
    ///     .register::<payout::Workflow>(Setup::new(()).tools(tools))
    ///     .build();
    /// let run = engine.start::<payout::Workflow>("pay-1", 499).await?;
    /// // The engine runs the step until it parks on the approval.
    /// engine
    ///     .run_until(async {
    ///         while store.status(&run).await.unwrap().unwrap().approval.is_none() {
    ///             tokio::time::sleep(Duration::from_millis(1)).await;
    ///         }
    ///     })
    ///     .await?;
    /// let pending = store.status(&run).await?.unwrap().approval.unwrap();
    /// assert_eq!((pending.tool.as_str(), &pending.arguments), ("refund", &serde_json::json!(499)));
    /// // A person approves that call; the engine resumes the run and makes it.
    /// engine.approve(&run, &pending.call_id).await?;
    /// let mut done = None;
    /// engine
    ///     .run_until(async {
    ///         done = Some(engine.wait_for::<payout::Workflow>(&run, Duration::from_secs(10)).await);
    ///     })
    ///     .await?;
    /// assert!(matches!(done.unwrap()?, RunResult::Finished(out) if out == "refunded 499"));
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// [`CallError::NotApproved`]: rejected, timed out (route on it as on an event's timeout),
    /// or approved for other arguments than `input`; [`CallError::Approval`]: the run has no
    /// store that keeps approvals, or is not stored.
    // Returns a named boxed future rather than being an `async fn`: with an opaque future, a
    // tool the step does not gate is reported three times; with a named one, once.
    pub fn approval<T: Tool>(
        &self,
        input: T::Input,
    ) -> BoxFuture<'_, Result<Approved<T>, CallError>>
    where
        P: NeedsApproval<T>,
    {
        let timeout = P::timeout();
        Box::pin(async move {
            let slot = self.begin_call();
            let input = self
                .approve_in::<T>(&slot, input, None, timeout)
                .await?
                .map_err(|denied| not_approved::<T>(&slot, denied))?;
            Ok(Approved {
                input,
                call_id: slot.key.to_string(),
                run_id: self.run_id().clone(),
                step: self.scope().step_name().unwrap_or_default(),
                visit: self.scope().visit(),
                position: slot.index,
                tool: PhantomData,
            })
        })
    }

    /// Makes the call `approved` approves, with its approved input, under `T`'s policy: the
    /// only way step code calls a tool its step lists in `approve = [...]` (`ctx.call` does
    /// not compile for it). Journaled like every call: a step run again gets its result back.
    ///
    /// # Errors
    ///
    /// As [`Ctx::call`]; [`CallError::NotApproved`] with [`Denied::Elsewhere`] for an approval
    /// of another run, step or visit.
    pub fn call_approved<T: Tool>(
        &self,
        approved: Approved<T>,
    ) -> BoxFuture<'_, Result<T::Output, CallError>>
    where
        P: NeedsApproval<T>,
    {
        Box::pin(async move {
            let slot = self.scope().slot_at(self.run_id(), approved.position);
            if approved.run_id != *self.run_id()
                || Some(approved.step) != self.scope().step_name()
                || approved.visit != self.scope().visit()
            {
                return Err(not_approved::<T>(&slot, Denied::Elsewhere));
            }
            if let Some(replayed) = self.replay::<T>(&slot).await {
                return replayed;
            }
            self.call_in::<T>(&slot, None, approved.input).await
        })
    }

    /// An agent's call of approval-gated tool `T` (the model's call id `model_call_id`):
    /// replayed when journaled; otherwise approved first (parking the run until decided),
    /// then made. `Ok(Err(_))` when not approved.
    pub(crate) async fn gated_call<T: Tool>(
        &self,
        input: T::Input,
        model_call_id: &str,
        timeout: Duration,
    ) -> Result<Result<T::Output, (String, Denied)>, CallError> {
        let slot = self.begin_call();
        if let Some(replayed) = self.replay::<T>(&slot).await {
            return replayed.map(Ok);
        }
        match self
            .approve_in::<T>(&slot, input, Some(model_call_id), timeout)
            .await?
        {
            Ok(input) => self.call_in::<T>(&slot, None, input).await.map(Ok),
            Err(denied) => Ok(Err((slot.key.to_string(), denied))),
        }
    }

    /// The approval of the call in `slot` with `input`: the approved input, why not, or (the
    /// first time, and while undecided) the run parks.
    async fn approve_in<T: Tool>(
        &self,
        slot: &CallSlot,
        input: T::Input,
        model_call_id: Option<&str>,
        timeout: Duration,
    ) -> Result<Result<T::Input, Denied>, CallError> {
        let failed = |source| CallError::Approval {
            tool: T::NAME,
            source,
        };
        let (Some(store), Some(step)) = (self.store(), self.scope().step_name()) else {
            return Err(failed(crate::error::StoreError::of_kind(
                crate::error::StoreErrorKind::Unsupported,
                "the run has no store, so nobody can be asked",
            )));
        };
        let visit = self.scope().visit();
        let asked = serde_json::to_value(&input).map_err(|e| {
            failed(crate::error::StoreError::with_source(
                format!("the input of `{}` does not serialize as JSON", T::NAME),
                e,
            ))
        })?;
        let run_id = self.run_id();
        let stored = store
            .approval_boxed(run_id, step, visit, slot.index)
            .await
            .map_err(failed)?;
        let mut approval = if let Some(approval) = stored {
            approval
        } else {
            let now = crate::state::now();
            let request = Approval::new(
                run_id.clone(),
                step,
                visit,
                slot.index,
                slot.key.to_string(),
                T::NAME,
                asked.clone(),
                crate::state::later(now, timeout),
            )
            .with_model_call_id(model_call_id.map(str::to_owned));
            store
                .request_approval_boxed(request)
                .await
                .map_err(failed)?
        };
        if approval.arguments != asked {
            return Ok(Err(Denied::Changed {
                approved: approval.arguments,
                asked,
            }));
        }
        if approval.is_pending() && crate::state::now() >= approval.until {
            approval = match store
                .decide_approval_boxed(run_id, &approval.call_id, Decision::TimedOut)
                .await
            {
                Ok(decided) => decided,
                // Decided by a person meanwhile: that decision stands.
                Err(crate::store::ApprovalError::Decided { decision, .. }) => {
                    approval.with_decision(Some(decision))
                }
                Err(crate::store::ApprovalError::Store(source)) => return Err(failed(source)),
                Err(other) => {
                    return Err(failed(crate::error::StoreError::with_source(
                        "the approval's timeout could not be recorded",
                        other,
                    )));
                }
            };
        }
        match approval.decision {
            None => {
                // Parked again, after a restart or an early wake-up: the same request, the
                // same deadline.
                let kept = store
                    .request_approval_boxed(approval)
                    .await
                    .map_err(failed)?;
                if kept.is_pending() {
                    self.park_slot()
                        .park(Park::Approval {
                            step,
                            tool: T::NAME,
                            call_id: kept.call_id,
                            until: kept.until,
                        })
                        .await;
                }
                // Decided between the read and the request: read it again.
                Box::pin(self.approve_in::<T>(slot, input, model_call_id, timeout)).await
            }
            Some(Decision::Approved { edited: None }) => Ok(Ok(input)),
            Some(Decision::Approved {
                edited: Some(edited),
            }) => Ok(
                serde_json::from_value::<T::Input>(edited).map_err(|e| Denied::Unusable {
                    reason: e.to_string(),
                }),
            ),
            Some(Decision::Rejected { reason }) => Ok(Err(Denied::Rejected { reason })),
            Some(Decision::TimedOut) => Ok(Err(Denied::TimedOut)),
        }
    }
}

fn not_approved<T: Tool>(slot: &CallSlot, denied: Denied) -> CallError {
    CallError::NotApproved {
        tool: T::NAME,
        call_id: slot.key.to_string(),
        denied,
    }
}
