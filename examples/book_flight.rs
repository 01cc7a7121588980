//! A travel agent that books a flight, the main `flow` example.
//!
//! A raw `TripRequest` goes through five steps: `validate` (garde rules turn it into a
//! `Valid<Trip>`), `search` (ask the airline), `choose` (the cheapest offer), `book` (hold
//! the seats) and `confirm` (issue the tickets, the `Receipt` ends the run). The airline is
//! an in-memory fake handed to every step through the context's deps.
//!
//! The example runs the workflow three ways: the whole graph at once with a durable SQLite
//! checkpoint store (a temporary file, so no setup), one checked step at a time with the
//! typestate API, and with a request that breaks the validation rules.
//!
//! ```text
//! cargo run --example book_flight
//! ```
//!
//! To print the workflow's graph as a Mermaid diagram instead:
//!
//! ```text
//! cargo run --example book_flight -- --graph
//! ```

use flow_runtime::prelude::*;
use flow_runtime::state::SqliteStore;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// What a customer typed in: nothing is checked yet.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TripRequest {
    /// Departure airport, e.g. `LHR`.
    pub from: String,
    /// Arrival airport, e.g. `JFK`.
    pub to: String,
    /// Day of departure, e.g. `2025-06-01`.
    pub date: String,
    /// How many seats.
    pub passengers: u8,
}

/// A trip the airline can be asked about. Steps only ever see it as `Valid<Trip>`, so its
/// rules hold wherever it is used.
#[derive(Clone, Debug, Serialize, Deserialize, garde::Validate)]
pub struct Trip {
    /// Departure airport: an IATA code.
    #[garde(custom(iata_code))]
    pub from: String,
    /// Arrival airport: an IATA code.
    #[garde(custom(iata_code))]
    pub to: String,
    /// Day of departure.
    #[garde(length(min = 1))]
    pub date: String,
    /// How many seats: one booking holds at most nine.
    #[garde(range(min = 1, max = 9))]
    pub passengers: u8,
}

/// An IATA airport code is three uppercase ASCII letters.
#[allow(
    clippy::trivially_copy_pass_by_ref,
    reason = "garde hands custom rules its context by reference"
)]
fn iata_code(code: &str, _: &()) -> garde::Result {
    if code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(())
    } else {
        Err(garde::Error::new(format!(
            "`{code}` is not an IATA code (three uppercase letters)"
        )))
    }
}

impl From<TripRequest> for Trip {
    fn from(req: TripRequest) -> Self {
        // Forgive stray spaces; everything else is up to the rules.
        Self {
            from: req.from.trim().to_owned(),
            to: req.to.trim().to_owned(),
            date: req.date.trim().to_owned(),
            passengers: req.passengers,
        }
    }
}

/// One flight the airline can sell, at a price per seat.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Offer {
    /// Flight number.
    pub flight: String,
    /// Departure time, local.
    pub departs: String,
    /// Price of one seat, in euros.
    pub price: u32,
}

/// The offers found for a trip.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Offers {
    /// The trip they were found for.
    pub trip: Valid<Trip>,
    /// What the airline offered.
    pub offers: Vec<Offer>,
}

/// The offer picked for a trip.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Choice {
    /// The trip.
    pub trip: Valid<Trip>,
    /// The offer.
    pub offer: Offer,
}

/// Seats held by the airline, not yet paid for.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Booking {
    /// The booking reference.
    pub pnr: String,
    /// What was booked.
    pub choice: Choice,
}

/// What the customer gets at the end: the run's output.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Receipt {
    /// The booking reference.
    pub pnr: String,
    /// The flight.
    pub flight: String,
    /// From, to and date, for the customer's eyes.
    pub route: String,
    /// One ticket number per passenger.
    pub tickets: Vec<String>,
    /// What it all cost, in euros.
    pub total: u32,
}

/// What can go wrong at the airline.
#[derive(Debug, thiserror::Error)]
pub enum AirlineError {
    /// No flight matches the trip.
    #[error("no flights from {from} to {to} on {date}")]
    NoFlights {
        /// Departure airport.
        from: String,
        /// Arrival airport.
        to: String,
        /// Day.
        date: String,
    },
    /// Not enough seats left.
    #[error("flight {flight} has {left} seats left, {wanted} wanted")]
    SoldOut {
        /// The flight.
        flight: String,
        /// Seats left.
        left: u8,
        /// Seats asked for.
        wanted: u8,
    },
    /// The booking reference is not (or no longer) held.
    #[error("no booking `{0}`")]
    UnknownBooking(String),
}

