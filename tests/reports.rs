//! Reports end to end, from one `sandbox gate` run on a project whose gates need no external
//! tool: SARIF valid against the official schema, JUnit XML read back, GitHub annotations
//! escaped and the Markdown summary appended to $GITHUB_STEP_SUMMARY, an HTML page that
//! headless Chromium renders (desktop and phone widths) without errors or network requests,
//! colour only on a terminal without NO_COLOR, and bad `--report` values refused before any
//! gate runs.
#![allow(clippy::expect_used, reason = "a test fails loudly on broken set-up")]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{run, sandbox_command, Ran, Workspace, SANDBOX};
use quick_xml::events::Event;
use serde_json::Value;

/// Findings in ruff's JSON, with what breaks careless writers: markup, `&` in a path, commas,
/// colons, percent signs and newlines.
const LINT: &str = r#"[
  {"code": "F401", "message": "`os` imported but unused", "filename": "src/a&b.py",
   "location": {"row": 1, "column": 8}, "end_location": {"row": 1, "column": 10}},
  {"code": "S999", "message": "<script>alert(1)</script>", "filename": "src/a&b.py",
   "location": {"row": 3, "column": 1}, "end_location": {"row": 3, "column": 5}},
  {"code": "E501", "message": "50% done, x: y\nsecond line", "filename": "odd, name: here.py",
   "location": {"row": 2, "column": 1}, "end_location": {"row": 2, "column": 4}}
]"#;

const COVERAGE: &str = r#"{"totals": {"percent_covered": 40.0, "num_statements": 5,
  "covered_lines": 2}, "files": {"src/a&b.py": {"executed_lines": [1, 2],
  "missing_lines": [3, 4, 5]}}}"#;

const CONFIG: &str = r#"
[[gate]]
name = "lint"
command = ["sh", "-c", "cat lint.json; exit 1"]
parser = "ruff"

[[gate]]
name = "coverage"
command = ["sh", "-c", "cat coverage.json"]
parser = "coverage-json"
min = { line_percent = 90 }

[[gate]]
name = "crash"
command = ["sandbox-no-such-linter", "."]

[[gate]]
name = "fine"
command = ["true"]
"#;

fn project() -> Workspace {
    let workspace = Workspace::new();
    workspace.write("sandbox.toml", CONFIG);
    workspace.write("lint.json", LINT);
    workspace.write("coverage.json", COVERAGE);
    std::fs::create_dir(workspace.file("src")).expect("mkdir");
    workspace.write(
        "src/a&b.py",
        "import os\nx = 1\nprint('<b>' & x)\ny = 2\nz = 3\n",
    );
    workspace.write("odd, name: here.py", "a = 1\nb = 2\n");
    common::open_to_jobs(workspace.path());
    workspace
}

/// `sandbox gate --workspace WS --backend native ARGS...` with `env` set.
fn gate(workspace: &Workspace, args: &[&str], env: &[(&str, &Path)]) -> Ran {
    let mut command = sandbox_command(&["gate", "--backend", "native", "--workspace"]);
    command
        .arg(workspace.path())
        .args(args)
        .env_remove("GITHUB_STEP_SUMMARY")
        .env_remove("NO_COLOR");
    for (key, value) in env {
        command.env(key, value);
    }
    run(&mut command)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The reports of one run: every format, into a directory of their own.
struct Reports {
    dir: tempfile::TempDir,
    ran: Ran,
}

impl Reports {
    fn write(workspace: &Workspace) -> Reports {
        let dir = tempfile::tempdir().expect("tempdir");
        let summary = dir.path().join("summary.md");
        std::fs::write(&summary, "# an earlier step\n").expect("summary");
        let report =
            |format: &str, name: &str| format!("{format}={}", dir.path().join(name).display());
        let (sarif, junit, html) = (
            report("sarif", "a.sarif"),
            report("junit", "b.xml"),
            report("html", "c.html"),
        );
        let ran = gate(
            workspace,
            &[
                "--report", &sarif, "--report", &junit, "--report", &html, "--format", "github",
            ],
            &[("GITHUB_STEP_SUMMARY", &summary)],
        );
        Reports { dir, ran }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name))
            .unwrap_or_else(|error| panic!("{name}: {error}\n{:?}", self.ran))
    }
}

