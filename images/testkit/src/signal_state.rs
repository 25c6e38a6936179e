//! This process's own signal state: masks, waiting for a signal, dispositions, and ending
//! because of a signal.
//!
//! Signal sets are handled as raw `libc::sigset_t` because nix's `Signal` enum has no real-time
//! signals, and the logger must block and collect `SIGRTMIN+N` like any other signal.

use std::time::Duration;

use nix::errno::Errno;
use nix::libc;

use crate::protocol::{Context, Failure};
use crate::signal_names::signal_name;

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
            return Err(Failure::internal(format!("pthread_sigmask: {}", Errno::from_raw(rc))));
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

/// The `--linger-ms` pause of the logger, the daemon and the escapee, between a signal's line
/// and the exit that signal causes.
pub fn linger(ms: u64) {
    if ms > 0 {
        std::thread::sleep(Duration::from_millis(ms));
    }
}
