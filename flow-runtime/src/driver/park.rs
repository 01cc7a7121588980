//! [`ParkSlot`]: how a step that must wait mid-way (for a person's approval) parks its run.
//!
//! The step's code never sees the park: the call that waits stores its request, puts the
//! [`Park`] here and never completes; the driver, racing every step against the slot, drops
//! the step's future and ends the turn with [`Outcome::Parked`](super::Outcome::Parked). When
//! the run is resumed, the step runs again: its journaled calls replay, and the waiting call
//! finds its decision in the store.

use super::Park;
use std::future::Future;
use std::sync::{Mutex, PoisonError};
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
    pub(crate) async fn race<T>(
        &self,
        parks: bool,
        step: impl Future<Output = T>,
    ) -> Result<T, Park> {
        if !parks {
            return Ok(step.await);
        }
        let parked = self.parked();
        futures_util::pin_mut!(step, parked);
        match futures_util::future::select(step, parked).await {
            futures_util::future::Either::Left((done, _)) => Ok(done),
            futures_util::future::Either::Right((park, _)) => Err(park),
        }
    }
}