#[test]
fn github_annotations_are_escaped_and_the_step_summary_is_appended() {
    let workspace = project();
    let reports = Reports::write(&workspace);
    assert_eq!(reports.ran.code, 1, "{:?}", reports.ran);
    let stdout = &reports.ran.stdout;
    let lines: Vec<&str> = stdout.lines().collect();
    for expected in [
        "::error file=src/a&b.py,line=1,col=8,endLine=1,endColumn=10,title=F401 (lint)::`os` imported but unused",
        "::error file=odd%2C name%3A here.py,line=2,col=1,endLine=2,endColumn=4,title=E501 (lint)::50%25 done, x: y%0Asecond line",
        "::error title=gate coverage missed a threshold::line_percent 40 (min 90)",
    ] {
        assert!(lines.contains(&expected), "{expected}\n{:?}", reports.ran);
    }
    assert!(
        lines.iter().any(
            |l| l.starts_with("::error title=gate crash could not run::")
                && l.contains("sandbox-no-such-linter")
        ),
        "{:?}",
        reports.ran
    );
    // Nothing but workflow commands: a message cannot start a command of its own.
    assert!(lines.iter().all(|line| line.starts_with("::")), "{stdout}");

    let summary = reports.read("summary.md");
    assert!(
        summary.starts_with("# an earlier step\n\n## ❌ sandbox gate: fail"),
        "{summary}"
    );
    assert!(
        summary.contains("| coverage | custom | ❌ fail | 0 | **line\\_percent 40 (min 90)**<br>"),
        "{summary}"
    );
    assert!(
        summary.contains("\\<script\\>alert(1)\\</script\\>"),
        "{summary}"
    );
}

