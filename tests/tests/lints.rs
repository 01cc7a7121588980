//! Generated code is lint-clean: user code that is itself clean under `-D warnings`, clippy's
//! pedantic group and the common documentation lints compiles without a warning, for every
//! pattern. CI runs `cargo clippy --workspace --all-targets -- -D warnings`, which checks this
//! file with clippy; `cargo test` checks it with rustc's own lints.

#![deny(warnings, clippy::pedantic)]
#![deny(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    unused_qualifications
)]
#![deny(rust_2018_idioms, unused_lifetimes, unused_extern_crates)]

use flow_runtime::prelude::*;

/// The one error every step here can return.
#[derive(Debug, thiserror::Error)]
#[error("step failed: {0}")]
pub struct StepFailed(pub String);

/// What every step can reach.
#[derive(Debug, Default)]
pub struct Deps {
    /// A greeting.
    pub greeting: String,
}

/// A trip request.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, garde::Validate)]
pub struct Trip {
    /// Where from.
    #[garde(length(min = 3, max = 3))]
    pub from: String,
    /// How many seats.
    #[garde(range(min = 1, max = 9))]
    pub seats: u8,
}

/// A chain of steps, with validated input and a context.
#[workflow(deps = Deps)]
pub mod linear {
    use super::{Ctx, Deps, Invalid, StepFailed, Trip, Valid};

    /// Validates the request.
    ///
    /// # Errors
    ///
    /// Every field that breaks a rule.
    #[step(entry)]
    pub async fn validate(trip: Trip) -> Result<Valid<Trip>, Invalid> {
        Valid::new(trip)
    }

    /// Greets the traveller.
    ///
    /// # Errors
    ///
    /// Never.
    #[step(after = validate)]
    pub async fn greet(ctx: &Ctx<Deps>, trip: Valid<Trip>) -> Result<String, StepFailed> {
        Ok(format!("{} from {}", ctx.deps().greeting, trip.from))
    }

    /// Ends the run.
    ///
    /// # Errors
    ///
    /// When the greeting is empty.
    #[step(after = greet, exit)]
    pub async fn finish(text: String) -> Result<String, StepFailed> {
        if text.is_empty() {
            Err(StepFailed("empty".into()))
        } else {
            Ok(text)
        }
    }
}

/// A routing step with a renamed route.
#[workflow]
pub mod routing {
    use super::StepFailed;

    /// Where a number goes.
    #[derive(Debug)]
    pub enum Sign {
        /// Below zero.
        Negative(i64),
        /// Zero or more.
        #[to(positive)]
        NonNegative(i64),
    }

    /// Classifies the number.
    ///
    /// # Errors
    ///
    /// Never.
    #[step(entry, routes = Sign)]
    pub async fn classify(n: i64) -> Result<Sign, StepFailed> {
        Ok(if n < 0 {
            Sign::Negative(n)
        } else {
            Sign::NonNegative(n)
        })
    }

    /// Negative numbers.
    ///
    /// # Errors
    ///
    /// Never.
    #[step(after = classify, exit)]
    pub async fn negative(n: i64) -> Result<String, StepFailed> {
        Ok(format!("minus {}", n.unsigned_abs()))
    }

    /// Other numbers.
    ///
    /// # Errors
    ///
    /// Never.
    #[step(after = classify, exit)]
    pub async fn positive(n: i64) -> Result<String, StepFailed> {
        Ok(format!("plus {n}"))
    }
}

/// A fan-out of three branches and their join, which routes.
#[workflow]
pub mod fan_out {
    use super::StepFailed;

    /// What the join decides.
    #[derive(Debug)]
    pub enum Outcome {
        /// Short enough.
        Short(String),
        /// Too long.
        Long(usize),
    }

    /// Plans the work.
    ///
    /// # Errors
    ///
    /// Never.
    #[step(entry)]
    pub async fn plan(topic: String) -> Result<String, StepFailed> {
        Ok(topic)
    }

