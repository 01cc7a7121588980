//! `flow`: see and steer the runs in a flow store — list them, show one (steps, attempts,
//! durations, calls, tokens, pending wait), cancel, pause or resume it, send it an event,
//! print a workflow's graph, prune finished runs.
//!
//! `flow serve` (module `serve`) keeps the store open and serves a web run viewer.
//!
//! `main` only parses the command line, opens the store and hands both to `commands`; each
//! command is a module there, generic over the store contract. Output (tables, colour, JSON)
//! is in `output` and `view`.

mod cli;
mod commands;
mod db;
mod error;
mod output;
mod price;
mod serve;
mod view;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let out = output::Output { json: cli.json };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return fail(&error::CliError::Output(e)),
    };
    let result = runtime.block_on(async {
        match db::open(cli.db.as_deref()).await? {
            db::Db::Sqlite(store) => match cli.command {
                cli::TopCommand::Once(command) => commands::run(&store, command, out).await,
                cli::TopCommand::Serve(args) => serve::serve(store, args).await,
            },
            db::Db::Postgres(store) => match cli.command {
                cli::TopCommand::Once(command) => commands::run(&store, command, out).await,
                cli::TopCommand::Serve(args) => serve::serve(store, args).await,
            },
        }
    });
    match result {
        Ok(()) => ExitCode::from(error::exit::OK),
        Err(e) => fail(&e),
    }
}

/// Prints the error on stderr and gives its exit code.
fn fail(error: &error::CliError) -> ExitCode {
    let style = anstyle::Style::new()
        .bold()
        .fg_color(Some(anstyle::AnsiColor::Red.into()));
    let mut err = anstream::stderr().lock();
    let _ = std::io::Write::write_fmt(&mut err, format_args!("{style}error:{style:#} {error}\n"));
    ExitCode::from(error.exit_code())
}
