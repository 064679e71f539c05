//! Coverage reports: coverage.py's JSON, LCOV and Cobertura XML. They give metrics only
//! (`line_percent`, and `branch_percent` when branches were measured); thresholds on them are
//! the gate's `min`. The exit code is not read: the same report comes from `coverage json`,
//! `pytest --cov` (which exits 1 when a test fails) or a JavaScript runner, and a missing or
//! unreadable report is what says the run broke.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::generic::with_output;
use super::junit::{parse_xml, read_report, reports, Element};
use super::{relative_path, ParseError, Parsed, ToolRun};
use crate::coverage::{percent, FileCoverage, LineHits};

/// The report: `preferred` in `/out` if it is there, else the only other file with the
/// extension that `accept` takes, else stdout (`coverage json -o -`).
fn find_report(
    run: &ToolRun<'_>,
    parser: &'static str,
    preferred: &[&str],
    extension: &str,
    accept: impl Fn(&str) -> bool,
) -> Result<(String, String), ParseError> {
    let where_ = |path: &Path| path.display().to_string();
    for name in preferred {
        let path = run.out_dir.join(name);
        if path.is_file() {
            return Ok((where_(&path), read_report(parser, &path)?));
        }
    }
    let candidates: Vec<PathBuf> = reports(run.out_dir, extension)?;
    for path in candidates {
        let text = read_report(parser, &path)?;
        if accept(&text) {
            return Ok((where_(&path), text));
        }
    }
    if accept(run.stdout) {
        return Ok(("stdout".to_owned(), run.stdout.to_owned()));
    }
    if run.exit_code.is_none() {
        return Err(ParseError::ToolFailed(with_output(
            "the tool was killed by a signal before it wrote a coverage report",
            run,
        )));
    }
    Err(ParseError::ToolFailed(with_output(
        &format!(
            "no {parser} report ({}) in {} or on stdout",
            preferred.join(", "),
            run.out_dir.display()
        ),
        run,
    )))
}

// --- coverage.py JSON --------------------------------------------------------------------------

#[derive(Deserialize)]
struct CoverageJson {
    totals: Totals,
    #[serde(default)]
    files: BTreeMap<String, FileLines>,
}

#[derive(Deserialize)]
struct FileLines {
    #[serde(default)]
    executed_lines: Vec<u32>,
    #[serde(default)]
    missing_lines: Vec<u32>,
}

#[derive(Deserialize)]
struct Totals {
    /// coverage.py's headline figure, the one `coverage report` prints as TOTAL and
    /// `fail_under` checks: statements, plus branches when branch coverage is on.
    percent_covered: f64,
    percent_statements_covered: Option<f64>,
    num_statements: Option<f64>,
    covered_lines: Option<f64>,
    num_branches: Option<f64>,
    covered_branches: Option<f64>,
    percent_branches_covered: Option<f64>,
}

/// `coverage json` (`/out/coverage.json`, or any `*.json` coverage report there): metrics
/// `line_percent` = `totals.percent_covered` (what `coverage report` prints as TOTAL),
/// `statement_percent` (statements only), `branch_percent` when branches were measured.
pub fn coverage_json(run: &ToolRun<'_>) -> Result<Parsed, ParseError> {
    let looks_like = |text: &str| text.trim_start().starts_with('{') && text.contains("\"totals\"");
    let (source, text) = find_report(run, "coverage-json", &["coverage.json"], "json", looks_like)?;
    let report: CoverageJson = serde_json::from_str(&text).map_err(|error| {
        ParseError::unreadable(
            "coverage-json",
            format!("{source} is not coverage.py's JSON report: {error}"),
        )
    })?;
    let totals = report.totals;
    let mut parsed = Parsed::default();
    let mut hits = LineHits::default();
    for (path, lines) in &report.files {
        let path = relative_path(run, path);
        hits.file(&path);
        for (lines, ran) in [(&lines.executed_lines, true), (&lines.missing_lines, false)] {
            for line in lines {
                hits.hit(&path, *line, ran);
            }
        }
    }
    parsed.coverage = hits.finish();
    parsed
        .metrics
        .insert("line_percent".to_owned(), totals.percent_covered);
    let statements = totals.percent_statements_covered.or_else(|| {
        totals
            .num_statements
            .map(|all| percent(totals.covered_lines.unwrap_or(0.0), all))
    });
    if let Some(statements) = statements {
        parsed
            .metrics
            .insert("statement_percent".to_owned(), statements);
    }
    let branches = totals.percent_branches_covered.or_else(|| {
        totals
            .num_branches
            .filter(|all| *all > 0.0)
            .map(|all| percent(totals.covered_branches.unwrap_or(0.0), all))
    });
    if let (Some(branches), Some(all)) = (branches, totals.num_branches) {
        if all > 0.0 {
            parsed.metrics.insert("branch_percent".to_owned(), branches);
        }
    }
    Ok(parsed)
}

