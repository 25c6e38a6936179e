//! What every subcommand shares: the output protocol of `images/README.md` (handshake, one fact
//! per line, one-line errors with sysexits codes), the signal name table, small argument parsers
//! and the raw signal-mask helpers.
//!
//! Signal sets are handled as raw `libc::sigset_t` because nix's `Signal` enum has no real-time
//! signals, and the logger must block and collect `SIGRTMIN+N` like any other signal.

use std::ffi::OsString;
use std::fmt;
use std::time::Duration;

use nix::errno::Errno;
use nix::libc;
use nix::time::{clock_gettime, ClockId};
use nix::unistd::{getpgid, getpid, getppid, getsid};

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
        write_all(
            libc::STDERR_FILENO,
            format!("testkit: {cmd}: {what}\n").as_bytes(),
        );
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

/// The first line of every subcommand but `ps`.
pub fn handshake(cmd: &str) {
    let pid = getpid();
    let pgid = getpgid(None).map_or(-1, |p| p.as_raw());
    let sid = getsid(None).map_or(-1, |p| p.as_raw());
    fact(format_args!(
        "ready pid={pid} ppid={} pgid={pgid} sid={sid} cmd={cmd}",
        getppid()
    ));
}

/// `CLOCK_MONOTONIC` in nanoseconds, comparable with the host's clock.
pub fn mono_ns() -> i128 {
    clock_gettime(ClockId::CLOCK_MONOTONIC).map_or(0, |t| {
        i128::from(t.tv_sec()) * 1_000_000_000 + i128::from(t.tv_nsec())
    })
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

const NAMES: [(i32, &str); 31] = [
    (libc::SIGHUP, "SIGHUP"),
    (libc::SIGINT, "SIGINT"),
    (libc::SIGQUIT, "SIGQUIT"),
    (libc::SIGILL, "SIGILL"),
    (libc::SIGTRAP, "SIGTRAP"),
    (libc::SIGABRT, "SIGABRT"),
    (libc::SIGBUS, "SIGBUS"),
    (libc::SIGFPE, "SIGFPE"),
    (libc::SIGKILL, "SIGKILL"),
    (libc::SIGUSR1, "SIGUSR1"),
    (libc::SIGSEGV, "SIGSEGV"),
    (libc::SIGUSR2, "SIGUSR2"),
    (libc::SIGPIPE, "SIGPIPE"),
    (libc::SIGALRM, "SIGALRM"),
    (libc::SIGTERM, "SIGTERM"),
    (libc::SIGSTKFLT, "SIGSTKFLT"),
    (libc::SIGCHLD, "SIGCHLD"),
    (libc::SIGCONT, "SIGCONT"),
    (libc::SIGSTOP, "SIGSTOP"),
    (libc::SIGTSTP, "SIGTSTP"),
    (libc::SIGTTIN, "SIGTTIN"),
    (libc::SIGTTOU, "SIGTTOU"),
    (libc::SIGURG, "SIGURG"),
    (libc::SIGXCPU, "SIGXCPU"),
    (libc::SIGXFSZ, "SIGXFSZ"),
    (libc::SIGVTALRM, "SIGVTALRM"),
    (libc::SIGPROF, "SIGPROF"),
    (libc::SIGWINCH, "SIGWINCH"),
    (libc::SIGIO, "SIGIO"),
    (libc::SIGPWR, "SIGPWR"),
    (libc::SIGSYS, "SIGSYS"),
];

/// glibc's `SIGRTMIN` (34): the two real-time signals below it are reserved by glibc itself.
/// Docker's `RTMIN+N` uses the same numbering.
pub fn sigrtmin() -> i32 {
    libc::SIGRTMIN()
}

pub fn sigrtmax() -> i32 {
    libc::SIGRTMAX()
}

/// `SIGTERM`, `SIGRTMIN+3`; the glibc-reserved 32 and 33 have no name and are written `SIG32`.
pub fn signal_name(signo: i32) -> String {
    if let Some((_, name)) = NAMES.iter().find(|(n, _)| *n == signo) {
        return (*name).to_string();
    }
    if (sigrtmin()..=sigrtmax()).contains(&signo) {
        return format!("SIGRTMIN+{}", signo - sigrtmin());
    }
    format!("SIG{signo}")
}

/// Accepts `TERM`, `SIGTERM`, `15`, `RTMIN+3`, `SIGRTMIN+3`, `RTMIN`, `RTMAX-1` (case-insensitive).
pub fn parse_signal(text: &str) -> Result<i32, Failure> {
    let bad = || Failure::usage(format!("unknown signal {text:?}"));
    if let Ok(n) = text.parse::<i32>() {
        return if (1..=sigrtmax()).contains(&n) {
            Ok(n)
        } else {
            Err(bad())
        };
    }
    let upper = text.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(rt) = name.strip_prefix("RTMIN") {
        let offset = if rt.is_empty() {
            0
        } else {
            rt.strip_prefix('+')
                .and_then(|n| n.parse::<i32>().ok())
                .ok_or_else(bad)?
        };
        let signo = sigrtmin() + offset;
        return if signo <= sigrtmax() {
            Ok(signo)
        } else {
            Err(bad())
        };
    }
    if let Some(rt) = name.strip_prefix("RTMAX") {
        let offset = if rt.is_empty() {
            0
        } else {
            rt.strip_prefix('-')
                .and_then(|n| n.parse::<i32>().ok())
                .ok_or_else(bad)?
        };
        let signo = sigrtmax() - offset;
        return if signo >= sigrtmin() {
            Ok(signo)
        } else {
            Err(bad())
        };
    }
    let full = format!("SIG{name}");
    NAMES
        .iter()
        .find(|(_, n)| *n == full)
        .map(|(n, _)| *n)
        .ok_or_else(bad)
}

/// Whether the default action of `signo` ends the process (rather than ignoring it or stopping
/// it): only those can be used to die "of" a signal.
pub fn default_terminates(signo: i32) -> bool {
    !matches!(
        signo,
        libc::SIGCHLD
            | libc::SIGCONT
            | libc::SIGURG
            | libc::SIGWINCH
            | libc::SIGSTOP
            | libc::SIGTSTP
            | libc::SIGTTIN
            | libc::SIGTTOU
    )
}

/// A raw signal set; see the module doc for why not nix's `SigSet`.
#[derive(Clone, Copy)]
pub struct SignalSet(libc::sigset_t);

impl SignalSet {
    pub fn full() -> Self {
        // SAFETY: sigfillset initialises the set it is given.
        unsafe {
            let mut set = std::mem::zeroed();
            libc::sigfillset(&mut set);
            SignalSet(set)
        }
    }

    pub fn empty() -> Self {
        // SAFETY: sigemptyset initialises the set it is given.
        unsafe {
            let mut set = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            SignalSet(set)
        }
    }

    pub fn with(mut self, signo: i32) -> Self {
        // SAFETY: the set is initialised; an invalid number only yields EINVAL.
        unsafe { libc::sigaddset(&mut self.0, signo) };
        self
    }

    pub fn without(mut self, signo: i32) -> Self {
        // SAFETY: as in `with`.
        unsafe { libc::sigdelset(&mut self.0, signo) };
        self
    }

    /// Replaces the calling thread's mask and returns the previous one.
    pub fn set_mask(&self, how: libc::c_int) -> Result<SignalSet, Failure> {
        let mut old = SignalSet::empty();
        // SAFETY: both pointers are to initialised sets.
        let rc = unsafe { libc::pthread_sigmask(how, &self.0, &mut old.0) };
        if rc != 0 {
            return Err(Failure::internal(format!(
                "pthread_sigmask: {}",
                Errno::from_raw(rc)
            )));
        }
        Ok(old)
    }

    /// Blocks the set in the calling thread; returns the previous mask.
    pub fn block(&self) -> Result<SignalSet, Failure> {
        self.set_mask(libc::SIG_BLOCK)
    }

    /// Makes the set the calling thread's whole mask; returns the previous mask.
    pub fn install(&self) -> Result<SignalSet, Failure> {
        self.set_mask(libc::SIG_SETMASK)
    }

    /// Waits for one signal of the set (which must be blocked); returns `(signo, sender pid)`.
    pub fn wait(&self) -> Result<(i32, i32), Failure> {
        loop {
            // SAFETY: the set is initialised and `info` is a valid out-parameter.
            let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
            let signo = unsafe { libc::sigwaitinfo(&self.0, &mut info) };
            if signo >= 0 {
                // SAFETY: si_pid is meaningful for kill()/sigqueue() signals and zero otherwise.
                return Ok((signo, unsafe { info.si_pid() }));
            }
            if Errno::last() != Errno::EINTR {
                return Err(Failure::internal(format!("sigwaitinfo: {}", Errno::last())));
            }
        }
    }
}

/// Sets the disposition of `signo` to `SIG_DFL` or `SIG_IGN` (no handlers are ever installed).
pub fn set_disposition(signo: i32, handler: libc::sighandler_t) -> Result<(), Failure> {
    // SAFETY: a zeroed sigaction with SIG_DFL/SIG_IGN and an empty mask is valid.
    let rc = unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(signo, &action, std::ptr::null_mut())
    };
    Errno::result(rc)
        .map(drop)
        .map_err(|e| Failure::internal(format!("sigaction({}): {e}", signal_name(signo))))
}

