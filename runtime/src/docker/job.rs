//! One job as a container: create it, attach to its output, start it, wait for it under the
//! wall-time limit, read how it ended, and remove it, however the job ends.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bollard::container::LogOutput;
use bollard::errors::Error as EngineError;
use bollard::query_parameters::{
    AttachContainerOptions, CreateContainerOptions, KillContainerOptions,
};
use bollard::Docker;
use futures_util::{Stream, StreamExt};
use tokio::io::AsyncWriteExt;

use crate::error::SandboxError;
use crate::native::egress::{Egress, RunningProxy};
use crate::native::seccomp::docker_profile;
use crate::network::{self, Listener, Proxy};
use crate::outcome::{CgroupLimit, Ending, Isolation, Outcome};
use crate::output::{Captured, OutputSink};
use crate::profile::{Feature, NetworkMode, SeccompMode};
use crate::spec::{JobSpec, OutputMode};

use super::cleanup::{self, Supervisor};
use super::config::{self, Forwarder, Inputs};
use super::engine::{self, describe, EngineFacts};
use super::host::{self, CgroupSample, InitProcess};
use super::interrupts::Interrupts;

/// Connecting may take longer than `auto`'s 500 ms: here an engine is required, not probed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// After the kill at the wall-time limit, how long the engine may take to report the end.
const KILL_GRACE: Duration = Duration::from_secs(30);
/// After the exit, how long the attach stream may take to deliver what is still buffered.
const DRAIN_GRACE: Duration = Duration::from_secs(10);
/// How often the container's cgroup is read while the job runs (see `watching` in `drive`).
const SAMPLE_EVERY: Duration = Duration::from_millis(20);
/// Chunks of output in flight to the thread that writes them to our stdout/stderr.
const FORWARD_QUEUE: usize = 64;

/// How a job ended before there was an Outcome.
enum Failure {
    /// `sandbox` got SIGINT, SIGTERM or SIGHUP.
    Interrupted(i32),
    /// The engine stopped answering, or answered nonsense, while the job ran.
    Engine(String),
    /// Anything else, already worded for the user.
    Sandbox(SandboxError),
}

impl From<SandboxError> for Failure {
    fn from(error: SandboxError) -> Failure {
        Failure::Sandbox(error)
    }
}

/// What cleanup must know however the job ends.
#[derive(Default)]
struct Live {
    /// The container may exist (its creation was asked for): remove it by name.
    created: bool,
    init: Option<Rc<InitProcess>>,
}

pub async fn run(spec: &JobSpec, backend_reason: String) -> Result<Outcome, SandboxError> {
    let interrupts = Interrupts::block()?;
    let docker = tokio::select! {
        biased;
        signal = interrupts.next() => return Err(SandboxError::Interrupted { signal }),
        docker = engine::connect(CONNECT_TIMEOUT) => docker?,
    };
    let name = format!("sandbox-{}", spec.id);
    let live = RefCell::new(Live::default());
    let result = tokio::select! {
        biased;
        signal = interrupts.next() => Err(Failure::Interrupted(signal)),
        result = drive(&docker, spec, backend_reason, &name, &live) => result,
    };
    let live = live.into_inner();
    // Nothing of the job may outlive us: kill its init first when the job did not end on its
    // own (that needs no engine), then have the engine remove the container.
    let mut killed = None;
    if result.is_err() {
        killed = live.init.as_ref().map(|init| init.kill());
    }
    let removed = if live.created {
        cleanup::remove(&docker, &name).await
    } else {
        Ok(())
    };
    match result {
        Ok(mut outcome) => {
            if let Err(why) = removed {
                outcome.notes.push(format!(
                    "cleanup: container {name} could not be removed ({why}); run `sandbox gc`"
                ));
            }
            Ok(outcome)
        }
        Err(Failure::Interrupted(signal)) => Err(SandboxError::Interrupted { signal }),
        Err(Failure::Sandbox(error)) => Err(error),
        Err(Failure::Engine(detail)) => {
            let job = match killed {
                Some(Ok(())) => "the job was killed".to_owned(),
                Some(Err(why)) => format!("the job could not be killed from here ({why})"),
                None => "the job's processes are the engine's to stop".to_owned(),
            };
            let container = match removed {
                Ok(()) => format!("container {name} was removed"),
                Err(why) => format!(
                    "container {name} could not be removed ({why}): run `sandbox gc` once the \
                     engine answers again"
                ),
            };
            Err(SandboxError::EngineUnavailable(format!(
                "could not run the job through the Docker engine ({}): {detail}; {job}; \
                 {container}",
                engine::endpoint()
            )))
        }
    }
}