/// The official schema, with its one pattern that is not a valid regular expression corrected
/// (see gates/tests/data/README.md).
fn sarif_schema() -> jsonschema::Validator {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("gates/tests/data/sarif-2.1.0-rtm.5.json");
    let text = std::fs::read_to_string(path).expect("the vendored schema");
    let broken = r#""^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}]?$""#;
    assert!(text.contains(broken), "the vendored schema changed");
    let text = text.replace(broken, r#""^[a-zA-Z]{2}(-[a-zA-Z]{2})?$""#);
    let schema: Value = serde_json::from_str(&text).expect("schema JSON");
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("the schema compiles")
}

#[test]
fn sarif_is_valid_with_a_run_per_gate_and_fingerprints() {
    let workspace = project();
    let reports = Reports::write(&workspace);
    let log: Value = serde_json::from_str(&reports.read("a.sarif")).expect("SARIF is JSON");
    let errors: Vec<String> = sarif_schema()
        .iter_errors(&log)
        .map(|error| format!("{error} at {}", error.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let runs = log["runs"].as_array().expect("runs");
    let ids: Vec<&str> = runs
        .iter()
        .map(|run| run["automationDetails"]["id"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(ids, ["lint/", "coverage/", "crash/", "fine/"]);
    let lint = &runs[0];
    let results = lint["results"].as_array().expect("results");
    assert_eq!(results.len(), 3, "{lint:#}");
    let location = &results[0]["locations"][0]["physicalLocation"];
    assert_eq!(location["artifactLocation"]["uri"], "src/a%26b.py");
    assert_eq!(location["artifactLocation"]["uriBaseId"], "%SRCROOT%");
    assert_eq!(location["region"]["startLine"], 1);
    for result in results {
        let fingerprint = result["partialFingerprints"]["sandboxFingerprint/v1"].as_str();
        assert_eq!(fingerprint.map(str::len), Some(32), "{result:#}");
        let index = result["ruleIndex"].as_u64().expect("ruleIndex") as usize;
        assert_eq!(
            lint["tool"]["driver"]["rules"][index]["id"],
            result["ruleId"]
        );
    }
    let crash = &runs[2]["invocations"][0];
    assert_eq!(crash["executionSuccessful"], false, "{crash:#}");
    let reason = crash["toolExecutionNotifications"][0]["message"]["text"]
        .as_str()
        .unwrap_or("");
    assert!(reason.contains("sandbox-no-such-linter"), "{crash:#}");
    // The same finding in a second run has the same fingerprint: code scanning sees one alert.
    let again = Reports::write(&workspace);
    let log_again: Value = serde_json::from_str(&again.read("a.sarif")).expect("SARIF");
    assert_eq!(
        log_again["runs"][0]["results"][1]["partialFingerprints"],
        results[1]["partialFingerprints"]
    );
}

/// Every element of an XML document: name, attributes, and the name of its parent.
fn xml_elements(xml: &str) -> Vec<(String, BTreeMap<String, String>, String)> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut open: Vec<String> = Vec::new();
    let mut found = Vec::new();
    loop {
        let (start, empty) = match reader.read_event().expect("well-formed XML") {
            Event::Start(start) => (start, false),
            Event::Empty(start) => (start, true),
            Event::End(_) => {
                open.pop();
                continue;
            }
            Event::Eof => break,
            _ => continue,
        };
        let name = start.name().as_ref().to_owned();
        let attributes = start
            .attributes()
            .map(|attribute| {
                let attribute = attribute.expect("attribute");
                let value = attribute
                    .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                    .expect("attribute value");
                (attribute.key.as_ref().to_owned(), value.into_owned())
            })
            .collect();
        found.push((
            name.clone(),
            attributes,
            open.last().cloned().unwrap_or_default(),
        ));
        if !empty {
            open.push(name);
        }
    }
    found
}

#[test]
fn junit_reads_back_with_failures_for_findings_and_an_error_for_a_crash() {
    let workspace = project();
    let reports = Reports::write(&workspace);
    let elements = xml_elements(&reports.read("b.xml"));
    let all = |name: &str| -> Vec<&BTreeMap<String, String>> {
        elements
            .iter()
            .filter(|(n, _, _)| n == name)
            .map(|(_, attributes, _)| attributes)
            .collect()
    };
    let root = all("testsuites")[0];
    // 3 findings + coverage's threshold + the crash + fine's pass.
    assert_eq!(root["tests"], "6", "{root:?}");
    assert_eq!(root["failures"], "4", "{root:?}");
    assert_eq!(root["errors"], "1", "{root:?}");
    let suites: Vec<&str> = all("testsuite")
        .iter()
        .map(|s| s["name"].as_str())
        .collect();
    assert_eq!(suites, ["lint", "coverage", "crash", "fine"]);
    let cases = all("testcase");
    assert_eq!(cases[0]["classname"], "lint");
    assert_eq!(cases[0]["name"], "src/a&b.py:1 F401");
    assert_eq!(all("failure")[1]["message"], "<script>alert(1)</script>");
    let error = elements
        .iter()
        .find(|(name, _, _)| name == "error")
        .expect("the crash is an <error>");
    assert_eq!(error.2, "testcase");
    assert!(error.1["message"].contains("sandbox-no-such-linter"));
    let crash = cases
        .iter()
        .find(|c| c["classname"] == "crash")
        .expect("crash");
    assert_eq!(crash["name"], "crash");
}

fn chromium() -> Option<PathBuf> {
    let found = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join("chromium"))
        .find(|path| path.is_file());
    if found.is_none() {
        common::skip("chromium is missing: run scripts/setup");
    }
    found
}

/// What headless Chromium did with a page.
struct Rendered {
    stdout: String,
    stderr: String,
    /// Its network log (`--log-net-log`): every request, with the site that made it.
    net_log: Value,
}

/// Runs headless Chromium on `page` with `mode` (`--screenshot=...` or `--dump-dom`): a
/// profile of its own, no proxy, every host name unresolvable, so nothing leaves the machine.
fn render(chromium: &Path, page: &Path, width: u32, height: u32, mode: &str) -> Rendered {
    let scratch = tempfile::tempdir().expect("tempdir");
    let net_log = scratch.path().join("net.json");
    let mut child = Command::new(chromium)
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-proxy-server",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--no-first-run",
            "--disable-background-networking",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!(
            "--user-data-dir={}",
            scratch.path().join("profile").display()
        ))
        .arg(format!("--log-net-log={}", net_log.display()))
        .arg(format!("--window-size={width},{height}"))
        .arg(mode)
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    let deadline = Instant::now() + Duration::from_secs(90);
    while child.try_wait().expect("wait for chromium").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium did not finish within 90 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let output = child.wait_with_output().expect("chromium output");
    assert!(
        output.status.success(),
        "chromium: {}",
        text(&output.stderr)
    );
    let net_log = std::fs::read_to_string(&net_log).expect("chromium's net log");
    Rendered {
        stdout: text(&output.stdout),
        stderr: text(&output.stderr),
        net_log: serde_json::from_str(&net_log).expect("net log JSON"),
    }
}

impl Rendered {
    /// Requests the page made (Chromium's own background requests have no file:// site):
    /// each a URL. They fail here, but a report must not try.
    fn page_requests(&self) -> Vec<String> {
        let events = self.net_log["events"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        events
            .iter()
            .filter(|event| {
                let key = event["params"]["network_isolation_key"]
                    .as_str()
                    .unwrap_or("");
                key.contains("file://")
            })
            .filter_map(|event| event["params"]["url"].as_str().map(str::to_owned))
            .filter(|url| !url.starts_with("file:"))
            .collect()
    }

    fn page_errors(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|line| {
                line.contains("Uncaught")
                    || line.contains("Failed to load")
                    || (line.contains("CONSOLE") && line.contains("rror"))
            })
            .collect()
    }
}

fn assert_png(path: &Path) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is not a PNG",
        path.display()
    );
    // A blank page compresses to a few KiB; the report's tables and source lines do not.
    assert!(
        bytes.len() > 20_000,
        "{} is only {} bytes",
        path.display(),
        bytes.len()
    );
}

