//! The Rust and JavaScript presets against the real tools: each preset's command runs bare (no
//! sandbox) on a scratch copy of a fixture under `tests/fixtures/`, its output goes through the
//! preset's parser, and the findings are checked against what the same tool reports in another
//! format or in its own summary. Clean twins give no findings; output a parser does not read is
//! a `ParseError`, never an empty pass.
//!
//! A missing tool skips its tests (`skipping: ...`), or fails them when
//! `SANDBOX_TEST_NO_SKIP=1`: `scripts/setup` installs every one of them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test that cannot set itself up should stop right there"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{LazyLock, Mutex};

use regex::Regex;
use sandbox_gates::parsers::{parse, ParseError, Parsed, ParserKind, ToolRun};
use sandbox_gates::presets::{self, Preset};
use sandbox_gates::Severity;

/// Where scripts/setup links eslint, tsc and semgrep; gate jobs have it first on PATH too.
const TOOLS_BIN: &str = "/opt/sandbox-tools/bin";

/// One cargo target directory for every cargo run of this file: the fixture crates have no
/// dependencies, so after the first build each run only compiles the fixture itself.
fn cargo_target() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("rust_js_tools-target")
}

fn skip(reason: &str) {
    if std::env::var_os("SANDBOX_TEST_NO_SKIP").is_some_and(|value| value == "1") {
        panic!("would skip, but SANDBOX_TEST_NO_SKIP=1: {reason}");
    }
    eprintln!("skipping: {reason}");
}

fn path_env() -> String {
    let host = std::env::var("PATH").unwrap_or_default();
    format!("{TOOLS_BIN}:{host}")
}

/// Whether the preset's tool answers its version command (asked once per preset).
fn tool_ready(preset: &Preset) -> bool {
    static ANSWERS: LazyLock<Mutex<BTreeMap<&'static str, bool>>> = LazyLock::new(Mutex::default);
    let known = ANSWERS.lock().unwrap().get(preset.name).copied();
    // Asked without holding the lock: semgrep takes seconds to answer, and the other tools'
    // tests need not wait for it.
    let ready = known.unwrap_or_else(|| {
        let ready = try_run(&std::env::temp_dir(), preset.version)
            .is_ok_and(|ran| ran.exit_code == Some(0));
        ANSWERS.lock().unwrap().insert(preset.name, ready);
        ready
    });
    if !ready {
        let tool = preset
            .version
            .iter()
            .find(|arg| **arg != "env" && !arg.contains('='));
        skip(&format!(
            "{} is not installed (`{}` failed): run scripts/setup",
            tool.unwrap_or(&preset.name),
            preset.version.join(" ")
        ));
    }
    ready
}

fn preset(name: &str) -> &'static Preset {
    presets::find(name).unwrap_or_else(|| panic!("no preset {name}"))
}

/// A scratch copy of `tests/fixtures/NAME`, so that a tool writing beside the sources (or a
/// test breaking them on purpose) never touches the repository.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn copy(name: &str) -> Fixture {
        let source = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures")
            .join(name);
        let dir = tempfile::Builder::new()
            .prefix(&format!("gates-{name}-"))
            .tempdir()
            .unwrap();
        copy_tree(&source, dir.path());
        Fixture { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn write(&self, relative: &str, contents: &str) {
        fs_err::write(self.path().join(relative), contents).unwrap();
    }
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in fs_err::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            fs_err::create_dir_all(&target).unwrap();
            copy_tree(&entry.path(), &target);
        } else {
            fs_err::copy(entry.path(), &target).unwrap();
        }
    }
}

/// What one command printed, kept so that several parsers can read it.
struct Ran {
    exit_code: Option<i32>,
    stdout: String,
    stderr: String,
    out_dir: tempfile::TempDir,
    workspace: PathBuf,
}

impl Ran {
    fn parse(&self, kind: ParserKind) -> Result<Parsed, ParseError> {
        parse(kind, &self.tool_run(None))
    }

    fn tool_run<'a>(&'a self, pattern: Option<&'a str>) -> ToolRun<'a> {
        ToolRun {
            exit_code: self.exit_code,
            stdout: &self.stdout,
            stderr: &self.stderr,
            out_dir: self.out_dir.path(),
            workspace: &self.workspace,
            mount: Path::new("/workspace"),
            pattern,
        }
    }

