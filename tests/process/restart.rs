//! Restarts keep the listening sockets: the new child inherits the very same socket (same
//! inode), so connections arriving during the restart wait in its backlog.

use nix::sys::signal::Signal;

use crate::harness::{
    field, free_port, processes, start, start_command, start_in, wait_until, NO_ENV,
};
use crate::sockets::inspect;

#[test]
fn sighup_restart_keeps_the_same_listening_socket_and_starts_a_new_child() {
    let port = free_port().to_string();
    let mut scinit =
        start(&["--bind-addr", "127.0.0.1", "--ports", &port], &["inspect", "--stay"], &[]);
    let (first_pid, first) = inspect(&mut scinit);

    scinit.signal(Signal::SIGHUP);
    let (second_pid, second) = inspect(&mut scinit);

    assert_ne!(first_pid, second_pid);
    let inode =
        |report: &serde_json::Value| report["sockets"][0]["inode"].as_u64().expect("socket inode");
    assert_eq!(inode(&first), inode(&second), "the socket was re-bound:\n{first}\n{second}");
    assert_eq!(second["env"]["LISTEN_PID"], second_pid.to_string());
    assert!(scinit.running());

    scinit.signal(Signal::SIGTERM);
    assert_eq!(scinit.exit_code(), 143);
}

#[test]
fn stop_signal_during_the_restart_delay_exits_with_the_old_childs_status() {
    let mut scinit =
        start(&["--restart-delay-ms", "60000"], &["signals", "--on", "TERM=exit:5"], &[]);
    scinit.ready("signals");
    scinit.signal(Signal::SIGHUP);
    scinit.line_starting("exiting code=5");
    scinit.signal(Signal::SIGTERM);
    assert_eq!(scinit.exit_code(), 5, "{}", scinit.report());
}

#[test]
fn file_change_restarts_the_child_after_the_debounce() {
    let dir = std::env::temp_dir().join(format!("scinit-live-reload-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("app.conf");
    std::fs::write(&config, "v1").unwrap();
    let watch = config.display().to_string();
    let mut scinit =
        start(&["--watch-path", &watch, "--debounce-ms", "50"], &["inspect", "--stay"], &[]);
    let (first, _) = inspect(&mut scinit);

    // An atomic replace, as editors and deploy tools do it.
    std::fs::write(dir.join("app.conf.new"), "v2").unwrap();
    std::fs::rename(dir.join("app.conf.new"), &config).unwrap();
    let (second, _) = inspect(&mut scinit);
    assert_ne!(first, second);

    scinit.signal(Signal::SIGTERM);
    assert_eq!(scinit.exit_code(), 143);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn failed_restart_keeps_scinit_up_and_a_stop_then_exits_127() {
    let dir = std::env::temp_dir().join(format!("scinit-failed-restart-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let program = dir.join("app");
    std::fs::copy(crate::harness::testkit(), &program).unwrap();
    let mut scinit = start_command(
        vec!["--restart-delay-ms".into(), "0".into(), program.clone().into(), "signals".into()],
        NO_ENV,
    );
    scinit.ready("signals");
    std::fs::remove_file(&program).unwrap();
    scinit.signal(Signal::SIGHUP);
    scinit.line_starting("exiting signal=SIGTERM");
    let failure = scinit.stderr_line("cannot execute");
    assert!(failure.contains(&program.display().to_string()), "{failure}");
    // The old child is gone and the new one cannot start: scinit stays up until told to stop.
    assert!(scinit.running());
    scinit.signal(Signal::SIGTERM);
    assert_eq!(scinit.exit_code(), 127, "{}", scinit.report());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_stop_signal_stops_the_child_for_a_restart_and_replaces_sigterm_at_shutdown() {
    let mut scinit = start(&["--stop-signal", "USR2"], &["signals", "--on", "USR2=exit:7"], &[]);
    let old = scinit.ready("signals");
    let scinit_pid = scinit.pid().to_string();

    scinit.signal(Signal::SIGHUP);
    let stop = scinit.line_starting("signal ");
    assert_eq!(field(&stop, "name"), Some("SIGUSR2"), "{stop}");
    assert_eq!(field(&stop, "pid"), Some(old.to_string().as_str()), "{stop}");
    assert_eq!(field(&stop, "sender"), Some(scinit_pid.as_str()), "{stop}");
    scinit.line_starting("exiting code=7");
    let new = scinit.ready("signals");

    // SIGTERM from outside (docker stop) reaches the child as the stop signal.
    scinit.signal(Signal::SIGTERM);
    let stop = scinit.line_starting("signal ");
    assert_eq!(field(&stop, "name"), Some("SIGUSR2"), "{stop}");
    assert_eq!(field(&stop, "pid"), Some(new.to_string().as_str()), "{stop}");
    assert_eq!(scinit.exit_code(), 7, "{}", scinit.report());
}

/// A child stopped by a forwarded SIGTSTP keeps a blocked SIGTERM pending until it is continued:
/// scinit's SIGCONT after the stop signal lets it shut down gracefully instead of being SIGKILLed
/// at the end of the grace period.
#[test]
fn sigcont_follows_the_stop_signal_so_a_child_stopped_by_sigtstp_can_act_on_it() {
    let mut scinit =
        start(&["--graceful-timeout-secs", "60"], &["signals", "--on", "TSTP=stop"], &[]);
    let child = scinit.ready("signals");
    scinit.signal(Signal::SIGTSTP);
    scinit.line_starting("stopping");
    wait_until("the child is stopped", || {
        processes().iter().any(|p| p.pid == child && p.state == 'T')
    });

    scinit.signal(Signal::SIGTERM);
    let term = scinit.line_starting("signal ");
    assert_eq!(field(&term, "name"), Some("SIGTERM"), "{term}");
    assert_eq!(field(&term, "pid"), Some(child.to_string().as_str()), "{term}");
    assert_eq!(scinit.exit_code(), 143, "{}", scinit.report());
}

/// PID 1 keeps no directory busy (a volume below it could not be unmounted): scinit waits in
/// `/`, and every child, a restarted one included, starts in the directory scinit was started
/// in, the container's working directory.
#[test]
fn scinit_waits_in_the_root_directory_and_every_child_starts_where_it_was_started() {
    let dir = std::env::temp_dir().join(format!("scinit-working-dir-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut scinit = start_in(&dir, &["inspect", "--stay"]);
    let (first_pid, first) = inspect(&mut scinit);
    let own = std::fs::read_link(format!("/proc/{}/cwd", scinit.pid())).unwrap();

    scinit.signal(Signal::SIGHUP);
    let (second_pid, second) = inspect(&mut scinit);
    scinit.signal(Signal::SIGTERM);
    assert_eq!(scinit.exit_code(), 143);
    std::fs::remove_dir_all(&dir).unwrap();

    assert_eq!(own, std::path::Path::new("/"), "scinit's own working directory");
    assert_ne!(first_pid, second_pid);
    for report in [&first, &second] {
        assert_eq!(report["cwd"], dir.display().to_string(), "{report}");
    }
}
