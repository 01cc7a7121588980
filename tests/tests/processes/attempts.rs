//! A step killed with `SIGKILL` runs again as attempt 2: `attempt_worker` (in `src/bin`) runs
//! an engine on an SQLite file until this test kills it in the middle of a step, holding the
//! engine lock; meanwhile an engine in this process is refused; a second worker then takes the
//! lock the dead process left and finishes the run, telling the step it is a retry.

use flow_runtime::prelude::*;
use flow_runtime::state::{Engine, Setup};
use flow_runtime::store::SqliteStore;
use flow_tests::store::TempDb;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Failed(String);

/// The workflow of this process's engine, which never gets to run it.
#[workflow]
pub mod pair {
    use super::*;

    #[step(entry)]
    pub async fn one(n: u32) -> Result<u32, Failed> {
        Ok(n + 1)
    }

    #[step(after = one, exit)]
    pub async fn two(n: u32) -> Result<u32, Failed> {
        Ok(n * 2)
    }
}

fn read_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_step_killed_by_sigkill_runs_again_as_attempt_2() {
    use std::os::unix::process::ExitStatusExt;
    let temp = TempDb::new();
    let db = temp.path();
    let log = db.with_extension("log");
    let worker = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_attempt_worker"))
            .arg(db)
            .arg(&log)
            .stdin(std::process::Stdio::null())
            .spawn()
            .expect("start attempt_worker")
    };
    let mut first = worker();
    wait_for("step s2 to start", || {
        read_lines(&log).contains(&"s2 1".to_owned())
    });
    // Meanwhile an engine in this process is refused: the worker's engine holds the lock.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let refused = runtime.block_on(async {
        let store = Arc::new(SqliteStore::open(db).unwrap());
        let engine = Engine::builder(store)
            .register::<pair::Workflow>(Setup::new(()))
            .build();
        engine.run_until(std::future::ready(())).await.unwrap_err()
    });
    let message = refused.to_string();
    assert!(
        message.contains(&format!("process {} holds", first.id())),
        "{message}"
    );
    first.kill().unwrap(); // SIGKILL, in the middle of `s2`, holding the engine lock
    let status = first.wait().unwrap();
    assert_eq!(status.signal(), Some(9), "{status}");

    // The lock died with the process: a new engine starts, and `s2` knows it is a retry (on
    // attempt 1 it would hang for an hour: give up after a minute).
    let mut second = worker();
    let mut status = None;
    wait_for("the second worker to finish", || {
        status = second.try_wait().unwrap();
        if status.is_none() && read_lines(&log).iter().filter(|l| *l == "s2 1").count() > 1 {
            let _ = second.kill();
            panic!("step s2 ran again as attempt 1: {:?}", read_lines(&log));
        }
        status.is_some()
    });
    let status = status.unwrap();
    assert!(status.success(), "the second worker failed: {status}");
    assert_eq!(read_lines(&log), ["s1 1", "s2 1", "s2 2", "s3 1"]);
}