    fn output(&self) -> String {
        format!(
            "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.exit_code, self.stdout, self.stderr
        )
    }
}

/// Runs `argv` in `workspace` the way a gate job would, but bare: `/out` becomes a scratch
/// directory, cargo's `/tmp/cargo-target` this file's shared target directory, and any other
/// `/tmp/...` a scratch directory of its own.
fn run(workspace: &Path, argv: &[&str]) -> Ran {
    try_run(workspace, argv).unwrap_or_else(|error| panic!("{argv:?}: {error}"))
}

fn try_run(workspace: &Path, argv: &[&str]) -> std::io::Result<Ran> {
    let out_dir = tempfile::tempdir()?;
    let scratch = out_dir.path().join("tmp");
    fs_err::create_dir_all(&scratch)?;
    let target = cargo_target();
    let argv: Vec<String> = argv
        .iter()
        .map(|arg| {
            arg.replace("/tmp/cargo-target", &target.to_string_lossy())
                .replace("/tmp/", &format!("{}/", scratch.display()))
                .replace("/out/", &format!("{}/", out_dir.path().display()))
        })
        .collect();
    let output = Command::new(&argv[0])
        .args(&argv[1..])
        .current_dir(workspace)
        .env("PATH", path_env())
        // Colour and backtraces depend on the caller's terminal and environment; a gate job
        // has neither.
        .env_remove("RUST_BACKTRACE")
        .env("NO_COLOR", "1")
        .output()?;
    Ok(Ran {
        exit_code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        out_dir,
        workspace: workspace.to_owned(),
    })
}

/// The preset's command with its default targets, as `sandbox gate` runs it.
fn run_preset(preset: &Preset, workspace: &Path) -> Ran {
    let argv: Vec<&str> = preset
        .command
        .iter()
        .chain(preset.default_args)
        .copied()
        .collect();
    run(workspace, &argv)
}

/// The preset's command with `extra` in place of its default targets.
fn run_preset_with(preset: &Preset, workspace: &Path, extra: &[&str]) -> Ran {
    let argv: Vec<&str> = preset.command.iter().chain(extra).copied().collect();
    run(workspace, &argv)
}

fn findings(ran: &Ran, kind: ParserKind) -> Parsed {
    ran.parse(kind).unwrap_or_else(|error| {
        panic!(
            "{kind:?} could not read the output: {error}\n{}",
            ran.output()
        )
    })
}

fn rules(parsed: &Parsed) -> BTreeSet<String> {
    parsed
        .findings
        .iter()
        .map(|finding| finding.rule.clone())
        .collect()
}

fn assert_tool_failed(ran: &Ran, kind: ParserKind) {
    match ran.parse(kind) {
        Err(ParseError::ToolFailed(_)) => {}
        other => panic!(
            "{kind:?}: expected ToolFailed, got {other:?}\n{}",
            ran.output()
        ),
    }
}

fn assert_unreadable(ran: &Ran, kind: ParserKind) {
    match ran.parse(kind) {
        Err(ParseError::Unreadable { .. }) => {}
        other => panic!(
            "{kind:?}: expected Unreadable, got {other:?}\n{}",
            ran.output()
        ),
    }
}

fn strip_ansi(text: &str) -> String {
    static ANSI: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"\x1b(\[[0-9;?]*[@-~]|\([A-Z0-9])").unwrap());
    ANSI.replace_all(text, "").into_owned()
}

// --- clippy ------------------------------------------------------------------------------------

