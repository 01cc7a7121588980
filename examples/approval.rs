//! Human in the loop: an expense claim waits, durably, for a manager's approval.
//!
//! `submit` checks the claim; `review` waits up to 2 seconds for an `Approval` event (in real
//! life: days), and routes on what came: approved → `pay`, rejected or no answer → `escalate`,
//! which first sleeps (a durable timer) before it reminds the finance team. An `Engine` runs
//! everything from an SQLite file: while a run waits it is only a row, and the engine wakes
//! it when its event arrives or its time is up, also after a restart.
//!
//! The example starts four claims: one the manager approves, one approved before the run even
//! reaches `review` (the event is kept in the run's inbox), one nobody answers, which times
//! out and escalates, and one for nothing, which fails. It shows a waiting run's event and
//! deadline, then awaits each run's end (`Engine::wait_for`, no polling) and prints its typed
//! result: the output, or the failed step and the reason.
//!
//! ```text
//! cargo run --example approval
//! ```
//!
//! With `--db PATH` the runs stay in the SQLite file at `PATH` (a new one) instead of a
//! temporary file removed at the end, for the `flow` CLI to look at:
//! `cargo run -p flow-cli -- --db PATH runs list`.

use flow_runtime::prelude::*;
use flow_runtime::state::{Engine, RunResult, Setup};
use flow_runtime::store::{RunControl, RunState, SqliteStore};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// An expense claim.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Claim {
    /// Who claims.
    pub employee: String,
    /// How much, in euros.
    pub amount: u32,
}

/// A manager's answer: the event `review` waits for.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Approval {
    /// Who answered.
    pub manager: String,
    /// Yes or no.
    pub approved: bool,
}

/// A claim that breaks the rules.
#[derive(Debug, thiserror::Error)]
#[error("claim rejected: {0}")]
pub struct Rejected(String);

/// The steps' deps: when the example started, to timestamp the trace.
#[derive(Clone, Debug)]
pub struct Clock(Instant);

impl Clock {
    fn log(&self, what: &str) {
        println!("  [{:>5} ms] {what}", self.0.elapsed().as_millis());
    }
}

/// The workflow.
#[workflow(deps = Clock)]
pub mod expense {
    use super::{Approval, Claim, Clock, Rejected};
    use flow_runtime::prelude::*;
    use std::time::Duration;

    /// Where a reviewed claim goes.
    #[derive(Debug)]
    pub enum Decision {
        /// Approved: pay it.
        Pay(Claim),
        /// Rejected, or nobody answered in time.
        Escalate(Claim),
    }

    /// Input processing: a claim must be for something.
    ///
    /// # Errors
    ///
    /// [`Rejected`] for a claim of zero.
    #[step(entry)]
    pub async fn submit(ctx: &Ctx<Clock>, claim: Claim) -> Result<Claim, Rejected> {
        if claim.amount == 0 {
            return Err(Rejected("nothing to pay".into()));
        }
        ctx.deps()
            .log(&format!("{}: submitted €{}", claim.employee, claim.amount));
        Ok(claim)
    }

    /// Waits for the manager, at most 2 seconds (in a real deployment: days).
    ///
    /// # Errors
    ///
    /// Never.
    #[step(after = submit, routes = Decision, event = Approval, timeout = Duration::from_secs(2))]
    pub async fn review(
        ctx: &Ctx<Clock>,
        claim: Claim,
        answer: Event<Approval>,
    ) -> Result<Decision, Rejected> {
        let who = claim.employee.clone();
        Ok(match answer {
            Event::Received(a) if a.approved => {
                ctx.deps().log(&format!("{who}: approved by {}", a.manager));
                Decision::Pay(claim)
            }
            Event::Received(a) => {
                ctx.deps().log(&format!("{who}: rejected by {}", a.manager));
                Decision::Escalate(claim)
            }
            Event::TimedOut => {
                ctx.deps().log(&format!("{who}: no answer in time"));
                Decision::Escalate(claim)
            }
        })
    }

    /// Pays.
    ///
    /// # Errors
    ///
    /// Never.
    #[step(after = review, exit)]
    pub async fn pay(ctx: &Ctx<Clock>, claim: Claim) -> Result<String, Rejected> {
        ctx.deps().log(&format!("{}: paid", claim.employee));
        Ok(format!("paid €{} to {}", claim.amount, claim.employee))
    }

