use crate::output::file::append_durably;
use crate::state::RunId;
use crate::tool::IdempotencyKey;
use std::fmt;
use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

/// Where a value goes when a sink could not take it: one [`DeadLetterRecord`] per failed
/// sink, with the value, the sink and the error, so that nothing is lost and it can be
/// delivered later by hand or by a job of yours.
///
/// [`DeadLetter::jsonl`] appends to a file (JSON Lines, `fsync`ed); [`DeadLetter::memory`]
/// keeps the records in memory, for tests. Clones share the same records.
///
/// ```
/// use flow_runtime::output::{ChannelSink, DeadLetter, Outputs};
/// use flow_runtime::prelude::*;
///
/// #[workflow]
/// pub mod trip {
///     #[step(entry, exit)]
///     pub async fn book(seats: u32) -> Result<u32, std::convert::Infallible> {
///         Ok(seats)
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let (tx, rx) = tokio::sync::mpsc::channel(1);
/// drop(rx);
/// let dead_letter = DeadLetter::memory();
/// let outputs = Outputs::new().on_exit(ChannelSink::new(tx)).dead_letter(dead_letter.clone());
///
/// let ctx = Ctx::builder(()).outputs(outputs).build();
/// assert!(trip::Workflow::run(&ctx, 7).await.is_err());
///
/// let dead = dead_letter.records()?;
/// assert_eq!((dead[0].sink.as_str(), dead[0].step.as_str()), ("channel", "book"));
/// assert_eq!(dead[0].value, 7);
/// assert_eq!(dead[0].error, "sink `channel` failed with a permanent error on attempt 1; \
///                            not retried: the channel's receiver is gone");
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct DeadLetter(Arc<Place>);

enum Place {
    File { path: PathBuf, lock: Mutex<()> },
    Memory(Mutex<Vec<DeadLetterRecord>>),
}

impl DeadLetter {
    /// Appends records to the file at `path` (created when missing), one JSON line each, and
    /// waits until each is on disk.
    pub fn jsonl(path: impl Into<PathBuf>) -> Self {
        Self(Arc::new(Place::File {
            path: path.into(),
            lock: Mutex::new(()),
        }))
    }

    /// Keeps records in memory: for tests, or for a program that reads them itself.
    #[must_use]
    pub fn memory() -> Self {
        Self(Arc::new(Place::Memory(Mutex::new(Vec::new()))))
    }

    /// Every record so far, oldest first. A file that does not exist yet holds none.
    ///
    /// # Errors
    ///
    /// The file cannot be read, or a line of it is not a record (`InvalidData`, naming the
    /// line).
    pub fn records(&self) -> std::io::Result<Vec<DeadLetterRecord>> {
        match &*self.0 {
            Place::Memory(records) => Ok(records
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()),
            Place::File { path, lock } => {
                let _guard = lock.lock().unwrap_or_else(PoisonError::into_inner);
                let file = match std::fs::File::open(path) {
                    Ok(file) => file,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
                    Err(e) => return Err(e),
                };
                let mut records = Vec::new();
                for (n, line) in BufReader::new(file).lines().enumerate() {
                    let line = line?;
                    if line.trim().is_empty() {
                        continue;
                    }
                    let record = serde_json::from_str(&line).map_err(|e| {
                        std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            format!("line {} of `{}`: {e}", n + 1, path.display()),
                        )
                    })?;
                    records.push(record);
                }
                Ok(records)
            }
        }
    }

    /// Where the records go: `file <path>` or `memory`.
    #[must_use]
    pub fn location(&self) -> String {
        match &*self.0 {
            Place::File { path, .. } => format!("file {}", path.display()),
            Place::Memory(_) => "memory".to_owned(),
        }
    }

    pub(crate) fn write(&self, record: DeadLetterRecord) -> std::io::Result<()> {
        match &*self.0 {
            Place::Memory(records) => {
                records
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(record);
                Ok(())
            }
            Place::File { path, lock } => {
                let mut line = serde_json::to_string(&record)?;
                line.push('\n');
                let _guard = lock.lock().unwrap_or_else(PoisonError::into_inner);
                append_durably(path, line.as_bytes())
            }
        }
    }
}

impl fmt::Debug for DeadLetter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DeadLetter").field(&self.location()).finish()
    }
}

/// A value a sink could not take, and why: one line of a [`DeadLetter`].
#[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct DeadLetterRecord {
    /// The run.
    pub run_id: RunId,
    /// The workflow's name.
    pub workflow: String,
    /// The step whose output it is.
    pub step: String,
    /// Whether it is the run's final result.
    pub exit: bool,
    /// The sink that could not take it.
    pub sink: String,
    /// The delivery's idempotency key: deliver it again with this key.
    pub idempotency_key: IdempotencyKey,
    /// How many attempts were made.
    pub attempts: u32,
    /// Why the last one failed.
    pub error: String,
    /// When the delivery was given up, in milliseconds since the Unix epoch.
    pub failed_at_ms: u64,
    /// The value.
    pub value: serde_json::Value,
}

// The value is left out: it holds the workflow's data, which may hold anything.
impl fmt::Debug for DeadLetterRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeadLetterRecord")
            .field("run_id", &self.run_id)
            .field("workflow", &self.workflow)
            .field("step", &self.step)
            .field("exit", &self.exit)
            .field("sink", &self.sink)
            .field("idempotency_key", &self.idempotency_key)
            .field("attempts", &self.attempts)
            .field("error", &self.error)
            .field("failed_at_ms", &self.failed_at_ms)
            .finish_non_exhaustive()
    }
}
