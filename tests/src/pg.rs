//! A throwaway PostgreSQL 15 cluster for the tests of a test process, and a fresh database
//! in it for each store.
//!
//! The first call to [`server`] makes a cluster in a new temporary directory with the
//! Debian server binaries (`/usr/lib/postgresql/15/bin`; `FLOW_PG_BIN` names another
//! directory), starts it listening only on a Unix socket in that directory, and waits until
//! it takes connections. `initdb` refuses to run as root, and CI runs as root: then the
//! cluster is made and run as user `nobody`, the directory given to it.
//!
//! The server stops when the test process exits, however it exits, even by `SIGKILL`: it
//! runs under a shell that holds the read end of a pipe whose write end only this process
//! holds (the shell's standard input). When this process is gone, the shell's `read` sees
//! the end of the pipe; it stops the server (a fast shutdown) and removes the directory.
//!
//! A machine without the binaries fails the test with a message that says how to install
//! them: a test that needs Postgres never passes without it.

use flow_runtime::store::PgStore;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Where Debian's `postgresql-15` package puts the server binaries.
const DEFAULT_BIN: &str = "/usr/lib/postgresql/15/bin";

/// The user every test database belongs to (the cluster's superuser, trusted on its socket).
const USER: &str = "flow";

/// A running cluster, stopped when the test process exits.
#[derive(Debug)]
pub struct PgServer {
    /// The cluster's directory: its data in `data/`, its socket `.s.PGSQL.5432`, its log.
    dir: PathBuf,
    bin: PathBuf,
    /// The shell the server runs under. Its standard input is a pipe whose write end is held
    /// here and never written: the end of the pipe, when this process exits, stops the server.
    _guard: Child,
}

static SERVER: OnceLock<Result<PgServer, String>> = OnceLock::new();

/// The cluster of this test process, started on first use.
///
/// # Panics
///
/// The cluster cannot be made or started; the message says why (and how to install the
/// server when its binaries are missing).
pub fn server() -> &'static PgServer {
    match SERVER.get_or_init(start) {
        Ok(server) => server,
        Err(message) => panic!("{message}"),
    }
}

/// A database in the test process's cluster.
#[derive(Clone, Debug)]
pub struct Database {
    /// Its name, for [`PgServer::psql`].
    pub name: String,
    /// Its URL, for [`PgStore::connect`].
    pub url: String,
}

/// A new empty database in this process's cluster.
///
/// # Panics
///
/// As [`server`], or the database cannot be made.
#[must_use]
pub fn fresh_database() -> Database {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let server = server();
    let name = format!(
        "flow_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    server.psql("postgres", &format!("CREATE DATABASE {name}"), &[]);
    Database {
        url: server.url(&name),
        name,
    }
}

/// A [`PgStore`] on a new empty database, and the database (to open it again, to hand to a
/// child process, or to read behind the store's back).
///
/// # Panics
///
/// As [`fresh_database`], or the store cannot connect.
pub async fn fresh_store() -> (PgStore, Database) {
    let database = fresh_database();
    let store = PgStore::connect(&database.url)
        .await
        .expect("connect a PgStore to a fresh test database");
    (store, database)
}

impl PgServer {
    /// The URL of database `database` in this cluster, over its Unix socket.
    #[must_use]
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://{USER}@localhost/{database}?host={}",
            self.dir.display()
        )
    }

    /// The cluster's directory (its socket is in it).
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Runs `sql` in `database` with `psql`, each of `vars` set as a psql variable (`:'name'`
    /// in the SQL quotes its value as a literal), and returns what it printed: a command's tag
    /// (`UPDATE 1`), or rows, one per line, columns separated by `|`.
    ///
    /// # Panics
    ///
    /// `psql` cannot run, or the statement fails.
    pub fn psql(&self, database: &str, sql: &str, vars: &[(&str, &str)]) -> String {
        let mut cmd = Command::new(self.bin.join("psql"));
        cmd.args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h"])
            .arg(&self.dir)
            .args(["-U", USER, "-d", database]);
        for (name, value) in vars {
            cmd.arg("-v").arg(format!("{name}={value}"));
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run psql");
        // Through standard input, where psql substitutes its variables (it does not in `-c`).
        child
            .stdin
            .take()
            .expect("psql's standard input")
            .write_all(format!("{sql};\n").as_bytes())
            .expect("write to psql");
        let out = child.wait_with_output().expect("wait for psql");
        assert!(
            out.status.success(),
            "psql failed on `{sql}`: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

/// `program` run as the cluster's owner: `nobody` when this process is root (`initdb` and
/// `postgres` refuse root), this process's user otherwise.
fn as_owner(root: bool, program: &Path) -> Command {
    if root {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "nobody", "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

fn start() -> Result<PgServer, String> {
    let bin =
        std::env::var_os("FLOW_PG_BIN").map_or_else(|| PathBuf::from(DEFAULT_BIN), PathBuf::from);
    if !bin.join("initdb").is_file() || !bin.join("postgres").is_file() {
        return Err(format!(
            "the PostgreSQL 15 server is not installed: no `initdb` and `postgres` in `{}`. \
             The Postgres tests start a cluster of their own with it; install it with \
             `apt-get install -y postgresql-15` (or set FLOW_PG_BIN to the directory of its \
             binaries)",
            bin.display()
        ));
    }
    let dir = tempfile::Builder::new()
        .prefix("flow-pg-")
        .tempdir()
        .map_err(|e| format!("cannot make a temporary directory for PostgreSQL: {e}"))?
        .keep();
    let root = is_root();
    if root {
        let chown = Command::new("chown")
            .arg("nobody:")
            .arg(&dir)
            .status()
            .map_err(|e| format!("cannot run chown: {e}"))?;
        if !chown.success() {
            return Err(format!("cannot give `{}` to user nobody", dir.display()));
        }
    }
    let data = dir.join("data");
    let initdb = as_owner(root, &bin.join("initdb"))
        .args([
            "-U",
            USER,
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
            "-D",
        ])
        .arg(&data)
        .output()
        .map_err(|e| format!("cannot run initdb: {e}"))?;
    if !initdb.status.success() {
        return Err(format!(
            "initdb failed: {}{}",
            String::from_utf8_lossy(&initdb.stdout),
            String::from_utf8_lossy(&initdb.stderr)
        ));
    }
    // `read` returns when this process's end of the pipe closes: at its exit, however it
    // exits. Then a fast shutdown (SIGINT), and the directory goes.
    let script = r#"
"$0" -D "$1/data" -k "$1" -c listen_addresses= -c fsync=off -c synchronous_commit=off \
    -c full_page_writes=off -c max_connections=200 >"$1/log" 2>&1 &
pid=$!
read _
kill -INT "$pid"
wait "$pid"
rm -rf "$1"
"#;
    let guard = as_owner(root, Path::new("sh"))
        .arg("-c")
        .arg(script)
        .arg(bin.join("postgres"))
        .arg(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start postgres: {e}"))?;
    let server = PgServer {
        dir,
        bin,
        _guard: guard,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ready = Command::new(server.bin.join("pg_isready"))
            .arg("-h")
            .arg(&server.dir)
            .args(["-U", USER, "-d", "postgres", "-q"])
            .status()
            .is_ok_and(|s| s.success());
        if ready {
            return Ok(server);
        }
        if Instant::now() > deadline {
            let log = std::fs::read_to_string(server.dir.join("log")).unwrap_or_default();
            return Err(format!(
                "PostgreSQL did not start within 60 s in `{}`; its log:\n{log}",
                server.dir.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
