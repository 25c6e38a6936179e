//! `testkit bind ADDR [--reuse-port]`: a second process trying to take a TCP port, run with
//! `docker exec` beside a server. It binds and listens with `SO_REUSEADDR` (and `SO_REUSEPORT`
//! when asked), prints what happened as one fact and exits 0 either way: the kernel's answer is
//! the finding, not a failure of the probe. No handshake (it is a one-shot probe, not a child
//! the init supervises).

use std::net::SocketAddr;
use std::os::fd::AsRawFd;

use nix::sys::socket::{
    bind, listen, setsockopt, socket, sockopt, AddressFamily, Backlog, SockFlag, SockType,
    SockaddrStorage,
};

use crate::args::{unknown, Args};
use crate::protocol::{fact, Context, Failure};

#[derive(Debug, PartialEq, Eq)]
pub struct Options {
    pub addr: SocketAddr,
    pub reuse_port: bool,
}

pub fn parse(mut args: Args) -> Result<Options, Failure> {
    let text = args.value("bind")?;
    let addr = text.parse().map_err(|_| Failure::usage(format!("not an address: {text:?}")))?;
    let mut reuse_port = false;
    while let Some(arg) = args.next_str()? {
        match arg.as_str() {
            "--reuse-port" => reuse_port = true,
            _ => return Err(unknown(&arg)),
        }
    }
    Ok(Options { addr, reuse_port })
}

pub fn run(args: Args) -> Result<(), Failure> {
    let options = parse(args)?;
    let family = if options.addr.is_ipv4() { AddressFamily::Inet } else { AddressFamily::Inet6 };
    let fd = socket(family, SockType::Stream, SockFlag::SOCK_CLOEXEC, None).context("socket")?;
    setsockopt(&fd, sockopt::ReuseAddr, &true).context("SO_REUSEADDR")?;
    if options.reuse_port {
        setsockopt(&fd, sockopt::ReusePort, &true).context("SO_REUSEPORT")?;
    }
    let result = bind(fd.as_raw_fd(), &SockaddrStorage::from(options.addr))
        .and_then(|()| listen(&fd, Backlog::MAXCONN));
    fact(format_args!(
        "bind addr={} reuse_port={} result={}",
        options.addr,
        options.reuse_port,
        outcome(result)
    ));
    Ok(())
}

/// `ok`, or the errno's name (`EADDRINUSE`).
fn outcome(result: nix::Result<()>) -> String {
    match result {
        Ok(()) => "ok".to_string(),
        Err(errno) => format!("{errno:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::errno::Errno;

    fn parse_list(list: &[&str]) -> Result<Options, Failure> {
        parse(Args::of(list))
    }

    #[test]
    fn parses_the_address_and_the_option() {
        let plain = parse_list(&["0.0.0.0:8080"]).unwrap();
        assert_eq!(plain, Options { addr: "0.0.0.0:8080".parse().unwrap(), reuse_port: false });
        assert!(parse_list(&["[::]:80", "--reuse-port"]).unwrap().reuse_port);
        for bad in [&[][..], &["8080"], &["0.0.0.0:8080", "--reuse"]] {
            assert!(matches!(parse_list(bad), Err(Failure::Usage(_))), "{bad:?}");
        }
    }

    #[test]
    fn the_outcome_names_the_errno() {
        assert_eq!(outcome(Ok(())), "ok");
        assert_eq!(outcome(Err(Errno::EADDRINUSE)), "EADDRINUSE");
    }
}
