//! scinit exits with the child's code, 128+N for a death by signal N, 127/126 when COMMAND
//! cannot be run (with one stderr line naming it), and 2 for usage errors.

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;

use crate::harness::{start, start_command, NO_ENV};

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

#[test]
fn usage_errors_exit_2_with_exactly_one_line() {
    let cases: &[&[&str]] = &[
        &[],
        &["--no-such-option", "true"],
        &["--ports"],
        &["--ports", "x", "true"],
    ];
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
