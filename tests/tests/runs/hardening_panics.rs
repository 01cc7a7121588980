//! A panic inside a run (in a step, a tool, a sink, a `workers` item, or a user type's
//! `Deserialize` while the run is loaded) ends that run with `RuntimeError::Panicked`: it never
//! unwinds through `Workflow::run`, and under the `Engine` the run is set aside as `Failed`
//! (never left `Running` to panic again at every restart) while the engine runs the others.

use flow_runtime::error::RuntimeError;
use flow_runtime::output::{Delivery, Outputs, Sink};
use flow_runtime::prelude::*;
use flow_runtime::state::{Engine, FailedAt, RunId, Setup};
use flow_runtime::store::{MemoryStore, RunQueue, RunStatus};
use flow_runtime::tool::Toolbox;
use flow_tests::store::TempDb;
use std::time::{Duration, SystemTime};

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Failed(String);

/// A tool with a bug: it panics on every call.
pub struct Grenade;

impl Tool for Grenade {
    type Input = u32;
    type Output = u32;
    const NAME: &'static str = "grenade";
    const DESCRIPTION: &'static str = "Panics.";

    async fn call(&self, _: &ToolCtx, n: u32) -> Result<u32, ToolError> {
        panic!("grenade went off on {n}")
    }
}

/// A sink with a bug: it panics on every delivery.
pub struct Cracked;

impl Sink for Cracked {
    fn name(&self) -> &str {
        "cracked"
    }

    async fn deliver(&self, _: &Delivery) -> Result<(), ToolError> {
        panic!("the sink cracked")
    }
}

/// A value whose `Deserialize` panics on 13 (an `unwrap` in a hand-written impl).
#[derive(Debug, serde::Serialize)]
pub struct Touchy(pub u32);

impl<'de> serde::Deserialize<'de> for Touchy {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = u32::deserialize(d)?;
        if n == 13 {
            panic!("Touchy cannot be 13");
        }
        Ok(Self(n))
    }
}

#[workflow]
pub mod risky {
    use super::*;

    #[step(entry)]
    pub async fn prepare(n: u32) -> Result<u32, Failed> {
        Ok(n)
    }

    /// Panics on 13, with a formatted message (a `String` payload).
    #[step(after = prepare)]
    pub async fn explode(n: u32) -> Result<Vec<u32>, Failed> {
        if n == 13 {
            panic!("unlucky number {n}");
        }
        Ok(vec![n, n + 1])
    }

    /// Panics on an item of 7, with a literal message (a `&str` payload).
    #[step(after = explode, workers = 2)]
    pub async fn each(n: u32) -> Result<u32, Failed> {
        if n == 7 {
            panic!("item seven");
        }
        Ok(n)
    }

    #[step(after = each, exit)]
    pub async fn total(items: Vec<u32>) -> Result<u32, Failed> {
        Ok(items.iter().sum())
    }
}

#[workflow]
pub mod armed {
    use super::*;

    #[step(entry, exit, tools = [Grenade])]
    pub async fn throw(ctx: &Ctx<(), tools::Throw>, n: u32) -> Result<u32, CallError> {
        ctx.call::<Grenade>(n).await
    }
}

#[workflow]
pub mod touchy {
    use super::*;

    #[step(entry, exit)]
    pub async fn hold(t: Touchy) -> Result<u32, Failed> {
        Ok(t.0)
    }
}

fn grenade() -> Toolbox {
    Toolbox::new().with(PolicyTool::new(Grenade, ToolPolicy::default()))
}

/// The `Panicked` error inside `error`, as (step, message).
fn panicked<W: Workflow>(error: &W::Error) -> (Option<&'static str>, String) {
    match W::failed_at(error) {
        FailedAt::Runtime(RuntimeError::Panicked { step, message, .. }) => (*step, message.clone()),
        _ => panic!("not a panic: {error}"),
    }
}

#[tokio::test]
async fn a_panicking_step_fails_the_run_with_a_typed_error() {
    let ctx = Ctx::builder(()).run_id("step-panics").build();
    let error = risky::Workflow::run(&ctx, 13).await.unwrap_err();
    let risky::FlowError::Runtime(RuntimeError::Panicked {
        run_id,
        workflow,
        step,
        message,
    }) = &error
    else {
        panic!("{error:?}")
    };
    assert_eq!(run_id.as_str(), "step-panics");
    assert_eq!(*workflow, "risky");
    assert_eq!(*step, Some("explode"));
    assert_eq!(message, "unlucky number 13");
    assert_eq!(
        error.to_string(),
        "run `step-panics` of workflow `risky`: step `explode` panicked: unlucky number 13; \
         the run is stopped, fix the panic and retry it"
    );

    // The same workflow without the bad input still runs.
    assert_eq!(risky::Workflow::run(&Ctx::new(()), 2).await.unwrap(), 5);
}

