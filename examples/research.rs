//! Parallelization: one question, three sources searched at once, one summary.
//!
//! `plan` turns a question into search queries; three branches, `web`, `papers` and `news`,
//! each take a copy of the plan and search their (simulated, slow) source; the join
//! `summarize(web, papers, news)` waits for all three, and reads the plan itself with
//! `#[from(plan)] plan: &Plan` (the branches need not carry the question for it). `Workflow::run` runs the branches
//! concurrently: the timestamps show them overlapping, and the whole run takes about as long
//! as the slowest branch, not the sum.
//!
//! Every branch searches through one tool, `Search`, declared on each branch with
//! `#[step(tools = [Search])]` and called twice per branch (one call per page). The six calls
//! run in parallel under the tool's one shared rate limit, 10 calls per second with a burst of
//! 3: the first three start at once, the rest 100 ms apart, whichever branch makes them.
//!
//! The typestate API runs the same branches one after another, in any order the caller
//! likes; `summarize()` only compiles once all three have run.
//!
//! ```text
//! cargo run --example research
//! ```

use flow_runtime::prelude::*;
use flow_runtime::tool::CanCall;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
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

/// One page of results from one source: the input of the [`Search`] tool.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct Query {
    /// `web`, `papers` or `news`.
    pub source: String,
    /// What to look for.
    pub terms: Vec<String>,
    /// Which page of results, from 1.
    pub page: u32,
}

/// A (simulated) search service in front of the three sources: each source takes its own time
/// to answer, and the service allows 10 calls per second overall.
#[derive(Debug)]
pub struct Search {
    clock: Arc<Clock>,
}

impl Tool for Search {
    type Input = Query;
    type Output = Vec<String>;
    const NAME: &'static str = "search";
    const DESCRIPTION: &'static str = "Searches the web, papers or news for some terms.";

    async fn call(&self, _: &ToolCtx, query: Query) -> Result<Vec<String>, ToolError> {
        let latency = match query.source.as_str() {
            "web" => Duration::from_millis(100),
            "papers" => Duration::from_millis(300),
            "news" => Duration::from_millis(200),
            other => return Err(ToolError::permanent(format!("no source `{other}`"))),
        };
        self.clock.log(&format!(
            "search {} page {}: calling",
            query.source, query.page
        ));
        tokio::time::sleep(latency).await;
        let count = latency.as_millis() / 25;
        Ok(vec![format!(
            "page {}: {count} results for {}",
            query.page,
            query.terms.join(" + ")
        )])
    }
}

/// The tools of a run: one `Search` whose policy caps all calls, from every branch, at 10 per
/// second with a burst of 3.
fn toolbox(clock: &Arc<Clock>) -> Toolbox {
    let policy = ToolPolicy::builder()
        .rate_limit(RateLimit::per_second(10).burst(3))
        .timeout(Duration::from_secs(2))
        .build();
    Toolbox::new().with(PolicyTool::new(
        Search {
            clock: Arc::clone(clock),
        },
        policy,
    ))
}

/// A branch's work: two pages from `source`, through the shared `Search` tool.
async fn pages<P: CanCall<Search>>(
    ctx: &Ctx<Arc<Clock>, P>,
    source: &str,
    plan: Plan,
) -> Result<Findings, CallError> {
    let query = |page| Query {
        source: source.to_owned(),
        terms: plan.terms.clone(),
        page,
    };
    // Both pages at once; the rate limit decides when each call starts.
    let (first, second) = tokio::join!(ctx.call::<Search>(query(1)), ctx.call::<Search>(query(2)));
    let mut hits = first?;
    hits.extend(second?);
    ctx.deps().log(&format!("{source}: done"));
    Ok(Findings {
        source: source.to_owned(),
        hits,
    })
}

/// The workflow: `plan` fans out to three branches, joined by `summarize`.
#[workflow(deps = Arc<Clock>)]
pub mod research {
    use super::{Clock, Findings, Plan, Search, Summary, pages};
    use flow_runtime::prelude::*;
    use std::sync::Arc;

    /// Splits the question into search terms.
    ///
    /// # Errors
    ///
    /// Never; every step has an error type.
    #[step(entry)]
    pub async fn plan(ctx: &Ctx<Arc<Clock>>, question: String) -> Result<Plan, CallError> {
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
    /// The search tool failed.
    #[step(after = plan, tools = [Search])]
    pub async fn web(ctx: &Ctx<Arc<Clock>, tools::Web>, plan: Plan) -> Result<Findings, CallError> {
        pages(ctx, "web", plan).await
    }

    /// Searches papers: slow.
    ///
    /// # Errors
    ///
    /// The search tool failed.
    #[step(after = plan, tools = [Search])]
    pub async fn papers(
        ctx: &Ctx<Arc<Clock>, tools::Papers>,
        plan: Plan,
    ) -> Result<Findings, CallError> {
        pages(ctx, "papers", plan).await
    }

    /// Searches the news: in between.
    ///
    /// # Errors
    ///
    /// The search tool failed.
    #[step(after = plan, tools = [Search])]
    pub async fn news(
        ctx: &Ctx<Arc<Clock>, tools::News>,
        plan: Plan,
    ) -> Result<Findings, CallError> {
        pages(ctx, "news", plan).await
    }

    /// Joins the three branches: one parameter per branch, in the order of `after = [..]`, and
    /// the plan the fan-out started from, read with `#[from(plan)]`.
    ///
    /// # Errors
    ///
    /// Never.
    #[step(after = [web, papers, news], exit)]
    pub async fn summarize(
        ctx: &Ctx<Arc<Clock>>,
        web: Findings,
        papers: Findings,
        news: Findings,
        #[from(plan)] plan: &Plan,
    ) -> Result<Summary, CallError> {
        ctx.deps().log("summarize: all three branches are in");
        let question = plan.question.clone();
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
    println!("run (branches concurrently, six tool calls under one rate limit):");
    let clock = Arc::new(Clock::start());
    let ctx = Ctx::builder(Arc::clone(&clock))
        .tools(toolbox(&clock))
        .build();
    let summary = research::Workflow::run(&ctx, question.to_owned()).await?;
    println!("  done in {} ms:", clock.start.elapsed().as_millis());
    for line in &summary.lines {
        println!("  - {line}");
    }
    println!("  tool calls, from the run's history:");
    for call in ctx.calls() {
        println!(
            "    {:<7} {} #{}: {} attempt(s), {} ms",
            call.step,
            call.name,
            call.index,
            call.attempts,
            call.duration.as_millis()
        );
    }

    // By hand, each branch is a method on the fan-out state; they run in the order called.
    // Calling `.summarize()` before all three would not compile: a branch would still be
    // `Pending` in the state's type.
    println!();
    println!("typestate (branches one after another, in the order called):");
    let clock = Arc::new(Clock::start());
    let ctx = Ctx::builder(Arc::clone(&clock))
        .tools(toolbox(&clock))
        .build();
    let flow = research::Flow::new(&ctx, question.to_owned());
    let flow = flow.plan().await?;
    let flow = flow.news().await?;
    let flow = flow.web().await?;
    let flow = flow.papers().await?;
    let summary = flow.summarize().await?;
    let ms = clock.start.elapsed().as_millis();
    println!("  done in {ms} ms, {} lines", summary.lines.len());
    Ok(())
}
