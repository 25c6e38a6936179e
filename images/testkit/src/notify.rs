//! `testkit notify STATE...`: sends one `sd_notify` datagram (`READY=1`, `STATUS=...`, the states
//! joined by newlines) to `$NOTIFY_SOCKET`, a path or, with a leading `@`, an abstract address,
//! as libsystemd's `sd_notify` does. It prints no handshake (it is a one-shot sender, not a
//! child the init supervises), only `notified pid=<own pid> state=<first state>` once sent.

use std::os::fd::AsRawFd;

use nix::sys::socket::{sendto, socket, AddressFamily, MsgFlags, SockFlag, SockType, UnixAddr};

use crate::args::Args;
use crate::protocol::{fact, Context, Failure};

pub fn run(mut args: Args) -> Result<(), Failure> {
    let mut states = Vec::new();
    while let Some(state) = args.next_str()? {
        states.push(state);
    }
    if states.is_empty() || states.iter().any(|s| !s.contains('=')) {
        return Err(Failure::usage("testkit notify STATE... (e.g. READY=1)"));
    }
    let socket = std::env::var("NOTIFY_SOCKET")
        .map_err(|_| Failure::internal("NOTIFY_SOCKET is not set"))?;
    send(&socket, &states.join("\n"))?;
    let first: String =
        states[0].chars().map(|c| if c.is_whitespace() { '_' } else { c }).collect();
    fact(format_args!("notified pid={} state={first}", std::process::id()));
    Ok(())
}

/// Sends `payload` as one datagram to the `NOTIFY_SOCKET` address `socket`.
fn send(socket: &str, payload: &str) -> Result<(), Failure> {
    let addr = address(socket).context(format!("NOTIFY_SOCKET={socket}"))?;
    let fd = socket_fd()?;
    sendto(fd.as_raw_fd(), payload.as_bytes(), &addr, MsgFlags::empty())
        .context(format!("sendto {socket}"))?;
    Ok(())
}

fn socket_fd() -> Result<std::os::fd::OwnedFd, Failure> {
    socket(AddressFamily::Unix, SockType::Datagram, SockFlag::SOCK_CLOEXEC, None)
        .context("socket(AF_UNIX, SOCK_DGRAM)")
}

/// `@name` is the abstract address `\0name`; anything else a path.
fn address(socket: &str) -> nix::Result<UnixAddr> {
    match socket.strip_prefix('@') {
        Some(name) => UnixAddr::new_abstract(name.as_bytes()),
        None => UnixAddr::new(socket),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_at_sign_makes_the_address_abstract() {
        let abstract_addr = address("@scinit/notify").unwrap();
        assert_eq!(abstract_addr.as_abstract(), Some(&b"scinit/notify"[..]));
        assert_eq!(
            address("/run/notify").unwrap().path(),
            Some(std::path::Path::new("/run/notify"))
        );
    }

    #[test]
    fn the_states_arrive_as_one_datagram_at_a_path_and_at_an_abstract_address() {
        use std::os::linux::net::SocketAddrExt;
        use std::os::unix::net::{SocketAddr, UnixDatagram};

        let path = std::env::temp_dir().join(format!("testkit-notify-{}", std::process::id()));
        let receiver = UnixDatagram::bind(&path).unwrap();
        send(path.to_str().unwrap(), "READY=1\nSTATUS=up").unwrap();
        let mut buf = [0u8; 64];
        let n = receiver.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\nSTATUS=up");
        std::fs::remove_file(&path).unwrap();

        let name = format!("testkit-notify-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let receiver = UnixDatagram::bind_addr(&addr).unwrap();
        send(&format!("@{name}"), "READY=1").unwrap();
        let n = receiver.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
        assert!(send("/nonexistent/notify", "READY=1").is_err());
    }
}
