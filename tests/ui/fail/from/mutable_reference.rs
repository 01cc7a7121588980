use flow_runtime::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
#[error("failed")]
pub struct Failed;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Trip(pub String);

#[workflow]
pub mod travel {
    use super::*;

    #[step(entry)]
    pub async fn validate(raw: String) -> Result<Trip, Failed> {
        Ok(Trip(raw))
    }

    #[step(after = validate)]
    pub async fn search(trip: Trip) -> Result<Vec<u32>, Failed> {
        Ok(vec![trip.0.len() as u32])
    }

    #[step(after = search, exit)]
    pub async fn book(offers: Vec<u32>, #[from(validate)] trip: &mut Trip) -> Result<String, Failed> {
        let _ = (trip,);
        Ok(format!("{offers:?}"))
    }
}

fn main() {}
