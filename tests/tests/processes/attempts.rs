//! A step killed with `SIGKILL` runs again as attempt 2: `attempt_worker` (in `src/bin`) runs
//! an engine on an SQLite file until this test kills it in the middle of a step, holding the
//! run's lease; a second worker takes the run over once the lease has expired and finishes
//! it, telling the step it is a retry.

use flow_tests::store::TempDb;
use std::path::Path;
use std::time::Duration;

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
    first.kill().unwrap(); // SIGKILL, in the middle of `s2`, holding the run's lease
    let status = first.wait().unwrap();
    assert_eq!(status.signal(), Some(9), "{status}");

    // A new engine takes the run over once the dead one's lease (500 ms) has expired, and `s2`
    // knows it is a retry (on attempt 1 it would hang for an hour: give up after a minute).
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
