//! The terminal view: a table of the gates that were asked for, the reasons of those that did
//! not pass, the worst findings one line each, the fixes, the job, and the verdict.

use super::{job_line, one_line, place, shown, time, worst_first, Context};
use crate::finding::Severity;
use crate::verdict::{GateStatus, Verdict, VerdictStatus};

/// Findings listed; the rest are counted (the other formats have them all).
const LISTED: usize = 20;

pub(super) fn render(verdict: &Verdict, context: &Context) -> String {
    let paint = Paint(context.colour);
    let mut text = format!(
        "{:<16} {:<9} {:<8} {:>8} {:>9}\n",
        "gate", "kind", "status", "findings", "time"
    );
    let gates: Vec<_> = verdict.gates.iter().filter(|g| shown(g)).collect();
    for gate in &gates {
        // Padded before painting: the escape codes would count as width.
        let status = format!("{:<8}", gate.status.as_str());
        text.push_str(&format!(
            "{:<16} {:<9} {} {:>8} {:>9}\n",
            one_line(&gate.name),
            gate.kind.as_str(),
            paint.gate(gate.status, &status),
            gate.findings.len(),
            time(gate),
        ));
    }
    for gate in gates.iter().filter(|g| g.status != GateStatus::Pass) {
        if let Some(reason) = &gate.reason {
            text.push_str(&format!("\n{}: {}", one_line(&gate.name), one_line(reason)));
        }
    }
    let findings = worst_first(verdict);
    if !findings.is_empty() {
        text.push_str("\n\nfindings (worst first):\n");
    }
    for finding in findings.iter().take(LISTED) {
        let at = place(finding);
        text.push_str(&format!(
            "  {}{} {} [{}]\n",
            if at.is_empty() {
                String::new()
            } else {
                format!("{} ", one_line(&at))
            },
            paint.severity(finding.severity, &one_line(&finding.rule)),
            one_line(&finding.message),
            one_line(&finding.gate)
        ));
    }
    if findings.len() > LISTED {
        text.push_str(&format!(
            "  ... and {} more (--format json)\n",
            findings.len() - LISTED
        ));
    }
    text.push_str(&what_to_run(&gates, verdict.fixes.is_empty()));
    for fix in &verdict.fixes {
        text.push_str(&format!(
            "\nfix {}: {}{}",
            one_line(&fix.gate),
            super::fix_outcome(fix),
            fix.reason
                .as_deref()
                .map(|r| format!("; {}", one_line(r)))
                .unwrap_or_default()
        ));
    }
    if let Some(job) = &verdict.job {
        text.push_str(&format!("\njob: {}\n", one_line(&job_line(job))));
    }
    let left_out = verdict.gates.len() - gates.len();
    let skipped = gates
        .iter()
        .filter(|g| g.status == GateStatus::Skipped)
        .count();
    let verdict_line = format!(
        "verdict: {} ({} passed, {} failed, {} errors, {} skipped{})",
        verdict.status.as_str(),
        verdict.summary.passed,
        verdict.summary.failed,
        verdict.summary.errors,
        skipped,
        if left_out > 0 {
            format!(", {left_out} not selected")
        } else {
            String::new()
        }
    );
    text.push_str(&format!(
        "\n{}\n",
        paint.verdict(verdict.status, &verdict_line)
    ));
    text
}

/// For each failed gate, the command that fixes what its tool can fix, or that reruns just that
/// gate once the rest is fixed by hand.
fn what_to_run(gates: &[&crate::verdict::GateResult], no_fix_ran: bool) -> String {
    let mut lines = String::new();
    for gate in gates.iter().filter(|g| g.status == GateStatus::Fail) {
        let fixable = gate.findings.iter().filter(|f| f.fixable).count();
        let name = one_line(&gate.name);
        let line = if fixable > 0 && no_fix_ran {
            format!(
                "  sandbox gate --fix --only {name}    # {fixable} of {} finding(s) fixable\n",
                gate.findings.len()
            )
        } else {
            format!("  sandbox gate --only {name}    # after fixing it by hand\n")
        };
        lines.push_str(&line);
    }
    if lines.is_empty() {
        lines
    } else {
        format!("\nto fix:\n{lines}")
    }
}

/// ANSI colour, or none.
struct Paint(bool);

const RED: &str = "31";
const GREEN: &str = "32";
const YELLOW: &str = "33";
const DIM: &str = "2";

