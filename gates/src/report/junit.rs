//! JUnit XML, for the test views of CI systems: a `<testsuite>` per gate and a `<testcase>` per
//! finding (a failure when it fails the gate), per missed threshold, or for the gate as a whole
//! when it passed, could not run (`<error>`) or was skipped.

use quick_xml::events::{BytesDecl, BytesText, Event};
use quick_xml::Writer;

use super::{metrics, place, shown};
use crate::finding::Severity;
use crate::verdict::{GateResult, GateStatus, Verdict};

/// One `<testcase>`.
struct Case {
    name: String,
    verdict: CaseVerdict,
}

enum CaseVerdict {
    Passed,
    /// A `<failure>`: message, type, body.
    Failed(String, String, String),
    /// An `<error>`: the tool broke.
    Errored(String, String),
    Skipped(String),
    /// Passed, with something to say (a finding too mild to fail the gate).
    Noted(String),
}

pub(super) fn render(verdict: &Verdict) -> std::io::Result<String> {
    let suites: Vec<(&GateResult, Vec<Case>)> = verdict
        .gates
        .iter()
        .filter(|gate| shown(gate))
        .map(|gate| (gate, cases(gate)))
        .collect();
    let count = |test: fn(&CaseVerdict) -> bool| {
        suites
            .iter()
            .flat_map(|(_, cases)| cases)
            .filter(|case| test(&case.verdict))
            .count()
            .to_string()
    };
    let mut xml = Writer::new_with_indent(Vec::new(), b' ', 2);
    xml.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    xml.create_element("testsuites")
        .with_attributes([
            ("name", super::title(verdict)),
            ("tests", &count(|_| true)),
            ("failures", &count(|v| matches!(v, CaseVerdict::Failed(..)))),
            ("errors", &count(|v| matches!(v, CaseVerdict::Errored(..)))),
            ("skipped", &count(|v| matches!(v, CaseVerdict::Skipped(_)))),
            ("time", &seconds(verdict.duration_ms)),
        ])
        .write_inner_content(|xml| {
            for (gate, cases) in &suites {
                suite(xml, gate, cases)?;
            }
            Ok(())
        })?;
    Ok(String::from_utf8_lossy(&xml.into_inner()).into_owned())
}

fn suite(xml: &mut Writer<Vec<u8>>, gate: &GateResult, cases: &[Case]) -> std::io::Result<()> {
    let count = |test: fn(&CaseVerdict) -> bool| {
        cases
            .iter()
            .filter(|case| test(&case.verdict))
            .count()
            .to_string()
    };
    xml.create_element("testsuite")
        .with_attributes([
            ("name", clean(&gate.name).as_str()),
            ("tests", &cases.len().to_string()),
            ("failures", &count(|v| matches!(v, CaseVerdict::Failed(..)))),
            ("errors", &count(|v| matches!(v, CaseVerdict::Errored(..)))),
            ("skipped", &count(|v| matches!(v, CaseVerdict::Skipped(_)))),
            ("time", &seconds(gate.duration_ms)),
        ])
        .write_inner_content(|xml| {
            for case in cases {
                let element = xml.create_element("testcase").with_attributes([
                    ("classname", clean(&gate.name).as_str()),
                    ("name", &clean(&case.name)),
                ]);
                match &case.verdict {
                    CaseVerdict::Passed => {
                        element.write_empty()?;
                    }
                    CaseVerdict::Failed(message, kind, body) => {
                        element.write_inner_content(|xml| {
                            xml.create_element("failure")
                                .with_attributes([("message", clean(message).as_str())])
                                .with_attribute(("type", clean(kind).as_str()))
                                .write_text_content(BytesText::new(&clean(body)))?;
                            Ok(())
                        })?;
                    }
                    CaseVerdict::Errored(message, body) => {
                        element.write_inner_content(|xml| {
                            xml.create_element("error")
                                .with_attributes([("message", clean(message).as_str())])
                                .with_attribute(("type", "error"))
                                .write_text_content(BytesText::new(&clean(body)))?;
                            Ok(())
                        })?;
                    }
                    CaseVerdict::Skipped(message) => {
                        element.write_inner_content(|xml| {
                            xml.create_element("skipped")
                                .with_attribute(("message", clean(message).as_str()))
                                .write_empty()?;
                            Ok(())
                        })?;
                    }
                    CaseVerdict::Noted(text) => {
                        element.write_inner_content(|xml| {
                            xml.create_element("system-out")
                                .write_text_content(BytesText::new(&clean(text)))?;
                            Ok(())
                        })?;
                    }
                }
            }
            Ok(())
        })?;
    Ok(())
}

