//! `sandbox hook install|uninstall`: the git pre-commit hook that runs `sandbox gate --staged`.
//! Exit 2 when there is no repository, or the hook there is not ours to replace or remove.

use std::path::PathBuf;

use sandbox_gates::hook::{self, HookError};

use super::gate::{refuse, workspace, CONFIG_ERROR};
use super::print_text;
use crate::cli::HookCommand;

pub fn run(command: HookCommand) -> anyhow::Result<u8> {
    let (HookCommand::Install {
        workspace: given, ..
    }
    | HookCommand::Uninstall { workspace: given }) = &command;
    let dir = match workspace(given.as_deref()) {
        Ok(dir) => dir,
        Err(message) => return Ok(refuse(CONFIG_ERROR, &message)),
    };
    let done = match command {
        HookCommand::Install { force, .. } => hook::install(&dir, &own_binary(), force)
            .map(|path| format!("wrote {}", path.display())),
        HookCommand::Uninstall { .. } => hook::uninstall(&dir).map(|removed| match removed {
            Some(path) => format!("removed {}", path.display()),
            None => "no pre-commit hook to remove".to_owned(),
        }),
    };
    match done {
        Ok(message) => {
            print_text(&format!("{message}\n"))?;
            Ok(0)
        }
        Err(error @ HookError::Io { .. }) => Err(error.into()),
        Err(refused) => Ok(refuse(CONFIG_ERROR, &refused.to_string())),
    }
}

/// The binary the hook runs: this one, by its absolute path (the hook falls back to `sandbox`
/// on PATH when that is gone).
fn own_binary() -> PathBuf {
    std::env::current_exe().unwrap_or_else(|_| PathBuf::from("sandbox"))
}
