use flow_runtime::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("failed")]
pub struct Failed;

#[workflow]
pub mod trip {
    use super::*;

    #[step(entry)]
    pub async fn search_1(req: String) -> Result<String, Failed> {
        Ok(req)
    }

    #[step(after = search_1, exit)]
    pub async fn search1(trip: String) -> Result<u32, Failed> {
        Ok(trip.len() as u32)
    }
}

fn main() {}
