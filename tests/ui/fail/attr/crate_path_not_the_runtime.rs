use flow_runtime::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("failed")]
pub struct Failed;

// A path that resolves, but not to the runtime: one error, at the path, not one per item the
// generated code names through it.
#[workflow(crate = self)]
pub mod trip {
    use super::*;

    #[step(entry)]
    pub async fn validate(req: String) -> Result<String, Failed> {
        Ok(req)
    }

    #[step(after = validate, exit, tools = [Search])]
    pub async fn search(ctx: &Ctx<(), tools::Search>, trip: String) -> Result<u32, Failed> {
        let _ = ctx;
        Ok(trip.len() as u32)
    }
}

pub struct Search;

fn main() {}
