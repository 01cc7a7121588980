use flow_runtime::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
#[error("failed")]
pub struct Failed;

#[workflow]
pub mod review {
    use super::*;

    #[derive(Debug, Serialize, Deserialize)]
    pub enum First {
        #[to(start)]
        BC(String),
        #[to(a_b)]
        Go(String),
    }

    #[derive(Debug, Serialize, Deserialize)]
    pub enum Second {
        #[to(start)]
        C(String),
        Done(String),
    }

    #[step(entry)]
    pub async fn start(text: String) -> Result<String, Failed> {
        Ok(text)
    }

    #[step(after = start, routes = First)]
    pub async fn a(text: String) -> Result<First, Failed> {
        Ok(First::Go(text))
    }

    #[step(after = a, routes = Second)]
    pub async fn a_b(text: String) -> Result<Second, Failed> {
        Ok(Second::Done(text))
    }

    #[step(after = a_b, exit)]
    pub async fn done(text: String) -> Result<String, Failed> {
        Ok(text)
    }
}

fn main() {}
