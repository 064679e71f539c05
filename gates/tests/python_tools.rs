//! The Python presets against the real tools (`/opt/sandbox-tools/bin`, installed by
//! `scripts/setup`): each preset's command runs on a copy of a fixture project, its output goes
//! through the preset's parser, and what the parser read is checked against what the same tool
//! says in another of its formats. A parser that drifts from a tool's real output (a new field,
//! a changed summary line after a version bump) fails here, not in someone's CI gate.
//!
//! The commands run bare, with `/out` replaced by a temporary directory; the sandbox itself is
//! tested elsewhere. What the sandbox would refuse is still checked: no preset may leave a file
//! in the workspace, which is read-only in a gate job.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "tests: a failed setup step should stop the test with its message"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use regex::Regex;
use sandbox_gates::{parsers, presets, Finding, ParseError, Parsed, Severity, ToolRun};

const TOOLS_BIN: &str = "/opt/sandbox-tools/bin";

/// A test that cannot run here says why; with SANDBOX_TEST_NO_SKIP=1 (set by scripts/test)
/// a skip is a failure, so nothing silently stops being tested in CI.
fn skip(reason: &str) {
    if std::env::var_os("SANDBOX_TEST_NO_SKIP").is_some_and(|v| v == "1") {
        panic!("would skip, but SANDBOX_TEST_NO_SKIP=1: {reason}");
    }
    eprintln!("skipping: {reason}");
}

/// Whether every tool in `names` is installed; if not, the test skips (or fails, in CI).
fn tools(names: &[&str]) -> bool {
    let missing: Vec<&str> = names
        .iter()
        .copied()
        .filter(|name| !Path::new(TOOLS_BIN).join(name).exists())
        .collect();
    if missing.is_empty() {
        return true;
    }
    skip(&format!(
        "{} not installed in {TOOLS_BIN}: run scripts/setup",
        missing.join(", ")
    ));
    false
}

/// A fixture project copied into a fresh directory (tools see a tree nobody else touches).
struct Project {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl Project {
    fn new(fixture: &str) -> Project {
        let source = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures")
            .join(fixture);
        let dir = tempfile::Builder::new()
            .prefix("python-tools-")
            .tempdir()
            .unwrap();
        // Canonical: tools print resolved paths, and the parser strips this prefix from them.
        let root = dir.path().canonicalize().unwrap().join(fixture);
        copy_tree(&source, &root);
        Project { _dir: dir, root }
    }

