//! Plans and their tarballs, built into memory and read back with `tar::Archive`: no engine,
//! no root needed.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::plan::{self, Contents, Entry, EntryKind, Plan};
use crate::{split_tag, tarball, ImageError};

/// One entry of a tarball as read back.
#[derive(Debug)]
struct Archived {
    kind: tar::EntryType,
    mode: u32,
    uid: u64,
    link: Option<PathBuf>,
    data: Vec<u8>,
}

fn read_back(plan: &Plan) -> BTreeMap<String, Archived> {
    let bytes = tarball::write(plan, Vec::new()).expect("write tarball");
    let mut archive = tar::Archive::new(bytes.as_slice());
    let mut entries = BTreeMap::new();
    for entry in archive.entries().expect("entries") {
        let mut entry = entry.expect("entry");
        let path = entry.path().expect("path").to_string_lossy().into_owned();
        let header = entry.header();
        let kind = header.entry_type();
        let mode = header.mode().expect("mode");
        let uid = header.uid().expect("uid");
        let link = entry.link_name().expect("link").map(|l| l.into_owned());
        let mut data = Vec::new();
        entry.read_to_end(&mut data).expect("data");
        let previous = entries.insert(
            path.clone(),
            Archived {
                kind,
                mode,
                uid,
                link,
                data,
            },
        );
        assert!(previous.is_none(), "{path} is in the tarball twice");
    }
    entries
}

fn write(path: &Path, contents: &str, mode: u32) {
    fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    fs::write(path, contents).expect("write");
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}