#[test]
fn clippy_findings_match_its_human_output() {
    let clippy = preset("clippy");
    if !tool_ready(clippy) {
        return;
    }
    let fixture = Fixture::copy("rust-dirty");
    let ran = run_preset(clippy, fixture.path());
    let parsed = findings(&ran, ParserKind::Clippy);

    // The same lints in cargo's human format: each lint's first report names it in a
    // `#[warn(...)]` note, each target's summary counts them, duplicates included.
    let human = run(
        fixture.path(),
        &[
            "cargo",
            "clippy",
            "--offline",
            "--locked",
            "--target-dir=/tmp/cargo-target",
            "--workspace",
            "--all-targets",
        ],
    );
    assert_eq!(human.exit_code, Some(0), "{}", human.output());
    let notes = Regex::new(r"note: `#\[(?:warn|deny)\(([\w:]+)\)\]`").unwrap();
    let human_rules: BTreeSet<String> = notes
        .captures_iter(&human.stderr)
        .map(|found| found[1].to_owned())
        .collect();
    let summary = Regex::new(r"generated (\d+) warnings?(?: \((\d+) duplicates?\))?").unwrap();
    let unique: usize = summary
        .captures_iter(&human.stderr)
        .map(|found| {
            let count: usize = found[1].parse().unwrap();
            let duplicates: usize = found.get(2).map_or(0, |d| d.as_str().parse().unwrap());
            count - duplicates
        })
        .sum();
    let places = Regex::new(r"(?m)^\s*--> ([^:\s]+):(\d+):(\d+)$").unwrap();
    let human_places: BTreeSet<(String, u32, u32)> = places
        .captures_iter(&human.stderr)
        .map(|found| {
            (
                found[1].to_owned(),
                found[2].parse().unwrap(),
                found[3].parse().unwrap(),
            )
        })
        .collect();
    let places: BTreeSet<(String, u32, u32)> = parsed
        .findings
        .iter()
        .map(|f| (f.path.clone().unwrap(), f.line.unwrap(), f.column.unwrap()))
        .collect();

    assert_eq!(parsed.findings.len(), unique, "{}", human.stderr);
    assert_eq!(rules(&parsed), human_rules);
    assert_eq!(places, human_places);
    // The fixture's known defects, so that a tool reporting nothing in both formats fails too.
    let expected = [
        "clippy::bool_comparison",
        "clippy::needless_return",
        "unused_variables",
    ];
    assert_eq!(rules(&parsed), expected.map(String::from).into());
    assert!(parsed
        .findings
        .iter()
        .all(|f| f.severity == Severity::Warning));
    let needless = parsed
        .findings
        .iter()
        .find(|f| f.rule == "clippy::needless_return")
        .unwrap();
    assert_eq!(needless.path.as_deref(), Some("src/lib.rs"));
    assert!(needless.fixable);

    assert_unreadable(&human, ParserKind::Clippy);
}

#[test]
fn clippy_clean_crate_has_no_findings() {
    let clippy = preset("clippy");
    if !tool_ready(clippy) {
        return;
    }
    let fixture = Fixture::copy("rust-clean");
    let parsed = findings(&run_preset(clippy, fixture.path()), ParserKind::Clippy);
    assert_eq!(parsed.findings, []);
}

#[test]
fn clippy_denied_lints_are_errors_and_broken_code_fails_the_tool() {
    let clippy = preset("clippy");
    if !tool_ready(clippy) {
        return;
    }
    let fixture = Fixture::copy("rust-dirty");
    let ran = run_preset_with(
        clippy,
        fixture.path(),
        &["--all-targets", "--", "-D", "warnings"],
    );
    assert_eq!(ran.exit_code, Some(101), "{}", ran.output());
    let parsed = findings(&ran, ParserKind::Clippy);
    assert_eq!(parsed.findings.len(), 3);
    assert!(parsed
        .findings
        .iter()
        .all(|f| f.severity == Severity::Error));

    let broken = Fixture::copy("rust-clean");
    broken.write("src/shapes.rs", "pub fn side() -> u32 {\n    \"four\"\n}\n");
    assert_tool_failed(&run_preset(clippy, broken.path()), ParserKind::Clippy);
}

// --- rustfmt -----------------------------------------------------------------------------------