/// An airline in memory: a timetable, seats left per flight, and the bookings it holds. Each
/// call takes a few milliseconds, like a real API would.
#[derive(Debug)]
pub struct Airline {
    timetable: Vec<(&'static str, &'static str, &'static str, &'static str, u32)>,
    seats: Mutex<HashMap<String, u8>>,
    held: Mutex<HashMap<String, u8>>,
    next: AtomicU32,
}

impl Airline {
    /// A small airline flying London–New York.
    #[must_use]
    pub fn demo() -> Self {
        let timetable = vec![
            ("FL100", "LHR", "JFK", "08:05", 420),
            ("FL102", "LHR", "JFK", "13:40", 365),
            ("FL104", "LHR", "JFK", "19:15", 510),
            ("FL101", "JFK", "LHR", "21:30", 398),
        ];
        let seats = timetable.iter().map(|f| (f.0.to_owned(), 9)).collect();
        Self {
            timetable,
            seats: Mutex::new(seats),
            held: Mutex::default(),
            next: AtomicU32::new(1),
        }
    }

    /// Flights from `from` to `to` (every day is the same at this airline).
    async fn search(&self, trip: &Trip) -> Vec<Offer> {
        latency().await;
        self.timetable
            .iter()
            .filter(|f| f.1 == trip.from && f.2 == trip.to)
            .map(|f| Offer {
                flight: f.0.to_owned(),
                departs: f.3.to_owned(),
                price: f.4,
            })
            .collect()
    }

    /// Holds `wanted` seats on `flight`, returning a booking reference.
    async fn hold(&self, flight: &str, wanted: u8) -> Result<String, AirlineError> {
        latency().await;
        let mut seats = self.seats.lock().expect("seat map lock");
        let left = seats.entry(flight.to_owned()).or_default();
        if *left < wanted {
            return Err(AirlineError::SoldOut {
                flight: flight.to_owned(),
                left: *left,
                wanted,
            });
        }
        *left -= wanted;
        let pnr = format!("PNR{:03}", self.next.fetch_add(1, Ordering::Relaxed));
        self.held
            .lock()
            .expect("held map lock")
            .insert(pnr.clone(), wanted);
        Ok(pnr)
    }

    /// Turns a held booking into ticket numbers, one per seat.
    async fn ticket(&self, pnr: &str) -> Result<Vec<String>, AirlineError> {
        latency().await;
        let seats = self
            .held
            .lock()
            .expect("held map lock")
            .remove(pnr)
            .ok_or_else(|| AirlineError::UnknownBooking(pnr.to_owned()))?;
        Ok((1..=seats).map(|n| format!("{pnr}-{n}")).collect())
    }
}

/// A network round trip.
async fn latency() {
    tokio::time::sleep(Duration::from_millis(5)).await;
}

/// The workflow: one `async fn` per step, wired by `#[step(…)]`.
#[workflow(deps = Airline)]
pub mod trip {
    use super::{Airline, AirlineError, Booking, Choice, Offers, Receipt, Trip, TripRequest};
    use flow_runtime::prelude::*;

    /// Checks the raw request against `Trip`'s rules.
    ///
    /// # Errors
    ///
    /// [`Invalid`], listing every field that broke a rule.
    #[step(entry)]
    pub async fn validate(req: TripRequest) -> Result<Valid<Trip>, Invalid> {
        Valid::new(Trip::from(req))
    }

    /// Asks the airline what flies.
    ///
    /// # Errors
    ///
    /// [`AirlineError::NoFlights`] when nothing flies that route.
    #[step(after = validate)]
    pub async fn search(ctx: &Ctx<Airline>, trip: Valid<Trip>) -> Result<Offers, AirlineError> {
        let offers = ctx.deps().search(&trip).await;
        if offers.is_empty() {
            return Err(AirlineError::NoFlights {
                from: trip.from.clone(),
                to: trip.to.clone(),
                date: trip.date.clone(),
            });
        }
        Ok(Offers { trip, offers })
    }

    /// Picks the cheapest offer.
    ///
    /// # Errors
    ///
    /// [`AirlineError::NoFlights`] when there is no offer to pick from.
    #[step(after = search)]
    pub async fn choose(found: Offers) -> Result<Choice, AirlineError> {
        let Offers { trip, offers } = found;
        let offer =
            offers
                .into_iter()
                .min_by_key(|o| o.price)
                .ok_or_else(|| AirlineError::NoFlights {
                    from: trip.from.clone(),
                    to: trip.to.clone(),
                    date: trip.date.clone(),
                })?;
        Ok(Choice { trip, offer })
    }

