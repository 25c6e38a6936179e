//! `testkit echo [--listen ADDR]... [--term graceful|ignore|stall] [--drain-ms MS]`: the echo
//! server whose sockets come from the init (socket activation) or from `--listen`.
//!
//! Threads: the main thread polls the listening sockets and a signalfd for SIGTERM/SIGINT, so
//! a stop request and a pending connection are seen by the same `poll` and the stop wins; one
//! thread per accepted connection. Both signals are blocked before any thread exists, so no
//! thread can take them by default action.

use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::libc;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::socket::{
    accept4, bind, getsockname, listen, send, setsockopt, socket, sockopt, AddressFamily, Backlog,
    MsgFlags, SockFlag, SockType, SockaddrStorage,
};
use nix::unistd::{getpid, pipe2, read};

use crate::args::{parse_num, unknown, Args};
use crate::protocol::{fact, handshake, signal_fact, Context, Failure};
use crate::signal_state::SignalSet;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Term {
    Graceful,
    Ignore,
    Stall,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Options {
    pub listen: Vec<SocketAddr>,
    pub term: Term,
    pub drain_ms: u64,
}

pub fn parse(mut args: Args) -> Result<Options, Failure> {
    let mut options = Options { listen: Vec::new(), term: Term::Graceful, drain_ms: 5000 };
    while let Some(arg) = args.next_str()? {
        match arg.as_str() {
            "--listen" => {
                let addr = args.value("--listen")?;
                options.listen.push(
                    addr.parse().map_err(|_| {
                        Failure::usage(format!("--listen: not an address: {addr:?}"))
                    })?,
                );
            }
            "--term" => {
                options.term = match args.value("--term")?.as_str() {
                    "graceful" => Term::Graceful,
                    "ignore" => Term::Ignore,
                    "stall" => Term::Stall,
                    other => {
                        return Err(Failure::usage(format!(
                            "--term: graceful, ignore or stall, not {other:?}"
                        )))
                    }
                };
            }
            "--drain-ms" => options.drain_ms = parse_num("--drain-ms", &args.value("--drain-ms")?)?,
            _ => return Err(unknown(&arg)),
        }
    }
    Ok(options)
}

/// Where the listening sockets come from, in the order of `images/README.md`.
#[derive(Debug, PartialEq, Eq)]
pub enum Source {
    /// Inherited fds (from `LISTEN_FDS` or `SCINIT_INHERITED_FDS`).
    Inherited(Vec<RawFd>),
    /// Bind `--listen` addresses ourselves.
    Listen,
}

/// `LISTEN_FDS` only counts when `LISTEN_PID` names us (sd_listen_fds rules); then
/// `SCINIT_INHERITED_FDS`; then `--listen`.
pub fn socket_source(
    listen_fds: Option<&str>,
    listen_pid: Option<&str>,
    inherited: Option<&str>,
    own_pid: i32,
) -> Result<Source, Failure> {
    if let (Some(count), Some(pid)) = (listen_fds, listen_pid) {
        if pid.trim().parse::<i32>().ok() == Some(own_pid) {
            let count: i32 = parse_num("LISTEN_FDS", count.trim())?;
            return Ok(Source::Inherited((3..3 + count).collect()));
        }
    }
    if let Some(list) = inherited.filter(|l| !l.trim().is_empty()) {
        let fds = list
            .split(',')
            .map(|fd| parse_num("SCINIT_INHERITED_FDS", fd.trim()))
            .collect::<Result<_, _>>()?;
        return Ok(Source::Inherited(fds));
    }
    Ok(Source::Listen)
}

struct Listener {
    fd: OwnedFd,
    addr: String,
    inherited: bool,
}

pub fn run(args: Args) -> Result<(), Failure> {
    let stop_signals = SignalSet::empty().with(libc::SIGTERM).with(libc::SIGINT);
    stop_signals.block()?;
    let options = parse(args)?;

    let env = |name| std::env::var(name).ok();
    let source = socket_source(
        env("LISTEN_FDS").as_deref(),
        env("LISTEN_PID").as_deref(),
        env("SCINIT_INHERITED_FDS").as_deref(),
        getpid().as_raw(),
    )?;
    let mut listeners = match source {
        Source::Inherited(fds) => fds.into_iter().map(adopt).collect::<Result<Vec<_>, _>>()?,
        Source::Listen if options.listen.is_empty() => {
            return Err(Failure::usage(
                "no sockets: no LISTEN_FDS, no SCINIT_INHERITED_FDS, no --listen",
            ))
        }
        Source::Listen => {
            options.listen.iter().map(bind_listener).collect::<Result<Vec<_>, _>>()?
        }
    };

    let mut mask = SigSet::empty();
    mask.add(Signal::SIGTERM);
    mask.add(Signal::SIGINT);
    let signals = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .context("signalfd")?;
    // Closing the write end is the broadcast "stop" to every connection thread (POLLHUP).
    let (stop_r, stop_w) = pipe2(OFlag::O_CLOEXEC).context("pipe2")?;
    let stop_r = Arc::new(stop_r);

    handshake("echo");
    for l in &listeners {
        fact(format_args!(
            "listening fd={} addr={} inherited={}",
            l.fd.as_raw_fd(),
            l.addr,
            l.inherited
        ));
    }

    let mut connections: Vec<JoinHandle<()>> = Vec::new();
    let mut accepting = true;
    loop {
        let mut fds = vec![PollFd::new(signals.as_fd(), PollFlags::POLLIN)];
        if accepting {
            fds.extend(listeners.iter().map(|l| PollFd::new(l.fd.as_fd(), PollFlags::POLLIN)));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Err(Errno::EINTR) => continue,
            other => other.context("poll")?,
        };
        let ready: Vec<bool> = fds.iter().map(|f| f.any().unwrap_or(false)).collect();
        drop(fds);

        if ready[0] {
            while let Some(info) = signals.read_signal().context("read signalfd")? {
                signal_fact(info.ssi_signo as i32, info.ssi_pid as i32);
                match options.term {
                    Term::Ignore => {}
                    Term::Stall => accepting = false,
                    Term::Graceful => {
                        // Only our copies: the init keeps the sockets and their backlog for the
                        // next child.
                        listeners.clear();
                        drop(stop_w);
                        for connection in connections {
                            let _ = connection.join();
                        }
                        fact("exiting code=0");
                        std::process::exit(0);
                    }
                }
            }
            // A stop request wins over connections that became ready in the same poll.
            continue;
        }
        for (listener, _) in listeners.iter().zip(&ready[1..]).filter(|(_, r)| **r) {
            accept_all(listener, &stop_r, options.drain_ms, &mut connections)?;
        }
        connections.retain(|c| !c.is_finished());
    }
}

/// Accepts until the backlog is empty. The listener is non-blocking because the init and, during
/// a restart, another child share it: a connection we were woken for may be taken by them.
fn accept_all(
    listener: &Listener,
    stop: &Arc<OwnedFd>,
    drain_ms: u64,
    connections: &mut Vec<JoinHandle<()>>,
) -> Result<(), Failure> {
    loop {
        match accept4(listener.fd.as_fd(), SockFlag::SOCK_CLOEXEC) {
            Ok(conn) => {
                let stop = Arc::clone(stop);
                connections.push(std::thread::spawn(move || serve(conn, &stop, drain_ms)));
            }
            Err(Errno::EAGAIN | Errno::EINTR | Errno::ECONNABORTED) => return Ok(()),
            Err(e) => return Err(Failure::internal(format!("accept on {}: {e}", listener.addr))),
        }
    }
}

/// Answers each line of one connection until EOF. After the stop broadcast a connection is owed
/// one answer (clients send one line per connection): it is closed once it has had one, or when
/// `drain_ms` have passed without a complete line.
fn serve(conn: OwnedFd, stop: &OwnedFd, drain_ms: u64) {
    let pid = getpid();
    let mut pending: Vec<u8> = Vec::new();
    let mut answered = false;
    let mut deadline: Option<Instant> = None;
    let mut buf = [0u8; 4096];
    loop {
        if deadline.is_some() && answered && pending.is_empty() {
            return;
        }
        let timeout = match deadline {
            None => PollTimeout::NONE,
            Some(at) => {
                let left = at.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return;
                }
                PollTimeout::try_from(left.max(Duration::from_millis(1)))
                    .unwrap_or(PollTimeout::MAX)
            }
        };
        let mut fds = vec![PollFd::new(conn.as_fd(), PollFlags::POLLIN)];
        if deadline.is_none() {
            fds.push(PollFd::new(stop.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, timeout) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => return,
        }
        let conn_ready = fds[0].any().unwrap_or(false);
        let stopped = fds.get(1).is_some_and(|f| f.any().unwrap_or(false));
        drop(fds);
        if stopped {
            deadline = Some(Instant::now() + Duration::from_millis(drain_ms));
        }
        if !conn_ready {
            continue;
        }
        let n = match read(&conn, &mut buf) {
            Ok(n) => n,
            Err(Errno::EINTR) => continue,
            Err(_) => return,
        };
        if n == 0 {
            // A last line without its newline is still a line.
            if !pending.is_empty() {
                answer(&conn, pid, &pending);
            }
            return;
        }
        pending.extend_from_slice(&buf[..n]);
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            if !answer(&conn, pid, &line[..end]) {
                return;
            }
            answered = true;
        }
    }
}

