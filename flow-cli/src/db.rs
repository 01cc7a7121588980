//! Opening the store `--db` names: an SQLite file, or a PostgreSQL database's `postgres://`
//! URL.

use crate::error::CliError;
use flow_runtime::store::{PgStore, SqliteStore};
use std::path::Path;

/// A store the CLI can open. Commands are generic over the store contract; `main` picks the
/// instance.
#[derive(Debug)]
pub(crate) enum Db {
    /// An SQLite file.
    Sqlite(SqliteStore),
    /// A PostgreSQL database.
    Postgres(PgStore),
}

/// Opens the store at `target`.
///
/// # Errors
///
/// No `--db` was given, no file at the path, the database cannot be reached, or the store
/// could not open it. Messages never carry a URL's password.
pub(crate) async fn open(target: Option<&str>) -> Result<Db, CliError> {
    let Some(target) = target else {
        return Err(CliError::Usage(
            "no store given: pass `--db <sqlite file or postgres:// URL>` or set FLOW_DB"
                .to_owned(),
        ));
    };
    if target.starts_with("postgres://") || target.starts_with("postgresql://") {
        // `PgStore` keeps the password out of its errors.
        return Ok(Db::Postgres(PgStore::connect(target).await?));
    }
    let path = Path::new(target);
    // Opening a missing file would create an empty store: a typo would then list no runs.
    if !path.is_file() {
        return Err(CliError::Unsupported(format!(
            "no store at `{}`: pass the path of the SQLite file your engine writes, or a \
             `postgres://` URL",
            path.display()
        )));
    }
    Ok(Db::Sqlite(SqliteStore::open(path)?))
}
