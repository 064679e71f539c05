//! GitHub Actions workflow commands: an annotation per finding (`::error file=...,line=...::`),
//! per gate that could not run or missed a threshold, and for a failed job. GitHub shows at
//! most 10 annotations of each level in a step, so the worst come first, each level is capped,
//! and one last notice says how many were left out. (The step summary is Markdown: `markdown`.)

use super::{metrics, show_bidi, shown};
use crate::finding::{Finding, Severity};
use crate::verdict::{GateStatus, Verdict};

/// Annotations GitHub shows per level in one step.
const PER_LEVEL: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    Error,
    Warning,
    Notice,
}

impl Level {
    fn command(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Notice => "notice",
        }
    }
}

struct Annotation {
    level: Level,
    properties: Vec<(&'static str, String)>,
    message: String,
}

impl Annotation {
    fn titled(level: Level, title: String, message: String) -> Annotation {
        Annotation {
            level,
            properties: vec![("title", title)],
            message,
        }
    }

    fn line(&self) -> String {
        let properties: Vec<String> = self
            .properties
            .iter()
            .map(|(key, value)| format!("{key}={}", escape_property(value)))
            .collect();
        let separator = if properties.is_empty() { "" } else { " " };
        format!(
            "::{}{separator}{}::{}\n",
            self.level.command(),
            properties.join(","),
            escape_data(&self.message)
        )
    }
}

pub(super) fn render(verdict: &Verdict) -> String {
    let mut annotations = problems(verdict);
    annotations.extend(super::worst_first(verdict).into_iter().map(annotation));
    // Stable: within a level, the order above (gate problems, then findings worst first).
    annotations.sort_by_key(|annotation| annotation.level);
    let count = |level| annotations.iter().filter(|a| a.level == level).count();
    let (errors, warnings, notices) = (
        count(Level::Error),
        count(Level::Warning),
        count(Level::Notice),
    );
    let over = errors > PER_LEVEL || warnings > PER_LEVEL || notices > PER_LEVEL;
    // The closing notice takes one of the notices' places.
    let notice_cap = if over { PER_LEVEL - 1 } else { PER_LEVEL };
    let cap = |level| match level {
        Level::Notice => notice_cap,
        Level::Error | Level::Warning => PER_LEVEL,
    };
    let mut text = String::new();
    let mut shown = [0usize; 3];
    for annotation in &annotations {
        let seen = &mut shown[annotation.level as usize];
        if *seen < cap(annotation.level) {
            *seen += 1;
            text.push_str(&annotation.line());
        }
    }
    if over {
        let left = |total: usize, level: Level| total - shown[level as usize];
        let closing = Annotation::titled(
            Level::Notice,
            "sandbox: more findings".into(),
            format!(
                "{} more annotation(s) not shown ({} error, {} warning, {} notice): GitHub shows \
                 {PER_LEVEL} of each level per step. The step summary and the JSON or SARIF \
                 report have them all.",
                left(errors, Level::Error)
                    + left(warnings, Level::Warning)
                    + left(notices, Level::Notice),
                left(errors, Level::Error),
                left(warnings, Level::Warning),
                left(notices, Level::Notice),
            ),
        );
        text.push_str(&closing.line());
    }
    text
}

/// What failed beyond findings: the job, gates that could not run, missed thresholds.
fn problems(verdict: &Verdict) -> Vec<Annotation> {
    let mut found = Vec::new();
    if let Some(job) = &verdict.job {
        if job["status"] != "exited" || job["exit_code"] != 0 {
            found.push(Annotation::titled(
                Level::Error,
                "the job failed".into(),
                super::job_line(job),
            ));
        }
    }
    for gate in verdict.gates.iter().filter(|gate| shown(gate)) {
        let reason = gate.reason.clone().unwrap_or_default();
        match gate.status {
            GateStatus::Error => found.push(Annotation::titled(
                Level::Error,
                format!("gate {} could not run", gate.name),
                reason,
            )),
            GateStatus::Fail => {
                for metric in metrics(gate).iter().filter(|metric| metric.missed()) {
                    found.push(Annotation::titled(
                        Level::Error,
                        format!("gate {} missed a threshold", gate.name),
                        metric.to_string(),
                    ));
                }
                if gate.findings.is_empty() && !metrics(gate).iter().any(|m| m.missed()) {
                    found.push(Annotation::titled(
                        Level::Error,
                        format!("gate {} failed", gate.name),
                        reason,
                    ));
                }
            }
            GateStatus::Pass | GateStatus::Skipped => {}
        }
    }
    found
}

fn annotation(finding: &Finding) -> Annotation {
    let level = match finding.severity {
        Severity::Error => Level::Error,
        Severity::Warning => Level::Warning,
        Severity::Note => Level::Notice,
    };
    let mut properties = Vec::new();
    if let Some(path) = &finding.path {
        properties.push(("file", path.clone()));
        if let Some(line) = finding.line.filter(|line| *line >= 1) {
            properties.push(("line", line.to_string()));
            let end_line = finding.end_line.filter(|end| *end >= line);
            // GitHub takes columns only for an annotation on one line.
            let one_line_span = end_line.is_none_or(|end| end == line);
            if let Some(column) = finding.column.filter(|c| *c >= 1 && one_line_span) {
                properties.push(("col", column.to_string()));
            }
            if let Some(end) = end_line {
                properties.push(("endLine", end.to_string()));
            }
            if let Some(column) = finding.end_column.filter(|c| *c >= 1 && one_line_span) {
                properties.push(("endColumn", column.to_string()));
            }
        }
    }
    properties.push(("title", format!("{} ({})", finding.rule, finding.gate)));
    let message = if finding.message.trim().is_empty() {
        finding.rule.clone()
    } else {
        finding.message.clone()
    };
    Annotation {
        level,
        properties,
        message,
    }
}

/// A command's message, escaped as `@actions/core` does (`escapeData` in `command.ts`): the
/// runner reads one command per line, so a newline in a message must not end it. Bidi controls
/// are shown (`show_bidi`): GitHub displays the annotation beside the code.
fn escape_data(text: &str) -> String {
    show_bidi(text)
        .replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A property value (`escapeProperty` in `command.ts`): also `:` and `,`, which would otherwise
/// end the properties or the value.
fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::super::tests::{finding, gate, verdict};
    use super::*;
    use crate::presets::GateKind;

    #[test]
    fn escaping_follows_the_actions_toolkit() {
        assert_eq!(escape_data("50% a:b,c\r\nd"), "50%25 a:b,c%0D%0Ad");
        assert_eq!(escape_property("dir,x/c:d 50%\n"), "dir%2Cx/c%3Ad 50%25%0A");
    }

    #[test]
    fn one_annotation_per_finding_with_its_place_escaped() {
        let text = render(&verdict());
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines.contains(
                &"::error file=src/a&b.py,line=1,col=8,endLine=1,endColumn=10,title=F401 (lint)::`os` imported but unused"
            ),
            "{text}"
        );
        assert!(
            lines.contains(
                &"::notice file=dir%2Cx/c%3Ad.py,line=2,col=1,title=E%2C1 (lint)::50%25 done: a, b%0Anote: c%0D"
            ),
            "{text}"
        );
        assert!(
            lines.contains(&"::warning title=global (lint)::no place at all"),
            "{text}"
        );
        assert!(
            lines.contains(
                &"::error title=gate types could not run::`mypy` crashed: Traceback, line 3"
            ),
            "{text}"
        );
        assert!(
            lines.contains(
                &"::error title=gate coverage missed a threshold::line_percent 84.25 (min 90)"
            ),
            "{text}"
        );
        // Errors first, and every line is one command.
        assert!(lines[0].starts_with("::error"), "{text}");
        assert!(lines.iter().all(|line| line.starts_with("::")), "{text}");
        assert!(!text.contains("slow") && !text.contains("more annotation"));
    }

