//! A travel agent that books a flight, the main `flow` example.
//!
//! A raw `TripRequest` goes through five steps: `validate` (garde rules turn it into a
//! `Valid<Trip>`), `search` (ask the airline), `choose` (the cheapest offer), `book` (hold
//! the seats) and `confirm` (issue the tickets, the `Receipt` ends the run).
//!
//! The airline is a real HTTP API: a small fake one that the example starts on loopback
//! (`127.0.0.1`, a free port), which wants a bearer token and honours `Idempotency-Key`. The
//! steps reach it through three tools, `SearchFlights`, `HoldSeats` and `IssueTickets`, each
//! declared by the one step that may call it (`#[step(tools = [HoldSeats])]`): a step calling
//! another step's tool does not compile. Each tool runs under its `ToolPolicy` (timeout,
//! retries with backoff, a rate limit, the credential); the airline answers the first search
//! with `503 Retry-After: 0`, so the run history shows a retried call.
//!
//! The credential comes from the environment variable `AIRLINE_API_KEY`; when it is not set,
//! the demo key `demo-airline-key` is used by both the fake airline and the tools, so the
//! example needs no setup. Set it to anything else to see it travel.
//!
//! The receipt goes through two output sinks attached to the workflow's exit: a store sink (a
//! JSON Lines file) and a formatted confirmation (a template) sent to a channel, standing in
//! for an e-mail or chat message.
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

use flow_runtime::output::{ChannelSink, FileSink, Format, Outputs, Sink};
use flow_runtime::prelude::*;
use flow_runtime::store::SqliteStore;
use flow_runtime::tool::http::HttpJson;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
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
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
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

/// What can go wrong while booking.
#[derive(Debug, thiserror::Error)]
pub enum BookingError {
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
    /// The airline's API failed, even with retries, or refused (no seats left, say).
    #[error(transparent)]
    Airline(#[from] CallError),
}

// ---------------------------------------------------------------------------------------------
// The tools: the airline's API as the steps see it. Each makes one HTTP request per attempt;
// `HttpJson` adds the credential and the idempotency key and classifies the answer (a 503 is
// transient and retried, a 409 permanent).

/// Where and when to fly: the input of [`SearchFlights`].
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct FlightQuery {
    /// Departure airport.
    pub from: String,
    /// Arrival airport.
    pub to: String,
    /// Day of departure.
    pub date: String,
}

/// Lists the flights for a trip.
#[derive(Debug)]
pub struct SearchFlights {
    api: HttpJson,
}

impl Tool for SearchFlights {
    type Input = FlightQuery;
    type Output = Vec<Offer>;
    const NAME: &'static str = "search_flights";
    const DESCRIPTION: &'static str = "Lists the flights from one airport to another on a day.";

    async fn call(&self, ctx: &ToolCtx, query: FlightQuery) -> Result<Vec<Offer>, ToolError> {
        self.api.get(ctx, "flights", &query).await
    }
}

/// Seats to hold: the input of [`HoldSeats`].
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct HoldRequest {
    /// The flight.
    pub flight: String,
    /// How many seats.
    pub passengers: u8,
}

/// A booking reference: what [`HoldSeats`] returns and [`IssueTickets`] takes.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct Pnr {
    /// The reference.
    pub pnr: String,
}

/// Holds seats on a flight.
#[derive(Debug)]
pub struct HoldSeats {
    api: HttpJson,
}

impl Tool for HoldSeats {
    type Input = HoldRequest;
    type Output = Pnr;
    const NAME: &'static str = "hold_seats";
    const DESCRIPTION: &'static str = "Holds seats on a flight and returns the booking reference.";

    async fn call(&self, ctx: &ToolCtx, hold: HoldRequest) -> Result<Pnr, ToolError> {
        self.api.post(ctx, "bookings", &hold).await
    }
}

/// Ticket numbers, one per seat: what [`IssueTickets`] returns.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct Tickets {
    /// The ticket numbers.
    pub tickets: Vec<String>,
}

/// Turns held seats into tickets.
#[derive(Debug)]
pub struct IssueTickets {
    api: HttpJson,
}

impl Tool for IssueTickets {
    type Input = Pnr;
    type Output = Tickets;
    const NAME: &'static str = "issue_tickets";
    const DESCRIPTION: &'static str = "Issues the tickets of a held booking.";

