//! Signal mask set-up, the signalfd, signal names and classification, and the child's reset.
//!
//! scinit never installs a handler: every catchable signal is blocked as the first thing in
//! `main` and read from a signalfd in the event loop, so a signal sent at any moment (even before
//! the child exists) stays pending and is never lost.

use std::mem::MaybeUninit;
use std::os::fd::AsRawFd;

use nix::errno::Errno;
use nix::libc;
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

/// Synchronous fault signals. They are raised by the kernel for a fault in scinit itself; if
/// they were blocked, a fault would loop or kill scinit in a confusing way, and forwarding them
/// would blame the child for scinit's bug. They are never blocked and never forwarded.
pub const FAULT_SIGNALS: [Signal; 7] = [
    Signal::SIGSEGV,
    Signal::SIGBUS,
    Signal::SIGILL,
    Signal::SIGFPE,
    Signal::SIGABRT,
    Signal::SIGTRAP,
    Signal::SIGSYS,
];

/// The set scinit blocks and reads from its signalfd: everything but the fault signals.
/// (`SIGKILL` and `SIGSTOP` cannot be blocked; the kernel silently drops them from the mask.)
pub fn handled_set() -> SigSet {
    let mut set = SigSet::all();
    for signal in FAULT_SIGNALS {
        set.remove(signal);
    }
    set
}

/// Blocks every handled signal for the whole process. Must run before anything else in `main`.
pub fn block_all() -> Result<(), Errno> {
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&handled_set()), None)
}

/// Opens the signalfd scinit's loop reads. Non-blocking so the loop can drain it to `EAGAIN`
/// (standard signals coalesce; real-time signals queue one entry each).
pub fn open_signalfd() -> Result<SignalFd, Errno> {
    SignalFd::with_flags(&handled_set(), SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
}

/// Room for the signals one `read` of the signalfd takes: more than ever pile up between two
/// wake-ups in practice, so one `read` per wake-up drains it (`read_signal` would take two, the
/// second only to learn that nothing is left). Left uninitialised: zeroing it would cost more
/// than the rest of forwarding a signal.
pub struct Batch([MaybeUninit<libc::signalfd_siginfo>; Batch::LEN]);

impl Batch {
    pub const LEN: usize = 16;

    pub fn new() -> Batch {
        Batch([MaybeUninit::uninit(); Batch::LEN])
    }

    /// Reads what is pending, up to [`Batch::LEN`] signals; `EAGAIN` when nothing is.
    pub fn read(&mut self, fd: &SignalFd) -> Result<&[libc::signalfd_siginfo], Errno> {
        // SAFETY: the kernel writes at most the buffer's size into it, in whole records.
        let read = Errno::result(unsafe {
            libc::read(fd.as_raw_fd(), self.0.as_mut_ptr().cast(), std::mem::size_of_val(&self.0))
        })?;
        let count = (read as usize / std::mem::size_of::<libc::signalfd_siginfo>()).min(Batch::LEN);
        // SAFETY: the first `count` records were written by the kernel just now, and any bytes
        // are a valid record (plain integers).
        Ok(unsafe { std::slice::from_raw_parts(self.0.as_ptr().cast(), count) })
    }
}

/// What scinit does with a signal it received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// SIGTERM, SIGINT, SIGQUIT: start (or continue) a shutdown.
    Stop,
    /// SIGCHLD: run the reaper.
    Reap,
    /// The configured restart signal: restart the child.
    Restart,
    /// Everything else, SIGTSTP/SIGTTIN/SIGTTOU included: forward to the child's group.
    Forward,
}

/// Classifies a signal. Job-control stops (TSTP, TTIN, TTOU) are forwarded like any other
/// signal: scinit never stops itself (a stopped PID 1 freezes the container) but must not drop
/// them either (podman#18095), so the child decides what a stop means for it.
pub fn classify(signo: i32, restart_signal: Option<i32>) -> Class {
    if restart_signal == Some(signo) {
        return Class::Restart;
    }
    match signo {
        libc::SIGTERM | libc::SIGINT | libc::SIGQUIT => Class::Stop,
        libc::SIGCHLD => Class::Reap,
        _ => Class::Forward,
    }
}

/// `SIGTERM`, or `SIGRTMIN+N` for real-time signals, for logs: written straight into the line,
/// so a name costs nothing unless a line is written.
pub fn name(signo: i32) -> Name {
    Name(signo)
}

/// A signal's name, see [`name`].
#[derive(Debug, Clone, Copy)]
pub struct Name(i32);

