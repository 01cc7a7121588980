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

    // The body's use of `self` is not reported again: the missing receiver is the mistake.
    #[step(after = validate, exit)]
    pub async fn search(&self, trip: String) -> Result<u32, Failed> {
        Ok(self.count(&trip))
    }
}

fn main() {}
