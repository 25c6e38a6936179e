//! Signal names both ways: as printed in fact lines and as accepted on the command line,
//! real-time signals included.

use nix::libc;

use crate::protocol::Failure;

const NAMES: [(i32, &str); 31] = [
    (libc::SIGHUP, "SIGHUP"),
    (libc::SIGINT, "SIGINT"),
    (libc::SIGQUIT, "SIGQUIT"),
    (libc::SIGILL, "SIGILL"),
    (libc::SIGTRAP, "SIGTRAP"),
    (libc::SIGABRT, "SIGABRT"),
    (libc::SIGBUS, "SIGBUS"),
    (libc::SIGFPE, "SIGFPE"),
    (libc::SIGKILL, "SIGKILL"),
    (libc::SIGUSR1, "SIGUSR1"),
    (libc::SIGSEGV, "SIGSEGV"),
    (libc::SIGUSR2, "SIGUSR2"),
    (libc::SIGPIPE, "SIGPIPE"),
    (libc::SIGALRM, "SIGALRM"),
    (libc::SIGTERM, "SIGTERM"),
    (libc::SIGSTKFLT, "SIGSTKFLT"),
    (libc::SIGCHLD, "SIGCHLD"),
    (libc::SIGCONT, "SIGCONT"),
    (libc::SIGSTOP, "SIGSTOP"),
    (libc::SIGTSTP, "SIGTSTP"),
    (libc::SIGTTIN, "SIGTTIN"),
    (libc::SIGTTOU, "SIGTTOU"),
    (libc::SIGURG, "SIGURG"),
    (libc::SIGXCPU, "SIGXCPU"),
    (libc::SIGXFSZ, "SIGXFSZ"),
    (libc::SIGVTALRM, "SIGVTALRM"),
    (libc::SIGPROF, "SIGPROF"),
    (libc::SIGWINCH, "SIGWINCH"),
    (libc::SIGIO, "SIGIO"),
    (libc::SIGPWR, "SIGPWR"),
    (libc::SIGSYS, "SIGSYS"),
];

/// glibc's `SIGRTMIN` (34): the two real-time signals below it are reserved by glibc itself.
/// Docker's `RTMIN+N` uses the same numbering.
pub fn sigrtmin() -> i32 {
    libc::SIGRTMIN()
}

pub fn sigrtmax() -> i32 {
    libc::SIGRTMAX()
}

/// `SIGTERM`, `SIGRTMIN+3`; the glibc-reserved 32 and 33 have no name and are written `SIG32`.
pub fn signal_name(signo: i32) -> String {
    if let Some((_, name)) = NAMES.iter().find(|(n, _)| *n == signo) {
        return (*name).to_string();
    }
    if (sigrtmin()..=sigrtmax()).contains(&signo) {
        return format!("SIGRTMIN+{}", signo - sigrtmin());
    }
    format!("SIG{signo}")
}

/// Accepts `TERM`, `SIGTERM`, `15`, `RTMIN+3`, `SIGRTMIN+3`, `RTMIN`, `RTMAX-1` (case-insensitive).
pub fn parse_signal(text: &str) -> Result<i32, Failure> {
    let bad = || Failure::usage(format!("unknown signal {text:?}"));
    if let Ok(n) = text.parse::<i32>() {
        return if (1..=sigrtmax()).contains(&n) { Ok(n) } else { Err(bad()) };
    }
    let upper = text.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(rt) = name.strip_prefix("RTMIN") {
        let offset = if rt.is_empty() {
            0
        } else {
            rt.strip_prefix('+').and_then(|n| n.parse::<i32>().ok()).ok_or_else(bad)?
        };
        let signo = sigrtmin() + offset;
        return if signo <= sigrtmax() { Ok(signo) } else { Err(bad()) };
    }
    if let Some(rt) = name.strip_prefix("RTMAX") {
        let offset = if rt.is_empty() {
            0
        } else {
            rt.strip_prefix('-').and_then(|n| n.parse::<i32>().ok()).ok_or_else(bad)?
        };
        let signo = sigrtmax() - offset;
        return if signo >= sigrtmin() { Ok(signo) } else { Err(bad()) };
    }
    let full = format!("SIG{name}");
    NAMES.iter().find(|(_, n)| *n == full).map(|(n, _)| *n).ok_or_else(bad)
}

/// Whether the default action of `signo` ends the process (rather than ignoring it or stopping
/// it): only those can be used to die "of" a signal.
pub fn default_terminates(signo: i32) -> bool {
    !matches!(
        signo,
        libc::SIGCHLD
            | libc::SIGCONT
            | libc::SIGURG
            | libc::SIGWINCH
            | libc::SIGSTOP
            | libc::SIGTSTP
            | libc::SIGTTIN
            | libc::SIGTTOU
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_standard_and_realtime_signals() {
        assert_eq!(signal_name(libc::SIGTERM), "SIGTERM");
        assert_eq!(signal_name(libc::SIGUSR1), "SIGUSR1");
        assert_eq!(signal_name(sigrtmin()), "SIGRTMIN+0");
        assert_eq!(signal_name(sigrtmin() + 3), "SIGRTMIN+3");
        assert_eq!(signal_name(32), "SIG32");
    }

    #[test]
    fn parses_every_spelling_of_a_signal() {
        for text in ["TERM", "SIGTERM", "term", "15"] {
            assert_eq!(parse_signal(text), Ok(libc::SIGTERM), "{text}");
        }
        assert_eq!(parse_signal("RTMIN+3"), Ok(sigrtmin() + 3));
        assert_eq!(parse_signal("SIGRTMIN+3"), Ok(sigrtmin() + 3));
        assert_eq!(parse_signal("RTMIN"), Ok(sigrtmin()));
        assert_eq!(parse_signal("RTMAX-1"), Ok(sigrtmax() - 1));
        assert_eq!(parse_signal("RTMAX"), Ok(sigrtmax()));
    }

    #[test]
    fn rejects_unknown_signals() {
        for text in ["", "0", "65", "-1", "FOO", "RTMIN+", "RTMIN+99", "RTMIN-1", "SIG"] {
            assert!(matches!(parse_signal(text), Err(Failure::Usage(_))), "{text}");
        }
    }

    #[test]
    fn name_and_parse_round_trip() {
        for signo in (1..=sigrtmax()).filter(|n| !(32..sigrtmin()).contains(n)) {
            assert_eq!(parse_signal(&signal_name(signo)), Ok(signo), "{signo}");
        }
    }

    #[test]
    fn only_terminating_defaults_can_kill() {
        assert!(default_terminates(libc::SIGTERM));
        assert!(default_terminates(sigrtmin() + 1));
        assert!(!default_terminates(libc::SIGCHLD));
        assert!(!default_terminates(libc::SIGTSTP));
    }
}
