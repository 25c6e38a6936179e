//! `testkit inspect [--stay]`: reports the state the init handed over to its child (mask,
//! dispositions, fds, sockets, session, environment) as one JSON object.

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::os::fd::BorrowedFd;
use std::os::unix::ffi::OsStrExt;

use nix::libc;
use nix::sys::socket::{getsockname, getsockopt, sockopt, SockaddrStorage};
use nix::unistd::{getpgid, getpid, getppid, getsid, getuid};

use crate::args::{unknown, Args};
use crate::procfs::{self, socket_inode, Process, Status};
use crate::protocol::{fact, handshake, Failure};
use crate::signal_names::{sigrtmax, sigrtmin};
use crate::signal_state::{set_disposition, SignalSet};

/// Environment variables reported besides every `TESTKIT_*` one.
const REPORTED_ENV: [&str; 5] =
    ["LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "SCINIT_INHERITED_FDS", "PATH"];

pub fn run(mut args: Args) -> Result<(), Failure> {
    // The masks are read before anything else can change them (the handshake included).
    let status = procfs::status(Process::Current)?;
    let mut stay = false;
    while let Some(arg) = args.next_str()? {
        match arg.as_str() {
            "--stay" => stay = true,
            _ => return Err(unknown(&arg)),
        }
    }
    handshake("inspect");
    let json = report_json(&status)?;
    fact(format_args!("inspect {json}"));
    if !stay {
        return Ok(());
    }
    // Whatever was inherited, wait the way a plain program would: default dispositions and an
    // empty mask, so SIGTERM ends it with status 143.
    for signo in (1..=sigrtmax()).filter(|s| *s < 32 || *s >= sigrtmin()) {
        if signo != libc::SIGKILL && signo != libc::SIGSTOP {
            set_disposition(signo, libc::SIG_DFL)?;
        }
    }
    SignalSet::empty().install()?;
    loop {
        // SAFETY: pause has no preconditions; only a fatal signal ends this loop.
        unsafe { libc::pause() };
    }
}

fn report_json(status: &Status) -> Result<String, Failure> {
    let tpgid = procfs::stat(Process::Current)?.map_or(-1, |s| s.tpgid);
    let field = |name: &str| status.field(name).unwrap_or_default();
    let mut out = String::from("{");
    let _ = write!(
        out,
        "\"pid\":{},\"ppid\":{},\"pgid\":{},\"sid\":{},\"tpgid\":{tpgid},",
        getpid(),
        getppid(),
        getpgid(None).map_or(-1, |p| p.as_raw()),
        getsid(None).map_or(-1, |p| p.as_raw()),
    );
    let _ = write!(
        out,
        "\"sigblk\":{},\"sigign\":{},\"sigcgt\":{},",
        json_str(field("SigBlk")),
        json_str(field("SigIgn")),
        json_str(field("SigCgt"))
    );

    let fds: Vec<_> = procfs::own_fds()?
        .into_iter()
        .map(|fd| (fd, procfs::fd_target(Process::Current, fd).unwrap_or_default()))
        .collect();
    out.push_str("\"fds\":[");
    for (i, (fd, target)) in fds.iter().enumerate() {
        let sep = if i == 0 { "" } else { "," };
        let _ = write!(out, "{sep}{{\"fd\":{fd},\"target\":{}}}", json_str(target));
    }
    out.push_str("],\"sockets\":[");
    let sockets = fds.iter().filter_map(|(fd, target)| Some((*fd, socket_inode(target)?)));
    for (i, (fd, inode)) in sockets.enumerate() {
        let sep = if i == 0 { "" } else { "," };
        // SAFETY: fd is open for the rest of this function (it came from our own fd list).
        let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
        let addr =
            getsockname::<SockaddrStorage>(fd).map_or_else(|_| String::new(), |a| a.to_string());
        let listening = getsockopt(&borrowed, sockopt::AcceptConn).unwrap_or(false);
        let _ = write!(
            out,
            "{sep}{{\"fd\":{fd},\"inode\":{inode},\"addr\":{},\"listening\":{listening}}}",
            json_str(&addr)
        );
    }
    let cwd = procfs::cwd(Process::Current)?;
    let _ = write!(out, "],\"cwd\":{},\"uid\":{},\"env\":{{", json_str(&cwd), getuid());
    let mut first = true;
    for (name, value) in std::env::vars_os() {
        let name_text = name.to_string_lossy();
        if !(REPORTED_ENV.contains(&name_text.as_ref()) || name_text.starts_with("TESTKIT_")) {
            continue;
        }
        for (key, val) in env_entries(&name_text, &value) {
            let sep = if first { "" } else { "," };
            first = false;
            let _ = write!(out, "{sep}{}:{}", json_str(&key), json_str(&val));
        }
    }
    out.push_str("}}");
    Ok(out)
}

/// `NAME: value` (lossy), plus `NAME_hex: <bytes in hex>` when the value is not UTF-8.
pub fn env_entries(name: &str, value: &OsStr) -> Vec<(String, String)> {
    let mut entries = vec![(name.to_string(), value.to_string_lossy().into_owned())];
    if value.to_str().is_none() {
        let hex = value.as_bytes().iter().map(|b| format!("{b:02x}")).collect();
        entries.push((format!("{name}_hex"), hex));
    }
    entries
}

/// A JSON string literal: quotes, backslashes and control characters escaped.
pub fn json_str(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn escapes_json_strings() {
        assert_eq!(json_str("plain"), "\"plain\"");
        assert_eq!(json_str("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(json_str("l1\nl2\t\u{1}"), "\"l1\\nl2\\t\\u0001\"");
        assert_eq!(json_str("é"), "\"é\"");
    }

    #[test]
    fn non_utf8_values_are_also_given_in_hex() {
        assert_eq!(env_entries("PATH", OsStr::new("/bin")), vec![("PATH".into(), "/bin".into())]);
        let raw = OsStr::from_bytes(b"a\xffb");
        assert_eq!(
            env_entries("TESTKIT_X", raw),
            vec![
                ("TESTKIT_X".into(), "a\u{fffd}b".into()),
                ("TESTKIT_X_hex".into(), "61ff62".into())
            ]
        );
    }
}
