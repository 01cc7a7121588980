// The entry validates raw input into `Valid<T>`; the next step can only receive validated data.
use flow_runtime::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
#[error("failed")]
pub struct Failed;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TripRequest {
    pub from: String,
    pub seats: u8,
}

#[derive(Debug, Clone, Serialize, Deserialize, garde::Validate)]
pub struct Trip {
    #[garde(length(min = 3, max = 3))]
    pub from: String,
    #[garde(range(min = 1, max = 9))]
    pub seats: u8,
}

#[workflow]
pub mod trip {
    use super::*;

    #[step(entry)]
    pub async fn validate(req: TripRequest) -> Result<Valid<Trip>, Invalid> {
        Valid::new(Trip {
            from: req.from,
            seats: req.seats,
        })
    }

    #[step(after = validate, exit)]
    pub async fn search(trip: Valid<Trip>) -> Result<String, Failed> {
        Ok(format!("{} x{}", trip.from, trip.seats))
    }
}

#[tokio::main(flavor = "current_thread")]
pub async fn main() {
    // A context is one run: each run builds its own.
    let ctx = || Ctx::new(());
    let ok = trip::Workflow::run(
        &ctx(),
        TripRequest {
            from: "LHR".into(),
            seats: 2,
        },
    )
    .await;
    assert_eq!(ok.unwrap(), "LHR x2");

    let err = trip::Workflow::run(
        &ctx(),
        TripRequest {
            from: "London".into(),
            seats: 0,
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.step(), Some("validate"));
    let trip::FlowError::Validate(invalid) = err else {
        panic!("expected the entry's error")
    };
    assert_eq!(invalid.fields().len(), 2);
}
