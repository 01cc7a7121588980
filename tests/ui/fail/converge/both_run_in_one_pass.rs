use flow_runtime::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("failed")]
pub struct Failed;

#[workflow]
pub mod pipeline {
    use super::*;

    #[step(entry)]
    pub async fn fetch(url: String) -> Result<String, Failed> {
        Ok(url)
    }

    #[step(after = fetch)]
    pub async fn clean(page: String) -> Result<String, Failed> {
        Ok(page)
    }

    #[step(after = fetch | clean, exit)]
    pub async fn store(page: String) -> Result<String, Failed> {
        Ok(page)
    }
}

fn main() {}