#[test]
fn rustfmt_findings_match_its_file_list_and_fix() {
    let rustfmt = preset("rustfmt");
    if !tool_ready(rustfmt) {
        return;
    }
    let fixture = Fixture::copy("rust-dirty");
    let ran = run_preset(rustfmt, fixture.path());
    assert_eq!(ran.exit_code, Some(1), "{}", ran.output());
    let parsed = findings(&ran, ParserKind::Rustfmt);

    // `-l` prints only the names of the files rustfmt would change.
    let listed = run_preset_with(rustfmt, fixture.path(), &["--all", "--", "-l"]);
    let listed: BTreeSet<String> = listed
        .stdout
        .lines()
        .map(|line| {
            line.strip_prefix(&format!("{}/", fixture.path().display()))
                .unwrap()
                .to_owned()
        })
        .collect();
    let paths: BTreeSet<String> = parsed
        .findings
        .iter()
        .filter_map(|f| f.path.clone())
        .collect();
    assert_eq!(paths, listed);
    // shapes.rs has two misformatted stretches; lib.rs (clippy's defects) is formatted.
    assert_eq!(paths, BTreeSet::from(["src/shapes.rs".to_owned()]));
    assert_eq!(parsed.findings.len(), 2, "{}", ran.output());
    assert_eq!(parsed.findings[0].line, Some(1));
    assert!(parsed
        .findings
        .iter()
        .all(|f| f.fixable && f.rule == "rustfmt"));

    let fix = rustfmt.fix.unwrap();
    let fixed = run(fixture.path(), fix);
    assert_eq!(fixed.exit_code, Some(0), "{}", fixed.output());
    let again = findings(&run_preset(rustfmt, fixture.path()), ParserKind::Rustfmt);
    assert_eq!(again.findings, []);

    // The same failure read by the exit-code parser: one finding quoting the diff.
    let by_exit = findings(&ran, ParserKind::ExitCode);
    assert_eq!(by_exit.findings.len(), 1);
    assert!(by_exit.findings[0].message.contains("exited with status 1"));
}

#[test]
fn rustfmt_clean_crate_has_no_findings_and_broken_code_fails_the_tool() {
    let rustfmt = preset("rustfmt");
    if !tool_ready(rustfmt) {
        return;
    }
    let fixture = Fixture::copy("rust-clean");
    let ran = run_preset(rustfmt, fixture.path());
    assert_eq!(findings(&ran, ParserKind::Rustfmt).findings, []);
    assert_eq!(findings(&ran, ParserKind::ExitCode).findings, []);

    fixture.write("src/shapes.rs", "pub fn broken( {\n");
    assert_tool_failed(&run_preset(rustfmt, fixture.path()), ParserKind::Rustfmt);
}

// --- cargo test --------------------------------------------------------------------------------

#[test]
fn cargo_test_results_match_its_list_and_quiet_output() {
    let cargo_test = preset("cargo-test");
    if !tool_ready(cargo_test) {
        return;
    }
    let fixture = Fixture::copy("rust-dirty");
    let ran = run_preset(cargo_test, fixture.path());
    assert_eq!(ran.exit_code, Some(101), "{}", ran.output());
    let parsed = findings(&ran, ParserKind::CargoTest);

    // `-- --list` counts every test of every binary, ignored ones included.
    let listed = run_preset_with(cargo_test, fixture.path(), &["--", "--list"]);
    let count = Regex::new(r"(?m)^(\d+) tests?, \d+ benchmarks?$").unwrap();
    let listed_tests: f64 = count
        .captures_iter(&listed.stdout)
        .map(|found| found[1].parse::<f64>().unwrap())
        .sum();
    // `-q` prints a dot per test and names the failures in its own way.
    let quiet = run_preset_with(cargo_test, fixture.path(), &["-q"]);
    let failed_line = Regex::new(r"(?m)^(\S+) --- FAILED$").unwrap();
    let quiet_failed: BTreeSet<String> = failed_line
        .captures_iter(&quiet.stdout)
        .map(|found| found[1].to_owned())
        .collect();

    assert_eq!(parsed.metrics["tests"], listed_tests, "{}", listed.stdout);
    assert_eq!(parsed.findings.len() as f64, parsed.metrics["failed"]);
    assert_eq!(rules(&parsed), quiet_failed, "{}", quiet.stdout);
    let metrics: Vec<(&str, f64)> = parsed
        .metrics
        .iter()
        .map(|(name, value)| (name.as_str(), *value))
        .collect();
    assert_eq!(
        metrics,
        [
            ("failed", 1.0),
            ("failures", 1.0),
            ("ignored", 1.0),
            ("passed", 1.0),
            ("skipped", 1.0),
            ("tests", 3.0)
        ]
    );
    let failure = &parsed.findings[0];
    assert_eq!(failure.rule, "tests::doubles");
    assert_eq!(failure.path.as_deref(), Some("src/lib.rs"));
    assert_eq!((failure.line, failure.column), (Some(33), Some(9)));
    assert!(
        failure.message.contains("double is off"),
        "{}",
        failure.message
    );

    // `-q` output is read the same way.
    let from_quiet = findings(&quiet, ParserKind::CargoTest);
    assert_eq!(from_quiet.metrics, parsed.metrics);
    assert_eq!(from_quiet.findings.len(), 1);
}

