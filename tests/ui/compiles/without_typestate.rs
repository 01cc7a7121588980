// `#[workflow(typestate = false)]`: no `Flow`, `state` or step methods, for a workflow that only
// runs through `Workflow::run`, `resume` or an engine; routing, a `Valid<T>` entry and the
// run's checkpoints work as with the typestate API, and the names only the typestate API
// takes are free (a step `new`, an item `Flow`).
use flow_runtime::prelude::*;
use flow_runtime::store::MemoryStore;
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
#[error("failed")]
pub struct Failed;

#[derive(Debug, Clone, Serialize, Deserialize, garde::Validate)]
pub struct Order {
    #[garde(range(min = 1, max = 9))]
    pub seats: u8,
}

#[workflow(typestate = false)]
pub mod order {
    use super::*;

    pub enum Size {
        Small(u8),
        Large(u8),
    }

    #[step(entry, routes = Size)]
    pub async fn triage(order: Valid<Order>) -> Result<Size, Failed> {
        Ok(if order.seats > 4 {
            Size::Large(order.seats)
        } else {
            Size::Small(order.seats)
        })
    }

    #[step(after = triage)]
    pub async fn small(seats: u8) -> Result<String, Failed> {
        Ok(format!("small x{seats}"))
    }

    #[step(after = triage)]
    pub async fn large(seats: u8) -> Result<String, Failed> {
        Ok(format!("large x{seats}"))
    }

    #[step(after = small | large, exit)]
    pub async fn new(text: String) -> Result<String, Failed> {
        Ok(format!("{text}: {}", Flow::CONFIRMED))
    }

    pub struct Flow;

    impl Flow {
        pub const CONFIRMED: &str = "confirmed";
    }
}

#[tokio::main(flavor = "current_thread")]
pub async fn main() {
    let ctx = Ctx::new(());
    let order = Valid::new(Order { seats: 6 }).unwrap();
    assert_eq!(
        order::Workflow::run(&ctx, order).await.unwrap(),
        "large x6: confirmed"
    );

    // With a store: a checkpoint after every step, and the finished run reads back.
    let ctx = Ctx::builder(())
        .run_id("small")
        .store(std::sync::Arc::new(MemoryStore::new()))
        .build();
    let order = Valid::new(Order { seats: 2 }).unwrap();
    assert_eq!(
        order::Workflow::run_or_resume(&ctx, order.clone())
            .await
            .unwrap(),
        "small x2: confirmed"
    );
    assert_eq!(
        order::Workflow::run_or_resume(&ctx, order).await.unwrap(),
        "small x2: confirmed"
    );
}