async fn drive(
    docker: &Docker,
    spec: &JobSpec,
    backend_reason: String,
    name: &str,
    live: &RefCell<Live>,
) -> Result<Outcome, Failure> {
    let (facts, image) = tokio::join!(engine::facts(docker), engine::image(docker, &spec.image));
    let facts = facts.map_err(|e| engine_failure("asking for the engine's facts", &e))?;
    let image = image
        .map_err(|why| Failure::Sandbox(SandboxError::Setup(why)))?
        .ok_or_else(|| Failure::Sandbox(engine::missing_image(&spec.image)))?;
    config::check_requirements(spec, &facts)?;
    let local = engine::is_local(&engine::endpoint());
    if spec.network == NetworkMode::Allowlist && !local {
        return Err(Failure::Sandbox(SandboxError::Refused {
            feature: "network allowlist".into(),
            reason: format!(
                "the engine at {} is not on this host: the egress proxy must listen inside the \
                 container's network namespace",
                engine::endpoint()
            ),
        }));
    }
    // Unprivileged, the container's network namespace is out of reach (`setns` needs root):
    // the proxy listens on a socket of ours instead, and a forwarder runs inside the container.
    let egress = if spec.network == NetworkMode::Allowlist && !nix::unistd::geteuid().is_root() {
        let program = network::forwarder::program().ok_or_else(|| {
            Failure::Sandbox(SandboxError::Refused {
                feature: "network allowlist".into(),
                reason: "unprivileged, the egress proxy cannot listen inside the container's \
                         network namespace (entering it needs root), and no forwarder program \
                         is registered (the sandbox CLI registers itself; a library caller \
                         calls network::forwarder::register_program)"
                    .into(),
            })
        })?;
        let egress = Egress::prepare(&spec.id).map_err(Failure::Sandbox)?;
        Some((egress, program.to_owned()))
    } else {
        None
    };
    let inputs = Inputs {
        forwarder: egress.as_ref().map(|(egress, program)| Forwarder {
            program: program.clone(),
            socket_dir: egress.dir().to_owned(),
        }),
        mirrored_init: if local {
            host::mirrored_init(&image.mirrors, facts.init_binary.as_deref())
        } else {
            None
        },
        hidden: config::classify_hidden(spec, &image.mirrors, |path| path.exists()),
        seccomp: (spec.seccomp != SeccompMode::Off)
            .then(|| docker_profile(spec.seccomp).to_string()),
        labels: Supervisor::current().labels(spec),
        mirrors: image.mirrors,
    };
    let body = config::container(spec, &inputs)?;

    // From here the container may exist even if we are interrupted mid-request.
    live.borrow_mut().created = true;
    let create = CreateContainerOptions {
        name: Some(name.to_owned()),
        ..CreateContainerOptions::default()
    };
    let created = docker
        .create_container(Some(create), body)
        .await
        .map_err(|e| refused_or_failed("create the container", &e))?;
    let gated = config::gated(spec);
    let attach = AttachContainerOptions {
        stream: true,
        stdin: gated,
        stdout: true,
        stderr: true,
        ..AttachContainerOptions::default()
    };
    let attached = docker
        .attach_container(name, Some(attach))
        .await
        .map_err(|e| engine_failure("attaching to the container's output", &e))?;
    let started = Instant::now();
    let start = docker.start_container(name, None);
    tokio::pin!(start);
    let catching = host::catch_init(&created.id);
    tokio::pin!(catching);
    let mut init = None;
    let start = loop {
        tokio::select! {
            biased;
            result = &mut start => break result,
            found = &mut catching, if local && init.is_none() => {
                let found = Rc::new(found);
                live.borrow_mut().init = Some(Rc::clone(&found));
                init = Some(found);
            }
        }
    };
    start.map_err(|e| refused_or_failed("start the container", &e))?;
    let deadline = started + spec.limits.wall_time.0;
    if local && init.is_none() {
        // An engine that puts cgroups elsewhere: its word on the pid, if the job still runs.
        let state = docker
            .inspect_container(name, None)
            .await
            .map_err(|e| engine_failure("inspecting the started container", &e))?
            .state;
        init = state
            .and_then(|state| state.pid)
            .and_then(|pid| InitProcess::find(pid, &created.id))
            .map(Rc::new);
        live.borrow_mut().init = init.clone();
    }

    let forwarded = egress.is_some();
    let proxy = if let Some((mut egress, _)) = egress {
        let running = egress
            .start(spec.proxy.clone(), spec.observer.clone())
            .map_err(Failure::Sandbox)?;
        Some(JobProxy::Forwarded(running, egress))
    } else if spec.network == NetworkMode::Allowlist {
        let init = init.as_deref().ok_or_else(|| {
            Failure::Sandbox(SandboxError::Refused {
                feature: "network allowlist".into(),
                reason: "the container's init could not be found from here, and its network \
                         namespace is where the egress proxy listens"
                    .into(),
            })
        })?;
        let (proxy, serving) = start_proxy(spec, name, init)?;
        Some(JobProxy::InNamespace(proxy, serving))
    } else {
        None
    };
    if gated {
        // The job has been waiting for this line (config::GATE): the proxy's port is open
        // inside the container by now, and the line carries the secrets.
        let mut input = attached.input;
        input
            .write_all(&config::gate_line(spec, forwarded))
            .await
            .and(input.shutdown().await)
            .map_err(|e| Failure::Engine(format!("releasing the job (config::GATE): {e}")))?;
    }
    let output_stream = attached.output;

    let (done, _) = tokio::sync::watch::channel(false);
    let waiting = async {
        let waited = wait(docker, name, deadline, init.as_deref()).await;
        done.send_replace(true);
        waited
    };
    let output = Output::new(spec);
    let pumping = pump(output_stream, output, done.subscribe());
    let watching = async {
        let init = init.as_deref()?;
        let mut finished = done.subscribe();
        let exited = init.exited();
        tokio::pin!(exited);
        // The read at the init's exit is final, but races the runtime's removal of the cgroup
        // when this host is loaded; a recent reading stands in for it then.
        let mut last = init.sample();
        loop {
            tokio::select! {
                biased;
                () = &mut exited => return init.sample().or(last),
                _ = finished.wait_for(|done| *done) => return init.sample().or(last),
                () = tokio::time::sleep(SAMPLE_EVERY) => last = init.sample().or(last),
            }
        }
    };
    let ((exit, timed_out), output, sample) = tokio::join!(waiting, pumping, watching);
    let duration = started.elapsed();
    let code = exit?;
    let (stdout, stderr) = output.finish().await;

    // The engine's word on OOM, for remote engines and in case the cgroup was gone already.
    let oom_killed = docker
        .inspect_container(name, None)
        .await
        .ok()
        .and_then(|container| container.state)
        .and_then(|state| state.oom_killed)
        .unwrap_or(false);

    let events = match proxy {
        Some(JobProxy::InNamespace(proxy, serving)) => {
            proxy.stop();
            let _ = serving.await;
            proxy.events()
        }
        Some(JobProxy::Forwarded(running, _egress)) => running.finish(),
        None => Vec::new(),
    };

    let mut outcome = Outcome::new(spec, "docker", backend_reason, isolation(spec, &facts));
    outcome.network.events = events;
    // The engine drops a limit its kernel cannot enforce with a warning only; the Outcome names
    // it (issue 16). A profile requiring `cgroup` was refused in `check_requirements`.
    outcome.unenforced(
        spec,
        &facts.unsupported_limits,
        "the Docker engine's kernel lacks the cgroup controller",
    );
    if facts.swap_unlimited && !facts.unsupported_limits.contains(&CgroupLimit::Memory) {
        outcome.unenforced(
            spec,
            &[CgroupLimit::Memory],
            "it caps RAM only: the Docker engine cannot limit swap (docker info: \
             \"No swap limit support\")",
        );
    }
    outcome.duration_ms = duration.as_secs_f64() * 1000.0;
    outcome
        .notes
        .extend(created.warnings.into_iter().map(|w| format!("engine: {w}")));
    if spec.require.contains(&Feature::Landlock) {
        // Not a refusal: the container's read-only root and its mounts are what confines
        // writes here, and `isolation.landlock_abi` is null for all to see.
        outcome.notes.push(
            "landlock (required by the profile) is not applied in a container; its read-only \
             root and mounts confine the job's writes"
                .into(),
        );
    }
    let sample = sample.unwrap_or_else(|| {
        outcome.notes.push(if local {
            "the container's cgroup could not be read: no CPU time, peak memory or pids count"
                .into()
        } else {
            "the engine is not local: no CPU time, peak memory or pids count".into()
        });
        CgroupSample::default()
    });
    outcome.cpu_ms = sample.cpu.unwrap_or_default().as_secs_f64() * 1000.0;
    outcome.peak_memory_bytes = sample.peak_memory;
    outcome.set_output(spec.output, stdout, stderr);
    let (exit_code, signal) = split_exit_code(code);
    if signal.is_some() && !timed_out {
        outcome.notes.push(format!(
            "the container reported exit code {code}, read as signal {}: under docker a job \
             that exits with 128+N itself looks the same",
            code - 128
        ));
    }
    outcome
        .conclude(
            spec,
            Ending {
                timed_out,
                exit_code,
                signal,
                oom_kills: sample.oom_kills.max(u64::from(oom_killed)),
                pids_max_hits: sample.pids_max_hits,
                ..Ending::default()
            },
        )
        .map_err(|why| Failure::Sandbox(SandboxError::Setup(why)))?;
    Ok(outcome)
}