    /// Every file below the project, relative: to check that a command left nothing behind.
    fn files(&self) -> BTreeSet<String> {
        let mut files = BTreeSet::new();
        list(&self.root, &self.root, &mut files);
        files
    }
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "__pycache__" {
            continue;
        }
        let target = to.join(&name);
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn list(root: &Path, dir: &Path, files: &mut BTreeSet<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        files.insert(path.strip_prefix(root).unwrap().display().to_string());
        if path.is_dir() {
            list(root, &path, files);
        }
    }
}

/// What a command did.
struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `argv` in `cwd` with the tools first on PATH, as a gate job has them.
fn run(cwd: &Path, argv: &[String]) -> Ran {
    let path = std::env::var("PATH").unwrap_or_default();
    let output = Command::new(&argv[0])
        .args(&argv[1..])
        .current_dir(cwd)
        .env("PATH", format!("{TOOLS_BIN}:{path}"))
        // Bytecode is Python's own cache; in a gate job its writes fail silently. Off here, so
        // that "the command wrote nothing into the workspace" can be checked exactly.
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|error| panic!("cannot run {argv:?}: {error}"));
    Ran {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn argv(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| (*w).to_owned()).collect()
}

/// A preset's gate, run on `project` the way the runner would (command and default targets),
/// with `/out` being `out`; returns the parser's reading and what the command printed.
fn gate(preset: &str, project: &Project, out: &Path) -> (Result<Parsed, ParseError>, Ran) {
    let preset = presets::find(preset).unwrap_or_else(|| panic!("no preset {preset}"));
    let out_prefix = format!("{}/", out.display());
    let command: Vec<String> = preset
        .command
        .iter()
        .chain(preset.default_args)
        .map(|arg| arg.replace("/out/", &out_prefix))
        .collect();
    let before = project.files();
    let ran = run(&project.root, &command);
    assert_eq!(
        project.files(),
        before,
        "`{}` wrote into the workspace, which is read-only in a gate job",
        command.join(" ")
    );
    let parsed = parse(preset.parser, project, out, &ran);
    (parsed, ran)
}

fn parse(
    kind: parsers::ParserKind,
    project: &Project,
    out: &Path,
    ran: &Ran,
) -> Result<Parsed, ParseError> {
    parsers::parse(
        kind,
        &ToolRun {
            exit_code: ran.code,
            stdout: &ran.stdout,
            stderr: &ran.stderr,
            out_dir: out,
            workspace: &project.root,
            mount: &project.root,
            pattern: None,
        },
    )
}

/// The preset's reading, which must have succeeded.
fn parsed_ok(name: &str, (parsed, ran): (Result<Parsed, ParseError>, Ran)) -> (Parsed, Ran) {
    match parsed {
        Ok(parsed) => (parsed, ran),
        Err(error) => panic!(
            "the {name} preset's output did not parse: {error}\nexit {:?}\nstdout:\n{}\nstderr:\n{}",
            ran.code, ran.stdout, ran.stderr
        ),
    }
}

fn rules(findings: &[Finding]) -> BTreeSet<String> {
    findings.iter().map(|f| f.rule.clone()).collect()
}

fn fixed(pattern: &str) -> Regex {
    Regex::new(pattern).unwrap()
}

// --- ruff --------------------------------------------------------------------------------------

#[test]
fn ruff_json_matches_ruff_concise_output() {
    if !tools(&["ruff"]) {
        return;
    }
    let project = Project::new("python-defects");
    let out = tempfile::tempdir().unwrap();
    let (parsed, ran) = parsed_ok("ruff", gate("ruff", &project, out.path()));
    assert_eq!(ran.code, Some(1));

    let concise = run(
        &project.root,
        &argv(&[
            "ruff",
            "check",
            "--no-cache",
            "--output-format",
            "concise",
            ".",
        ]),
    );
    let line =
        fixed(r"^(?P<path>[^:]+):(?P<row>\d+):(?P<col>\d+): (?P<code>\S+) (?P<fix>\[\*\] )?");
    let expected: BTreeSet<(String, u32, u32, String, bool)> = concise
        .stdout
        .lines()
        .filter_map(|l| line.captures(l))
        .map(|c| {
            (
                c["path"].to_owned(),
                c["row"].parse().unwrap(),
                c["col"].parse().unwrap(),
                c["code"].to_owned(),
                c.name("fix").is_some(),
            )
        })
        .collect();
    let total: usize = fixed(r"(?m)^Found (\d+) errors?\.$")
        .captures(&concise.stdout)
        .unwrap()[1]
        .parse()
        .unwrap();
    let got: BTreeSet<(String, u32, u32, String, bool)> = parsed
        .findings
        .iter()
        .map(|f| {
            (
                f.path.clone().unwrap(),
                f.line.unwrap(),
                f.column.unwrap(),
                f.rule.clone(),
                f.fixable,
            )
        })
        .collect();
    assert_eq!(parsed.findings.len(), total, "{}", concise.stdout);
    assert_eq!(got, expected);
    // The defects the fixture was written to have: an unused import, an undefined name.
    assert!(rules(&parsed.findings).is_superset(&BTreeSet::from(["F401".into(), "F821".into()])));
}

#[test]
fn ruff_fix_command_fixes_what_it_calls_fixable() {
    if !tools(&["ruff"]) {
        return;
    }
    let project = Project::new("python-defects");
    let preset = presets::find("ruff").unwrap();
    let fix = run(&project.root, &argv(preset.fix.unwrap()));
    assert_eq!(fix.code, Some(0), "{}", fix.stderr);
    let out = tempfile::tempdir().unwrap();
    let (parsed, _) = parsed_ok("ruff", gate("ruff", &project, out.path()));
    assert!(
        parsed.findings.iter().all(|f| !f.fixable),
        "{:?}",
        parsed.findings
    );
    assert!(!rules(&parsed.findings).contains("F401"));
}

// --- flake8 ------------------------------------------------------------------------------------

#[test]
fn flake8_text_matches_flake8_statistics() {
    if !tools(&["flake8"]) {
        return;
    }
    let project = Project::new("python-defects");
    let out = tempfile::tempdir().unwrap();
    let (parsed, ran) = parsed_ok("flake8", gate("flake8", &project, out.path()));
    assert_eq!(ran.code, Some(1));

    // -q prints file names instead of violations; --statistics counts them per code.
    let stats = run(
        &project.root,
        &argv(&[
            "flake8",
            "--extend-exclude=.venv,venv,node_modules",
            "-q",
            "--count",
            "--statistics",
            ".",
        ]),
    );
    let per_code = fixed(r"^(?P<n>\d+)\s+(?P<code>[A-Z]+\d+) ");
    let mut expected = BTreeMap::new();
    for caps in stats.stdout.lines().filter_map(|l| per_code.captures(l)) {
        *expected.entry(caps["code"].to_owned()).or_insert(0) +=
            caps["n"].parse::<usize>().unwrap();
    }
    let total: usize = stats.stdout.lines().last().unwrap().trim().parse().unwrap();
    let mut got = BTreeMap::new();
    for finding in &parsed.findings {
        *got.entry(finding.rule.clone()).or_insert(0) += 1;
    }
    assert_eq!(parsed.findings.len(), total, "{}", stats.stdout);
    assert_eq!(got, expected);
    assert!(rules(&parsed.findings).is_superset(&BTreeSet::from(["F401".into(), "F821".into()])));
    assert!(parsed
        .findings
        .iter()
        .all(|f| f.path.as_deref() == Some("defects/core.py")));
}

// --- mypy --------------------------------------------------------------------------------------

#[test]
fn mypy_text_matches_mypy_json_and_its_count() {
    if !tools(&["mypy"]) {
        return;
    }
    let project = Project::new("python-defects");
    let out = tempfile::tempdir().unwrap();
    let (parsed, ran) = parsed_ok("mypy", gate("mypy", &project, out.path()));
    assert_eq!(ran.code, Some(1));
    let found: usize = fixed(r"(?m)^Found (\d+) errors? in")
        .captures(&ran.stdout)
        .unwrap()[1]
        .parse()
        .unwrap();

    let json = run(
        &project.root,
        &argv(&["mypy", "--cache-dir=/dev/null", "--output", "json", "."]),
    );
    let mut expected = BTreeSet::new();
    for line in json.stdout.lines().filter(|l| l.starts_with('{')) {
        let entry: serde_json::Value = serde_json::from_str(line).unwrap();
        if entry["severity"] == "error" {
            expected.insert((
                entry["file"].as_str().unwrap().to_owned(),
                u32::try_from(entry["line"].as_u64().unwrap()).unwrap(),
                u32::try_from(entry["column"].as_u64().unwrap()).unwrap() + 1,
                entry["code"].as_str().unwrap().to_owned(),
            ));
        }
    }
    let errors: Vec<&Finding> = parsed
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .collect();
    let got: BTreeSet<_> = errors
        .iter()
        .map(|f| {
            (
                f.path.clone().unwrap(),
                f.line.unwrap(),
                f.column.unwrap(),
                f.rule.clone(),
            )
        })
        .collect();
    assert_eq!(errors.len(), found);
    assert_eq!(errors.len(), expected.len(), "{}", json.stdout);
    assert_eq!(got, expected);
    assert_eq!(parsed.metrics["errors"], found as f64);
    assert!(rules(&parsed.findings).is_superset(&BTreeSet::from([
        "return-value".into(),
        "name-defined".into()
    ])));

    // The JSON lines read the same through the parser.
    let (from_json, _) = parsed_ok(
        "mypy",
        (
            parse(parsers::ParserKind::Mypy, &project, out.path(), &json),
            json,
        ),
    );
    let same: BTreeSet<_> = from_json
        .findings
        .iter()
        .map(|f| {
            (
                f.path.clone().unwrap(),
                f.line.unwrap(),
                f.column.unwrap(),
                f.rule.clone(),
            )
        })
        .collect();
    assert_eq!(same, got);
    let ends = |p: &Parsed| {
        p.findings
            .iter()
            .map(|f| (f.end_line, f.end_column))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ends(&from_json),
        ends(&parsed),
        "text and JSON end positions agree"
    );
}

// --- bandit ------------------------------------------------------------------------------------

/// The fields of one CSV line (bandit quotes fields that hold commas or quotes).
fn csv_fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                fields.last_mut().unwrap().push('"');
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(String::new()),
            _ => fields.last_mut().unwrap().push(c),
        }
    }
    fields
}

