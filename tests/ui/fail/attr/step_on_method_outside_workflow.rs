use flow_runtime::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("failed")]
pub struct Failed;

pub struct Steps;

impl Steps {
    #[step(entry)]
    pub async fn validate(&self, req: String) -> Result<String, Failed> {
        Ok(req)
    }
}

fn main() {}