/// Dies of `signo`: default disposition, raised while blocked, then unblocked so it is delivered
/// here and not on some later instruction. Returns only if the signal did not kill.
pub fn die_of(signo: i32) -> Failure {
    if signo == libc::SIGKILL {
        // Its disposition cannot be changed (EINVAL) nor can it be blocked: just raise it.
        // SAFETY: raise has no memory-safety preconditions.
        unsafe { libc::raise(signo) };
        return Failure::internal("SIGKILL did not end the process");
    }
    let raised = set_disposition(signo, libc::SIG_DFL).and_then(|()| {
        let set = SignalSet::empty().with(signo);
        set.block()?;
        // SAFETY: raise has no memory-safety preconditions.
        Errno::result(unsafe { libc::raise(signo) }).context("raise")?;
        set.set_mask(libc::SIG_UNBLOCK).map(drop)
    });
    match raised {
        Err(e) => e,
        Ok(()) => Failure::internal(format!("{} did not end the process", signal_name(signo))),
    }
}

/// Sleeps `ms` milliseconds (the `--linger-ms` of the logger and the daemon).
pub fn linger(ms: u64) {
    if ms > 0 {
        std::thread::sleep(Duration::from_millis(ms));
    }
}

/// The arguments after the subcommand, with helpers for `--flag VALUE` parsing.
pub struct Args {
    args: std::vec::IntoIter<OsString>,
}

