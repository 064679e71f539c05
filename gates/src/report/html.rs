//! One self-contained HTML page: inline CSS, no script, nothing fetched (it is opened from CI
//! artifacts and mail, often offline), readable on a phone and in dark mode. The verdict, the
//! gates, the job's Outcome, the fixes, the findings by file with their source lines, and
//! coverage per file. Every piece of tool, project or job text is escaped: a finding's message
//! is the tool's, and the tool read files an agent wrote.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};

use sandbox_runtime::secrets::Redactor;

use super::{is_bidi, metrics, number, shown, time, title, Context};
use crate::coverage::FileCoverage;
use crate::finding::Finding;
use crate::verdict::{GateStatus, Verdict};

/// Findings shown; the rest are counted (a page of ten thousand snippets helps nobody).
const LISTED: usize = 500;
/// Lines of source shown before and after a finding's lines.
const CONTEXT: u32 = 2;
/// Source files larger than this are not read: the page shows no source for them.
const MAX_SOURCE_BYTES: u64 = 2 << 20;

const STYLE: &str = "
:root{--bg:#fff;--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--card:#f6f8fa;--hl:#fff8c5;
--pass:#1a7f37;--fail:#cf222e;--error:#9a6700;--skipped:#59636e;--note:#0969da;
color-scheme:light dark;font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif}
@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--fg:#e6edf3;--muted:#9198a1;
--line:#3d444d;--card:#151b23;--hl:#3b2e00;--pass:#3fb950;--fail:#f85149;--error:#d29922;
--skipped:#9198a1;--note:#4493f8}}
*{box-sizing:border-box}
body{margin:0 auto;max-width:72rem;padding:1rem;background:var(--bg);color:var(--fg);
line-height:1.45}
p,td,summary{overflow-wrap:anywhere}
h1{font-size:1.5rem;margin:.2rem 0}h2{font-size:1.15rem;margin:1.6rem 0 .5rem;
border-bottom:1px solid var(--line);padding-bottom:.25rem}
.muted,.ln,.gate{color:var(--muted)}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-size:.92rem}
th,td{border-bottom:1px solid var(--line);padding:.35rem .5rem;text-align:left;vertical-align:top}
th,td.w{white-space:nowrap}td.n,th.n{text-align:right;white-space:nowrap}
.badge{display:inline-block;border-radius:1em;padding:0 .6em;font-weight:600;color:#fff;
font-size:.85em;text-transform:uppercase;white-space:nowrap}
.pass{background:var(--pass)}.fail,.sev-error{background:var(--fail)}
.error,.sev-warning{background:var(--error)}.skipped{background:var(--skipped)}
.sev-note{background:var(--note)}
.missed{color:var(--fail);font-weight:600}
details{border:1px solid var(--line);border-radius:6px;margin:.6rem 0;padding:.3rem .6rem}
summary{cursor:pointer;font-weight:600}
.finding{margin:.6rem 0}
.finding p{margin:.2rem 0}
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.85rem}
pre{background:var(--card);border-radius:6px;padding:.4rem 0;margin:.3rem 0;overflow-x:auto}
pre span.row{display:block;padding-right:.6rem;white-space:pre}
pre span.hit{background:var(--hl)}
.ln{display:inline-block;min-width:3.2em;padding-right:.8em;text-align:right;user-select:none}
.bar{display:inline-block;width:6rem;height:.6rem;background:var(--card);
border:1px solid var(--line);border-radius:3px;vertical-align:middle;margin-right:.4rem}
.bar span{display:block;height:100%;background:var(--pass)}
ul{padding-left:1.2rem}
@media (max-width:40rem){table.cards,.cards tbody,.cards tr,.cards td{display:block}
.cards thead{display:none}.cards tr{border-bottom:1px solid var(--line);padding:.4rem 0}
.cards td,.cards td.n{border:0;padding:.1rem .2rem;text-align:left;white-space:normal}
.cards td[data-label]::before{content:attr(data-label) ': ';color:var(--muted)}}
";

