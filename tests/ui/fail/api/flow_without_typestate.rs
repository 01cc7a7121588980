use flow_runtime::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("failed")]
pub struct Failed;

#[workflow(typestate = false)]
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

async fn drive(ctx: &Ctx) -> Result<u32, trip::FlowError> {
    trip::Flow::new(ctx, "LHR".to_owned()).validate().await?.search().await
}

fn main() {
    let _ = drive;
}
