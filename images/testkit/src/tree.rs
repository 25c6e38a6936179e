//! `testkit tree MODE [ARGS] [-- COMMAND...]`: makes the process trees that reaping,
//! group-forwarding and shutdown tests need, prints what it made, then execs COMMAND.
//!
//! The tree maker is single-threaded, so its forked children may run ordinary code. They leave
//! with `_exit`: the parent's exit path is not theirs to run.

use std::ffi::{CString, OsString};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStringExt;
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::libc;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, getpid, pipe2, read, setsid, write, ForkResult, Pid};

use crate::args::{parse_num, unknown, Args};
use crate::protocol::{fact, handshake, signal_fact, Context, Failure, EX_SOFTWARE};
use crate::signal_state::{linger, set_disposition, SignalSet};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnTerm {
    Log,
    Ignore,
}

/// How a signal-logging descendant (daemon or escapee) behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Logger {
    pub on_term: OnTerm,
    pub linger_ms: u64,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Mode {
    Orphans(u32),
    Daemon(Logger),
    Setsid(Logger),
    SiblingExit(u64),
    Forker(u32),
}

#[derive(Debug, PartialEq, Eq)]
pub struct Options {
    pub mode: Mode,
    pub command: Vec<OsString>,
}

pub fn parse(mut args: Args) -> Result<Options, Failure> {
    let mode_name = args.value("tree")?;
    let mut logger = Logger { on_term: OnTerm::Log, linger_ms: 0 };
    let mut count: Option<String> = None;
    let mut command = Vec::new();
    while let Some(arg) = args.next_str()? {
        match arg.as_str() {
            "--" => {
                command = args.rest();
                if command.is_empty() {
                    return Err(Failure::usage("-- needs a COMMAND"));
                }
            }
            "--on-term" if matches!(mode_name.as_str(), "daemon" | "setsid") => {
                logger.on_term = match args.value("--on-term")?.as_str() {
                    "log" => OnTerm::Log,
                    "ignore" => OnTerm::Ignore,
                    other => {
                        return Err(Failure::usage(format!(
                            "--on-term: log or ignore, not {other:?}"
                        )))
                    }
                };
            }
            "--linger-ms" if matches!(mode_name.as_str(), "daemon" | "setsid") => {
                logger.linger_ms = parse_num("--linger-ms", &args.value("--linger-ms")?)?;
            }
            _ if count.is_none() && !arg.starts_with('-') => count = Some(arg),
            _ => return Err(unknown(&arg)),
        }
    }
    let needs_count = |what: &str| {
        count.as_deref().ok_or_else(|| Failure::usage(format!("tree {mode_name} needs {what}")))
    };
    let mode = match mode_name.as_str() {
        "orphans" => Mode::Orphans(parse_num("orphans N", needs_count("N")?)?),
        "forker" => Mode::Forker(parse_num("forker N", needs_count("N")?)?),
        "sibling-exit" => Mode::SiblingExit(parse_num("sibling-exit MS", needs_count("MS")?)?),
        "daemon" | "setsid" => {
            if let Some(extra) = count {
                return Err(unknown(&extra));
            }
            if mode_name == "daemon" {
                Mode::Daemon(logger)
            } else {
                Mode::Setsid(logger)
            }
        }
        other => {
            return Err(Failure::usage(format!(
                "unknown mode {other:?} (orphans, daemon, setsid, sibling-exit, forker)"
            )))
        }
    };
    Ok(Options { mode, command })
}

pub fn run(args: Args) -> Result<(), Failure> {
    let options = parse(args)?;
    let command = options
        .command
        .iter()
        .map(|arg| CString::new(arg.clone().into_vec()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| Failure::usage("COMMAND contains a NUL byte"))?;
    // An inherited SIG_IGN for SIGCHLD would make the kernel auto-reap our children and waitpid
    // fail; COMMAND gets the default disposition too.
    set_disposition(libc::SIGCHLD, libc::SIG_DFL)?;
    handshake("tree");
    match options.mode {
        Mode::Orphans(n) => orphans(n)?,
        Mode::Daemon(logger) => logged_descendant("daemon", logger, true)?,
        Mode::Setsid(logger) => logged_descendant("escapee", logger, false)?,
        Mode::SiblingExit(ms) => sibling(ms)?,
        Mode::Forker(n) => forker(n)?,
    }
    let Some(program) = command.first() else {
        return Ok(());
    };
    let err = nix::unistd::execvp(program, &command).unwrap_err();
    Err(Failure::internal(format!("exec {:?}: {err}", options.command[0])))
}

/// Leaves a forked child without running the parent's exit path.
fn exit_now(code: i32) -> ! {
    // SAFETY: _exit has no preconditions.
    unsafe { libc::_exit(code) }
}

/// In a forked child: report a failure like the parent would, then leave.
fn child_fail(failure: Failure, kind: &str) -> ! {
    let what = match failure {
        Failure::Usage(w) | Failure::Internal(w) => w,
    };
    let line = format!("testkit: tree: {kind}: {what}\n");
    // SAFETY: a valid buffer of the given length.
    unsafe { libc::write(libc::STDERR_FILENO, line.as_ptr().cast(), line.len()) };
    exit_now(EX_SOFTWARE)
}

fn pipe() -> Result<(OwnedFd, OwnedFd), Failure> {
    pipe2(OFlag::O_CLOEXEC).context("pipe2")
}

/// Reads until every writer has closed.
fn read_to_end(fd: &OwnedFd) -> Result<String, Failure> {
    let mut out = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        match read(fd, &mut buf) {
            Ok(0) => return Ok(String::from_utf8_lossy(&out).into_owned()),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(Errno::EINTR) => {}
            Err(e) => return Err(Failure::internal(format!("read pipe: {e}"))),
        }
    }
}

