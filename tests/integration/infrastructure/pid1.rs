//! PID 1 of a container: holding it before the init runs, and signalling it at a chosen moment
//! of the init's start-up from inside the container (`testkit signal-pid1`, run with
//! `docker exec`), so that races with the init's start-up need nothing but the Docker API.

use std::time::Duration;

use crate::utils::child_report::Fact;

/// Where a held container's shell waits before it `exec`s the init.
const HOLD_FIFO: &str = "/tmp/.scinit-test-hold";

/// `argv` behind a shell that waits on [`HOLD_FIFO`] and then `exec`s it as the same PID 1.
pub fn held(argv: Vec<String>) -> Vec<String> {
    let hold = format!("mkfifo {HOLD_FIFO} && read -r _ < {HOLD_FIFO}; exec \"$@\"");
    ["/bin/sh".to_string(), "-c".into(), hold, "held".into()].into_iter().chain(argv).collect()
}

/// A moment of the init's start-up at which to signal PID 1 (`testkit signal-pid1`, which
/// defines them: `images/testkit/src/signal_pid1.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pid1Moment {
    /// The first time PID 1, running the init, is asleep: catches an init that sleeps (e.g.
    /// while spawning its child) before it blocks its signals.
    FirstSleep,
    /// The first time PID 1, running the init, blocks or catches the signal: catches an init
    /// that discards signals that arrived before its loop runs.
    SignalHeld,
}

impl Pid1Moment {
    fn arg(self) -> &'static str {
        match self {
            Pid1Moment::FirstSleep => "first-sleep",
            Pid1Moment::SignalHeld => "signal-held",
        }
    }
}

/// The command, run with `docker exec`, that signals PID 1 at `moment`, first releasing a held
/// container's shell if `held`, and gives up after `within`.
pub fn signal_at(moment: Pid1Moment, signal: &str, within: Duration, held: bool) -> Vec<String> {
    let mut argv: Vec<String> =
        ["testkit", "signal-pid1", "--at", moment.arg(), "--signal", signal]
            .map(String::from)
            .into();
    argv.extend(["--within-ms".to_string(), within.as_millis().to_string()]);
    if held {
        argv.extend(["--release".to_string(), HOLD_FIFO.to_string()]);
    }
    argv
}

/// From `testkit signal-pid1`'s `signalled` line: whether PID 1 had not yet reached the moment when the
/// watch began (`waited=`), or `None` if it never said it was sending the signal.
pub fn signalled(stdout: &[String]) -> Option<bool> {
    let fact = stdout.iter().filter_map(|l| Fact::parse(l)).find(|f| f.kind == "signalled")?;
    fact.get("waited").map(|v| v == "true")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signaller_releases_only_a_held_container_and_reports_whether_it_waited() {
        let held = signal_at(Pid1Moment::SignalHeld, "TERM", Duration::from_secs(5), true);
        assert_eq!(
            held[..6],
            ["testkit", "signal-pid1", "--at", "signal-held", "--signal", "TERM"]
        );
        assert_eq!(held[6..], ["--within-ms", "5000", "--release", HOLD_FIFO]);
        let free = signal_at(Pid1Moment::FirstSleep, "TERM", Duration::from_secs(5), false);
        assert!(!free.iter().any(|a| a == "--release") && free.contains(&"first-sleep".into()));
        let line = "signalled moment=first-sleep signal=SIGTERM waited=true name=init state=S";
        assert_eq!(signalled(&[line.to_string()]), Some(true));
        assert_eq!(signalled(&[line.replace("waited=true", "waited=false")]), Some(false));
        assert_eq!(signalled(&["testkit: signal-pid1: PID 1 did not reach it".into()]), None);
    }

    #[test]
    fn the_hold_shell_execs_the_init_with_its_arguments() {
        let argv = held(vec!["/init".into(), "--".into()]);
        assert_eq!(argv[..2], ["/bin/sh", "-c"]);
        assert!(argv[2].contains(HOLD_FIFO) && argv[2].ends_with("exec \"$@\""));
        assert_eq!(argv[3..], ["held", "/init", "--"]);
    }
}