    /// First branch.
    ///
    /// # Errors
    ///
    /// Never.
    #[step(after = plan)]
    pub async fn upper(topic: String) -> Result<String, StepFailed> {
        Ok(topic.to_uppercase())
    }

    /// Second branch.
    ///
    /// # Errors
    ///
    /// Never.
    #[step(after = plan)]
    pub async fn count(topic: String) -> Result<usize, StepFailed> {
        Ok(topic.len())
    }

    /// Third branch.
    ///
    /// # Errors
    ///
    /// Never.
    #[step(after = plan)]
    pub async fn words(topic: String) -> Result<Vec<String>, StepFailed> {
        Ok(topic.split_whitespace().map(str::to_owned).collect())
    }

    /// Joins the branches.
    ///
    /// # Errors
    ///
    /// Never.
    #[step(after = [upper, count, words], routes = Outcome)]
    pub async fn join(
        upper: String,
        count: usize,
        words: Vec<String>,
    ) -> Result<Outcome, StepFailed> {
        Ok(if count < 20 {
            Outcome::Short(format!("{upper} ({} words)", words.len()))
        } else {
            Outcome::Long(count)
        })
    }

    /// Short results.
    ///
    /// # Errors
    ///
    /// Never.
    #[step(after = join, exit)]
    pub async fn short(text: String) -> Result<String, StepFailed> {
        Ok(text)
    }

    /// Long results.
    ///
    /// # Errors
    ///
    /// Never.
    #[step(after = join, exit)]
    pub async fn long(len: usize) -> Result<String, StepFailed> {
        Ok(format!("{len} characters"))
    }
}

/// Orchestrator and workers.
#[workflow(deps = Deps)]
pub mod workers {
    use super::{Ctx, Deps, StepFailed};

    /// Splits the work.
    ///
    /// # Errors
    ///
    /// Never.
    #[step(entry)]
    pub async fn split(n: u32) -> Result<Vec<u32>, StepFailed> {
        Ok((1..=n).collect())
    }

    /// Works on one item.
    ///
    /// # Errors
    ///
    /// Never.
    #[step(after = split, workers = 4)]
    pub async fn work(ctx: &Ctx<Deps>, item: u32) -> Result<String, StepFailed> {
        Ok(format!("{} {item}", ctx.deps().greeting))
    }

    /// Collects the results.
    ///
    /// # Errors
    ///
    /// Never.
    #[step(after = work, exit)]
    pub async fn collect(results: Vec<String>) -> Result<Vec<String>, StepFailed> {
        Ok(results)
    }
}

/// A bounded loop and an unbounded one with a way out.
#[workflow]
pub mod loops {
    use super::{LoopExhausted, StepFailed};

    /// The review's verdict.
    #[derive(Debug)]
    pub enum Verdict {
        /// Try again, at most 3 times.
        #[to(draft, max = 3, exhausted = give_up)]
        Revise(u32),
        /// Check once more, without a bound.
        #[to(check)]
        Recheck(u32),
        /// Done.
        Publish(u32),
    }

    /// Starts.
    ///
    /// # Errors
    ///
    /// Never.
    #[step(entry)]
    pub async fn draft(n: u32) -> Result<u32, StepFailed> {
        Ok(n + 1)
    }

    /// Checks the draft.
    ///
    /// # Errors
    ///
    /// Never.
    #[step(after = draft)]
    pub async fn check(n: u32) -> Result<u32, StepFailed> {
        Ok(n + 1)
    }

    /// Reviews.
    ///
    /// # Errors
    ///
    /// Never.
    #[step(after = check, routes = Verdict)]
    pub async fn review(n: u32) -> Result<Verdict, StepFailed> {
        Ok(match n % 3 {
            0 => Verdict::Publish(n),
            1 => Verdict::Recheck(n),
            _ => Verdict::Revise(n),
        })
    }

    /// Publishes.
    ///
    /// # Errors
    ///
    /// Never.
    #[step(after = review, exit)]
    pub async fn publish(n: u32) -> Result<u32, StepFailed> {
        Ok(n)
    }