/// Sends `ECHO PID=<pid>: <line>\n`; false when the peer is gone. MSG_NOSIGNAL: SIGPIPE keeps
/// its default disposition in testkit, and a vanished client must not kill the server.
fn answer(conn: &OwnedFd, pid: nix::unistd::Pid, line: &[u8]) -> bool {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut reply = format!("ECHO PID={pid}: ").into_bytes();
    reply.extend_from_slice(line);
    reply.push(b'\n');
    let mut sent = 0;
    while sent < reply.len() {
        match send(conn.as_raw_fd(), &reply[sent..], MsgFlags::MSG_NOSIGNAL) {
            Ok(n) => sent += n,
            Err(Errno::EINTR) => {}
            Err(_) => return false,
        }
    }
    true
}

/// Takes an inherited listening socket, made non-blocking (see `accept_all`).
fn adopt(fd: RawFd) -> Result<Listener, Failure> {
    let addr = getsockname::<SockaddrStorage>(fd)
        .map_err(|e| Failure::internal(format!("inherited fd {fd} is not a socket: {e}")))?;
    // SAFETY: the fd was handed to us by the init and nothing else in this process owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let flags = fcntl(&fd, FcntlArg::F_GETFL).context("fcntl F_GETFL")?;
    fcntl(&fd, FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK))
        .context("fcntl F_SETFL")?;
    Ok(Listener { fd, addr: addr.to_string(), inherited: true })
}

