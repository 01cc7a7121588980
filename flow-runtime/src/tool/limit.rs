use crate::tool::RateLimit;
use governor::RateLimiter;
use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::state::{InMemoryState, NotKeyed};
use std::time::Duration;

/// governor's clock, read from tokio's: the limiter then agrees with the timers it waits on
/// (`tokio::time::sleep`), and follows `tokio::time::pause` in tests. governor's own
/// `until_ready` would wait on a `futures-timer` thread that paused time does not move.
#[derive(Clone, Debug)]
struct TokioClock {
    start: tokio::time::Instant,
}

impl Clock for TokioClock {
    // governor implements its `Reference` for `Duration`: the time since `start`.
    type Instant = Duration;

    fn now(&self) -> Duration {
        self.start.elapsed()
    }
}

type Direct = RateLimiter<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<Duration>>;
type Keyed = RateLimiter<String, DashMapStateStore<String>, TokioClock, NoOpMiddleware<Duration>>;

/// A tool's rate limiters: over all calls, and per key.
pub(crate) struct Limiters {
    clock: TokioClock,
    direct: Option<Direct>,
    keyed: Option<Keyed>,
}

impl Limiters {
    pub(crate) fn new(all: Option<RateLimit>, per_key: Option<RateLimit>) -> Self {
        let clock = TokioClock {
            start: tokio::time::Instant::now(),
        };
        Self {
            direct: all.map(|l| RateLimiter::direct_with_clock(l.quota, clock.clone())),
            keyed: per_key.map(|l| RateLimiter::dashmap_with_clock(l.quota, clock.clone())),
            clock,
        }
    }

    /// Waits until both limits let one more attempt through, and takes its place.
    pub(crate) async fn until_ready(&self, key: Option<&str>) {
        if let Some(direct) = &self.direct {
            while let Err(not_until) = direct.check() {
                tokio::time::sleep(not_until.wait_time_from(self.clock.now())).await;
            }
        }
        if let (Some(keyed), Some(key)) = (&self.keyed, key) {
            let key = key.to_owned();
            while let Err(not_until) = keyed.check_key(&key) {
                tokio::time::sleep(not_until.wait_time_from(self.clock.now())).await;
            }
        }
    }
}

impl Limiters {
    pub(crate) fn forget_idle_keys(&self) {
        if let Some(keyed) = &self.keyed {
            keyed.retain_recent();
            keyed.shrink_to_fit();
        }
    }
}
