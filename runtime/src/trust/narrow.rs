//! Whether a profile only narrows another, field by field. A project profile is checked against
//! the operator profile it narrows; every way it reaches further is one `Widening`.
//!
//! Every struct is destructured whole, so a field added to the profile schema does not compile
//! here until someone decides which way it narrows.

use std::path::Path;

use crate::profile::{
    BackendSection, CommitPolicy, EnvSection, FilesystemSection, Limits, NetworkMode,
    NetworkSection, ProcessSection, Profile, RootMode, SeccompMode, WorkspaceMode,
    WorkspaceSection,
};

/// One way a candidate profile reaches further than its ceiling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Widening {
    /// The field as written in a profile file: `network.mode`, `secrets.TOKEN`.
    pub field: String,
    pub detail: String,
}

/// Every way `candidate` is wider than `ceiling`; empty when it only narrows.
pub fn widenings(candidate: &Profile, ceiling: &Profile) -> Vec<Widening> {
    let Profile {
        description: _,
        extends: _,
        backend,
        filesystem,
        network,
        limits,
        process,
        secrets,
    } = candidate;
    // The most dangerous first: the error names the first widening in full.
    let mut found = Found(Vec::new());
    found.process(process, &ceiling.process);
    found.network(network, &ceiling.network);
    found.filesystem(filesystem, &ceiling.filesystem);
    found.backend(backend, &ceiling.backend);
    found.limits(limits, &ceiling.limits);
    for (name, spec) in secrets {
        if ceiling.secrets.get(name) != Some(spec) {
            found.push(
                format!("secrets.{name}"),
                "a project cannot declare or redirect a secret: secrets come from the operator",
            );
        }
    }
    found.0
}

struct Found(Vec<Widening>);

impl Found {
    fn push(&mut self, field: impl Into<String>, detail: impl Into<String>) {
        self.0.push(Widening {
            field: field.into(),
            detail: detail.into(),
        });
    }

    /// `candidate` must not exceed `ceiling` on an ordered scale.
    fn at_most<T: PartialOrd + std::fmt::Display>(
        &mut self,
        field: &str,
        candidate: T,
        ceiling: T,
    ) {
        if candidate > ceiling {
            self.push(field, format!("{candidate} is more than {ceiling}"));
        }
    }

    fn equal<T: PartialEq + std::fmt::Debug>(&mut self, field: &str, candidate: &T, ceiling: &T) {
        if candidate != ceiling {
            self.push(
                field,
                format!(
                    "{candidate:?} differs from {ceiling:?}, and only the operator may change it"
                ),
            );
        }
    }

    fn backend(&mut self, candidate: &BackendSection, ceiling: &BackendSection) {
        let BackendSection { prefer, image } = candidate;
        self.equal("backend.prefer", prefer, &ceiling.prefer);
        self.equal("backend.image", image, &ceiling.image);
    }

    fn filesystem(&mut self, candidate: &FilesystemSection, ceiling: &FilesystemSection) {
        let FilesystemSection {
            root,
            workspace: WorkspaceSection { mount, mode },
            commit,
            scratch_view: _,
            tmpfs,
            shm,
            hide,
            read_only,
            read_write,
        } = candidate;
        // A bigger /dev/shm is more memory and disk the job may fill outside its workspace.
        self.at_most("filesystem.shm", *shm, ceiling.shm);
        self.equal(
            "filesystem.workspace.mount",
            mount,
            &ceiling.workspace.mount,
        );
        let mode_rank = |mode: WorkspaceMode| match mode {
            WorkspaceMode::Ro => 0,
            WorkspaceMode::Scratch => 1,
            WorkspaceMode::Rw => 2,
        };
        if mode_rank(*mode) > mode_rank(ceiling.workspace.mode) {
            self.push(
                "filesystem.workspace.mode",
                format!(
                    "`{mode}` lets the job write more than `{}`",
                    ceiling.workspace.mode
                ),
            );
        }
        let commit_rank = |commit: CommitPolicy| match commit {
            CommitPolicy::Never => 0,
            CommitPolicy::OnSuccess => 1,
            CommitPolicy::Always => 2,
        };
        if commit_rank(*commit) > commit_rank(ceiling.commit) {
            self.push(
                "filesystem.commit",
                format!(
                    "`{commit}` writes back more often than `{}`",
                    ceiling.commit
                ),
            );
        }
        // After the writes: the allowlisted root shows a subset of what the read-only root shows.
        let root_rank = |root: RootMode| match root {
            RootMode::Allowlist => 0,
            RootMode::Readonly => 1,
        };
        if root_rank(*root) > root_rank(ceiling.root) {
            self.push(
                "filesystem.root",
                format!(
                    "`{root}` shows the job more of the host than `{}`",
                    ceiling.root
                ),
            );
        }
        // A tmpfs removed would show the host's directory beneath it; one added only covers.
        for (path, size) in &ceiling.tmpfs {
            match tmpfs.get(path) {
                None => self.push(
                    "filesystem.tmpfs",
                    format!("drops the tmpfs on {path}, which would show the host's {path}"),
                ),
                Some(own) if own > size => self.push(
                    "filesystem.tmpfs",
                    format!("{path} = {own} is more than {size}"),
                ),
                Some(_) => {}
            }
        }
        for path in &ceiling.hide {
            if !hide
                .iter()
                .any(|own| path.as_path().starts_with(own.as_path()))
            {
                self.push(
                    "filesystem.hide",
                    format!("no longer hides {path} from the job"),
                );
            }
        }
        let covered_by = |path: &Path, lists: &[&[crate::profile::AbsolutePath]]| {
            lists
                .iter()
                .flat_map(|list| list.iter())
                .any(|allowed| path.starts_with(allowed.as_path()))
        };
        for path in read_only {
            if !covered_by(path.as_path(), &[&ceiling.read_only, &ceiling.read_write]) {
                self.push(
                    "filesystem.read_only",
                    format!("shows the host's {path}, which the operator's profile does not"),
                );
            }
        }
        for path in read_write {
            if !covered_by(path.as_path(), &[&ceiling.read_write]) {
                self.push(
                    "filesystem.read_write",
                    format!(
                        "makes the host's {path} writable, which the operator's profile does not"
                    ),
                );
            }
        }
    }