impl Args {
    pub fn new(args: Vec<OsString>) -> Self {
        Args {
            args: args.into_iter(),
        }
    }

    /// The next argument as UTF-8 (every testkit argument is ASCII, except a COMMAND's).
    pub fn next_str(&mut self) -> Result<Option<String>, Failure> {
        self.args
            .next()
            .map(|a| {
                a.into_string()
                    .map_err(|a| Failure::usage(format!("argument {a:?} is not UTF-8")))
            })
            .transpose()
    }

    /// The value of `flag`, which must follow.
    pub fn value(&mut self, flag: &str) -> Result<String, Failure> {
        self.next_str()?
            .ok_or_else(|| Failure::usage(format!("{flag} needs a value")))
    }

    /// Everything left, untouched (a COMMAND after `--`).
    pub fn rest(&mut self) -> Vec<OsString> {
        self.args.by_ref().collect()
    }
}

/// Parses a number argument; `what` names it in the error.
pub fn parse_num<T: std::str::FromStr>(what: &str, text: &str) -> Result<T, Failure> {
    text.parse()
        .map_err(|_| Failure::usage(format!("{what}: not a number: {text:?}")))
}

/// The error of a `--flag` nobody knows.
pub fn unknown(arg: &str) -> Failure {
    Failure::usage(format!("unexpected argument {arg:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_standard_and_realtime_signals() {
        assert_eq!(signal_name(libc::SIGTERM), "SIGTERM");
        assert_eq!(signal_name(libc::SIGUSR1), "SIGUSR1");
        assert_eq!(signal_name(sigrtmin()), "SIGRTMIN+0");
        assert_eq!(signal_name(sigrtmin() + 3), "SIGRTMIN+3");
        assert_eq!(signal_name(32), "SIG32");
    }

    #[test]
    fn parses_every_spelling_of_a_signal() {
        for text in ["TERM", "SIGTERM", "term", "15"] {
            assert_eq!(parse_signal(text), Ok(libc::SIGTERM), "{text}");
        }
        assert_eq!(parse_signal("RTMIN+3"), Ok(sigrtmin() + 3));
        assert_eq!(parse_signal("SIGRTMIN+3"), Ok(sigrtmin() + 3));
        assert_eq!(parse_signal("RTMIN"), Ok(sigrtmin()));
        assert_eq!(parse_signal("RTMAX-1"), Ok(sigrtmax() - 1));
        assert_eq!(parse_signal("RTMAX"), Ok(sigrtmax()));
    }

    #[test]
    fn rejects_unknown_signals() {
        for text in [
            "", "0", "65", "-1", "FOO", "RTMIN+", "RTMIN+99", "RTMIN-1", "SIG",
        ] {
            assert!(
                matches!(parse_signal(text), Err(Failure::Usage(_))),
                "{text}"
            );
        }
    }

    #[test]
    fn name_and_parse_round_trip() {
        for signo in (1..=sigrtmax()).filter(|n| !(32..sigrtmin()).contains(n)) {
            assert_eq!(parse_signal(&signal_name(signo)), Ok(signo), "{signo}");
        }
    }

    #[test]
    fn only_terminating_defaults_can_kill() {
        assert!(default_terminates(libc::SIGTERM));
        assert!(default_terminates(sigrtmin() + 1));
        assert!(!default_terminates(libc::SIGCHLD));
        assert!(!default_terminates(libc::SIGTSTP));
    }
}
