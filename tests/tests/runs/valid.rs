//! `Valid<T>`: built only by running `T`'s garde rules, by `Valid::new` or by deserialising, so
//! a step that takes `Valid<T>` never sees invalid data, even from an edited checkpoint.

use flow_runtime::input::{FieldError, Invalid, Valid};
use flow_runtime::prelude::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, garde::Validate)]
pub struct Passenger {
    #[garde(length(min = 1))]
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, garde::Validate)]
pub struct Trip {
    #[garde(length(min = 3, max = 3))]
    pub from: String,
    #[garde(length(min = 3, max = 3))]
    pub to: String,
    #[garde(range(min = 1, max = 9))]
    pub seats: u8,
    #[garde(dive)]
    pub passengers: Vec<Passenger>,
}

fn trip() -> Trip {
    Trip {
        from: "LHR".into(),
        to: "CDG".into(),
        seats: 2,
        passengers: vec![
            Passenger { name: "Ada".into() },
            Passenger {
                name: "Alan".into(),
            },
        ],
    }
}

#[derive(Debug, thiserror::Error)]
#[error("no flights")]
pub struct NoFlights;

#[derive(Debug, Default)]
pub struct Searches(AtomicU32);

#[workflow(deps = Searches)]
pub mod booking {
    use super::*;

    /// Raw input in, validated trip out.
    #[step(entry)]
    pub async fn validate(req: Trip) -> Result<Valid<Trip>, Invalid> {
        Valid::new(req)
    }

    #[step(after = validate)]
    pub async fn search(ctx: &Ctx<Searches>, trip: Valid<Trip>) -> Result<Vec<String>, NoFlights> {
        ctx.deps().0.fetch_add(1, Ordering::SeqCst);
        Ok((0..trip.seats)
            .map(|n| format!("{}-{} seat {n}", trip.from, trip.to))
            .collect())
    }

    #[step(after = search, exit)]
    pub async fn book(offers: Vec<String>) -> Result<String, NoFlights> {
        offers.into_iter().next().ok_or(NoFlights)
    }
}

fn paths(invalid: &Invalid) -> Vec<&str> {
    invalid.fields().iter().map(|f| f.path.as_str()).collect()
}

#[test]
fn a_valid_value_passes_and_derefs() {
    let valid = Valid::new(trip()).unwrap();
    assert_eq!(valid.seats, 2);
    assert_eq!(valid.as_ref().from, "LHR");
    assert_eq!(valid.clone().into_inner(), trip());
}

#[test]
fn errors_are_reported_field_by_field() {
    let bad = Trip {
        from: "London".into(),
        seats: 0,
        ..trip()
    };
    let err = Valid::new(bad).unwrap_err();
    let mut paths = paths(&err);
    paths.sort_unstable();
    assert_eq!(paths, ["from", "seats"]);
    let from: &FieldError = err.field("from").unwrap();
    assert!(!from.message.is_empty());
    assert!(err.field("seats").is_some());
    assert!(err.field("to").is_none(), "`to` is valid");
    let shown = err.to_string();
    assert!(shown.starts_with("invalid input: "), "{shown}");
    assert!(shown.contains("from: ") && shown.contains("; "), "{shown}");
    assert!(shown.contains("seats: "), "{shown}");
}

#[test]
fn nested_fields_have_paths() {
    let mut bad = trip();
    bad.passengers[1].name.clear();
    bad.to = "X".into();
    let err = Valid::new(bad).unwrap_err();
    let mut paths = paths(&err);
    paths.sort_unstable();
    assert_eq!(paths, ["passengers[1].name", "to"]);
    assert!(err.field("passengers[1].name").is_some());
    assert!(err.field("passengers[0].name").is_none());
}

#[test]
fn deserialising_validates() {
    let good = serde_json::to_value(trip()).unwrap();
    let valid: Valid<Trip> = serde_json::from_value(good.clone()).unwrap();
    assert_eq!(*valid, trip());
    // Serialises as the plain value.
    assert_eq!(serde_json::to_value(&valid).unwrap(), good);

    let mut bad = good;
    bad["seats"] = serde_json::json!(0);
    let err = serde_json::from_value::<Valid<Trip>>(bad).unwrap_err();
    assert!(err.to_string().contains("seats"), "{err}");
}

#[tokio::test]
async fn the_entry_step_validates_and_later_steps_take_valid() {
    let ctx = Ctx::new(Searches::default());
    assert_eq!(
        booking::Workflow::run(&ctx, trip()).await.unwrap(),
        "LHR-CDG seat 0"
    );
    assert_eq!(ctx.deps().0.load(Ordering::SeqCst), 1);

    let flow = booking::Flow::new(&Ctx::new(Searches::default()), trip())
        .validate()
        .await
        .unwrap();
    let input: &Valid<Trip> = flow.input();
    assert_eq!(input.to, "CDG");
}

#[tokio::test]
async fn invalid_input_fails_the_entry_step_and_nothing_else_runs() {
    let ctx = Ctx::new(Searches::default());
    let err = booking::Workflow::run(
        &ctx,
        Trip {
            seats: 10,
            ..trip()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.step(), Some("validate"));
    let booking::FlowError::Validate(invalid) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(paths(invalid), ["seats"]);
    assert_eq!(ctx.deps().0.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_tampered_checkpoint_cannot_skip_validation() {
    let store = Arc::new(MemoryStore::new());
    let ctx = Ctx::builder(Searches::default())
        .store(Arc::clone(&store))
        .run_id("r1")
        .build();
    booking::Workflow::run(&ctx, trip()).await.unwrap();
    // [0] is the run's start; [1] the state after `validate`.
    let stored = store.history(&RunId::from("r1"))[1].state.clone();
    let state: booking::FlowState = serde_json::from_value(stored.clone()).unwrap();
    assert_eq!(state.step(), Some("search"));

    let mut tampered = stored;
    tampered["Search"]["input"]["seats"] = serde_json::json!(200);
    let err = serde_json::from_value::<booking::FlowState>(tampered).unwrap_err();
    assert!(err.to_string().contains("seats"), "{err}");
}