fn cases(gate: &GateResult) -> Vec<Case> {
    let reason = || gate.reason.clone().unwrap_or_default();
    match gate.status {
        GateStatus::Error => {
            let stderr = gate
                .outcome
                .as_ref()
                .and_then(|outcome| outcome["stderr"].as_str())
                .unwrap_or("");
            return vec![Case {
                name: gate.name.clone(),
                verdict: CaseVerdict::Errored(reason(), stderr.to_owned()),
            }];
        }
        GateStatus::Skipped => {
            return vec![Case {
                name: gate.name.clone(),
                verdict: CaseVerdict::Skipped(reason()),
            }]
        }
        GateStatus::Pass | GateStatus::Fail => {}
    }
    let mut cases: Vec<Case> = gate
        .findings
        .iter()
        .map(|finding| {
            let at = place(finding);
            let name = if at.is_empty() {
                finding.rule.clone()
            } else {
                format!("{at} {}", finding.rule)
            };
            let body = format!(
                "{} {} {}: {}",
                at,
                finding.severity.as_str(),
                finding.rule,
                finding.message
            );
            let verdict = if finding.severity <= Severity::Warning {
                CaseVerdict::Failed(finding.message.clone(), finding.rule.clone(), body)
            } else {
                CaseVerdict::Noted(body)
            };
            Case { name, verdict }
        })
        .collect();
    for metric in metrics(gate) {
        if metric.min.is_none() && metric.max.is_none() {
            continue;
        }
        let verdict = if metric.missed() {
            let text = metric.to_string();
            CaseVerdict::Failed(text.clone(), "threshold".into(), text)
        } else {
            CaseVerdict::Passed
        };
        cases.push(Case {
            name: format!("threshold {}", metric.name),
            verdict,
        });
    }
    if gate.status == GateStatus::Fail && !cases.iter().any(|c| failed(&c.verdict)) {
        // Failed for a reason no case above carries (a `diff_` metric's missed lines).
        cases.push(Case {
            name: gate.name.clone(),
            verdict: CaseVerdict::Failed(reason(), "gate".into(), reason()),
        });
    }
    if cases.is_empty() {
        cases.push(Case {
            name: gate.name.clone(),
            verdict: CaseVerdict::Passed,
        });
    }
    cases
}

fn failed(verdict: &CaseVerdict) -> bool {
    matches!(verdict, CaseVerdict::Failed(..))
}

fn seconds(ms: f64) -> String {
    format!("{:.3}", ms / 1000.0)
}