#[test]
fn cargo_test_clean_crate_passes_and_broken_code_fails_the_tool() {
    let cargo_test = preset("cargo-test");
    if !tool_ready(cargo_test) {
        return;
    }
    let fixture = Fixture::copy("rust-clean");
    let ran = run_preset(cargo_test, fixture.path());
    assert_eq!(ran.exit_code, Some(0), "{}", ran.output());
    let parsed = findings(&ran, ParserKind::CargoTest);
    assert_eq!(parsed.findings, []);
    assert_eq!(parsed.metrics["failed"], 0.0);
    assert_eq!(parsed.metrics["passed"], 2.0);

    fixture.write("src/shapes.rs", "pub fn side() -> u32 {\n    \"four\"\n}\n");
    assert_tool_failed(
        &run_preset(cargo_test, fixture.path()),
        ParserKind::CargoTest,
    );

    let garbage = run(fixture.path(), &["echo", "garbage"]);
    assert_unreadable(&garbage, ParserKind::CargoTest);
}

// --- eslint ------------------------------------------------------------------------------------

#[test]
fn eslint_findings_match_its_stylish_output() {
    let eslint = preset("eslint");
    if !tool_ready(eslint) {
        return;
    }
    let fixture = Fixture::copy("js-dirty");
    let ran = run_preset(eslint, fixture.path());
    assert_eq!(ran.exit_code, Some(1), "{}", ran.output());
    let parsed = findings(&ran, ParserKind::Eslint);

    // eslint's default `stylish` format: `  LINE:COL  error|warning  message  rule` under each
    // file, and `✖ N problems (E errors, W warnings)` at the end. Messages without a rule
    // (parse errors, unused directives) have no rule column.
    let stylish = run(fixture.path(), &["eslint", "--format", "stylish", "."]);
    let text = strip_ansi(&stylish.stdout);
    let summary = Regex::new(r"(\d+) problems? \((\d+) errors?, (\d+) warnings?\)").unwrap();
    let totals = summary
        .captures(&text)
        .unwrap_or_else(|| panic!("no summary in {text}"));
    let row =
        Regex::new(r"(?m)^\s+\d+:\d+\s+(?:error|warning)\s+.*?(?:\s{2}([\w/@-]+))?$").unwrap();
    let stylish_rules: BTreeSet<String> = row
        .captures_iter(&text)
        .filter_map(|found| found.get(1).map(|rule| rule.as_str().to_owned()))
        .collect();
    let count = |severity| {
        parsed
            .findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    };

    assert_eq!(
        parsed.findings.len(),
        totals[1].parse::<usize>().unwrap(),
        "{text}"
    );
    assert_eq!(count(Severity::Error), totals[2].parse::<usize>().unwrap());
    assert_eq!(
        count(Severity::Warning),
        totals[3].parse::<usize>().unwrap()
    );
    let ruled: BTreeSet<String> = rules(&parsed)
        .into_iter()
        .filter(|rule| rule != "parse-error" && rule != "unused-disable-directive")
        .collect();
    assert_eq!(ruled, stylish_rules, "{text}");
    let expected = [
        "eqeqeq",
        "no-undef",
        "no-unused-vars",
        "no-var",
        "parse-error",
        "prefer-const",
        "unused-disable-directive",
    ];
    assert_eq!(rules(&parsed), expected.map(String::from).into());
    let broken = parsed
        .findings
        .iter()
        .find(|f| f.rule == "parse-error")
        .unwrap();
    assert_eq!(broken.path.as_deref(), Some("src/broken.js"));

    assert_unreadable(&stylish, ParserKind::Eslint);
}

