use flow_runtime::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("failed")]
pub struct Failed;

#[workflow]
pub mod fan {
    use super::*;

    #[step(entry)]
    pub async fn split(text: String) -> Result<Vec<String>, Failed> {
        Ok(vec![text])
    }

    #[step(after = split, workers = many)]
    pub async fn research(word: String) -> Result<usize, Failed> {
        Ok(word.len())
    }

    #[step(after = research, exit)]
    pub async fn merge(lengths: Vec<usize>) -> Result<usize, Failed> {
        Ok(lengths.len())
    }
}

fn main() {}
