use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

/// A step's output that the next step gets only later: return `Result<Sleep<T>, E>` from a
/// step, and the run waits before the step after it.
///
/// With a store, the wait is durable and costs nothing while it lasts: the run is checkpointed
/// with its wake-up time and stops (`run` returns [`RuntimeError::Parked`]); an
/// [`Engine`](crate::state::Engine) continues it when it is due, also after a restart, however
/// long that is (seconds or months). Without a store, the run simply waits in its task.
///
/// ```
/// use flow_runtime::prelude::*;
/// use std::time::Duration;
///
/// #[workflow]
/// pub mod reminder {
///     use super::*;
///
///     #[step(entry)]
///     pub async fn schedule(who: String) -> Result<Sleep<String>, Invalid> {
///         Ok(Sleep::new(Duration::from_secs(3600), who))
///     }
///
///     #[step(after = schedule, exit)]
///     pub async fn remind(who: String) -> Result<String, Invalid> {
///         Ok(format!("time's up, {who}"))
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// // Without a store the run waits in its task; tokio's paused clock skips the hour.
/// let ctx = Ctx::new(());
/// let out = reminder::Workflow::run(&ctx, "Ada".into()).await.unwrap();
/// assert_eq!(out, "time's up, Ada");
/// # }
/// ```
///
/// [`RuntimeError::Parked`]: crate::error::RuntimeError::Parked
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sleep<T> {
    value: T,
    wake: Wake,
}

/// When a [`Sleep`] is over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Wake {
    /// This long after the step that returned it finished.
    After(Duration),
    /// At this time (at once if it has passed).
    At(SystemTime),
}

impl Wake {
    /// The time it stands for, from `now`; at most the end of year 9999 (the last time
    /// RFC 3339 can write, so that every message can show it), however long the duration.
    #[must_use]
    pub fn at(self, now: SystemTime) -> SystemTime {
        match self {
            Self::After(d) => later(now, d),
            Self::At(t) => t.min(super::latest_time()),
        }
    }
}

/// `d` after `now`, saturating at the end of year 9999 (see [`Wake::at`]): a wait too long to
/// be written ends then, neither at once nor at a time no message can show.
pub(crate) fn later(now: SystemTime, d: Duration) -> SystemTime {
    let latest = super::latest_time();
    now.checked_add(d).map_or(latest, |t| t.min(latest))
}

impl<T> Sleep<T> {
    /// `value` goes to the next step after `duration`.
    pub fn new(duration: Duration, value: T) -> Self {
        Self {
            value,
            wake: Wake::After(duration),
        }
    }

    /// `value` goes to the next step at `time` (at once if it has passed).
    pub fn until(time: SystemTime, value: T) -> Self {
        Self {
            value,
            wake: Wake::At(time),
        }
    }

    /// The value and when it is due.
    pub fn into_parts(self) -> (T, Wake) {
        (self.value, self.wake)
    }
}

/// What a step that waits for an event gets: the event, or the news that its timeout passed
/// first. Declare the wait with `#[step(after = a, event = Approval, timeout = …)]` and take
/// `Event<Approval>` as the step's last parameter; route on it like on any value.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Event<T> {
    /// The event arrived (before or during the wait: an event sent before the run reached the
    /// step is kept for it).
    Received(T),
    /// The timeout passed and no event had arrived.
    TimedOut,
}

impl<T> Event<T> {
    /// The event, if it arrived.
    pub fn received(self) -> Option<T> {
        match self {
            Self::Received(event) => Some(event),
            Self::TimedOut => None,
        }
    }
}

/// `Self` is an event that workflow `W` waits for: implemented by `#[workflow]` for the type of
/// every step's `event = …`, and for nothing else, so sending a workflow an event it does not
/// declare does not compile. Every such type is also serde (the macro checks it). Sealed: an
/// impl written by hand does not compile either.
// Not `Serialize + DeserializeOwned` as supertraits: the impl for a type that is neither would
// report two errors; the macro checks serde once, at `event = …`, and `Engine::send` asks for
// `Serialize` itself.
#[diagnostic::on_unimplemented(
    message = "workflow `{W}` waits for no event of type `{Self}`",
    label = "no step of this workflow waits for it",
    note = "a step waits for an event with `#[step(after = …, event = {Self}, timeout = …)]`"
)]
pub trait EventOf<W>: Send + 'static
where
    Self: crate::__private::DeclaredEvent<W>,
{
    /// The event's name in the run's inbox: its type as written in `event = …`.
    const NAME: &'static str;
}

/// Wall-clock time as the runtime sees it: anchored to the system clock once, then advanced by
/// tokio's clock, so that tests with paused tokio time move timers too.
pub(crate) fn now() -> SystemTime {
    static ANCHOR: OnceLock<(SystemTime, tokio::time::Instant)> = OnceLock::new();
    let (system, instant) =
        *ANCHOR.get_or_init(|| (SystemTime::now(), tokio::time::Instant::now()));
    system + tokio::time::Instant::now().saturating_duration_since(instant)
}