pub(super) fn render(verdict: &Verdict, context: &Context) -> String {
    let mut page = String::new();
    let status = verdict.status.as_str();
    let summary = &verdict.summary;
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"color-scheme\" content=\"light dark\">\n\
         <title>{title}: {status}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <header>\n<h1><span class=\"badge {status}\">{status}</span> {title}</h1>\n\
         <p class=\"muted\">{} passed · {} failed · {} errors · {} skipped · {} findings · \
         {:.1}s</p>\n</header>\n<main>\n",
        summary.passed,
        summary.failed,
        summary.errors,
        summary.skipped,
        summary.findings,
        verdict.duration_ms / 1000.0,
        title = title(verdict),
    );
    gates(&mut page, verdict, context);
    if let Some(job) = &verdict.job {
        self::job(&mut page, job);
    }
    fixes(&mut page, verdict);
    findings(&mut page, verdict, context);
    coverage(&mut page, verdict);
    let _ = write!(
        page,
        "</main>\n<footer><p class=\"muted\">sandbox {}</p></footer>\n</body>\n</html>\n",
        env!("CARGO_PKG_VERSION")
    );
    page
}

fn gates(page: &mut String, verdict: &Verdict, context: &Context) {
    page.push_str(
        "<section id=\"gates\">\n<h2>Gates</h2>\n<div class=\"scroll\"><table class=\"cards\">\n<thead><tr>\
         <th>gate</th><th>kind</th><th>status</th><th class=\"n\">findings</th><th>metrics</th>\
         <th class=\"n\">time</th><th>tool</th></tr></thead>\n<tbody>\n",
    );
    for gate in verdict.gates.iter().filter(|g| shown(g)) {
        let metrics: Vec<String> = metrics(gate)
            .iter()
            .map(|metric| {
                let class = if metric.missed() {
                    " class=\"missed\""
                } else {
                    ""
                };
                format!("<span{class}>{}</span>", esc(&metric.to_string()))
            })
            .collect();
        let tool = context
            .tools
            .get(&gate.name)
            .map(|tool| match &tool.version {
                Some(version) => format!("{} {version}", tool.name),
                None => tool.name.clone(),
            })
            .unwrap_or_default();
        let reason = match (&gate.reason, gate.status) {
            (Some(reason), status) if status != GateStatus::Pass => {
                format!("<br><span class=\"muted\">{}</span>", esc(reason))
            }
            _ => String::new(),
        };
        let status = gate.status.as_str();
        let _ = writeln!(
            page,
            "<tr><td><strong>{}</strong>{reason}</td><td class=\"w\" data-label=\"kind\">{}</td>\
             <td><span class=\"badge {status}\">{status}</span></td>\
             <td class=\"n\" data-label=\"findings\">{}</td><td class=\"w\">{}</td>\
             <td class=\"n\" data-label=\"time\">{}</td><td class=\"w\" data-label=\"tool\">{}</td>\
             </tr>",
            esc(&gate.name),
            gate.kind.as_str(),
            gate.findings.len(),
            metrics.join("<br>"),
            time(gate),
            esc(&tool)
        );
    }
    page.push_str("</tbody>\n</table></div>\n</section>\n");
}