/// An allowlist job's proxy: listening inside the container's network namespace (root), or on
/// a socket of ours that the forwarder inside the container hands connections to (the
/// directory goes when the `Egress` does).
enum JobProxy {
    InNamespace(Proxy, tokio::task::JoinHandle<()>),
    Forwarded(RunningProxy, Egress),
}

/// The egress proxy for one container: listening on the container's own 127.0.0.1:3128 and
/// served on this runtime until the job ends.
fn start_proxy(
    spec: &JobSpec,
    name: &str,
    init: &InitProcess,
) -> Result<(Proxy, tokio::task::JoinHandle<()>), Failure> {
    let listener = init
        .listen_in_netns(network::PROXY_PORT)
        .and_then(|listener| {
            listener.set_nonblocking(true)?;
            tokio::net::TcpListener::from_std(listener)
        })
        .map_err(|source| {
            Failure::Sandbox(SandboxError::Io {
                what: format!(
                    "listen on 127.0.0.1:{} inside the container for the egress proxy (needs root)",
                    network::PROXY_PORT
                ),
                path: format!("the network namespace of container {name}").into(),
                source,
            })
        })?;
    let proxy = Proxy::new(spec.proxy.clone(), spec.observer.clone());
    let serving = proxy.clone();
    let task = tokio::spawn(async move { serving.serve(Listener::Tcp(listener)).await });
    Ok((proxy, task))
}

