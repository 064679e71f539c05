//! Handing the job's TCP connections to the proxy itself (SCM_RIGHTS over the proxy's unix
//! socket), so that on the native backend the bytes go job -> proxy -> destination with no
//! forwarder copying them in between.

use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{
    getsockopt, recvmsg, sendmsg, sockopt, ControlMessage, ControlMessageOwned, MsgFlags, SockType,
    SockaddrLike, SockaddrStorage, UnixAddr,
};
use tokio::io::Interest;

/// Sends `fd` with one byte of payload (a message with ancillary data needs one).
pub fn send_fd(carrier: &std::os::unix::net::UnixStream, fd: RawFd) -> io::Result<()> {
    let fds = [fd];
    sendmsg::<UnixAddr>(
        carrier.as_raw_fd(),
        &[IoSlice::new(b"c")],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::MSG_NOSIGNAL,
        None,
    )?;
    Ok(())
}

/// Receives one descriptor from `carrier` and accepts it only if it is a connected TCP socket:
/// in a rootless jail the job itself can reach the proxy's socket, and what it sends is not
/// trusted.
pub async fn receive_tcp(carrier: &tokio::net::UnixStream) -> io::Result<std::net::TcpStream> {
    loop {
        carrier.readable().await?;
        match carrier.try_io(Interest::READABLE, || receive_fd(carrier.as_raw_fd())) {
            Ok(fd) => return into_tcp(fd),
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => continue,
            Err(error) => return Err(error),
        }
    }
}

fn receive_fd(carrier: RawFd) -> io::Result<OwnedFd> {
    let mut byte = [0u8; 1];
    let mut iov = [IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let message = recvmsg::<()>(
        carrier,
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC | MsgFlags::MSG_DONTWAIT,
    )?;
    let mut received = None;
    for control in message.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = control {
            for fd in fds {
                // SAFETY: the kernel just installed this descriptor in our table for us; it is
                // owned by nothing else. Extra ones are closed by the OwnedFd drop.
                #[allow(unsafe_code)]
                let owned = unsafe { OwnedFd::from_raw_fd(fd) };
                received.get_or_insert(owned);
            }
        }
    }
    received.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no descriptor was passed"))
}

fn into_tcp(fd: OwnedFd) -> io::Result<std::net::TcpStream> {
    let is_stream = getsockopt(&fd, sockopt::SockType)? == SockType::Stream;
    let family = nix::sys::socket::getsockname::<SockaddrStorage>(fd.as_raw_fd())?.family();
    let is_inet = matches!(
        family,
        Some(nix::sys::socket::AddressFamily::Inet | nix::sys::socket::AddressFamily::Inet6)
    );
    if !(is_stream && is_inet) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the descriptor is not a TCP socket",
        ));
    }
    Ok(std::net::TcpStream::from(fd))
}