fn job(page: &mut String, job: &serde_json::Value) {
    let text = |value: &serde_json::Value| match value {
        serde_json::Value::String(text) => text.clone(),
        serde_json::Value::Null => "—".to_owned(),
        other => other.to_string(),
    };
    let list = |value: &serde_json::Value| -> String {
        let items: Vec<String> = value
            .as_array()
            .map(|items| items.iter().map(text).collect())
            .unwrap_or_default();
        if items.is_empty() {
            "none".to_owned()
        } else {
            items.join(", ")
        }
    };
    let command = job["command"]
        .as_array()
        .map(|words| words.iter().map(text).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    let workspace = &job["workspace"];
    let rows = [
        ("command", command),
        ("status", text(&job["status"])),
        ("exit code", text(&job["exit_code"])),
        ("signal", text(&job["signal"])),
        (
            "time",
            format!(
                "{:.1}s",
                job["duration_ms"].as_f64().unwrap_or(0.0) / 1000.0
            ),
        ),
        ("limits hit", list(&job["limits_hit"])),
        ("written back", text(&workspace["committed"])),
        ("added", list(&workspace["added"])),
        ("modified", list(&workspace["modified"])),
        ("deleted", list(&workspace["deleted"])),
    ];
    page.push_str("<section id=\"job\">\n<h2>Job</h2>\n<div class=\"scroll\"><table>\n");
    for (name, value) in rows {
        let _ = writeln!(page, "<tr><th>{name}</th><td>{}</td></tr>", esc(&value));
    }
    page.push_str("</table></div>\n</section>\n");
}

fn fixes(page: &mut String, verdict: &Verdict) {
    if verdict.fixes.is_empty() {
        return;
    }
    page.push_str("<section id=\"fixes\">\n<h2>Fixes</h2>\n<ul>\n");
    for fix in &verdict.fixes {
        let _ = writeln!(
            page,
            "<li><strong>{}</strong>: {}{}</li>",
            esc(&fix.gate),
            super::fix_outcome(fix),
            fix.reason
                .as_deref()
                .map(|reason| format!(" ({})", esc(reason)))
                .unwrap_or_default()
        );
    }
    page.push_str("</ul>\n</section>\n");
}

fn findings(page: &mut String, verdict: &Verdict, context: &Context) {
    let all = super::worst_first(verdict);
    if all.is_empty() {
        return;
    }
    let mut by_file: BTreeMap<Option<&str>, Vec<&Finding>> = BTreeMap::new();
    for finding in all.iter().take(LISTED) {
        by_file
            .entry(finding.path.as_deref())
            .or_default()
            .push(finding);
    }
    let mut sources = Sources::new(context.workspace.as_deref(), &context.redactor);
    let _ = writeln!(
        page,
        "<section id=\"findings\">\n<h2>Findings ({})</h2>",
        all.len()
    );
    // Files first (in path order), then what has no file.
    let (files, placeless): (Vec<_>, Vec<_>) = by_file.into_iter().partition(|(p, _)| p.is_some());
    for (path, mut findings) in files.into_iter().chain(placeless) {
        findings.sort_by_key(|finding| (finding.line, finding.severity));
        let _ = writeln!(
            page,
            "<details open>\n<summary>{} <span class=\"muted\">({})</span></summary>",
            esc(path.unwrap_or("(no file)")),
            findings.len()
        );
        let lines = path.and_then(|path| sources.lines(path));
        for (index, finding) in findings.iter().enumerate() {
            // Findings on the same lines (ruff and mypy on one undefined name) share one
            // snippet, shown after the last of them.
            let same_lines = |next: &&Finding| span(next) == span(finding);
            let snippet = !findings.get(index + 1).is_some_and(same_lines);
            one_finding(page, finding, lines.filter(|_| snippet));
        }
        page.push_str("</details>\n");
    }
    if all.len() > LISTED {
        let _ = writeln!(
            page,
            "<p class=\"muted\">… and {} more findings: the JSON and SARIF reports have them \
             all.</p>",
            all.len() - LISTED
        );
    }
    page.push_str("</section>\n");
}

fn one_finding(page: &mut String, finding: &Finding, lines: Option<&[String]>) {
    let severity = finding.severity.as_str();
    let at = match (finding.line, finding.column) {
        (Some(line), Some(column)) => format!(" · line {line}, column {column}"),
        (Some(line), None) => format!(" · line {line}"),
        _ => String::new(),
    };
    let _ = writeln!(
        page,
        "<div class=\"finding\"><p><span class=\"badge sev-{severity}\">{severity}</span> \
         <code>{}</code> {} <span class=\"gate\">{}{at}</span></p>",
        esc(&finding.rule),
        esc(&finding.message),
        esc(&finding.gate),
    );
    if let (Some(lines), Some((first, last))) = (lines, span(finding)) {
        let from = first.saturating_sub(CONTEXT).max(1);
        let to = last.saturating_add(CONTEXT);
        let shown: Vec<(u32, &String)> = (from..=to)
            .filter_map(|n| Some((n, lines.get(usize::try_from(n - 1).ok()?)?)))
            .collect();
        if !shown.is_empty() {
            page.push_str("<pre>");
            for (n, line) in shown {
                let hit = if (first..=last).contains(&n) {
                    " hit"
                } else {
                    ""
                };
                let _ = write!(
                    page,
                    "<span class=\"row{hit}\"><span class=\"ln\">{n}</span>{}</span>",
                    esc(line)
                );
            }
            page.push_str("</pre>\n");
        }
    }
    page.push_str("</div>\n");
}

/// The lines a finding is on: first and last, when it has a line.
fn span(finding: &Finding) -> Option<(u32, u32)> {
    let first = finding.line.filter(|line| *line >= 1)?;
    let last = finding
        .end_line
        .filter(|end| *end >= first)
        .unwrap_or(first);
    Some((first, last))
}

fn coverage(page: &mut String, verdict: &Verdict) {
    let gates: Vec<_> = verdict
        .gates
        .iter()
        .filter(|gate| !gate.coverage.is_empty())
        .collect();
    if gates.is_empty() {
        return;
    }
    page.push_str("<section id=\"coverage\">\n<h2>Coverage</h2>\n");
    for gate in gates {
        let _ = writeln!(
            page,
            "<h3>{}</h3>\n<div class=\"scroll\"><table class=\"cards\">\n<thead><tr><th>file</th>\
             <th class=\"n\">covered</th><th class=\"n\">lines</th><th>missing lines</th>\
             </tr></thead>\n<tbody>",
            esc(&gate.name)
        );
        for file in &gate.coverage {
            file_row(page, file);
        }
        page.push_str("</tbody>\n</table></div>\n");
    }
    page.push_str("</section>\n");
}

fn file_row(page: &mut String, file: &FileCoverage) {
    let percent = file.percent();
    let _ = writeln!(
        page,
        "<tr><td>{}</td><td class=\"n\"><span class=\"bar\"><span style=\"width:{:.1}%\"></span>\
         </span>{}%</td><td class=\"n\" data-label=\"lines run\">{}/{}</td>\
         <td data-label=\"missing\">{}</td></tr>",
        esc(&file.path),
        percent.clamp(0.0, 100.0),
        number(percent),
        file.covered_lines.len(),
        file.covered_lines.len() + file.missing_lines.len(),
        ranges(&file.missing_lines)
    );
}

/// `3-5, 9`: ascending lines as ranges.
fn ranges(lines: &[u32]) -> String {
    let mut spans: Vec<(u32, u32)> = Vec::new();
    for &line in lines {
        match spans.last_mut() {
            Some((_, end)) if line == *end + 1 => *end = line,
            _ => spans.push((line, line)),
        }
    }
    spans
        .iter()
        .map(|(start, end)| {
            if start == end {
                start.to_string()
            } else {
                format!("{start}–{end}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The text of an HTML element or attribute value, as text; a bidi control is shown as
/// `<U+202E>` (see `is_bidi`), not obeyed.
fn esc(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c if is_bidi(c) => {
                let _ = write!(escaped, "&lt;U+{:04X}&gt;", u32::from(c));
            }
            c => escaped.push(c),
        }
    }
    escaped
}

/// The findings' files, read once each, and only if they are what they claim: a regular file
/// inside the workspace. A finding's path is the tool's word on a tree an agent may have
/// written, so `../../home/user/.ssh/id_ed25519`, an absolute path, or a symlink out of the
/// workspace shows no source rather than copying a host file into a report that CI uploads.
/// A line that holds a secret shows it redacted, as the finding's message does.
struct Sources<'a> {
    root: Option<PathBuf>,
    redactor: &'a Redactor,
    files: HashMap<String, Option<Vec<String>>>,
}

impl<'a> Sources<'a> {
    fn new(root: Option<&Path>, redactor: &'a Redactor) -> Sources<'a> {
        Sources {
            root: root.and_then(|root| root.canonicalize().ok()),
            redactor,
            files: HashMap::new(),
        }
    }

    fn lines(&mut self, path: &str) -> Option<&[String]> {
        let root = self.root.as_deref()?;
        let redactor = self.redactor;
        // Line by line, so that a value ending in a newline cannot join two lines and shift
        // the rest.
        let redacted = |lines: Vec<String>| {
            let redact = |line: String| redactor.redact_str(&line).0;
            lines.into_iter().map(redact).collect()
        };
        self.files
            .entry(path.to_owned())
            .or_insert_with(|| read_source(root, path).map(redacted))
            .as_deref()
    }
}

fn read_source(root: &Path, path: &str) -> Option<Vec<String>> {
    let relative = Path::new(path);
    if !relative
        .components()
        .all(|part| matches!(part, Component::Normal(_) | Component::CurDir))
    {
        return None;
    }
    let real = root.join(relative).canonicalize().ok()?;
    if !real.starts_with(root) {
        return None;
    }
    let meta = std::fs::metadata(&real).ok()?;
    if !meta.is_file() || meta.len() > MAX_SOURCE_BYTES {
        return None;
    }
    let bytes = std::fs::read(&real).ok()?;
    if bytes.contains(&0) {
        return None;
    }
    Some(
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(str::to_owned)
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::super::tests::{context, verdict};
    use super::*;

    fn workspace() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("src")).unwrap();
        std::fs::write(
            dir.path().join("src/a&b.py"),
            "import os\nx = 1\nprint('<b>' & y)\nz = 2\nw = 3\nlast = 4\n",
        )
        .unwrap();
        dir
    }

    #[test]
    fn everything_from_tools_and_projects_is_escaped() {
        let dir = workspace();
        let mut context = context();
        context.workspace = Some(dir.path().to_owned());
        let page = render(&verdict(), &context);
        assert!(!page.contains("<script>"), "a finding injected a script");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(page.contains("<summary>src/a&amp;b.py "), "{page}");
        assert!(!page.contains("src/a&b.py"), "an unescaped path");
        // The source line around finding 3 is escaped too.
        assert!(
            page.contains("print(&#39;&lt;b&gt;&#39; &amp; y)"),
            "{page}"
        );
    }

    #[test]
    fn self_contained_and_made_for_phones_and_dark_mode() {
        let page = render(&verdict(), &context());
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert!(page.contains("<meta name=\"viewport\""));
        assert!(page.contains("prefers-color-scheme:dark"));
        for fetch in [
            "src=", "href=", "@import", "url(", "http:", "https:", "<script",
        ] {
            assert!(!page.contains(fetch), "the page may fetch: {fetch}");
        }
    }

    #[test]
    fn findings_show_their_source_lines_with_context() {
        let dir = workspace();
        let mut context = context();
        context.workspace = Some(dir.path().to_owned());
        let page = render(&verdict(), &context);
        // F401 on line 1: lines 1-3 shown, line 1 marked.
        assert!(
            page.contains("<pre><span class=\"row hit\"><span class=\"ln\">1</span>import os</span><span class=\"row\"><span class=\"ln\">2</span>x = 1</span><span class=\"row\"><span class=\"ln\">3</span>"),
            "{page}"
        );
        // The XSS finding on line 3: 1-5 shown, not 6.
        let xss = page.split("alert(1)").nth(1).unwrap();
        let snippet = &xss[..xss.find("</pre>").unwrap()];
        assert!(snippet.contains(">5</span>w = 3"), "{snippet}");
        assert!(!snippet.contains("last = 4"), "{snippet}");
        assert_eq!(
            page.matches("<pre>").count(),
            2,
            "one snippet per finding with a line"
        );
        // Grouped by file, the placeless one last.
        let file = page.find("<summary>src/a&amp;b.py").unwrap();
        let none = page.find("<summary>(no file)").unwrap();
        assert!(file < none);
    }

    #[test]
    fn findings_on_the_same_lines_share_one_snippet() {
        let dir = workspace();
        let mut context = context();
        context.workspace = Some(dir.path().to_owned());
        let mut verdict = verdict();
        let mut twin = verdict.gates[0].findings[0].clone();
        twin.rule = "name-defined".into();
        verdict.gates[0].findings.insert(1, twin);
        let page = render(&verdict, &context);
        assert_eq!(page.matches("<pre>").count(), 2, "{page}");
        let twin = page.find("<code>name-defined</code>").unwrap();
        let f401 = page.find("<code>F401</code>").unwrap();
        let snippet = page
            .find("<pre><span class=\"row hit\"><span class=\"ln\">1<")
            .unwrap();
        assert!(f401.max(twin) < snippet, "the snippet comes after both");
    }

    #[test]
    fn no_source_from_outside_the_workspace_or_from_binaries() {
        let dir = workspace();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret.txt"), "TOKEN=hunter2\n").unwrap();
        std::os::unix::fs::symlink(
            outside.path().join("secret.txt"),
            dir.path().join("link.py"),
        )
        .unwrap();
        std::fs::write(dir.path().join("bin.py"), b"a\0b\n").unwrap();
        let secret = outside.path().join("secret.txt");
        let escape = format!(
            "../{}/secret.txt",
            outside.path().file_name().unwrap().to_str().unwrap()
        );
        let root = dir.path().canonicalize().unwrap();
        for path in [
            "link.py",
            secret.to_str().unwrap(),
            escape.as_str(),
            "bin.py",
            "missing.py",
            "src",
        ] {
            assert_eq!(read_source(&root, path), None, "{path}");
        }
        assert!(read_source(&root, "src/a&b.py").is_some());
        let mut verdict = verdict();
        verdict.gates[0].findings[0].path = Some("link.py".into());
        let mut context = context();
        context.workspace = Some(dir.path().to_owned());
        assert!(!render(&verdict, &context).contains("hunter2"));
    }

    #[test]
    fn coverage_per_file_and_the_job() {
        let mut verdict = verdict();
        verdict.job = Some(serde_json::json!({
            "command": ["sh", "-c", "echo <hi>"], "status": "limit_exceeded", "exit_code": 137,
            "signal": 9, "duration_ms": 1500.0, "limits_hit": ["memory"],
            "workspace": {"committed": false, "added": ["new&.txt"], "modified": [], "deleted": []}
        }));
        let page = render(&verdict, &context());
        assert!(page.contains("<tr><td>src/a&amp;b.py</td>"), "{page}");
        assert!(
            page.contains("33.33%</td><td class=\"n\" data-label=\"lines run\">2/6</td><td data-label=\"missing\">3–5, 9</td>"),
            "{page}"
        );
        assert!(
            page.contains("<th>command</th><td>sh -c echo &lt;hi&gt;</td>"),
            "{page}"
        );
        assert!(
            page.contains("<th>limits hit</th><td>memory</td>"),
            "{page}"
        );
        assert!(
            page.contains("<th>added</th><td>new&amp;.txt</td>"),
            "{page}"
        );
        assert!(page.contains("<title>sandbox check: fail</title>"));
        assert!(page.contains("<span class=\"missed\">line_percent 84.25 (min 90)</span>"));
    }
}
