//! The panic guard and span around a step's own code, as one future.
//!
//! A step's future runs inside its `step` span, and a panic in it (or in a tool it calls) fails
//! the run with [`RuntimeError::Panicked`] naming the step instead of unwinding through the
//! driver. Written with combinators (`AssertUnwindSafe(..).catch_unwind().map(..).map(..)
//! .instrument(span)`), that is four nested futures whose polls, moves and drops a trivial step
//! pays for on every step; this is the same in one layer.

use crate::error::{RuntimeError, panic_message};
use crate::state::Ctx;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};
use tracing::Span;

pin_project_lite::pin_project! {
    /// Step `step`'s `future` (or the driver's turn), polled inside `span` and with its panics
    /// caught: see the module's documentation.
    ///
    /// Unlike `tracing::Instrumented`, dropping it before it ends does not enter the span: a
    /// step dropped unfinished (a run parked mid-step) drops its future outside the span.
    #[must_use = "futures do nothing unless polled"]
    pub(crate) struct Guarded<'c, D, F> {
        #[pin]
        future: F,
        ctx: &'c Ctx<D>,
        workflow: &'static str,
        step: Option<&'static str>,
        span: Span,
    }
}

/// Runs step `step`'s `future` (or, with `None`, the driver's whole turn) inside `span`, so that
/// a panic in it fails the run with [`RuntimeError::Panicked`] naming the step.
pub(crate) fn guard<'c, D, F: Future>(
    ctx: &'c Ctx<D>,
    workflow: &'static str,
    step: Option<&'static str>,
    span: Span,
    future: F,
) -> Guarded<'c, D, F> {
    Guarded {
        future,
        ctx,
        workflow,
        step,
        span,
    }
}

impl<D, F: Future> Future for Guarded<'_, D, F> {
    type Output = Result<F::Output, RuntimeError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let _entered = this.span.enter();
        let future = this.future;
        // A future that panicked is not polled again: the run fails with the panic.
        match catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Ok(Poll::Pending) => Poll::Pending,
            // The run id is read (and, for a context that made its own, written out) only
            // when there is a panic to report.
            Err(payload) => Poll::Ready(Err(RuntimeError::Panicked {
                run_id: this.ctx.run_id().clone(),
                workflow: this.workflow,
                step: *this.step,
                message: panic_message(&*payload),
            })),
        }
    }
}