    async fn call(&self, ctx: &ToolCtx, pnr: Pnr) -> Result<Tickets, ToolError> {
        self.api.post(ctx, "tickets", &pnr).await
    }
}

/// The environment variable holding the airline's API key.
const KEY_VARIABLE: &str = "AIRLINE_API_KEY";
/// The key used when [`KEY_VARIABLE`] is not set, by the fake airline and the tools alike.
const DEMO_KEY: &str = "demo-airline-key";

/// The credential: `AIRLINE_API_KEY` when set, the demo key otherwise.
fn credential() -> Credential {
    if std::env::var_os(KEY_VARIABLE).is_some() {
        Credential::from_env(KEY_VARIABLE)
    } else {
        Credential::new(DEMO_KEY)
    }
}

/// The three tools, each under its policy: every call authenticated with the bearer token,
/// at most 5 seconds per attempt, transient failures retried up to 4 times with jittered
/// backoff (or after the airline's `Retry-After`), at most 20 calls a second to the airline.
fn toolbox(api: &HttpJson) -> Toolbox {
    let policy = || {
        ToolPolicy::builder()
            .auth(Auth::bearer(credential()))
            .timeout(Duration::from_secs(5))
            .retry(
                Retry::exponential(Duration::from_millis(50))
                    .max_attempts(4)
                    .max_elapsed(Duration::from_secs(10)),
            )
            .rate_limit(RateLimit::per_second(20).burst(5))
            .build()
    };
    Toolbox::new()
        .with(PolicyTool::new(
            SearchFlights { api: api.clone() },
            policy(),
        ))
        .with(PolicyTool::new(HoldSeats { api: api.clone() }, policy()))
        .with(PolicyTool::new(IssueTickets { api: api.clone() }, policy()))
}

/// A fake airline: a real HTTP server on loopback, small enough to read.
mod airline {
    use super::{FlightQuery, HoldRequest, Offer, Pnr, Tickets};
    use axum::extract::{Query, State};
    use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
    use axum::response::{IntoResponse, Response};
    use axum::{Json, Router, routing};
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    #[derive(Default)]
    struct Books {
        searches: u32,
        seats: HashMap<String, u8>,
        held: HashMap<String, u8>,
        next: u32,
        /// Answers already given, by idempotency key: a repeated request gets the same one.
        replies: HashMap<String, String>,
    }

    struct Airline {
        token: String,
        books: Mutex<Books>,
    }

    const TIMETABLE: [(&str, &str, &str, &str, u32); 4] = [
        ("FL100", "LHR", "JFK", "08:05", 420),
        ("FL102", "LHR", "JFK", "13:40", 365),
        ("FL104", "LHR", "JFK", "19:15", 510),
        ("FL101", "JFK", "LHR", "21:30", 398),
    ];

    /// Starts the airline on a free loopback port, expecting `Bearer <key>`; returns its base
    /// URL.
    pub(crate) async fn start(key: String) -> std::io::Result<String> {
        let books = Books {
            seats: TIMETABLE.iter().map(|f| (f.0.to_owned(), 9)).collect(),
            next: 1,
            ..Books::default()
        };
        let airline = Arc::new(Airline {
            token: format!("Bearer {key}"),
            books: Mutex::new(books),
        });
        let app = Router::new()
            .route("/v1/flights", routing::get(flights))
            .route("/v1/bookings", routing::post(hold))
            .route("/v1/tickets", routing::post(tickets))
            .with_state(airline);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/v1", listener.local_addr()?);
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(url)
    }

    /// `None` when the request carries the key, else the refusal to send.
    fn refused(airline: &Airline, headers: &HeaderMap) -> Option<Response> {
        let given = headers
            .get(header::AUTHORIZATION)
            .map(HeaderValue::as_bytes);
        (given != Some(airline.token.as_bytes()))
            .then(|| (StatusCode::UNAUTHORIZED, "missing or wrong API key").into_response())
    }

    fn json_reply(body: String) -> Response {
        ([(header::CONTENT_TYPE, "application/json")], body).into_response()
    }

