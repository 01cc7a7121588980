// Step names that match local variables of the generated code (`attempt`, `step_ctx`, `value`,
// `out`, `data`, `item`, `running`) still call the user's step, not the local.
use flow_runtime::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("failed")]
pub struct Failed;

#[workflow]
pub mod names {
    use super::*;

    #[step(entry)]
    pub async fn data(x: u32) -> Result<u32, Failed> {
        Ok(x + 1)
    }

    #[step(after = data)]
    pub async fn value(x: u32) -> Result<u32, Failed> {
        Ok(x + 1)
    }

    #[step(after = value)]
    pub async fn out(x: u32) -> Result<u32, Failed> {
        Ok(x + 1)
    }

    #[step(after = out)]
    pub async fn attempt(x: u32) -> Result<u32, Failed> {
        Ok(x + 1)
    }

    #[step(after = attempt)]
    pub async fn step_ctx(ctx: &Ctx, x: u32) -> Result<Vec<u32>, Failed> {
        let _ = ctx;
        Ok(vec![x, x])
    }

    #[step(after = step_ctx, workers = 2)]
    pub async fn item(x: u32) -> Result<u32, Failed> {
        Ok(x + 1)
    }

    #[step(after = item)]
    pub async fn running(xs: Vec<u32>) -> Result<u32, Failed> {
        Ok(xs.iter().sum())
    }

    #[step(after = running)]
    pub async fn left(x: u32) -> Result<u32, Failed> {
        Ok(x)
    }

    #[step(after = running)]
    pub async fn right(x: u32) -> Result<u32, Failed> {
        Ok(x)
    }

    #[step(after = [left, right], exit)]
    pub async fn done(left: u32, right: u32) -> Result<u32, Failed> {
        Ok(left + right)
    }
}

#[tokio::main(flavor = "current_thread")]
pub async fn main() {
    let ctx = Ctx::new(());
    // 0 → 1 → 2 → 3 → 4 → [4, 4] → [5, 5] → 10 → 10 + 10
    assert_eq!(names::Workflow::run(&ctx, 0).await.unwrap(), 20);
    let flow = names::Flow::new(&Ctx::new(()), 0)
        .data()
        .await
        .unwrap()
        .value()
        .await
        .unwrap();
    let flow = flow
        .out()
        .await
        .unwrap()
        .attempt()
        .await
        .unwrap()
        .step_ctx()
        .await
        .unwrap();
    let flow = flow.item().await.unwrap().running().await.unwrap();
    let flow = flow.left().await.unwrap().right().await.unwrap();
    assert_eq!(flow.done().await.unwrap(), 20);
}
