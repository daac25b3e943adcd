//! `vupdate`: one program, one subcommand per part of the system.
//!
//! `main` stays thin, as in ripgrep: parse the arguments, run, print the error once with its
//! whole context chain, and map it to an exit code (0 success, 2 invalid input, 1 anything
//! else). Each subcommand lives in its own module and validates its raw arguments into typed
//! values before it touches anything. Each is a cargo feature (`state`, `distribution`,
//! `builder`, `updater`; default all), so the updater that ships to every VM can be built
//! alone.

#[cfg(not(any(
    feature = "state",
    feature = "distribution",
    feature = "builder",
    feature = "updater"
)))]
compile_error!("enable at least one of the features `state`, `distribution`, `builder`, `updater`");

#[cfg(feature = "distribution")]
mod allocator;
mod args;
#[cfg(feature = "state")]
mod author;
#[cfg(feature = "builder")]
mod builder_cmd;
#[cfg(feature = "distribution")]
mod distribution_cmd;
mod exit;
#[cfg(any(feature = "updater", feature = "distribution"))]
mod install;
#[cfg(any(feature = "updater", feature = "distribution"))]
mod install_cmd;
#[cfg(feature = "state")]
mod plan_cmd;
#[cfg(feature = "state")]
mod remote;
#[cfg(feature = "distribution")]
mod secret_cmd;
#[cfg(feature = "state")]
mod state_cmd;
#[cfg(feature = "state")]
mod status_cmd;
#[cfg(feature = "updater")]
mod updater_cmd;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = args::Args::parse();
    match run(args.command, args.verbose) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            exit::code_for(&error)
        }
    }
}

fn run(command: args::Command, verbose: u8) -> anyhow::Result<()> {
    // A server says what it does; a one-shot command speaks only when something is wrong.
    match command {
        #[cfg(feature = "state")]
        args::Command::State(command) => {
            init_tracing(verbose, false);
            state_cmd::run(command)
        }
        #[cfg(feature = "state")]
        args::Command::Status(args) => {
            init_tracing(verbose, false);
            status_cmd::run(&args)
        }
        #[cfg(feature = "distribution")]
        args::Command::Distribution(command) => {
            init_tracing(verbose, true);
            distribution_cmd::run(command)
        }
        #[cfg(feature = "builder")]
        args::Command::Builder(command) => {
            init_tracing(verbose, false);
            builder_cmd::run(command)
        }
        #[cfg(feature = "updater")]
        args::Command::Updater(args::UpdaterCommand::Run { config, services }) => {
            // Before any thread: this answers a new binary's probe (and exits), or takes
            // over the services of the updater process this one replaced by `execve`.
            // It comes after argument parsing on purpose: a new binary that cannot read
            // these arguments fails its probe instead of exiting after the `execve`.
            let startup = vupdate_updater::handover::startup();
            init_tracing(verbose, true);
            updater_cmd::run(&config, services, startup)
        }
        #[cfg(feature = "updater")]
        args::Command::Updater(command) => {
            init_tracing(verbose, false);
            install_cmd::updater(command)
        }
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
