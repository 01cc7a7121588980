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
    pub async fn validate<D: Send + Sync>(ctx: &Ctx<D>, req: String) -> Result<String, Failed> {
        let _ = ctx;
        Ok(req)
    }

    #[step(after = validate, exit)]
    pub async fn search(trip: String) -> Result<u32, Failed> {
        Ok(trip.len() as u32)
    }
}

fn main() {}
