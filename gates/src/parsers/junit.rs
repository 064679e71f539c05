//! JUnit XML reports: any tool's (`junit`) and pytest's `--junitxml` (`pytest`).
//!
//! Reports are read from the gate's `/out`: every `*.xml` there whose root is `<testsuites>` or
//! `<testsuite>` (other XML, a Cobertura report next to it, is not a test report), or from
//! stdout when the tool printed the report there. A gate with no report is an error, never a
//! pass with zero tests.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use quick_xml::events::{BytesStart, Event};
use quick_xml::{Reader, XmlVersion};
use regex::Regex;

use super::generic::with_output;
use super::{relative_path, ParseError, Parsed, ToolRun};
use crate::finding::{Finding, Severity};

/// An XML element, read whole: reports are small, and a tree is easier to get right than a
/// stream of events.
#[derive(Debug, Default)]
pub(super) struct Element {
    pub name: String,
    pub attributes: Vec<(String, String)>,
    pub children: Vec<Element>,
    /// The element's own text (CDATA included), entities resolved.
    pub text: String,
}

impl Element {
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|child| child.name == name)
    }
}

/// Parses `text` into its root element; the error says what is wrong and where (byte offset).
pub(super) fn parse_xml(text: &str) -> Result<Element, String> {
    let mut reader = Reader::from_str(text);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let at = |reader: &Reader<&[u8]>| reader.error_position();
    loop {
        let event = reader
            .read_event()
            .map_err(|error| format!("{error} at byte {}", at(&reader)))?;
        match event {
            Event::Start(start) => stack.push(element(&start)?),
            Event::Empty(start) => {
                let element = element(&start)?;
                close(&mut stack, &mut root, element)?;
            }
            Event::End(_) => {
                let element = stack.pop().ok_or_else(|| {
                    format!("a closing tag with no element at byte {}", at(&reader))
                })?;
                close(&mut stack, &mut root, element)?;
            }
            Event::Text(text) => {
                if let Some(open) = stack.last_mut() {
                    open.text.push_str(&text.xml10_content());
                }
            }
            Event::CData(data) => {
                if let Some(open) = stack.last_mut() {
                    open.text.push_str(&data.xml10_content());
                }
            }
            Event::GeneralRef(reference) => {
                let resolved = match reference.resolve_char_ref() {
                    Ok(Some(c)) => Cow::Owned(c.to_string()),
                    Ok(None) => {
                        let name = reference.xml10_content();
                        quick_xml::escape::resolve_predefined_entity(&name)
                            .map(Cow::Borrowed)
                            .ok_or_else(|| format!("unknown entity &{name};"))?
                    }
                    Err(error) => return Err(error.to_string()),
                };
                if let Some(open) = stack.last_mut() {
                    open.text.push_str(&resolved);
                }
            }
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {}
        }
    }
    if let Some(open) = stack.last() {
        return Err(format!(
            "<{}> is not closed (a truncated report?)",
            open.name
        ));
    }
    root.ok_or_else(|| "no XML element".to_owned())
}

fn element(start: &BytesStart<'_>) -> Result<Element, String> {
    let name = local(start.local_name().as_ref());
    let mut attributes = Vec::new();
    for attribute in start.attributes() {
        let attribute = attribute.map_err(|error| format!("in <{name}>: {error}"))?;
        let key = local(attribute.key.local_name().as_ref());
        let value = attribute
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(|error| format!("in <{name} {key}>: {error}"))?;
        attributes.push((key, value.into_owned()));
    }
    Ok(Element {
        name,
        attributes,
        ..Element::default()
    })
}

/// A name without its namespace prefix (`<ns:testsuite>`): reports are matched by local name.
fn local(name: &str) -> String {
    name.to_owned()
}

fn close(
    stack: &mut [Element],
    root: &mut Option<Element>,
    element: Element,
) -> Result<(), String> {
    match stack.last_mut() {
        Some(parent) => parent.children.push(element),
        None if root.is_none() => *root = Some(element),
        None => return Err(format!("a second root element <{}>", element.name)),
    }
    Ok(())
}