#[test]
fn eslint_fix_leaves_only_the_unfixable_findings() {
    let eslint = preset("eslint");
    if !tool_ready(eslint) {
        return;
    }
    let fixture = Fixture::copy("js-dirty");
    let before = findings(&run_preset(eslint, fixture.path()), ParserKind::Eslint);
    let fixed = run(fixture.path(), eslint.fix.unwrap());
    assert!(matches!(fixed.exit_code, Some(0 | 1)), "{}", fixed.output());
    let after = findings(&run_preset(eslint, fixture.path()), ParserKind::Eslint);
    let unfixable: Vec<(String, Option<String>)> = before
        .findings
        .iter()
        .filter(|f| !f.fixable)
        .map(|f| (f.rule.clone(), f.path.clone()))
        .collect();
    let left: Vec<(String, Option<String>)> = after
        .findings
        .iter()
        .map(|f| (f.rule.clone(), f.path.clone()))
        .collect();
    assert!(before.findings.iter().any(|f| f.fixable));
    assert_eq!(left, unfixable);
}

#[test]
fn eslint_clean_project_passes_and_a_missing_config_fails_the_tool() {
    let eslint = preset("eslint");
    if !tool_ready(eslint) {
        return;
    }
    let fixture = Fixture::copy("js-clean");
    let ran = run_preset(eslint, fixture.path());
    assert_eq!(findings(&ran, ParserKind::Eslint).findings, []);

    fs_err::remove_file(fixture.path().join("eslint.config.js")).unwrap();
    let ran = run_preset(eslint, fixture.path());
    assert_eq!(ran.exit_code, Some(2), "{}", ran.output());
    assert_tool_failed(&ran, ParserKind::Eslint);
}

// --- tsc ---------------------------------------------------------------------------------------

#[test]
fn tsc_findings_match_its_pretty_output() {
    let tsc = preset("tsc");
    if !tool_ready(tsc) {
        return;
    }
    let fixture = Fixture::copy("js-dirty");
    let ran = run_preset(tsc, fixture.path());
    let parsed = findings(&ran, ParserKind::Tsc);

    // The pretty format quotes the code under each error and ends on `Found N errors ...`.
    let argv: Vec<&str> = tsc
        .command
        .iter()
        .chain(tsc.default_args)
        .map(|arg| if *arg == "false" { "true" } else { arg })
        .collect();
    let pretty = run(fixture.path(), &argv);
    let text = strip_ansi(&pretty.stdout);
    let found = Regex::new(r"Found (\d+) errors?").unwrap();
    let total: usize = found.captures(&text).unwrap()[1].parse().unwrap();
    let code = Regex::new(r"(?m)^\S+:\d+:\d+ - error (TS\d+):").unwrap();
    let pretty_codes: BTreeSet<String> = code
        .captures_iter(&text)
        .map(|found| found[1].to_owned())
        .collect();

    assert_eq!(parsed.findings.len(), total, "{text}");
    assert_eq!(rules(&parsed), pretty_codes);
    assert_eq!(
        rules(&parsed),
        ["TS2322", "TS2345"].map(String::from).into()
    );
    let missing = parsed.findings.iter().find(|f| f.rule == "TS2345").unwrap();
    assert_eq!(missing.path.as_deref(), Some("src/shapes.ts"));
    assert_eq!((missing.line, missing.column), (Some(15), Some(6)));
    assert!(
        missing.message.contains("\n  Property 'label' is missing"),
        "{}",
        missing.message
    );

    assert_unreadable(&pretty, ParserKind::Tsc);

    // A gate's own pattern over the same output finds the same diagnostics.
    let pattern = r"^(?P<path>[^(]+)\((?P<line>\d+),(?P<column>\d+)\): (?P<severity>\w+) (?P<rule>TS\d+): (?P<message>.*)$";
    let by_regex = parse(ParserKind::Regex, &ran.tool_run(Some(pattern))).unwrap();
    let places = |parsed: &Parsed| -> Vec<String> {
        parsed
            .findings
            .iter()
            .map(|f| format!("{} {:?}:{:?}:{:?}", f.rule, f.path, f.line, f.column))
            .collect()
    };
    assert_eq!(places(&by_regex), places(&parsed));
}