/// The job's exit code and signal from the container's. The init (docker-init, or the engine
/// itself when the init is killed) reports a job killed by signal N as 128+N, as a shell does,
/// so a job that calls `exit 137` is indistinguishable from one killed by SIGKILL; the native
/// backend sees the difference, here we read 129..=192 as signals.
fn split_exit_code(code: i64) -> (Option<i32>, Option<i32>) {
    match i32::try_from(code) {
        Ok(code @ 129..=192) => (None, Some(code - 128)),
        Ok(code) => (Some(code), None),
        Err(_) => (Some(255), None),
    }
}

/// Waits for the container to end, killing it at `deadline`. Returns its exit code (or why the
/// engine could not say) and whether the wall-time limit was hit.
async fn wait(
    docker: &Docker,
    name: &str,
    deadline: Instant,
    init: Option<&InitProcess>,
) -> (Result<i64, Failure>, bool) {
    let mut waiting = docker.wait_container(name, None);
    match tokio::time::timeout_at(deadline.into(), waiting.next()).await {
        Ok(item) => (exit_code(item), false),
        Err(_) => {
            kill(docker, name, init).await;
            match tokio::time::timeout(KILL_GRACE, waiting.next()).await {
                Ok(item) => (exit_code(item), true),
                Err(_) => (
                    Err(Failure::Engine(format!(
                        "the container was killed at the wall-time limit, and the engine did \
                         not report its end within {}s",
                        KILL_GRACE.as_secs()
                    ))),
                    true,
                ),
            }
        }
    }
}

/// A non-zero exit arrives as `DockerContainerWaitError`, not as a response.
fn exit_code(
    item: Option<Result<bollard::models::ContainerWaitResponse, EngineError>>,
) -> Result<i64, Failure> {
    match item {
        Some(Ok(response)) => Ok(response.status_code),
        Some(Err(EngineError::DockerContainerWaitError { code, .. })) => Ok(code),
        Some(Err(error)) => Err(engine_failure("waiting for the container", &error)),
        None => Err(Failure::Engine(
            "the engine ended the wait without an exit code".into(),
        )),
    }
}

/// SIGKILL to the container: straight to its init when we can (no engine round trip, works
/// when the engine hangs), else through the engine.
async fn kill(docker: &Docker, name: &str, init: Option<&InitProcess>) {
    if init.is_some_and(|init| init.kill().is_ok()) {
        return;
    }
    let options = KillContainerOptions {
        signal: "SIGKILL".into(),
    };
    let _ = docker.kill_container(name, Some(options)).await;
}