    #[test]
    fn at_most_ten_per_level_then_one_notice_counts_the_rest() {
        let mut lint = gate("lint", GateKind::Lint, GateStatus::Fail);
        for n in 1..=25 {
            let severity = if n <= 15 {
                Severity::Error
            } else {
                Severity::Note
            };
            lint.findings
                .push(finding("lint", &format!("R{n}"), severity, "m").at("a.py", Some(n), None));
        }
        let text = render(&Verdict::new(vec![lint], 1.0, None));
        let count = |prefix: &str| text.lines().filter(|l| l.starts_with(prefix)).count();
        assert_eq!(count("::error"), 10, "{text}");
        // 10 notes: 9 shown, and the closing notice.
        assert_eq!(count("::notice"), 10, "{text}");
        let last = text.lines().last().unwrap();
        assert!(
            last.contains("6 more annotation(s) not shown (5 error, 0 warning, 1 notice)"),
            "{last}"
        );
        // The first ten errors kept are the first ten found (worst first, then in order).
        assert!(text.contains("title=R10 (lint)") && !text.contains("title=R11 (lint)"));
    }

    #[test]
    fn a_failed_job_is_an_error() {
        let mut verdict = Verdict::new(vec![], 1.0, None);
        verdict.job = Some(serde_json::json!({"status": "timed_out", "exit_code": 124}));
        let text = render(&verdict);
        assert!(
            text.starts_with("::error title=the job failed::timed_out (exit 124)"),
            "{text}"
        );
    }
}
