//! Command-line arguments, raw: `commands` turns them into checked runtime types.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use sandbox_gates::report::{Format, ReportError};

#[derive(Debug, Parser)]
#[command(
    name = "sandbox",
    version,
    about = "Run untrusted jobs isolated, then gate what they left"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one command in a sandbox and report its Outcome.
    Exec(Box<ExecArgs>),
    /// List or show profiles.
    #[command(subcommand)]
    Profile(ProfileCommand),
    /// Show what isolation this host can enforce and which built-in profiles run here.
    Doctor {
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        output: OutputFormat,
    },
    /// Print a JSON Schema (also in schemas/NAME.schema.json): the Outcome (the default), the
    /// Verdict, a profile file, sandbox.toml, or one line of --events.
    Schema {
        #[arg(value_enum, default_value_t = SchemaName::Outcome)]
        name: SchemaName,
    },
    /// Build or list the images the docker backend runs (built locally; no registry needed).
    #[command(subcommand)]
    Image(ImageCommand),
    /// Remove what a crashed `sandbox` left behind: containers whose `sandbox` process is gone.
    Gc {
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        output: OutputFormat,
    },
    /// Check or show the hash-chained audit log every `sandbox exec` appends to.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Run the project's quality gates (sandbox.toml, or detected) and print one Verdict.
    Gate(Box<GateArgs>),
    /// Run a job in a scratch workspace, then the gates on what it left; write its changes
    /// back only if both passed. One Verdict, with the job's Outcome inside.
    Check(Box<CheckArgs>),
    /// Write a commented sandbox.toml with the gates detected for this project.
    Init {
        /// The project (default: the current directory).
        #[arg(long, short = 'w')]
        workspace: Option<PathBuf>,
        /// Replace an existing sandbox.toml.
        #[arg(long)]
        force: bool,
    },
    /// Install or remove the git pre-commit hook that runs `sandbox gate --staged`.
    #[command(subcommand)]
    Hook(HookCommand),
    /// Print a completion script for SHELL to stdout.
    Completions { shell: clap_complete::Shell },
    /// Print the manual page (roff) to stdout.
    Man,
    /// Runs a built-in gate inside a gate job (used by `sandbox gate`).
    #[command(hide = true)]
    GateBuiltin { name: String, options: PathBuf },
    /// Prints the changes since BASE as JSON, inside a gate job (used by `--changed-since`).
    #[command(hide = true)]
    GateChanges { base: String },
    /// Inside a container: forwards 127.0.0.1:PORT to the egress proxy's SOCKET (an unprivileged
    /// caller's allowlist job on docker).
    #[command(hide = true, name = "egress-forward")]
    EgressForward { port: u16, socket: PathBuf },
}

/// Which gates run, and how: shared by `gate` and `check`.
#[derive(Debug, Args)]
pub struct GateSelection {
    /// The gates file (default: WORKSPACE/sandbox.toml; without one, gates are detected).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Run only this gate (repeatable).
    #[arg(long, value_name = "NAME")]
    pub only: Vec<String>,
    /// Do not run this gate (repeatable).
    #[arg(long, value_name = "NAME")]
    pub skip: Vec<String>,
    /// Run every gate even when the cache has its result.
    #[arg(long)]
    pub no_cache: bool,
    /// Gates run at once (default: the number of cores).
    #[arg(long)]
    pub jobs: Option<usize>,
}

/// How the Verdict is printed, and which report files are written: shared by `gate` and
/// `check`.
#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    /// What to print: json, sarif, junit, github, markdown, html or text (default: text on a
    /// terminal, else json). `github` prints workflow annotations and appends a Markdown
    /// summary to $GITHUB_STEP_SUMMARY when that is set.
    #[arg(long, value_name = "FORMAT", value_parser = parse_format)]
    pub format: Option<Format>,
    /// Also write the Verdict as FORMAT to PATH (repeatable): --report sarif=gates.sarif
    /// --report html=gates.html. Each file is replaced whole, never left half-written.
    #[arg(long = "report", value_name = "FORMAT=PATH", value_parser = parse_report)]
    pub reports: Vec<ReportFile>,
}

#[derive(Debug, Clone)]
pub struct ReportFile {
    pub format: Format,
    pub path: PathBuf,
}

fn parse_format(name: &str) -> Result<Format, String> {
    name.parse().map_err(|error: ReportError| error.to_string())
}

fn parse_report(value: &str) -> Result<ReportFile, String> {
    let (format, path) = value
        .split_once('=')
        .ok_or_else(|| format!("`{value}` is not FORMAT=PATH (e.g. sarif=gates.sarif)"))?;
    if path.is_empty() {
        return Err(format!("`{value}` names no file after `=`"));
    }
    Ok(ReportFile {
        format: parse_format(format)?,
        path: PathBuf::from(path),
    })
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Also write the proof of this change into DIR (new or empty): the patch, the Outcome,
    /// the Verdict, a Markdown summary, the audit record, and manifest.json with their hashes.
    #[arg(long, value_name = "DIR")]
    pub bundle: Option<PathBuf>,
    /// The author's rationale, copied into the bundle as note.md.
    #[arg(long, value_name = "FILE", requires = "bundle")]
    pub note: Option<PathBuf>,
    #[command(flatten)]
    pub gates: GateSelection,
    #[command(flatten)]
    pub report: ReportArgs,
    #[command(flatten)]
    pub exec: ExecArgs,
}