    /// Holds the seats.
    ///
    /// # Errors
    ///
    /// [`AirlineError::SoldOut`] when the flight has too few seats left.
    #[step(after = choose)]
    pub async fn book(ctx: &Ctx<Airline>, choice: Choice) -> Result<Booking, AirlineError> {
        let pnr = ctx
            .deps()
            .hold(&choice.offer.flight, choice.trip.passengers)
            .await?;
        Ok(Booking { pnr, choice })
    }

    /// Issues the tickets: the receipt ends the run.
    ///
    /// # Errors
    ///
    /// [`AirlineError::UnknownBooking`] when the seats are no longer held.
    #[step(after = book, exit)]
    pub async fn confirm(ctx: &Ctx<Airline>, booking: Booking) -> Result<Receipt, AirlineError> {
        let tickets = ctx.deps().ticket(&booking.pnr).await?;
        let Choice { trip, offer } = booking.choice;
        Ok(Receipt {
            pnr: booking.pnr,
            route: format!("{} → {} on {}", trip.from, trip.to, trip.date),
            total: offer.price * u32::from(trip.passengers),
            flight: offer.flight,
            tickets,
        })
    }
}

fn request(from: &str, to: &str, date: &str, passengers: u8) -> TripRequest {
    TripRequest {
        from: from.into(),
        to: to.into(),
        date: date.into(),
        passengers,
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::args().any(|arg| arg == "--graph") {
        print!("{}", trip::MERMAID);
        return Ok(());
    }

    // 1. The whole graph at once. The context carries the airline (the steps' deps) and a
    //    durable store: an SQLite file (in the temp directory; no setup) that gets a
    //    checkpoint after every step. The run id is an idempotency key: `run_or_resume`
    //    continues a run that already exists instead of starting a second one.
    println!("== run: the whole workflow, with a durable checkpoint store");
    let path = std::env::temp_dir().join(format!("flow-book-flight-{}.sqlite", std::process::id()));
    let store = Arc::new(SqliteStore::open(&path)?);
    let airline = Airline::demo();
    let ctx = Ctx::builder(airline)
        .run_id("trip-1")
        .store(Arc::clone(&store))
        .build();
    let receipt =
        trip::Workflow::run_or_resume(&ctx, request("LHR", "JFK", "2025-06-01", 2)).await?;
    println!(
        "receipt: {} {} {}, tickets {:?}, total €{}",
        receipt.pnr, receipt.flight, receipt.route, receipt.tickets, receipt.total
    );

    println!(
        "checkpoints of run `{}` in {}:",
        ctx.run_id(),
        path.display()
    );
    for entry in store.history(ctx.run_id()).await? {
        println!("  #{:<2} after {}", entry.seq, entry.step);
    }

    // Asking again for the same run id returns the stored run's receipt: nothing is booked twice
    // (after a crash, the same call would continue from the last completed step).
    let again = trip::Workflow::run_or_resume(&ctx, request("LHR", "JFK", "2025-06-01", 2)).await?;
    println!(
        "same run id again: {} (not booked a second time)",
        again.pnr
    );
    drop(store);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }

    // 2. The same workflow, one step at a time. Each method consumes the `Flow` and returns it
    //    at the next step, so steps cannot be skipped or run out of order: that would not
    //    compile. Between steps, `input()` shows what the next step will receive.
    println!();
    println!("== typestate: one step at a time");
    let ctx = Ctx::new(Airline::demo());
    let flow = trip::Flow::new(&ctx, request(" LHR", "JFK ", "2025-06-02", 3));
    let flow = flow.validate().await?;
    println!(
        "validate: {} → {}, {} passengers",
        flow.input().from,
        flow.input().to,
        flow.input().passengers
    );
    let flow = flow.search().await?;
    for offer in &flow.input().offers {
        println!(
            "search:   {} at {} for €{}",
            offer.flight, offer.departs, offer.price
        );
    }
    let flow = flow.choose().await?;
    println!("choose:   {} (cheapest)", flow.input().offer.flight);
    let flow = flow.book().await?;
    println!("book:     holding {}", flow.input().pnr);
    let receipt = flow.confirm().await?;
    println!(
        "confirm:  tickets {:?}, total €{}",
        receipt.tickets, receipt.total
    );

    // 3. A request that breaks the rules never reaches the airline: `validate` fails with
    //    `Invalid`, which lists every field that broke a rule.
    println!();
    println!("== invalid request");
    let bad = request("lhr", "NEWYORK", "", 12);
    match trip::Workflow::run(&ctx, bad).await {
        Err(trip::FlowError::Validate(invalid)) => {
            println!("rejected by step `validate`:");
            for field in invalid.fields() {
                println!("  {}: {}", field.path, field.message);
            }
        }
        other => return Err(format!("expected a validation error, got {other:?}").into()),
    }
    Ok(())
}
