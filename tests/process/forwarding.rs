//! Signals sent to scinit reach the child's process group; only the stop signals end scinit.

use nix::sys::signal::Signal;

use crate::harness::{field, start};

#[test]
fn sigterm_reaches_child_and_exit_code_is_143() {
    let mut scinit = start(&[], &["signals"], &[]);
    let child = scinit.ready("signals");
    scinit.signal(Signal::SIGTERM);
    let line = scinit.line_starting("signal name=SIGTERM");
    assert_eq!(field(&line, "pid"), Some(child.to_string().as_str()));
    // The sender is scinit: the child heard it from its init, not from the test.
    assert_eq!(field(&line, "sender"), Some(scinit.pid().to_string().as_str()));
    assert_eq!(scinit.exit_code(), 143, "{}", scinit.report());
}

#[test]
fn child_that_traps_sigterm_decides_the_exit_code() {
    let mut scinit = start(&[], &["signals", "--on", "TERM=exit:0"], &[]);
    scinit.ready("signals");
    scinit.signal(Signal::SIGTERM);
    scinit.line_starting("exiting code=0");
    assert_eq!(scinit.exit_code(), 0);
}

#[test]
fn sigusr1_is_forwarded_and_scinit_keeps_running() {
    let mut scinit = start(&[], &["signals"], &[]);
    scinit.ready("signals");
    scinit.signal(Signal::SIGUSR1);
    scinit.line_starting("signal name=SIGUSR1");
    assert!(scinit.running(), "scinit exited after SIGUSR1\n{}", scinit.report());
    // It still forwards and still shuts down properly afterwards.
    scinit.signal(Signal::SIGINT);
    scinit.line_starting("signal name=SIGINT");
    assert_eq!(scinit.exit_code(), 130);
}

/// Everything that is not a stop, restart or child signal is forwarded, job-control stops
/// included (podman#18095 dropped them), and scinit itself never stops.
#[test]
fn other_signals_and_job_control_stops_are_forwarded_in_order() {
    let mut scinit = start(&[], &["signals"], &[]);
    scinit.ready("signals");
    for signal in [
        Signal::SIGUSR2,
        Signal::SIGWINCH,
        Signal::SIGCONT,
        Signal::SIGALRM,
        Signal::SIGPWR,
        Signal::SIGTSTP,
        Signal::SIGTTIN,
        Signal::SIGTTOU,
    ] {
        scinit.signal(signal);
        scinit.line_starting(&format!("signal name={}", signal.as_str()));
    }
    assert!(scinit.running());
    scinit.signal(Signal::SIGTERM);
    assert_eq!(scinit.exit_code(), 143);
}

#[test]
fn realtime_signals_are_forwarded() {
    let mut scinit = start(&[], &["signals"], &[]);
    scinit.ready("signals");
    let rtmin3 = nix::libc::SIGRTMIN() + 3;
    // SAFETY: kill(2) has no memory-safety preconditions (nix's `kill` has no real-time signals).
    assert_eq!(unsafe { nix::libc::kill(scinit.pid(), rtmin3) }, 0);
    scinit.line_starting("signal name=SIGRTMIN+3");
    scinit.signal(Signal::SIGTERM);
    assert_eq!(scinit.exit_code(), 143);
}

#[test]
fn sighup_is_forwarded_when_the_restart_signal_is_none() {
    let mut scinit = start(&["--restart-signal", "none"], &["signals", "--on", "HUP=log"], &[]);
    scinit.ready("signals");
    scinit.signal(Signal::SIGHUP);
    scinit.line_starting("signal name=SIGHUP");
    assert!(scinit.running());
    scinit.signal(Signal::SIGTERM);
    assert_eq!(scinit.exit_code(), 143);
}

#[test]
fn child_ignoring_sigterm_is_killed_after_the_grace_period() {
    let mut scinit =
        start(&["--graceful-timeout-secs", "0.3"], &["signals", "--on", "TERM=log"], &[]);
    scinit.ready("signals");
    scinit.signal(Signal::SIGTERM);
    scinit.line_starting("signal name=SIGTERM");
    assert_eq!(scinit.exit_code(), 137, "{}", scinit.report());
}
