use flow_runtime::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
#[error("failed")]
pub struct Failed;

#[derive(Debug, Serialize, Deserialize, garde::Validate)]
pub struct Trip {
    #[garde(length(min = 3, max = 3))]
    pub from: String,
}

#[workflow]
pub mod trip {
    use super::*;

    #[step(entry)]
    pub async fn receive(req: Trip) -> Result<Trip, Failed> {
        Ok(req)
    }

    #[step(after = receive, exit)]
    pub async fn search(trip: Valid<Trip>) -> Result<String, Failed> {
        Ok(trip.from.clone())
    }
}

fn main() {}
