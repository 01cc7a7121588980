use crate::output::{Delivery, Sink};
use crate::tool::ToolError;
use std::fmt;
use std::io::{ErrorKind, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

/// Stores results by appending them to a file, one line per delivery, made durable
/// (`fsync`ed) before the delivery counts as done.
///
/// Without a [`Format`](crate::output::Format) each line is the [`Delivery`] record as JSON
/// ([JSON Lines](https://jsonlines.org)); with one, it is the formatted text. The file is
/// created when missing; its directory is not. Appends from one `FileSink` never interleave.
///
/// Delivery is at least once, so a line may be repeated (a resumed run delivers its step's
/// output again): readers that care drop lines whose `idempotency_key` they have seen.
///
/// ```
/// use flow_runtime::output::{FileSink, Format, Outputs, Sink};
/// use flow_runtime::prelude::*;
///
/// #[workflow]
/// pub mod trip {
///     #[step(entry, exit)]
///     pub async fn book(pnr: String) -> Result<serde_json::Value, std::convert::Infallible> {
///         Ok(serde_json::json!({ "pnr": pnr }))
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = std::env::temp_dir().join(format!("flow-doc-{}", RunId::random()));
/// std::fs::create_dir(&dir)?;
/// let outputs = Outputs::new()
///     .on_exit(FileSink::jsonl(dir.join("results.jsonl")))
///     .on_exit(FileSink::jsonl(dir.join("log.txt")).formatted(Format::text(|v| format!("booked {}", v["pnr"].as_str().unwrap_or("?")))));
///
/// let ctx = Ctx::builder(()).outputs(outputs).build();
/// trip::Workflow::run(&ctx, "X7K2QP".into()).await?;
///
/// let line = std::fs::read_to_string(dir.join("results.jsonl"))?;
/// let record: serde_json::Value = serde_json::from_str(&line)?;
/// assert_eq!(record["value"]["pnr"], "X7K2QP");
/// assert_eq!(std::fs::read_to_string(dir.join("log.txt"))?, "booked X7K2QP\n");
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok(())
/// # }
/// ```
pub struct FileSink {
    path: PathBuf,
    name: String,
    lock: Mutex<()>,
}

impl FileSink {
    /// Appends to the file at `path`, one line per delivery. Named `file <path>`.
    pub fn jsonl(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        Self {
            name: format!("file {}", path.display()),
            path,
            lock: Mutex::new(()),
        }
    }

    /// The same sink, named `name` in records and errors.
    #[must_use]
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl fmt::Debug for FileSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileSink")
            .field("name", &self.name)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Sink for FileSink {
    fn name(&self) -> &str {
        &self.name
    }

    async fn deliver(&self, delivery: &Delivery) -> Result<(), ToolError> {
        let mut line = delivery.payload().into_body();
        line.push('\n');
        // A blocking write: one short line to a local file, cheaper than a hop to a blocking
        // thread (and tokio's `fs` is not compiled in).
        let _guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        append_durably(&self.path, line.as_bytes()).map_err(|e| {
            let message = format!("cannot append to `{}`: {e}", self.path.display());
            io_error(&e, message).with_source(e)
        })
    }
}

/// Appends `bytes` (one line) to the file at `path`, creating it if needed, and waits until the
/// data is on disk, and a new file's name with it.
///
/// A line is written whole or not at all: a write that fails part way (a full disk) is cut back
/// off, so that the retry's line is not fused onto a torn one. A file that ends in a torn line
/// anyway (a crash mid-write) gets a newline first, so that only that line is unreadable.
pub(crate) fn append_durably(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::{Read as _, Seek as _, SeekFrom};
    let created = !path.exists();
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(path)?;
    let len = file.metadata()?.len();
    let mut torn = false;
    if len > 0 {
        let mut last = [0u8; 1];
        file.seek(SeekFrom::Start(len - 1))?;
        file.read_exact(&mut last)?;
        torn = last[0] != b'\n';
    }
    let written = if torn {
        file.write_all(b"\n").and_then(|()| file.write_all(bytes))
    } else {
        file.write_all(bytes)
    };
    if let Err(e) = written {
        // Best effort: the error is the write's, whatever the cut does.
        let _ = file.set_len(len).and_then(|()| file.sync_data());
        return Err(e);
    }
    file.sync_data()?;
    if created && let Some(dir) = path.parent() {
        // The new file's directory entry is durable only once its directory is synced.
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Retrying cannot fix a missing directory, a permission, or a path that is a directory; a
/// full disk or an interrupted write may clear.
fn io_error(e: &std::io::Error, message: String) -> ToolError {
    match e.kind() {
        ErrorKind::NotFound
        | ErrorKind::PermissionDenied
        | ErrorKind::IsADirectory
        | ErrorKind::NotADirectory
        | ErrorKind::ReadOnlyFilesystem
        | ErrorKind::InvalidInput
        | ErrorKind::InvalidFilename => ToolError::permanent(message),
        _ => ToolError::transient(message),
    }
}
