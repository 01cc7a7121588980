//! The `flow` binary against an SQLite file populated by running real workflows under an
//! engine: a finished run, a run waiting for an event (whose step made a model call and a
//! tool call), a failed run. Each test makes its own file and runs the built binary on it.
#![allow(
    unreachable_pub,
    clippy::missing_errors_doc,
    clippy::missing_panics_doc,
    reason = "test workflows and helpers, public as `#[workflow]` needs its modules' items"
)]

mod fixture;

use fixture::{Declined, Fixture, order, payment, status};
use flow_runtime::prelude::*;
use flow_runtime::store::{RunControl, RunFilter, RunStatus, SqliteStore, Store};
use serde_json::Value;
use std::path::Path;
use std::process::Output;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A trivial workflow, for many finished runs.
#[workflow]
pub mod ping {
    use super::*;

    /// Answers.
    #[step(entry, exit)]
    pub async fn pong(n: u32) -> Result<u32, Declined> {
        Ok(n)
    }
}

impl Fixture {
    /// Runs `flow --db <file> args…`.
    fn flow(&self, args: &[&str]) -> Output {
        flow_at(&self.path, args)
    }

    /// `flow --json --db <file> args…`, expected to succeed, its output parsed.
    fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.flow(&all);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!("not JSON ({e}): {}", text(&out.stdout));
        })
    }
}