// --- LCOV --------------------------------------------------------------------------------------

/// An LCOV tracefile (`lcov.info`, any `*.info`, or stdout): `line_percent` from the summed
/// `LF`/`LH` of every record (from its `DA` lines when a record has no `LF`), `branch_percent`
/// from `BRF`/`BRH` when there are branches.
pub fn lcov(run: &ToolRun<'_>) -> Result<Parsed, ParseError> {
    let looks_like = |text: &str| text.lines().any(|l| l.starts_with("SF:"));
    let (source, text) = find_report(
        run,
        "lcov",
        &["lcov.info", "coverage.lcov"],
        "info",
        looks_like,
    )?;
    let mut totals = [0.0f64; 4]; // lines found, lines hit, branches found, branches hit
    let mut records = 0;
    // Per record: LF/LH when given, else counted from DA.
    let mut record = Record::default();
    let mut hits = LineHits::default();
    let mut file = String::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        let (key, value) = line.split_once(':').unwrap_or((line, ""));
        let count = || {
            value.trim().parse::<f64>().map_err(|_| {
                ParseError::unreadable(
                    "lcov",
                    format!("{source}:{}: not a count: {line:?}", number + 1),
                )
            })
        };
        match key {
            "SF" => {
                file = relative_path(run, value.trim());
                hits.file(&file);
                records += 1;
                record = Record {
                    open: true,
                    ..Record::default()
                };
            }
            "LF" => record.found = Some(count()?),
            "LH" => record.hit = Some(count()?),
            "BRF" => totals[2] += count()?,
            "BRH" => totals[3] += count()?,
            "DA" => {
                let mut fields = value.split(',').map(str::trim);
                let line_number = fields.next().and_then(|n| n.parse::<u32>().ok());
                let ran = fields
                    .next()
                    .and_then(|h| h.parse::<f64>().ok())
                    .is_some_and(|h| h > 0.0);
                record.da_found += 1.0;
                if ran {
                    record.da_hit += 1.0;
                }
                if let Some(line_number) = line_number.filter(|_| record.open) {
                    hits.hit(&file, line_number, ran);
                }
            }
            "end_of_record" => {
                totals[0] += record.found.unwrap_or(record.da_found);
                totals[1] += record.hit.unwrap_or(record.da_hit);
                record = Record::default();
            }
            _ => {}
        }
    }
    if record.open {
        // A last record without `end_of_record`: count what it has.
        totals[0] += record.found.unwrap_or(record.da_found);
        totals[1] += record.hit.unwrap_or(record.da_hit);
    }
    if records == 0 {
        return Err(ParseError::unreadable(
            "lcov",
            format!("{source} has no `SF:` record"),
        ));
    }
    let mut parsed = Parsed {
        coverage: hits.finish(),
        ..Parsed::default()
    };
    parsed
        .metrics
        .insert("line_percent".to_owned(), percent(totals[1], totals[0]));
    if totals[2] > 0.0 {
        parsed
            .metrics
            .insert("branch_percent".to_owned(), percent(totals[3], totals[2]));
    }
    Ok(parsed)
}

#[derive(Default)]
struct Record {
    open: bool,
    found: Option<f64>,
    hit: Option<f64>,
    da_found: f64,
    da_hit: f64,
}

// --- Cobertura ---------------------------------------------------------------------------------

