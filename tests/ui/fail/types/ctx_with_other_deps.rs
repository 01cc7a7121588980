use flow_runtime::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("failed")]
pub struct Failed;

pub struct Deps;
pub struct Other;

#[workflow(deps = Deps)]
pub mod trip {
    use super::*;

    #[step(entry)]
    pub async fn validate(req: String) -> Result<String, Failed> {
        Ok(req)
    }

    #[step(after = validate, exit)]
    pub async fn search(ctx: &Ctx<Other>, trip: String) -> Result<u32, Failed> {
        let _ = ctx;
        Ok(trip.len() as u32)
    }
}

fn main() {}
