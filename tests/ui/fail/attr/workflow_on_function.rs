use flow_runtime::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("failed")]
pub struct Failed;

#[workflow]
pub async fn validate(req: String) -> Result<String, Failed> {
    Ok(req)
}

fn main() {}
