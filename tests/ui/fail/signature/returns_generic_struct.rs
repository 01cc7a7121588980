use flow_runtime::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("failed")]
pub struct Failed;

pub mod paging {
    /// One page of a listing: a struct, not an alias of `Result`.
    #[derive(Clone, serde::Serialize, serde::Deserialize)]
    pub struct Page<T> {
        pub items: Vec<T>,
    }
}

#[workflow]
pub mod listing {
    use super::*;
    use paging::Page;

    #[step(entry)]
    pub async fn validate(query: String) -> Result<String, Failed> {
        Ok(query)
    }

    #[step(after = validate, exit)]
    pub async fn list(query: String) -> Page<String> {
        Page { items: vec![query] }
    }
}

fn main() {}