#[derive(Debug, Args)]
pub struct GateArgs {
    /// The project (default: the current directory).
    #[arg(long, short = 'w')]
    pub workspace: Option<PathBuf>,
    #[command(flatten)]
    pub gates: GateSelection,
    /// Keep only findings on lines changed since this git revision; the policy gate judges
    /// these changes.
    #[arg(long, value_name = "REF")]
    pub changed_since: Option<String>,
    /// Run on exactly what is staged in git (the index), not the working tree.
    #[arg(long)]
    pub staged: bool,
    /// Run each gate's fix command in a scratch workspace first; keep a fix only if the gate
    /// then passes.
    #[arg(long, conflicts_with = "staged")]
    pub fix: bool,
    #[arg(long, value_enum)]
    pub backend: Option<BackendArg>,
    /// A secret whose value must not reach the Verdict or a report, should a finding quote it
    /// (repeatable): from our own variable NAME, or from `env:VAR` or `file:PATH`. The gates'
    /// jobs do not get it.
    #[arg(long = "secret", value_name = "NAME[=env:VAR|file:PATH]")]
    pub secret: Vec<String>,
    #[command(flatten)]
    pub report: ReportArgs,
    /// The older spelling of `--format text|json`.
    #[arg(long, value_enum)]
    pub output: Option<OutputFormat>,
    /// Also write the Verdict (JSON) to this file.
    #[arg(long)]
    pub result: Option<PathBuf>,
    /// The audit log the gate jobs append to.
    #[arg(long)]
    pub audit: Option<PathBuf>,
    /// Report progress on stderr as JSON lines (gate_started, gate_finished, verdict; see
    /// `sandbox schema events`) instead of the progress display a terminal gets.
    #[arg(long)]
    pub events: bool,
    #[command(flatten)]
    pub trust: TrustArgs,
}

