use flow_runtime::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("boom")]
pub struct Boom;

#[workflow]
pub mod lin {
    use super::*;

    #[step(entry)]
    pub async fn a(x: u32) -> Result<u32, Boom> {
        Ok(x + 1)
    }

    #[step(after = a)]
    pub async fn b(ctx: &Ctx, x: u32) -> Result<String, Boom> {
        Ok(format!("{x}{}", ctx.step().unwrap()))
    }

    #[step(after = b, exit)]
    pub async fn c(x: String) -> Result<String, Boom> {
        Ok(x)
    }
}

#[tokio::test]
async fn smoke() {
    let ctx = Ctx::new(());
    assert_eq!(lin::Workflow::run(&ctx, 1).await.unwrap(), "2b");
    let f = lin::Flow::new(&ctx, 1);
    let f = f.a().await.unwrap();
    let f = f.b().await.unwrap();
    assert_eq!(f.c().await.unwrap(), "2b");
}