/// A Cobertura XML report (`coverage.xml`, `cobertura.xml`, or any `*.xml` whose root is
/// `<coverage>`): `line_percent` from the root's `lines-covered`/`lines-valid` when given
/// (exact), else its `line-rate` × 100; `branch_percent` likewise when there are branches.
pub fn cobertura(run: &ToolRun<'_>) -> Result<Parsed, ParseError> {
    let looks_like = |text: &str| parse_xml(text).is_ok_and(|root| root.name == "coverage");
    let (source, text) = find_report(
        run,
        "cobertura",
        &["coverage.xml", "cobertura.xml", "cobertura-coverage.xml"],
        "xml",
        looks_like,
    )?;
    let root = parse_xml(&text).map_err(|why| {
        ParseError::unreadable("cobertura", format!("{source} is not XML: {why}"))
    })?;
    if root.name != "coverage" {
        return Err(ParseError::unreadable(
            "cobertura",
            format!("{source}'s root is <{}>, not <coverage>", root.name),
        ));
    }
    let number = |name: &str| -> Result<Option<f64>, ParseError> {
        root.attribute(name)
            .map(|value| {
                value.trim().parse::<f64>().map_err(|_| {
                    ParseError::unreadable(
                        "cobertura",
                        format!("{source}: <coverage {name}=\"{value}\"> is not a number"),
                    )
                })
            })
            .transpose()
    };
    let rate = |valid: &str, covered: &str, rate: &str| -> Result<Option<f64>, ParseError> {
        Ok(match (number(valid)?, number(covered)?) {
            (Some(valid), Some(covered)) if valid > 0.0 => Some(percent(covered, valid)),
            _ => number(rate)?.map(|r| r * 100.0),
        })
    };
    let line = rate("lines-valid", "lines-covered", "line-rate")?.ok_or_else(|| {
        ParseError::unreadable(
            "cobertura",
            format!("{source}: <coverage> has no line-rate"),
        )
    })?;
    let mut parsed = Parsed {
        coverage: cobertura_files(run, &root),
        ..Parsed::default()
    };
    parsed.metrics.insert("line_percent".to_owned(), line);
    // coverage.py writes branch-rate="0" when it did not measure branches: only a report that
    // counted branches (or says nothing about how many) has a branch figure.
    if number("branches-valid")?.is_none_or(|valid| valid > 0.0) {
        if let Some(branch) = rate("branches-valid", "branches-covered", "branch-rate")? {
            parsed.metrics.insert("branch_percent".to_owned(), branch);
        }
    }
    Ok(parsed)
}

/// Every `<class filename>`'s `<line number hits>`, the file found under the report's first
/// `<source>` (coverage.py and most JavaScript tools name files relative to it).
fn cobertura_files(run: &ToolRun<'_>, root: &Element) -> Vec<FileCoverage> {
    let source = root
        .child("sources")
        .and_then(|sources| sources.child("source"))
        .map(|source| source.text.trim().to_owned())
        .unwrap_or_default();
    let mut hits = LineHits::default();
    let mut classes = Vec::new();
    collect(root, "class", &mut classes);
    for class in classes {
        let Some(filename) = class.attribute("filename") else {
            continue;
        };
        let joined = if source.is_empty() || Path::new(filename).is_absolute() {
            PathBuf::from(filename)
        } else {
            Path::new(&source).join(filename)
        };
        let path = relative_path(run, &joined.to_string_lossy());
        hits.file(&path);
        let mut lines = Vec::new();
        collect(class, "line", &mut lines);
        for line in lines {
            let number = line.attribute("number").and_then(|n| n.trim().parse().ok());
            let ran = line
                .attribute("hits")
                .and_then(|h| h.trim().parse::<f64>().ok())
                .is_some_and(|h| h > 0.0);
            if let Some(number) = number {
                hits.hit(&path, number, ran);
            }
        }
    }
    hits.finish()
}

