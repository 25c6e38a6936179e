//! Start-first restarts (`--restart-order start-first`): the new child starts beside the old one,
//! which keeps serving (and keeps the forwarded signals) until the new one is ready: `READY=1`
//! on `NOTIFY_SOCKET` from the new child's tree (`--notify`), or `--ready-delay-ms` after its
//! start. Then the old one gets the stop signal. A new child that exits or cannot be executed
//! first, or is not ready in time, abandons the restart and the old child serves on.
//!
//! The children are shell scripts: [`gated`] makes a child whose own tree sends `READY=1` once the
//! test creates a file, so the test decides when a new child is ready, and waits for lines.

use std::ffi::OsString;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use nix::sys::signal::Signal;

use crate::harness::{
    environ, field, free_port, start_command, testkit, wait_until, Scinit, NO_ENV,
};
use crate::sockets::inspect;

/// A fresh scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("scinit-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

/// `sh -c SCRIPT` for scinit's command line, after `options`.
fn sh(options: &[&str], script: &str) -> Vec<OsString> {
    let mut args: Vec<OsString> = options.iter().map(OsString::from).collect();
    args.extend(["/bin/sh", "-c", script].map(OsString::from));
    args
}

/// A child that becomes `testkit CHILD` and, below it, a subshell that waits for `DIR/go-<pid>`
/// (the child's own wait, polling in the child) and then sends `READY=1` with `testkit notify`:
/// READY=1 from a process below the child.
fn gated(dir: &Path, child: &str) -> String {
    let (dir, testkit) = (dir.display(), testkit());
    format!(
        "(while [ ! -e {dir}/go-$$ ]; do sleep 0.01; done; exec {testkit} notify READY=1) & \
         exec {testkit} {child}"
    )
}

/// Lets the gated child `pid` send READY=1. Nothing to wait for here: its `notified` line may
/// come before or after what scinit does about it, so callers wait for the latter.
fn go(dir: &Path, pid: i32) {
    std::fs::write(dir.join(format!("go-{pid}")), "").expect("create the go file");
}

/// The next line that reports a signal, as (name, pid, sender).
#[track_caller]
fn next_signal(scinit: &mut Scinit) -> (String, i32, i32) {
    let line = scinit.line_starting("signal ");
    let number = |key| field(&line, key).and_then(|v| v.parse().ok()).unwrap_or(-1);
    (field(&line, "name").unwrap_or_default().to_string(), number("pid"), number("sender"))
}

/// Sends SIGUSR1 to scinit and returns the pid of the child that logged it: the main child.
#[track_caller]
fn main_child(scinit: &mut Scinit) -> i32 {
    scinit.signal(Signal::SIGUSR1);
    let (name, pid, _) = next_signal(scinit);
    assert_eq!(name, "SIGUSR1", "{}", scinit.report());
    pid
}

