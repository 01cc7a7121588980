//! Parallelization: one question, three sources searched at once, one summary.
//!
//! `plan` turns a question into search queries; three branches, `web`, `papers` and `news`,
//! each take a copy of the plan and search their (simulated, slow) source; the join
//! `summarize(web, papers, news)` waits for all three. `Workflow::run` runs the branches
//! concurrently: the timestamps show them overlapping, and the whole run takes about as long
//! as the slowest branch, not the sum.
//!
//! The typestate API runs the same branches one after another, in any order the caller
//! likes; `summarize()` only compiles once all three have run.
//!
//! ```text
//! cargo run --example research
//! ```

use flow_runtime::prelude::*;
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// The steps' deps: when the run started, to timestamp the trace.
#[derive(Debug)]
pub struct Clock {
    start: Instant,
}

impl Clock {
    /// A clock starting now.
    #[must_use]
    pub fn start() -> Self {
        Self {
            start: Instant::now(),
        }
    }

    /// Prints `what`, prefixed with the time since the start.
    pub fn log(&self, what: &str) {
        println!("  [{:>4} ms] {what}", self.start.elapsed().as_millis());
    }
}

/// What to look for: handed to every branch, so it is `Clone`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Plan {
    /// The question.
    pub question: String,
    /// Search terms derived from it.
    pub terms: Vec<String>,
}

/// What one source found.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Findings {
    /// The question it was looking into. (The join receives only the branches' outputs, so
    /// what it needs from the plan travels with them.)
    pub question: String,
    /// The source.
    pub source: String,
    /// One line per hit.
    pub hits: Vec<String>,
}

/// The answer: the run's output.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Summary {
    /// The question answered.
    pub question: String,
    /// Every hit, by source.
    pub lines: Vec<String>,
}

/// A source did not answer.
#[derive(Debug, thiserror::Error)]
#[error("{source_name} did not answer")]
pub struct SourceDown {
    /// The source.
    pub source_name: String,
}

/// Searches `source` for the plan's terms, taking `latency` to answer.
async fn search(clock: &Clock, source: &str, latency: Duration, plan: &Plan) -> Findings {
    clock.log(&format!("{source}: searching"));
    tokio::time::sleep(latency).await;
    let count = latency.as_millis() / 25;
    let hits = vec![format!("{count} results for {}", plan.terms.join(" + "))];
    clock.log(&format!("{source}: done"));
    Findings {
        question: plan.question.clone(),
        source: source.to_owned(),
        hits,
    }
}

/// The workflow: `plan` fans out to three branches, joined by `summarize`.
#[workflow(deps = Clock)]
pub mod research {
    use super::{Clock, Findings, Plan, SourceDown, Summary, search};
    use flow_runtime::prelude::*;
    use std::time::Duration;

    /// Splits the question into search terms.
    ///
    /// # Errors
    ///
    /// Never; every step has an error type.
    #[step(entry)]
    pub async fn plan(ctx: &Ctx<Clock>, question: String) -> Result<Plan, SourceDown> {
        ctx.deps().log("plan: fanning out to web, papers, news");
        let terms = question
            .split_whitespace()
            .filter(|w| w.len() > 5)
            .map(|w| w.trim_matches('?').to_lowercase())
            .collect();
        Ok(Plan { question, terms })
    }

    /// Searches the web: fast.
    ///
    /// # Errors
    ///
    /// [`SourceDown`] if the web is down (never, here).
    #[step(after = plan)]
    pub async fn web(ctx: &Ctx<Clock>, plan: Plan) -> Result<Findings, SourceDown> {
        Ok(search(ctx.deps(), "web", Duration::from_millis(100), &plan).await)
    }

    /// Searches papers: slow.
    ///
    /// # Errors
    ///
    /// [`SourceDown`] if the archive is down (never, here).
    #[step(after = plan)]
    pub async fn papers(ctx: &Ctx<Clock>, plan: Plan) -> Result<Findings, SourceDown> {
        Ok(search(ctx.deps(), "papers", Duration::from_millis(300), &plan).await)
    }

    /// Searches the news: in between.
    ///
    /// # Errors
    ///
    /// [`SourceDown`] if the wire is down (never, here).
    #[step(after = plan)]
    pub async fn news(ctx: &Ctx<Clock>, plan: Plan) -> Result<Findings, SourceDown> {
        Ok(search(ctx.deps(), "news", Duration::from_millis(200), &plan).await)
    }

    /// Joins the three branches: one parameter per branch, in the order of `after = [..]`.
    ///
    /// # Errors
    ///
    /// Never.
    #[step(after = [web, papers, news], exit)]
    pub async fn summarize(
        ctx: &Ctx<Clock>,
        web: Findings,
        papers: Findings,
        news: Findings,
    ) -> Result<Summary, SourceDown> {
        ctx.deps().log("summarize: all three branches are in");
        let question = web.question.clone();
        let lines = [web, papers, news]
            .into_iter()
            .flat_map(|f| {
                f.hits
                    .into_iter()
                    .map(move |h| format!("{}: {h}", f.source))
            })
            .collect();
        Ok(Summary { question, lines })
    }
}

#[tokio::main]
async fn main() -> Result<(), research::FlowError> {
    let question = "Which battery chemistries suit grid storage?";

    // The runner starts the three branches together and waits for all of them.
    println!("run (branches concurrently):");
    let ctx = Ctx::new(Clock::start());
    let summary = research::Workflow::run(&ctx, question.to_owned()).await?;
    println!("  done in {} ms:", ctx.deps().start.elapsed().as_millis());
    for line in &summary.lines {
        println!("  - {line}");
    }

    // By hand, each branch is a method on the fan-out state; they run in the order called.
    // Calling `.summarize()` before all three would not compile: a branch would still be
    // `Pending` in the state's type.
    println!();
    println!("typestate (branches one after another, in the order called):");
    let ctx = Ctx::new(Clock::start());
    let flow = research::Flow::new(&ctx, question.to_owned());
    let flow = flow.plan().await?;
    let flow = flow.news().await?;
    let flow = flow.web().await?;
    let flow = flow.papers().await?;
    let summary = flow.summarize().await?;
    let ms = ctx.deps().start.elapsed().as_millis();
    println!("  done in {ms} ms, {} lines", summary.lines.len());
    Ok(())
}
