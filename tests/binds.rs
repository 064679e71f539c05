//! `--bind` and `--ro-bind` on both backends: a read-only bind stays read-only however the job
//! tries, a writable one is written through to the host, and a missing source refuses the job.
#![allow(clippy::expect_used, reason = "a test fails loudly on broken set-up")]

mod common;

use std::os::unix::fs::PermissionsExt;

use common::{exec_json, Backend, Workspace};

fn binds_are_writable_only_when_asked(backend: Backend) {
    let workspace = Workspace::new();
    let data = tempfile::tempdir().expect("tempdir");
    let out = tempfile::tempdir().expect("tempdir");
    for dir in [data.path(), out.path()] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    }
    std::fs::write(data.path().join("input"), "read me\n").expect("write");
    std::fs::set_permissions(
        data.path().join("input"),
        std::fs::Permissions::from_mode(0o666),
    )
    .expect("chmod");
    let ro = format!("{}:/data", data.path().display());
    let rw = format!("{}:/out", out.path().display());
    let run = exec_json(
        backend,
        &workspace,
        &["--ro-bind", &ro, "--bind", &rw],
        &[
            "sh",
            "-c",
            "cat /data/input; echo x >> /data/input || echo refused; \
             touch /data/new || echo refused; echo report > /out/report.txt",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout(), "read me\nrefused\nrefused\n", "{run:?}");
    assert_eq!(
        std::fs::read_to_string(data.path().join("input")).expect("read"),
        "read me\n"
    );
    assert!(!data.path().join("new").exists());
    assert_eq!(
        std::fs::read_to_string(out.path().join("report.txt")).expect("report"),
        "report\n"
    );
}

conformance!(binds_are_writable_only_when_asked);

#[test]
fn a_missing_bind_source_refuses_the_job() {
    let workspace = Workspace::new();
    let run = exec_json(
        Backend::Native,
        &workspace,
        &["--ro-bind", "/nonexistent/sandbox-test:/data"],
        &["true"],
    );
    assert_eq!(run.code, 125, "{run:?}");
    assert!(run.stderr.contains("/nonexistent/sandbox-test"), "{run:?}");
}