    /// Gives finance a moment (a durable sleep) before reminding them.
    ///
    /// # Errors
    ///
    /// Never.
    #[step(after = review)]
    pub async fn escalate(ctx: &Ctx<Clock>, claim: Claim) -> Result<Sleep<Claim>, Rejected> {
        ctx.deps().log(&format!(
            "{}: escalated; reminder in 500 ms",
            claim.employee
        ));
        Ok(Sleep::new(Duration::from_millis(500), claim))
    }

    /// Reminds finance.
    ///
    /// # Errors
    ///
    /// Never.
    #[step(after = escalate, exit)]
    pub async fn remind(ctx: &Ctx<Clock>, claim: Claim) -> Result<String, Rejected> {
        ctx.deps()
            .log(&format!("{}: finance reminded", claim.employee));
        Ok(format!(
            "finance to decide on €{} for {}",
            claim.amount, claim.employee
        ))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::args().any(|arg| arg == "--graph") {
        print!("{}", expense::MERMAID);
        return Ok(());
    }
    let keep = std::env::args()
        .skip_while(|arg| arg != "--db")
        .nth(1)
        .map(std::path::PathBuf::from);
    let dir = std::env::temp_dir().join(format!("flow-approval-{}", std::process::id()));
    let path = if let Some(path) = &keep {
        path.clone()
    } else {
        std::fs::create_dir_all(&dir)?;
        dir.join("runs.sqlite")
    };
    let store = Arc::new(SqliteStore::open(&path)?);
    let clock = Clock(Instant::now());
    let engine = Engine::builder(Arc::clone(&store))
        .register::<expense::Workflow>(Setup::new(clock.clone()))
        .build();

    let claim = |employee: &str, amount| Claim {
        employee: employee.into(),
        amount,
    };
    let ada = engine
        .start::<expense::Workflow>("claim-ada", claim("Ada", 120))
        .await?;
    let bob = engine
        .start::<expense::Workflow>("claim-bob", claim("Bob", 80))
        .await?;
    let cy = engine
        .start::<expense::Workflow>("claim-cy", claim("Cy", 450))
        .await?;
    // Dan claims nothing: `submit` rejects it, and the run fails with the reason.
    let dan = engine
        .start::<expense::Workflow>("claim-dan", claim("Dan", 0))
        .await?;

    // Bob's manager answers before the run even reaches `review`: the event waits in the inbox.
    let yes = |manager: &str| Approval {
        manager: manager.into(),
        approved: true,
    };
    engine
        .send::<expense::Workflow, _>(&bob, yes("Grace"))
        .await?;

    // The engine runs in the background until told to stop.
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn({
        let engine = engine.clone();
        async move {
            engine
                .run_until(async {
                    let _ = stopped.await;
                })
                .await
        }
    });
    println!("engine running:");

    // A moment later Ada's run waits for its event: the store says which, and until when.
    tokio::time::sleep(Duration::from_millis(150)).await;
    let info = store.status(&ada).await?.ok_or("run not stored")?;
    if let RunState::Waiting { event, until } = info.state() {
        let left = until
            .duration_since(std::time::SystemTime::now())
            .unwrap_or_default();
        println!(
            "  {ada}: waiting for `{event}`, at most {} ms more",
            left.as_millis()
        );
    }

    // Ada's manager answers now, while the run waits; nobody answers Cy.
    engine
        .send::<expense::Workflow, _>(&ada, yes("Linus"))
        .await?;

    // Each run's end, awaited without polling, and its typed result.
    for run in [&ada, &bob, &cy, &dan] {
        match engine
            .wait_for::<expense::Workflow>(run, Duration::from_secs(10))
            .await?
        {
            RunResult::Finished(output) => println!("{run}: {output}"),
            RunResult::Failed(failure) => println!(
                "{run}: failed in step `{}`: {}",
                failure.step.as_deref().unwrap_or("-"),
                failure.reason
            ),
            RunResult::Unfinished(info) => println!("{run}: not finished: {:?}", info.state()),
            _ => println!("{run}: ?"),
        }
    }
    let _ = stop.send(());
    let report = running.await??;
    println!(
        "engine stopped: {} finished, {} failed, {} turns ended waiting",
        report.finished, report.failed, report.parked
    );
    let runs = store
        .list(&flow_runtime::store::RunFilter::new().workflow("expense"))
        .await?;
    println!("{} runs of `expense` in the store", runs.len());
    drop(store);
    match keep {
        Some(path) => println!("the runs are in {}", path.display()),
        None => std::fs::remove_dir_all(&dir)?,
    }
    Ok(())
}