impl std::fmt::Display for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let signo = self.0;
        match Signal::try_from(signo) {
            Ok(signal) => f.write_str(signal.as_str()),
            Err(_) if (libc::SIGRTMIN()..=libc::SIGRTMAX()).contains(&signo) => {
                write!(f, "SIGRTMIN+{}", signo - libc::SIGRTMIN())
            }
            Err(_) => write!(f, "signal {signo}"),
        }
    }
}

/// Parses `SIGHUP`, `HUP`, `hup`, `1`, `SIGRTMIN+3`, `RTMIN+3`, `RTMAX-2` into a signal number.
///
/// Numbers and offsets are plain decimal digits, checked against the real-time range without
/// arithmetic that can wrap: a sign or an overflow (`RTMIN+-1`, `RTMIN+2147483647`) must be an
/// error, not some other signal.
pub fn parse(text: &str) -> Option<i32> {
    let (min, max) = (libc::SIGRTMIN(), libc::SIGRTMAX());
    if let Some(number) = decimal(text) {
        return (1..=max).contains(&number).then_some(number);
    }
    let upper = text.to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(offset) = bare.strip_prefix("RTMIN") {
        let offset = if offset.is_empty() { 0 } else { decimal(offset.strip_prefix('+')?)? };
        return min.checked_add(offset).filter(|number| *number <= max);
    }
    if let Some(offset) = bare.strip_prefix("RTMAX") {
        let offset = if offset.is_empty() { 0 } else { decimal(offset.strip_prefix('-')?)? };
        return max.checked_sub(offset).filter(|number| *number >= min);
    }
    format!("SIG{bare}").parse::<Signal>().ok().map(|s| s as i32)
}

/// A plain non-negative decimal: ASCII digits only (no sign, no space); `None` if it does not
/// fit an `i32`.
fn decimal(text: &str) -> Option<i32> {
    let digits = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    digits.then(|| text.parse().ok()).flatten()
}

/// Sends `signo` to `pid` (a negative pid names a process group). Raw `kill(2)` because nix's
/// `kill` only takes its `Signal` enum, which has no real-time signals.
pub fn send(pid: i32, signo: i32) -> Result<(), Errno> {
    // SAFETY: kill(2) has no memory-safety preconditions.
    Errno::result(unsafe { libc::kill(pid, signo) }).map(drop)
}

/// In the forked child, before exec: every disposition back to default and an empty mask.
///
/// Dispositions are reset for *all* signals, including ones scinit inherited as ignored: the
/// child must start like a process started from a clean state, and Rust's runtime sets SIGPIPE
/// to ignored, which must not leak. Resetting happens before unblocking so that no signal can
/// be delivered to a stale disposition in between.
pub fn reset_for_child() -> Result<(), Errno> {
    for signo in 1..=libc::SIGRTMAX() {
        if signo == libc::SIGKILL || signo == libc::SIGSTOP {
            continue;
        }
        set_default(signo);
    }
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
}

/// The kernel's `struct sigaction` (x86_64 and the generic layout).
#[repr(C)]
struct KernelSigaction {
    handler: libc::sighandler_t,
    flags: libc::c_ulong,
    restorer: usize,
    mask: u64,
}

