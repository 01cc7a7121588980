use flow_runtime::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("failed")]
pub struct Failed;

#[workflow]
pub mod fan {
    use super::*;

    #[step(entry, workers = 2)]
    pub async fn split(text: String) -> Result<Vec<String>, Failed> {
        Ok(vec![text])
    }

    #[step(after = split, exit)]
    pub async fn merge(words: Vec<String>) -> Result<usize, Failed> {
        Ok(words.len())
    }
}

fn main() {}