#[tokio::test]
async fn a_panicking_worker_item_fails_its_step() {
    let error = risky::Workflow::run(&Ctx::new(()), 6).await.unwrap_err();
    assert_eq!(
        panicked::<risky::Workflow>(&error),
        (Some("each"), "item seven".to_owned())
    );
}

#[tokio::test]
async fn a_panicking_tool_fails_the_step_that_called_it() {
    let ctx = Ctx::builder(()).tools(grenade()).build();
    let error = armed::Workflow::run(&ctx, 4).await.unwrap_err();
    assert_eq!(
        panicked::<armed::Workflow>(&error),
        (Some("throw"), "grenade went off on 4".to_owned())
    );
}

#[tokio::test]
async fn a_panicking_sink_fails_the_step_whose_output_it_took() {
    let ctx = Ctx::builder(())
        .outputs(Outputs::new().on_step("explode", Cracked))
        .build();
    let error = risky::Workflow::run(&ctx, 1).await.unwrap_err();
    assert_eq!(
        panicked::<risky::Workflow>(&error),
        (Some("explode"), "the sink cracked".to_owned())
    );
}

#[tokio::test]
async fn a_panic_while_loading_a_stored_run_fails_it_too() {
    // Stored by a first run that failed after its entry step had its input.
    let store = std::sync::Arc::new(MemoryStore::new());
    let state = serde_json::json!({ "Hold": { "input": 13, "loops": {} } });
    store
        .save(flow_runtime::store::Checkpoint::new(
            RunId::from("touchy-1"),
            touchy::NAME,
            touchy::FINGERPRINT,
            "",
            false,
            state,
        ))
        .await
        .unwrap();
    let ctx = Ctx::builder(()).run_id("touchy-1").store(store).build();
    let error = touchy::Workflow::run_or_resume(&ctx, Touchy(1))
        .await
        .unwrap_err();
    assert_eq!(
        panicked::<touchy::Workflow>(&error),
        (None, "Touchy cannot be 13".to_owned())
    );
}

#[tokio::test]
async fn the_engine_fails_runs_that_panic_and_goes_on_with_the_others() {
    let db = TempDb::new();
    let store = db.open();
    let engine = Engine::builder(std::sync::Arc::clone(&store))
        .register::<risky::Workflow>(Setup::new(()))
        .register::<armed::Workflow>(Setup::new(()).tools(grenade()))
        .register::<touchy::Workflow>(Setup::new(()))
        .poll_interval(Duration::from_millis(5))
        .build();
    let step = engine.start::<risky::Workflow>("step", 13).await.unwrap();
    let tool = engine.start::<armed::Workflow>("tool", 4).await.unwrap();
    // Panics in the engine itself, loading the run, outside any step.
    let load = engine
        .start::<touchy::Workflow>("load", Touchy(13))
        .await
        .unwrap();
    let good = engine.start::<risky::Workflow>("good", 2).await.unwrap();

    let runs = [&step, &tool, &load, &good];
    let settled = async {
        loop {
            let mut done = 0;
            for run in runs {
                let status = store.status(run).await.unwrap().unwrap().status;
                if matches!(status, RunStatus::Failed | RunStatus::Finished) {
                    done += 1;
                }
            }
            if done == runs.len() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    let report = tokio::time::timeout(Duration::from_secs(30), engine.run_until(settled))
        .await
        .expect("every run settles: none is left running")
        .unwrap();
    assert_eq!(report.failed, 3);
    assert_eq!(report.finished, 1);
    for run in [&step, &tool, &load] {
        let info = store.status(run).await.unwrap().unwrap();
        assert_eq!(info.status, RunStatus::Failed, "{run}");
    }
    assert_eq!(
        store.status(&good).await.unwrap().unwrap().status,
        RunStatus::Finished
    );
    // Set aside: a restarted engine does not run them (and panic) again.
    let due = store
        .due(SystemTime::now(), &["risky", "armed", "touchy"], 10)
        .await
        .unwrap();
    assert!(due.is_empty(), "{due:?}");
}