fn flow_at(db: &Path, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_flow"))
        .arg("--db")
        .arg(db)
        .args(args)
        .env_remove("FLOW_DB")
        .output()
        .expect("the flow binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn ok(out: &Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn fails(out: &Output, code: i32, says: &str) {
    assert_eq!(out.status.code(), Some(code), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains(says), "stderr {err:?} does not say {says:?}");
}

fn ids(runs: &Value) -> Vec<&str> {
    let mut ids: Vec<&str> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["run_id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    ids
}

#[tokio::test]
async fn list_shows_each_run_and_where_it_stands() {
    let f = Fixture::new().await;
    let out = ok(&f.flow(&["runs", "list"]));
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("RUN") && lines[0].contains("STATE"),
        "{out}"
    );
    assert_eq!(lines.len(), 4, "a header and three runs: {out}");
    let row = |run: &str| *lines.iter().find(|l| l.starts_with(run)).unwrap();
    assert!(row("ord-done").contains("finished"), "{out}");
    assert!(row("ord-wait").contains("waiting"), "{out}");
    assert!(
        row("ord-wait").contains("event `Approval`, deadline in 23h"),
        "{out}"
    );
    assert!(row("pay-failed").contains("failed"), "{out}");
    assert!(
        row("pay-failed").contains("step `charge` failed: card declined for 40"),
        "{out}"
    );
    // Columns are aligned: every row's STATE starts where the header's does.
    let state_at = lines[0].find("STATE").unwrap();
    for l in &lines[1..] {
        assert!(
            ["finished", "waiting", "failed"]
                .iter()
                .any(|s| l[state_at..].starts_with(s)),
            "{out}"
        );
    }
    assert!(
        !out.contains('\x1b'),
        "no colour when stdout is not a terminal"
    );

    let coloured = |env: &[(&str, &str)]| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_flow"));
        command.arg("--db").arg(&f.path).args(["runs", "list"]);
        for (k, v) in env {
            command.env(k, v);
        }
        ok(&command.output().unwrap()).contains("\x1b[")
    };
    assert!(
        coloured(&[("CLICOLOR_FORCE", "1")]),
        "colour when asked for"
    );
    assert!(
        !coloured(&[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")]),
        "NO_COLOR wins"
    );
}

#[tokio::test]
async fn list_filters_and_prints_json() {
    let f = Fixture::new().await;
    let all = f.json(&["runs", "list"]);
    assert_eq!(ids(&all), ["ord-done", "ord-wait", "pay-failed"]);
    let failed = f.json(&["runs", "list", "--status", "failed"]);
    assert_eq!(ids(&failed), ["pay-failed"]);
    let run = &failed[0];
    assert_eq!(run["workflow"], "payment");
    assert_eq!(run["status"], "failed");
    assert_eq!(run["state"], "failed");
    assert_eq!(run["failure"]["step"], "charge");
    assert!(
        run["failure"]["reason"]
            .as_str()
            .unwrap()
            .contains("card declined for 40")
    );
    assert_eq!(run["wait"], Value::Null);
    let waiting = f.json(&["runs", "list", "--workflow", "order", "--status", "running"]);
    assert_eq!(ids(&waiting), ["ord-wait"]);
    assert_eq!(waiting[0]["state"], "waiting");
    assert_eq!(waiting[0]["wait"]["event"], "Approval");
    assert!(waiting[0]["wait"]["until"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        ids(&f.json(&["runs", "list", "-w", "order"])),
        ["ord-done", "ord-wait"]
    );
    assert_eq!(ids(&f.json(&["runs", "list", "--since", "1h"])).len(), 3);
    let future = f.json(&["runs", "list", "--since", "2999-01-01T00:00:00Z"]);
    assert_eq!(ids(&future).len(), 0);
    assert_eq!(ids(&f.json(&["runs", "list", "--limit", "1"])).len(), 1);
    fails(
        &f.flow(&["runs", "list", "--status", "sleepy"]),
        2,
        "expected one of: running, paused",
    );
    fails(
        &f.flow(&["runs", "list", "--since", "yesterday-ish"]),
        2,
        "neither a duration",
    );
}

#[tokio::test]
async fn show_tells_steps_calls_tokens_and_the_pending_wait() {
    let f = Fixture::new().await;
    let run = f.json(&["runs", "show", "ord-wait"]);
    assert_eq!(run["run_id"], "ord-wait");
    assert_eq!(run["state"], "waiting");
    assert_eq!(run["wait"]["event"], "Approval");
    let steps: Vec<&str> = run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    // The engine's start checkpoint, then the step that ran.
    assert_eq!(steps, ["", "quote"]);
    let quote = &run["steps"][1];
    assert_eq!(quote["attempt"], 1);
    assert_eq!(quote["calls"], 2);
    assert!(quote["duration_ms"].is_u64(), "{quote}");
    let calls = run["calls"].as_array().unwrap();
    let names: Vec<&str> = calls.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["model", "price"]);
    assert_eq!(
        calls[0]["tokens"],
        serde_json::json!({ "input": 12, "output": 5 })
    );
    assert_eq!(calls[1]["tokens"], Value::Null);
    assert_eq!(calls[1]["outcome"], "ok");
    assert!(
        calls
            .iter()
            .all(|c| c["duration_ms"].is_u64() && c["checkpointed"] == true)
    );
    assert_eq!(
        run["tokens"],
        serde_json::json!({ "input": 12, "output": 5 })
    );
    assert_eq!(calls[0]["model"], "quoter-2-20261101");
    assert_eq!(run["cost"], Value::Null, "no prices given, no cost");

    let out = ok(&f.flow(&["runs", "show", "ord-wait"]));
    for part in [
        "waits for  event `Approval` until",
        "flow events send ord-wait Approval",
        "tokens     12 in, 5 out",
        "Steps",
        "quote",
        "Calls",
        "model",
        "12/5",
    ] {
        assert!(out.contains(part), "{part:?} not in:\n{out}");
    }

    let failed = f.json(&["runs", "show", "pay-failed"]);
    assert_eq!(failed["state"], "failed");
    let last = failed["steps"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["step"], "check");
    assert_eq!(last["failure"]["step"], "charge");
    let out = ok(&f.flow(&["runs", "show", "pay-failed"]));
    assert!(
        out.contains("then: workflow `payment`: step `charge` failed: card declined for 40"),
        "{out}"
    );

    let done = f.json(&["runs", "show", "ord-done"]);
    assert_eq!(done["state"], "finished");
    assert_eq!(done["steps"].as_array().unwrap().len(), 4);
    assert_eq!(done["steps"][3]["finished"], true);

    fails(
        &f.flow(&["runs", "show", "nope"]),
        3,
        "run `nope` is not in the store",
    );
}

/// A run whose wake-up time and deadline are past year 9999, as a version before the clamp
/// at write stored for a wait of 2^50 s (or a corrupt row): `list` and `show`, as tables and as
/// JSON, print the last time RFC 3339 can write instead of panicking.
#[tokio::test]
async fn times_past_year_9999_are_printed_not_panicked_on() {
    let f = Fixture::new().await;
    let far = i64::try_from(
        (SystemTime::now() + Duration::from_secs(1 << 50))
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    let changed = rusqlite::Connection::open(&f.path)
        .unwrap()
        .execute(
            "UPDATE runs SET wake_at = ?1, wait_until = ?1 WHERE run_id = 'ord-wait'",
            [far],
        )
        .unwrap();
    assert_eq!(changed, 1);

    let out = ok(&f.flow(&["runs", "list"]));
    assert!(out.contains("ord-wait"), "{out}");
    let out = ok(&f.flow(&["runs", "show", "ord-wait"]));
    assert!(out.contains("9999-12-31T23:59:59Z"), "{out}");
    let run = f.json(&["runs", "show", "ord-wait"]);
    assert_eq!(run["wait"]["until"], "9999-12-31T23:59:59.999Z");
    let runs = f.json(&["runs", "list"]);
    assert!(
        runs.as_array()
            .unwrap()
            .iter()
            .any(|r| r["wait"]["until"] == "9999-12-31T23:59:59.999Z"),
        "{runs}"
    );
}

#[tokio::test]
async fn cancel_pause_and_resume_follow_the_status_table() {
    let f = Fixture::new().await;
    let out = ok(&f.flow(&["runs", "pause", "ord-wait"]));
    assert_eq!(out.trim(), "run ord-wait: paused (was waiting)");
    let out = ok(&f.flow(&["runs", "pause", "ord-wait"]));
    assert_eq!(out.trim(), "run ord-wait: already paused");
    assert_eq!(
        status(&f.store(), "ord-wait").await,
        Some(RunStatus::Paused)
    );
    let resumed = f.json(&["runs", "resume", "ord-wait"]);
    assert_eq!(
        (&resumed["status"], &resumed["state"]),
        (&"running".into(), &"waiting".into())
    );
    // A failed run is retried by resuming it.
    let out = ok(&f.flow(&["runs", "resume", "pay-failed"]));
    assert_eq!(out.trim(), "run pay-failed: running (was failed)");
    let out = ok(&f.flow(&["runs", "cancel", "ord-wait"]));
    assert_eq!(out.trim(), "run ord-wait: cancelled (was waiting)");
    assert_eq!(
        status(&f.store(), "ord-wait").await,
        Some(RunStatus::Cancelled)
    );
    fails(
        &f.flow(&["runs", "cancel", "ord-done"]),
        4,
        "cannot cancel run `ord-done`: it is finished",
    );
    fails(
        &f.flow(&["runs", "resume", "ord-wait"]),
        4,
        "it is cancelled",
    );
    fails(
        &f.flow(&["runs", "pause", "ghost"]),
        3,
        "run `ghost` is not in the store",
    );
}

#[tokio::test]
async fn events_are_checked_against_what_the_run_waits_for() {
    let f = Fixture::new().await;
    fails(
        &f.flow(&["events", "send", "ord-wait", "Payment", "{}"]),
        4,
        "run `ord-wait` does not wait for event `Payment`: it waits for event `Approval`",
    );
    fails(
        &f.flow(&["events", "send", "ord-wait", "Approval", "{by: ada}"]),
        2,
        "the event is not JSON",
    );
    fails(
        &f.flow(&["events", "send", "pay-failed", "Approval", "{}"]),
        4,
        "it waits for no event (it is failed)",
    );
    fails(
        &f.flow(&["events", "send", "ghost", "Approval", "{}"]),
        3,
        "not in the store",
    );
    let out = ok(&f.flow(&["events", "send", "ord-wait", "Approval", r#"{"by":"bo"}"#]));
    assert_eq!(
        out.trim(),
        "run ord-wait: sent event `Approval`; the run is due now"
    );
    let store = f.store();
    let event = store
        .next_event(&"ord-wait".into(), "Approval")
        .await
        .unwrap()
        .expect("in the inbox");
    assert_eq!(event.payload, serde_json::json!({ "by": "bo" }));
    // Forced: kept for a later step.
    let sent = f.json(&["events", "send", "pay-failed", "Refund", "7", "--force"]);
    assert_eq!(sent["awaited"], false);
    // A finished run takes no more events, forced or not.
    fails(
        &f.flow(&["events", "send", "ord-done", "Approval", "{}", "--force"]),
        4,
        "takes no more events",
    );
    // The engine finishes the run with the event the CLI sent.
    let store = Arc::new(store);
    let engine = fixture::engine(&store, false);
    let finished = async {
        while status(&store, "ord-wait").await != Some(RunStatus::Finished) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    engine.run_until(finished).await.unwrap();
}

#[tokio::test]
async fn graph_prints_the_recorded_mermaid() {
    let f = Fixture::new().await;
    let out = ok(&f.flow(&["graph", "order"]));
    assert_eq!(
        out.trim_end(),
        <order::Workflow as Workflow>::MERMAID.trim_end()
    );
    let info = f.json(&["graph", "payment"]);
    assert_eq!(info["steps"], serde_json::json!(["check", "charge"]));
    assert_eq!(
        info["fingerprint"],
        <payment::Workflow as Workflow>::FINGERPRINT
    );
    fails(&f.flow(&["graph", "shipping"]), 3, "it has: order, payment");
    fails(
        &f.flow(&["graph", "order", "--fingerprint", "old"]),
        3,
        "no version with fingerprint `old`",
    );
}

#[tokio::test]
async fn prune_deletes_finished_runs_in_batches() {
    let f = Fixture::new().await;
    {
        let store = Arc::new(f.store());
        for n in 0..25 {
            let ctx = Ctx::builder(())
                .run_id(format!("ping-{n}"))
                .store(Arc::clone(&store))
                .build();
            ping::Workflow::run(&ctx, n).await.unwrap();
        }
        store.cancel(&"ord-wait".into()).await.unwrap();
    }
    // Nothing is a day old.
    assert_eq!(f.json(&["prune", "--older-than", "1day"])["pruned"], 0);
    let out = ok(&f.flow(&["prune", "--older-than", "0s", "--batch", "4"]));
    // 25 pings, `ord-done`, and the cancelled `ord-wait`.
    assert_eq!(out.trim(), "pruned 27 finished or cancelled runs");
    assert_eq!(ids(&f.json(&["runs", "list"])), ["pay-failed"]);
    fails(&f.flow(&["prune", "--batch", "0"]), 2, "--batch");
}

#[tokio::test]
async fn the_store_must_be_one_this_build_can_open() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.sqlite");
    fails(&flow_at(&missing, &["runs", "list"]), 1, "no store at");
    assert!(!missing.exists(), "a missing store is not created");
    // A database that is not there: refused, the password kept out of the message.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_flow"))
        .args([
            "--db",
            "postgres://flow:hunter2@127.0.0.1:1/runs?connect_timeout=2",
            "runs",
            "list",
        ])
        .output()
        .unwrap();
    fails(&out, 1, "postgres store `postgres://flow:");
    assert!(
        !text(&out.stderr).contains("hunter2"),
        "the password stays out: {}",
        text(&out.stderr)
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_flow"))
        .args(["runs", "list"])
        .env_remove("FLOW_DB")
        .output()
        .unwrap();
    fails(&out, 2, "no store given");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_flow"))
        .args(["runs", "frobnicate"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn help_keeps_the_password_of_flow_db_out() {
    // `FLOW_DB` set in the environment, as the help text suggests: `--help` names the
    // variable but never prints its value, a URL that may hold a password.
    for args in [&["--help"][..], &["runs", "list", "--help"]] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_flow"))
            .args(args)
            .env("FLOW_DB", "postgres://flow:hunter2@db.example/runs")
            .output()
            .unwrap();
        let help = ok(&out);
        assert!(help.contains("FLOW_DB"), "{help}");
        assert!(!help.contains("hunter2"), "the password stays out: {help}");
    }
}

/// Runs an engine on the fixture's store until `runs` have ended (finished or failed).
async fn finish(f: &Fixture, runs: &[&str]) -> Arc<SqliteStore> {
    let store = Arc::new(f.store());
    let engine = fixture::engine(&store, true);
    let ended = async {
        for run in runs {
            while !matches!(
                status(&store, run).await,
                Some(RunStatus::Finished | RunStatus::Failed)
            ) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };
    engine.run_until(ended).await.unwrap();
    store
}

#[tokio::test]
async fn approvals_are_shown_and_decided_once() {
    let f = Fixture::with_approvals().await;
    let a = f.pending_call("refund-a").await;
    let b = f.pending_call("refund-b").await;
    assert_ne!(a, b);

    // `runs show` and `runs list` say which call waits, and how to decide it.
    let run = f.json(&["runs", "show", "refund-a"]);
    assert_eq!(run["state"], "awaiting_approval");
    assert_eq!(run["approval"]["call_id"], a.as_str());
    assert_eq!(run["approval"]["tool"], "refund");
    assert_eq!(run["approval"]["arguments"], 499);
    assert_eq!(run["approval"]["step"], "pay");
    assert_eq!(run["approval"]["decision"], Value::Null);
    assert_eq!(run["approvals"].as_array().unwrap().len(), 1);
    let out = ok(&f.flow(&["runs", "show", "refund-a"]));
    for part in [
        format!("approval   call `{a}` of tool `refund` with arguments 499, until"),
        format!(
            "decide     `flow approve refund-a {a}` or `flow reject refund-a {a} --reason '<why>'`"
        ),
        "Approvals".to_owned(),
        "pending".to_owned(),
    ] {
        assert!(out.contains(&part), "{part:?} not in:\n{out}");
    }
    assert!(!out.contains("flow events send"), "{out}");
    let list = ok(&f.flow(&["runs", "list"]));
    let row = list.lines().find(|l| l.starts_with("refund-b")).unwrap();
    assert!(
        row.contains(&format!("approval of `refund` call `{b}`, deadline in 23h")),
        "{list}"
    );
    let listed = f.json(&["runs", "list", "--workflow", "payout"]);
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["approval"]["tool"] == "refund"),
        "{listed}"
    );

    // Refusals: each its exit code, and nothing changes.
    fails(
        &f.flow(&["approve", "ghost", &a]),
        3,
        "run `ghost` is not in the store",
    );
    fails(
        &f.flow(&["approve", "refund-a", &b]),
        5,
        &format!(
            "run `refund-a` has no pending call `{b}`: it waits for the approval of call `{a}` (tool `refund`)"
        ),
    );
    fails(
        &f.flow(&["reject", "ord-wait", &a]),
        7,
        "run `ord-wait` waits for no approval",
    );
    fails(
        &f.flow(&["approve", "refund-a", &a, "--arguments", "{cents"]),
        2,
        "--arguments is not JSON",
    );
    fails(
        &f.flow(&["reject", "refund-a", &a, "--reason", " "]),
        2,
        "--reason is empty",
    );
    fails(
        &f.flow(&[
            "events",
            "send",
            "refund-a",
            "flow.approval",
            "{}",
            "--force",
        ]),
        4,
        &format!("waits for the approval of call `{a}` (tool `refund`), not for an event"),
    );
    let store = f.store();
    for run in ["refund-a", "refund-b"] {
        let info = store.status(&run.into()).await.unwrap().unwrap();
        assert!(info.approval.is_some(), "{run} still waits");
        assert!(
            store
                .next_event(&run.into(), "flow.approval")
                .await
                .unwrap()
                .is_none()
        );
    }

    // Decided once.
    let out = ok(&f.flow(&["approve", "refund-a", &a]));
    assert_eq!(
        out.trim(),
        format!("run refund-a: call `{a}` of tool `refund` approved; the run is due now")
    );
    fails(
        &f.flow(&["approve", "refund-a", &a]),
        6,
        &format!("call `{a}` of run `refund-a` was approved already"),
    );
    let rejected = f.json(&["reject", "refund-b", &b, "--reason", "over budget"]);
    assert_eq!(rejected["run_id"], "refund-b");
    assert_eq!(rejected["call_id"], b.as_str());
    assert_eq!(rejected["decision"], "rejected");
    assert_eq!(rejected["reason"], "over budget");
    fails(
        &f.flow(&["approve", "refund-b", &b]),
        6,
        "was rejected (over budget) already",
    );

    // The engine takes the decisions: the approved refund is made, the rejected one fails
    // its step with the reason.
    let store = finish(&f, &["refund-a", "refund-b"]).await;
    let engine = fixture::engine(&store, true);
    let done = engine
        .outcome::<fixture::payout::Workflow>(&"refund-a".into())
        .await
        .unwrap();
    assert!(
        matches!(&done, flow_runtime::state::RunResult::Finished(out) if out == "refunded 499"),
        "{done:?}"
    );
    let failed = f.json(&["runs", "show", "refund-b"]);
    assert_eq!(failed["state"], "failed");
    let reason = failed["failure"]["reason"].as_str().unwrap();
    assert!(reason.contains("over budget"), "{reason}");
    assert_eq!(failed["approvals"][0]["decision"], "rejected");
    let out = ok(&f.flow(&["runs", "show", "refund-a"]));
    assert!(out.contains("approved"), "{out}");
    fails(
        &f.flow(&["approve", "refund-a", &a]),
        6,
        "was approved already",
    );
}

#[tokio::test]
async fn an_approval_can_change_the_arguments_but_not_outlive_its_deadline() {
    let f = Fixture::with_approvals().await;
    let a = f.pending_call("refund-a").await;
    let approved = f.json(&["approve", "refund-a", &a, "--arguments", "300"]);
    assert_eq!(approved["decision"], "approved");
    assert_eq!(approved["arguments"], 499);
    assert_eq!(approved["edited"], 300);

    // A request whose deadline has passed is not decided by a person.
    let store = f.store();
    let late = flow_runtime::store::Approval::new(
        "refund-b".into(),
        "pay",
        flow_runtime::tool::Visit::FIRST,
        7,
        "late-call",
        "refund",
        serde_json::json!(1),
        std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1),
    );
    store.request_approval(late).await.unwrap();
    fails(
        &f.flow(&["approve", "refund-b", "late-call"]),
        6,
        "the approval of call `late-call` of run `refund-b` expired",
    );

    let store = finish(&f, &["refund-a"]).await;
    let engine = fixture::engine(&store, true);
    let done = engine
        .outcome::<fixture::payout::Workflow>(&"refund-a".into())
        .await
        .unwrap();
    assert!(
        matches!(&done, flow_runtime::state::RunResult::Finished(out) if out == "refunded 300"),
        "{done:?}"
    );
}

#[tokio::test]
async fn show_prices_model_calls_at_the_prices_given() {
    let f = Fixture::new().await;
    // 12 input and 5 output tokens at 3 and 15 per million; the longest matching name wins.
    let args = [
        "runs",
        "show",
        "ord-wait",
        "--price",
        "quoter=1/1,quoter-2=3/15",
    ];
    let run = f.json(&args);
    let total = run["cost"]["total"].as_f64().unwrap();
    assert!(
        (total - (12.0 * 3.0 + 5.0 * 15.0) / 1e6).abs() < 1e-12,
        "{run}"
    );
    assert_eq!(run["cost"]["unpriced_calls"], 0);
    let out = ok(&f.flow(&args));
    assert!(out.contains("cost       0.0001\n"), "{out}");

    let run = f.json(&["runs", "show", "ord-wait", "--price", "other=3/15"]);
    assert_eq!(run["cost"]["total"], 0.0);
    assert_eq!(run["cost"]["unpriced_calls"], 1, "{run}");

    let bad = f.flow(&["runs", "show", "ord-wait", "--price", "quoter-2=3"]);
    assert_eq!(bad.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("expected MODEL=IN/OUT"), "{stderr}");
}

/// The same commands on a PostgreSQL database (`--db postgres://…`): runs an engine filled are
/// listed, shown and steered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_store_is_read_and_steered_like_a_file() {
    use flow_runtime::state::Setup;
    let (store, database) = flow_tests::pg::fresh_store().await;
    let store = Arc::new(store);
    let engine = flow_runtime::state::Engine::builder(Arc::clone(&store))
        .register::<fixture::order::Workflow>(Setup::new(()).tools(fixture::tools()))
        .register::<fixture::payment::Workflow>(Setup::new(()))
        .poll_interval(Duration::from_millis(10))
        .build();
    engine
        .start::<fixture::order::Workflow>("pg-wait", 3)
        .await
        .unwrap();
    engine
        .start::<fixture::payment::Workflow>("pg-failed", 40)
        .await
        .unwrap();
    let settled = async {
        loop {
            let runs = store.list(&RunFilter::new()).await.unwrap();
            let waiting = runs.iter().any(|r| r.wait.is_some());
            let failed = runs.iter().any(|r| r.status == RunStatus::Failed);
            if waiting && failed {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    engine.run_until(settled).await.unwrap();
    let flow = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_flow"))
            .arg("--db")
            .arg(&database.url)
            .args(args)
            .output()
            .unwrap()
    };
    let listed = ok(&flow(&["runs", "list"]));
    assert!(
        listed.contains("pg-wait") && listed.contains("pg-failed"),
        "{listed}"
    );
    let shown = ok(&flow(&["runs", "show", "pg-failed"]));
    assert!(shown.contains("card declined for 40"), "{shown}");
    ok(&flow(&["runs", "cancel", "pg-wait"]));
    assert_eq!(
        store
            .status(&"pg-wait".into())
            .await
            .unwrap()
            .unwrap()
            .status,
        RunStatus::Cancelled
    );
}
