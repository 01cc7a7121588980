use flow_runtime::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("failed")]
pub struct Failed;

#[derive(Debug, Clone, garde::Validate, serde::Serialize, serde::Deserialize)]
pub struct Trip {
    #[garde(length(min = 3))]
    pub from: String,
}

#[workflow]
pub mod trip {
    use super::*;

    #[step(entry)]
    pub async fn search(trip: Valid<Trip>) -> Result<u32, Failed> {
        Ok(trip.from.len() as u32)
    }

    #[step(after = search, exit)]
    pub async fn book(n: u32) -> Result<u32, Failed> {
        Ok(n)
    }
}

async fn drive() -> Result<u32, trip::FlowError> {
    let ctx = Ctx::new(());
    let trip = Trip { from: "LHR".into() };
    let booked = trip::Workflow::run(&ctx, trip).await?;
    Ok(booked)
}

fn main() {
    let _ = drive();
}
