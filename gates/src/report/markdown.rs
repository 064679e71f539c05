//! Markdown (GitHub-flavoured): the verdict, a table of gates, why the failing ones failed, the
//! worst findings as `path:line`, the job's Outcome for `check`, and the fixes. GitHub's step
//! summary shows it; every piece of tool or project text is escaped, so a message cannot turn
//! into a link, a table cell break, HTML or a notification, nor reorder what it shows.

use super::{job_line, metrics, one_line, place, shown, time, title, worst_first};
use crate::verdict::{GateStatus, Verdict, VerdictStatus};

/// Findings listed; the rest are counted.
const LISTED: usize = 30;

pub(super) fn render(verdict: &Verdict) -> String {
    let summary = &verdict.summary;
    let mut text = format!(
        "## {} {}: {}\n\n{} passed, {} failed, {} errors, {} skipped · {} findings · {:.1}s\n\n",
        match verdict.status {
            VerdictStatus::Pass => "✅",
            VerdictStatus::Fail => "❌",
            VerdictStatus::Error => "⚠️",
        },
        title(verdict),
        verdict.status.as_str(),
        summary.passed,
        summary.failed,
        summary.errors,
        summary.skipped,
        summary.findings,
        verdict.duration_ms / 1000.0
    );
    text.push_str("| gate | kind | status | findings | metrics | time |\n");
    text.push_str("| --- | --- | --- | ---: | --- | ---: |\n");
    let gates: Vec<_> = verdict.gates.iter().filter(|g| shown(g)).collect();
    for gate in &gates {
        let metrics: Vec<String> = metrics(gate)
            .iter()
            .map(|metric| {
                let text = escape(&metric.to_string());
                if metric.missed() {
                    format!("**{text}**")
                } else {
                    text
                }
            })
            .collect();
        text.push_str(&format!(
            "| {} | {} | {} {} | {} | {} | {} |\n",
            escape(&gate.name),
            gate.kind.as_str(),
            mark(gate.status),
            gate.status.as_str(),
            gate.findings.len(),
            metrics.join("<br>"),
            time(gate)
        ));
    }
    let reasons: Vec<String> = gates
        .iter()
        .filter(|gate| gate.status != GateStatus::Pass)
        .filter_map(|gate| {
            let reason = gate.reason.as_deref()?;
            Some(format!(
                "- **{}**: {}\n",
                escape(&gate.name),
                escape(reason)
            ))
        })
        .collect();
    if !reasons.is_empty() {
        text.push('\n');
        text.push_str(&reasons.concat());
    }
    let findings = worst_first(verdict);
    if !findings.is_empty() {
        text.push_str("\n### Findings (worst first)\n\n");
    }
    for finding in findings.iter().take(LISTED) {
        let at = place(finding);
        text.push_str(&format!(
            "- {} {}**{}** {} ({})\n",
            finding.severity.as_str(),
            if at.is_empty() {
                String::new()
            } else {
                format!("{} ", escape(&at))
            },
            escape(&finding.rule),
            escape(&finding.message),
            escape(&finding.gate)
        ));
    }
    if findings.len() > LISTED {
        text.push_str(&format!(
            "- … and {} more (the JSON, SARIF and HTML reports have them all)\n",
            findings.len() - LISTED
        ));
    }
    if let Some(job) = &verdict.job {
        text.push_str(&format!("\n### Job\n\n{}\n", escape(&job_line(job))));
    }
    if !verdict.fixes.is_empty() {
        text.push_str("\n### Fixes\n\n");
    }
    for fix in &verdict.fixes {
        text.push_str(&format!(
            "- **{}**: {}{}\n",
            escape(&fix.gate),
            super::fix_outcome(fix),
            fix.reason
                .as_deref()
                .map(|reason| format!(" ({})", escape(reason)))
                .unwrap_or_default()
        ));
    }
    text
}

fn mark(status: GateStatus) -> &'static str {
    match status {
        GateStatus::Pass => "✅",
        GateStatus::Fail => "❌",
        GateStatus::Error => "⚠️",
        GateStatus::Skipped => "⏭️",
    }
}

