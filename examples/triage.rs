//! Routing: a support desk that sends each ticket to the team that can answer it.
//!
//! `classify` reads a ticket and returns a `Route`: `Billing` and `Technical` carry the
//! ticket on to the `billing` and `technical` steps, `Escalate` carries an `Escalation` to a
//! human. The three routes converge at `send` (`after = billing | technical | escalate`),
//! which stamps whichever team's `Reply` it gets: written once, not once per route.
//!
//! The example runs three tickets that take three different routes, then drives one ticket
//! with the typestate API, where `classify()` returns a `RouteFlow` that must be matched
//! exhaustively: forgetting a route is a compile error, not a dropped ticket.
//!
//! ```text
//! cargo run --example triage
//! ```

use flow_runtime::prelude::*;
use serde::{Deserialize, Serialize};

/// A support ticket as it arrives.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Ticket {
    /// Ticket number.
    pub id: u32,
    /// Who wrote it.
    pub customer: String,
    /// What they wrote.
    pub text: String,
}

/// A ticket a human must look at, and why.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Escalation {
    /// The ticket.
    pub ticket: Ticket,
    /// Why no bot should answer it.
    pub reason: String,
}

/// The answer to a ticket: the output of every exit.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Reply {
    /// The ticket answered.
    pub ticket: u32,
    /// Which team answered.
    pub team: String,
    /// The answer.
    pub text: String,
}

/// The steps never fail in this example, but every step has an error type.
#[derive(Debug, thiserror::Error)]
#[error("the help desk is closed")]
pub struct DeskClosed;

/// The workflow. `Route` is declared inside the module: `#[workflow]` reads its variants to
/// build the graph.
#[workflow]
pub mod support {
    use super::{DeskClosed, Escalation, Reply, Ticket};
    use flow_runtime::prelude::*;

    /// Where `classify` sends a ticket. Each variant leads to the step of the same name in
    /// snake_case.
    #[derive(Debug)]
    pub enum Route {
        /// Money: refunds, invoices, charges.
        Billing(Ticket),
        /// Something is broken.
        Technical(Ticket),
        /// A human must answer.
        Escalate(Escalation),
    }

    fn ticket_id(route: &Route) -> u32 {
        match route {
            Route::Billing(t) | Route::Technical(t) => t.id,
            Route::Escalate(e) => e.ticket.id,
        }
    }

    /// Reads the ticket and picks a route, like a (very small) model would.
    ///
    /// # Errors
    ///
    /// Never; the error type is there because every step has one.
    #[step(entry, routes = Route)]
    pub async fn classify(ctx: &Ctx, ticket: Ticket) -> Result<Route, DeskClosed> {
        let text = ticket.text.to_lowercase();
        let has = |words: &[&str]| words.iter().any(|w| text.contains(w));
        let route = if has(&["lawyer", "cancel my account", "unacceptable"]) {
            let reason = "the customer is angry".to_owned();
            Route::Escalate(Escalation { ticket, reason })
        } else if has(&["refund", "invoice", "charged"]) {
            Route::Billing(ticket)
        } else if has(&["error", "crash", "broken"]) {
            Route::Technical(ticket)
        } else {
            let reason = "no rule matched".to_owned();
            Route::Escalate(Escalation { ticket, reason })
        };
        let to = match &route {
            Route::Billing(_) => "billing",
            Route::Technical(_) => "technical",
            Route::Escalate(_) => "escalate",
        };
        println!(
            "  [{}] ticket #{} → {to}",
            ctx.step().unwrap_or("?"),
            ticket_id(&route)
        );
        Ok(route)
    }

    /// Answers a billing question.
    ///
    /// # Errors
    ///
    /// Never.
    #[step(after = classify)]
    pub async fn billing(ticket: Ticket) -> Result<Reply, DeskClosed> {
        Ok(Reply {
            ticket: ticket.id,
            team: "billing".into(),
            text: format!(
                "Hi {}, accounts has your billing question; expect an answer within a day.",
                ticket.customer
            ),
        })
    }

    /// Answers a technical question.
    ///
    /// # Errors
    ///
    /// Never.
    #[step(after = classify)]
    pub async fn technical(ticket: Ticket) -> Result<Reply, DeskClosed> {
        Ok(Reply {
            ticket: ticket.id,
            team: "technical".into(),
            text: format!("Hi {}, version 2.1.1 fixes that crash.", ticket.customer),
        })
    }

    /// Hands the ticket to a person.
    ///
    /// # Errors
    ///
    /// Never.
    #[step(after = classify)]
    pub async fn escalate(escalation: Escalation) -> Result<Reply, DeskClosed> {
        Ok(Reply {
            ticket: escalation.ticket.id,
            team: "humans".into(),
            text: format!(
                "Hi {}, a team lead will call you today ({}).",
                escalation.ticket.customer, escalation.reason
            ),
        })
    }

    /// Every route ends here, whichever ran: the reply is stamped in one place.
    ///
    /// # Errors
    ///
    /// Never.
    #[step(after = billing | technical | escalate, exit)]
    pub async fn send(reply: Reply) -> Result<Reply, DeskClosed> {
        let text = format!(
            "{} [#{}, answered by {}]",
            reply.text, reply.ticket, reply.team
        );
        Ok(Reply { text, ..reply })
    }
}

fn ticket(id: u32, customer: &str, text: &str) -> Ticket {
    Ticket {
        id,
        customer: customer.into(),
        text: text.into(),
    }
}

#[tokio::main]
async fn main() -> Result<(), support::FlowError> {
    // The whole graph: `run` follows whichever route `classify` returns.
    let tickets = [
        ticket(
            1,
            "Ada",
            "I was charged twice this month, please refund one.",
        ),
        ticket(
            2,
            "Grace",
            "The app shows an error and then crashes on start.",
        ),
        ticket(
            3,
            "Linus",
            "This is unacceptable, I want to cancel my account.",
        ),
    ];
    for t in tickets {
        println!("ticket #{}: {:?}", t.id, t.text);
        // A context per run, as a server builds one per request: its id keys the run.
        let reply = support::Workflow::run(&Ctx::new(()), t).await?;
        println!("  {} replied: {}", reply.team, reply.text);
    }

    // One step at a time. `classify()` cannot return "the next step" as one type, since that
    // depends on the ticket: it returns `RouteFlow`, one variant per route, each holding the
    // run at the step that route leads to. The `match` must cover every route; add a variant
    // to `Route` and this stops compiling until it is handled.
    println!();
    println!("typestate:");
    let ctx = Ctx::new(());
    let flow = support::Flow::new(&ctx, ticket(4, "Barbara", "How do I change my username?"));
    // Whichever route ran, the run is then at `send`: every arm has the same type.
    let flow = match flow.classify().await? {
        support::RouteFlow::Billing(flow) => flow.billing().await?,
        support::RouteFlow::Technical(flow) => flow.technical().await?,
        support::RouteFlow::Escalate(flow) => {
            println!("  escalating because {}", flow.input().reason);
            flow.escalate().await?
        }
    };
    let reply = flow.send().await?;
    println!("  {} replied: {}", reply.team, reply.text);
    Ok(())
}
