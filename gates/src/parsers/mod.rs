//! Turning a tool's output into findings and metrics. One function per tool format; each is
//! tested against the real tool's real output (see `tests/`). A parser that cannot read what
//! the tool printed says so (`ParseError`): a gate is never passed on output nobody understood.

mod coverage;
mod generic;
mod js;
mod junit;
mod python;
mod rust;
mod sarif;

use std::collections::BTreeMap;
use std::path::Path;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::finding::Finding;

/// Every output format a gate can declare with `parser = "..."`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ParserKind {
    /// `ruff check --output-format json`
    Ruff,
    /// flake8's default text: `path:line:col: CODE message`
    Flake8,
    /// mypy's text output (`path:line:col: error: message  [code]`) or `--output json` lines
    Mypy,
    /// `bandit -f json`
    Bandit,
    /// pytest's `--junitxml` report (tests, failures, errors as metrics; failures as findings)
    Pytest,
    /// any JUnit XML report
    Junit,
    /// coverage.py's `coverage json` (`totals.percent_covered` as `line_percent`)
    CoverageJson,
    Lcov,
    Cobertura,
    /// `cargo clippy --message-format=json` (deduplicated)
    Clippy,
    /// `cargo fmt --check` / `rustfmt --check`
    Rustfmt,
    /// `cargo test` text output
    CargoTest,
    /// `eslint -f json`
    Eslint,
    /// `tsc --noEmit --pretty false`
    Tsc,
    /// semgrep's SARIF (`semgrep --sarif`)
    Semgrep,
    /// any SARIF 2.1.0 log
    Sarif,
    /// lines matched by the gate's `pattern` (named groups: path, line, column, rule, message,
    /// severity)
    Regex,
    /// the exit code alone: 0 passes, anything else is one finding
    ExitCode,
}

/// What a gate's tool left behind, as the runner saw it.
#[derive(Debug, Clone, Copy)]
pub struct ToolRun<'a> {
    /// The tool's exit code; `None` when a signal ended it.
    pub exit_code: Option<i32>,
    pub stdout: &'a str,
    pub stderr: &'a str,
    /// The host directory that was the job's `/out`: reports the tool wrote there.
    pub out_dir: &'a Path,
    /// The workspace on the host, and where the job saw it: paths in findings are made
    /// relative to the workspace whichever of the two a tool printed.
    pub workspace: &'a Path,
    pub mount: &'a Path,
    /// The gate's `pattern`, for the `regex` parser.
    pub pattern: Option<&'a str>,
}

/// What a parser read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Parsed {
    pub findings: Vec<Finding>,
    /// Numbers a gate's `min`/`max` thresholds apply to: `line_percent`, `tests`, `failures`,
    /// `errors`, `skipped`, ...
    pub metrics: BTreeMap<String, f64>,
    /// Coverage reports: each file's lines that ran and did not.
    pub coverage: Vec<crate::coverage::FileCoverage>,
}

#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// The tool itself broke: crashed, refused its arguments, found no input.
    #[error("the tool failed: {0}")]
    ToolFailed(String),
    /// The output is not what this parser reads.
    #[error("{parser} cannot read the tool's output: {why}")]
    Unreadable { parser: &'static str, why: String },
}

/// A run for parser tests: the tool exited 0 with no output, in `workspace` seen at
/// `/workspace`; tests set what they exercise with struct update syntax.
#[cfg(test)]
pub(crate) fn test_run(workspace: &str) -> ToolRun<'_> {
    ToolRun {
        exit_code: Some(0),
        stdout: "",
        stderr: "",
        out_dir: Path::new("/nonexistent/out"),
        workspace: Path::new(workspace),
        mount: Path::new("/workspace"),
        pattern: None,
    }
}

impl ParseError {
    pub fn unreadable(parser: &'static str, why: impl std::fmt::Display) -> ParseError {
        ParseError::Unreadable {
            parser,
            why: why.to_string(),
        }
    }
}

/// Reads `run` with the parser `kind`.
pub fn parse(kind: ParserKind, run: &ToolRun<'_>) -> Result<Parsed, ParseError> {
    match kind {
        ParserKind::Ruff => python::ruff(run),
        ParserKind::Flake8 => python::flake8(run),
        ParserKind::Mypy => python::mypy(run),
        ParserKind::Bandit => python::bandit(run),
        ParserKind::Pytest => junit::pytest(run),
        ParserKind::Junit => junit::junit(run),
        ParserKind::CoverageJson => coverage::coverage_json(run),
        ParserKind::Lcov => coverage::lcov(run),
        ParserKind::Cobertura => coverage::cobertura(run),
        ParserKind::Clippy => rust::clippy(run),
        ParserKind::Rustfmt => rust::rustfmt(run),
        ParserKind::CargoTest => rust::cargo_test(run),
        ParserKind::Eslint => js::eslint(run),
        ParserKind::Tsc => js::tsc(run),
        ParserKind::Semgrep => sarif::semgrep(run),
        ParserKind::Sarif => sarif::sarif(run),
        ParserKind::Regex => generic::regex(run),
        ParserKind::ExitCode => generic::exit_code(run),
    }
}

/// `raw` as a workspace-relative, '/'-separated path, whether the tool printed it relative to
/// its working directory (the workspace), absolute inside the job, or absolute on the host.
pub fn relative_path(run: &ToolRun<'_>, raw: &str) -> String {
    let raw = raw.strip_prefix("file://").unwrap_or(raw);
    let path = Path::new(raw);
    let relative = path
        .strip_prefix(run.mount)
        .or_else(|_| path.strip_prefix(run.workspace))
        .unwrap_or(path);
    let text = relative.to_string_lossy().replace('\\', "/");
    text.trim_start_matches("./").to_owned()
}
