//! Hostile tool output: whatever a tool (or a job pretending to be one) prints or leaves in
//! `/out`, every parser returns findings or an error, and never panics. So does the parser of
//! `sandbox.toml`. Inputs are real outputs of the pinned tools (`tests/data/samples`, from the
//! fixtures) mutated byte by byte, cut short, spliced, and plain arbitrary text.

#![allow(clippy::unwrap_used, reason = "a test fails loudly on broken set-up")]

use std::path::Path;

use proptest::prelude::*;
use sandbox_gates::parsers::{self, ParserKind, ToolRun};

const SAMPLES: &[&str] = &[
    include_str!("data/samples/bandit.json"),
    include_str!("data/samples/cargo-test.txt"),
    include_str!("data/samples/clippy.json"),
    include_str!("data/samples/coverage.json"),
    include_str!("data/samples/coverage.xml"),
    include_str!("data/samples/eslint.json"),
    include_str!("data/samples/flake8.txt"),
    include_str!("data/samples/junit.xml"),
    include_str!("data/samples/lcov.info"),
    include_str!("data/samples/mypy.txt"),
    include_str!("data/samples/ruff.json"),
    include_str!("data/samples/rustfmt.txt"),
    include_str!("data/samples/semgrep.sarif"),
    include_str!("data/samples/tsc.txt"),
];

const PARSERS: &[ParserKind] = &[
    ParserKind::Ruff,
    ParserKind::Flake8,
    ParserKind::Mypy,
    ParserKind::Bandit,
    ParserKind::Pytest,
    ParserKind::Junit,
    ParserKind::CoverageJson,
    ParserKind::Lcov,
    ParserKind::Cobertura,
    ParserKind::Clippy,
    ParserKind::Rustfmt,
    ParserKind::CargoTest,
    ParserKind::Eslint,
    ParserKind::Tsc,
    ParserKind::Semgrep,
    ParserKind::Sarif,
    ParserKind::Regex,
    ParserKind::ExitCode,
];

/// The names parsers look for in `/out`.
const REPORT_NAMES: &[&str] = &[
    "junit.xml",
    "coverage.json",
    "lcov.info",
    "coverage.xml",
    "report.sarif",
];

/// One edit of a sample: overwrite a byte, insert one, or cut the text there.
#[derive(Debug, Clone)]
enum Edit {
    Set(usize, u8),
    Insert(usize, u8),
    Truncate(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    // Bytes that matter to JSON, XML and line formats more often than others.
    let byte = prop_oneof![
        any::<u8>(),
        prop::sample::select(b"{}[]<>\"':,=\n\r\\/-0123456789 \t&;eE.+".to_vec()),
    ];
    prop_oneof![
        (any::<usize>(), byte.clone()).prop_map(|(at, b)| Edit::Set(at, b)),
        (any::<usize>(), byte).prop_map(|(at, b)| Edit::Insert(at, b)),
        any::<usize>().prop_map(Edit::Truncate),
    ]
}

/// `seed` with `edits` applied, read back as text (invalid UTF-8 becomes U+FFFD, as the runner
/// reads a tool's output).
fn mutate(seed: &str, edits: Vec<Edit>) -> String {
    let mut bytes = seed.as_bytes().to_vec();
    for edit in edits {
        match edit {
            Edit::Set(at, b) if !bytes.is_empty() => {
                let at = at % bytes.len();
                bytes[at] = b;
            }
            Edit::Insert(at, b) => {
                let at = at % (bytes.len() + 1);
                bytes.insert(at, b);
            }
            Edit::Truncate(at) => bytes.truncate(at % (bytes.len() + 1)),
            Edit::Set(..) => {}
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn mutations_of(seeds: &'static [&'static str], most: usize) -> impl Strategy<Value = String> {
    (0..seeds.len(), prop::collection::vec(edit(), 0..most))
        .prop_map(|(index, edits)| mutate(seeds[index], edits))
}

fn mutated() -> impl Strategy<Value = String> {
    let sample = mutations_of(SAMPLES, 12);
    let spliced = (0..SAMPLES.len(), 0..SAMPLES.len(), any::<usize>()).prop_map(|(a, b, cut)| {
        let (a, b) = (SAMPLES[a], SAMPLES[b]);
        let cut = (0..=cut % (a.len() + 1))
            .rev()
            .find(|at| a.is_char_boundary(*at))
            .unwrap_or(0);
        format!("{}{}", &a[..cut], b)
    });
    prop_oneof![4 => sample, 1 => spliced, 1 => ".{0,400}"]
}

fn parse_everything(text: &str, exit_code: Option<i32>, as_report: bool) {
    let out = tempfile::tempdir().unwrap();
    if as_report {
        for name in REPORT_NAMES {
            std::fs::write(out.path().join(name), text).unwrap();
        }
    }
    for kind in PARSERS {
        let run = ToolRun {
            exit_code,
            stdout: text,
            stderr: text,
            out_dir: out.path(),
            workspace: Path::new("/home/dev/project"),
            mount: Path::new("/workspace"),
            pattern: Some(r"^(?P<path>[^:]+):(?P<line>\d+):(?P<column>\d+)?:? (?P<message>.*)$"),
        };
        // Ok or Err are both answers; a panic fails the property.
        let _ = parsers::parse(*kind, &run);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    #[test]
    fn parsers_never_panic_on_stdout(text in mutated(), code in prop::option::of(-2i32..256)) {
        parse_everything(&text, code, false);
    }

    #[test]
    fn parsers_never_panic_on_report_files(text in mutated(), code in prop::option::of(0i32..3)) {
        parse_everything(&text, code, true);
    }

    #[test]
    fn the_gates_file_parser_never_panics(
        text in prop_oneof![
            3 => mutations_of(CONFIGS, 8),
            1 => ".{0,300}",
        ]
    ) {
        if let Err(error) = sandbox_gates::config::parse("sandbox.toml", &text) {
            // An error names the file, as the CLI prints it.
            prop_assert!(error.to_string().contains("sandbox.toml"), "{error}");
        }
    }
}

const CONFIGS: &[&str] = &[
    r#"
[defaults]
profile = "gate"
timeout = "5m"
jobs = 2

[[gate]]
name = "lint"
uses = "ruff"
args = ["src"]
min = { line_percent = 80.5 }
env = { PYTHONPATH = "src" }

[[gate]]
name = "custom"
command = ["sh", "-c", "grep -n x ."]
parser = "regex"
pattern = '^(?P<path>[^:]+):(?P<line>\d+): (?P<message>.*)$'
paths = ["src/**"]
timeout = "30s"
"#,
    r#"
[[gate]]
name = "policy"
uses = "policy"
banned_imports = ["subprocess", "os.system"]
banned_patterns = [{ glob = "**/*.py", regex = "eval\\(" }]
forbidden_paths = [".github/workflows/**"]
max_changed_lines = 400
base = "origin/main"
rego = ["policies/*.rego"]

[[gate]]
name = "secrets"
uses = "secret-scan"
baseline = ".sandbox/secrets-baseline.json"
"#,
];