#[derive(Debug, Subcommand)]
pub enum HookCommand {
    /// Write a pre-commit hook that runs `sandbox gate --staged` (where core.hooksPath says,
    /// else in the repository's hooks directory).
    Install {
        /// Replace a pre-commit hook that sandbox did not write.
        #[arg(long)]
        force: bool,
        /// The repository (default: the current directory).
        #[arg(long, short = 'w')]
        workspace: Option<PathBuf>,
    },
    /// Remove the pre-commit hook `sandbox hook install` wrote; any other hook is left alone.
    Uninstall {
        /// The repository (default: the current directory).
        #[arg(long, short = 'w')]
        workspace: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SchemaName {
    Outcome,
    Verdict,
    Profile,
    SandboxToml,
    Events,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain: exit 0 when intact, 1 naming the first edited, removed,
    /// reordered or unparseable line, 125 when the log cannot be read.
    Verify {
        /// The log (default: the one `sandbox exec` writes).
        path: Option<PathBuf>,
        /// A head hash printed by an earlier verify and kept elsewhere: the log must still
        /// contain it, which catches a cut-off tail or a rewritten log.
        #[arg(long, value_name = "HASH")]
        anchor: Option<String>,
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        output: OutputFormat,
    },
    /// Print every record, one job each (does not check the chain: see `verify`).
    Show {
        /// The log (default: the one `sandbox exec` writes).
        path: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        output: OutputFormat,
    },
}

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Build a root filesystem as a tarball and import it into the Docker engine.
    Build {
        /// `host`: the host's /etc without secrets, with the host's /usr bound read-only at
        /// run time (seconds to build); `busybox`: a static busybox only; or a directory
        /// holding a root filesystem with /bin/sh (write ./host for a directory named host).
        #[arg(long, default_value = "host", value_name = "host|busybox|DIR")]
        from: String,
        /// The image's name (default sandbox/host:latest, sandbox/busybox:latest or
        /// sandbox/dir:latest).
        #[arg(long, short = 't')]
        tag: Option<String>,
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        output: OutputFormat,
    },
    /// List the images sandbox built.
    List {
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        output: OutputFormat,
    },
}

/// How far the project's own configuration is trusted (DESIGN §12): shared by exec, gate and
/// check.
#[derive(Debug, Clone, Default, Args)]
pub struct TrustArgs {
    /// Let this project's own configuration (.sandbox/profiles, sandbox.toml) widen its
    /// sandbox, as git's safe.directory does for a repository: only for projects you trust.
    #[arg(long)]
    pub trust_project: bool,
    /// Let a job change protected paths matching GLOB after all (repeatable), e.g.
    /// '.github/workflows/**'. Changes inside .git are never written back.
    #[arg(long, value_name = "GLOB")]
    pub allow_protected: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// A built-in profile, a name looked up in the project's .sandbox/profiles (which may only
    /// narrow the operator's profile of that name), ~/.config/sandbox/profiles,
    /// /etc/sandbox/profiles, or a path to a TOML file.
    #[arg(long, short = 'p', default_value = sandbox_runtime::profile::DEFAULT_PROFILE)]
    pub profile: String,
    #[command(flatten)]
    pub trust: TrustArgs,
    #[arg(long, value_enum)]
    pub backend: Option<BackendArg>,
    /// The directory the job works in (default: the current directory).
    #[arg(long, short = 'w')]
    pub workspace: Option<PathBuf>,
    #[arg(long, value_enum)]
    pub workspace_mode: Option<WorkspaceModeArg>,
    /// Wall-time limit, e.g. 90s or 10m (exit 124 when reached).
    #[arg(long)]
    pub timeout: Option<String>,
    /// Memory limit, e.g. 512M or 2G.
    #[arg(long)]
    pub memory: Option<String>,
    /// CPU quota in cores, e.g. 0.5.
    #[arg(long)]
    pub cpus: Option<f64>,
    /// Most processes and threads the job may have at once.
    #[arg(long)]
    pub pids: Option<u64>,
    /// `none` (loopback only), `allowlist` (only the --allow hosts, through sandbox's proxy) or
    /// `host`.
    #[arg(long, value_enum)]
    pub network: Option<NetworkArg>,
    /// Let the job reach HOST:PORT through the egress proxy (repeatable): `api.example.com:443`,
    /// `*.example.com:443`, `host:*`, `10.0.0.0/8:5432`, `[::1]:8080`.
    #[arg(long = "allow", value_name = "HOST:PORT")]
    pub allow: Vec<String>,
    /// Set a variable in the job: --env NAME=VALUE (repeatable).
    #[arg(long = "env", short = 'e', value_name = "NAME=VALUE")]
    pub env: Vec<String>,
    /// Give the job a secret as the variable NAME (repeatable): its value comes from our own
    /// variable NAME, or from `env:VAR` or `file:PATH`. Never in argv, redacted from output.
    #[arg(long = "secret", value_name = "NAME[=env:VAR|file:PATH]")]
    pub secret: Vec<String>,
    /// When a scratch workspace is written back: `always`, `on-success` or `never`.
    #[arg(long, value_enum)]
    pub commit: Option<CommitArg>,
    /// Write a scratch job's change set to this file as a git-style patch.
    #[arg(long, value_name = "PATH")]
    pub diff: Option<PathBuf>,
    /// Bind a host path into the job read-write: --bind SRC:DEST (repeatable).
    #[arg(long = "bind", value_name = "SRC:DEST")]
    pub bind: Vec<String>,
    /// Bind a host path into the job read-only: --ro-bind SRC:DEST (repeatable).
    #[arg(long = "ro-bind", value_name = "SRC:DEST")]
    pub ro_bind: Vec<String>,
    /// `text` (the default) streams the job's output live; `json` captures it and prints the
    /// Outcome. For `check`, the older spelling of `--format text|json`.
    #[arg(long, value_enum)]
    pub output: Option<OutputFormat>,
    /// Also write the Outcome (JSON) to this file.
    #[arg(long)]
    pub result: Option<PathBuf>,
    /// Append the job's audit record to this log instead of
    /// `$XDG_STATE_HOME/sandbox/audit.jsonl` (else `~/.local/state/sandbox/audit.jsonl`).
    #[arg(long, value_name = "PATH")]
    pub audit: Option<PathBuf>,
    /// Report what happens on stderr as JSON lines (job_started, output_truncated,
    /// network_decision, job_finished, and for check the gates' and the verdict; see `sandbox
    /// schema events`). With --output json the job's own stderr is not mixed in.
    #[arg(long)]
    pub events: bool,
    /// The command and its arguments.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum ProfileCommand {
    /// List the profiles that can be named, with where each comes from.
    List,
    /// Print a profile with `extends` resolved.
    Show {
        name: String,
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        output: OutputFormat,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum BackendArg {
    Native,
    Auto,
    Docker,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum NetworkArg {
    None,
    Allowlist,
    Host,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum CommitArg {
    Always,
    OnSuccess,
    Never,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum WorkspaceModeArg {
    Ro,
    Rw,
    Scratch,
}

/// `sandbox exec` answers a usage error like any other failure of the sandbox itself (125, as
/// `docker run` does), so that a caller can tell it from the job's own exit codes; the other
/// subcommands use 2.
pub fn usage_exit_code(error: &clap::Error) -> u8 {
    use clap::error::ErrorKind;
    match error.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => 0,
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => 2,
        _ if std::env::args().nth(1).as_deref() == Some("exec") => 125,
        _ => 2,
    }
}
