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

    #[step(after = validate)]
    pub async fn search(trip: String) -> Result<u32, Failed> {
        Ok(trip.len() as u32)
    }

    #[step(after = search, exit)]
    pub async fn book(seats: u32) -> Result<String, Failed> {
        Ok(seats.to_string())
    }
}

async fn drive() -> Result<String, trip::FlowError> {
    let ctx = Ctx::new(());
    let flow = trip::Flow::new(&ctx, "LHR-JFK".to_owned());
    // `?` forgotten after the first `.await`: rustc's own E0599 says to add it.
    flow.validate().await.search().await?.book().await
}

fn main() {
    let _ = drive();
}