/// A host root as Debian 12 lays it out, with the secrets an /etc typically holds.
fn fake_host() -> tempfile::TempDir {
    let root = tempfile::tempdir().expect("tempdir");
    let r = root.path();
    for dir in ["usr/bin", "usr/lib64", "boot", "srv"] {
        fs::create_dir_all(r.join(dir)).expect("mkdir");
    }
    symlink("usr/bin", r.join("bin")).expect("symlink");
    symlink("usr/lib64", r.join("lib64")).expect("symlink");
    symlink("/usr/sbin", r.join("sbin")).expect("symlink");
    symlink("boot/vmlinuz-6.1", r.join("vmlinuz")).expect("symlink");
    write(&r.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n", 0o644);
    write(&r.join("etc/shadow"), "root:$y$secret:1::::::\n", 0o640);
    write(&r.join("etc/shadow-"), "root:$y$old:1::::::\n", 0o600);
    write(&r.join("etc/gshadow"), "root:*::\n", 0o640);
    write(
        &r.join("etc/ssh/sshd_config"),
        "PermitRootLogin no\n",
        0o644,
    );
    write(&r.join("etc/ssh/ssh_host_ed25519_key"), "PRIVATE\n", 0o600);
    write(
        &r.join("etc/ssh/ssh_host_ed25519_key.pub"),
        "ssh-ed25519 AAAA\n",
        0o644,
    );
    write(
        &r.join("etc/ssl/private/ssl-cert-snakeoil.key"),
        "KEY\n",
        0o640,
    );
    write(&r.join("etc/ssl/certs/ca.pem"), "CERT\n", 0o644);
    write(&r.join("etc/wireguard/wg0.key"), "KEY\n", 0o600);
    write(&r.join("etc/sudoers"), "root ALL=(ALL) ALL\n", 0o440);
    write(&r.join("etc/hosts"), "127.0.0.1 host-only\n", 0o644);
    fs::create_dir_all(r.join("etc/alternatives")).expect("mkdir");
    symlink("/usr/bin/python3.11", r.join("etc/alternatives/python")).expect("symlink");
    symlink(
        "../run/systemd/resolve/stub-resolv.conf",
        r.join("etc/resolv.conf"),
    )
    .expect("symlink");
    root
}

#[test]
fn host_image_preserves_symlinks_modes_and_owners() {
    let root = fake_host();
    let plan = plan::host(root.path()).expect("plan");
    let tar = read_back(&plan);

    // The host's own top-level links into /usr, as they are on the host (relative or not).
    assert_eq!(tar["bin"].kind, tar::EntryType::Symlink);
    assert_eq!(tar["bin"].link.as_deref(), Some(Path::new("usr/bin")));
    assert_eq!(tar["lib64"].link.as_deref(), Some(Path::new("usr/lib64")));
    assert_eq!(tar["sbin"].link.as_deref(), Some(Path::new("/usr/sbin")));
    // Links elsewhere, and the host's other directories, would dangle or leak: left out.
    for absent in ["vmlinuz", "boot", "srv"] {
        assert!(!tar.contains_key(absent), "{absent} in the image");
    }
    assert_eq!(plan.mirror, ["/usr"]);

    let alternative = &tar["etc/alternatives/python"];
    assert_eq!(alternative.kind, tar::EntryType::Symlink);
    assert_eq!(
        alternative.link.as_deref(),
        Some(Path::new("/usr/bin/python3.11"))
    );

    let passwd = &tar["etc/passwd"];
    assert_eq!(passwd.data, b"root:x:0:0::/root:/bin/sh\n");
    assert_eq!(passwd.mode, 0o644);
    let owner = fs::metadata(root.path().join("etc/passwd"))
        .expect("stat")
        .uid();
    assert_eq!(passwd.uid, u64::from(owner));
    assert_eq!(tar["etc/sudoers"].mode, 0o440);

    assert_eq!(tar["tmp"].mode, 0o1777);
    assert_eq!(tar["var/tmp"].mode, 0o1777);
    // Empty, and traversable: a toolchain bound below it (/root/.rustup) must reach the job.
    assert_eq!(tar["root"].mode, 0o755);
    for dir in [
        "usr",
        "workspace",
        "out",
        "proc",
        "sys",
        "dev",
        "home",
        "run",
        "opt",
    ] {
        assert_eq!(tar[dir].kind, tar::EntryType::Directory, "{dir}");
    }
    // /usr is an empty mount point: nothing of the host's /usr is copied.
    assert!(!tar.keys().any(|p| p.starts_with("usr/")));
}

#[test]
fn host_image_has_no_secrets() {
    let root = fake_host();
    let plan = plan::host(root.path()).expect("plan");
    let tar = read_back(&plan);
    for secret in [
        "etc/shadow",
        "etc/shadow-",
        "etc/gshadow",
        "etc/ssh/ssh_host_ed25519_key",
        "etc/ssh/ssh_host_ed25519_key.pub",
        "etc/ssl/private",
        "etc/ssl/private/ssl-cert-snakeoil.key",
        "etc/wireguard/wg0.key",
    ] {
        // Only the name stays, as the native jail shows it: an empty placeholder of mode 0
        // (a directory: empty), never the host's bytes or entries below it.
        match tar.get(secret) {
            None => assert!(
                secret.starts_with("etc/ssl/private/"),
                "{secret} lost its name"
            ),
            Some(entry) if entry.kind == tar::EntryType::Directory => {
                assert!(
                    !tar.keys().any(|p| p.starts_with(&format!("{secret}/"))),
                    "{secret}"
                );
            }
            Some(entry) => {
                assert!(entry.data.is_empty(), "{secret} has the host's bytes");
                assert_eq!(entry.mode, 0, "{secret} is readable");
            }
        }
    }
    assert!(tar
        .values()
        .all(|e| !String::from_utf8_lossy(&e.data).contains("secret")));
    assert!(plan
        .excluded
        .iter()
        .any(|o| o.path == Path::new("etc/shadow") && o.reason == "password hashes"));
    // Everything else of /etc is there.
    for kept in [
        "etc/ssh/sshd_config",
        "etc/ssl/certs/ca.pem",
        "etc/wireguard",
    ] {
        assert!(tar.contains_key(kept), "{kept} missing");
    }
}

#[test]
fn host_image_gives_engine_managed_files_as_empty_files() {
    let root = fake_host();
    let tar = read_back(&plan::host(root.path()).expect("plan"));
    for path in ["etc/resolv.conf", "etc/hosts", "etc/hostname"] {
        let entry = &tar[path];
        assert_eq!(entry.kind, tar::EntryType::Regular, "{path}");
        assert!(entry.data.is_empty(), "{path} has the host's contents");
    }
}

#[test]
fn host_without_merged_usr_mirrors_its_top_level_directories() {
    let root = tempfile::tempdir().expect("tempdir");
    fs::create_dir_all(root.path().join("bin")).expect("mkdir");
    fs::create_dir_all(root.path().join("etc")).expect("mkdir");
    symlink("usr/lib64", root.path().join("lib64")).expect("symlink");
    let plan = plan::host(root.path()).expect("plan");
    assert_eq!(plan.mirror, ["/usr", "/bin"]);
    let tar = read_back(&plan);
    assert_eq!(tar["bin"].kind, tar::EntryType::Directory);
    assert!(!tar.keys().any(|p| p.starts_with("bin/")));
}

#[test]
fn host_etc_exclusion_is_by_name() {
    for secret in [
        "etc/shadow",
        "etc/gshadow-",
        "etc/security/opasswd",
        "etc/ssh/ssh_host_rsa_key",
        "etc/ssl/private",
        "etc/docker/key.json",
        "etc/krb5.keytab",
        "etc/ppp/chap-secrets",
        "etc/NetworkManager/system-connections",
        "etc/anything/server.key",
    ] {
        assert!(
            plan::host_etc_exclusion(Path::new(secret)).is_some(),
            "{secret} would be copied"
        );
    }
    for public in [
        "etc/passwd",
        "etc/group",
        "etc/ssl/certs",
        "etc/ssh/ssh_config",
    ] {
        assert_eq!(
            plan::host_etc_exclusion(Path::new(public)),
            None,
            "{public}"
        );
    }
}

/// A directory holding a small root filesystem made of links to a shell.
fn fake_rootfs() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    write(&d.join("usr/bin/dash"), "#!fake shell\n", 0o755);
    symlink("dash", d.join("usr/bin/sh")).expect("symlink");
    // Absolute, as a rootfs made by debootstrap has it: must resolve inside `d`, not on the host.
    symlink("/usr/bin", d.join("bin")).expect("symlink");
    dir
}