    /// Gives up.
    ///
    /// # Errors
    ///
    /// Never.
    #[step(after = review, exit)]
    pub async fn give_up(exhausted: LoopExhausted<u32>) -> Result<u32, StepFailed> {
        Ok(exhausted.last)
    }
}

/// Private steps in a private module need no docs.
#[workflow]
mod private {
    use super::StepFailed;

    #[step(entry, exit)]
    async fn only(n: u8) -> Result<u8, StepFailed> {
        Ok(n)
    }

    pub(super) async fn run() -> Result<u8, FlowError> {
        Workflow::run(&super::Ctx::new(()), 7).await
    }
}

/// An approval the `checked` workflow waits for.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Approval {
    /// Who approved.
    pub by: String,
}

/// An entry step that takes validated input (its `run` takes `impl` input and returns a boxed
/// future), and a step that waits for an event (checked for serde once, in generated code).
#[workflow]
pub mod checked {
    use super::{Approval, Event, StepFailed, Trip, Valid};
    use std::time::Duration;

    /// Counts the seats.
    ///
    /// # Errors
    ///
    /// Never.
    #[step(entry)]
    pub async fn seats(trip: Valid<Trip>) -> Result<u8, StepFailed> {
        Ok(trip.seats)
    }

    /// Waits a minute for an approval.
    ///
    /// # Errors
    ///
    /// Never.
    #[step(after = seats, exit, event = Approval, timeout = Duration::from_mins(1))]
    pub async fn approve(seats: u8, approval: Event<Approval>) -> Result<String, StepFailed> {
        Ok(match approval.received() {
            Some(a) => format!("{seats} approved by {}", a.by),
            None => format!("{seats} not approved"),
        })
    }
}

#[tokio::test]
async fn every_lint_clean_workflow_runs() {
    // A context is one run: each run below gets its own.
    let ctx = || {
        Ctx::new(Deps {
            greeting: "hi".into(),
        })
    };
    let trip = Trip {
        from: "LHR".into(),
        seats: 1,
    };
    assert_eq!(
        linear::Workflow::run(&ctx(), trip).await.unwrap(),
        "hi from LHR"
    );
    assert_eq!(
        routing::Workflow::run(&Ctx::new(()), -3).await.unwrap(),
        "minus 3"
    );
    assert_eq!(
        fan_out::Workflow::run(&Ctx::new(()), "a b".into())
            .await
            .unwrap(),
        "A B (2 words)"
    );
    assert_eq!(
        workers::Workflow::run(&ctx(), 2).await.unwrap(),
        ["hi 1", "hi 2"]
    );
    // 0 → 1 → 2: Revise → 3 → 4: Recheck → 5: Revise → 6 → 7: Recheck → 8: Revise → 9 → 10:
    // Recheck → 11: Revise, the 4th: exhausted.
    assert_eq!(loops::Workflow::run(&Ctx::new(()), 0).await.unwrap(), 11);
    assert_eq!(private::run().await.unwrap(), 7);
}

#[tokio::test(start_paused = true)]
async fn a_workflow_with_a_valid_entry_and_an_event_runs() {
    let trip = Valid::new(Trip {
        from: "LHR".into(),
        seats: 2,
    })
    .unwrap();
    let ctx = Ctx::builder(())
        .store(std::sync::Arc::new(MemoryStore::new()))
        .build();
    // With a store, the run parks at the wait, for an engine to continue.
    let parked = |err: &checked::FlowError| {
        matches!(
            err,
            checked::FlowError::Runtime(RuntimeError::Parked {
                step: "approve",
                ..
            })
        )
    };
    let err = checked::Workflow::run(&ctx, trip.clone())
        .await
        .unwrap_err();
    assert!(parked(&err), "{err:?}");
    // Continued from its checkpoint, it parks at the same wait.
    let err = checked::Workflow::run_or_resume(&ctx, trip)
        .await
        .unwrap_err();
    assert!(parked(&err), "{err:?}");
}
