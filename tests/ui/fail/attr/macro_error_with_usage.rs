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

    #[step(afer = validate, exit)]
    pub async fn search(trip: String) -> Result<u32, Failed> {
        Ok(trip.len() as u32)
    }
}

async fn drive() {
    let ctx = Ctx::new(());
    let _ = trip::Workflow::run(&ctx, "LHR".to_owned()).await;
    let flow = trip::Flow::new(&ctx, "LHR".to_owned());
    let flow = flow.validate().await.unwrap();
    let _ = flow.search().await;
}

fn main() {
    let _ = drive();
}
