//! Output sinks attached to a workflow's steps and exit, as a run uses them: a webhook on
//! loopback that fails, a dead letter, a file, the run's history in SQLite, resuming after a
//! failed delivery, and attachments the run refuses before its first step.

use axum::http::StatusCode;
use flow_runtime::error::StoreErrorKind;
use flow_runtime::output::{DeadLetter, FileSink, Format, OutputError, Outputs, Sink, Webhook};
use flow_runtime::prelude::*;
use flow_runtime::state::{CallKind, CallOutcome};
use flow_tests::http::serve;
use flow_tests::quick_retry;
use flow_tests::store::TempDb;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Debug, thiserror::Error)]
#[error("failed")]
pub struct Failed;

#[workflow]
pub mod order {
    use super::*;

    pub enum Route {
        Short(String),
        Long(String),
    }

    #[step(entry)]
    pub async fn take(item: String) -> Result<String, Failed> {
        Ok(item.trim().to_owned())
    }

    #[step(after = take, routes = Route)]
    pub async fn size(item: String) -> Result<Route, Failed> {
        Ok(if item.len() < 5 {
            Route::Short(item)
        } else {
            Route::Long(item)
        })
    }

    #[step(after = size, exit)]
    pub async fn short(item: String) -> Result<String, Failed> {
        Ok(format!("order {item} (short)"))
    }

    #[step(after = size, exit)]
    pub async fn long(item: String) -> Result<String, Failed> {
        Ok(format!("order {item} (long)"))
    }
}

/// A webhook receiver on loopback answering `status` to the first `fail_first` requests and
/// 200 afterwards; it keeps the bodies it accepted and counts every request.
struct Hook {
    fail_first: usize,
    status: StatusCode,
    requests: AtomicUsize,
    accepted: Mutex<Vec<String>>,
}

async fn hook(fail_first: usize, status: u16) -> (Arc<Hook>, String) {
    let hook = Arc::new(Hook {
        fail_first,
        status: StatusCode::from_u16(status).unwrap(),
        requests: AtomicUsize::new(0),
        accepted: Mutex::new(Vec::new()),
    });
    let app = axum::Router::new()
        .route(
            "/hook",
            axum::routing::post(
                |axum::extract::State(hook): axum::extract::State<Arc<Hook>>, body: String| async move {
                    let n = hook.requests.fetch_add(1, Ordering::SeqCst);
                    if n < hook.fail_first {
                        return hook.status;
                    }
                    hook.accepted.lock().unwrap().push(body);
                    StatusCode::OK
                },
            ),
        )
        .with_state(Arc::clone(&hook));
    let url = format!("{}/hook", serve(app).await);
    (hook, url)
}

#[tokio::test]
async fn a_failing_webhook_is_retried_recorded_and_the_result_is_kept() {
    let db = TempDb::new();
    let (hook, url) = hook(usize::MAX, 503).await;
    let receipts = db.dir().join("receipts.jsonl");
    let dead = DeadLetter::memory();
    let outputs = Outputs::new()
        .on_exit(FileSink::jsonl(&receipts))
        .on_exit(Webhook::new(&url).unwrap())
        .retry(quick_retry(3))
        .dead_letter(dead.clone());
    let store = db.open();
    let ctx = Ctx::builder(())
        .run_id("order-1")
        .store(Arc::clone(&store))
        .outputs(outputs)
        .build();

    let error = order::Workflow::run(&ctx, " tea ".into())
        .await
        .unwrap_err();

    // The caller sees the failed delivery.
    let order::FlowError::Runtime(RuntimeError::Output(OutputError::Undelivered {
        step,
        sinks,
        dead_lettered,
        ..
    })) = &error
    else {
        panic!("expected Undelivered, got {error:?}");
    };
    assert_eq!(step, "short");
    assert_eq!(sinks.len(), 1);
    assert!(sinks[0].starts_with("webhook"));
    assert!(dead_lettered);
    // Retried: three attempts reached the receiver.
    assert_eq!(hook.requests.load(Ordering::SeqCst), 3);
    // The result is still there: in the file sink, and in the dead letter with the error.
    let lines = std::fs::read_to_string(&receipts).unwrap();
    assert!(lines.contains("order tea (short)"), "{lines}");
    let letters = dead.records().unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].value, "order tea (short)");
    assert_eq!(letters[0].attempts, 3);
    // Recorded: both deliveries, with attempts and outcome, in the run's history.
    let outputs: Vec<_> = ctx
        .calls()
        .into_iter()
        .filter(|c| c.kind == CallKind::Output)
        .collect();
    assert_eq!(outputs.len(), 2);
    assert!(
        outputs
            .iter()
            .any(|c| c.attempts == 3 && matches!(c.outcome, CallOutcome::Failed(_)))
    );
    assert!(
        outputs
            .iter()
            .any(|c| c.attempts == 1 && c.outcome == CallOutcome::Ok)
    );
    // The run stopped before the exit's checkpoint: it is resumable, not finished.
    let latest = store.latest(&"order-1".into()).await.unwrap().unwrap();
    assert!(!latest.finished);
    assert_eq!(latest.step, "size");
}

