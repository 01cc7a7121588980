use flow_runtime::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("failed")]
pub struct Failed;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Trip {
    pub from: String,
}

#[workflow]
pub mod trip {
    use super::*;

    #[step(entry)]
    pub async fn validate(req: Trip) -> Result<Valid<Trip>, Invalid> {
        Valid::new(req)
    }

    #[step(after = validate, exit)]
    pub async fn search(trip: Valid<Trip>) -> Result<u32, Failed> {
        Ok(trip.from.len() as u32)
    }
}

fn main() {}