/// The files in `dir` whose name ends with `.{extension}`, sorted (a missing directory has
/// none).
pub(super) fn reports(dir: &Path, extension: &str) -> Result<Vec<PathBuf>, ParseError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => {
            return Err(ParseError::ToolFailed(format!(
                "cannot list the report directory {}: {error}",
                dir.display()
            )))
        }
    };
    let mut found: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            path.is_file()
                && path
                    .extension()
                    .is_some_and(|e| e.eq_ignore_ascii_case(extension))
        })
        .collect();
    found.sort();
    Ok(found)
}

pub(super) fn read_report(parser: &'static str, path: &Path) -> Result<String, ParseError> {
    std::fs::read_to_string(path).map_err(|error| {
        ParseError::unreadable(parser, format!("cannot read {}: {error}", path.display()))
    })
}

// --- JUnit -------------------------------------------------------------------------------------

/// How a report's producer writes positions.
#[derive(Clone, Copy, PartialEq)]
enum Flavour {
    Generic,
    /// pytest writes `line` 0-based (`-o junit_family=xunit1` adds `file` and `line`), and its
    /// failure text ends with the `path:line: Error` where the test failed.
    Pytest,
}

/// Any JUnit XML report(s): metrics `tests`, `failures`, `errors`, `skipped` (counted from the
/// test cases, not from the suites' attributes, which some producers leave out), one error
/// finding per failed or errored test case, rule `classname::name`. The exit code is not read:
/// the tool behind a generic report is unknown, and the report is what counts.
pub fn junit(run: &ToolRun<'_>) -> Result<Parsed, ParseError> {
    let suites = junit_reports(run, "junit")?;
    let mut parsed = Parsed::default();
    for suite in &suites {
        read_suites(run, suite, Flavour::Generic, None, &mut parsed);
    }
    Ok(parsed)
}

/// pytest's `--junitxml` report, like `junit`, with pytest's exit codes: 0 passed, 1 tests
/// failed, 2 interrupted (collection errors: the report has them) are read; 3 (internal error),
/// 4 (usage error) and 5 (no tests collected) are pytest failing, as is exit 1 or 2 with no
/// failed or errored test in the report.
pub fn pytest(run: &ToolRun<'_>) -> Result<Parsed, ParseError> {
    let code = run
        .exit_code
        .ok_or_else(|| ParseError::ToolFailed(with_output("pytest was killed by a signal", run)))?;
    let why = match code {
        0..=2 => None,
        3 => Some("an internal error"),
        4 => Some("a usage error"),
        5 => Some("no tests were collected"),
        _ => Some("an exit code pytest does not document"),
    };
    if let Some(why) = why {
        return Err(ParseError::ToolFailed(with_output(
            &format!("pytest exited with {code} ({why})"),
            run,
        )));
    }
    let suites = junit_reports(run, "pytest").map_err(|error| match error {
        ParseError::ToolFailed(why) => ParseError::ToolFailed(with_output(&why, run)),
        other => other,
    })?;
    let mut parsed = Parsed::default();
    for suite in &suites {
        read_suites(run, suite, Flavour::Pytest, None, &mut parsed);
    }
    let broken = metric(&parsed, "failures") + metric(&parsed, "errors");
    if code != 0 && broken == 0.0 {
        return Err(ParseError::ToolFailed(with_output(
            &format!("pytest exited with {code} but its report has no failed test"),
            run,
        )));
    }
    Ok(parsed)
}

fn metric(parsed: &Parsed, name: &str) -> f64 {
    parsed.metrics.get(name).copied().unwrap_or(0.0)
}

