//! The JSON Schemas in `schemas/`: each is what `sandbox schema NAME` prints (regenerate them
//! all with `SANDBOX_BLESS=1 cargo test --test schemas committed`), and each says what its producer or
//! reader really does: the built-in profiles and the `sandbox.toml` examples validate, and the
//! `sandbox.toml` schema accepts and refuses the same tables as the loader.
#![allow(clippy::expect_used, reason = "a test fails loudly on broken set-up")]

mod common;

use std::path::Path;

use common::{assert_valid, sandbox, schema_errors, schema_path, SCHEMAS};
use serde_json::{json, Value};

#[test]
fn committed_schemas_are_what_the_binary_prints() {
    let bless = std::env::var_os("SANDBOX_BLESS").is_some_and(|v| v == "1");
    let mut stale = Vec::new();
    for name in SCHEMAS {
        let printed = sandbox(&["schema", name]);
        assert_eq!(printed.code, 0, "sandbox schema {name}: {printed:?}");
        let path = schema_path(name);
        if bless {
            // Renamed into place: the other tests of this binary read these files meanwhile.
            let partial = path.with_extension("partial");
            std::fs::write(&partial, &printed.stdout).expect("write the schema");
            std::fs::rename(&partial, &path).expect("rename the schema");
            continue;
        }
        let committed = std::fs::read(&path).unwrap_or_default();
        if committed != printed.stdout.as_bytes() {
            stale.push(path.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "stale: {stale:?}; regenerate with `SANDBOX_BLESS=1 cargo test --test schemas committed`"
    );
    // Callers that predate the names still get the Outcome's.
    let bare = sandbox(&["schema"]);
    assert_eq!(bare.stdout, sandbox(&["schema", "outcome"]).stdout);
}

#[test]
fn an_unknown_schema_is_a_usage_error_naming_the_schemas() {
    let ran = sandbox(&["schema", "outcomes"]);
    assert_eq!(ran.code, 2, "{ran:?}");
    let stderr = &ran.stderr;
    for name in SCHEMAS {
        assert!(stderr.contains(name), "{name} not named: {stderr}");
    }
    assert!(ran.stdout.is_empty(), "{ran:?}");
}

/// The validator the other tests lean on does refuse what breaks a schema.
#[test]
fn the_validator_refuses_what_breaks_a_schema() {
    let errors = schema_errors(
        "verdict",
        &json!({"schema": "sandbox/verdict@1", "status": 3}),
    );
    assert!(errors.iter().any(|e| e.contains("status")), "{errors:?}");
    assert!(errors.iter().any(|e| e.contains("gates")), "{errors:?}");
    let line = json!({"time": "yesterday", "event": "gate_started", "name": "lint"});
    assert!(
        !schema_errors("events", &line).is_empty(),
        "a time that is no date-time"
    );
}

fn toml_as_json(text: &str) -> Value {
    let value: toml::Value = toml::from_str(text).expect("TOML");
    serde_json::to_value(value).expect("as JSON")
}

/// Every built-in profile is a valid profile file; a misspelt key is not (the loader refuses
/// it by name too).
#[test]
fn built_in_profiles_are_valid_profile_files() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("profiles/") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("read profile");
        let errors = schema_errors("profile", &toml_as_json(&text));
        assert!(errors.is_empty(), "{}: {errors:?}", path.display());
        seen += 1;
    }
    assert_eq!(seen, 5, "the five built-in profiles");
    let typo = toml_as_json("extends = \"strict\"\n[limits]\nmemroy = \"1G\"\n");
    assert!(!schema_errors("profile", &typo).is_empty());
    let bad_enum = toml_as_json("[network]\nmode = \"sometimes\"\n");
    assert!(!schema_errors("profile", &bad_enum).is_empty());
}

/// `sandbox.toml` as DESIGN section 8 and the README show it.
const DOCUMENTED: [&str; 2] = [
    r#"
[defaults]
profile = "gate"
[[gate]]
name = "lint"
uses = "ruff"
[[gate]]
name = "types"
uses = "mypy"
args = ["--strict", "src"]
[[gate]]
name = "coverage"
command = ["pytest", "--cov=src", "--cov-report=json:/out/coverage.json"]
parser = "coverage-json"
min = { line_percent = 90 }
[[gate]]
name = "policy"
uses = "policy"
banned_imports = ["subprocess", "os.system"]
banned_patterns = [{ glob = "**/*.py", regex = "eval\\(" }]
max_changed_lines = 400
[[gate]]
name = "secrets"
uses = "secret-scan"
"#,
    r#"
[defaults]
profile = "gate"
timeout = "5m"

[[gate]]
name = "unit"
command = ["make", "test"]
paths = ["src/**", "tests/**"]

[[gate]]
name = "lint"
uses = "ruff"
"#,
];

