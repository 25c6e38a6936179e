//! At shutdown scinit sends SIGTERM to every process still left below it, not only the main
//! child: `setsid` escapees and double-forked daemons too (tini#95, #229, #236; dumb-init#80,
//! #212), waits for them within the grace period, then exits with the main child's code.

use std::ffi::OsString;

use nix::sys::signal::Signal;

use crate::harness::{descendants, field, processes, start, start_command, testkit, wait_until};

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
    assert_eq!(field(&term, "sender"), Some(scinit.pid().to_string().as_str()), "{term}");
    scinit.line_starting(&format!("{kind}-exit pid={leftover}"));
    assert_eq!(scinit.exit_code(), 143, "{}", scinit.report());
    let stderr = scinit.stderr();
    assert!(stderr.contains("sending SIGTERM to 1 remaining process"), "{stderr}");
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
    let child = ["tree", "setsid", "--on-term", "ignore", "--", &testkit, "exit-with", "4"];
    let mut scinit = start(&["--graceful-timeout-secs", "0.3"], &child, &[]);
    let line = scinit.line_starting("escapee pid=");
    let escapee: i32 = field(&line, "pid").unwrap().parse().unwrap();
    // The main child exits at once; the grace period starts there, then the escapee is killed.
    assert_eq!(scinit.exit_code(), 4, "{}", scinit.report());
    assert!(
        !crate::harness::processes().iter().any(|p| p.pid == escapee && p.state != 'Z'),
        "the escapee survived scinit"
    );
}

#[test]
fn shutdown_log_counts_leftovers_without_zombies_and_lists_only_the_first_pids() {
    // Thirteen leftovers that ignore SIGTERM: twelve sleeps and their parent, which also keeps a
    // zombie child that scinit cannot reap while that parent lives.
    let leftovers = r#"trap "" TERM; i=0; while [ $i -lt 12 ]; do sleep 1000 & i=$((i+1)); done;
                       (exit 0) & exec sleep 1000"#;
    let script = format!("sh -c '{leftovers}' & exec {} signals", testkit());
    let args = ["--graceful-timeout-secs", "0.5", "/bin/sh", "-c", &script];
    let mut scinit =
        start_command(args.iter().map(OsString::from).collect(), [("SCINIT_LOG", "info")]);
    scinit.ready("signals");
    let pid = scinit.pid();
    wait_until("13 leftovers, one zombie and the child run below scinit", || {
        let below = descendants(pid);
        let states = processes().into_iter().filter(|p| below.contains(&p.pid));
        let zombies = states.filter(|p| p.state == 'Z').count();
        zombies == 1 && below.len() == 15
    });

    scinit.signal(Signal::SIGTERM);
    assert_eq!(scinit.exit_code(), 143, "{}", scinit.report());
    let stderr = scinit.stderr();
    assert!(stderr.contains("sending SIGTERM to 13 remaining process(es): "), "{stderr}");
    let kill = stderr.lines().find(|l| l.contains("still running after the grace period"));
    let kill = kill.unwrap_or_else(|| panic!("no SIGKILL line:\n{stderr}"));
    assert!(kill.contains("13 process(es)") && kill.ends_with(" and 3 more"), "{kill}");
    assert!(stderr.lines().all(|l| l.len() < 200), "{stderr}");
}
