use flow_runtime::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("failed")]
pub struct Failed;

#[workflow]
#[workflow]
pub mod trip {
    use super::*;

    #[step(entry)]
    pub async fn validate(req: String) -> Result<String, Failed> {
        Ok(req)
    }

    #[step(after = validate, exit)]
    pub async fn search(trip: String) -> Result<u32, Failed> {
        Ok(trip.len() as u32)
    }
}

fn main() {}
