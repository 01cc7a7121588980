//! Opening the store `--db` names: an SQLite file, or (once the PostgreSQL store exists) a
//! `postgres://` URL.

use crate::error::CliError;
use flow_runtime::store::SqliteStore;
use std::path::Path;

/// A store the CLI can open. Commands are generic over the store contract; `main` picks the
/// instance.
#[derive(Debug)]
pub(crate) enum Db {
    /// An SQLite file.
    Sqlite(SqliteStore),
}

/// Opens the store at `target`.
///
/// # Errors
///
/// No `--db` was given, a PostgreSQL URL (this build has no PostgreSQL store), no file at
/// the path, or the store could not open it.
pub(crate) fn open(target: Option<&str>) -> Result<Db, CliError> {
    let Some(target) = target else {
        return Err(CliError::Usage(
            "no store given: pass `--db <sqlite file>` or set FLOW_DB".to_owned(),
        ));
    };
    if target.starts_with("postgres://") || target.starts_with("postgresql://") {
        return Err(CliError::Unsupported(format!(
            "`{}`: this build has no PostgreSQL support yet; pass an SQLite file's path",
            redact(target)
        )));
    }
    let path = Path::new(target);
    // Opening a missing file would create an empty store: a typo would then list no runs.
    if !path.is_file() {
        return Err(CliError::Unsupported(format!(
            "no store at `{}`: pass the path of the SQLite file your engine writes",
            path.display()
        )));
    }
    Ok(Db::Sqlite(SqliteStore::open(path)?))
}

/// A database URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme + 3],
                    &credentials[..colon],
                    &url[at..]
                ),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_stay_out_of_messages() {
        assert_eq!(
            redact("postgres://flow:secret@db:5432/runs"),
            "postgres://flow:***@db:5432/runs"
        );
        assert_eq!(redact("postgres://db/runs"), "postgres://db/runs");
    }
}