    fn network(&mut self, candidate: &NetworkSection, ceiling: &NetworkSection) {
        let NetworkSection {
            mode,
            allow,
            idle_timeout,
            connection_time,
            max_connections,
            resolve_names_for_address_rules,
        } = candidate;
        if *resolve_names_for_address_rules && !ceiling.resolve_names_for_address_rules {
            self.push(
                "network.resolve_names_for_address_rules",
                "lets the proxy resolve any name the job asks for, which the operator's profile \
                 does not",
            );
        }
        let rank = |mode: NetworkMode| match mode {
            NetworkMode::None => 0,
            NetworkMode::Allowlist => 1,
            NetworkMode::Host => 2,
        };
        if rank(*mode) > rank(ceiling.mode) {
            self.push(
                "network.mode",
                format!("`{mode}` reaches further than `{}`", ceiling.mode),
            );
        }
        if *mode == NetworkMode::Allowlist && ceiling.mode == NetworkMode::Allowlist {
            let denies = |rule: &&String| rule.starts_with('!');
            for rule in allow.iter().filter(|rule| !denies(rule)) {
                if !ceiling.allow.contains(rule) {
                    self.push(
                        "network.allow",
                        format!("allows `{rule}`, which the operator's profile does not"),
                    );
                }
            }
            for rule in ceiling.allow.iter().filter(denies) {
                if !allow.contains(rule) {
                    self.push("network.allow", format!("drops the deny rule `{rule}`"));
                }
            }
        }
        self.at_most("network.idle_timeout", *idle_timeout, ceiling.idle_timeout);
        self.at_most(
            "network.connection_time",
            *connection_time,
            ceiling.connection_time,
        );
        self.at_most(
            "network.max_connections",
            *max_connections,
            ceiling.max_connections,
        );
    }

    fn limits(&mut self, candidate: &Limits, ceiling: &Limits) {
        let Limits {
            memory,
            cpus,
            pids,
            wall_time,
            cpu_time,
            open_files,
            file_size,
            disk,
            files,
            changed_files,
            changed_lines,
            output,
        } = candidate;
        self.at_most("limits.memory", *memory, ceiling.memory);
        self.at_most("limits.cpus", *cpus, ceiling.cpus);
        self.at_most("limits.pids", *pids, ceiling.pids);
        self.at_most("limits.wall_time", *wall_time, ceiling.wall_time);
        self.at_most("limits.cpu_time", *cpu_time, ceiling.cpu_time);
        self.at_most("limits.open_files", *open_files, ceiling.open_files);
        self.at_most("limits.file_size", *file_size, ceiling.file_size);
        self.at_most("limits.disk", *disk, ceiling.disk);
        self.at_most("limits.files", *files, ceiling.files);
        self.at_most("limits.output", *output, ceiling.output);
        for (field, own, cap) in [
            ("limits.changed_files", changed_files, ceiling.changed_files),
            ("limits.changed_lines", changed_lines, ceiling.changed_lines),
        ] {
            match (own, cap) {
                (None, Some(cap)) => self.push(field, format!("drops the cap of {cap}")),
                (Some(own), Some(cap)) => self.at_most(field, *own, cap),
                (_, None) => {}
            }
        }
    }