/// Text as Markdown shows it literally, on one line: the punctuation that starts emphasis,
/// code, links, HTML, entities or a table cell is backslash-escaped (CommonMark lets any ASCII
/// punctuation be), what GitHub would link or notify is defused, bidi controls are shown.
fn escape(text: &str) -> String {
    let mut escaped = String::new();
    for c in defuse(&one_line(text)).chars() {
        if "\\`*_[]<>|~&#!".contains(c) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// GitHub links `https://…` and `www.…` by themselves (GFM's extended autolinks) and notifies
/// whoever `@name` names, also in a step summary, escaped or not: the text a project or a tool
/// wrote must do neither. `://` becomes `[:]//` and `www.` `www[.]`, as security reports defang
/// a URL, and a zero-width space after each `@` breaks a mention and an email autolink alike.
fn defuse(text: &str) -> String {
    let mut defused = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if let Some(after) = rest.strip_prefix("://") {
            defused.push_str("[:]//");
            rest = after;
        } else if rest
            .get(..4)
            .is_some_and(|www| www.eq_ignore_ascii_case("www."))
        {
            defused.push_str(&rest[..3]);
            defused.push_str("[.]");
            rest = &rest[4..];
        } else {
            defused.push(c);
            if c == '@' {
                defused.push('\u{200B}');
            }
            rest = &rest[c.len_utf8()..];
        }
    }
    defused
}

#[cfg(test)]
mod tests {
    use super::super::tests::verdict;
    use super::*;

    #[test]
    fn a_table_of_the_selected_gates_and_the_worst_findings() {
        let text = render(&verdict());
        assert!(text.starts_with("## ❌ sandbox gate: fail\n"), "{text}");
        assert!(
            text.contains("| coverage | coverage | ❌ fail | 0 | **line\\_percent 84.25 (min 90)** | cached |"),
            "{text}"
        );
        assert!(
            text.contains("| fmt | format | ✅ pass | 0 |  | 1.2s |"),
            "{text}"
        );
        assert!(!text.contains("slow"), "{text}");
        assert!(text.contains("- **types**: \\`mypy\\` crashed"), "{text}");
        assert!(
            text.contains("- error src/a\\&b.py:1 **F401** \\`os\\` imported but unused (lint)"),
            "{text}"
        );
        // Hostile text stays text: no tag, no cell break, one line.
        assert!(!text.contains("<script>"), "{text}");
        assert!(text.contains("\\<script\\>alert(1)\\</script\\>"), "{text}");
        assert!(text.contains("50% done: a, b note: c (lint)"), "{text}");
        assert!(!text.contains("### Job"));
    }

    #[test]
    fn mentions_and_autolinks_are_defused() {
        assert_eq!(
            defuse("ping @octocat and @org/team, mail a@b.co"),
            "ping @\u{200B}octocat and @\u{200B}org/team, mail a@\u{200B}b.co"
        );
        assert_eq!(
            defuse("see https://evil.example/x, HTTP://A.B, WWW.x.io www.y.io ftp://z"),
            "see https[:]//evil.example/x, HTTP[:]//A.B, WWW[.]x.io www[.]y.io ftp[:]//z"
        );
        assert_eq!(defuse("ww.w. w://é@"), "ww.w. w[:]//é@\u{200B}");
    }

    /// A finding's message, path and gate name, and a reason, with a mention, every kind of
    /// link and a bidi override: the summary shows them as text, and the table still has its six
    /// cells a row.
    #[test]
    fn hostile_text_neither_links_nor_notifies_nor_reorders() {
        let mut verdict = verdict();
        let hostile = "@admins look <https://evil.example> www.evil.example \u{202E}|x|";
        verdict.gates[0].name = format!("lint {hostile}");
        verdict.gates[0].reason = Some(hostile.into());
        verdict.gates[0].findings[0].message = hostile.into();
        verdict.gates[0].findings[0].path = Some("https://x.io/@me".into());
        let text = render(&verdict);
        let escaped = "@\u{200B}admins look \\<https\\[:\\]//evil.example\\> \
                       www\\[.\\]evil.example \\<U+202E\\>\\|x\\|";
        assert!(
            text.contains(&format!("| lint {escaped} | lint | ❌ fail |")),
            "{text}"
        );
        assert!(
            text.contains(&format!("- **lint {escaped}**: {escaped}\n")),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "- error https\\[:\\]//x.io/@\u{200B}me:1 **F401** {escaped} (lint)"
            )),
            "{text}"
        );
        for line in text.lines().filter(|line| line.starts_with("| lint ")) {
            let cells = line.replace("\\|", "").matches('|').count();
            assert_eq!(cells, 7, "{line}");
        }
        assert!(!text.contains("://") && !text.contains("www."), "{text}");
        assert!(!text.contains('\u{202E}'), "{text}");
        assert_eq!(
            text.matches('@').count(),
            text.matches("@\u{200B}").count(),
            "{text}"
        );
    }

    #[test]
    fn check_adds_the_job_and_fixes_are_listed() {
        let mut verdict = verdict();
        verdict.job = Some(serde_json::json!({
            "status": "exited", "exit_code": 0, "limits_hit": [],
            "workspace": {"committed": true, "added": [], "modified": ["a"], "deleted": []}
        }));
        verdict.fixes = vec![crate::fix::FixResult {
            gate: "lint".into(),
            committed: false,
            changed: vec!["a.py".into()],
            reason: Some("the gate | does not pass".into()),
        }];
        let text = render(&verdict);
        assert!(text.starts_with("## ❌ sandbox check: fail"), "{text}");
        assert!(
            text.contains("### Job\n\nexited (exit 0), limits hit: none"),
            "{text}"
        );
        assert!(
            text.contains(
                "- **lint**: not written back, 1 file(s) changed (the gate \\| does not pass)"
            ),
            "{text}"
        );
    }
}