#[test]
fn dir_image_stores_symlinks_without_following_them() {
    let dir = fake_rootfs();
    let outside = tempfile::tempdir().expect("tempdir");
    write(&outside.path().join("secret"), "outside\n", 0o644);
    symlink(outside.path().join("secret"), dir.path().join("escape")).expect("symlink");
    symlink(outside.path(), dir.path().join("escape-dir")).expect("symlink");
    symlink("../../../../../..", dir.path().join("up")).expect("symlink");

    let plan = plan::dir(dir.path()).expect("plan");
    let tar = read_back(&plan);
    assert_eq!(tar["escape"].kind, tar::EntryType::Symlink);
    assert_eq!(
        tar["escape"].link.as_deref(),
        Some(outside.path().join("secret").as_path())
    );
    assert_eq!(tar["escape-dir"].kind, tar::EntryType::Symlink);
    assert!(!tar
        .keys()
        .any(|p| p.starts_with("escape-dir/") || p.starts_with("up/")));
    assert!(tar.values().all(|e| e.data != b"outside\n"));
    assert_eq!(tar["usr/bin/dash"].mode, 0o755);
    assert_eq!(tar["usr/bin/dash"].data, b"#!fake shell\n");
    assert!(plan.mirror.is_empty());
}

#[test]
fn dir_image_skips_fifos_and_says_so() {
    let dir = fake_rootfs();
    let fifo = dir.path().join("pipe");
    nix_mkfifo(&fifo);
    let plan = plan::dir(dir.path()).expect("plan");
    assert!(plan.entry("pipe").is_none());
    assert_eq!(plan.skipped.len(), 1);
    assert_eq!(plan.skipped[0].path, Path::new("pipe"));
}

fn nix_mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("run mkfifo");
    assert!(status.success());
}