#[tokio::test]
async fn resuming_after_a_failed_delivery_delivers_it() {
    let db = TempDb::new();
    // Fails the first three requests (one whole delivery), then accepts.
    let (hook, url) = hook(3, 500).await;
    let outputs = || {
        Outputs::new()
            .on_step(
                "take",
                Webhook::new(&url)
                    .unwrap()
                    .formatted(Format::template("took {{ value }}").unwrap()),
            )
            .retry(quick_retry(3))
    };
    let store = db.open();
    let ctx = Ctx::builder(())
        .run_id("order-2")
        .store(Arc::clone(&store))
        .outputs(outputs())
        .build();
    assert!(order::Workflow::run(&ctx, "coffee".into()).await.is_err());
    // Only the run's start is stored: `take`'s checkpoint waits for its delivery.
    let latest = store.latest(&"order-2".into()).await.unwrap().unwrap();
    assert_eq!((latest.step.as_str(), latest.finished), ("", false));

    let ctx = Ctx::builder(())
        .run_id("order-2")
        .store(Arc::clone(&store))
        .outputs(outputs())
        .build();
    let out = order::Workflow::run_or_resume(&ctx, "coffee".into())
        .await
        .unwrap();
    assert_eq!(out, "order coffee (long)");
    assert_eq!(*hook.accepted.lock().unwrap(), ["took coffee"]);

    // The delivery is in the store's history with the step that made it.
    let history = store.history(&"order-2".into()).await.unwrap();
    let take = history.iter().find(|h| h.step == "take").unwrap();
    assert_eq!(take.calls.len(), 1);
    assert_eq!(take.calls[0].kind, CallKind::Output);
    assert_eq!(take.calls[0].outcome, CallOutcome::Ok);
}

#[tokio::test]
async fn sinks_on_unknown_or_routing_steps_are_refused_before_the_first_step() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("never.jsonl");
    for step in ["tkae", "size"] {
        let ctx = Ctx::builder(())
            .outputs(Outputs::new().on_step(step, FileSink::jsonl(&file)))
            .build();
        let error = order::Workflow::run(&ctx, "tea".into()).await.unwrap_err();
        assert!(
            matches!(&error, order::FlowError::Runtime(RuntimeError::UnknownOutputStep { steps, .. }) if steps == &[step]),
            "{error:?}"
        );
        assert_eq!(
            error.to_string(),
            format!(
                "workflow `order` has no step `{step}` that sinks can be attached to; steps with outputs: `take`, `short`, `long`"
            )
        );
        assert!(ctx.calls().is_empty());
    }
    assert!(!file.exists());
}

// --- An output that would not read back reaches no sink ------------------------------------

#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Gauge {
    pub bar: f64,
}

#[workflow]
pub mod gauge {
    use super::*;

    #[step(entry)]
    pub async fn read(bar: f64) -> Result<Gauge, Failed> {
        Ok(Gauge { bar })
    }

    #[step(after = read, exit)]
    pub async fn show(gauge: Gauge) -> Result<String, Failed> {
        Ok(format!("{} bar", gauge.bar))
    }
}

/// NaN is written to JSON as `null`: a sink (or the dead letter) would get a value that does
/// not read back as the step's output. It is refused before any sink sees it, with or without
/// a store, like the checkpoint it would be in.
#[tokio::test]
async fn an_output_that_would_not_read_back_reaches_no_sink() {
    let db = TempDb::new();
    let store = db.open();
    for with_store in [false, true] {
        let file = db.dir().join(format!("gauges-{with_store}.jsonl"));
        let (tx, mut rx) = tokio::sync::mpsc::channel(4);
        let dead = DeadLetter::memory();
        let outputs = Outputs::new()
            .on_step("read", FileSink::jsonl(&file))
            .on_step("read", flow_runtime::output::ChannelSink::new(tx))
            .on_exit(FileSink::jsonl(&file))
            .dead_letter(dead.clone());
        let builder = Ctx::builder(()).run_id(format!("g-{with_store}"));
        let ctx = if with_store {
            builder.store(Arc::clone(&store)).outputs(outputs).build()
        } else {
            builder.outputs(outputs).build()
        };

        // With a store, `run` stores the run's start first, and the NaN in its input is
        // refused there, before any step.
        let error = if with_store {
            let start = gauge::Workflow::run(&ctx, f64::NAN).await.unwrap_err();
            let gauge::FlowError::Runtime(RuntimeError::Start { source, .. }) = &start else {
                panic!("expected Start, got {start:?}");
            };
            assert_eq!(source.kind(), StoreErrorKind::Unstorable, "{source}");
            assert!(store.latest(ctx.run_id()).await.unwrap().is_none());
            let state = <gauge::Workflow as Workflow>::start(f64::NAN);
            gauge::Workflow::resume(&ctx, state).await.unwrap_err()
        } else {
            gauge::Workflow::run(&ctx, f64::NAN).await.unwrap_err()
        };

        let gauge::FlowError::Runtime(RuntimeError::Unstorable { step, reason, .. }) = &error
        else {
            panic!("expected Unstorable, got {error:?}");
        };
        assert_eq!(*step, "read");
        assert!(
            reason.contains("NaN") && reason.contains(".bar"),
            "{reason}"
        );
        assert!(rx.try_recv().is_err(), "the channel got the output");
        assert!(
            std::fs::read_to_string(&file)
                .unwrap_or_default()
                .is_empty(),
            "the file got the output"
        );
        assert!(dead.records().unwrap().is_empty());
        assert!(ctx.calls().is_empty(), "{:?}", ctx.calls());
    }
    // Nothing was stored for the run either.
    assert!(store.latest(&"g-true".into()).await.unwrap().is_none());
}
