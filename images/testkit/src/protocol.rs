//! The output protocol of `images/README.md`: the handshake, one fact per line written straight
//! to stdout, and one-line errors on stderr with sysexits codes.

use std::fmt;
use std::sync::OnceLock;

use nix::errno::Errno;
use nix::libc;
use nix::time::{clock_gettime, ClockId};
use nix::unistd::{getpgid, getpid, getppid, getsid};

use crate::signal_names::signal_name;

/// sysexits `EX_USAGE`: bad command line.
pub const EX_USAGE: i32 = 64;
/// sysexits `EX_SOFTWARE`: a system call failed.
pub const EX_SOFTWARE: i32 = 70;

/// A failure of a subcommand, mapped to its exit code by [`Failure::exit`].
#[derive(Debug, PartialEq, Eq)]
pub enum Failure {
    Usage(String),
    Internal(String),
}

impl Failure {
    pub fn usage(what: impl fmt::Display) -> Self {
        Failure::Usage(what.to_string())
    }

    pub fn internal(what: impl fmt::Display) -> Self {
        Failure::Internal(what.to_string())
    }

    /// Writes `testkit: <cmd>: <what>` to stderr and exits 64 or 70.
    pub fn exit(self, cmd: &str) -> ! {
        let (code, what) = match self {
            Failure::Usage(what) => (EX_USAGE, what),
            Failure::Internal(what) => (EX_SOFTWARE, what),
        };
        write_all(libc::STDERR_FILENO, format!("testkit: {cmd}: {what}\n").as_bytes());
        std::process::exit(code)
    }
}

/// Turns a failed system call into an internal failure naming the step.
pub trait Context<T> {
    fn context(self, step: impl fmt::Display) -> Result<T, Failure>;
}

impl<T, E: fmt::Display> Context<T> for Result<T, E> {
    fn context(self, step: impl fmt::Display) -> Result<T, Failure> {
        self.map_err(|e| Failure::internal(format!("{step}: {e}")))
    }
}

/// Writes one fact line (`line` without its newline) to stdout with a single `write(2)`.
///
/// No userspace buffer is involved: stdout may be a pipe, forked processes (the daemon, the
/// escapee) share it with the exec'd logger, and a line must never sit in a buffer when the
/// process is killed. One write per line also keeps lines from different processes whole.
pub fn fact(line: impl fmt::Display) {
    write_all(libc::STDOUT_FILENO, format!("{line}\n").as_bytes());
}

fn write_all(fd: libc::c_int, mut buf: &[u8]) {
    while !buf.is_empty() {
        // SAFETY: `buf` is a valid slice for the length passed.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n < 0 {
            if Errno::last() == Errno::EINTR {
                continue;
            }
            // Nobody reads our output any more: there is no one left to tell.
            return;
        }
        buf = &buf[n as usize..];
    }
}

/// `CLOCK_MONOTONIC` when `main` began: the handshake's `start_mono_ns`.
static STARTED: OnceLock<i128> = OnceLock::new();

/// Notes the moment the program began; the first statement of `main` calls it, so that the host
/// can time a start-up up to the child's first instruction (`make bench`).
pub fn mark_start() {
    STARTED.get_or_init(mono_ns);
}

/// The first line of every subcommand but `ps`.
pub fn handshake(cmd: &str) {
    let pid = getpid();
    let pgid = getpgid(None).map_or(-1, |p| p.as_raw());
    let sid = getsid(None).map_or(-1, |p| p.as_raw());
    let started = STARTED.get().copied().unwrap_or_else(mono_ns);
    fact(format_args!(
        "ready pid={pid} ppid={} pgid={pgid} sid={sid} cmd={cmd} start_mono_ns={started}",
        getppid()
    ));
}

/// `CLOCK_MONOTONIC` in nanoseconds, comparable with the host's clock.
pub fn mono_ns() -> i128 {
    clock_gettime(ClockId::CLOCK_MONOTONIC)
        .map_or(0, |t| i128::from(t.tv_sec()) * 1_000_000_000 + i128::from(t.tv_nsec()))
}

/// The line printed for every signal received, by the logger, the echo server and the tree's
/// daemon and escapee alike.
pub fn signal_fact(signo: i32, sender: i32) {
    fact(format_args!(
        "signal name={} num={signo} pid={} sender={sender} mono_ns={}",
        signal_name(signo),
        getpid(),
        mono_ns()
    ));
}
