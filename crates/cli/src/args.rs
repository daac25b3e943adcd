//! The command line as clap reads it; each subcommand turns these raw values into typed ones.

use std::path::PathBuf;

#[cfg(feature = "state")]
use clap::ValueEnum;
use clap::{Parser, Subcommand};

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

/// The parts of vupdate (each a cargo feature of this program).
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read, check and change the Git state repo.
    #[cfg(feature = "state")]
    #[command(subcommand)]
    State(StateCommand),
    /// Where the fleet stands: per service the desired version, builds, instances on it,
    /// rollouts, known-bad versions and hosts not on the state commit; --wait waits
    /// until everything runs it (for a deploy pipeline after a merge).
    #[cfg(feature = "state")]
    Status(StatusArgs),
    /// Run the distribution server.
    #[cfg(feature = "distribution")]
    #[command(subcommand)]
    Distribution(DistributionCommand),
    /// Build version images and hand them to a distribution (what its build tasks run).
    #[cfg(feature = "builder")]
    #[command(subcommand)]
    Builder(BuilderCommand),
    /// Run the agent of a VM: install, run and watch its services as the distribution says.
    #[cfg(feature = "updater")]
    #[command(subcommand)]
    Updater(UpdaterCommand),
}

/// `vupdate status`: where the fleet stands against the state repo.
#[cfg(feature = "state")]
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The distribution to ask, e.g. `https://dist.example.com`.
    #[arg(long, value_name = "URL")]
    pub distribution: String,
    #[command(flatten)]
    pub access: AccessArgs,
    /// Wait until every service is synced and every reporting host is on the commit (exit
    /// 0); exit 3 when --timeout passes first, 4 as soon as it cannot happen without a
    /// new commit (a build failed, a version is known-bad, a rollout halted).
    #[arg(long)]
    pub wait: bool,
    /// With --wait, the state commit (full or abbreviated) hosts must be on, e.g. the
    /// merge commit of a pull request [default: the commit in force at each look].
    #[arg(long, value_name = "REV", requires = "wait")]
    pub commit: Option<String>,
    /// With --wait, how long to wait, e.g. `90s`, `10m`.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration, requires = "wait")]
    pub timeout: std::time::Duration,
    /// How to print where it stands.
    #[arg(long, value_enum, default_value_t = StatusFormat::Text)]
    pub format: StatusFormat,
}

/// Output of `vupdate status`.
#[cfg(feature = "state")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatusFormat {
    /// Readable text.
    Text,
    /// The distribution's `status` answer as JSON, for programs.
    Json,
}

