//! Rust and JavaScript tools as gates: clippy, rustfmt, cargo test, eslint, tsc, and semgrep.
//!
//! Gate jobs see the workspace read-only, `/tmp` and `/out` writable, no network, `HOME=/tmp`.
//! So cargo builds into `/tmp/cargo-target` (`--target-dir`, not the workspace's `target/`),
//! runs `--offline --locked` (a missing or stale `Cargo.lock` is reported as such instead of
//! cargo trying to rewrite it or reach the registry), and finds the toolchain on `PATH` and the
//! downloaded dependencies in `CARGO_HOME`, both of which the runner must provide (the host's
//! `~/.cargo` and `~/.rustup` are under the hidden `/root`). semgrep keeps its log, settings and caches under `/tmp`,
//! runs the project's rules only, and sends no metrics.

use super::{GateKind, Preset};
use crate::parsers::ParserKind;

/// Where cargo builds inside a gate job. One place for all three cargo gates: when the runner
/// keeps `/tmp` of consecutive jobs (or binds a cache there), clippy and the tests share builds.
const CARGO_TARGET: &str = "--target-dir=/tmp/cargo-target";

const RUST_INPUTS: &[&str] = &["**/*.rs", "**/Cargo.toml", "Cargo.lock"];
const RUST_TOOLCHAIN: &[&str] = &[
    "rust-toolchain.toml",
    "rust-toolchain",
    ".cargo/config.toml",
    ".cargo/config",
];
const JS_INPUTS: &[&str] = &[
    "**/*.js", "**/*.mjs", "**/*.cjs", "**/*.jsx", "**/*.ts", "**/*.mts", "**/*.cts", "**/*.tsx",
];
const ESLINT_CONFIGS: &[&str] = &[
    "eslint.config.js",
    "eslint.config.mjs",
    "eslint.config.cjs",
    "eslint.config.ts",
    "eslint.config.mts",
    "eslint.config.cts",
];
/// semgrep with its settings in the environment: `Preset` has no environment of its own.
macro_rules! semgrep {
    ($($arg:literal),* $(,)?) => {
        &[
            "env",
            // Also for `--version`, which otherwise asks semgrep's servers for the latest
            // release and, without a network that answers, waits out its timeout (100 s here).
            "SEMGREP_ENABLE_VERSION_CHECK=0",
            "SEMGREP_LOG_FILE=/tmp/semgrep/semgrep.log",
            "SEMGREP_SETTINGS_FILE=/tmp/semgrep/settings.yml",
            "SEMGREP_VERSION_CACHE_PATH=/tmp/semgrep/version",
            "XDG_CACHE_HOME=/tmp/.cache",
            "XDG_CONFIG_HOME=/tmp/.config",
            "semgrep",
            $($arg),*
        ]
    };
}