impl Paint {
    fn code(&self, code: &str, text: &str) -> String {
        if self.0 {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    fn gate(&self, status: GateStatus, text: &str) -> String {
        let code = match status {
            GateStatus::Pass => GREEN,
            GateStatus::Fail => RED,
            GateStatus::Error => YELLOW,
            GateStatus::Skipped => DIM,
        };
        self.code(code, text)
    }

    fn severity(&self, severity: Severity, text: &str) -> String {
        let code = match severity {
            Severity::Error => RED,
            Severity::Warning => YELLOW,
            Severity::Note => DIM,
        };
        self.code(code, text)
    }

    fn verdict(&self, status: VerdictStatus, text: &str) -> String {
        let code = match status {
            VerdictStatus::Pass => "1;32",
            VerdictStatus::Fail => "1;31",
            VerdictStatus::Error => "1;33",
        };
        self.code(code, text)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{context, verdict};
    use super::*;

    #[test]
    fn one_row_per_selected_gate_and_one_line_per_finding() {
        let text = render(&verdict(), &context());
        assert!(!text.contains('\x1b'), "colour without asking: {text}");
        for name in ["lint", "coverage", "types", "tests", "fmt"] {
            assert!(
                text.lines().any(|line| line.starts_with(name)),
                "{name}: {text}"
            );
        }
        // `--skip slow`: no row and no reason, only a count.
        assert!(!text.contains("slow"), "{text}");
        assert!(!text.contains("--only / --skip"), "{text}");
        assert!(text.contains("1 skipped, 1 not selected"), "{text}");
        // A cached gate says so instead of a time that measured the cache.
        let coverage = text.lines().find(|l| l.starts_with("coverage")).unwrap();
        assert!(coverage.ends_with("cached"), "{coverage}");
        assert!(!coverage.contains("0.0s"), "{coverage}");
        // The note's message had a newline: still one line, joined.
        let note = text.lines().find(|l| l.contains("E,1")).unwrap();
        assert!(note.contains("50% done: a, b note: c [lint]"), "{note}");
        assert!(text.contains("  src/a&b.py:1 F401 `os` imported but unused [lint]"));
        assert!(
            text.contains("\n  global no place at all [lint]\n"),
            "{text}"
        );
        assert!(text.contains("\ntypes: `mypy` crashed"), "{text}");
        assert!(text.contains("verdict: fail"), "{text}");
    }

    #[test]
    fn colour_only_when_asked() {
        let mut coloured = context();
        coloured.colour = true;
        let text = render(&verdict(), &coloured);
        assert!(text.contains("\x1b[31mfail    \x1b[0m"), "{text}");
        assert!(text.contains("\x1b[1;31mverdict: fail"), "{text}");
    }

    #[test]
    fn the_job_is_summed_up_for_check() {
        let mut verdict = verdict();
        verdict.job = Some(serde_json::json!({
            "status": "exited", "exit_code": 4, "limits_hit": ["memory"],
            "workspace": {"committed": false, "added": ["x"], "modified": [], "deleted": []}
        }));
        let text = render(&verdict, &context());
        assert!(
            text.contains("job: exited (exit 4), limits hit: memory, changes (1 added, 0 modified, 0 deleted) written back: no"),
            "{text}"
        );
    }

    #[test]
    fn says_what_to_run_for_each_failed_gate() {
        let mut verdict = verdict();
        let lint = verdict.gates.iter_mut().find(|g| g.name == "lint").unwrap();
        assert_eq!(lint.status, GateStatus::Fail);
        lint.findings[0].fixable = true;
        let total = lint.findings.len();
        let text = render(&verdict, &context());
        assert!(
            text.contains(&format!(
                "sandbox gate --fix --only lint    # 1 of {total} finding(s) fixable"
            )),
            "{text}"
        );
        for gate in verdict
            .gates
            .iter()
            .filter(|g| g.status == GateStatus::Fail)
        {
            assert!(
                text.contains(&format!("--only {}", gate.name)),
                "{}: {text}",
                gate.name
            );
        }
        // After --fix ran, the advice is to fix the rest by hand.
        verdict.fixes.push(crate::fix::FixResult {
            gate: "lint".into(),
            committed: false,
            changed: Vec::new(),
            reason: None,
        });
        let text = render(&verdict, &context());
        assert!(
            text.contains("sandbox gate --only lint    # after fixing it by hand"),
            "{text}"
        );
    }
}