/// `vupdate updater ...`
#[cfg(feature = "updater")]
#[derive(Debug, Subcommand)]
pub enum UpdaterCommand {
    /// Follow the distribution's desired client versions for this VM's services: install
    /// them crash-safely, run and supervise them, ship their logs, states and fault
    /// reports, and update the updater itself; stops the services on SIGTERM or Ctrl-C.
    Run {
        /// The configuration file (see examples/updater.yaml).
        #[arg(long, short, default_value = "updater.yaml", value_name = "FILE")]
        config: PathBuf,
        /// The services to run, comma-separated, each `name` or `name-role` (the text
        /// after the last `-` is a role when the whole text is not a service the
        /// distribution knows) [default: the config's `services`].
        #[arg(long, value_name = "LIST")]
        services: Option<String>,
    },
    /// Print the systemd unit that runs the updater (see `install` to write it).
    SystemdUnit {
        #[command(flatten)]
        unit: UnitArgs,
        /// The services' work directory (the config's `workDirectory`).
        #[arg(long, value_name = "DIR", default_value = "/var/lib/vupdate")]
        work_dir: PathBuf,
    },
    /// Install this program as the machine's updater (what the distribution's one-line
    /// install script runs after checking the download): enrol with the enrolment token
    /// from VUPDATE_ENROLMENT_TOKEN, make the system user, write /etc/vupdate/updater.yaml,
    /// the access token (0600) and the systemd unit, then start it. Running it again
    /// changes nothing; a failure leaves nothing half-installed.
    Install {
        /// The distribution, e.g. `https://dist.example.com`.
        #[arg(long, value_name = "URL")]
        distribution_url: String,
        /// The services to run, comma-separated, `name` or `name-role` [default: every
        /// service the enrolment token allows].
        #[arg(long, value_name = "LIST")]
        services: Option<String>,
        /// This machine's instance name [default: the host name].
        #[arg(long, value_name = "NAME")]
        instance: Option<String>,
        /// Write everything under this directory instead of `/` (an image being built, a
        /// test); no user is made and nothing is started.
        #[arg(long, value_name = "DIR", default_value = "/")]
        root: PathBuf,
        /// The system user the updater and its services run as (made when missing).
        #[arg(long, default_value = "vupdate")]
        user: String,
        /// The services' work directory.
        #[arg(long, value_name = "DIR", default_value = "/var/lib/vupdate")]
        work_dir: PathBuf,
        /// A PEM file of the distribution's certificate (when it is self-signed); copied
        /// to /etc/vupdate/distribution.pem and named by the config's `caFile`.
        #[arg(long, value_name = "FILE")]
        ca_file: Option<PathBuf>,
        /// Trust exactly the distribution presenting this public key, `sha256//BASE64`
        /// (a self-signed distribution's pin, which the install line passes); written to
        /// the config's `pinnedPublicKey`.
        #[arg(long, value_name = "PIN", conflicts_with = "ca_file")]
        pinned_public_key: Option<vupdate_client::PublicKeyPin>,
        /// Where this program is installed.
        #[arg(long, value_name = "PATH", default_value = "/usr/local/bin/vupdate")]
        binary: PathBuf,
        /// Write the files but do not start the unit (a machine without systemd).
        #[arg(long)]
        no_start: bool,
    },
    /// Stop and remove the updater's unit and program; keeps its config, token and the
    /// services' files unless --purge.
    Uninstall {
        /// The directory the installation was written under.
        #[arg(long, value_name = "DIR", default_value = "/")]
        root: PathBuf,
        /// Also remove /etc/vupdate, the work directory and the system user.
        #[arg(long)]
        purge: bool,
        /// The system user.
        #[arg(long, default_value = "vupdate")]
        user: String,
        /// The services' work directory.
        #[arg(long, value_name = "DIR", default_value = "/var/lib/vupdate")]
        work_dir: PathBuf,
        /// Where the program was installed.
        #[arg(long, value_name = "PATH", default_value = "/usr/local/bin/vupdate")]
        binary: PathBuf,
    },
    /// Print cloud-init user-data (#cloud-config) that installs the updater on first boot.
    CloudInit {
        /// The distribution, e.g. `https://dist.example.com`.
        #[arg(long, value_name = "URL")]
        distribution_url: String,
        /// An enrolment token (mutation issueEnrolmentToken); give it `uses` for as many
        /// VMs as will boot with this user-data.
        #[arg(long)]
        token: String,
        /// The services, comma-separated [default: the token's].
        #[arg(long, value_name = "LIST")]
        services: Option<String>,
        /// The instance name [default: each VM's host name].
        #[arg(long, value_name = "NAME")]
        instance: Option<String>,
        /// The pin of a self-signed distribution's key, `sha256//BASE64` (its `status`
        /// shows it): every download and the updater trust exactly that key.
        #[arg(long, value_name = "PIN")]
        pinned_public_key: Option<vupdate_client::PublicKeyPin>,
    },
}

/// What a systemd unit runs, and as whom.
#[cfg(any(feature = "updater", feature = "distribution"))]
#[derive(Debug, clap::Args)]
pub struct UnitArgs {
    /// The installed program [default: /usr/local/bin/vupdate for the updater,
    /// DATA_DIR/bin/vupdate for the distribution, whose self-update replaces it there].
    #[arg(long, value_name = "PATH")]
    pub binary: Option<PathBuf>,
    /// The configuration file [default: /etc/vupdate/updater.yaml for the updater,
    /// /etc/vupdate/distribution.yaml for the distribution].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The system user (and group) it runs as.
    #[arg(long, default_value = "vupdate")]
    pub user: String,
}