/// The root elements of every JUnit report the run left: `*.xml` in `/out`, else stdout.
fn junit_reports(run: &ToolRun<'_>, parser: &'static str) -> Result<Vec<Element>, ParseError> {
    let is_junit = |root: &Element| matches!(root.name.as_str(), "testsuites" | "testsuite");
    let mut roots = Vec::new();
    for path in reports(run.out_dir, "xml")? {
        let text = read_report(parser, &path)?;
        let root = parse_xml(&text).map_err(|why| {
            ParseError::unreadable(parser, format!("{} is not XML: {why}", path.display()))
        })?;
        if is_junit(&root) {
            roots.push(root);
        }
    }
    if roots.is_empty() && run.stdout.trim_start().starts_with('<') {
        let root = parse_xml(run.stdout).map_err(|why| {
            ParseError::unreadable(parser, format!("stdout is not a JUnit report: {why}"))
        })?;
        if is_junit(&root) {
            roots.push(root);
        }
    }
    if roots.is_empty() {
        return Err(ParseError::ToolFailed(format!(
            "no JUnit XML report (<testsuites> or <testsuite>) in {} or on stdout",
            run.out_dir.display()
        )));
    }
    Ok(roots)
}

/// Adds the test cases under `element` (suites nest) to `parsed`.
fn read_suites(
    run: &ToolRun<'_>,
    element: &Element,
    flavour: Flavour,
    suite_file: Option<&str>,
    parsed: &mut Parsed,
) {
    for name in ["tests", "failures", "errors", "skipped"] {
        parsed.metrics.entry(name.to_owned()).or_insert(0.0);
    }
    // Some producers (jest, vitest) put the file on the suite rather than on each case.
    let suite_file = element.attribute("file").or(suite_file);
    for child in &element.children {
        match child.name.as_str() {
            "testsuite" | "testsuites" => read_suites(run, child, flavour, suite_file, parsed),
            "testcase" => read_case(run, child, flavour, suite_file, parsed),
            _ => {}
        }
    }
}

fn read_case(
    run: &ToolRun<'_>,
    case: &Element,
    flavour: Flavour,
    suite_file: Option<&str>,
    parsed: &mut Parsed,
) {
    *parsed.metrics.entry("tests".to_owned()).or_insert(0.0) += 1.0;
    let name = case.attribute("name").unwrap_or("");
    let rule = match case.attribute("classname").filter(|c| !c.is_empty()) {
        Some(class) => format!("{class}::{name}"),
        None => name.to_owned(),
    };
    let file = case.attribute("file").or(suite_file);
    if case.child("skipped").is_some() {
        *parsed.metrics.entry("skipped".to_owned()).or_insert(0.0) += 1.0;
    }
    for (kind, metric) in [("failure", "failures"), ("error", "errors")] {
        let problems: Vec<&Element> = case.children.iter().filter(|c| c.name == kind).collect();
        if problems.is_empty() {
            continue;
        }
        *parsed.metrics.entry(metric.to_owned()).or_insert(0.0) += 1.0;
        for problem in problems {
            let mut finding = Finding::new(
                rule.clone(),
                Severity::Error,
                message(problem, kind, flavour),
            );
            if let Some(file) = file {
                let line = match flavour {
                    Flavour::Pytest => failure_line(&problem.text, file).or_else(|| {
                        case.attribute("line")
                            .and_then(|l| l.trim().parse::<u32>().ok())
                            .map(|l| l + 1)
                    }),
                    Flavour::Generic => case
                        .attribute("line")
                        .and_then(|l| l.trim().parse::<u32>().ok())
                        .filter(|l| *l > 0),
                };
                finding = finding.at(relative_path(run, file), line, None);
            }
            parsed.findings.push(finding);
        }
    }
}