/// `SIG_DFL` through the raw `rt_sigaction` system call. glibc's `sigaction` refuses its two
/// internal real-time signals (32 and 33), yet they can arrive ignored (glibc's `posix_spawn`
/// ignores them in the children it starts) and an ignored disposition survives exec.
fn set_default(signo: i32) {
    let action = KernelSigaction { handler: libc::SIG_DFL, flags: 0, restorer: 0, mask: 0 };
    // SAFETY: `action` is a valid kernel sigaction for the duration of the call; SIG_DFL runs
    // no code of ours. Failures (invalid numbers) leave nothing to undo.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigaction,
            signo,
            &action as *const KernelSigaction,
            std::ptr::null_mut::<KernelSigaction>(),
            std::mem::size_of::<u64>(),
        )
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    const HUP: Option<i32> = Some(libc::SIGHUP);

    #[test]
    fn stop_signals_start_a_shutdown() {
        for signo in [libc::SIGTERM, libc::SIGINT, libc::SIGQUIT] {
            assert_eq!(classify(signo, HUP), Class::Stop, "{}", name(signo));
        }
    }

    #[test]
    fn sigchld_reaps() {
        assert_eq!(classify(libc::SIGCHLD, HUP), Class::Reap);
    }

    #[test]
    fn restart_signal_restarts_and_is_forwarded_when_none() {
        assert_eq!(classify(libc::SIGHUP, HUP), Class::Restart);
        assert_eq!(classify(libc::SIGHUP, None), Class::Forward);
        assert_eq!(classify(libc::SIGUSR2, Some(libc::SIGUSR2)), Class::Restart);
    }

    #[test]
    fn everything_else_is_forwarded_including_job_control_and_realtime() {
        let forwarded = [
            libc::SIGUSR1,
            libc::SIGUSR2,
            libc::SIGWINCH,
            libc::SIGCONT,
            libc::SIGALRM,
            libc::SIGPWR,
            libc::SIGTSTP,
            libc::SIGTTIN,
            libc::SIGTTOU,
            libc::SIGRTMIN(),
            libc::SIGRTMIN() + 3,
            libc::SIGRTMAX(),
        ];
        for signo in forwarded {
            assert_eq!(classify(signo, HUP), Class::Forward, "{}", name(signo));
        }
    }

    #[test]
    fn fault_signals_are_not_blocked() {
        let set = handled_set();
        for signal in FAULT_SIGNALS {
            assert!(!set.contains(signal), "{signal} must stay unblocked");
        }
        assert!(
            set.contains(Signal::SIGTERM)
                && set.contains(Signal::SIGCHLD)
                && set.contains(Signal::SIGTSTP)
        );
    }

    #[test]
    fn signal_names_parse_in_every_spelling() {
        assert_eq!(parse("SIGHUP"), Some(libc::SIGHUP));
        assert_eq!(parse("HUP"), Some(libc::SIGHUP));
        assert_eq!(parse("hup"), Some(libc::SIGHUP));
        assert_eq!(parse("1"), Some(libc::SIGHUP));
        assert_eq!(parse("SIGUSR2"), Some(libc::SIGUSR2));
        assert_eq!(parse("RTMIN+3"), Some(libc::SIGRTMIN() + 3));
        assert_eq!(parse("SIGRTMIN"), Some(libc::SIGRTMIN()));
        assert_eq!(parse("SIGNOPE"), None);
        assert_eq!(parse("0"), None);
        assert_eq!(parse("65"), None);
        assert_eq!(parse("RTMIN+99"), None);
    }

    #[test]
    fn realtime_offsets_are_plain_decimals_within_range() {
        let (min, max) = (libc::SIGRTMIN(), libc::SIGRTMAX());
        assert_eq!(parse("RTMIN+0"), Some(min));
        assert_eq!(parse("sigrtmin+1"), Some(min + 1));
        assert_eq!(parse(&format!("RTMIN+{}", max - min)), Some(max));
        assert_eq!(parse("RTMAX"), Some(max));
        assert_eq!(parse("SIGRTMAX-2"), Some(max - 2));
        assert_eq!(parse(&format!("RTMAX-{}", max - min)), Some(min));
        assert_eq!(parse(&max.to_string()), Some(max));
        for bad in [
            "RTMIN+-1",
            "RTMIN+-34",
            "SIGRTMIN+-1",
            "RTMIN+2147483647",
            "RTMIN+4294967296",
            "RTMIN++1",
            "RTMIN+",
            "RTMIN+ 1",
            "RTMIN+1x",
            "RTMIN-1",
            "RTMAX+1",
            "RTMAX--1",
            "RTMAX-2147483647",
            "+1",
            "-1",
            " 1",
            "1 ",
            "SIG1",
            "",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
        assert_eq!(parse(&format!("RTMIN+{}", max - min + 1)), None);
        assert_eq!(parse(&format!("RTMAX-{}", max - min + 1)), None);
    }

    #[test]
    fn one_read_takes_every_pending_signal() {
        // Blocked in this thread only, and sent to this thread only: the test's own threads
        // keep their masks.
        let mut set = SigSet::empty();
        set.add(Signal::SIGUSR1);
        set.add(Signal::SIGUSR2);
        let old = set.thread_swap_mask(SigmaskHow::SIG_BLOCK).unwrap();
        let fd =
            SignalFd::with_flags(&set, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC).unwrap();
        for signo in [libc::SIGUSR2, libc::SIGUSR1] {
            // SAFETY: a signal blocked in this thread, to this thread.
            assert_eq!(unsafe { libc::pthread_kill(libc::pthread_self(), signo) }, 0);
        }
        let mut batch = Batch::new();
        let received: Vec<u32> = batch.read(&fd).unwrap().iter().map(|i| i.ssi_signo).collect();
        assert_eq!(received, [libc::SIGUSR1 as u32, libc::SIGUSR2 as u32]);
        assert_eq!(batch.read(&fd).err(), Some(Errno::EAGAIN));
        old.thread_set_mask().unwrap();
    }

    #[test]
    fn names_are_readable_for_realtime_signals() {
        assert_eq!(name(libc::SIGTERM).to_string(), "SIGTERM");
        assert_eq!(name(libc::SIGRTMIN() + 3).to_string(), "SIGRTMIN+3");
        assert_eq!(name(32).to_string(), "signal 32");
    }
}