fn collect<'a>(element: &'a Element, name: &str, found: &mut Vec<&'a Element>) {
    for child in &element.children {
        if child.name == name {
            found.push(child);
        } else {
            collect(child, name, found);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    fn run<'a>(exit_code: Option<i32>, out_dir: &'a Path, stdout: &'a str) -> ToolRun<'a> {
        ToolRun {
            exit_code,
            stdout,
            out_dir,
            ..crate::parsers::test_run("/home/dev/proj")
        }
    }

    #[test]
    fn coverage_json_totals() {
        let out = tempfile::tempdir().unwrap();
        let report = r#"{"meta": {}, "files": {}, "totals": {"covered_lines": 7,
            "num_statements": 14, "percent_covered": 43.75, "percent_statements_covered": 50.0,
            "num_branches": 2, "covered_branches": 0, "percent_branches_covered": 0.0}}"#;
        std::fs::write(out.path().join("coverage.json"), report).unwrap();
        // pytest --cov exits 1 when a test fails; the report is still the report.
        let parsed = coverage_json(&run(Some(1), out.path(), "")).unwrap();
        assert_eq!(parsed.metrics["line_percent"], 43.75);
        assert_eq!(parsed.metrics["statement_percent"], 50.0);
        assert_eq!(parsed.metrics["branch_percent"], 0.0);
        assert!(parsed.findings.is_empty());

        let no_branches =
            r#"{"totals": {"covered_lines": 7, "num_statements": 14, "percent_covered": 50.0}}"#;
        let empty = tempfile::tempdir().unwrap();
        let parsed = coverage_json(&run(Some(0), empty.path(), no_branches)).unwrap();
        assert_eq!(parsed.metrics["line_percent"], 50.0);
        assert!(!parsed.metrics.contains_key("branch_percent"));
    }

    #[test]
    fn coverage_json_missing_or_broken() {
        let out = tempfile::tempdir().unwrap();
        let garbage = "Traceback (most recent call last):\n";
        assert!(matches!(
            coverage_json(&run(Some(1), out.path(), garbage)),
            Err(ParseError::ToolFailed(_))
        ));
        std::fs::write(out.path().join("coverage.json"), r#"{"totals": {}}"#).unwrap();
        assert!(matches!(
            coverage_json(&run(Some(0), out.path(), "")),
            Err(ParseError::Unreadable { .. })
        ));
        std::fs::write(out.path().join("coverage.json"), "{\"tot").unwrap();
        assert!(matches!(
            coverage_json(&run(Some(0), out.path(), "")),
            Err(ParseError::Unreadable { .. })
        ));
    }

    #[test]
    fn lcov_sums_records() {
        let out = tempfile::tempdir().unwrap();
        let report = "TN:\nSF:a.py\nDA:1,1\nDA:2,0\nLF:2\nLH:1\nBRF:2\nBRH:1\nend_of_record\n\
                      SF:b.js\nDA:1,3\nDA:2,1\nDA:3,0\nDA:4,0\nend_of_record\n";
        std::fs::write(out.path().join("lcov.info"), report).unwrap();
        let parsed = lcov(&run(Some(0), out.path(), "")).unwrap();
        assert_eq!(parsed.metrics["line_percent"], 50.0);
        assert_eq!(parsed.metrics["branch_percent"], 50.0);
        std::fs::write(out.path().join("lcov.info"), "TN:\nLF:x\n").unwrap();
        assert!(lcov(&run(Some(0), out.path(), "")).is_err());
        std::fs::write(out.path().join("lcov.info"), "SF:a\nLF:x\n").unwrap();
        assert!(matches!(
            lcov(&run(Some(0), out.path(), "")),
            Err(ParseError::Unreadable { .. })
        ));
        let empty = tempfile::tempdir().unwrap();
        assert!(matches!(
            lcov(&run(Some(0), empty.path(), "")),
            Err(ParseError::ToolFailed(_))
        ));
    }

    #[test]
    fn cobertura_root_rates() {
        let out = tempfile::tempdir().unwrap();
        let report = r#"<?xml version="1.0" ?>
<coverage version="7.17.3" lines-valid="14" lines-covered="7" line-rate="0.5" branches-valid="0" branches-covered="0" branch-rate="0">
  <packages/>
</coverage>"#;
        std::fs::write(out.path().join("junit.xml"), "<testsuites/>").unwrap();
        std::fs::write(out.path().join("report.xml"), report).unwrap();
        let parsed = cobertura(&run(Some(0), out.path(), "")).unwrap();
        assert_eq!(parsed.metrics["line_percent"], 50.0);
        assert!(!parsed.metrics.contains_key("branch_percent"));

        let rates_only = r#"<coverage line-rate="0.8125" branch-rate="0.25"></coverage>"#;
        let parsed = cobertura(&run(Some(0), Path::new("/nonexistent"), rates_only)).unwrap();
        assert_eq!(parsed.metrics["line_percent"], 81.25);
        assert_eq!(parsed.metrics["branch_percent"], 25.0);

        std::fs::write(
            out.path().join("coverage.xml"),
            "<coverage line-rate=\"0.5\">",
        )
        .unwrap();
        assert!(matches!(
            cobertura(&run(Some(0), out.path(), "")),
            Err(ParseError::Unreadable { .. })
        ));
        std::fs::write(
            out.path().join("coverage.xml"),
            "<coverage line-rate=\"half\"/>",
        )
        .unwrap();
        assert!(matches!(
            cobertura(&run(Some(0), out.path(), "")),
            Err(ParseError::Unreadable { .. })
        ));
        let empty = tempfile::tempdir().unwrap();
        assert!(matches!(
            cobertura(&run(
                Some(0),
                empty.path(),
                "Traceback (most recent call last):"
            )),
            Err(ParseError::ToolFailed(_))
        ));
    }
}