/// What went wrong, in one message: the `message` attribute, else the first line of the text.
/// pytest's collection errors say only "collection failure" there; the exception is in the text.
fn message(problem: &Element, kind: &str, flavour: Flavour) -> String {
    let text_line = |pick_last: bool| {
        let mut lines = problem
            .text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty());
        if pick_last {
            lines
                .rfind(|l| l.starts_with("E "))
                .map(|l| l.trim_start_matches('E').trim())
        } else {
            lines.next()
        }
    };
    let attribute = problem
        .attribute("message")
        .map(str::trim)
        .filter(|m| !m.is_empty());
    match attribute {
        Some(message) if flavour == Flavour::Pytest && message == "collection failure" => {
            match text_line(true) {
                Some(exception) => format!("{message}: {exception}"),
                None => message.to_owned(),
            }
        }
        Some(message) => message.to_owned(),
        None => text_line(false).map_or_else(|| kind.to_owned(), str::to_owned),
    }
}

static TRACEBACK_LOCATION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?P<path>\S[^:]*):(?P<line>\d+): ")
        .unwrap_or_else(|error| unreachable!("a fixed regex: {error}"))
});

/// The line of `file` where the test failed: the last `path:line: ...` of pytest's traceback
/// that is in the test's own file (the assertion, rather than the `def`).
fn failure_line(text: &str, file: &str) -> Option<u32> {
    text.lines()
        .rev()
        .filter_map(|line| TRACEBACK_LOCATION.captures(line))
        .find(|caps| {
            let path = &caps["path"];
            path == file || path.ends_with(&format!("/{file}"))
        })
        .and_then(|caps| caps["line"].parse().ok())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

    use super::*;

    fn run<'a>(exit_code: Option<i32>, out_dir: &'a Path, stdout: &'a str) -> ToolRun<'a> {
        ToolRun {
            exit_code,
            stdout,
            out_dir,
            ..crate::parsers::test_run("/home/dev/proj")
        }
    }

    const PYTEST: &str = r#"<?xml version="1.0" encoding="utf-8"?><testsuites name="pytest tests"><testsuite name="pytest" errors="1" failures="1" skipped="1" tests="4"><testcase classname="tests.test_core" name="test_add" file="tests/test_core.py" line="3" time="0.000" /><testcase classname="tests.test_core" name="test_add_wrong" file="tests/test_core.py" line="11" time="0.001"><failure message="assert 4 == 5&#10; +  where 4 = add(2, 2)">def test_add_wrong():
&gt;       assert add(2, 2) == 5
E       assert 4 == 5

tests/test_core.py:13: AssertionError</failure></testcase><testcase classname="tests.test_core" name="test_skip" file="tests/test_core.py" line="20"><skipped type="pytest.skip" message="later">/workspace/tests/test_core.py:21: later</skipped></testcase><testcase classname="" name="tests.test_broken" file="tests/test_broken.py" time="0.000"><error message="collection failure">ImportError while importing test module
tests/test_broken.py:1: in &lt;module&gt;
    import nonexistent_mod
E   ModuleNotFoundError: No module named 'nonexistent_mod'</error></testcase></testsuite></testsuites>"#;

    #[test]
    fn pytest_report_metrics_and_findings() {
        let out = tempfile::tempdir().unwrap();
        std::fs::write(out.path().join("junit.xml"), PYTEST).unwrap();
        // Not a test report: ignored.
        std::fs::write(
            out.path().join("coverage.xml"),
            r#"<coverage line-rate="1"/>"#,
        )
        .unwrap();
        let parsed = pytest(&run(Some(2), out.path(), "")).unwrap();
        let metric = |name: &str| parsed.metrics[name];
        assert_eq!(
            (
                metric("tests"),
                metric("failures"),
                metric("errors"),
                metric("skipped")
            ),
            (4.0, 1.0, 1.0, 1.0)
        );
        let [failed, broken] = &parsed.findings[..] else {
            panic!("{:?}", parsed.findings)
        };
        assert_eq!(failed.rule, "tests.test_core::test_add_wrong");
        assert_eq!(failed.message, "assert 4 == 5\n +  where 4 = add(2, 2)");
        assert_eq!(
            (failed.path.as_deref(), failed.line),
            (Some("tests/test_core.py"), Some(13))
        );
        assert_eq!(broken.rule, "tests.test_broken");
        assert_eq!(
            broken.message,
            "collection failure: ModuleNotFoundError: No module named 'nonexistent_mod'"
        );
        assert_eq!(broken.line, Some(1));
    }

    #[test]
    fn pytest_exit_codes() {
        let out = tempfile::tempdir().unwrap();
        let empty = r#"<testsuites><testsuite name="pytest" tests="0"/></testsuites>"#;
        std::fs::write(out.path().join("junit.xml"), empty).unwrap();
        for code in [3, 4, 5, 137] {
            assert!(
                matches!(
                    pytest(&run(Some(code), out.path(), "")),
                    Err(ParseError::ToolFailed(_))
                ),
                "exit {code}"
            );
        }
        assert!(matches!(
            pytest(&run(Some(1), out.path(), "")),
            Err(ParseError::ToolFailed(_))
        ));
        assert!(matches!(
            pytest(&run(None, out.path(), "")),
            Err(ParseError::ToolFailed(_))
        ));
        assert_eq!(
            pytest(&run(Some(0), out.path(), "")).unwrap().metrics["tests"],
            0.0
        );
    }

    #[test]
    fn missing_or_broken_reports_are_errors() {
        let out = tempfile::tempdir().unwrap();
        let garbage = "Traceback (most recent call last):\n  File \"x\", line 1\n";
        assert!(matches!(
            pytest(&run(Some(1), out.path(), garbage)),
            Err(ParseError::ToolFailed(_))
        ));
        assert!(matches!(
            junit(&run(Some(0), out.path(), garbage)),
            Err(ParseError::ToolFailed(_))
        ));
        std::fs::write(out.path().join("junit.xml"), &PYTEST[..PYTEST.len() / 2]).unwrap();
        assert!(matches!(
            pytest(&run(Some(1), out.path(), "")),
            Err(ParseError::Unreadable { .. })
        ));
        std::fs::write(out.path().join("junit.xml"), garbage).unwrap();
        assert!(matches!(
            junit(&run(Some(1), out.path(), "")),
            Err(ParseError::Unreadable { .. })
        ));
    }

    #[test]
    fn junit_generic_nested_suites_and_stdout() {
        let out = tempfile::tempdir().unwrap();
        let report = r#"<testsuites>
          <testsuite name="outer" file="/workspace/src/a.test.js">
            <testsuite name="inner">
              <testcase classname="a" name="adds" line="7"><failure>expected 3
got 4</failure></testcase>
              <testcase classname="a" name="subtracts"/>
            </testsuite>
            <testcase name="ignored"><skipped/></testcase>
          </testsuite>
        </testsuites>"#;
        let parsed = junit(&run(Some(1), out.path(), report)).unwrap();
        assert_eq!(
            (
                parsed.metrics["tests"],
                parsed.metrics["failures"],
                parsed.metrics["skipped"]
            ),
            (3.0, 1.0, 1.0)
        );
        let finding = &parsed.findings[0];
        assert_eq!(
            (finding.rule.as_str(), finding.message.as_str()),
            ("a::adds", "expected 3")
        );
        assert_eq!(
            (finding.path.as_deref(), finding.line),
            (Some("src/a.test.js"), Some(7))
        );
    }

    #[test]
    fn xml_entities_cdata_and_errors() {
        let root = parse_xml(
            "<?xml version=\"1.0\"?><!-- c --><a x=\"1 &amp; 2&#10;\"><b><![CDATA[<raw>]]> &lt;&#x41;</b></a>",
        )
        .unwrap();
        assert_eq!(root.attribute("x"), Some("1 & 2\n"));
        assert_eq!(root.child("b").unwrap().text, "<raw> <A");
        assert!(parse_xml("<a><b></a>").is_err());
        assert!(parse_xml("<a>").is_err());
        assert!(parse_xml("<a/><b/>").is_err());
        assert!(parse_xml("").is_err());
        assert!(parse_xml("<a>&bogus;</a>").is_err());
    }
}
