#![allow(clippy::expect_used, reason = "a test fails loudly on broken set-up")]
mod common;

use common::{strict_sh, Backend, Workspace};

fn runs_a_command_and_reports_it(backend: Backend) {
    let ws = Workspace::new();
    let run = strict_sh(backend, &ws, "echo hello; exit 3");
    assert_eq!(run.code, 3, "{run:?}");
    assert_eq!(run.status(), "exited", "{run:?}");
    assert_eq!(run.stdout(), "hello\n", "{run:?}");
    assert_eq!(run.outcome["backend"], backend.name(), "{run:?}");
}

conformance!(runs_a_command_and_reports_it);
