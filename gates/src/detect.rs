//! A project without `sandbox.toml`: its files say which presets apply (Cargo.toml: clippy,
//! rustfmt, cargo test; pyproject.toml: ruff, mypy, ...), and `sandbox init` writes them out.

use std::path::Path;

use crate::config::{self, ProjectConfig};
use crate::presets;

/// The presets whose `detect` files `workspace` has, plus the secret scan, as a config.
pub fn detect(workspace: &Path) -> ProjectConfig {
    let text = init_text(workspace);
    // What `init` would write is what runs: one source of truth, and it always parses.
    config::parse("<detected>", &text).unwrap_or(ProjectConfig {
        defaults: config::Defaults::default(),
        gates: Vec::new(),
    })
}

/// A commented `sandbox.toml` for `workspace`.
pub fn init_text(workspace: &Path) -> String {
    let mut text = String::from(
        "# Gates `sandbox gate` runs, each as a sandboxed job (profile `gate`: no network, the\n\
         # workspace read-only, /out for reports). Proposed by `sandbox init` from this project's\n\
         # files; see the README for every key.\n\n\
         [defaults]\nprofile = \"gate\"\ntimeout = \"5m\"\n",
    );
    for preset in presets::all() {
        let hits: Vec<&str> = preset
            .detect
            .iter()
            .copied()
            .filter(|file| workspace.join(file).exists())
            .collect();
        if !hits.is_empty() {
            text.push_str(&format!(
                "\n# {} ({}), found through {}\n[[gate]]\nname = \"{}\"\nuses = \"{}\"\n",
                preset.name,
                serde_json::to_value(preset.kind)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                hits.join(", "),
                preset.name,
                preset.name
            ));
            text.push_str(&preset_keys(preset.name, workspace));
        }
    }
    if workspace.join("Dockerfile").exists() {
        text.push_str(
            "\n# A Dockerfile: gates can run in its image with `--backend docker` once it is built\n\
             # and imported (`sandbox image build --from DIR`).\n",
        );
    }
    text.push_str(
        "\n# Credentials committed by mistake (built in, no tool needed).\n\
         [[gate]]\nname = \"secrets\"\nuses = \"secret-scan\"\n\
         \n# Project rules from the syntax tree (built in). Uncomment and adapt:\n\
         # [[gate]]\n# name = \"policy\"\n# uses = \"policy\"\n\
         # banned_imports = [\"subprocess\", \"child_process\"]\n\
         # forbidden_paths = [\".github/workflows/**\"]\n# base = \"origin/main\"\n\
         # max_changed_lines = 400\n",
    );
    text
}

/// Keys (and commented knobs) a preset needs for this project to check what the project's own
/// way of running the tool checks; found on real projects (benches/gates-trial.md).
fn preset_keys(preset: &str, workspace: &Path) -> String {
    let src_layout = python_src_layout(workspace);
    let mut keys = String::new();
    match preset {
        "mypy" if mypy_config_names_files(workspace) => keys.push_str(
            "# The project's mypy config names the files to check: no targets of our own.\n\
             args = []\n",
        ),
        "bandit" if workspace.join("tests").is_dir() => keys.push_str(
            "# bandit flags every `assert` (B101) in tests too; to leave tests out:\n\
             # args = [\"-x\", \"./tests\", \".\"]\n",
        ),
        "pytest" | "coverage" if src_layout => {
            keys.push_str("# A src/ layout: the package is imported from there.\n");
            keys.push_str("env = { PYTHONPATH = \"src\" }\n");
        }
        _ => {}
    }
    if preset == "coverage" {
        keys.push_str(
            "# Runs the test suite again, measuring it. Without a `min` it never fails:\n\
             # min = { line_percent = 80 }     # with --changed-since, also `diff_percent`\n",
        );
    }
    keys
}

/// `src/<package>/__init__.py`: tests import the package, which is not installed in the tools'
/// environment.
fn python_src_layout(workspace: &Path) -> bool {
    std::fs::read_dir(workspace.join("src")).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|entry| entry.path().join("__init__.py").is_file())
    })
}

/// Whether `[tool.mypy]` in pyproject.toml, or `[mypy]` in mypy.ini, .mypy.ini or setup.cfg,
/// sets `files`: then mypy with a target of ours would check more than the project does.
fn mypy_config_names_files(workspace: &Path) -> bool {
    let pyproject = std::fs::read_to_string(workspace.join("pyproject.toml"))
        .ok()
        .and_then(|text| text.parse::<toml::Table>().ok())
        .is_some_and(|table| {
            table
                .get("tool")
                .and_then(|tool| tool.get("mypy"))
                .and_then(|mypy| mypy.get("files"))
                .is_some()
        });
    pyproject
        || ["mypy.ini", ".mypy.ini", "setup.cfg"].iter().any(|name| {
            let Ok(text) = std::fs::read_to_string(workspace.join(name)) else {
                return false;
            };
            let mut in_mypy = false;
            text.lines().map(str::trim).any(|line| {
                if line.starts_with('[') {
                    in_mypy = line == "[mypy]";
                    return false;
                }
                in_mypy
                    && line
                        .split_once('=')
                        .is_some_and(|(key, _)| key.trim() == "files")
            })
        })
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_empty_project_gets_the_secret_scan() {
        let dir = tempfile::tempdir().unwrap();
        let config = super::detect(dir.path());
        let names: Vec<&str> = config.gates.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(names, ["secrets"]);
    }

    /// itsdangerous's shape: a src layout, `[tool.mypy] files`, tests.
    #[test]
    fn a_python_project_gets_the_keys_its_own_tools_use() {
        let dir = tempfile::tempdir().unwrap();
        let write = |path: &str, text: &str| {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        write(
            "pyproject.toml",
            "[project]\nname = \"p\"\n[tool.mypy]\nfiles = [\"src\"]\nstrict = true\n",
        );
        write("src/p/__init__.py", "");
        write("tests/test_p.py", "");
        let config = super::detect(dir.path());
        let gate = |name: &str| config.gates.iter().find(|g| g.name == name).unwrap();
        assert_eq!(
            gate("mypy").command.last().map(String::as_str),
            Some("--show-error-codes")
        );
        assert_eq!(gate("pytest").env["PYTHONPATH"], "src");
        assert_eq!(gate("coverage").env["PYTHONPATH"], "src");
        assert!(gate("ruff").env.is_empty());
        assert_eq!(gate("bandit").command.last().map(String::as_str), Some("."));

        write("pyproject.toml", "[project]\nname = \"p\"\n");
        write(
            "setup.cfg",
            "[flake8]\nfiles = x\n[mypy]\nfiles = src, tests\n",
        );
        let config = super::detect(dir.path());
        let mypy = config.gates.iter().find(|g| g.name == "mypy").unwrap();
        assert_ne!(mypy.command.last().map(String::as_str), Some("."));
        write("setup.cfg", "[flake8]\nfiles = x\n");
        let config = super::detect(dir.path());
        let mypy = config.gates.iter().find(|g| g.name == "mypy").unwrap();
        assert_eq!(mypy.command.last().map(String::as_str), Some("."));
    }
}
