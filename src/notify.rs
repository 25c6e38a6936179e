//! The notify socket (`--notify`, `--notify-socket`): systemd's `sd_notify` datagram protocol.
//!
//! Every child gets `NOTIFY_SOCKET`, the address of one `AF_UNIX` datagram socket that scinit
//! reads in its poll. A datagram is one or more `KEY=VALUE` lines; scinit acts on `READY=1` only
//! (it ends a start-first restart) and ignores every other line. Who sent it is what the kernel
//! says (`SO_PASSCRED`: `SCM_CREDENTIALS` on every datagram), never what the payload claims: the
//! socket is reachable by anything that shares the network namespace (abstract address) or can
//! open the path, so the sender's pid and its ancestry are handed to the supervisor, which decides
//! whether it is the new child or below it.

use std::ffi::{OsStr, OsString};
use std::io::IoSliceMut;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use nix::errno::Errno;
use nix::sys::socket::{
    bind, getsockname, recvmsg, setsockopt, socket, sockopt, AddressFamily, ControlMessageOwned,
    MsgFlags, SockFlag, SockType, UnixAddr, UnixCredentials,
};

use crate::exit_status::Fatal;
use crate::reap;

/// The largest datagram read whole: systemd's own limit (`PIPE_BUF`). A longer one is ignored,
/// as systemd ignores it, rather than acted on half-read.
const DATAGRAM_MAX: usize = 4096;

/// Where the notify socket is bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// An abstract address the kernel picks (autobind): unique in the network namespace, so two
    /// containers sharing the host's network never collide, and nothing to clean up.
    Auto,
    /// `@NAME`: the abstract address `\0NAME`.
    Abstract(String),
    /// An absolute path, created by scinit and removed when it exits.
    Path(PathBuf),
}

impl Address {
    /// Parses `--notify-socket`: `@NAME` or an absolute path, as `sd_notify` accepts them (it
    /// refuses relative paths: the child may run in another directory).
    pub fn parse(value: &str) -> Result<Address, String> {
        let address = match value.strip_prefix('@') {
            Some("") => return Err("an abstract address needs a name after '@'".to_string()),
            Some(name) => Address::Abstract(name.to_string()),
            None if value.starts_with('/') => Address::Path(PathBuf::from(value)),
            None => return Err("not an absolute path or an @abstract name".to_string()),
        };
        // Checked here so that a name too long for `sun_path` is a usage error, not a failure
        // at bind time.
        address.unix_addr().map(|_| address).map_err(|errno| errno.desc().to_string())
    }

    fn unix_addr(&self) -> nix::Result<UnixAddr> {
        match self {
            Address::Auto => Ok(UnixAddr::new_unnamed()),
            Address::Abstract(name) => UnixAddr::new_abstract(name.as_bytes()),
            Address::Path(path) => UnixAddr::new(path),
        }
    }
}

/// The bound socket. Dropping it removes the socket file, if scinit created one.
#[derive(Debug)]
pub struct NotifySocket {
    fd: OwnedFd,
    /// The value of `NOTIFY_SOCKET` for the children.
    env_value: OsString,
    path: Option<PathBuf>,
}

impl NotifySocket {
    /// Creates and binds the socket; every failure is a one-line set-up error.
    pub fn open(address: &Address) -> Result<NotifySocket, Fatal> {
        let shown = match address {
            Address::Auto => "an abstract address".to_string(),
            Address::Abstract(name) => format!("@{name}"),
            Address::Path(path) => path.display().to_string(),
        };
        let fail = |what: &str, errno: Errno| {
            let why = match errno {
                Errno::EADDRINUSE if matches!(address, Address::Path(_)) => {
                    "a file is already there".to_string()
                }
                errno => errno.desc().to_string(),
            };
            Fatal::setup(format!("cannot {what} the notify socket at {shown}: {why}"))
        };
        // Non-blocking so that the loop can drain it to EAGAIN; CLOEXEC so that no child
        // inherits it (each gets the address, not the fd).
        let flags = SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC;
        let fd = socket(AddressFamily::Unix, SockType::Datagram, flags, None)
            .map_err(|e| fail("create", e))?;
        setsockopt(&fd, sockopt::PassCred, &true).map_err(|e| fail("set up", e))?;
        let unix_addr = address.unix_addr().map_err(|e| fail("create", e))?;
        bind(fd.as_raw_fd(), &unix_addr).map_err(|e| fail("bind", e))?;
        match address {
            Address::Auto => {
                let bound: UnixAddr = getsockname(fd.as_raw_fd()).map_err(|e| fail("name", e))?;
                let name = bound.as_abstract().ok_or_else(|| fail("name", Errno::EAFNOSUPPORT))?;
                let mut env_value = OsString::from("@");
                env_value.push(OsStr::from_bytes(name));
                Ok(NotifySocket { fd, env_value, path: None })
            }
            Address::Abstract(_) => Ok(NotifySocket { fd, env_value: shown.into(), path: None }),
            Address::Path(path) => {
                // Owned from here on, so that a failure below removes the file again.
                let socket = NotifySocket { fd, env_value: path.into(), path: Some(path.clone()) };
                // Writable by all, so that a child that drops its privileges can still report:
                // the credential check, not the file mode, decides whose READY=1 counts.
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666)).map_err(
                    |e| {
                        Fatal::setup(format!(
                            "cannot make the notify socket at {shown} writable: {e}"
                        ))
                    },
                )?;
                Ok(socket)
            }
        }
    }

    /// The value of `NOTIFY_SOCKET`: the path, or `@` and the abstract name.
    pub fn env_value(&self) -> &OsStr {
        &self.env_value
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Reads every waiting datagram; returns, for each `READY=1` with credentials, the sender's
    /// pid and its [`reap::ancestors`]. They are read as soon as its datagram is received, before
    /// the next one: a sender that waits for its datagram to be consumed (`systemd-notify`'s
    /// barrier) is then still there to be looked up.
    pub fn receive(&self) -> Vec<(i32, Vec<i32>)> {
        let mut ready = Vec::new();
        let mut buffer = [0u8; DATAGRAM_MAX];
        loop {
            let mut iov = [IoSliceMut::new(&mut buffer)];
            // Room for the credentials only: file descriptors sent along (`FDSTORE=1`) do not fit,
            // so the kernel closes them instead of installing them in PID 1.
            let mut control = nix::cmsg_space!(UnixCredentials);
            let received = recvmsg::<()>(
                self.fd.as_raw_fd(),
                &mut iov,
                Some(&mut control),
                MsgFlags::MSG_CMSG_CLOEXEC,
            )
            .map(|message| {
                let pid = message.cmsgs().ok().and_then(|mut cmsgs| {
                    cmsgs.find_map(|cmsg| match cmsg {
                        ControlMessageOwned::ScmCredentials(credentials) => Some(credentials.pid()),
                        _ => None,
                    })
                });
                (message.bytes, message.flags.contains(MsgFlags::MSG_TRUNC), pid)
            });
            let (length, truncated, pid) = match received {
                Ok(received) => received,
                Err(Errno::EAGAIN) => break,
                Err(Errno::EINTR) => continue,
                Err(errno) => {
                    warn!("reading the notify socket failed: {}", errno.desc());
                    break;
                }
            };
            let payload = buffer.get(..length).unwrap_or_default();
            match pid {
                // A sender in a PID namespace scinit cannot see has pid 0.
                None | Some(..=0) => debug!("notify datagram without credentials: ignored"),
                Some(pid) if truncated => {
                    debug!(
                        "notify datagram from pid {pid} longer than {DATAGRAM_MAX} bytes: ignored"
                    )
                }
                Some(pid) if says_ready(payload) => ready.push((pid, reap::ancestors(pid))),
                Some(pid) => debug!("notify datagram from pid {pid} without READY=1: ignored"),
            }
        }
        ready
    }
}

