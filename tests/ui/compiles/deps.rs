// `#[workflow(deps = T)]`: steps take `&Ctx<T>` first and reach shared things through `ctx.deps()`.
use flow_runtime::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("failed")]
pub struct Failed;

pub struct Deps {
    pub greeting: String,
}

#[workflow(deps = Deps)]
pub mod hello {
    use super::*;

    #[step(entry)]
    pub async fn clean(ctx: &Ctx<Deps>, name: String) -> Result<String, Failed> {
        assert_eq!(ctx.step(), Some("clean"));
        Ok(name.trim().to_owned())
    }

    // The context is optional per step.
    #[step(after = clean)]
    pub async fn upper(name: String) -> Result<String, Failed> {
        Ok(name.to_uppercase())
    }

    #[step(after = upper, exit)]
    pub async fn greet(ctx: &Ctx<Deps>, name: String) -> Result<String, Failed> {
        Ok(format!("{}, {name}", ctx.deps().greeting))
    }
}

#[tokio::main(flavor = "current_thread")]
pub async fn main() {
    let ctx = Ctx::new(Deps {
        greeting: "Hello".into(),
    });
    assert_eq!(
        hello::Workflow::run(&ctx, " ada ".to_owned())
            .await
            .unwrap(),
        "Hello, ADA"
    );

    // Another run, so a context of its own.
    let ctx = Ctx::new(Deps {
        greeting: "Hello".into(),
    });
    let flow = hello::Flow::new(&ctx, "bob".to_owned());
    let _: &Ctx<Deps> = flow.ctx();
    let flow = flow.clean().await.unwrap().upper().await.unwrap();
    assert_eq!(flow.greet().await.unwrap(), "Hello, BOB");
}