/// `vupdate builder ...`
#[cfg(feature = "builder")]
#[derive(Debug, Subcommand)]
// The variants name the commands (`build-developer-version`, ...), as the original's.
#[allow(clippy::enum_variant_names)]
pub enum BuilderCommand {
    /// Build a developer version from the service's sources, upload it and record it.
    BuildDeveloperVersion {
        /// The service.
        service: String,
        /// The version to build, e.g. `acme-1.2.3`.
        #[arg(value_name = "VERSION")]
        developer_version: String,
        #[command(flatten)]
        build: BuildArgs,
    },
    /// Build a client version from a developer image and the client settings, upload it
    /// and record it.
    BuildClientVersion {
        /// The service.
        service: String,
        /// The developer version it is made from, e.g. `acme-1.2.3`.
        dev_version: String,
        /// The client version to make, e.g. `acme-1.2.3_1`.
        client_version: String,
        #[command(flatten)]
        build: BuildArgs,
    },
    /// Build a client image of a developer version from the client settings at the commit
    /// and keep it as the next generation `_N+1` only when its content is new.
    BuildClientGeneration {
        /// The service.
        service: String,
        /// The developer version it is made from, e.g. `acme-1.2.3`.
        dev_version: String,
        #[command(flatten)]
        build: BuildArgs,
    },
}

/// Where a build's settings come from and where its results go. The access token is read
/// from the environment variable VUPDATE_ACCESS_TOKEN, never from the command line.
#[cfg(feature = "builder")]
#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    /// The distribution to download from and upload to, e.g. `http://127.0.0.1:8000`.
    #[arg(long, value_name = "URL")]
    pub distribution: String,
    /// A PEM file of extra trusted certificates (e.g. the distribution's self-signed one).
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Trust exactly the distribution presenting this public key, `sha256//BASE64` (what
    /// a distribution prints at start), instead of certificate authorities.
    #[arg(long, value_name = "PIN", conflicts_with = "ca_file")]
    pub pinned_public_key: Option<vupdate_client::PublicKeyPin>,
    /// The state repository the build settings are read from [default: the
    /// distribution's API at --commit, as a remote builder reads them].
    #[arg(long, value_name = "PATH")]
    pub state_repo: Option<PathBuf>,
    /// The state commit whose settings are used (the one that asked for the build)
    /// [default: the branch tip; required without --state-repo].
    #[arg(long, value_name = "COMMIT")]
    pub commit: Option<String>,
    /// The branch of the state repository [default: the branch checked out, else main].
    #[arg(long)]
    pub branch: Option<String>,
    /// The build task whose log gets the build's output.
    #[arg(long, value_name = "ID")]
    pub task: Option<String>,
    /// The builder's work directory (clones, builds, images).
    #[arg(long, value_name = "PATH", default_value = "builder")]
    pub work_dir: PathBuf,
    /// Who asked for the build, for the version record [default: the commit's author].
    #[arg(long)]
    pub author: Option<String>,
    /// Why, for the version record [default: the commit's summary].
    #[arg(long)]
    pub comment: Option<String>,
    /// The instance (host) named in the build's log lines [default: the host name].
    #[arg(long)]
    pub instance: Option<String>,
}

