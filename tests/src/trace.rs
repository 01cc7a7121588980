//! Logs captured in memory.

use std::sync::{Arc, Mutex, PoisonError};
use tracing::subscriber::DefaultGuard;

/// A `tracing` writer into memory: [`Captured::install`] records every event and span field at
/// every level, and [`Captured::text`] returns what was written, to search for secrets.
#[derive(Clone, Debug, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// Records into this writer on this thread until the guard drops. A current-thread
    /// runtime (`#[tokio::test]`'s default) runs its tasks, the engine's included, here too; a
    /// subscriber per thread also keeps the tests of one binary from seeing each other's logs.
    #[must_use]
    pub fn install(&self) -> DefaultGuard {
        let writer = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_max_level(tracing::Level::TRACE)
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    /// Like [`install`](Self::install), and each span with its fields when it closes.
    #[must_use]
    pub fn install_with_spans(&self) -> DefaultGuard {
        let writer = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_max_level(tracing::Level::TRACE)
            .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    /// Everything written so far, as text.
    #[must_use]
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(PoisonError::into_inner)).into_owned()
    }
}