    async fn flights(
        State(airline): State<Arc<Airline>>,
        headers: HeaderMap,
        Query(query): Query<FlightQuery>,
    ) -> Response {
        if let Some(refusal) = refused(&airline, &headers) {
            return refusal;
        }
        let mut books = airline.books.lock().expect("books lock");
        books.searches += 1;
        if books.searches == 1 {
            // Busy at first, as real services are: the tool's policy retries.
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, "0")],
                "busy",
            )
                .into_response();
        }
        let offers: Vec<Offer> = TIMETABLE
            .iter()
            .filter(|f| f.1 == query.from && f.2 == query.to)
            .map(|f| Offer {
                flight: f.0.to_owned(),
                departs: f.3.to_owned(),
                price: f.4,
            })
            .collect();
        Json(offers).into_response()
    }

    async fn hold(
        State(airline): State<Arc<Airline>>,
        headers: HeaderMap,
        Json(hold): Json<HoldRequest>,
    ) -> Response {
        if let Some(refusal) = refused(&airline, &headers) {
            return refusal;
        }
        let key = headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let mut books = airline.books.lock().expect("books lock");
        if let Some(reply) = books.replies.get(&key) {
            return json_reply(reply.clone());
        }
        let left = books.seats.get(&hold.flight).copied().unwrap_or_default();
        if left < hold.passengers {
            let message = format!("flight {} has {left} seats left", hold.flight);
            return (StatusCode::CONFLICT, message).into_response();
        }
        books
            .seats
            .insert(hold.flight.clone(), left - hold.passengers);
        let pnr = format!("PNR{:03}", books.next);
        books.next += 1;
        books.held.insert(pnr.clone(), hold.passengers);
        let reply = serde_json::to_string(&Pnr { pnr }).unwrap_or_default();
        books.replies.insert(key, reply.clone());
        json_reply(reply)
    }

    async fn tickets(
        State(airline): State<Arc<Airline>>,
        headers: HeaderMap,
        Json(Pnr { pnr }): Json<Pnr>,
    ) -> Response {
        if let Some(refusal) = refused(&airline, &headers) {
            return refusal;
        }
        let mut books = airline.books.lock().expect("books lock");
        let Some(seats) = books.held.remove(&pnr) else {
            return (StatusCode::NOT_FOUND, format!("no booking {pnr}")).into_response();
        };
        let tickets = (1..=seats).map(|n| format!("{pnr}-{n}")).collect();
        Json(Tickets { tickets }).into_response()
    }
}

/// The workflow: one `async fn` per step, wired by `#[step(…)]`; each step that talks to the
/// airline declares the one tool it calls.
#[workflow]
pub mod trip {
    use super::{
        Booking, BookingError, Choice, FlightQuery, HoldRequest, HoldSeats, IssueTickets, Offers,
        Pnr, Receipt, SearchFlights, Trip, TripRequest,
    };
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
    /// [`BookingError::NoFlights`] when nothing flies that route; the airline's error.
    #[step(after = validate, tools = [SearchFlights])]
    pub async fn search(
        ctx: &Ctx<(), tools::Search>,
        trip: Valid<Trip>,
    ) -> Result<Offers, BookingError> {
        let query = FlightQuery {
            from: trip.from.clone(),
            to: trip.to.clone(),
            date: trip.date.clone(),
        };
        let offers = ctx.call::<SearchFlights>(query).await?;
        if offers.is_empty() {
            return Err(BookingError::NoFlights {
                from: trip.from.clone(),
                to: trip.to.clone(),
                date: trip.date.clone(),
            });
        }
        Ok(Offers { trip, offers })
    }

