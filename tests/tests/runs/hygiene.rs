//! Step names that are ordinary words work in every position: the generated code's own
//! variables (`attempt`, `visit`, `index`, `step_ctx`, `item`, `running`, `done`, `branch`,
//! `all_done`) and helpers (`guard`, the runtime's panic guard) must not
//! capture a step of the same name. Kept apart from the pattern files because each of these
//! was found not to compile: one broken expansion would otherwise hide those files' tests.
//!
//! (`input`, `ctx`, `loops` and `into_state` clash with `Flow`'s own methods and `FlowState`'s
//! fields instead; those belong to the compile-fail suite once `#[workflow]` rejects them.)

use flow_runtime::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("hygiene test failed")]
pub struct Never;

/// Plain steps named like the runner's locals.
#[workflow]
pub mod chain {
    use super::*;

    #[step(entry)]
    pub async fn attempt(n: u32) -> Result<u32, Never> {
        Ok(n + 1)
    }

    #[step(after = attempt)]
    pub async fn step_ctx(n: u32) -> Result<Vec<u32>, Never> {
        Ok(vec![n, n * 2])
    }

    #[step(after = step_ctx, workers = 2)]
    pub async fn item(n: u32) -> Result<u32, Never> {
        Ok(n * 10)
    }

    #[step(after = item, exit)]
    pub async fn total(ns: Vec<u32>) -> Result<u32, Never> {
        Ok(ns.iter().sum())
    }
}

/// Branches named like the fan-out's locals.
#[workflow]
pub mod fan {
    use super::*;

    #[step(entry)]
    pub async fn fork(n: u32) -> Result<u32, Never> {
        Ok(n)
    }

    #[step(after = fork)]
    pub async fn running(n: u32) -> Result<u32, Never> {
        Ok(n + 1)
    }

    #[step(after = fork)]
    pub async fn done(n: u32) -> Result<u32, Never> {
        Ok(n + 2)
    }

    #[step(after = fork)]
    pub async fn branch(n: u32) -> Result<u32, Never> {
        Ok(n + 3)
    }

    #[step(after = fork)]
    pub async fn all_done(n: u32) -> Result<u32, Never> {
        Ok(n + 4)
    }

    #[step(after = fork)]
    pub async fn attempt(n: u32) -> Result<u32, Never> {
        Ok(n + 5)
    }

    #[step(after = [running, done, branch, all_done, attempt], exit)]
    pub async fn join(a: u32, b: u32, c: u32, d: u32, e: u32) -> Result<Vec<u32>, Never> {
        Ok(vec![a, b, c, d, e])
    }
}

/// Steps named like the locals that carry a step's visit and a worker's index.
#[workflow]
pub mod visits {
    use super::*;

    #[step(entry)]
    pub async fn visit(n: u32) -> Result<Vec<u32>, Never> {
        Ok(vec![n, n + 1])
    }

    #[step(after = visit, workers = 2)]
    pub async fn index(ctx: &Ctx, n: u32) -> Result<u32, Never> {
        Ok(n + ctx.visit().item_index().unwrap_or_default())
    }

    #[step(after = index, exit)]
    pub async fn guard(ns: Vec<u32>) -> Result<u32, Never> {
        Ok(ns.iter().sum())
    }
}

#[tokio::test]
async fn steps_named_like_the_visit_locals_run() {
    // [1, 2] → [1 + 0, 2 + 1] → 4.
    assert_eq!(visits::Workflow::run(&Ctx::new(()), 1).await.unwrap(), 4);
}

#[tokio::test]
async fn steps_named_like_runner_locals_run() {
    let ctx = Ctx::new(());
    // 1 → 2 → [2, 4] → [20, 40] → 60.
    assert_eq!(chain::Workflow::run(&ctx, 1).await.unwrap(), 60);
    let flow = chain::Flow::new(&Ctx::new(()), 1)
        .attempt()
        .await
        .unwrap()
        .step_ctx()
        .await
        .unwrap();
    assert_eq!(flow.item().await.unwrap().total().await.unwrap(), 60);
}

#[tokio::test]
async fn branches_named_like_fan_out_locals_run() {
    let ctx = Ctx::new(());
    assert_eq!(
        fan::Workflow::run(&ctx, 10).await.unwrap(),
        [11, 12, 13, 14, 15]
    );
}
