//! Listening sockets and the socket-activation environment.
//!
//! Each port is bound once, at start-up, and the sockets stay open in scinit for its whole life:
//! they are never closed or re-bound across restarts, so connections that arrive while no child
//! is accepting wait in the kernel backlog instead of being refused. scinit keeps them
//! `CLOEXEC`; only the spawn code places copies, without `CLOEXEC`, at fds 3, 4, ... in the child.

use std::ffi::{OsStr, OsString};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;

use nix::sys::socket::{
    bind, listen, setsockopt, socket, sockopt, AddressFamily, Backlog, SockFlag, SockType,
    SockaddrStorage,
};

use crate::exit_status::Fatal;

/// The first fd a child receives a socket on (after stdin, stdout, stderr).
pub const FIRST_FD: i32 = 3;

/// One bound, listening socket.
#[derive(Debug)]
pub struct Listener {
    pub port: u16,
    pub fd: OwnedFd,
}

/// Binds and listens on every port, in `--ports` order, so their fds ascend: that lets the spawn
/// code move each socket straight to its fd in the child. The error is one line naming the
/// address. `reuse_port` (`--reuse-port`) sets `SO_REUSEPORT`.
pub fn bind_all(addr: IpAddr, ports: &[u16], reuse_port: bool) -> Result<Vec<Listener>, Fatal> {
    ports
        .iter()
        .map(|&port| {
            let address = SocketAddr::new(addr, port);
            bind_one(address, reuse_port).map(|fd| Listener { port, fd }).map_err(|errno| {
                Fatal::setup(format!("cannot listen on {address}: {}", errno.desc()))
            })
        })
        .collect()
}

fn bind_one(address: SocketAddr, reuse_port: bool) -> nix::Result<OwnedFd> {
    let family = if address.is_ipv4() { AddressFamily::Inet } else { AddressFamily::Inet6 };
    let fd = socket(family, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)?;
    // REUSEADDR: a restarted container can bind while old connections sit in TIME_WAIT. It
    // never lets two sockets listen on one port.
    setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    // REUSEPORT only on request: it lets any process of the same user that also sets it (a
    // second scinit, the child binding the port itself) listen on the port too, and the kernel
    // then splits connections between them. Without it a port in use is a set-up error.
    if reuse_port {
        setsockopt(&fd, sockopt::ReusePort, &true)?;
    }
    bind(std::os::fd::AsRawFd::as_raw_fd(&fd), &SockaddrStorage::from(address))?;
    // SOMAXCONN (4096 on current kernels): the backlog is what holds connections during a
    // restart, so it should be as deep as the system allows.
    listen(&fd, Backlog::MAXCONN)?;
    Ok(fd)
}

/// Whether a variable is part of the socket-activation contract (and so is owned by scinit).
fn is_activation_variable(name: &OsStr) -> bool {
    name.as_bytes().starts_with(b"LISTEN_") || name == "SCINIT_INHERITED_FDS"
}

