//! `sandbox-gates`: quality gates as sandboxed jobs. A gate runs a real tool (or a built-in
//! check) on the workspace, its output is parsed into findings and metrics, and every gate's
//! result collapses into one Verdict.

pub mod baseline;
pub mod builtin;
pub mod bundle;
pub mod cache;
pub mod config;
pub mod config_schema;
pub mod coverage;
pub mod detect;
pub mod events;
pub mod finding;
pub mod fix;
pub mod hook;
pub mod parsers;
pub mod presets;
pub mod redact;
pub mod report;
pub mod runner;
pub mod staged;
pub mod verdict;

pub use finding::{Finding, Severity};
pub use parsers::{ParseError, Parsed, ParserKind, ToolRun};
pub use presets::{GateKind, Preset};
pub use verdict::{GateResult, GateStatus, Verdict, VerdictStatus};
