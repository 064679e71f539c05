//! Python tools as gates: ruff, flake8, mypy, bandit, pytest, and coverage.py over pytest.
//!
//! Gate jobs see the workspace read-only, `/tmp` and `/out` writable. So no tool may write its
//! usual droppings into the project: ruff runs `--no-cache` (no `.ruff_cache`), mypy writes its
//! cache to `/dev/null` (mypy's documented "no cache"; a one-shot job gains nothing from it),
//! pytest runs without its cache plugin (no `.pytest_cache`), and coverage.py keeps its data
//! file in `/out`. Python's own `__pycache__` writes fail silently on a read-only tree.
//!
//! The tools are the venv `scripts/setup` builds from `scripts/tools/requirements.txt`; each
//! preset's `version` command is part of its cache key, so bumping a pin re-runs the gate.

use super::{GateKind, Preset};
use crate::parsers::ParserKind;

const PYTHON_SOURCES: &[&str] = &["**/*.py", "**/*.pyi"];
/// Files that say "this is a Python project".
const PYTHON_PROJECT: &[&str] = &[
    "pyproject.toml",
    "setup.cfg",
    "requirements.txt",
    "setup.py",
];

pub static PRESETS: &[Preset] = &[
    Preset {
        name: "ruff",
        kind: GateKind::Lint,
        // --no-fix: a project's `fix = true` would make ruff try to write into the read-only
        // workspace and report E902 instead of what it found.
        command: &[
            "ruff",
            "check",
            "--no-cache",
            "--no-fix",
            "--output-format",
            "json",
        ],
        default_args: &["."],
        parser: ParserKind::Ruff,
        // --exit-zero: the fix command succeeds when ruff ran, whatever it could not fix; the
        // gate run after it says whether the result passes.
        fix: Some(&["ruff", "check", "--no-cache", "--fix", "--exit-zero", "."]),
        version: &["ruff", "--version"],
        inputs: PYTHON_SOURCES,
        config_files: &["pyproject.toml", "ruff.toml", ".ruff.toml"],
        detect: PYTHON_PROJECT,
    },
    Preset {
        name: "flake8",
        kind: GateKind::Lint,
        // --jobs=1: flake8's process pool needs POSIX semaphores, i.e. a /dev/shm, which a
        // gate job does not have (the pool dies with FileNotFoundError at SemLock). Unlike ruff,
        // flake8 does not skip virtualenvs on its own.
        command: &[
            "flake8",
            "--jobs=1",
            "--extend-exclude=.venv,venv,node_modules",
        ],
        default_args: &["."],
        parser: ParserKind::Flake8,
        fix: None,
        version: &["flake8", "--version"],
        inputs: PYTHON_SOURCES,
        config_files: &[".flake8", "setup.cfg", "tox.ini"],
        // Proposed only to projects that configure it: elsewhere ruff covers flake8's rules, and
        // proposing both would report every problem twice.
        detect: &[".flake8"],
    },
    Preset {
        name: "mypy",
        kind: GateKind::Types,
        // Positions and codes on, `pretty` off whatever the project's config says: the parser
        // reads one message per line.
        command: &[
            "mypy",
            "--cache-dir=/dev/null",
            "--no-pretty",
            "--no-color-output",
            "--show-column-numbers",
            "--show-error-end",
            "--show-error-codes",
        ],
        default_args: &["."],
        parser: ParserKind::Mypy,
        fix: None,
        version: &["mypy", "--version"],
        inputs: PYTHON_SOURCES,
        config_files: &["mypy.ini", ".mypy.ini", "pyproject.toml", "setup.cfg"],
        detect: PYTHON_PROJECT,
    },
    Preset {
        name: "bandit",
        kind: GateKind::Security,
        // -q: bandit's progress lines go to stderr anyway; the report is stdout. A `.bandit`
        // file in the tree (skips, excludes) is read because of -r.
        command: &["bandit", "-f", "json", "-q", "-r"],
        default_args: &["."],
        parser: ParserKind::Bandit,
        fix: None,
        version: &["bandit", "--version"],
        inputs: PYTHON_SOURCES,
        config_files: &[".bandit", "pyproject.toml"],
        detect: PYTHON_PROJECT,
    },
    Preset {
        name: "pytest",
        kind: GateKind::Test,
        // xunit1: the report then has each test's file and line, so failures have a place.
        command: &[
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-o",
            "junit_family=xunit1",
            "--junitxml=/out/junit.xml",
        ],
        default_args: &[],
        parser: ParserKind::Pytest,
        fix: None,
        version: &["pytest", "--version"],
        // Tests read data files too: every file is an input.
        inputs: &[],
        config_files: &["pytest.ini", "pyproject.toml", "setup.cfg", "tox.ini"],
        detect: PYTHON_PROJECT,
    },
    Preset {
        name: "coverage",
        kind: GateKind::Coverage,
        // `;`, not `&&`: a failing test is the pytest gate's finding, the coverage of the run is
        // still this gate's number. Without a data file (pytest could not start) `coverage
        // json` writes no report, and the parser says so. Arguments go to pytest ("$@").
        command: &[
            "sh",
            "-c",
            "coverage run --data-file=/out/.coverage -m pytest -q -p no:cacheprovider \"$@\"; \
             coverage json --data-file=/out/.coverage -o /out/coverage.json",
            "coverage",
        ],
        default_args: &[],
        parser: ParserKind::CoverageJson,
        fix: None,
        version: &["sh", "-c", "coverage --version && pytest --version"],
        inputs: &[],
        config_files: &[
            ".coveragerc",
            "pyproject.toml",
            "setup.cfg",
            "tox.ini",
            "pytest.ini",
        ],
        detect: PYTHON_PROJECT,
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_keeps_out_of_the_read_only_workspace() {
        for preset in PRESETS {
            let command = preset.command.join(" ");
            let writes_elsewhere = match preset.name {
                "ruff" => command.contains("--no-cache"),
                "mypy" => command.contains("--cache-dir=/dev/null"),
                "pytest" => command.contains("no:cacheprovider") && command.contains("/out/"),
                "coverage" => {
                    command.contains("no:cacheprovider")
                        && command.contains("--data-file=/out/")
                        && command.contains("-o /out/coverage.json")
                }
                _ => true,
            };
            assert!(writes_elsewhere, "{}: {command}", preset.name);
            assert!(!preset.version.is_empty(), "{}", preset.name);
        }
    }

    #[test]
    fn presets_are_the_python_family() {
        let names: Vec<&str> = PRESETS.iter().map(|p| p.name).collect();
        assert_eq!(
            names,
            ["ruff", "flake8", "mypy", "bandit", "pytest", "coverage"]
        );
    }
}