    fn process(&mut self, candidate: &ProcessSection, ceiling: &ProcessSection) {
        let ProcessSection {
            user,
            env: EnvSection { pass, set: _ },
            seccomp,
            require,
        } = candidate;
        self.equal("process.user", &user.to_string(), &ceiling.user.to_string());
        for name in pass {
            if !ceiling.env.pass.contains(name) {
                self.push(
                    "process.env.pass",
                    format!("passes the host's ${name}, which the operator's profile does not"),
                );
            }
        }
        let rank = |mode: SeccompMode| match mode {
            SeccompMode::Off => 0,
            SeccompMode::Default => 1,
            SeccompMode::Strict => 2,
        };
        if rank(*seccomp) < rank(ceiling.seccomp) {
            self.push(
                "process.seccomp",
                format!("{seccomp:?} filters less than {:?}", ceiling.seccomp).to_lowercase(),
            );
        }
        for feature in &ceiling.require {
            if !require.contains(feature) {
                self.push("process.require", format!("no longer requires {feature}"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::load_with_search_path;

    fn builtin(name: &str) -> Profile {
        load_with_search_path(name, &[]).unwrap().profile
    }

    fn fields(candidate: &Profile, ceiling: &Profile) -> Vec<String> {
        widenings(candidate, ceiling)
            .into_iter()
            .map(|widening| widening.field)
            .collect()
    }

    #[test]
    fn a_profile_narrows_itself() {
        for name in ["strict", "standard", "networked", "gate", "permissive"] {
            let profile = builtin(name);
            assert_eq!(fields(&profile, &profile), Vec::<String>::new(), "{name}");
        }
    }

    #[test]
    fn strict_narrows_standard_and_not_the_other_way() {
        let (strict, standard) = (builtin("strict"), builtin("standard"));
        assert_eq!(fields(&strict, &standard), Vec::<String>::new());
        let wider = fields(&standard, &strict);
        for field in [
            "filesystem.root",
            "filesystem.workspace.mode",
            "filesystem.hide",
            "limits.memory",
            "process.seccomp",
            "process.require",
        ] {
            assert!(
                wider.iter().any(|found| found == field),
                "{field}: {wider:?}"
            );
        }
    }

    #[test]
    fn the_allowlisted_root_narrows_the_read_only_one_and_not_the_other_way() {
        let mut allowlisted = builtin("standard");
        allowlisted.filesystem.root = RootMode::Allowlist;
        let readonly = builtin("standard");
        assert_eq!(fields(&allowlisted, &readonly), Vec::<String>::new());
        assert_eq!(fields(&readonly, &allowlisted), ["filesystem.root"]);
    }

    #[test]
    fn permissive_is_wider_than_gate() {
        let wider = fields(&builtin("permissive"), &builtin("gate"));
        for field in [
            "network.mode",
            "filesystem.workspace.mode",
            "filesystem.hide",
        ] {
            assert!(
                wider.iter().any(|found| found == field),
                "{field}: {wider:?}"
            );
        }
    }

    #[test]
    fn each_widening_is_named() {
        let ceiling = builtin("strict");
        let mut candidate = ceiling.clone();
        candidate.process.user = "0:0".parse().unwrap();
        candidate.process.seccomp = SeccompMode::Off;
        candidate.network.mode = NetworkMode::Host;
        candidate.filesystem.read_write = vec!["/root".parse().unwrap()];
        candidate.filesystem.read_only = vec!["/etc/shadow".parse().unwrap()];
        candidate
            .filesystem
            .hide
            .retain(|path| path.as_path() != Path::new("/root"));
        candidate.filesystem.tmpfs.clear();
        candidate.limits.pids = ceiling.limits.pids + 1;
        candidate
            .process
            .env
            .pass
            .push("AWS_SECRET_ACCESS_KEY".into());
        candidate.secrets.insert(
            "SHADOW".into(),
            crate::profile::SecretSpec {
                from: "file:/etc/shadow".into(),
                deliver_as: "env".into(),
            },
        );
        candidate.backend.image = "attacker/image".into();
        candidate.network.resolve_names_for_address_rules = true;
        candidate.filesystem.shm = crate::profile::ByteSize(ceiling.filesystem.shm.0 + 1);
        let found = fields(&candidate, &ceiling);
        for field in [
            "process.user",
            "process.seccomp",
            "network.mode",
            "filesystem.read_write",
            "filesystem.read_only",
            "filesystem.hide",
            "filesystem.tmpfs",
            "limits.pids",
            "process.env.pass",
            "secrets.SHADOW",
            "backend.image",
            "network.resolve_names_for_address_rules",
            "filesystem.shm",
        ] {
            assert!(found.iter().any(|f| f == field), "{field}: {found:?}");
        }
    }

    #[test]
    fn allow_rules_may_shrink_but_not_grow() {
        let mut ceiling = builtin("networked");
        ceiling.network.allow = vec!["a.example:443".into(), "!b.example:*".into()];
        let mut candidate = ceiling.clone();
        candidate.network.allow = vec!["!c.example:*".into(), "!b.example:*".into()];
        assert!(fields(&candidate, &ceiling).is_empty());
        candidate.network.allow = vec!["a.example:443".into(), "evil.example:443".into()];
        assert_eq!(
            fields(&candidate, &ceiling),
            vec!["network.allow".to_owned(), "network.allow".to_owned()],
            "one allow added, one deny dropped"
        );
    }

    #[test]
    fn hiding_a_parent_still_hides_the_path() {
        let ceiling = builtin("strict");
        let mut candidate = ceiling.clone();
        candidate.filesystem.hide = vec!["/".parse().unwrap()];
        assert!(!fields(&candidate, &ceiling).contains(&"filesystem.hide".to_owned()));
    }
}
