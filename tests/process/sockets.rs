//! Socket inheritance: the ports scinit binds arrive in the child at fds 3, 4, ... with the
//! systemd socket-activation variables, and nothing else leaks into the child.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;

use nix::sys::signal::Signal;
use serde_json::Value;

use crate::harness::{field, free_port, start, start_command, testkit, Scinit};

/// Starts an inspector that stays, and returns its report.
pub fn inspect(scinit: &mut Scinit) -> (i32, Value) {
    let pid = scinit.ready("inspect");
    let line = scinit.line_starting("inspect {");
    let json = serde_json::from_str(&line["inspect ".len()..]).expect("inspect JSON");
    (pid, json)
}

#[test]
fn inspector_sees_listening_sockets_at_fd_3_and_4_with_activation_env() {
    let (a, b) = (free_port(), free_port());
    let ports = format!("{a},{b}");
    let mut scinit =
        start(&["--bind-addr", "127.0.0.1", "--ports", &ports], &["inspect", "--stay"], &[]);
    let (pid, report) = inspect(&mut scinit);

    let sockets = report["sockets"].as_array().expect("sockets");
    let summary: Vec<(i64, String, bool)> = sockets
        .iter()
        .map(|s| {
            (
                s["fd"].as_i64().unwrap(),
                s["addr"].as_str().unwrap().to_string(),
                s["listening"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![(3, format!("127.0.0.1:{a}"), true), (4, format!("127.0.0.1:{b}"), true)]
    );

    let env = &report["env"];
    assert_eq!(env["LISTEN_FDS"], "2");
    assert_eq!(env["LISTEN_PID"], pid.to_string());
    assert_eq!(env["LISTEN_FDNAMES"], format!("port{a}:port{b}"));
    assert_eq!(env["SCINIT_INHERITED_FDS"], "3,4");

    // Exactly stdin, stdout, stderr and the two sockets: no signalfd, no pipe, no inotify.
    let fds: Vec<i64> =
        report["fds"].as_array().unwrap().iter().map(|f| f["fd"].as_i64().unwrap()).collect();
    assert_eq!(fds, vec![0, 1, 2, 3, 4], "{report}");

    scinit.signal(Signal::SIGTERM);
    assert_eq!(scinit.exit_code(), 143);
}

#[test]
fn child_starts_with_an_empty_mask_default_dispositions_and_its_own_group() {
    let mut scinit = start(&[], &["inspect", "--stay"], &[]);
    let (pid, report) = inspect(&mut scinit);
    assert_eq!(report["sigblk"], "0000000000000000", "{report}");
    // SIGPIPE included: Rust's runtime ignores it in scinit, and that must not leak.
    assert_eq!(report["sigign"], "0000000000000000", "{report}");
    assert_eq!(report["pgid"], pid, "{report}");
    assert_eq!(report["ppid"], scinit.pid(), "{report}");
    scinit.signal(Signal::SIGTERM);
    assert_eq!(scinit.exit_code(), 143);
}

#[test]
fn inherited_activation_variables_are_stripped_without_ports() {
    let inherited = [
        ("LISTEN_FDS", "5"),
        ("LISTEN_PID", "1"),
        ("LISTEN_FDNAMES", "x"),
        ("SCINIT_INHERITED_FDS", "3"),
    ];
    let mut scinit = start(&[], &["inspect"], &inherited);
    let (_, report) = inspect(&mut scinit);
    for name in ["LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "SCINIT_INHERITED_FDS"] {
        assert!(report["env"].get(name).is_none(), "{name} leaked: {report}");
    }
    assert_eq!(scinit.exit_code(), 0);
}

#[test]
fn non_utf8_environment_values_survive() {
    use std::os::unix::ffi::OsStringExt;
    let value = OsString::from_vec(vec![b'a', 0xff, b'b']);
    let args = vec![OsString::from("--"), testkit().into(), "inspect".into()];
    let mut scinit = start_command(args, [("TESTKIT_ODD", value)]);
    let (_, report) = inspect(&mut scinit);
    assert_eq!(report["env"]["TESTKIT_ODD_hex"], "61ff62", "{report}");
    assert_eq!(scinit.exit_code(), 0);
}

#[test]
fn echo_server_serves_on_the_inherited_socket() {
    let port = free_port();
    let mut scinit =
        start(&["--bind-addr", "127.0.0.1", "--ports", &port.to_string()], &["echo"], &[]);
    let pid = scinit.ready("echo");
    let line = scinit.line_starting("listening fd=3");
    assert_eq!(field(&line, "inherited"), Some("true"), "{line}");

    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.write_all(b"hello\n").unwrap();
    let mut answer = String::new();
    BufReader::new(&stream).read_line(&mut answer).unwrap();
    assert_eq!(answer, format!("ECHO PID={pid}: hello\n"));
    // Closed first: a graceful echo server drains open connections, which could outlast the
    // grace period.
    drop(stream);

    scinit.signal(Signal::SIGTERM);
    scinit.line_starting("exiting code=0");
    assert_eq!(scinit.exit_code(), 0);
}

#[test]
fn a_port_in_use_is_a_setup_error_with_one_line() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    // Neither std's listener nor scinit (without --reuse-port) sets SO_REUSEPORT.
    let mut scinit =
        start(&["--bind-addr", "127.0.0.1", "--ports", &port], &["exit-with", "0"], &[]);
    assert_eq!(scinit.exit_code(), 1);
    let stderr = scinit.stderr();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains(&port) && stderr.contains("Address already in use"), "{stderr}");
}

#[test]
fn a_port_held_by_another_scinit_is_a_setup_error_unless_both_ask_for_reuse_port() {
    let port = free_port().to_string();
    let plain: &[&str] = &["--bind-addr", "127.0.0.1", "--ports", &port];
    let reuse: &[&str] = &["--reuse-port", "--bind-addr", "127.0.0.1", "--ports", &port];
    // The first scinit has bound the port once its child runs. A second one is refused whether
    // or not it asks for SO_REUSEPORT: sharing needs both to have set it.
    for (first_options, second_options) in [(plain, plain), (reuse, plain), (plain, reuse)] {
        let mut first = start(first_options, &["inspect", "--stay"], &[]);
        first.ready("inspect");
        let mut second = start(second_options, &["exit-with", "0"], &[]);
        let code = second.exit_code();
        let stderr = second.stderr();
        assert_eq!(code, 1, "{first_options:?} then {second_options:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.contains(&format!("127.0.0.1:{port}"))
                && stderr.contains("Address already in use"),
            "{stderr}"
        );
        first.signal(Signal::SIGTERM);
        assert_eq!(first.exit_code(), 143);
    }

    // With --reuse-port on both, both listen: the kernel splits connections between them.
    let mut first = start(reuse, &["inspect", "--stay"], &[]);
    let (_, first_report) = inspect(&mut first);
    let mut second = start(reuse, &["inspect", "--stay"], &[]);
    let (_, second_report) = inspect(&mut second);
    for report in [&first_report, &second_report] {
        assert_eq!(report["sockets"][0]["addr"], format!("127.0.0.1:{port}"), "{report}");
        assert_eq!(report["sockets"][0]["listening"], true, "{report}");
    }
    for mut scinit in [first, second] {
        scinit.signal(Signal::SIGTERM);
        assert_eq!(scinit.exit_code(), 143);
    }
}