    /// Picks the cheapest offer. No tools: it only thinks.
    ///
    /// # Errors
    ///
    /// [`BookingError::NoFlights`] when there is no offer to pick from.
    #[step(after = search)]
    pub async fn choose(found: Offers) -> Result<Choice, BookingError> {
        let Offers { trip, offers } = found;
        let offer =
            offers
                .into_iter()
                .min_by_key(|o| o.price)
                .ok_or_else(|| BookingError::NoFlights {
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
    /// The airline's error, e.g. a refusal when the flight has too few seats left.
    #[step(after = choose, tools = [HoldSeats])]
    pub async fn book(ctx: &Ctx<(), tools::Book>, choice: Choice) -> Result<Booking, BookingError> {
        let hold = HoldRequest {
            flight: choice.offer.flight.clone(),
            passengers: choice.trip.passengers,
        };
        let Pnr { pnr } = ctx.call::<HoldSeats>(hold).await?;
        Ok(Booking { pnr, choice })
    }

    /// Issues the tickets: the receipt ends the run.
    ///
    /// # Errors
    ///
    /// The airline's error, e.g. when the seats are no longer held.
    #[step(after = book, exit, tools = [IssueTickets])]
    pub async fn confirm(
        ctx: &Ctx<(), tools::Confirm>,
        booking: Booking,
    ) -> Result<Receipt, BookingError> {
        let pnr = Pnr {
            pnr: booking.pnr.clone(),
        };
        let tickets = ctx.call::<IssueTickets>(pnr).await?.tickets;
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

    // The airline, on loopback, expecting the same key the tools send.
    let key = std::env::var(KEY_VARIABLE).unwrap_or_else(|_| DEMO_KEY.to_owned());
    let api = HttpJson::new(&airline::start(key).await?)?;
    println!("airline API at {}", api.base_url());
    let tools = toolbox(&api);

    // 1. The whole graph at once. The context carries the tools, a durable store (an SQLite
    //    file in the temp directory, no setup) that gets a checkpoint after every step, and
    //    the outputs: the receipt is appended to a JSON Lines file and sent, formatted, to a
    //    channel. The run id is an idempotency key: `run_or_resume` continues a run that
    //    already exists instead of starting a second one.
    println!();
    println!("== run: the whole workflow, with a durable checkpoint store");
    let dir = std::env::temp_dir().join(format!("flow-book-flight-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let store = Arc::new(SqliteStore::open(dir.join("runs.sqlite"))?);
    let (confirmations, mut inbox) = tokio::sync::mpsc::channel(8);
    let confirmation = Format::template(
        "Booked {{ pnr }}: flight {{ flight }}, {{ route }}, {{ tickets | length }} ticket(s), total €{{ total }}.",
    )?;
    let outputs = Outputs::new()
        .on_exit(FileSink::jsonl(dir.join("receipts.jsonl")))
        .on_exit(ChannelSink::new(confirmations).formatted(confirmation));
    let ctx = Ctx::builder(())
        .run_id("trip-1")
        .store(Arc::clone(&store))
        .tools(tools.clone())
        .outputs(outputs)
        .build();
    let receipt =
        trip::Workflow::run_or_resume(&ctx, request("LHR", "JFK", "2025-06-01", 2)).await?;
    println!(
        "receipt: {} {} {}, tickets {:?}, total €{}",
        receipt.pnr, receipt.flight, receipt.route, receipt.tickets, receipt.total
    );
    if let Some(message) = inbox.recv().await {
        let body = message.formatted().map(|f| f.body().to_owned());
        println!("confirmation sent: {}", body.unwrap_or_default());
    }
    let stored = std::fs::read_to_string(dir.join("receipts.jsonl"))?;
    println!(
        "receipts stored: {} line(s) in receipts.jsonl",
        stored.lines().count()
    );

    println!("history of run `{}`, from the store:", ctx.run_id());
    for entry in store.history(ctx.run_id()).await? {
        // The run's start, stored before its first step, has no step.
        match entry.step.as_str() {
            "" => println!("  #{:<2} started", entry.seq),
            step => println!("  #{:<2} after {step}", entry.seq),
        }
        for call in &entry.calls {
            println!(
                "        {:?} {}: {} attempt(s), {} ms, {:?}",
                call.kind,
                call.name,
                call.attempts,
                call.duration.as_millis(),
                call.outcome
            );
        }
    }

    // Asking again for the same run id returns the stored run's receipt: nothing is booked twice
    // (after a crash, the same call would continue from the last completed step, and a step
    // that ran again would send the airline the same idempotency keys).
    let again = trip::Workflow::run_or_resume(&ctx, request("LHR", "JFK", "2025-06-01", 2)).await?;
    println!(
        "same run id again: {} (not booked a second time)",
        again.pnr
    );
    drop(store);
    std::fs::remove_dir_all(&dir)?;

    // 2. The same workflow, one step at a time. Each method consumes the `Flow` and returns it
    //    at the next step, so steps cannot be skipped or run out of order: that would not
    //    compile. Between steps, `input()` shows what the next step will receive.
    println!();
    println!("== typestate: one step at a time");
    let ctx = Ctx::builder(()).tools(tools.clone()).build();
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
    // A run of its own, so a context of its own.
    let ctx = Ctx::builder(()).tools(tools).build();
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
