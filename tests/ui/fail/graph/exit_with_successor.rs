use flow_runtime::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("failed")]
pub struct Failed;

#[workflow]
pub mod trip {
    use super::*;

    #[step(entry)]
    pub async fn validate(req: String) -> Result<String, Failed> {
        Ok(req)
    }

    #[step(after = validate, exit)]
    pub async fn search(trip: String) -> Result<String, Failed> {
        Ok(trip)
    }

    #[step(after = search, exit)]
    pub async fn book(offers: String) -> Result<String, Failed> {
        Ok(offers)
    }
}

fn main() {}
