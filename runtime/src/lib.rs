//! `sandbox-runtime`: profiles, the job spec, the native backend and the Outcome.
//!
//! One `JobSpec` in, one `Outcome` out: [`run`] picks the backend and runs the job.

pub mod audit;
pub mod docker;
pub mod error;
pub mod events;
pub mod gc;
pub mod host;
pub mod native;
pub mod network;
pub mod outcome;
pub mod output;
pub mod ownership;
pub mod profile;
pub mod scratch;
pub mod secrets;
mod signals;
pub mod spec;
pub mod toolchains;
pub mod trust;
pub mod view;
pub mod workspace;
mod writeback;

pub use error::SandboxError;
pub use outcome::{Outcome, Status};
pub use spec::{JobSpec, OutputMode, Overrides};

/// How long `auto` waits for a Docker engine before running natively.
pub const AUTO_ENGINE_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(500);

/// Runs one job: prepares a scratch view when the workspace mode asks for one, runs the job on
/// its backend, then settles the view's changes (caps, secrets, commit) and redacts every
/// secret from what the Outcome reports.
pub fn run(spec: &JobSpec) -> Result<Outcome, SandboxError> {
    let (mut outcome, held) = run_holding(spec)?;
    if let Some(held) = held {
        held.settle(&mut outcome, None)?;
    }
    Ok(outcome)
}

/// A scratch job that has ended, its changes measured but not written back yet: what
/// `sandbox check` runs the gates on before deciding.
pub struct Held {
    spec: JobSpec,
    scratch: scratch::Scratch,
    assessment: writeback::Assessment,
}

impl Held {
    /// The job's view of the workspace, with its changes (a host directory).
    pub fn view(&self) -> &std::path::Path {
        self.scratch.view()
    }

    /// Writes the changes back per the commit policy unless `veto` says why not, then removes
    /// the view.
    pub fn settle(
        self,
        outcome: &mut Outcome,
        veto: Option<&'static str>,
    ) -> Result<(), SandboxError> {
        let Held {
            spec,
            scratch,
            assessment,
        } = self;
        writeback::settle(&spec, &scratch, outcome, assessment, veto)?;
        if let Err(error) = scratch.remove() {
            outcome
                .notes
                .push(format!("cleanup: {}", error.with_causes()));
        }
        redact(&spec, outcome);
        Ok(())
    }
}

/// Like [`run`], but a scratch job's changes are only measured: the returned [`Held`] writes
/// them back (or not) when the caller has decided.
pub fn run_holding(spec: &JobSpec) -> Result<(Outcome, Option<Held>), SandboxError> {
    let (backend, reason) = choose_backend(spec);
    spec.observer.emit(events::JobEvent::JobStarted {
        backend: backend.name().into(),
        profile: spec.profile.clone(),
        command: spec.command.clone(),
    });
    let ran = run_chosen(spec, backend, reason);
    // Writing a scratch job's changes back (`Held::settle`) changes neither its status nor its
    // exit code: the job is over now, also for `sandbox check`, whose gates run after it.
    match &ran {
        Ok((outcome, _)) => spec.observer.finished(outcome),
        Err(error) => spec.observer.failed(error),
    }
    ran
}

fn run_chosen(
    spec: &JobSpec,
    backend: Backend,
    reason: String,
) -> Result<(Outcome, Option<Held>), SandboxError> {
    let scratch = match spec.workspace_mode {
        profile::WorkspaceMode::Scratch => scratch::Scratch::prepare(spec)?,
        _ => {
            let (owned, notes) = ownership::OwnerView::prepare(spec)?;
            let mut outcome = match &owned {
                Some(view) => {
                    let mut viewed = spec.clone();
                    viewed.view = Some(view.path());
                    backend.run(&viewed, reason)?
                }
                None => backend.run(spec, reason)?,
            };
            outcome.notes.extend(notes);
            if let Some(Err(error)) = owned.map(ownership::OwnerView::remove) {
                outcome
                    .notes
                    .push(format!("cleanup: {}", error.with_causes()));
            }
            redact(spec, &mut outcome);
            return Ok((outcome, None));
        }
    };
    let mut viewed = spec.clone();
    viewed.view = Some(scratch.view().to_owned());
    let mut outcome = backend.run(&viewed, reason)?;
    let assessment = writeback::assess(spec, &scratch, &mut outcome)?;
    redact(spec, &mut outcome);
    Ok((
        outcome,
        Some(Held {
            spec: spec.clone(),
            scratch,
            assessment,
        }),
    ))
}

/// The job's output was redacted as it streamed; this covers what the Outcome says besides.
fn redact(spec: &JobSpec, outcome: &mut Outcome) {
    if spec.redactor.is_empty() {
        return;
    }
    let count = std::cell::Cell::new(0);
    let clean = |text: &mut String| {
        let (redacted, found) = spec.redactor.redact_str(text);
        count.set(count.get() + found);
        *text = redacted;
    };
    outcome.command.iter_mut().for_each(clean);
    outcome.notes.iter_mut().for_each(clean);
    for event in &mut outcome.network.events {
        clean(&mut event.host);
        clean(&mut event.reason);
    }
    // Names are content too: a path that spells a secret, even split across directories
    // (`ab/cd` for `abcd`), is replaced whole.
    let clean_path = |path: &mut String| {
        let joined = path.replace('/', "");
        let found = spec.redactor.find(joined.as_bytes());
        if found.is_empty() {
            clean(path);
        } else {
            *path = format!("[REDACTED:{}]", found.join(","));
            count.set(count.get() + 1);
        }
    };
    let workspace = &mut outcome.workspace;
    for list in [
        &mut workspace.added,
        &mut workspace.modified,
        &mut workspace.deleted,
        &mut workspace.mode_changed,
        &mut workspace.skipped,
        &mut workspace.protected,
        &mut workspace.dropped,
    ] {
        list.iter_mut().for_each(clean_path);
    }
    for link in &mut workspace.symlinks {
        clean_path(&mut link.path);
        clean_path(&mut link.target);
    }
    for file in &mut workspace.secret_files {
        clean_path(&mut file.path);
    }
    outcome.redactions += count.get();
}

#[derive(Debug, Clone, Copy)]
enum Backend {
    Native,
    Docker,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Native => "native",
            Backend::Docker => "docker",
        }
    }

    fn run(self, spec: &JobSpec, reason: String) -> Result<Outcome, SandboxError> {
        match self {
            Backend::Native => native::run(spec, reason),
            Backend::Docker => docker::run(spec, reason),
        }
    }
}

/// `auto` takes docker when an engine answers within 500 ms and has the image, else native;
/// the reason goes into the Outcome.
fn choose_backend(spec: &JobSpec) -> (Backend, String) {
    use profile::BackendChoice;
    match spec.backend {
        BackendChoice::Native => (Backend::Native, "native requested".into()),
        BackendChoice::Docker => (Backend::Docker, "docker requested".into()),
        BackendChoice::Auto => match docker::engine_info(&spec.image, AUTO_ENGINE_TIMEOUT) {
            Ok(engine) if engine.image_present => (
                Backend::Docker,
                format!(
                    "auto: docker {} answered and has {}",
                    engine.version, spec.image
                ),
            ),
            Ok(engine) => (
                Backend::Native,
                format!(
                    "auto: native (docker {} has no image {}; run `sandbox image build`)",
                    engine.version, spec.image
                ),
            ),
            Err(why) => (Backend::Native, format!("auto: native ({why})")),
        },
    }
}
