//! [`ParkSlot`]: how a step that must wait mid-way (for a person's approval) parks its run.
//!
//! The step's code never sees the park: the call that waits stores its request, puts the
//! [`Park`] here and never completes; the driver, racing every step against the slot, drops
//! the step's future and ends the turn with [`Outcome::Parked`](super::Outcome::Parked). When
//! the run is resumed, the step runs again: its journaled calls replay, and the waiting call
//! finds its decision in the store.

use super::Park;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};
use std::task::{Context, Poll};
use tokio::sync::Notify;

/// The run's park, shared by every step's context of one run.
#[derive(Debug, Default)]
pub(crate) struct ParkSlot {
    park: Mutex<Option<Park>>,
    notify: Notify,
}

impl ParkSlot {
    /// Parks the run with `park` (the first park of a turn wins), and never returns: the
    /// driver drops the step.
    pub(crate) async fn park(&self, park: Park) -> ! {
        {
            let mut slot = self.park.lock().unwrap_or_else(PoisonError::into_inner);
            if slot.is_none() {
                *slot = Some(park);
            }
        }
        self.notify.notify_waiters();
        std::future::pending().await
    }

    /// Resolves once a step parked the run, with its park.
    async fn parked(&self) -> Park {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(park) = self
                .park
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take()
            {
                return park;
            }
            notified.await;
        }
    }

    /// Runs `step` until it completes, or until it parks the run: then `Err` with the park,
    /// and the step's future is dropped. Without a store (`parks` false) nothing can park (an
    /// approval needs a store to ask), so the step runs alone, at no cost.
    pub(crate) fn race<F: Future>(
        &self,
        parks: bool,
        step: F,
    ) -> Race<F, impl Future<Output = Park> + '_> {
        Race {
            step,
            parked: parks.then(|| self.parked()),
        }
    }
}

pin_project_lite::pin_project! {
    /// [`ParkSlot::race`]'s future: a step and, when the run can park, the slot's wait, each held
    /// once (an `async fn` holding them would keep the step twice, as its argument and as the
    /// future it polls: a larger future for every step).
    #[must_use = "futures do nothing unless polled"]
    pub(crate) struct Race<F, P> {
        #[pin]
        step: F,
        #[pin]
        parked: Option<P>,
    }
}

impl<F: Future, P: Future<Output = Park>> Future for Race<F, P> {
    type Output = Result<F::Output, Park>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        // The step first: a result that is ready is kept even when another branch of a join
        // parked the run meanwhile (the driver's next race ends the turn).
        if let Poll::Ready(done) = this.step.poll(cx) {
            return Poll::Ready(Ok(done));
        }
        match this.parked.as_pin_mut().map(|parked| parked.poll(cx)) {
            Some(Poll::Ready(park)) => Poll::Ready(Err(park)),
            Some(Poll::Pending) | None => Poll::Pending,
        }
    }
}