fn write_pid(fd: &OwnedFd, pid: Pid) {
    // A short write cannot happen for a few bytes on a pipe; a failed one shows up in the
    // reader as a missing pid.
    let _ = write(fd, format!("{pid}\n").as_bytes());
}

/// Waits for a direct child the tree maker made and returns its exit code.
fn wait_exit(pid: Pid) -> Result<i32, Failure> {
    loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(code),
            Ok(WaitStatus::Signaled(_, sig, _)) => {
                return Err(Failure::internal(format!("child {pid} died of {sig}")))
            }
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(Failure::internal(format!("waitpid {pid}: {e}"))),
        }
    }
}

/// A middle process forks N children and exits; the children wait until it is gone (EOF on a
/// pipe only it held open) and exit, so their zombies belong to PID 1 or the nearest subreaper.
fn orphans(n: u32) -> Result<(), Failure> {
    let (pids_r, pids_w) = pipe()?;
    // SAFETY: single-threaded process.
    match unsafe { fork() }.context("fork")? {
        ForkResult::Child => {
            drop(pids_r);
            let (release_r, release_w) = pipe().unwrap_or_else(|e| child_fail(e, "middle"));
            for _ in 0..n {
                // SAFETY: single-threaded process.
                match unsafe { fork() } {
                    Ok(ForkResult::Child) => {
                        drop(pids_w);
                        drop(release_w);
                        let mut byte = [0u8; 1];
                        while let Err(Errno::EINTR) = read(&release_r, &mut byte) {}
                        exit_now(0);
                    }
                    Ok(ForkResult::Parent { child }) => write_pid(&pids_w, child),
                    Err(e) => child_fail(Failure::internal(format!("fork: {e}")), "middle"),
                }
            }
            exit_now(0)
        }
        ForkResult::Parent { child: middle } => {
            drop(pids_w);
            let pids = read_to_end(&pids_r)?;
            if wait_exit(middle)? != 0 {
                return Err(Failure::internal("the middle process failed"));
            }
            let pids: Vec<&str> = pids.lines().collect();
            fact(format_args!("orphans count={} pids={}", pids.len(), pids.join(",")));
            Ok(())
        }
    }
}