#[test]
fn tsc_clean_project_passes_and_a_broken_config_fails_the_tool() {
    let tsc = preset("tsc");
    if !tool_ready(tsc) {
        return;
    }
    let fixture = Fixture::copy("js-clean");
    let ran = run_preset(tsc, fixture.path());
    assert_eq!(ran.exit_code, Some(0), "{}", ran.output());
    assert_eq!(findings(&ran, ParserKind::Tsc).findings, []);

    fixture.write(
        "tsconfig.json",
        r#"{"compilerOptions": {"strictest": true}}"#,
    );
    assert_tool_failed(&run_preset(tsc, fixture.path()), ParserKind::Tsc);
}

// --- semgrep -----------------------------------------------------------------------------------

#[test]
fn semgrep_findings_match_its_json_output() {
    let semgrep = preset("semgrep");
    if !tool_ready(semgrep) {
        return;
    }
    let fixture = Fixture::copy("semgrep-dirty");
    let ran = run_preset(semgrep, fixture.path());
    let parsed = findings(&ran, ParserKind::Semgrep);

    // semgrep's own JSON: `results[].check_id`, `path`, `start.line`/`col`.
    let argv: Vec<&str> = semgrep
        .command
        .iter()
        .map(|arg| if *arg == "--sarif" { "--json" } else { arg })
        .collect();
    let json = run(fixture.path(), &argv);
    let report: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let results = report["results"].as_array().unwrap();
    let json_places: BTreeSet<(String, String, u64, u64)> = results
        .iter()
        .map(|result| {
            (
                result["check_id"].as_str().unwrap().to_owned(),
                result["path"].as_str().unwrap().to_owned(),
                result["start"]["line"].as_u64().unwrap(),
                result["start"]["col"].as_u64().unwrap(),
            )
        })
        .collect();
    let places: BTreeSet<(String, String, u64, u64)> = parsed
        .findings
        .iter()
        .map(|f| {
            (
                f.rule.clone(),
                f.path.clone().unwrap(),
                u64::from(f.line.unwrap()),
                u64::from(f.column.unwrap()),
            )
        })
        .collect();

    assert_eq!(parsed.findings.len(), results.len(), "{}", json.stdout);
    assert_eq!(places, json_places);
    assert_eq!(
        rules(&parsed),
        ["no-console-log", "no-eval", "no-shell-true"]
            .map(String::from)
            .into()
    );
    let severity = |rule: &str| {
        parsed
            .findings
            .iter()
            .find(|f| f.rule == rule)
            .unwrap()
            .severity
    };
    assert_eq!(severity("no-eval"), Severity::Error);
    assert_eq!(severity("no-shell-true"), Severity::Warning);
    assert_eq!(severity("no-console-log"), Severity::Note);

    // The generic SARIF parser reads the same log, also when the tool wrote it to /out.
    assert_eq!(findings(&ran, ParserKind::Sarif), parsed);
    fs_err::write(ran.out_dir.path().join("semgrep.sarif"), &ran.stdout).unwrap();
    let from_file = Ran {
        stdout: String::new(),
        ..ran
    };
    assert_eq!(findings(&from_file, ParserKind::Sarif), parsed);

    assert_unreadable(&json, ParserKind::Semgrep);
}

#[test]
fn semgrep_clean_project_passes_and_broken_rules_fail_the_tool() {
    let semgrep = preset("semgrep");
    if !tool_ready(semgrep) {
        return;
    }
    let fixture = Fixture::copy("semgrep-clean");
    let ran = run_preset(semgrep, fixture.path());
    assert_eq!(findings(&ran, ParserKind::Semgrep).findings, []);

    fixture.write(
        ".semgrep.yml",
        "rules:\n  - id: broken\n    pattern: eval(\n",
    );
    assert_tool_failed(&run_preset(semgrep, fixture.path()), ParserKind::Semgrep);
}
