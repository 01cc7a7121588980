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

async fn drive() {
    let ctx = Ctx::new(());
    let flow = trip::Flow::new(&ctx, "LHR-JFK".to_owned());
    let flow = flow.validate().await.unwrap();
    match flow.search().await.unwrap() {
        trip::FoundFlow::Offers(flow) => {
            let _ = flow.offers().await;
        }
    }
}

fn main() {
    let _ = drive();
}