#[test]
fn bandit_json_matches_bandit_csv() {
    if !tools(&["bandit"]) {
        return;
    }
    let project = Project::new("python-defects");
    let out = tempfile::tempdir().unwrap();
    let (parsed, ran) = parsed_ok("bandit", gate("bandit", &project, out.path()));
    assert_eq!(ran.code, Some(1));

    let csv = run(
        &project.root,
        &argv(&["bandit", "-f", "csv", "-q", "-r", "."]),
    );
    let mut lines = csv.stdout.lines().filter(|l| !l.trim().is_empty());
    let header = csv_fields(lines.next().unwrap());
    let column = |name: &str| header.iter().position(|h| h == name).unwrap();
    let (file, id, line, col, severity) = (
        column("filename"),
        column("test_id"),
        column("line_number"),
        column("col_offset"),
        column("issue_severity"),
    );
    let mut expected = Vec::new();
    let mut high = 0;
    for row in lines.map(csv_fields) {
        expected.push((
            row[file].trim_start_matches("./").to_owned(),
            row[line].parse::<u32>().unwrap(),
            row[col].parse::<u32>().unwrap() + 1,
            row[id].clone(),
        ));
        high += usize::from(row[severity] == "HIGH");
    }
    expected.sort();
    let mut got: Vec<_> = parsed
        .findings
        .iter()
        .map(|f| {
            (
                f.path.clone().unwrap(),
                f.line.unwrap(),
                f.column.unwrap(),
                f.rule.clone(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(got, expected, "{}", csv.stdout);
    assert_eq!(parsed.metrics["high"], high as f64);
    // shell=True, eval, a hard-coded password.
    assert!(rules(&parsed.findings).is_superset(&BTreeSet::from([
        "B602".into(),
        "B307".into(),
        "B105".into()
    ])));
}

// --- pytest ------------------------------------------------------------------------------------

#[test]
fn pytest_junit_matches_pytest_summary_line() {
    if !tools(&["pytest"]) {
        return;
    }
    let project = Project::new("python-defects");
    let out = tempfile::tempdir().unwrap();
    let (parsed, ran) = parsed_ok("pytest", gate("pytest", &project, out.path()));
    assert_eq!(ran.code, Some(1));

    let plain = run(
        &project.root,
        &argv(&["pytest", "-p", "no:cacheprovider", "-rfE"]),
    );
    let summary = plain
        .stdout
        .lines()
        .rev()
        .find(|l| l.contains(" in ") && l.contains("passed"))
        .unwrap_or_else(|| panic!("no summary line:\n{}", plain.stdout));
    let mut counts = BTreeMap::new();
    for caps in fixed(r"(\d+) (failed|passed|skipped|errors?)").captures_iter(summary) {
        counts.insert(
            caps[2].trim_end_matches('s').to_owned(),
            caps[1].parse::<f64>().unwrap(),
        );
    }
    let count = |name: &str| counts.get(name).copied().unwrap_or(0.0);
    let metric = |name: &str| parsed.metrics[name];
    assert_eq!(metric("failures"), count("failed"), "{summary}");
    assert_eq!(metric("errors"), count("error"), "{summary}");
    assert_eq!(metric("skipped"), count("skipped"), "{summary}");
    assert_eq!(
        metric("tests") - metric("failures") - metric("errors") - metric("skipped"),
        count("passed"),
        "{summary}"
    );
    assert_eq!((metric("tests"), metric("failures")), (3.0, 1.0));

    // `FAILED tests/test_core.py::test_add_wrong - assert 4 == 5`, and where: the traceback's
    // `tests/test_core.py:13: AssertionError`.
    let failed: BTreeSet<String> = fixed(r"(?m)^(?:FAILED|ERROR) \S+::(\S+)")
        .captures_iter(&plain.stdout)
        .map(|c| c[1].to_owned())
        .collect();
    let named: BTreeSet<String> = parsed
        .findings
        .iter()
        .map(|f| f.rule.rsplit("::").next().unwrap().to_owned())
        .collect();
    assert_eq!(named, failed);
    let at = fixed(r"(?m)^(?P<path>\S+\.py):(?P<line>\d+): AssertionError$")
        .captures(&plain.stdout)
        .unwrap();
    let finding = &parsed.findings[0];
    assert_eq!(finding.path.as_deref(), Some(&at["path"]));
    assert_eq!(finding.line, at["line"].parse().ok());
    assert_eq!(finding.message, "assert 4 == 5\n +  where 4 = add(2, 2)");
}

// --- coverage ----------------------------------------------------------------------------------

/// The TOTAL percentage `coverage report` prints for the data file in `out`.
fn coverage_total(project: &Project, out: &Path) -> f64 {
    let data = format!("--data-file={}/.coverage", out.display());
    let report = run(
        &project.root,
        &argv(&["coverage", "report", &data, "--precision=2"]),
    );
    let total = fixed(r"(?m)^TOTAL\s.*\s(?P<percent>[\d.]+)%$")
        .captures(&report.stdout)
        .unwrap_or_else(|| panic!("no TOTAL line:\n{}{}", report.stdout, report.stderr));
    total["percent"].parse().unwrap()
}

#[test]
fn coverage_json_matches_coverage_report_total() {
    if !tools(&["coverage", "pytest"]) {
        return;
    }
    let project = Project::new("python-defects");
    let out = tempfile::tempdir().unwrap();
    let (parsed, _) = parsed_ok("coverage", gate("coverage", &project, out.path()));
    let line_percent = parsed.metrics["line_percent"];
    assert!((line_percent - coverage_total(&project, out.path())).abs() < 0.005);
    assert!(
        line_percent < 100.0,
        "the fixture leaves code untested: {line_percent}"
    );
    assert!(parsed.findings.is_empty());
    // Per file: every file the run measured, with lines that ran and lines that did not.
    assert!(
        parsed
            .coverage
            .iter()
            .any(|file| !file.missing_lines.is_empty()),
        "{:?}",
        parsed.coverage
    );
    assert!(parsed
        .coverage
        .iter()
        .all(|file| !file.path.starts_with('/') && file.path.ends_with(".py")));

    // The same data as Cobertura XML and LCOV reads the same, totals and lines per file (no
    // branches measured here, so line_percent is statements in all three).
    let data = format!("--data-file={}/.coverage", out.path().display());
    for (format, file, kind) in [
        ("xml", "coverage.xml", parsers::ParserKind::Cobertura),
        ("lcov", "lcov.info", parsers::ParserKind::Lcov),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join(file).display().to_string();
        let ran = run(
            &project.root,
            &argv(&["coverage", format, &data, "-o", &target]),
        );
        assert_eq!(ran.code, Some(0), "{}", ran.stderr);
        let (read, _) = parsed_ok(format, (parse(kind, &project, dir.path(), &ran), ran));
        assert!(
            (read.metrics["line_percent"] - line_percent).abs() < 1e-9,
            "{format}: {:?} vs {line_percent}",
            read.metrics
        );
        assert_eq!(read.coverage, parsed.coverage, "{format}");
    }
}

// --- the clean project -------------------------------------------------------------------------

#[test]
fn clean_project_passes_every_python_preset() {
    if !tools(&["ruff", "flake8", "mypy", "bandit", "pytest", "coverage"]) {
        return;
    }
    let project = Project::new("python-clean");
    for name in ["ruff", "flake8", "mypy", "bandit", "pytest", "coverage"] {
        let out = tempfile::tempdir().unwrap();
        let (parsed, ran) = parsed_ok(name, gate(name, &project, out.path()));
        assert!(
            parsed.findings.is_empty(),
            "{name}: {:?}\n{}{}",
            parsed.findings,
            ran.stdout,
            ran.stderr
        );
        if name != "coverage" {
            assert_eq!(ran.code, Some(0), "{name}:\n{}{}", ran.stdout, ran.stderr);
        }
        match name {
            "pytest" => {
                let metric = |m: &str| parsed.metrics[m];
                assert_eq!(
                    (
                        metric("tests"),
                        metric("failures"),
                        metric("errors"),
                        metric("skipped")
                    ),
                    (2.0, 0.0, 0.0, 0.0)
                );
            }
            "coverage" => {
                assert_eq!(parsed.metrics["line_percent"], 100.0);
                assert_eq!(coverage_total(&project, out.path()), 100.0);
            }
            "bandit" => assert_eq!(parsed.metrics["high"], 0.0),
            _ => {}
        }
    }
}

// --- output no parser understands --------------------------------------------------------------

#[test]
fn garbage_output_is_a_parse_error_for_every_python_preset() {
    // No tool needed: what a crashing tool prints, and an empty /out.
    let project = Project::new("python-clean");
    let out = tempfile::tempdir().unwrap();
    let traceback = "Traceback (most recent call last):\n  File \"/opt/x.py\", line 1, in <module>\nKeyError: 'x'\n";
    for preset in presets::all().filter(|p| {
        matches!(
            p.name,
            "ruff" | "flake8" | "mypy" | "bandit" | "pytest" | "coverage"
        )
    }) {
        for code in [Some(0), Some(1), Some(2), None] {
            let ran = Ran {
                code,
                stdout: traceback.to_owned(),
                stderr: traceback.to_owned(),
            };
            let result = parse(preset.parser, &project, out.path(), &ran);
            assert!(
                result.is_err(),
                "{} read a traceback (exit {code:?}) as {result:?}",
                preset.name
            );
        }
    }
}
