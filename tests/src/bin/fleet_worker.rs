//! One of the engines `tests/processes/fleet.rs` runs side by side on one store, kills with
//! `SIGKILL`, and pauses with `SIGSTOP`.
//!
//! ```text
//! fleet_worker DB EFFECTS OUTPUTS ORIGIN LEASE_MS STEP_MS CONCURRENCY
//! ```
//!
//! Runs an [`Engine`] with workflow [`relay`] on the store `DB` (an SQLite file's path, or a
//! PostgreSQL database's `postgres://` URL), with
//! leases of `LEASE_MS` milliseconds, at most `CONCURRENCY` runs at once, each step appending to
//! `EFFECTS`, sleeping `STEP_MS` (plus up to 2 ms) and calling [`Mix`] at `ORIGIN`; each run's
//! output goes to the JSON-lines file `OUTPUTS`. It runs until its standard input closes, then
//! shuts down and prints its [`EngineReport`](flow_runtime::state::EngineReport) as one line
//! `finished=N parked=N failed=N stopped=N interrupted=N lost=N`. Exits 1 on an error.

use flow_runtime::output::{FileSink, Outputs};
use flow_runtime::state::{Engine, Setup};
use flow_runtime::store::{PgStore, RunQueue, SqliteStore};
use flow_runtime::tool::{PolicyTool, ToolPolicy, Toolbox};
use flow_tests::fleet::{Effects, relay};
use flow_tests::keyed::Mix;
use std::fs::OpenOptions;
use std::io::Read as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

struct Args {
    db: String,
    effects: String,
    outputs: String,
    origin: String,
    lease: Duration,
    step: Duration,
    concurrency: usize,
}

fn args() -> Result<Args, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [db, effects, outputs, origin, lease, step, concurrency] = args.as_slice() else {
        return Err(
            "usage: fleet_worker DB EFFECTS OUTPUTS ORIGIN LEASE_MS STEP_MS CONCURRENCY".into(),
        );
    };
    let number = |s: &str| s.parse::<u64>().map_err(|e| format!("`{s}`: {e}"));
    Ok(Args {
        db: db.clone(),
        effects: effects.clone(),
        outputs: outputs.clone(),
        origin: origin.clone(),
        lease: Duration::from_millis(number(lease)?),
        step: Duration::from_millis(number(step)?),
        concurrency: usize::try_from(number(concurrency)?).map_err(|e| e.to_string())?,
    })
}

fn main() -> ExitCode {
    let result = args().and_then(|args| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?
            .block_on(work(args))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fleet_worker: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn work(args: Args) -> Result<(), String> {
    if args.db.starts_with("postgres://") {
        let store = PgStore::connect(&args.db)
            .await
            .map_err(|e| e.to_string())?;
        return serve(Arc::new(store), &args).await;
    }
    let store = SqliteStore::open(&args.db).map_err(|e| e.to_string())?;
    serve(Arc::new(store), &args).await
}

async fn serve<S: RunQueue>(store: Arc<S>, args: &Args) -> Result<(), String> {
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&args.effects)
        .map_err(|e| format!("{}: {e}", args.effects))?;
    let mix = Mix::new(&args.origin).map_err(|e| e.to_string())?;
    let setup = Setup::new(Effects::new(log, args.step))
        .tools(Toolbox::new().with(PolicyTool::new(mix, ToolPolicy::default())))
        .outputs(Outputs::new().on_exit(FileSink::jsonl(&args.outputs)));
    let engine = Engine::builder(store)
        .register::<relay::Workflow>(setup)
        .lease(args.lease)
        .concurrency(args.concurrency)
        .poll_interval(Duration::from_millis(20))
        .build();
    // Until standard input closes (the test drops its end, or dies).
    let (closed, stdin_closed) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        let _ = closed.send(());
    });
    let report = engine
        .run_until(async {
            let _ = stdin_closed.await;
        })
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "finished={} parked={} failed={} stopped={} interrupted={} lost={}",
        report.finished,
        report.parked,
        report.failed,
        report.stopped,
        report.interrupted,
        report.lost
    );
    Ok(())
}
