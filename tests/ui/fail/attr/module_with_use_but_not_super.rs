use flow_runtime::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("failed")]
pub struct Failed;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Trip {
    pub from: String,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Offers(pub u32);

#[workflow]
pub mod trip {
    use flow_runtime::prelude::Ctx;

    #[step(entry)]
    pub async fn validate(req: Trip) -> Result<Trip, Failed> {
        Ok(req)
    }

    #[step(after = validate, exit)]
    pub async fn search(ctx: &Ctx, trip: Trip) -> Result<Offers, Failed> {
        let _ = ctx;
        Ok(Offers(trip.from.len() as u32))
    }
}

fn main() {}
