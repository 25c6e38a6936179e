//! PID 1 seen from the host: holding it before the init runs, watching its start-up through the
//! host's `/proc`, signalling it with `kill(2)` at a chosen moment, and reading its memory.
//!
//! The suite runs beside the Docker daemon, so a container's PID 1 is a host process too: this
//! is the one place that relies on it.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use nix::sys::signal::Signal;
use nix::unistd::Pid;

use crate::utils::proc;

/// Where a held container's shell waits before it `exec`s the init.
const HOLD_FIFO: &str = "/tmp/.scinit-test-hold";

/// `argv` behind a shell that waits on [`HOLD_FIFO`] and then `exec`s it as the same PID 1.
pub fn held(argv: Vec<String>) -> Vec<String> {
    let hold = format!("mkfifo {HOLD_FIFO} && read -r _ < {HOLD_FIFO}; exec \"$@\"");
    ["/bin/sh".to_string(), "-c".into(), hold, "held".into()].into_iter().chain(argv).collect()
}

/// The command, run inside a held container, that lets its PID 1 go on to the init.
pub fn release() -> [String; 3] {
    ["/bin/sh".into(), "-c".into(), format!("echo go > {HOLD_FIFO}")]
}

/// A moment of the init's start-up, as the host sees PID 1; see [`HostPid1::signal_at`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pid1Moment {
    /// The first time PID 1, running the init (no longer runc's stub), is asleep. That comes
    /// after a correct init's first statement, and catches an init that sleeps (e.g. while
    /// spawning its child) before it blocks its signals.
    FirstSleep,
    /// The first time PID 1, running the init, blocks or catches the signal: from then on a
    /// correct init holds it, so this catches an init that discards signals that arrived before
    /// its loop runs.
    SignalHeld,
}

impl Pid1Moment {
    /// Whether PID 1's `/proc/<pid>/status` shows the moment has come.
    fn reached(self, status: &proc::Status, signo: i32) -> bool {
        if is_stub(status.text("Name")) {
            return false;
        }
        let asleep = status.text("State").starts_with(['S', 'Z', 'X']);
        let held = (status.mask("SigBlk") | status.mask("SigCgt")) & (1u64 << (signo - 1)) != 0;
        match self {
            Pid1Moment::FirstSleep => asleep,
            // An init asleep in `sigwait`/`sigtimedwait` holds the signal too, although the
            // kernel clears the waited-for signals from `SigBlk` for the length of the wait.
            Pid1Moment::SignalHeld => asleep || held,
        }
    }
}

/// Whether a `/proc/<pid>/status` name is one of the programs that run as PID 1 *before* the
/// init: runc's stub, or the shell of a held container.
fn is_stub(name: &str) -> bool {
    name.starts_with("runc:") || name == "sh"
}

/// A container's PID 1 by its host pid.
#[derive(Debug, Clone, Copy)]
pub struct HostPid1 {
    pid: i32,
}

impl HostPid1 {
    pub fn new(host_pid: i64) -> Result<HostPid1> {
        let pid = i32::try_from(host_pid).context("PID 1's host pid")?;
        if pid <= 0 {
            bail!("the container has no running PID 1 (host pid {host_pid})");
        }
        Ok(HostPid1 { pid })
    }

    /// `kill(2)` from the host: where `docker kill` ends (runc signals PID 1 from the parent
    /// namespace), without the milliseconds of API plumbing before it.
    pub fn kill(&self, signal: Signal) -> Result<()> {
        nix::sys::signal::kill(Pid::from_raw(self.pid), signal)
            .map_err(|e| anyhow!("kill {signal} → host pid {}: {e}", self.pid))
    }

    pub fn status(&self) -> Result<proc::Status> {
        proc::Status::of(self.pid)
    }

    /// The `Anonymous:` figure of `smaps_rollup`, in KiB: what the init allocated at run time.
    pub fn anonymous_kib(&self) -> Result<u64> {
        proc::smaps_rollup_kib(self.pid, "Anonymous")
    }

    /// Sends `signal` at `moment` of the init's start-up, spinning on the host's
    /// `/proc/<pid>/status` so that it lands within microseconds of it. Returns whether PID 1 had
    /// not yet reached `moment` when the watch began.
    ///
    /// `docker start` returns once runc has released its stub (`runc:[2:INIT]`), possibly
    /// before its `execve`, and a busy machine can then keep the new program off the CPU for
    /// milliseconds before its `main` runs: a signal sent in either window is lost whatever the
    /// init, so both moments come after them.
    pub fn signal_at(
        self,
        moment: Pid1Moment,
        signal: Signal,
        within: Duration,
    ) -> tokio::task::JoinHandle<Result<bool>> {
        // Spin on a blocking thread rather than poll with pauses: the windows that matter (a
        // first sleep while spawning the child, the moments after the mask is set) may last
        // well under a millisecond.
        tokio::task::spawn_blocking(move || {
            let deadline = Instant::now() + within;
            let mut waited = false;
            loop {
                // A PID 1 that is gone already (an init that died of the signal) reads as empty.
                let status = self.status().unwrap_or_default();
                if status.is_empty() || moment.reached(&status, signal as i32) {
                    self.kill(signal)?;
                    return Ok(waited);
                }
                waited = true;
                if Instant::now() >= deadline {
                    bail!("PID 1 did not reach {moment:?} within {within:?}; last seen: {status}");
                }
                std::thread::yield_now();
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(name: &str, state: &str, blk: &str) -> proc::Status {
        proc::Status::parse(&format!(
            "Name:\t{name}\nState:\t{state}\nSigBlk:\t{blk}\nSigCgt:\t0000000000000000\n"
        ))
    }

    #[test]
    fn moments_are_read_from_the_status_and_never_from_the_stub() {
        let term = Signal::SIGTERM as i32;
        assert!(!Pid1Moment::FirstSleep.reached(&status("runc:[2:INIT]", "S", "0"), term));
        assert!(!Pid1Moment::FirstSleep.reached(&status("sh", "S", "0"), term));
        assert!(Pid1Moment::FirstSleep.reached(&status("init", "S (sleeping)", "0"), term));
        assert!(!Pid1Moment::SignalHeld.reached(&status("init", "R", "0"), term));
        assert!(Pid1Moment::SignalHeld.reached(&status("init", "R", "0000000000004000"), term));
    }

    #[test]
    fn the_hold_shell_execs_the_init_with_its_arguments() {
        let argv = held(vec!["/init".into(), "--".into()]);
        assert_eq!(argv[..2], ["/bin/sh", "-c"]);
        assert!(argv[2].contains(HOLD_FIFO) && argv[2].ends_with("exec \"$@\""));
        assert_eq!(argv[3..], ["held", "/init", "--"]);
        assert!(release()[2].contains(HOLD_FIFO));
    }
}