/// Binds `addr` with SO_REUSEADDR only: no SO_REUSEPORT, so a port already taken makes this
/// fail, as the port-in-use tests expect.
fn bind_listener(addr: &SocketAddr) -> Result<Listener, Failure> {
    let family = if addr.is_ipv4() { AddressFamily::Inet } else { AddressFamily::Inet6 };
    let fd =
        socket(family, SockType::Stream, SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK, None)
            .context("socket")?;
    setsockopt(&fd, sockopt::ReuseAddr, &true).context("SO_REUSEADDR")?;
    bind(fd.as_raw_fd(), &SockaddrStorage::from(*addr)).context(format_args!("bind {addr}"))?;
    listen(&fd, Backlog::MAXCONN).context(format_args!("listen {addr}"))?;
    let local = getsockname::<SockaddrStorage>(fd.as_raw_fd()).context("getsockname")?;
    Ok(Listener { fd, addr: local.to_string(), inherited: false })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_list(list: &[&str]) -> Result<Options, Failure> {
        parse(Args::of(list))
    }

    #[test]
    fn parses_addresses_and_modes() {
        let options = parse_list(&[
            "--listen",
            "0.0.0.0:8080",
            "--listen",
            "[::]:8081",
            "--term",
            "stall",
            "--drain-ms",
            "10",
        ])
        .unwrap();
        assert_eq!(options.listen, ["0.0.0.0:8080".parse().unwrap(), "[::]:8081".parse().unwrap()]);
        assert_eq!((options.term, options.drain_ms), (Term::Stall, 10));
        assert_eq!(parse_list(&[]).unwrap().term, Term::Graceful);
    }

    #[test]
    fn rejects_bad_arguments() {
        for bad in [
            &["--listen"][..],
            &["--listen", "8080"],
            &["--term", "politely"],
            &["--drain-ms", "x"],
            &["-v"],
        ] {
            assert!(matches!(parse_list(bad), Err(Failure::Usage(_))), "{bad:?}");
        }
    }

    #[test]
    fn listen_fds_count_only_for_our_pid() {
        assert_eq!(
            socket_source(Some("2"), Some("42"), None, 42),
            Ok(Source::Inherited(vec![3, 4]))
        );
        assert_eq!(socket_source(Some("2"), Some("41"), None, 42), Ok(Source::Listen));
        assert_eq!(socket_source(Some("2"), None, None, 42), Ok(Source::Listen));
    }

    #[test]
    fn scinit_inherited_fds_come_next() {
        assert_eq!(
            socket_source(Some("1"), Some("1"), Some("5,7"), 42),
            Ok(Source::Inherited(vec![5, 7]))
        );
        assert_eq!(socket_source(None, None, Some(""), 42), Ok(Source::Listen));
        assert!(matches!(socket_source(None, None, Some("3,x"), 42), Err(Failure::Usage(_))));
    }
}
