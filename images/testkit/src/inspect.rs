//! `testkit inspect [--stay]`: reports the state the init handed over to its child (mask,
//! dispositions, fds, sockets, session, environment) as one JSON object.

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::os::unix::ffi::OsStrExt;

use nix::dir::Dir;
use nix::fcntl::OFlag;
use nix::libc;
use nix::sys::socket::{getsockname, getsockopt, sockopt, SockaddrStorage};
use nix::sys::stat::Mode;
use nix::unistd::{getpgid, getpid, getppid, getsid, getuid};

use crate::ps::parse_stat;
use crate::report::{
    fact, handshake, set_disposition, sigrtmax, sigrtmin, unknown, Args, Context, Failure,
    SignalSet,
};

/// Environment variables reported besides every `TESTKIT_*` one.
const REPORTED_ENV: [&str; 5] = [
    "LISTEN_FDS",
    "LISTEN_PID",
    "LISTEN_FDNAMES",
    "SCINIT_INHERITED_FDS",
    "PATH",
];

pub fn run(mut args: Args) -> Result<(), Failure> {
    // The masks are read before anything else can change them (the handshake included).
    let status = std::fs::read_to_string("/proc/self/status").context("read /proc/self/status")?;
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

fn report_json(status: &str) -> Result<String, Failure> {
    let stat = std::fs::read_to_string("/proc/self/stat").context("read /proc/self/stat")?;
    let tpgid = parse_stat(&stat).map_or(-1, |s| s.tpgid);
    let field = |name: &str| status_field(status, name).unwrap_or_default();
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
        json_str(&field("SigBlk")),
        json_str(&field("SigIgn")),
        json_str(&field("SigCgt"))
    );

    let fds = list_fds()?;
    out.push_str("\"fds\":[");
    for (i, (fd, target)) in fds.iter().enumerate() {
        let sep = if i == 0 { "" } else { "," };
        let _ = write!(out, "{sep}{{\"fd\":{fd},\"target\":{}}}", json_str(target));
    }
    out.push_str("],\"sockets\":[");
    let sockets = fds
        .iter()
        .filter_map(|(fd, target)| Some((*fd, socket_inode(target)?)));
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
    let cwd = std::fs::read_link("/proc/self/cwd").context("readlink /proc/self/cwd")?;
    let _ = write!(
        out,
        "],\"cwd\":{},\"uid\":{},\"env\":{{",
        json_str(&cwd.to_string_lossy()),
        getuid()
    );
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
        let hex = value
            .as_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        entries.push((format!("{name}_hex"), hex));
    }
    entries
}

/// The value of `Name:` in `/proc/self/status`, whitespace trimmed.
pub fn status_field(status: &str, name: &str) -> Option<String> {
    status.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key == name).then(|| value.trim().to_string())
    })
}

/// `socket:[1234]` → 1234.
pub fn socket_inode(target: &str) -> Option<u64> {
    target
        .strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// Every open fd and its link target, without the fd that reads the directory.
fn list_fds() -> Result<Vec<(RawFd, String)>, Failure> {
    let mut dir = Dir::open(
        "/proc/self/fd",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .context("open /proc/self/fd")?;
    let own = dir.as_raw_fd();
    let mut fds: Vec<RawFd> = dir
        .iter()
        .filter_map(|entry| entry.ok()?.file_name().to_str().ok()?.parse().ok())
        .filter(|fd| *fd != own)
        .collect();
    fds.sort_unstable();
    Ok(fds
        .into_iter()
        .map(|fd| {
            let target = std::fs::read_link(format!("/proc/self/fd/{fd}"))
                .map_or_else(|_| String::new(), |t| t.to_string_lossy().into_owned());
            (fd, target)
        })
        .collect())
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
    fn reads_status_fields() {
        let status = "Name:\ttestkit\nSigBlk:\t0000000000010000\nSigIgn:\t0000000000001000\n";
        assert_eq!(
            status_field(status, "SigBlk").as_deref(),
            Some("0000000000010000")
        );
        assert_eq!(
            status_field(status, "SigIgn").as_deref(),
            Some("0000000000001000")
        );
        assert_eq!(status_field(status, "SigCgt"), None);
    }

    #[test]
    fn parses_socket_inodes() {
        assert_eq!(socket_inode("socket:[12345]"), Some(12345));
        assert_eq!(socket_inode("pipe:[12345]"), None);
        assert_eq!(socket_inode("/dev/null"), None);
    }

    #[test]
    fn non_utf8_values_are_also_given_in_hex() {
        assert_eq!(
            env_entries("PATH", OsStr::new("/bin")),
            vec![("PATH".into(), "/bin".into())]
        );
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