/// Each must be accepted by the loader and the schema alike, or refused by both.
const AGREEMENT: [(&str, bool); 16] = [
    (
        "[[gate]]\nname = \"x\"\ncommand = [\"true\"]\nparser = \"regex\"\npattern = \"(?P<path>.*)\"\n",
        true,
    ),
    (
        "[[gate]]\nname = \"s\"\nuses = \"secret-scan\"\nbaseline = \"b.json\"\nexclude = [\"fixtures/**\"]\n",
        true,
    ),
    (
        "[[gate]]\nname = \"c\"\nuses = \"clippy\"\nkind = \"security\"\ntimeout = \"90s\"\nenv = { A = \"1\" }\nfix = [\"true\"]\nmax = { findings = 3 }\n",
        true,
    ),
    ("[defaults]\njobs = 2\n", true),
    ("[[gate]]\nname = \"x\"\ncommand = [\"true\"]\ncolour = 1\n", false),
    ("[[gate]]\nname = \"lint\"\nuses = \"rufff\"\n", false),
    ("[[gate]]\nname = \"p\"\nuses = \"policy\"\nbanned_imprts = [\"x\"]\n", false),
    ("[[gate]]\nname = \"p\"\nuses = \"policy\"\nargs = [\"x\"]\n", false),
    ("[[gate]]\nname = \"r\"\nuses = \"ruff\"\nbanned_imports = [\"x\"]\n", false),
    ("[[gate]]\nname = \"r\"\nuses = \"ruff\"\ncommand = [\"ruff\"]\n", false),
    ("[[gate]]\nname = \"nothing\"\n", false),
    ("[[gate]]\nuses = \"ruff\"\n", false),
    ("[[gate]]\nname = \"x\"\ncommand = []\n", false),
    ("[[gate]]\nname = \"x\"\ncommand = [\"true\"]\nkind = \"vibes\"\n", false),
    ("[defaults]\nprofle = \"gate\"\n", false),
    ("[[gates]]\nname = \"x\"\ncommand = [\"true\"]\n", false),
];

#[test]
fn the_sandbox_toml_schema_accepts_and_refuses_what_the_loader_does() {
    for text in DOCUMENTED {
        assert!(
            sandbox_gates::config::parse("sandbox.toml", text).is_ok(),
            "{text}"
        );
        let errors = schema_errors("sandbox-toml", &toml_as_json(text));
        assert!(errors.is_empty(), "{errors:?}\n{text}");
    }
    for (text, valid) in AGREEMENT {
        let loaded = sandbox_gates::config::parse("sandbox.toml", text);
        assert_eq!(loaded.is_ok(), valid, "the loader on\n{text}\n{loaded:?}");
        let errors = schema_errors("sandbox-toml", &toml_as_json(text));
        assert_eq!(
            errors.is_empty(),
            valid,
            "the schema on\n{text}\n{errors:?}"
        );
    }
}

/// What `sandbox init` writes for a project with every preset's marker files validates, and so
/// does the policy gate it suggests in comments once uncommented.
#[test]
fn sandbox_init_writes_a_valid_sandbox_toml() {
    let workspace = common::Workspace::new();
    for preset in sandbox_gates::presets::all() {
        for file in preset.detect {
            let path = workspace.file(file);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(&path, "").expect("marker file");
        }
    }
    let ran = sandbox(&[
        "init",
        "--workspace",
        &workspace.path().display().to_string(),
    ]);
    assert_eq!(ran.code, 0, "{ran:?}");
    let text = std::fs::read_to_string(workspace.file("sandbox.toml")).expect("written");
    let config = toml_as_json(&text);
    assert_valid("sandbox-toml", &config);
    let presets = sandbox_gates::presets::all().count();
    assert_eq!(
        config["gate"].as_array().map(Vec::len),
        Some(presets + 1),
        "every preset and the secret scan\n{text}"
    );
    let (_, suggested) = text
        .split_once("Uncomment and adapt:\n")
        .expect("the policy suggestion");
    let uncommented: String = suggested
        .lines()
        .map(|line| format!("{}\n", line.trim_start_matches("# ")))
        .collect();
    assert_valid("sandbox-toml", &toml_as_json(&uncommented));
    assert!(uncommented.contains("uses = \"policy\""), "{uncommented}");
}