/// Forks a process that logs every signal it gets: a daemon (double fork, own session,
/// reparented) or an escapee (one fork, own session, stays our child). `kind` is the line kind.
fn logged_descendant(kind: &'static str, logger: Logger, double_fork: bool) -> Result<(), Failure> {
    // Blocked before the fork so the descendant cannot miss a signal; we restore our own mask
    // right after, COMMAND must not inherit it.
    let old_mask = SignalSet::full().block()?;
    let (pid_r, pid_w) = pipe()?;
    // SAFETY: single-threaded process.
    let forked = unsafe { fork() }.context("fork");
    match forked {
        Ok(ForkResult::Child) => {
            drop(pid_r);
            setsid()
                .unwrap_or_else(|e| child_fail(Failure::internal(format!("setsid: {e}")), kind));
            if double_fork {
                // SAFETY: single-threaded process.
                match unsafe { fork() } {
                    Ok(ForkResult::Child) => {}
                    Ok(ForkResult::Parent { .. }) => exit_now(0),
                    Err(e) => child_fail(Failure::internal(format!("fork: {e}")), kind),
                }
            }
            write_pid(&pid_w, getpid());
            drop(pid_w);
            log_signals(kind, logger)
        }
        Ok(ForkResult::Parent { child }) => {
            old_mask.install()?;
            drop(pid_w);
            let pid = read_to_end(&pid_r)?;
            if double_fork && wait_exit(child)? != 0 {
                return Err(Failure::internal("the first fork of the daemon failed"));
            }
            let pid = pid.trim();
            if pid.is_empty() {
                return Err(Failure::internal(format!("the {kind} did not start")));
            }
            fact(format_args!("{kind} pid={pid}"));
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// The daemon's or escapee's life: every signal logged; SIGTERM ends it unless ignored.
fn log_signals(kind: &str, logger: Logger) -> ! {
    let all = SignalSet::full();
    loop {
        let (signo, sender) = all.wait().unwrap_or_else(|e| child_fail(e, kind));
        if signo == libc::SIGCHLD {
            continue;
        }
        signal_fact(signo, sender);
        if signo == libc::SIGTERM && logger.on_term == OnTerm::Log {
            linger(logger.linger_ms);
            fact(format_args!("{kind}-exit pid={}", getpid()));
            exit_now(0);
        }
    }
}

/// A child that exits after `ms`, while COMMAND (about to be exec'd) exits at the same moment.
fn sibling(ms: u64) -> Result<(), Failure> {
    // SAFETY: single-threaded process.
    match unsafe { fork() }.context("fork")? {
        ForkResult::Child => {
            std::thread::sleep(Duration::from_millis(ms));
            exit_now(0)
        }
        ForkResult::Parent { child } => {
            fact(format_args!("sibling pid={child}"));
            Ok(())
        }
    }
}

/// N orphans as fast as fork allows: each is forked by a short-lived middle process so that it
/// is reparented at once. `EAGAIN` (pids limit) is counted, anything else is fatal.
fn forker(n: u32) -> Result<(), Failure> {
    const MIDDLE_EAGAIN: i32 = 1;
    let (mut spawned, mut failed) = (0u32, 0u32);
    for _ in 0..n {
        // SAFETY: single-threaded process.
        match unsafe { fork() } {
            Ok(ForkResult::Child) => {
                // SAFETY: single-threaded process.
                match unsafe { fork() } {
                    Ok(_) => exit_now(0),
                    Err(Errno::EAGAIN) => exit_now(MIDDLE_EAGAIN),
                    Err(e) => child_fail(Failure::internal(format!("fork: {e}")), "forker"),
                }
            }
            Ok(ForkResult::Parent { child }) => match wait_exit(child)? {
                0 => spawned += 1,
                MIDDLE_EAGAIN => failed += 1,
                _ => return Err(Failure::internal("a forker middle process failed")),
            },
            Err(Errno::EAGAIN) => failed += 1,
            Err(e) => return Err(Failure::internal(format!("fork: {e}"))),
        }
    }
    fact(format_args!("forker spawned={spawned} failed={failed}"));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_list(list: &[&str]) -> Result<Options, Failure> {
        parse(Args::of(list))
    }

    #[test]
    fn parses_every_mode() {
        let logger = Logger { on_term: OnTerm::Log, linger_ms: 0 };
        assert_eq!(parse_list(&["orphans", "5"]).unwrap().mode, Mode::Orphans(5));
        assert_eq!(parse_list(&["forker", "100"]).unwrap().mode, Mode::Forker(100));
        assert_eq!(parse_list(&["sibling-exit", "10"]).unwrap().mode, Mode::SiblingExit(10));
        assert_eq!(parse_list(&["daemon"]).unwrap().mode, Mode::Daemon(logger));
        assert_eq!(
            parse_list(&["setsid", "--on-term", "ignore", "--linger-ms", "20"]).unwrap().mode,
            Mode::Setsid(Logger { on_term: OnTerm::Ignore, linger_ms: 20 })
        );
    }

    #[test]
    fn command_follows_the_double_dash_untouched() {
        let options =
            parse_list(&["orphans", "3", "--", "testkit", "signals", "--on", "TERM=exit:0"])
                .unwrap();
        assert_eq!(options.mode, Mode::Orphans(3));
        assert_eq!(options.command, ["testkit", "signals", "--on", "TERM=exit:0"]);
        assert!(parse_list(&["daemon"]).unwrap().command.is_empty());
    }

    #[test]
    fn rejects_bad_trees() {
        for bad in [
            &[][..],
            &["forest"],
            &["orphans"],
            &["orphans", "many"],
            &["orphans", "1", "2"],
            &["orphans", "1", "--on-term", "log"],
            &["daemon", "3"],
            &["daemon", "--on-term", "shout"],
            &["setsid", "--"],
        ] {
            assert!(matches!(parse_list(bad), Err(Failure::Usage(_))), "{bad:?}");
        }
    }
}
