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
    pub async fn state(trip: String) -> Result<u32, Failed> {
        Ok(trip.len() as u32)
    }
}

#[tokio::main(flavor = "current_thread")]
pub async fn main() {
    // A step named `state` beside the generated `state` module of typestate markers.
    let flow = trip::Flow::new(&Ctx::new(()), "Porto".to_owned());
    let flow = flow.validate().await.unwrap();
    assert_eq!(flow.state().await.unwrap(), 5);
}
