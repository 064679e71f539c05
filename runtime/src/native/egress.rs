//! The allowlist on the native backend. The job keeps its empty network namespace; the proxy
//! runs in the supervisor (the host's network) on a unix socket that is bind-mounted into the
//! jail, and the jail's init forwards `127.0.0.1:3128` inside the namespace to that socket. The
//! only way out is therefore the proxy, which decides every connection.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use crate::error::SandboxError;
use crate::events::Observer;

use crate::network::{Listener, NetworkEvent, Proxy, ProxyConfig};

/// Where the proxy's socket appears inside the jail: a directory of the jail's own root, which
/// no `hide` entry can cover.
pub const JAIL_SOCKET: &str = "/.sandbox/proxy.sock";

/// The proxy of one job, listening on a socket in a private directory.
pub struct Egress {
    dir: PathBuf,
    listener: Option<std::os::unix::net::UnixListener>,
}

impl Egress {
    /// Creates the socket (before the jail is cloned: it is bind-mounted into it).
    pub fn prepare(job_id: &str) -> Result<Egress, SandboxError> {
        let dir = egress_dir(job_id);
        // Before the clone, so that the jail's forwarder inherits the higher limit too.
        raise_open_file_limit();
        let io = |what: &str, path: &Path| {
            let path = path.to_owned();
            let what = what.to_owned();
            move |source| SandboxError::Io { what, path, source }
        };
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(io("create the proxy's directory", &dir))?;
        let socket = dir.join("proxy.sock");
        let listener = std::os::unix::net::UnixListener::bind(&socket)
            .map_err(io("listen on the proxy's socket", &socket))?;
        Ok(Egress {
            dir,
            listener: Some(listener),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.join("proxy.sock")
    }

    /// Starts serving in a thread of its own (call after the clone: the jail must be cloned
    /// from a single-threaded process).
    pub fn start(
        &mut self,
        config: ProxyConfig,
        observer: Observer,
    ) -> Result<RunningProxy, SandboxError> {
        let listener = self
            .listener
            .take()
            .ok_or_else(|| SandboxError::Setup("the egress proxy was started twice".into()))?;
        let proxy = Proxy::new(config, observer);
        let serving = proxy.clone();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|source| SandboxError::Io {
                what: "start the egress proxy's runtime".into(),
                path: self.socket(),
                source,
            })?;
        let thread = std::thread::spawn(move || {
            runtime.block_on(async move {
                let listener = listener
                    .set_nonblocking(true)
                    .and_then(|()| tokio::net::UnixListener::from_std(listener));
                if let Ok(listener) = listener {
                    serving.serve(Listener::Unix(listener)).await;
                }
            });
        });
        Ok(RunningProxy { proxy, thread })
    }
}

fn egress_dir(job_id: &str) -> PathBuf {
    std::env::temp_dir().join(format!("{EGRESS_PREFIX}{job_id}"))
}

const EGRESS_PREFIX: &str = "sandbox-egress-";

/// Proxy directories whose `sandbox` is gone: removed, and named in the result.
pub fn remove_leftovers() -> Vec<PathBuf> {
    crate::spec::orphaned_dirs(EGRESS_PREFIX)
        .into_iter()
        .filter(|dir| std::fs::remove_dir_all(dir).is_ok())
        .collect()
}

/// Each proxied connection holds two descriptors in the proxy and two in the forwarder; a job
/// may open hundreds at once. (The job itself gets `limits.open_files`.)
fn raise_open_file_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
        }
    }
}

impl Drop for Egress {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub struct RunningProxy {
    proxy: Proxy,
    thread: JoinHandle<()>,
}

impl RunningProxy {
    /// Closes what is still open (the job is over) and returns every connection attempt.
    pub fn finish(self) -> Vec<NetworkEvent> {
        self.proxy.stop();
        let _ = self.thread.join();
        self.proxy.events()
    }
}

/// Inside the jail: accepts on 127.0.0.1:PORT and passes each connection, as a descriptor, to
/// the proxy over its socket; the proxy then reads and writes the job's socket itself. Runs in
/// a thread of the jail's init, which forks nothing after starting it.
pub fn forward(listener: std::net::TcpListener, socket: PathBuf) {
    std::thread::spawn(move || crate::network::forwarder::forward_connections(&listener, &socket));
}
