use flow_runtime::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("failed")]
pub struct Failed;

pub struct Config {
    pub n: u32,
}

#[workflow(deps = &Config)]
pub mod trip {
    use super::*;

    #[step(entry)]
    pub async fn validate(ctx: &Ctx<Config>, req: String) -> Result<String, Failed> {
        let _ = ctx.deps().n;
        Ok(req)
    }

    #[step(after = validate, exit)]
    pub async fn search(trip: String) -> Result<u32, Failed> {
        Ok(trip.len() as u32)
    }
}

fn main() {
    let ctx = Ctx::new(Config { n: 1 });
    let _ = trip::Workflow::run(&ctx, "x".to_owned());
}
