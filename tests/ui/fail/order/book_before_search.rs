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
    pub async fn book(offers: u32) -> Result<u32, Failed> {
        Ok(offers)
    }
}

async fn drive() {
    let ctx = Ctx::new(());
    let flow = trip::Flow::new(&ctx, "LHR-JFK".to_owned());
    let flow = flow.validate().await.unwrap();
    let _ = flow.book().await;
}

fn main() {
    let _ = drive();
}