#[test]
fn the_html_report_renders_in_chromium_on_a_desktop_and_a_phone() {
    let Some(chromium) = chromium() else {
        return;
    };
    let workspace = project();
    let reports = Reports::write(&workspace);
    let page = reports.path("c.html");
    let html = reports.read("c.html");
    assert!(!html.contains("<script>alert"), "a finding injected markup");
    for (width, height) in [(1280, 2000), (390, 844)] {
        let shot = reports.path(&format!("shot-{width}.png"));
        let rendered = render(
            &chromium,
            &page,
            width,
            height,
            &format!("--screenshot={}", shot.display()),
        );
        assert_png(&shot);
        assert!(
            rendered.page_errors().is_empty(),
            "{:?}",
            rendered.page_errors()
        );
        assert!(
            rendered.page_requests().is_empty(),
            "{:?}",
            rendered.page_requests()
        );
    }
    let dom = render(&chromium, &page, 1280, 2000, "--dump-dom");
    for expected in [
        "<title>sandbox gate: fail</title>",
        "<summary>src/a&amp;b.py <span class=\"muted\">(2)</span></summary>",
        "&lt;script&gt;alert(1)&lt;/script&gt;",
        "print('&lt;b&gt;' &amp; x)",
        "line_percent 40 (min 90)",
        "<td data-label=\"missing\">3–5</td>",
    ] {
        assert!(dom.stdout.contains(expected), "{expected}\n{}", dom.stdout);
    }
}

/// The check itself can fail: a page that fetches and throws is caught.
#[test]
fn the_chromium_check_catches_a_page_that_fetches_or_throws() {
    let Some(chromium) = chromium() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let page = dir.path().join("bad.html");
    std::fs::write(
        &page,
        "<!DOCTYPE html><img src=\"https://example.com/x.png\"><script>missing()</script>",
    )
    .expect("write");
    let rendered = render(&chromium, &page, 800, 600, "--dump-dom");
    assert!(
        rendered
            .page_requests()
            .iter()
            .any(|url| url.starts_with("https://example.com/")),
        "{:?}",
        rendered.page_requests()
    );
    assert!(!rendered.page_errors().is_empty(), "{}", rendered.stderr);
}

