//! `vupdate`: one program, one subcommand per part of the system.
//!
//! `main` stays thin, as in ripgrep: parse the arguments, run, print the error once with its
//! whole context chain, and map it to an exit code (0 success, 2 invalid input, 1 anything
//! else). Each subcommand lives in its own module and validates its raw arguments into typed
//! values before it touches anything.

mod args;
mod author;
mod builder_cmd;
mod distribution_cmd;
mod exit;
mod state_cmd;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = args::Args::parse();
    // A server says what it does; a one-shot command speaks only when something is wrong.
    let server = matches!(args.command, args::Command::Distribution(_));
    init_tracing(args.verbose, server);
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            exit::code_for(&error)
        }
    }
}

fn run(args: args::Args) -> anyhow::Result<()> {
    match args.command {
        args::Command::State(command) => state_cmd::run(command),
        args::Command::Distribution(command) => distribution_cmd::run(command),
        args::Command::Builder(command) => builder_cmd::run(command),
    }
}

fn init_tracing(verbose: u8, server: bool) {
    let default = match (verbose, server) {
        (0, false) => "warn",
        (0, true) | (1, _) => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("VUPDATE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}