#[test]
fn start_first_with_notify_stops_the_old_child_only_once_the_new_childs_tree_is_ready() {
    let dir = scratch("start-first-abstract");
    let options = ["--restart-order", "start-first", "--notify"];
    let mut scinit = start_command(sh(&options, &gated(&dir, "signals")), [("SCINIT_LOG", "info")]);
    let old = scinit.ready("signals");
    let address = environ(old, "NOTIFY_SOCKET").expect("NOTIFY_SOCKET in the child");
    assert!(address.len() > 1 && address.starts_with('@'), "{address}");

    scinit.signal(Signal::SIGHUP);
    let new = scinit.ready("signals");
    assert_ne!(old, new);
    assert_eq!(environ(new, "NOTIFY_SOCKET"), Some(address));
    // Not ready yet: the old child is untouched and still gets the forwarded signals.
    assert_eq!(main_child(&mut scinit), old);

    go(&dir, new);
    let scinit_pid = scinit.pid();
    assert_eq!(next_signal(&mut scinit), ("SIGTERM".to_string(), old, scinit_pid));
    scinit.stderr_line(&format!("is ready and replaces child {old}"));
    assert_eq!(main_child(&mut scinit), new);
    assert!(scinit.running());

    scinit.signal(Signal::SIGTERM);
    assert_eq!(next_signal(&mut scinit), ("SIGTERM".to_string(), new, scinit_pid));
    assert_eq!(scinit.exit_code(), 143, "{}", scinit.report());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_notify_socket_path_is_created_shared_by_both_children_and_removed_at_exit() {
    let dir = scratch("start-first-path");
    let path = dir.join("notify.sock");
    let port = free_port().to_string();
    let options = [
        "--bind-addr",
        "127.0.0.1",
        "--ports",
        &port,
        "--restart-order",
        "start-first",
        "--notify-socket",
        path.to_str().unwrap(),
    ];
    let mut scinit = start_command(sh(&options, &gated(&dir, "inspect --stay")), NO_ENV);
    let (old, first) = inspect(&mut scinit);
    let file_type = std::fs::metadata(&path).expect("the notify socket file").file_type();
    assert!(file_type.is_socket());
    assert_eq!(environ(old, "NOTIFY_SOCKET").as_deref(), path.to_str());

    scinit.signal(Signal::SIGHUP);
    let (new, second) = inspect(&mut scinit);
    assert_ne!(old, new);
    let inode = |report: &serde_json::Value| report["sockets"][0]["inode"].as_u64();
    assert_eq!(inode(&first), inode(&second), "the socket was re-bound:\n{first}\n{second}");
    assert_eq!(second["env"]["LISTEN_PID"], new.to_string());
    assert_eq!(environ(new, "NOTIFY_SOCKET").as_deref(), path.to_str());
    // Nothing of scinit's leaks into the new child: neither the notify socket nor the signalfd.
    let fds: Vec<i64> =
        second["fds"].as_array().unwrap().iter().filter_map(|f| f["fd"].as_i64()).collect();
    assert_eq!(fds, vec![0, 1, 2, 3], "{second}");

    go(&dir, new);
    wait_until("the old child is stopped and reaped", || {
        !crate::harness::descendants(scinit.pid()).contains(&old)
    });
    scinit.signal(Signal::SIGTERM);
    assert_eq!(scinit.exit_code(), 143, "{}", scinit.report());
    assert!(!path.exists(), "the notify socket file was left behind");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_existing_file_at_the_notify_socket_path_is_a_setup_error() {
    let dir = scratch("notify-path-taken");
    let path = dir.join("notify.sock");
    std::fs::write(&path, "mine").unwrap();
    let options = ["--notify-socket", path.to_str().unwrap()];
    let mut scinit = start_command(sh(&options, "exit 0"), NO_ENV);
    assert_eq!(scinit.exit_code(), 1, "{}", scinit.report());
    let stderr = scinit.stderr();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains(path.to_str().unwrap()), "{stderr}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "mine");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn ready_from_a_stranger_is_ignored() {
    let dir = scratch("start-first-stranger");
    let path = dir.join("notify.sock");
    let options = ["--restart-order", "start-first", "--notify-socket", path.to_str().unwrap()];
    let mut scinit =
        start_command(sh(&options, &gated(&dir, "signals")), [("SCINIT_LOG", "debug")]);
    let old = scinit.ready("signals");
    scinit.signal(Signal::SIGHUP);
    let new = scinit.ready("signals");

    // The test's own `testkit notify`: the right address, but not below the new child.
    let sent = Command::new(testkit())
        .args(["notify", "READY=1"])
        .env("NOTIFY_SOCKET", &path)
        .output()
        .expect("run testkit notify");
    let out = String::from_utf8_lossy(&sent.stdout);
    assert!(sent.status.success(), "{out}");
    let stranger = field(out.trim(), "pid").expect("notified pid=").to_string();
    scinit.stderr_line(&format!("READY=1 from pid {stranger} ignored"));
    assert_eq!(main_child(&mut scinit), old);

    go(&dir, new);
    assert_eq!(next_signal(&mut scinit).0, "SIGTERM");
    assert_eq!(main_child(&mut scinit), new);
    scinit.signal(Signal::SIGTERM);
    assert_eq!(scinit.exit_code(), 143, "{}", scinit.report());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn without_notify_the_old_child_is_stopped_once_the_ready_delay_has_passed() {
    let options = ["--restart-order", "start-first", "--ready-delay-ms", "1000"];
    let script = format!("exec {} signals", testkit());
    let mut scinit = start_command(sh(&options, &script), NO_ENV);
    let old = scinit.ready("signals");
    let before = monotonic_ns();
    scinit.signal(Signal::SIGHUP);
    let new = scinit.ready("signals");
    let term = scinit.line("the old child's SIGTERM", |l| {
        l.starts_with("signal name=SIGTERM") && field(l, "pid") == Some(old.to_string().as_str())
    });
    let at: u64 = field(&term, "mono_ns").and_then(|v| v.parse().ok()).expect("mono_ns");
    // The delay counts from the new child's start, which is after `before`.
    assert!(
        at - before >= 1_000_000_000,
        "stopped {} ms after the restart",
        (at - before) / 1_000_000
    );
    assert_eq!(main_child(&mut scinit), new);
    scinit.signal(Signal::SIGTERM);
    assert_eq!(scinit.exit_code(), 143, "{}", scinit.report());
}

fn monotonic_ns() -> u64 {
    let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).unwrap();
    now.tv_sec() as u64 * 1_000_000_000 + now.tv_nsec() as u64
}

#[test]
fn a_new_child_exiting_before_it_is_ready_abandons_the_restart() {
    let dir = scratch("start-first-crash");
    let script = format!(
        "if [ -e {dir}/started ]; then echo crash pid=$$; exit 1; fi; : > {dir}/started; \
         exec {testkit} signals",
        dir = dir.display(),
        testkit = testkit()
    );
    let mut scinit =
        start_command(sh(&["--restart-order", "start-first", "--notify"], &script), NO_ENV);
    let old = scinit.ready("signals");
    scinit.signal(Signal::SIGHUP);
    scinit.line_starting("crash pid=");
    let why = scinit.stderr_line("abandon");
    assert!(
        why.contains("exit code 1") && why.contains(&format!("child {old} keeps serving")),
        "{why}"
    );
    assert_eq!(main_child(&mut scinit), old);
    assert!(scinit.running());
    scinit.signal(Signal::SIGTERM);
    assert_eq!(scinit.exit_code(), 143, "{}", scinit.report());
    let stderr = scinit.stderr();
    assert_eq!(stderr.matches("abandon").count(), 1, "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_new_child_that_cannot_be_executed_abandons_the_restart_in_one_line() {
    let dir = scratch("start-first-exec");
    let program = dir.join("app");
    std::fs::copy(testkit(), &program).unwrap();
    let mut args: Vec<OsString> = ["--restart-order", "start-first"].map(OsString::from).to_vec();
    args.extend([program.clone().into(), "signals".into()]);
    let mut scinit = start_command(args, NO_ENV);
    let old = scinit.ready("signals");
    std::fs::remove_file(&program).unwrap();
    scinit.signal(Signal::SIGHUP);
    let why = scinit.stderr_line("abandon");
    assert!(
        why.contains("cannot execute") && why.contains(&program.display().to_string()),
        "{why}"
    );
    assert_eq!(main_child(&mut scinit), old);
    scinit.signal(Signal::SIGTERM);
    assert_eq!(scinit.exit_code(), 143, "{}", scinit.report());
    let stderr = scinit.stderr();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_new_child_not_ready_in_time_is_stopped_and_the_old_one_keeps_serving() {
    let options = ["--restart-order", "start-first", "--notify", "--ready-timeout-secs", "0.3"];
    let script = format!("exec {} signals", testkit());
    let mut scinit = start_command(sh(&options, &script), NO_ENV);
    let old = scinit.ready("signals");
    scinit.signal(Signal::SIGHUP);
    let new = scinit.ready("signals");
    let scinit_pid = scinit.pid();
    assert_eq!(next_signal(&mut scinit), ("SIGTERM".to_string(), new, scinit_pid));
    let why = scinit.stderr_line("abandon");
    assert!(why.contains("not ready within"), "{why}");
    assert_eq!(main_child(&mut scinit), old);
    scinit.signal(Signal::SIGTERM);
    assert_eq!(next_signal(&mut scinit), ("SIGTERM".to_string(), old, scinit_pid));
    assert_eq!(scinit.exit_code(), 143, "{}", scinit.report());
}

#[test]
fn restart_triggers_during_a_start_first_restart_lead_to_exactly_one_more() {
    let dir = scratch("start-first-coalesce");
    let options = ["--restart-order", "start-first", "--notify"];
    let mut scinit = start_command(sh(&options, &gated(&dir, "signals")), NO_ENV);
    let old = scinit.ready("signals");
    scinit.signal(Signal::SIGHUP);
    let first = scinit.ready("signals");
    for _ in 0..3 {
        scinit.signal(Signal::SIGHUP);
    }
    // SIGUSR1 is read after every SIGHUP sent before it (the signalfd hands out the lowest
    // pending number first), so once the old child logs it, all of them have been handled.
    assert_eq!(main_child(&mut scinit), old);

    go(&dir, first);
    let second = scinit.ready("signals");
    assert!(![old, first].contains(&second));
    go(&dir, second);
    scinit.line("the first new child's SIGTERM", |l| {
        l.starts_with("signal name=SIGTERM") && field(l, "pid") == Some(first.to_string().as_str())
    });
    assert_eq!(main_child(&mut scinit), second);
    scinit.signal(Signal::SIGTERM);
    assert_eq!(scinit.exit_code(), 143, "{}", scinit.report());
    let started = scinit.stdout().iter().filter(|l| l.starts_with("ready ")).count();
    assert_eq!(started, 3, "{}", scinit.report());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_stop_signal_during_the_overlap_stops_both_children_and_the_old_one_sets_the_exit_code() {
    let dir = scratch("start-first-stop");
    let script = format!(
        "if [ -e {dir}/started ]; then exec {testkit} signals --on TERM=exit:6; fi; \
         : > {dir}/started; exec {testkit} signals --on TERM=exit:5",
        dir = dir.display(),
        testkit = testkit()
    );
    let mut scinit =
        start_command(sh(&["--restart-order", "start-first", "--notify"], &script), NO_ENV);
    let old = scinit.ready("signals");
    scinit.signal(Signal::SIGHUP);
    let new = scinit.ready("signals");
    scinit.signal(Signal::SIGTERM);
    let scinit_pid = scinit.pid();
    let mut stopped = [next_signal(&mut scinit), next_signal(&mut scinit)];
    stopped.sort_by_key(|(_, pid, _)| *pid);
    let mut expected =
        [("SIGTERM".to_string(), old, scinit_pid), ("SIGTERM".to_string(), new, scinit_pid)];
    expected.sort_by_key(|(_, pid, _)| *pid);
    assert_eq!(stopped, expected);
    assert_eq!(scinit.exit_code(), 5, "{}", scinit.report());
    std::fs::remove_dir_all(&dir).unwrap();
}
