use flow_runtime::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("failed")]
pub struct Failed;

pub struct SearchResult {
    pub hits: u32,
}

#[workflow]
pub mod search {
    use super::*;

    #[step(entry)]
    pub async fn validate(query: String) -> Result<String, Failed> {
        Ok(query)
    }

    #[step(after = validate, exit)]
    pub async fn run_query(query: String) -> SearchResult {
        SearchResult { hits: query.len() as u32 }
    }
}

fn main() {}
