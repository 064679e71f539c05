//! The egress forwarder as a program of its own, for a container whose network namespace the
//! supervisor cannot enter (an unprivileged caller of a local engine: `setns` needs root). It
//! runs inside the container before the job, as the job's user: it listens on the container's
//! own 127.0.0.1:PORT and hands each connection, as a descriptor, to the proxy over the proxy's
//! socket, bound into the container — what the native jail's init does in a thread
//! (`native::egress::forward`). The proxy still decides every connection; the forwarder only
//! carries descriptors, and what it sends is checked (`fdpass::receive_tcp`).

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::network::fdpass;

/// Where the container sees the forwarder program and the proxy's socket directory.
pub const PROGRAM_IN_CONTAINER: &str = "/.sandbox-forward";
pub const SOCKET_DIR_IN_CONTAINER: &str = "/.sandbox-egress";
/// The subcommand of the program that runs `serve`.
pub const SUBCOMMAND: &str = "egress-forward";

static PROGRAM: OnceLock<PathBuf> = OnceLock::new();

/// Tells the runtime that `program SUBCOMMAND PORT SOCKET` runs `serve` (the `sandbox` CLI
/// registers itself). A library caller that registers nothing gets a refusal where a forwarder
/// is needed, never a job without its proxy.
pub fn register_program(program: PathBuf) {
    let _ = PROGRAM.set(program);
}

pub fn program() -> Option<&'static Path> {
    PROGRAM.get().map(PathBuf::as_path)
}

/// Listens on 127.0.0.1:`port`, then forks: the parent returns once the port is open (the job
/// may start), the child forwards until the container ends. Call from a single-threaded
/// process (the CLI's hidden subcommand, before anything else).
pub fn serve(port: u16, socket: &Path) -> std::io::Result<()> {
    let listener = std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, port))?;
    // SAFETY: the caller is single-threaded (see above), so the child may run anything.
    #[allow(unsafe_code)]
    let forked = unsafe { nix::unistd::fork() }.map_err(std::io::Error::from)?;
    match forked {
        nix::unistd::ForkResult::Parent { .. } => Ok(()),
        nix::unistd::ForkResult::Child => {
            // The job's output streams must close when the job ends, not when we do.
            if let Ok(null) = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/null")
            {
                let _ = nix::unistd::dup2_stdin(&null);
                let _ = nix::unistd::dup2_stdout(&null);
                let _ = nix::unistd::dup2_stderr(&null);
            }
            forward_connections(&listener, socket);
            std::process::exit(0)
        }
    }
}

/// Accepts on `listener` and passes each connection to the proxy listening on `socket`.
pub fn forward_connections(listener: &std::net::TcpListener, socket: &Path) {
    for client in listener.incoming().flatten() {
        if let Ok(carrier) = std::os::unix::net::UnixStream::connect(socket) {
            let _ = fdpass::send_fd(&carrier, client.as_raw_fd());
        }
    }
}