/// The child's environment: the inherited one, byte for byte, minus any inherited activation
/// variables, plus scinit's own when ports are given. `pid` is the child's real pid
/// (`LISTEN_PID` tells a program that the fds are meant for it, not for a process it spawns).
pub fn child_env(
    inherited: &[(OsString, OsString)],
    ports: &[u16],
    pid: i32,
) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> =
        inherited.iter().filter(|(name, _)| !is_activation_variable(name)).cloned().collect();
    if !ports.is_empty() {
        let fds: Vec<String> =
            (0..ports.len() as i32).map(|i| (FIRST_FD + i).to_string()).collect();
        let names: Vec<String> = ports.iter().map(|port| format!("port{port}")).collect();
        env.push(("LISTEN_FDS".into(), ports.len().to_string().into()));
        env.push(("LISTEN_PID".into(), pid.to_string().into()));
        env.push(("LISTEN_FDNAMES".into(), names.join(":").into()));
        env.push(("SCINIT_INHERITED_FDS".into(), fds.join(",").into()));
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;
    use std::os::unix::ffi::OsStringExt;

    fn pairs(items: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        items.iter().map(|(k, v)| (OsString::from(k), OsString::from(v))).collect()
    }

    fn get<'a>(env: &'a [(OsString, OsString)], name: &str) -> Option<&'a OsStr> {
        env.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_os_str())
    }

    #[test]
    fn ports_produce_the_systemd_variables_and_scinit_inherited_fds() {
        let env = child_env(&pairs(&[("PATH", "/bin")]), &[8080, 9090], 4242);
        assert_eq!(get(&env, "LISTEN_FDS"), Some(OsStr::new("2")));
        assert_eq!(get(&env, "LISTEN_PID"), Some(OsStr::new("4242")));
        assert_eq!(get(&env, "LISTEN_FDNAMES"), Some(OsStr::new("port8080:port9090")));
        assert_eq!(get(&env, "SCINIT_INHERITED_FDS"), Some(OsStr::new("3,4")));
        assert_eq!(get(&env, "PATH"), Some(OsStr::new("/bin")));
    }

    #[test]
    fn inherited_activation_variables_are_replaced_not_duplicated() {
        let inherited =
            pairs(&[("LISTEN_FDS", "9"), ("LISTEN_PID", "1"), ("SCINIT_INHERITED_FDS", "7")]);
        let env = child_env(&inherited, &[80], 5);
        assert_eq!(env.iter().filter(|(k, _)| k == "LISTEN_FDS").count(), 1);
        assert_eq!(get(&env, "LISTEN_FDS"), Some(OsStr::new("1")));
        assert_eq!(get(&env, "LISTEN_PID"), Some(OsStr::new("5")));
        assert_eq!(get(&env, "SCINIT_INHERITED_FDS"), Some(OsStr::new("3")));
    }

    #[test]
    fn without_ports_every_inherited_activation_variable_is_stripped() {
        let inherited = pairs(&[
            ("LISTEN_FDS", "2"),
            ("LISTEN_PID", "1"),
            ("LISTEN_FDNAMES", "a:b"),
            ("SCINIT_INHERITED_FDS", "3,4"),
            ("HOME", "/root"),
        ]);
        assert_eq!(child_env(&inherited, &[], 5), pairs(&[("HOME", "/root")]));
    }

    #[test]
    fn non_utf8_values_and_order_survive_byte_for_byte() {
        let odd = OsString::from_vec(vec![0xff, b'x', 0xfe]);
        let inherited =
            vec![("B".into(), "1".into()), ("ODD".into(), odd.clone()), ("A".into(), "2".into())];
        let env = child_env(&inherited, &[], 5);
        assert_eq!(env, inherited);
        assert_eq!(get(&env, "ODD"), Some(odd.as_os_str()));
    }

    #[test]
    fn similar_names_are_not_mistaken_for_activation_variables() {
        let inherited = pairs(&[("XLISTEN_FDS", "1"), ("SCINIT_LOG", "debug"), ("LISTEN", "x")]);
        assert_eq!(child_env(&inherited, &[], 5), inherited);
    }

    #[test]
    fn binding_a_free_port_listens_and_a_taken_one_fails_with_one_line() {
        let listeners = bind_all("127.0.0.1".parse().unwrap(), &[0], false).unwrap();
        assert_eq!(listeners.len(), 1);
        let error = bind_all("192.0.2.1".parse().unwrap(), &[1], false).unwrap_err();
        assert_eq!(error.code, 1);
        assert!(error.message.starts_with("cannot listen on 192.0.2.1:1:"), "{}", error.message);
        assert!(!error.message.contains('\n'));
    }

    #[test]
    fn a_port_is_shared_only_when_both_sockets_ask_for_reuse_port() {
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        let bound_port = |listeners: &[Listener]| {
            let address: SockaddrStorage =
                nix::sys::socket::getsockname(listeners[0].fd.as_raw_fd()).unwrap();
            address.as_sockaddr_in().unwrap().port()
        };
        let exclusive = bind_all(local, &[0], false).unwrap();
        let port = bound_port(&exclusive);
        for reuse_port in [false, true] {
            let error = bind_all(local, &[port], reuse_port).unwrap_err();
            assert_eq!(error.code, 1);
            assert!(error.message.contains(&format!("127.0.0.1:{port}")), "{}", error.message);
        }
        let shared = bind_all(local, &[0], true).unwrap();
        let port = bound_port(&shared);
        assert!(bind_all(local, &[port], false).is_err());
        assert_eq!(bound_port(&bind_all(local, &[port], true).unwrap()), port);
    }
}
