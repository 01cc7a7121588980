//! A store populated by running real workflows under an engine — a finished run, a run
//! waiting for an event (whose first step made a model call and a tool call), a failed run —
//! and `flow serve` started on it as a child process.

use flow_runtime::model::{ChatResponse, FinishReason, Usage};
use flow_runtime::prelude::*;
use flow_runtime::state::{Engine, Event, Setup};
use flow_runtime::store::{RunStatus, SqliteStore, Store};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A payment step's error.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Declined(String);

/// A model: answers with a fixed text and says how many tokens it used.
#[derive(Debug)]
pub struct Model;

impl Tool for Model {
    type Input = String;
    type Output = ChatResponse;
    const NAME: &'static str = "model";
    const DESCRIPTION: &'static str = "Answers a prompt.";

    async fn call(&self, _ctx: &ToolCtx, prompt: String) -> Result<ChatResponse, ToolError> {
        Ok(ChatResponse::new(
            Some(format!("quote for {prompt}")),
            Vec::new(),
            FinishReason::Stop,
            Some(Usage {
                input_tokens: 12,
                output_tokens: 5,
            }),
        ))
    }
}

/// Prices an order.
#[derive(Debug)]
pub struct Price;

impl Tool for Price {
    type Input = u32;
    type Output = u32;
    const NAME: &'static str = "price";
    const DESCRIPTION: &'static str = "Prices an order.";

    async fn call(&self, _ctx: &ToolCtx, qty: u32) -> Result<u32, ToolError> {
        Ok(qty * 7)
    }
}

/// The event `order` waits for.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Approval {
    /// Who approved.
    pub by: String,
}

/// quote (a model call and a tool call) → approve (waits a day for an `Approval`) → ship.
#[workflow]
pub mod order {
    use super::*;

    /// Asks the model, then prices the order.
    #[step(entry, tools = [Model, Price])]
    pub async fn quote(ctx: &Ctx<(), tools::Quote>, qty: u32) -> Result<u32, CallError> {
        ctx.call::<Model>(format!("{qty} chairs")).await?;
        ctx.call::<Price>(qty).await
    }

    /// Waits for an approval.
    #[step(after = quote, event = Approval, timeout = Duration::from_hours(24))]
    pub async fn approve(total: u32, approval: Event<Approval>) -> Result<u32, CallError> {
        Ok(match approval {
            Event::Received(_) => total,
            Event::TimedOut => 0,
        })
    }

    /// Ships the order.
    #[step(after = approve, exit)]
    pub async fn ship(total: u32) -> Result<String, CallError> {
        Ok(format!("shipped {total}"))
    }
}

/// check → charge, which declines every card.
#[workflow]
pub mod payment {
    use super::*;

    /// Checks the amount.
    #[step(entry)]
    pub async fn check(amount: u32) -> Result<u32, Declined> {
        Ok(amount)
    }

    /// Declines the card.
    #[step(after = check, exit)]
    pub async fn charge(amount: u32) -> Result<u32, Declined> {
        Err(Declined(format!("card declined for {amount}")))
    }
}

fn tools() -> Toolbox {
    Toolbox::new()
        .with(PolicyTool::new(Model, ToolPolicy::default()))
        .with(PolicyTool::new(Price, ToolPolicy::default()))
}

async fn status(store: &SqliteStore, run: &str) -> Option<RunStatus> {
    store.status(&run.into()).await.unwrap().map(|i| i.status)
}

/// A temporary SQLite file with `ord-done` (finished), `ord-wait` (waiting for `Approval`)
/// and `pay-failed` (failed in `charge`), made by an engine.
pub struct Fixture {
    _dir: tempfile::TempDir,
    pub path: PathBuf,
}

impl Fixture {
    pub async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runs.sqlite");
        let store = Arc::new(SqliteStore::open(&path).unwrap());
        let engine = Engine::builder(Arc::clone(&store))
            .register::<order::Workflow>(Setup::new(()).tools(tools()))
            .register::<payment::Workflow>(Setup::new(()))
            .poll_interval(Duration::from_millis(10))
            .build();
        engine
            .start::<order::Workflow>("ord-done", 2)
            .await
            .unwrap();
        // Sent before the run waits: the wait takes it at once.
        engine
            .send::<order::Workflow, Approval>(&"ord-done".into(), Approval { by: "ada".into() })
            .await
            .unwrap();
        engine
            .start::<order::Workflow>("ord-wait", 3)
            .await
            .unwrap();
        engine
            .start::<payment::Workflow>("pay-failed", 40)
            .await
            .unwrap();
        let settled = async {
            loop {
                let waiting = store
                    .status(&"ord-wait".into())
                    .await
                    .unwrap()
                    .is_some_and(|i| i.wait.is_some());
                if waiting
                    && status(&store, "ord-done").await == Some(RunStatus::Finished)
                    && status(&store, "pay-failed").await == Some(RunStatus::Failed)
                {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        engine.run_until(settled).await.unwrap();
        drop(engine);
        drop(store);
        Self { _dir: dir, path }
    }

    /// Starts `flow serve` on a free port with `args`; stopped when dropped.
    pub async fn serve(&self, args: &[&str]) -> Server {
        Server::start(&self.path, args).await
    }
}

/// `flow serve` running as a child process.
pub struct Server {
    /// `http://127.0.0.1:<port>`, no trailing slash.
    pub url: String,
    /// What it printed on start.
    pub banner: String,
    _child: Child,
}

impl Server {
    async fn start(db: &Path, args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_flow"))
            .arg("--db")
            .arg(db)
            .args(["serve", "--addr", "127.0.0.1:0"])
            .args(args)
            .env_remove("FLOW_SERVE_TOKEN")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut banner = String::new();
        BufReader::new(stdout).read_line(&mut banner).await.unwrap();
        let url = banner
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no address in `{banner}`"))
            .trim_end_matches('/')
            .to_owned();
        Self {
            url,
            banner,
            _child: child,
        }
    }
}