impl Drop for NotifySocket {
    fn drop(&mut self) {
        if let Some(path) = &self.path {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Whether one of the datagram's lines is exactly `READY=1`.
fn says_ready(payload: &[u8]) -> bool {
    payload.split(|byte| *byte == b'\n').any(|line| line == b"READY=1")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixDatagram;

    #[test]
    fn notify_socket_addresses_are_at_names_or_absolute_paths() {
        assert_eq!(Address::parse("@scinit"), Ok(Address::Abstract("scinit".into())));
        assert_eq!(Address::parse("/run/notify"), Ok(Address::Path("/run/notify".into())));
        for bad in ["@", "", "run/notify", "./notify", &format!("/{}", "x".repeat(200))] {
            assert!(Address::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ready_is_a_line_of_its_own() {
        assert!(says_ready(b"READY=1"));
        assert!(says_ready(b"STATUS=up\nREADY=1\n"));
        assert!(!says_ready(b"READY=0"));
        assert!(!says_ready(b"STATUS=READY=1"));
        assert!(!says_ready(b"READY=10"));
        assert!(!says_ready(b""));
    }

    fn send_from_here(socket: &NotifySocket, payload: &[u8]) {
        let sender = UnixDatagram::unbound().unwrap();
        let value = socket.env_value().as_bytes();
        match value.strip_prefix(b"@") {
            Some(name) => {
                use std::os::linux::net::SocketAddrExt;
                let addr = std::os::unix::net::SocketAddr::from_abstract_name(name).unwrap();
                sender.send_to_addr(payload, &addr).unwrap();
            }
            None => {
                sender.send_to(payload, OsStr::from_bytes(value)).unwrap();
            }
        }
    }

    #[test]
    fn the_default_address_is_a_kernel_chosen_abstract_name_and_ready_carries_the_sender() {
        let socket = NotifySocket::open(&Address::Auto).unwrap();
        let value = socket.env_value().to_string_lossy().into_owned();
        assert!(value.starts_with('@') && value.len() > 1, "{value}");
        assert_ne!(NotifySocket::open(&Address::Auto).unwrap().env_value(), socket.env_value());

        assert!(socket.receive().is_empty());
        send_from_here(&socket, b"STATUS=starting");
        send_from_here(&socket, b"READY=1\nSTATUS=up");
        // Only the READY=1 counts, and this process sent it.
        let ready = socket.receive();
        assert_eq!(ready.len(), 1, "{ready:?}");
        assert_eq!(ready[0].0, std::process::id() as i32);
    }

    #[test]
    fn a_path_socket_is_created_refused_when_taken_and_removed_on_drop() {
        let path = std::env::temp_dir().join(format!("scinit-notify-unit-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let socket = NotifySocket::open(&Address::Path(path.clone())).unwrap();
        assert_eq!(socket.env_value(), path.as_os_str());
        let taken = NotifySocket::open(&Address::Path(path.clone())).unwrap_err();
        assert_eq!(taken.code, 1);
        assert!(taken.message.contains("a file is already there"), "{}", taken.message);
        assert!(!taken.message.contains('\n'));
        send_from_here(&socket, b"READY=1");
        assert_eq!(socket.receive().len(), 1);
        drop(socket);
        assert!(!path.exists());
    }

    #[test]
    fn the_socket_is_close_on_exec() {
        let socket = NotifySocket::open(&Address::Auto).unwrap();
        let flags = nix::fcntl::fcntl(socket.fd(), nix::fcntl::F_GETFD).unwrap();
        assert_ne!(flags & nix::libc::FD_CLOEXEC, 0);
    }
}
