//! `vupdate`: one program, one subcommand per part of the system.
//!
//! `main` stays thin, as in ripgrep: parse the arguments, run, print the error once with its
//! whole context chain, and map it to an exit code (0 success, 2 invalid input, 1 anything
//! else). Each subcommand lives in its own module and validates its raw arguments into typed
//! values before it touches anything.

mod args;
mod author;
mod exit;
mod state_cmd;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = args::Args::parse();
    init_tracing(args.verbose);
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
    }
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("VUPDATE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
