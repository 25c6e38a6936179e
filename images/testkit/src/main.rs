//! `testkit`: the multi-call helper that runs as the child of the init under test and reports
//! what it saw, one fact per line (protocol: `images/README.md`).
//!
//! There is no Rust `main`: std's start-up sets `SIGPIPE` to `SIG_IGN` before `main` runs, and an
//! ignored disposition survives `exec`, so the helper would report (and pass on) a disposition
//! the init never set. A C `main` skips that start-up; `std::env::args_os` still works because
//! std reads argv from glibc's `.init_array` call.
#![cfg_attr(not(test), no_main)]

mod args;
mod await_reap;
mod bind;
mod block;
mod chain;
mod echo;
mod exit_with;
mod inspect;
mod notify;
mod procfs;
mod protocol;
mod ps;
mod signal_names;
mod signal_pid1;
mod signal_state;
mod signals;
mod stdin;
mod tree;

use args::Args;
use protocol::Failure;

// Exported as the C `main` (see the module doc); under `cargo test` the harness has its own.
#[cfg_attr(not(test), export_name = "main")]
#[cfg_attr(test, allow(dead_code))]
extern "C" fn c_main(
    _argc: nix::libc::c_int,
    _argv: *const *const nix::libc::c_char,
) -> nix::libc::c_int {
    protocol::mark_start();
    let mut argv = std::env::args_os().skip(1);
    let cmd = argv.next().map(|c| c.to_string_lossy().into_owned()).unwrap_or_default();
    match dispatch(&cmd, Args::new(argv.collect())) {
        Ok(()) => 0,
        Err(failure) => failure.exit(if cmd.is_empty() { "usage" } else { &cmd }),
    }
}

/// Runs one subcommand. Subcommands that end the process on their own never return.
fn dispatch(cmd: &str, args: Args) -> Result<(), Failure> {
    match cmd {
        "signals" => signals::run(args),
        "echo" => echo::run(args),
        "inspect" => inspect::run(args),
        "tree" => tree::run(args),
        "exit-with" => exit_with::run(args),
        "ps" => ps::run(args),
        "notify" => notify::run(args),
        "signal-pid1" => signal_pid1::run(args),
        "await-reap" => await_reap::run(args),
        "stdin" => stdin::run(args),
        "bind" => bind::run(args),
        "block" => block::run(args),
        "chain" => chain::run(args),
        "" => Err(Failure::usage(
            "testkit signals|echo|inspect|tree|exit-with|ps|notify|signal-pid1|await-reap|stdin|bind\
             |block|chain [ARGS]",
        )),
        _ => Err(Failure::usage("unknown subcommand")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Argument errors come back before any side effect, whatever the subcommand.
    #[test]
    fn bad_arguments_are_usage_errors_for_every_subcommand() {
        for (cmd, bad) in [
            ("", &[][..]),
            ("frobnicate", &[]),
            ("signals", &["--on", "TERM=maybe"]),
            ("echo", &["--term", "never"]),
            ("inspect", &["--go"]),
            ("tree", &["forest"]),
            ("exit-with", &["300"]),
            ("ps", &["aux"]),
            ("notify", &[]),
            ("notify", &["ready"]),
            ("signal-pid1", &["--at", "first-sleep"]),
            ("signal-pid1", &["--at", "soon", "--signal", "TERM"]),
            ("await-reap", &[]),
            ("stdin", &["--echo"]),
            ("bind", &["8080"]),
            ("block", &["USR1"]),
            ("chain", &[]),
        ] {
            assert!(
                matches!(dispatch(cmd, Args::of(bad)), Err(Failure::Usage(_))),
                "{cmd} {bad:?}"
            );
        }
    }
}
