use flow_runtime::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
#[error("failed")]
pub struct Failed;

#[workflow]
pub mod trip {
    use super::*;

    #[derive(Debug, Serialize, Deserialize)]
    pub enum Found {
        Offers(u32),
        Nothing(String),
    }

    #[step(entry)]
    pub async fn validate(req: String) -> Result<String, Failed> {
        Ok(req)
    }

    #[step(after = validate, routes = Found)]
    pub async fn search(trip: String) -> Result<Found, Failed> {
        Ok(Found::Offers(trip.len() as u32))
    }

    #[step(after = search, exit)]
    pub async fn offers(count: u32) -> Result<String, Failed> {
        Ok(count.to_string())
    }

    #[step(after = search, exit)]
    pub async fn nothing(why: String) -> Result<String, Failed> {
        Ok(why)
    }
}

#[workflow]
pub mod other {
    use super::*;

    #[step(entry)]
    pub async fn start(x: u32) -> Result<u32, Failed> {
        Ok(x)
    }

    #[step(after = start, exit)]
    pub async fn finish(x: u32) -> Result<u32, Failed> {
        Ok(x)
    }
}

async fn drive() {
    let ctx = Ctx::new(());
    let state = other::Flow::new(&ctx, 1).into_state();
    let _ = trip::Workflow::resume(&ctx, state).await;
}

fn main() {
    let _ = drive();
}
