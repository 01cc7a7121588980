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
    pub async fn clean(name: String) -> Result<String, Failed> {
        Ok(name)
    }

    #[step(after = clean, exit)]
    pub async fn greet(ctx: &Ctx<Deps>, name: String) -> Result<String, Failed> {
        Ok(format!("{}, {name}", ctx.deps().greeting))
    }
}

async fn drive() {
    let ctx = Ctx::new(());
    let _ = hello::Workflow::run(&ctx, "Ada".to_owned()).await;
}

fn main() {
    let _ = drive();
}