#[test]
fn dir_image_refuses_what_is_no_root_filesystem() {
    let no_shell = tempfile::tempdir().expect("tempdir");
    fs::create_dir(no_shell.path().join("bin")).expect("mkdir");
    let error = plan::dir(no_shell.path()).expect_err("no /bin/sh");
    assert!(error.to_string().contains("/bin/sh"), "{error}");

    // A /bin/sh that only exists by following a link out of the directory does not count.
    let escaping = tempfile::tempdir().expect("tempdir");
    symlink("/usr/bin", escaping.path().join("bin")).expect("symlink");
    assert!(matches!(
        plan::dir(escaping.path()),
        Err(ImageError::BadSourceDir { .. })
    ));

    let file = no_shell.path().join("file");
    fs::write(&file, "x").expect("write");
    let error = plan::dir(&file).expect_err("a file");
    assert!(error.to_string().contains("not a directory"), "{error}");

    let error = plan::dir(&no_shell.path().join("missing")).expect_err("missing");
    assert!(error.to_string().contains("does not exist"), "{error}");

    let error = plan::dir(Path::new("/")).expect_err("the host root");
    assert!(error.to_string().contains("--from host"), "{error}");
}

#[test]
fn resolve_beneath_keeps_links_inside_the_root() {
    let dir = fake_rootfs();
    let d = dir.path();
    assert_eq!(
        plan::resolve_beneath(d, Path::new("bin/sh")),
        Some(PathBuf::from("usr/bin/dash"))
    );
    symlink("../../../../usr/bin/dash", d.join("up-sh")).expect("symlink");
    assert_eq!(
        plan::resolve_beneath(d, Path::new("up-sh")),
        Some(PathBuf::from("usr/bin/dash"))
    );
    symlink("loop-b", d.join("loop-a")).expect("symlink");
    symlink("loop-a", d.join("loop-b")).expect("symlink");
    assert_eq!(plan::resolve_beneath(d, Path::new("loop-a")), None);
    assert_eq!(plan::resolve_beneath(d, Path::new("nothing/here")), None);
}

#[test]
fn long_paths_and_link_targets_survive() {
    let long = "d".repeat(150);
    let plan = Plan {
        entries: vec![
            Entry::dir(&long, 0o755),
            Entry::inline(Path::new(&long).join("f"), 0o600, "x"),
            Entry::symlink("l", format!("/{long}/f")),
        ],
        ..Plan::default()
    };
    let tar = read_back(&plan);
    assert_eq!(tar[&format!("{long}/f")].data, b"x");
    assert_eq!(tar[&format!("{long}/f")].mode, 0o600);
    assert_eq!(
        tar["l"].link.as_deref(),
        Some(Path::new(&format!("/{long}/f")))
    );
}

#[test]
fn a_file_that_shrank_since_planning_is_an_error_not_a_corrupt_tarball() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("f");
    fs::write(&file, "short").expect("write");
    let mut entry = Entry::inline("f", 0o644, "");
    entry.kind = EntryKind::File {
        contents: Contents::Host(file),
        size: 100,
    };
    let plan = Plan {
        entries: vec![entry],
        ..Plan::default()
    };
    let error = tarball::write(&plan, Vec::new()).expect_err("shrank");
    let chain = format!("{:?}", error);
    assert!(chain.contains("shrank"), "{chain}");
}

#[test]
fn busybox_image_has_applets_users_and_no_mirror() {
    let Ok(busybox) = plan::find_busybox() else {
        skip("no busybox on this host (Debian package busybox-static)");
        return;
    };
    let plan = plan::busybox(&busybox).expect("plan");
    assert!(plan.mirror.is_empty());
    let tar = read_back(&plan);
    assert_eq!(tar["bin"].link.as_deref(), Some(Path::new("usr/bin")));
    assert_eq!(tar["usr/bin/busybox"].mode, 0o755);
    assert_eq!(
        tar["usr/bin/sh"].link.as_deref(),
        Some(Path::new("busybox"))
    );
    let passwd = String::from_utf8_lossy(&tar["etc/passwd"].data).into_owned();
    assert!(passwd.contains("nobody:x:65534:65534:"), "{passwd}");
    let group = String::from_utf8_lossy(&tar["etc/group"].data).into_owned();
    assert!(group.contains("nogroup:x:65534:"), "{group}");
    assert_eq!(tar["tmp"].mode, 0o1777);
    assert!(tar.contains_key("workspace"));
}

