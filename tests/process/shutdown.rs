//! At shutdown scinit sends SIGTERM to every process still left below it, not only the main
//! child: `setsid` escapees and double-forked daemons too (tini#95, #229, #236; dumb-init#80,
//! #212), waits for them within the grace period, then exits with the main child's code.

use nix::sys::signal::Signal;

use crate::harness::{field, start, testkit};

/// Runs `tree MODE --on-term log -- testkit signals`, stops scinit, and checks that the process
/// that left the child's group (`kind`) got SIGTERM from scinit and exited before scinit did.
fn leftover_gets_sigterm_at_shutdown(mode: &str, kind: &str) {
    let testkit = testkit();
    let child = ["tree", mode, "--on-term", "log", "--", &testkit, "signals"];
    let mut scinit = start(&[], &child, &[("SCINIT_LOG", "info")]);
    let line = scinit.line_starting(&format!("{kind} pid="));
    let leftover = field(&line, "pid").unwrap().to_string();
    scinit.ready("signals");

    scinit.signal(Signal::SIGTERM);
    let term = scinit.line(&format!("SIGTERM in the {kind}"), |l| {
        l.starts_with("signal name=SIGTERM") && field(l, "pid") == Some(leftover.as_str())
    });
    assert_eq!(
        field(&term, "sender"),
        Some(scinit.pid().to_string().as_str()),
        "{term}"
    );
    scinit.line_starting(&format!("{kind}-exit pid={leftover}"));
    assert_eq!(scinit.exit_code(), 143, "{}", scinit.report());
    let stderr = scinit.stderr();
    assert!(
        stderr.contains("sending SIGTERM to 1 remaining process"),
        "{stderr}"
    );
}

#[test]
fn setsid_escapee_gets_sigterm_at_shutdown() {
    leftover_gets_sigterm_at_shutdown("setsid", "escapee");
}

#[test]
fn double_forked_daemon_gets_sigterm_at_shutdown() {
    leftover_gets_sigterm_at_shutdown("daemon", "daemon");
}

#[test]
fn leftover_ignoring_sigterm_is_killed_when_the_grace_period_ends() {
    let testkit = testkit();
    let child = [
        "tree",
        "setsid",
        "--on-term",
        "ignore",
        "--",
        &testkit,
        "exit-with",
        "4",
    ];
    let mut scinit = start(&["--graceful-timeout-secs", "0.3"], &child, &[]);
    let line = scinit.line_starting("escapee pid=");
    let escapee: i32 = field(&line, "pid").unwrap().parse().unwrap();
    // The main child exits at once; the grace period starts there, then the escapee is killed.
    assert_eq!(scinit.exit_code(), 4, "{}", scinit.report());
    assert!(
        !crate::harness::processes()
            .iter()
            .any(|p| p.pid == escapee && p.state != 'Z'),
        "the escapee survived scinit"
    );
}
