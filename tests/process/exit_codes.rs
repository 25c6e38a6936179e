//! scinit exits with the child's code, 128+N for a death by signal N, 127/126 when COMMAND
//! cannot be run (with one stderr line naming it), 1 when scinit cannot even try, and 2 for
//! usage errors.

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::harness::{free_port, start, start_command, start_with_fd_limit, testkit, NO_ENV};
use crate::sockets::inspect;

/// One test per row: the child's fate and the code scinit must exit with.
macro_rules! child_exit_cases {
    ($($name:ident: $child:expr => $code:expr;)*) => {$(
        #[test]
        fn $name() {
            let mut scinit = start(&[], $child, &[]);
            assert_eq!(scinit.exit_code(), $code, "{}", scinit.report());
        }
    )*};
}

child_exit_cases! {
    child_exit_0_gives_exit_code_0: &["exit-with", "0"] => 0;
    child_exit_3_gives_exit_code_3: &["exit-with", "3"] => 3;
    child_exit_255_gives_exit_code_255: &["exit-with", "255"] => 255;
    child_death_by_sigterm_gives_exit_code_143: &["exit-with", "signal:TERM"] => 143;
    child_death_by_sigusr1_gives_exit_code_138: &["exit-with", "signal:USR1"] => 138;
}

#[test]
fn missing_command_exits_127_with_one_line_naming_it() {
    let mut scinit = start_command(vec!["scinit-no-such-command".into()], NO_ENV);
    assert_eq!(scinit.exit_code(), 127);
    let stderr = scinit.stderr();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("scinit: ") && stderr.contains("scinit-no-such-command"),
        "{stderr}"
    );
    assert!(stderr.contains("No such file or directory"), "{stderr}");
}

#[test]
fn missing_command_under_live_reload_exits_127_with_one_line_naming_it() {
    for command in ["scinit-no-such-command", "/nonexistent/scinit-no-such-command"] {
        let mut scinit = start_command(vec!["--live-reload".into(), command.into()], NO_ENV);
        let code = scinit.exit_code();
        let stderr = scinit.stderr();
        assert_eq!(code, 127, "{command}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.starts_with("scinit: ") && stderr.contains(&format!("'{command}'")),
            "{stderr}"
        );
    }
}

#[test]
fn missing_watch_path_is_a_setup_error() {
    let mut scinit =
        start(&["--watch-path", "/nonexistent/scinit-watch"], &["exit-with", "0"], &[]);
    let code = scinit.exit_code();
    let stderr = scinit.stderr();
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("'/nonexistent/scinit-watch'"), "{stderr}");
}

