//! The one reader of `/proc` in testkit, so that every subcommand reads the kernel's formats the
//! same way: the process list, `stat`, `status`, and the fd table with its link targets.

use std::fmt;
use std::os::fd::{AsRawFd, RawFd};

use nix::dir::Dir;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use crate::protocol::{Context, Failure};

/// Whose directory: `/proc/self` or `/proc/<pid>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Process {
    Current,
    Pid(i32),
}

impl fmt::Display for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Process::Current => f.write_str("self"),
            Process::Pid(pid) => write!(f, "{pid}"),
        }
    }
}

fn path(process: Process, entry: &str) -> String {
    format!("/proc/{process}/{entry}")
}

/// The text of a `/proc` file, lossily UTF-8: the comm in `stat` and `status` is whatever bytes
/// the process chose, cut at 15 bytes, possibly in the middle of a character.
fn read(process: Process, file: &str) -> Result<String, Failure> {
    let path = path(process, file);
    let bytes = std::fs::read(&path).context(format_args!("read {path}"))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn read_link(process: Process, entry: &str) -> Result<String, Failure> {
    let path = path(process, entry);
    let target = std::fs::read_link(&path).context(format_args!("readlink {path}"))?;
    Ok(target.to_string_lossy().into_owned())
}

/// Every pid in `/proc`, ascending.
pub fn pids() -> Result<Vec<i32>, Failure> {
    let mut pids: Vec<i32> = std::fs::read_dir("/proc")
        .context("read /proc")?
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    Ok(pids)
}

/// The fields of `/proc/<pid>/stat` the suite uses.
#[derive(Debug, PartialEq, Eq)]
pub struct Stat {
    pub pid: i32,
    pub comm: String,
    pub state: char,
    pub ppid: i32,
    pub pgid: i32,
    pub sid: i32,
    pub tpgid: i32,
}

/// `Ok(None)` when the file does not parse.
pub fn stat(process: Process) -> Result<Option<Stat>, Failure> {
    read(process, "stat").map(|text| parse_stat(&text))
}

/// Parses a `/proc/<pid>/stat` line. `comm` may hold spaces and parentheses, so it runs from
/// the first `(` to the *last* `)`.
pub fn parse_stat(line: &str) -> Option<Stat> {
    let open = line.find('(')?;
    let close = line.rfind(')')?;
    let pid = line.get(..open)?.trim().parse().ok()?;
    let comm = line.get(open + 1..close)?.to_string();
    let mut rest = line.get(close + 1..)?.split_whitespace();
    let state = rest.next()?.chars().next()?;
    let mut num = || rest.next()?.parse::<i32>().ok();
    let ppid = num()?;
    let pgid = num()?;
    let sid = num()?;
    let _tty_nr = num()?;
    let tpgid = num()?;
    Some(Stat { pid, comm, state, ppid, pgid, sid, tpgid })
}

/// The text of `/proc/<pid>/status`, one `Name:\tvalue` per line.
pub struct Status(String);

pub fn status(process: Process) -> Result<Status, Failure> {
    read(process, "status").map(Status)
}

impl Status {
    #[cfg(test)]
    pub fn from_text(text: String) -> Status {
        Status(text)
    }

    /// The value of `Name:`, whitespace trimmed.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.0.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            (key == name).then(|| value.trim())
        })
    }
}

/// This process's open fds, ascending, without the one that reads the directory.
pub fn own_fds() -> Result<Vec<RawFd>, Failure> {
    let path = path(Process::Current, "fd");
    let mut dir = Dir::open(
        path.as_str(),
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .context(format_args!("open {path}"))?;
    let own = dir.as_raw_fd();
    let mut fds: Vec<RawFd> = dir
        .iter()
        .filter_map(|entry| entry.ok()?.file_name().to_str().ok()?.parse().ok())
        .filter(|fd| *fd != own)
        .collect();
    fds.sort_unstable();
    Ok(fds)
}

/// What an fd refers to: a path, or `socket:[inode]`, `pipe:[inode]`, `anon_inode:[...]`.
pub fn fd_target(process: Process, fd: RawFd) -> Result<String, Failure> {
    read_link(process, &format!("fd/{fd}"))
}

pub fn cwd(process: Process) -> Result<String, Failure> {
    read_link(process, "cwd")
}

/// `socket:[1234]` → 1234.
pub fn socket_inode(target: &str) -> Option<u64> {
    target.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_self_or_the_pid() {
        assert_eq!(path(Process::Current, "stat"), "/proc/self/stat");
        assert_eq!(path(Process::Pid(42), "fd/3"), "/proc/42/fd/3");
    }

    #[test]
    fn parses_a_plain_stat_line() {
        let line = "42 (sleep) S 1 42 42 0 -1 4194560 104 0 0 0 0 0 0 0 20 0 1 0 123 2342912 128";
        assert_eq!(
            parse_stat(line),
            Some(Stat {
                pid: 42,
                comm: "sleep".into(),
                state: 'S',
                ppid: 1,
                pgid: 42,
                sid: 42,
                tpgid: -1
            })
        );
    }

    #[test]
    fn comm_may_hold_spaces_and_parentheses() {
        let line = "7 (a) b (c)) Z 1 5 5 34816 9 0 0";
        let stat = parse_stat(line).unwrap();
        assert_eq!(stat.comm, "a) b (c)");
        assert_eq!((stat.state, stat.ppid, stat.pgid, stat.sid, stat.tpgid), ('Z', 1, 5, 5, 9));
    }

    #[test]
    fn rejects_truncated_lines() {
        assert_eq!(parse_stat(""), None);
        assert_eq!(parse_stat("1 (init"), None);
        assert_eq!(parse_stat("1 (init) S 0"), None);
        assert_eq!(parse_stat("x (init) S 0 1 1 0 -1"), None);
    }

    #[test]
    fn reads_status_fields() {
        let status =
            Status("Name:\ttestkit\nSigBlk:\t0000000000010000\nSigIgn:\t0000000000001000\n".into());
        assert_eq!(status.field("SigBlk"), Some("0000000000010000"));
        assert_eq!(status.field("SigIgn"), Some("0000000000001000"));
        assert_eq!(status.field("SigCgt"), None);
    }

    #[test]
    fn parses_socket_inodes() {
        assert_eq!(socket_inode("socket:[12345]"), Some(12345));
        assert_eq!(socket_inode("pipe:[12345]"), None);
        assert_eq!(socket_inode("/dev/null"), None);
    }
}