/// XML 1.0 cannot carry most control characters at all, escaped or not (a tool's coloured
/// stderr has ESC): they become U+FFFD so that the report still parses.
fn clean(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\t' | '\n' | '\r' => c,
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => '\u{FFFD}',
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use std::collections::BTreeMap;

    use quick_xml::events::Event;
    use quick_xml::{Reader, XmlVersion};

    use super::super::tests::verdict;
    use super::*;
    use crate::parsers::{self, ParserKind, ToolRun};

    /// Every element read back: its name, its attributes, and the name of its parent.
    fn elements(xml: &str) -> Vec<(String, BTreeMap<String, String>, String)> {
        let mut reader = Reader::from_str(xml);
        let mut stack: Vec<String> = Vec::new();
        let mut found = Vec::new();
        loop {
            let (start, empty) = match reader.read_event().unwrap() {
                Event::Start(start) => (start, false),
                Event::Empty(start) => (start, true),
                Event::End(_) => {
                    stack.pop();
                    continue;
                }
                Event::Eof => break,
                _ => continue,
            };
            let name = start.name().as_ref().to_owned();
            let attributes = start
                .attributes()
                .map(|a| {
                    let a = a.unwrap();
                    let value = a.normalized_value(XmlVersion::Implicit1_0).unwrap();
                    (a.key.as_ref().to_owned(), value.into_owned())
                })
                .collect();
            found.push((
                name.clone(),
                attributes,
                stack.last().cloned().unwrap_or_default(),
            ));
            if !empty {
                stack.push(name);
            }
        }
        found
    }

    #[test]
    fn a_suite_per_gate_a_case_per_finding_a_crash_is_an_error() {
        let xml = render(&verdict()).unwrap();
        let elements = elements(&xml);
        let named = |name: &str| -> Vec<&BTreeMap<String, String>> {
            elements
                .iter()
                .filter(|(n, _, _)| n == name)
                .map(|(_, a, _)| a)
                .collect()
        };
        let root = named("testsuites")[0];
        // 4 lint findings, coverage's threshold, the crash, the skipped tests, fmt's pass.
        assert_eq!(root["tests"], "8", "{xml}");
        assert_eq!(root["failures"], "4", "{xml}");
        assert_eq!(root["errors"], "1", "{xml}");
        assert_eq!(root["skipped"], "1", "{xml}");
        let suites: Vec<&str> = named("testsuite")
            .iter()
            .map(|s| s["name"].as_str())
            .collect();
        assert_eq!(
            suites,
            ["lint", "coverage", "types", "tests", "fmt"],
            "{xml}"
        );
        let lint = named("testsuite")[0];
        assert_eq!(lint["tests"], "4");
        assert_eq!(lint["failures"], "3");
        assert_eq!(lint["time"], "1.234");
        let cases = named("testcase");
        assert_eq!(cases[0]["classname"], "lint");
        assert_eq!(cases[0]["name"], "src/a&b.py:1 F401");
        let failure = named("failure")[1];
        assert_eq!(failure["message"], "<script>alert(1)</script>");
        assert_eq!(failure["type"], "XSS");
        let error = named("error")[0];
        assert_eq!(error["message"], "`mypy` crashed: Traceback, line 3");
        let parent_of = |name: &str| {
            elements
                .iter()
                .find(|(n, _, _)| n == name)
                .map(|(_, _, parent)| parent.clone())
        };
        assert_eq!(parent_of("error").as_deref(), Some("testcase"));
        assert_eq!(named("skipped")[0]["message"], "the job did not succeed");
        assert!(cases.iter().any(|c| c["name"] == "threshold line_percent"));
        assert!(!xml.contains("slow"), "--skip left it out: {xml}");
    }

    /// The project's own JUnit parser, which reads pytest's and other tools' reports, counts
    /// what the suites say.
    #[test]
    fn the_junit_parser_reads_it_back() {
        let xml = render(&verdict()).unwrap();
        let run = ToolRun {
            stdout: &xml,
            ..parsers::test_run("/w")
        };
        let parsed = parsers::parse(ParserKind::Junit, &run).unwrap();
        assert_eq!(parsed.metrics["tests"], 8.0);
        assert_eq!(parsed.metrics["failures"], 4.0);
        assert_eq!(parsed.metrics["errors"], 1.0);
        assert_eq!(parsed.metrics["skipped"], 1.0);
    }

    #[test]
    fn control_characters_do_not_break_the_xml() {
        let mut verdict = verdict();
        verdict.gates[2].outcome = Some(serde_json::json!({"stderr": "\x1b[31mboom\x00\x1b[0m"}));
        let xml = render(&verdict).unwrap();
        assert!(!xml.contains('\x1b'));
        let mut reader = Reader::from_str(&xml);
        let mut texts = String::new();
        loop {
            match reader.read_event().unwrap() {
                Event::Text(text) => texts.push_str(&text.xml10_content()),
                Event::Eof => break,
                _ => {}
            }
        }
        assert!(texts.contains("\u{FFFD}[31mboom"), "{texts}");
    }
}
