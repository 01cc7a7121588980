//! Evaluator-optimizer: a writer drafts, a reviewer sends the draft back until it is good,
//! with a bound on how many times it may go back.
//!
//! `draft` writes from a `Brief`; `review` routes: `Accept(Draft)` goes on to `publish`,
//! `Revise(Brief)` goes back to `draft` with the reviewer's notes added. The back-edge is
//! declared `#[to(draft, max = 3, exhausted = give_up)]`: the fourth time the reviewer asks
//! for a revision, the run goes to `give_up` instead, which receives a
//! `LoopExhausted<Brief>` saying how many revisions were made and what the last brief was.
//!
//! The writer here only mentions what it is told to; the reviewer checks that the draft
//! mentions every required point and adds one note per round. A brief with two required
//! points converges after two revisions; one with five exhausts the bound.
//!
//! ```text
//! cargo run --example evaluator
//! ```

use flow_runtime::prelude::*;
use serde::{Deserialize, Serialize};

/// What to write about.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Brief {
    /// The subject.
    pub topic: String,
    /// Points the piece must mention; the writer does not see these.
    pub required: Vec<String>,
    /// The reviewer's notes so far: the writer mentions each of these.
    pub notes: Vec<String>,
}

/// A piece of writing, with the brief it was written from.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Draft {
    /// The brief.
    pub brief: Brief,
    /// The text.
    pub text: String,
}

/// How the run ended: the output of both exits.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Outcome {
    /// Whether the piece was published.
    pub published: bool,
    /// What happened, in a line.
    pub summary: String,
}

/// The writer or the reviewer failed.
#[derive(Debug, thiserror::Error)]
#[error("the editor is out of coffee")]
pub struct NoCoffee;

/// The workflow: `draft` ⇄ `review`, then `publish` or `give_up`.
#[workflow]
pub mod editorial {
    use super::{Brief, Draft, NoCoffee, Outcome};
    use flow_runtime::prelude::*;

    /// The reviewer's verdict.
    #[derive(Debug)]
    pub enum Verdict {
        /// Good enough: publish it.
        #[to(publish)]
        Accept(Draft),
        /// Back to the writer with more notes, at most three times.
        #[to(draft, max = 3, exhausted = give_up)]
        Revise(Brief),
    }

    /// Writes a draft that mentions the topic and every note, nothing more.
    ///
    /// # Errors
    ///
    /// Never; every step has an error type.
    #[step(entry)]
    pub async fn draft(brief: Brief) -> Result<Draft, NoCoffee> {
        let text = if brief.notes.is_empty() {
            format!("On {}.", brief.topic)
        } else {
            format!("On {}: {}.", brief.topic, brief.notes.join(", "))
        };
        println!("  draft:   {text}");
        Ok(Draft { brief, text })
    }

    /// Accepts a draft that mentions every required point; otherwise asks for the first one
    /// missing.
    ///
    /// # Errors
    ///
    /// Never.
    #[step(after = draft, routes = Verdict)]
    pub async fn review(draft: Draft) -> Result<Verdict, NoCoffee> {
        let missing = draft
            .brief
            .required
            .iter()
            .find(|p| !draft.text.contains(p.as_str()));
        let Some(point) = missing.cloned() else {
            println!("  review:  accepted");
            return Ok(Verdict::Accept(draft));
        };
        println!("  review:  revise, it does not mention {point}");
        let mut brief = draft.brief;
        brief.notes.push(point);
        Ok(Verdict::Revise(brief))
    }

    /// Publishes an accepted draft.
    ///
    /// # Errors
    ///
    /// Never.
    #[step(after = review, exit)]
    pub async fn publish(draft: Draft) -> Result<Outcome, NoCoffee> {
        Ok(Outcome {
            published: true,
            summary: format!("published {} words", draft.text.split_whitespace().count()),
        })
    }

    /// Shelves the piece when the reviewer asked for too many revisions.
    ///
    /// # Errors
    ///
    /// Never.
    #[step(after = review, exit)]
    pub async fn give_up(exhausted: LoopExhausted<Brief>) -> Result<Outcome, NoCoffee> {
        let wanted = exhausted
            .last
            .notes
            .last()
            .map_or("nothing", String::as_str);
        println!(
            "  give_up: {} revisions made, the reviewer still wants {wanted}",
            exhausted.iterations
        );
        Ok(Outcome {
            published: false,
            summary: format!("shelved after {} revisions", exhausted.iterations),
        })
    }
}

fn brief(topic: &str, required: &[&str]) -> Brief {
    Brief {
        topic: topic.into(),
        required: required.iter().map(|&p| p.to_owned()).collect(),
        notes: Vec::new(),
    }
}

#[tokio::main]
async fn main() -> Result<(), editorial::FlowError> {
    // A context is one run (its id keys the run's calls and outputs): each run gets its own.
    println!("a brief the writer can meet in two revisions:");
    let outcome =
        editorial::Workflow::run(&Ctx::new(()), brief("tide pools", &["anemones", "tides"]))
            .await?;
    println!("  → {}", outcome.summary);

    println!();
    println!("a brief with more points than the loop allows revisions:");
    let points = ["anemones", "tides", "crabs", "limpets", "safety"];
    let outcome = editorial::Workflow::run(&Ctx::new(()), brief("tide pools", &points)).await?;
    println!("  → {}", outcome.summary);

    // The same loop by hand. `review()` returns a `VerdictFlow`: `Revise` holds the run back
    // at `draft` (the same `Flow<state::Draft>` type `Flow::new` returns, so it can go round
    // the loop), and `ReviseExhausted` holds it at `give_up` once the bound is used up.
    println!();
    println!("the same brief, by hand:");
    let ctx = Ctx::new(());
    let mut flow = editorial::Flow::new(&ctx, brief("tide pools", &points));
    let outcome = loop {
        match flow.draft().await?.review().await? {
            editorial::VerdictFlow::Accept(at_publish) => break at_publish.publish().await?,
            editorial::VerdictFlow::Revise(at_draft) => {
                println!("  (revisions so far: {})", at_draft.loops().review_revise);
                flow = at_draft;
            }
            editorial::VerdictFlow::ReviseExhausted(at_give_up) => {
                println!(
                    "  LoopExhausted.iterations = {}",
                    at_give_up.input().iterations
                );
                break at_give_up.give_up().await?;
            }
        }
    };
    println!("  → {}", outcome.summary);
    Ok(())
}
