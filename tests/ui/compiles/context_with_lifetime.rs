// A context lifetime written out, as some users do: the macro must accept it.
#![allow(clippy::needless_lifetimes)]

use flow_runtime::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("failed")]
pub struct Failed;

pub struct Deps {
    pub n: u32,
}

#[workflow(deps = Deps)]
pub mod trip {
    use super::*;

    #[step(entry)]
    pub async fn validate<'c>(ctx: &'c Ctx<Deps>, req: String) -> Result<String, Failed> {
        let _ = ctx.deps().n;
        Ok(req)
    }

    #[step(after = validate, exit)]
    pub async fn search(trip: String) -> Result<u32, Failed> {
        Ok(trip.len() as u32)
    }
}

#[tokio::main]
pub async fn main() {
    let ctx = Ctx::new(Deps { n: 1 });
    let out = trip::Workflow::run(&ctx, "abc".to_owned()).await.unwrap();
    assert_eq!(out, 3);
}