#[test]
fn non_executable_command_exits_126_with_one_line_naming_it() {
    let file = std::env::temp_dir().join(format!("scinit-not-executable-{}", std::process::id()));
    std::fs::write(&file, "not a program\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut scinit = start_command(vec![OsString::from(&file)], NO_ENV);
    let code = scinit.exit_code();
    let stderr = scinit.stderr();
    std::fs::remove_file(&file).unwrap();
    assert_eq!(code, 126, "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(&file.display().to_string()) && stderr.contains("Permission denied"),
        "{stderr}"
    );
}

/// A fresh directory under the temporary directory, for files a test executes.
fn exec_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("scinit-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write_executable(path: &Path, contents: &[u8]) {
    std::fs::write(path, contents).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn executable_that_is_not_a_program_exits_126_and_never_runs_through_a_shell() {
    let dir = exec_dir("not-a-program");
    // A shell would run these as scripts; a bare ELF header that is no valid executable.
    let text = dir.join("text");
    write_executable(&text, b"echo ran-through-a-shell\nexit 9\n");
    let elf = dir.join("elf");
    write_executable(&elf, b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0");
    let path = OsString::from(format!("/nonexistent:{}", dir.display()));
    let cases = [
        (OsString::from(&text), Vec::<(OsString, OsString)>::new(), text.clone()),
        (OsString::from(&elf), Vec::new(), elf.clone()),
        // Found through the child's PATH: the line names the file that was found.
        ("text".into(), vec![("PATH".into(), path)], text.clone()),
    ];
    let mut failures = Vec::new();
    for (command, env, file) in cases {
        let mut scinit = start_command(vec![command.clone()], env);
        let code = scinit.exit_code();
        let stderr = scinit.stderr();
        let named = stderr.contains(&format!("'{}'", file.display()));
        if code != 126
            || stderr.lines().count() != 1
            || !named
            || !stderr.contains("Exec format error")
        {
            failures
                .push(format!("{command:?}: exit {code}, stderr {stderr:?}, {}", scinit.report()));
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn path_search_skips_files_it_cannot_execute_and_runs_scripts_by_their_interpreter() {
    let first = exec_dir("path-first");
    let second = exec_dir("path-second");
    std::fs::write(first.join("app"), "#!/bin/sh\nexit 8\n").unwrap();
    std::fs::set_permissions(first.join("app"), std::fs::Permissions::from_mode(0o644)).unwrap();
    write_executable(&second.join("app"), b"#!/bin/sh\nexit 7\n");
    let path = format!("{}:{}", first.display(), second.display());
    let mut scinit = start_command(vec!["app".into()], [("PATH", path.as_str())]);
    let code = scinit.exit_code();
    std::fs::remove_dir_all(&first).unwrap();
    std::fs::remove_dir_all(&second).unwrap();
    assert_eq!(code, 7, "{}", scinit.report());
}

#[test]
fn failing_to_create_the_spawn_pipe_is_a_setup_error_not_126() {
    // Room for stdin, stdout, stderr and the signalfd: the pipe that reports the child's exec
    // is the first fd that does not fit, so COMMAND is never run.
    let command = vec![testkit().into(), "exit-with".into(), "0".into()];
    let mut scinit = start_with_fd_limit(command, 4);
    let code = scinit.exit_code();
    let stderr = scinit.stderr();
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("scinit: cannot start '") && stderr.contains("Too many open files"),
        "{stderr}"
    );
}

#[test]
fn out_of_fds_before_the_child_runs_is_a_setup_error_and_never_126() {
    // With two ports scinit holds stdin, stdout, stderr, the signalfd (3), the sockets (4, 5)
    // and, while it starts the child, both ends of the report pipe (6, 7). Every tighter limit
    // fails one of those with one line and exit 1; a limit of 8 must be enough for the child
    // too, which ends up with 0-2, the sockets at 3 and 4 and, until exec, the report pipe.
    let ports = format!("{},{}", free_port(), free_port());
    let args = || -> Vec<OsString> {
        let args = ["--bind-addr", "127.0.0.1", "--ports", &ports, "--", &testkit(), "inspect"];
        args.iter().map(OsString::from).collect()
    };
    let mut failures = Vec::new();
    for limit in 4..8 {
        let mut scinit = start_with_fd_limit(args(), limit);
        let code = scinit.exit_code();
        let stderr = scinit.stderr();
        if code != 1 || stderr.lines().count() != 1 || !stderr.contains("Too many open files") {
            failures.push(format!("limit {limit}: exit {code}, stderr {stderr:?}"));
        }
    }
    let mut scinit = start_with_fd_limit(args(), 8);
    let code = scinit.exit_code();
    if code != 0 {
        failures.push(format!("limit 8: exit {code}\n{}", scinit.report()));
    } else {
        let (_, report) = inspect(&mut scinit);
        let fds: Vec<_> = report["fds"].as_array().unwrap().iter().map(|f| &f["fd"]).collect();
        assert_eq!(fds, [0, 1, 2, 3, 4], "{report}");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn usage_errors_exit_2_with_exactly_one_line() {
    let cases: &[&[&str]] =
        &[&[], &["--no-such-option", "true"], &["--ports"], &["--ports", "x", "true"]];
    let mut failures = Vec::new();
    for args in cases {
        let mut scinit = start_command(args.iter().map(OsString::from).collect(), NO_ENV);
        let code = scinit.exit_code();
        let stderr = scinit.stderr();
        if code != 2 || stderr.lines().count() != 1 || !stderr.starts_with("scinit: ") {
            failures.push(format!("{args:?}: exit {code}, stderr {stderr:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn malformed_restart_signals_are_usage_errors_naming_the_value() {
    // Each of these once mapped to some other (or a wrapped) signal number and silently turned
    // SIGHUP restarts off.
    let mut failures = Vec::new();
    for value in ["RTMIN+-1", "RTMIN+-34", "RTMIN+2147483647", "SIGRTMAX--1", "+1"] {
        let mut scinit = start(&["--restart-signal", value], &["exit-with", "0"], &[]);
        let code = scinit.exit_code();
        let stderr = scinit.stderr();
        if code != 2 || stderr.lines().count() != 1 || !stderr.contains(&format!("'{value}'")) {
            failures.push(format!("{value}: exit {code}, stderr {stderr:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn invalid_scinit_log_is_a_usage_error() {
    let mut scinit = start(&[], &["exit-with", "0"], &[("SCINIT_LOG", "verbose")]);
    assert_eq!(scinit.exit_code(), 2);
    assert!(scinit.stderr().contains("SCINIT_LOG"));
}

#[test]
fn help_and_version_exit_0() {
    for flag in ["--help", "-h", "--version", "-V"] {
        let mut scinit = start_command(vec![flag.into()], NO_ENV);
        assert_eq!(scinit.exit_code(), 0, "{flag}");
    }
    let mut scinit = start_command(vec!["--version".into()], NO_ENV);
    let line = scinit.line_starting("scinit ");
    assert_eq!(line, format!("scinit {}", env!("CARGO_PKG_VERSION")));
}