#[test]
fn elf_is_static_reads_program_headers() {
    // A 64-bit little-endian ELF header with `count` program headers of which `interp` has
    // type PT_INTERP.
    fn elf(count: u16, interp: Option<u16>) -> Vec<u8> {
        let mut bytes = vec![0u8; 64 + 56 * usize::from(count)];
        bytes[..4].copy_from_slice(b"\x7fELF");
        bytes[4] = 2;
        bytes[5] = 1;
        bytes[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
        bytes[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        bytes[0x38..0x3a].copy_from_slice(&count.to_le_bytes());
        for index in 0..count {
            let at = 64 + 56 * usize::from(index);
            let kind: u32 = if Some(index) == interp { 3 } else { 1 };
            bytes[at..at + 4].copy_from_slice(&kind.to_le_bytes());
        }
        bytes
    }
    assert_eq!(plan::elf_is_static(&elf(3, None)), Some(true));
    assert_eq!(plan::elf_is_static(&elf(3, Some(1))), Some(false));
    assert_eq!(plan::elf_is_static(b"#!/bin/sh\n"), None);
    let mut truncated = elf(3, None);
    truncated.truncate(100);
    assert_eq!(plan::elf_is_static(&truncated), None);
}

#[test]
fn tags_split_into_repository_and_tag() {
    assert_eq!(
        split_tag("sandbox/host:latest").ok(),
        Some(("sandbox/host", "latest"))
    );
    assert_eq!(
        split_tag("sandbox/host").ok(),
        Some(("sandbox/host", "latest"))
    );
    assert_eq!(
        split_tag("localhost:5000/team/img").ok(),
        Some(("localhost:5000/team/img", "latest"))
    );
    assert_eq!(
        split_tag("localhost:5000/img:v2").ok(),
        Some(("localhost:5000/img", "v2"))
    );
    for bad in ["", "a b", "img:", ":v1", "img@sha256:abcd"] {
        assert!(split_tag(bad).is_err(), "{bad:?} accepted");
    }
}

/// As `tests/common::skip`: says why, and fails instead when CI asks for no skips.
fn skip(reason: &str) {
    if std::env::var_os("SANDBOX_TEST_NO_SKIP").is_some_and(|v| v == "1") {
        panic!("would skip, but SANDBOX_TEST_NO_SKIP=1: {reason}");
    }
    eprintln!("skipping: {reason}");
}

/// An import whose tarball breaks half-way (a file vanished after planning) must fail with the
/// writer's error and leave no image behind: a truncated root filesystem tagged as if complete
/// would fail jobs in baffling ways.
#[test]
fn a_tarball_that_breaks_half_way_leaves_no_image() {
    let mut vanished = Entry::inline("vanished", 0o644, "");
    vanished.kind = EntryKind::File {
        contents: Contents::Host("/nonexistent/vanished-after-planning".into()),
        size: 10,
    };
    // Several chunks first, so that the engine is already reading when the writer fails.
    let plan = Plan {
        entries: vec![Entry::inline("big", 0o644, vec![7u8; 3 << 20]), vanished],
        ..Plan::default()
    };
    let tag = "sandbox/test-broken";
    let outcome = crate::block_on(async {
        let docker = match crate::engine::connect(crate::ENGINE_TIMEOUT).await {
            Ok(docker) => docker,
            Err(error) => return Err(error),
        };
        let imported = crate::engine::import(&docker, plan, tag, "latest", Vec::new()).await;
        let left = docker.inspect_image(&format!("{tag}:latest")).await.is_ok();
        Ok((imported.err(), left))
    })
    .expect("runtime");
    let (error, left) = match outcome {
        Ok(result) => result,
        Err(error @ ImageError::NoEngine(_)) => return skip(&error.to_string()),
        Err(error) => panic!("connect: {error}"),
    };
    let error = error.expect("the import failed");
    assert!(
        format!("{error:?}").contains("vanished-after-planning"),
        "{error:?}"
    );
    assert!(!left, "{tag}:latest exists after a failed import");
}