#[test]
fn bad_report_values_are_usage_errors_before_any_gate_runs() {
    let workspace = project();
    let missing_dir = workspace.file("no/such/dir/r.sarif");
    let missing_dir = format!("sarif={}", missing_dir.display());
    for (args, message) in [
        (
            vec!["--report", "sariff=x.sarif"],
            "unknown report format `sariff`",
        ),
        (vec!["--report", "x.sarif"], "is not FORMAT=PATH"),
        (vec!["--report", "sarif="], "names no file"),
        (vec!["--format", "pdf"], "the formats are json, sarif"),
        (vec!["--report", &missing_dir], "there is no directory"),
    ] {
        let ran = gate(&workspace, &args, &[]);
        let stderr = &ran.stderr;
        assert_eq!(ran.code, 2, "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        assert!(ran.stdout.is_empty(), "{args:?}");
    }
    assert!(
        !workspace.file(".sandbox").exists(),
        "a gate ran before the arguments were checked"
    );
}

#[test]
fn a_pipe_gets_json_and_a_terminal_gets_colour_unless_no_color() {
    let workspace = project();
    let piped = gate(&workspace, &[], &[]);
    let verdict: Value = serde_json::from_str(&piped.stdout).expect("JSON on a pipe");
    assert_eq!(verdict["schema"], "sandbox/verdict@1");
    let old = gate(&workspace, &["--output", "text"], &[]);
    assert!(old.stdout.starts_with("gate "), "--output text still works");
    assert!(!old.stdout.contains('\x1b'), "colour on a pipe");

    // A terminal: `script` gives the command a pseudo-terminal. Its stderr (where a terminal
    // also gets the progress display, cursor codes and all) is left out: this is about the
    // report on stdout.
    let on_terminal = |no_color: Option<&str>| {
        let line = format!(
            "{SANDBOX} gate --backend native --workspace {} 2>/dev/null",
            workspace.path().display()
        );
        let mut command = Command::new("script");
        command
            .args(["-qec", &line, "/dev/null"])
            .env_remove("NO_COLOR")
            .stdin(Stdio::null());
        if let Some(value) = no_color {
            command.env("NO_COLOR", value);
        }
        text(&command.output().expect("script").stdout)
    };
    let coloured = on_terminal(None);
    assert!(coloured.contains("\x1b[31mfail"), "{coloured}");
    assert!(
        coloured.contains("verdict: fail"),
        "text on a terminal: {coloured}"
    );
    assert!(!on_terminal(Some("1")).contains('\x1b'));
    // NO_COLOR set but empty does not count (no-color.org).
    assert!(on_terminal(Some("")).contains('\x1b'));
}

/// `check` takes the same flags; its reports carry the job's Outcome, and a failed job's
/// skipped gates are `<skipped/>` in JUnit.
#[test]
fn check_reports_carry_the_job() {
    let workspace = project();
    let dir = tempfile::tempdir().expect("tempdir");
    let junit = dir.path().join("check.xml");
    let ran = run(
        sandbox_command(&["check", "--backend", "native", "--workspace"])
            .arg(workspace.path())
            .args(["--format", "markdown", "--report"])
            .arg(format!("junit={}", junit.display()))
            .args(["--", "sh", "-c", "echo new > new.txt; exit 4"]),
    );
    let markdown = &ran.stdout;
    assert_eq!(ran.code, 1, "{markdown}{}", ran.stderr);
    assert!(
        markdown.starts_with("## ❌ sandbox check: fail"),
        "{markdown}"
    );
    assert!(
        markdown.contains(
            "### Job\n\nexited (exit 4), limits hit: none, changes (1 added, 0 modified, 0 deleted) written back: no"
        ),
        "{markdown}"
    );
    let elements = xml_elements(&std::fs::read_to_string(&junit).expect("junit written"));
    let skipped = elements
        .iter()
        .filter(|(name, _, _)| name == "skipped")
        .count();
    assert_eq!(skipped, 4, "{elements:?}");
}