pub static PRESETS: &[Preset] = &[
    Preset {
        name: "clippy",
        kind: GateKind::Lint,
        command: &[
            "cargo",
            "clippy",
            "--offline",
            "--locked",
            CARGO_TARGET,
            "--message-format=json",
        ],
        default_args: &["--workspace", "--all-targets"],
        parser: ParserKind::Clippy,
        fix: Some(&[
            "cargo",
            "clippy",
            "--offline",
            "--locked",
            CARGO_TARGET,
            "--fix",
            "--allow-dirty",
            "--allow-staged",
            "--allow-no-vcs",
            "--workspace",
            "--all-targets",
        ]),
        version: &["cargo", "clippy", "--version"],
        inputs: RUST_INPUTS,
        config_files: &[
            "clippy.toml",
            ".clippy.toml",
            "rust-toolchain.toml",
            "rust-toolchain",
            ".cargo/config.toml",
            ".cargo/config",
        ],
        detect: &["Cargo.toml"],
    },
    Preset {
        name: "rustfmt",
        kind: GateKind::Format,
        command: &["cargo", "fmt", "--check"],
        default_args: &["--all"],
        parser: ParserKind::Rustfmt,
        fix: Some(&["cargo", "fmt", "--all"]),
        version: &["cargo", "fmt", "--version"],
        inputs: RUST_INPUTS,
        config_files: &[
            "rustfmt.toml",
            ".rustfmt.toml",
            "rust-toolchain.toml",
            "rust-toolchain",
        ],
        detect: &["Cargo.toml"],
    },
    Preset {
        name: "cargo-test",
        kind: GateKind::Test,
        command: &[
            "cargo",
            "test",
            "--offline",
            "--locked",
            CARGO_TARGET,
            "--no-fail-fast",
        ],
        default_args: &["--workspace"],
        parser: ParserKind::CargoTest,
        fix: None,
        version: &["cargo", "--version"],
        // Tests read more than Rust sources: their fixtures usually live under tests/.
        inputs: &[
            "**/*.rs",
            "**/Cargo.toml",
            "Cargo.lock",
            "tests/**",
            "benches/**",
            "examples/**",
        ],
        config_files: RUST_TOOLCHAIN,
        detect: &["Cargo.toml"],
    },
    Preset {
        name: "eslint",
        kind: GateKind::Lint,
        // No `--cache`: it would write `.eslintcache` into the read-only workspace.
        command: &["eslint", "--format", "json", "--no-warn-ignored"],
        default_args: &["."],
        parser: ParserKind::Eslint,
        fix: Some(&["eslint", "--fix", "."]),
        version: &["eslint", "--version"],
        inputs: JS_INPUTS,
        config_files: &[
            "eslint.config.js",
            "eslint.config.mjs",
            "eslint.config.cjs",
            "eslint.config.ts",
            "eslint.config.mts",
            "eslint.config.cts",
            "package.json",
        ],
        // Not package.json alone: without a flat config eslint 9 refuses to run (exit 2).
        detect: ESLINT_CONFIGS,
    },
    Preset {
        name: "tsc",
        kind: GateKind::Types,
        // `incremental` and `composite` projects write a .tsbuildinfo even with `--noEmit`:
        // beside tsconfig.json it fails on the read-only workspace (TS5033), so it goes to /tmp.
        command: &[
            "tsc",
            "--noEmit",
            "--pretty",
            "false",
            "--tsBuildInfoFile",
            "/tmp/tsc.tsbuildinfo",
        ],
        default_args: &["--project", "tsconfig.json"],
        parser: ParserKind::Tsc,
        fix: None,
        version: &["tsc", "--version"],
        // The lockfile stands for the installed type packages tsc also reads.
        inputs: &[
            "**/*.ts",
            "**/*.mts",
            "**/*.cts",
            "**/*.tsx",
            "package-lock.json",
        ],
        config_files: &["tsconfig.json", "package.json"],
        detect: &["tsconfig.json"],
    },
    Preset {
        name: "semgrep",
        kind: GateKind::Security,
        // The project's own rules only: `--config auto` or `p/...` would fetch rules from the
        // registry, which a gate job cannot reach and a verdict must not depend on.
        command: semgrep!(
            "scan",
            "--config",
            ".semgrep.yml",
            "--sarif",
            "--metrics=off",
            "--disable-version-check",
            "--quiet",
        ),
        default_args: &[],
        parser: ParserKind::Semgrep,
        fix: None,
        version: semgrep!("--version"),
        // semgrep reads every file its rules' languages cover.
        inputs: &["**/*"],
        config_files: &[".semgrep.yml", ".semgrepignore"],
        detect: &[".semgrep.yml"],
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_commands_complete() {
        let mut names: Vec<&str> = PRESETS.iter().map(|preset| preset.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), PRESETS.len());
        for preset in PRESETS {
            assert!(
                !preset.command.is_empty() && !preset.version.is_empty(),
                "{}",
                preset.name
            );
            assert!(
                !preset.detect.is_empty() && !preset.inputs.is_empty(),
                "{}",
                preset.name
            );
        }
    }

    #[test]
    fn cargo_gates_never_write_the_workspace_or_reach_the_network() {
        for preset in PRESETS.iter().filter(|preset| preset.command[0] == "cargo") {
            if preset.name == "rustfmt" {
                continue;
            }
            for flag in ["--offline", "--locked", CARGO_TARGET] {
                assert!(preset.command.contains(&flag), "{}: {flag}", preset.name);
            }
        }
    }

    #[test]
    fn semgrep_runs_local_rules_only() {
        let semgrep = PRESETS.iter().find(|preset| preset.name == "semgrep");
        let command = semgrep.map(|preset| preset.command).unwrap_or_default();
        let config = command.iter().position(|arg| *arg == "--config");
        assert_eq!(config.map(|index| command[index + 1]), Some(".semgrep.yml"));
        assert!(command.contains(&"--metrics=off"));
    }
}
