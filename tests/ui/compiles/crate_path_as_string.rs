use flow_runtime::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("failed")]
pub struct Failed;

#[workflow(crate = "flow_runtime")]
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

#[tokio::main(flavor = "current_thread")]
pub async fn main() {
    // serde-style `crate = "path"` is accepted as well as `crate = path`.
    let out = trip::Workflow::run(&Ctx::new(()), "Faro".to_owned()).await;
    assert_eq!(out.unwrap(), 4);
}
