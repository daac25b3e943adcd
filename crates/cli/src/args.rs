//! The command line as clap reads it; each subcommand turns these raw values into typed ones.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// GitOps for plain Linux VMs: a Git state repo says what runs, vupdate makes it so.
#[derive(Debug, Parser)]
#[command(name = "vupdate", version, propagate_version = true)]
pub struct Args {
    /// More log output on stderr (-v info, -vv debug); VUPDATE_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The parts of vupdate.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read, check and change the Git state repo.
    #[command(subcommand)]
    State(StateCommand),
    /// Run the distribution server.
    #[command(subcommand)]
    Distribution(DistributionCommand),
}

/// `vupdate distribution ...`
#[derive(Debug, Subcommand)]
pub enum DistributionCommand {
    /// Serve: the GraphQL API, images, the state watcher and the reconcile loop.
    Run {
        /// The configuration file (see examples/distribution.yaml).
        #[arg(long, short, default_value = "distribution.yaml", value_name = "FILE")]
        config: PathBuf,
    },
}

/// Which state repository and branch a command works on.
#[derive(Debug, clap::Args)]
pub struct RepoArgs {
    /// The state repository (a clone with a work tree, or a bare repository).
    #[arg(long, default_value = ".", value_name = "PATH")]
    pub repo: PathBuf,
    /// The branch that holds the desired state [default: the branch checked out, else main].
    #[arg(long)]
    pub branch: Option<String>,
}

/// How an edit is recorded and shared.
#[derive(Debug, clap::Args)]
pub struct EditArgs {
    /// Push the new commit to this remote (compare-and-swap: refused if the remote moved).
    #[arg(long, value_name = "REMOTE")]
    pub push: Option<String>,
    /// Author of the commit, `Name <email>` [default: GIT_AUTHOR_NAME/EMAIL, else git config].
    #[arg(long)]
    pub author: Option<String>,
    /// Refuse the edit unless the branch is at this revision (what you reviewed).
    #[arg(long, value_name = "REV")]
    pub expect: Option<String>,
}

/// `vupdate state ...`
#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// Check a state repo's files (a work tree on disk, committed or not); exit 2 if invalid.
    Validate {
        /// The state repo's directory.
        #[arg(default_value = ".")]
        path: PathBuf,
    },
    /// Print the desired versions and profiles at a revision.
    Show {
        #[command(flatten)]
        repo: RepoArgs,
        /// Any revision git understands: a commit id, a branch, HEAD~2 [default: the branch].
        #[arg(long)]
        rev: Option<String>,
        /// What to print.
        #[arg(long, value_enum, default_value_t = ShowFormat::Text)]
        format: ShowFormat,
    },
    /// List the revisions that changed the desired versions, newest first.
    History {
        #[command(flatten)]
        repo: RepoArgs,
        /// How many revisions at most.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Compare the desired versions of two revisions, per service.
    Diff {
        #[command(flatten)]
        repo: RepoArgs,
        /// The older revision.
        from: String,
        /// The newer revision [default: the branch].
        to: Option<String>,
    },
    /// Set desired versions as one commit: SERVICE=VERSION sets, SERVICE= removes.
    SetDesired {
        #[command(flatten)]
        repo: RepoArgs,
        #[command(flatten)]
        edit: EditArgs,
        /// Change the desired client versions instead of the developer versions.
        #[arg(long)]
        client: bool,
        /// The commit message.
        #[arg(short, long)]
        message: String,
        /// The changes, e.g. `api=jetto-1.4.3 old-worker=`.
        #[arg(required = true, value_name = "SERVICE=VERSION")]
        changes: Vec<String>,
    },
    /// Undo a revision with a new commit.
    Revert {
        #[command(flatten)]
        repo: RepoArgs,
        #[command(flatten)]
        edit: EditArgs,
        /// The revision to undo.
        rev: String,
        /// The commit message [default: Revert "<subject>"].
        #[arg(short, long)]
        message: Option<String>,
    },
}

/// Output of `state show`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ShowFormat {
    /// Readable tables.
    Text,
    /// Only the declared service names, one a line (for scripts).
    Names,
}
