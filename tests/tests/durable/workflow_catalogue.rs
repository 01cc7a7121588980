//! The workflows' graphs in the store: a run started on a store records its workflow (name,
//! fingerprint, steps, Mermaid graph), and an engine records every workflow registered with
//! it when it starts, before any run; a tool reading the file later finds them without the
//! workflows' code.

use flow_runtime::prelude::*;
use flow_runtime::state::{Engine, Setup};
use flow_runtime::store::{RunHistory, SqliteStore, WorkflowInfo};
use flow_tests::store::TempDb;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
#[error("catalogue test step failed")]
pub struct Failed;

#[workflow]
pub mod shout {
    use super::*;

    #[step(entry)]
    pub async fn trim(text: String) -> Result<String, Failed> {
        Ok(text.trim().to_owned())
    }

    #[step(after = trim, exit)]
    pub async fn upper(text: String) -> Result<String, Failed> {
        Ok(text.to_uppercase())
    }
}

#[workflow]
pub mod idle {
    use super::*;

    #[step(entry, exit)]
    pub async fn only(n: u32) -> Result<u32, Failed> {
        Ok(n)
    }
}

fn described(info: &WorkflowInfo) -> (&str, &str, Vec<&str>, &str) {
    (
        &info.name,
        &info.fingerprint,
        info.steps.iter().map(String::as_str).collect(),
        &info.mermaid,
    )
}

#[tokio::test]
async fn a_run_records_its_workflow_once() {
    let db = TempDb::new();
    let store = Arc::new(SqliteStore::open(db.path()).unwrap());
    for run in ["a", "b"] {
        let ctx = Ctx::builder(())
            .run_id(run)
            .store(Arc::clone(&store))
            .build();
        assert_eq!(
            shout::Workflow::run(&ctx, " hi ".into()).await.unwrap(),
            "HI"
        );
    }
    drop(store);
    // Another process reading the file.
    let store = SqliteStore::open(db.path()).unwrap();
    let workflows = store.workflows().await.unwrap();
    assert_eq!(workflows.len(), 1, "{workflows:?}");
    assert_eq!(
        described(&workflows[0]),
        (
            "shout",
            <shout::Workflow as Workflow>::FINGERPRINT,
            vec!["trim", "upper"],
            <shout::Workflow as Workflow>::MERMAID
        )
    );
}

#[tokio::test]
async fn an_engine_records_its_workflows_when_it_starts() {
    let db = TempDb::new();
    let store = Arc::new(SqliteStore::open(db.path()).unwrap());
    let engine = Engine::builder(Arc::clone(&store))
        .register::<shout::Workflow>(Setup::new(()))
        .register::<idle::Workflow>(Setup::new(()))
        .build();
    // Stops at once: no run was started.
    engine.run_until(async {}).await.unwrap();
    let mut names: Vec<String> = store
        .workflows()
        .await
        .unwrap()
        .into_iter()
        .map(|w| w.name)
        .collect();
    names.sort();
    assert_eq!(names, ["idle", "shout"]);
}