/// Copies the container's output into the sinks until the stream ends, or until `DRAIN_GRACE`
/// after the container's end when the engine keeps the stream open.
async fn pump(
    mut stream: std::pin::Pin<Box<dyn Stream<Item = Result<LogOutput, EngineError>> + Send>>,
    mut output: Output,
    mut done: tokio::sync::watch::Receiver<bool>,
) -> Output {
    let grace = async {
        let _ = done.wait_for(|done| *done).await;
        tokio::time::sleep(DRAIN_GRACE).await;
    };
    tokio::pin!(grace);
    loop {
        tokio::select! {
            biased;
            item = stream.next() => match item {
                Some(Ok(chunk)) => output.write(chunk).await,
                Some(Err(_)) | None => break,
            },
            () = &mut grace => break,
        }
    }
    output
}

/// Where the output goes: captured here (memory only, never blocks), or forwarded by a thread
/// of its own, so that a reader of our stdout that stalls cannot stall the wall-time limit or
/// the handling of signals (the job blocks on its full pipe instead, as under native).
enum Output {
    Capture {
        stdout: OutputSink,
        stderr: OutputSink,
    },
    Forward {
        chunks: tokio::sync::mpsc::Sender<LogOutput>,
        writer: std::thread::JoinHandle<(Captured, Captured)>,
    },
}

impl Output {
    fn new(spec: &JobSpec) -> Output {
        let (mut stdout, mut stderr) = OutputSink::pair(
            spec.output,
            spec.limits.output.0,
            &spec.redactor,
            &spec.observer,
        );
        match spec.output {
            OutputMode::Capture => Output::Capture { stdout, stderr },
            OutputMode::Stream => {
                let (chunks, mut receiver) = tokio::sync::mpsc::channel(FORWARD_QUEUE);
                let writer = std::thread::spawn(move || {
                    while let Some(chunk) = receiver.blocking_recv() {
                        write_chunk(&mut stdout, &mut stderr, &chunk);
                    }
                    (stdout.finish(), stderr.finish())
                });
                Output::Forward { chunks, writer }
            }
        }
    }

    async fn write(&mut self, chunk: LogOutput) {
        match self {
            Output::Capture { stdout, stderr } => write_chunk(stdout, stderr, &chunk),
            Output::Forward { chunks, .. } => {
                let _ = chunks.send(chunk).await;
            }
        }
    }

    async fn finish(self) -> (Captured, Captured) {
        match self {
            Output::Capture { stdout, stderr } => (stdout.finish(), stderr.finish()),
            Output::Forward { chunks, writer } => {
                drop(chunks);
                writer.join().unwrap_or_default()
            }
        }
    }
}

fn write_chunk(stdout: &mut OutputSink, stderr: &mut OutputSink, chunk: &LogOutput) {
    match chunk {
        LogOutput::StdErr { message } => stderr.write(message),
        LogOutput::StdOut { message } | LogOutput::Console { message } => stdout.write(message),
        LogOutput::StdIn { .. } => {}
    }
}

fn isolation(spec: &JobSpec, engine: &EngineFacts) -> Isolation {
    let mut namespaces = vec!["mount", "pid", "ipc", "uts", "cgroup"];
    if spec.network != NetworkMode::Host {
        namespaces.push("net");
    }
    if engine.user_namespace {
        namespaces.push("user");
    }
    Isolation {
        user_ns: engine.user_namespace,
        namespaces: namespaces.into_iter().map(str::to_owned).collect(),
        landlock_abi: None,
        seccomp: spec.seccomp != SeccompMode::Off,
        cgroup: engine.cgroup.clone(),
        net: spec.network,
        readonly_root: true,
        no_new_privs: true,
        capabilities_dropped: true,
        uid: super::config::container_user(spec).uid,
        gid: super::config::container_user(spec).gid,
    }
}

/// The engine could not be talked to, or lost the container: exit 125 with cleanup.
fn engine_failure(doing: &str, error: &EngineError) -> Failure {
    Failure::Engine(format!("{doing}: {}", describe(error)))
}

/// The engine answered but refused (a bind source that does not exist, a limit it cannot
/// set): the job could not be set up. Anything else is the engine failing.
fn refused_or_failed(what: &str, error: &EngineError) -> Failure {
    match error {
        EngineError::DockerResponseServerError { message, .. } => Failure::Sandbox(
            SandboxError::Setup(format!("the Docker engine could not {what}: {message}")),
        ),
        other => engine_failure(&format!("trying to {what}"), other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_above_128_are_signals() {
        assert_eq!(split_exit_code(0), (Some(0), None));
        assert_eq!(split_exit_code(127), (Some(127), None));
        assert_eq!(split_exit_code(137), (None, Some(9)));
        assert_eq!(split_exit_code(143), (None, Some(15)));
        assert_eq!(split_exit_code(255), (Some(255), None));
    }
}