/// `vupdate distribution ...`
#[cfg(feature = "distribution")]
#[derive(Debug, Subcommand)]
pub enum DistributionCommand {
    /// Serve: the GraphQL API, images, the state watcher and the reconcile loop; replaces
    /// its own program when the state's desired `distribution` version changes
    /// (self-update: probe, swap, re-exec in the same process, rollback).
    Run {
        /// The configuration file (see examples/distribution.yaml).
        #[arg(long, short, default_value = "distribution.yaml", value_name = "FILE")]
        config: PathBuf,
    },
    /// Check that this program can run the distribution of CONFIG here, changing nothing:
    /// the config loads, the store opens read-only with a schema this program can
    /// upgrade; prints `vupdate-distribution-probe version=…` (self-update runs a new
    /// binary this way before swapping it in).
    Probe {
        /// The configuration file.
        #[arg(long, short, default_value = "distribution.yaml", value_name = "FILE")]
        config: PathBuf,
    },
    /// Back up the data of a (running or stopped) distribution into a new directory, or
    /// one new file when --to ends in `.zip`: the SQLite store (online backup), images,
    /// fault reports, private files, the JWT key, enrolment tokens, secrets and a
    /// self-signed TLS key; not the state repo's history.
    Backup {
        /// The server's configuration file.
        #[arg(long, short, default_value = "distribution.yaml", value_name = "FILE")]
        config: PathBuf,
        /// The new directory to write the backup to, or the new file (`FILE.zip`).
        #[arg(long, value_name = "DIR|FILE.zip")]
        to: PathBuf,
    },
    /// Restore a backup as the data of the distribution the config describes; refuses a
    /// data directory a server runs on or that holds anything.
    Restore {
        /// The configuration file of the server to restore.
        #[arg(long, short, default_value = "distribution.yaml", value_name = "FILE")]
        config: PathBuf,
        /// The backup directory, or file, `backup` made.
        #[arg(long, value_name = "DIR|FILE.zip")]
        from: PathBuf,
    },
    /// Install this program as the machine's distribution server: the system user, the
    /// data directory, a config written from these flags (TLS with a self-signed
    /// certificate unless --tls-certificate or --no-tls; its key and the pin printed), the
    /// systemd unit, enabled and started. Running it again changes nothing; a failure
    /// leaves nothing half-installed.
    Install(Box<DistributionInstallArgs>),
    /// Print the systemd unit that runs the distribution.
    SystemdUnit {
        #[command(flatten)]
        unit: UnitArgs,
        /// The data directory (the config's `dataDirectory`).
        #[arg(
            long,
            value_name = "DIR",
            default_value = "/var/lib/vupdate-distribution"
        )]
        data_dir: PathBuf,
    },
    /// Manage the named secrets of a distribution (a provider's access token), kept sealed
    /// in its store under a key derived from its JWT key; works whether the server runs or
    /// not, and running servers (every replica on the store) use a new value within 2 s.
    #[command(subcommand)]
    Secret(SecretCommand),
}

/// `vupdate distribution install`: the flags its config and files are made from.
#[cfg(feature = "distribution")]
#[derive(Debug, clap::Args)]
pub struct DistributionInstallArgs {
    /// The distribution's name (letters, digits, `.`, `_`, `-`).
    #[arg(long)]
    pub name: String,
    /// The state repo: a Git URL (or a path on this machine) the server clones.
    #[arg(long, value_name = "URL")]
    pub state_repo: String,
    /// The branch followed.
    #[arg(long, default_value = "main")]
    pub branch: String,
    /// The address to listen on; VMs reach a server on 0.0.0.0:PORT.
    #[arg(long, value_name = "ADDRESS", default_value = "127.0.0.1:8000")]
    pub listen: std::net::SocketAddr,
    /// This machine's instance name [default: the host name].
    #[arg(long, value_name = "NAME")]
    pub instance: Option<String>,
    /// The data directory (store, images, keys, the state clone).
    #[arg(
        long,
        value_name = "DIR",
        default_value = "/var/lib/vupdate-distribution"
    )]
    pub data_dir: PathBuf,
    /// A name the self-signed certificate holds (host name or IP address), repeatable
    /// [default: the instance].
    #[arg(long, value_name = "NAME")]
    pub tls_name: Vec<String>,
    /// A PEM certificate chain to serve instead of a self-signed one (with --tls-key).
    #[arg(long, value_name = "FILE", requires = "tls_key", conflicts_with_all = ["tls_name", "no_tls"])]
    pub tls_certificate: Option<PathBuf>,
    /// The PEM private key of --tls-certificate.
    #[arg(long, value_name = "FILE", requires = "tls_certificate")]
    pub tls_key: Option<PathBuf>,
    /// Plain HTTP (behind a proxy that speaks TLS).
    #[arg(long, conflicts_with = "tls_name")]
    pub no_tls: bool,
    /// Write everything under this directory instead of `/` (an image being built, a
    /// test); no user is made and nothing is started.
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
    /// The system user the server runs as (made when missing).
    #[arg(long, default_value = "vupdate")]
    pub user: String,
    /// Where this program is installed [default: DATA_DIR/bin/vupdate: in the data
    /// directory the server owns, so its self-update can replace it; `/usr` is read-only
    /// to the unit].
    #[arg(long, value_name = "PATH")]
    pub binary: Option<PathBuf>,
    /// Where the config is written.
    #[arg(
        long,
        value_name = "FILE",
        default_value = "/etc/vupdate/distribution.yaml"
    )]
    pub config: PathBuf,
    /// Write the files but do not start the unit (a machine without systemd).
    #[arg(long)]
    pub no_start: bool,
}

