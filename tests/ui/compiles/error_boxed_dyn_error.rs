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

    #[step(after = validate, exit)]
    pub async fn search(trip: String) -> Result<u32, Box<dyn std::error::Error + Send + Sync>> {
        Ok(trip.len() as u32)
    }
}

#[tokio::main(flavor = "current_thread")]
pub async fn main() {
    // A step error that is a boxed `dyn Error` is the `FlowError` variant's source.
    let out = trip::Workflow::run(&Ctx::new(()), "Lisbon".to_owned()).await;
    assert_eq!(out.unwrap(), 6);
}
