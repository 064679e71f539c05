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

#[cfg(test)]
mod tests {
    #[test]
    fn an_empty_project_gets_the_secret_scan() {
        let dir = tempfile::tempdir().unwrap();
        let config = super::detect(dir.path());
        let names: Vec<&str> = config.gates.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(names, ["secrets"]);
    }
}