/// `vupdate distribution secret ...`
#[cfg(feature = "distribution")]
#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Set secret NAME to the value read from stdin (one trailing newline is dropped), e.g.
    /// `vupdate distribution secret set jetto-token < token.txt`.
    Set {
        /// The secret's name, as `accessTokenSecret` in providers.yaml names it.
        name: String,
        /// The distribution's configuration file (its store holds the secrets).
        #[arg(long, short, default_value = "distribution.yaml", value_name = "FILE")]
        config: PathBuf,
    },
    /// List the secrets' names and when each was set (never their values).
    List {
        /// The distribution's configuration file.
        #[arg(long, short, default_value = "distribution.yaml", value_name = "FILE")]
        config: PathBuf,
    },
    /// Remove secret NAME.
    Remove {
        /// The secret's name.
        name: String,
        /// The distribution's configuration file.
        #[arg(long, short, default_value = "distribution.yaml", value_name = "FILE")]
        config: PathBuf,
    },
}

/// Which state repository and branch a command works on.
#[cfg(feature = "state")]
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
#[cfg(feature = "state")]
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
#[cfg(feature = "state")]
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
    /// What merging HEAD over BASE would do: per service the version changes, images,
    /// instances that would update, consumers, known-bad versions, every validation
    /// problem. Exit 2 when HEAD is invalid, 1 on other errors, 0 otherwise.
    Plan {
        #[command(flatten)]
        repo: RepoArgs,
        /// `BASE..HEAD`, or BASE with HEAD as the next argument [default: HEAD~1..HEAD].
        #[arg(value_name = "BASE..HEAD")]
        range: Option<String>,
        /// HEAD, when the first argument is BASE alone.
        #[arg(value_name = "HEAD")]
        head: Option<String>,
        /// How to print the plan.
        #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
        format: PlanFormat,
        #[command(flatten)]
        live: LiveArgs,
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
        #[allow(rustdoc::invalid_html_tags)] // `<subject>` is --help text, not HTML
        #[arg(short, long)]
        message: Option<String>,
    },
}

/// Where `state plan` reads live facts (images, instances, known-bad versions).
#[cfg(feature = "state")]
#[derive(Debug, clap::Args)]
pub struct LiveArgs {
    /// The distribution to ask, e.g. `https://dist.example.com` [default: the repo alone;
    /// the plan then says what it could not know].
    #[arg(long, value_name = "URL")]
    pub distribution: Option<String>,
    #[command(flatten)]
    pub access: AccessArgs,
}

/// How a command that asks a distribution gets in: its token and the certificates it trusts.
#[cfg(feature = "state")]
#[derive(Debug, clap::Args)]
pub struct AccessArgs {
    /// An access token (Developer or Administrator). Prefer the environment variable or
    /// --token-file: other users of the machine can read a command line.
    #[arg(long, env = "VUPDATE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// A file holding the access token (e.g. one the distribution's `tokenFiles` wrote);
    /// it wins over --token and VUPDATE_TOKEN.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// A PEM file of extra trusted certificates (e.g. the distribution's self-signed one).
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
}

/// Output of `state plan`.
#[cfg(feature = "state")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    /// Readable text.
    Text,
    /// Markdown, to post as a pull request's comment.
    Markdown,
    /// JSON, for programs.
    Json,
}

/// Output of `state show`.
#[cfg(feature = "state")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ShowFormat {
    /// Readable tables.
    Text,
    /// Only the declared service names, one a line (for scripts).
    Names,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    #[test]
    fn the_command_line_is_well_formed() {
        // Clap checks names (e.g. a positional `version` against `--version`) only here.
        super::Args::command().debug_assert();
    }
}
