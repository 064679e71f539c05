//! `sandbox profile list|show`.

use sandbox_runtime::profile::{self, Lookup, ProfileSource};

use super::{print_json, print_text};
use crate::cli::{OutputFormat, ProfileCommand};

pub fn run(command: ProfileCommand) -> anyhow::Result<u8> {
    match command {
        ProfileCommand::List => list(&lookup()?),
        ProfileCommand::Show { name, output } => {
            let resolved = lookup()?.load(&name)?;
            match output {
                OutputFormat::Json => print_json(&resolved)?,
                OutputFormat::Text => {
                    let sources: Vec<String> =
                        resolved.sources.iter().map(ToString::to_string).collect();
                    let body = toml::to_string(&resolved.profile)?;
                    print_text(&format!(
                        "# profile `{}` from {}\n{body}",
                        resolved.name,
                        sources.join(" <- ")
                    ))?;
                }
            }
            Ok(0)
        }
    }
}

/// Profiles as `sandbox exec` in the current directory would find them: the project's own
/// first, held to the operator's (DESIGN §12).
fn lookup() -> anyhow::Result<Lookup> {
    let workspace = sandbox_runtime::spec::workspace_dir(None)?;
    let trust = super::decide_trust(&workspace, &crate::cli::TrustArgs::default())?;
    Ok(Lookup::for_project(&trust))
}

/// Every profile a name can reach: files on the search path first (they shadow built-ins).
fn list(lookup: &Lookup) -> anyhow::Result<u8> {
    let mut rows: Vec<(String, ProfileSource)> = Vec::new();
    let project_dir = lookup
        .project
        .iter()
        .map(|project| (project.root.join(profile::PROJECT_PROFILES), true));
    let operator_dirs = lookup.operator_dirs.iter().map(|dir| (dir.clone(), false));
    for (dir, in_project) in project_dir.chain(operator_dirs) {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut files: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
        files.sort();
        for path in files
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        {
            let name = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            if !rows.iter().any(|(seen, _)| *seen == name) {
                let source = if in_project {
                    ProfileSource::Project(path)
                } else {
                    ProfileSource::File(path)
                };
                rows.push((name, source));
            }
        }
    }
    for (name, _) in profile::BUILTINS {
        if !rows.iter().any(|(seen, _)| seen == name) {
            rows.push((name.to_owned(), ProfileSource::Builtin(name.to_owned())));
        }
    }
    let mut text = String::new();
    for (name, source) in rows {
        let description = match lookup.load(&name) {
            Ok(resolved) => resolved.profile.description,
            Err(error) => format!(
                "(invalid: {})",
                error.to_string().lines().next().unwrap_or("")
            ),
        };
        text.push_str(&format!(
            "{name:<12} {description}\n{:<12} from {source}\n",
            ""
        ));
    }
    print_text(&text)?;
    Ok(0)
}
