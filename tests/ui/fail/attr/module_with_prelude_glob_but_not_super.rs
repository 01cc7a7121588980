#[derive(Debug, thiserror::Error)]
#[error("failed")]
pub struct Failed;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Trip {
    pub to: String,
}

#[flow_runtime::workflow]
pub mod trip {
    use flow_runtime::prelude::*;

    #[step(entry)]
    pub async fn validate(trip: Trip) -> Result<Trip, Failed> {
        Ok(trip)
    }

    #[step(after = validate, exit)]
    pub async fn search(ctx: &Ctx, trip: Trip) -> Result<String, Failed> {
        let _ = ctx;
        Ok(trip.to)
    }
}

fn main() {}
