// A step reads an earlier step's output (`#[from(validate)] trip: &Trip`): after a chain, in a
// branch, in a join (the fan-out step's output) and after a join (a branch's output).
// An earlier output taken as `&Vec<_>`, as users write it: the macro must accept it.
#![allow(clippy::ptr_arg)]

use flow_runtime::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
#[error("failed")]
pub struct Failed;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Trip {
    pub to: String,
    pub seats: u32,
}

#[workflow]
pub mod travel {
    use super::*;

    #[step(entry)]
    pub async fn validate(to: String) -> Result<Trip, Failed> {
        Ok(Trip { to, seats: 2 })
    }

    #[step(after = validate)]
    pub async fn search(trip: Trip) -> Result<Vec<u32>, Failed> {
        Ok(vec![300, 120 * trip.seats])
    }

    #[step(after = search)]
    pub async fn flights(offers: Vec<u32>) -> Result<Vec<u32>, Failed> {
        Ok(offers)
    }

    #[step(after = search)]
    pub async fn hotels(offers: Vec<u32>, #[from(validate)] trip: &Trip) -> Result<u32, Failed> {
        Ok(offers.len() as u32 * trip.seats)
    }

    #[step(after = [flights, hotels])]
    pub async fn choose(
        flights: Vec<u32>,
        hotels: u32,
        #[from(search)] all: &Vec<u32>,
    ) -> Result<u32, Failed> {
        Ok(flights.iter().copied().min().unwrap_or(0) + hotels + all.len() as u32)
    }

    #[step(after = choose, exit)]
    pub async fn book(
        price: u32,
        #[from(validate)] trip: &Trip,
        #[from(hotels)] nights: &u32,
    ) -> Result<String, Failed> {
        Ok(format!(
            "{} seats to {} for {price} ({nights} nights)",
            trip.seats, trip.to
        ))
    }
}

#[tokio::main(flavor = "current_thread")]
pub async fn main() {
    let ctx = Ctx::new(());
    let booked = travel::Workflow::run(&ctx, "Lisbon".to_owned())
        .await
        .unwrap();
    assert_eq!(booked, "2 seats to Lisbon for 246 (4 nights)");

    let flow = travel::Flow::new(&Ctx::new(()), "Oslo".to_owned())
        .validate()
        .await
        .unwrap()
        .search()
        .await
        .unwrap();
    let flow = flow.hotels().await.unwrap().flights().await.unwrap();
    let booked = flow.choose().await.unwrap().book().await.unwrap();
    assert_eq!(booked, "2 seats to Oslo for 246 (4 nights)");
}
