use flow_runtime::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("failed")]
pub struct Failed;

pub type SearchOut = Result<u32, Failed>;

#[workflow]
pub mod search {
    use super::*;

    #[step(entry)]
    pub async fn validate(query: String) -> Result<String, Failed> {
        Ok(query)
    }

    #[step(after = validate, exit)]
    pub async fn run_query(query: String) -> SearchOut {
        Ok(query.len() as u32)
    }
}

fn main() {}
