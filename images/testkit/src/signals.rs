//! `testkit signals [--on SIG=ACTION]... [--linger-ms MS] [--ack FIFO]`: the signal logger.
//!
//! Every signal is blocked first and collected with `sigwaitinfo`, so a signal sent between
//! `exec` and the handshake is queued, not lost or acted on by a default disposition.
//!
//! `--ack FIFO`: made before the handshake if it does not exist, and one byte written to it after
//! each `signal` line, so that a sender inside the container (`testkit signal-pid1 --ack`) can
//! wait for each signal to arrive before it sends the next.

use std::os::fd::OwnedFd;

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::libc;
use nix::sys::stat::Mode;

use crate::args::{parse_num, unknown, Args};
use crate::protocol::{fact, handshake, signal_fact, Context, Failure};
use crate::signal_names::{default_terminates, parse_signal, signal_name};
use crate::signal_state::{die_of, linger, set_disposition, SignalSet};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Log,
    Exit(i32),
    Die,
    Ignore,
    /// The line, then stop (SIGSTOP to itself) until continued: what a job-control signal does
    /// to a program that does not handle it, observable as state `T`.
    Stop,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Options {
    /// `(signal, action)` overrides, later ones win.
    pub on: Vec<(i32, Action)>,
    pub linger_ms: u64,
    pub ack: Option<String>,
}

impl Options {
    pub fn action(&self, signo: i32) -> Action {
        if let Some((_, action)) = self.on.iter().rev().find(|(s, _)| *s == signo) {
            return *action;
        }
        match signo {
            libc::SIGTERM | libc::SIGINT | libc::SIGQUIT | libc::SIGHUP => Action::Die,
            _ => Action::Log,
        }
    }
}

pub fn parse_action(text: &str) -> Result<Action, Failure> {
    match text {
        "log" => Ok(Action::Log),
        "die" => Ok(Action::Die),
        "ignore" => Ok(Action::Ignore),
        "stop" => Ok(Action::Stop),
        _ => match text.strip_prefix("exit:") {
            Some(code) => {
                let code: u8 = parse_num("exit code", code)?;
                Ok(Action::Exit(i32::from(code)))
            }
            None => Err(Failure::usage(format!(
                "unknown action {text:?} (log, exit:N, die, ignore, stop)"
            ))),
        },
    }
}

/// Parses `SIG=ACTION`, refusing what the kernel cannot do (ignoring `SIGKILL`, dying of a signal
/// whose default action does not terminate).
pub fn parse_on(text: &str) -> Result<(i32, Action), Failure> {
    let (sig, action) = text
        .split_once('=')
        .ok_or_else(|| Failure::usage(format!("--on wants SIG=ACTION, got {text:?}")))?;
    let signo = parse_signal(sig)?;
    let action = parse_action(action)?;
    if signo == libc::SIGKILL || signo == libc::SIGSTOP {
        return Err(Failure::usage(format!("{sig} cannot be caught")));
    }
    if action == Action::Die && !default_terminates(signo) {
        return Err(Failure::usage(format!("{sig}: its default action does not terminate")));
    }
    Ok((signo, action))
}

pub fn parse(mut args: Args) -> Result<Options, Failure> {
    let mut options = Options { on: Vec::new(), linger_ms: 0, ack: None };
    while let Some(arg) = args.next_str()? {
        match arg.as_str() {
            "--on" => options.on.push(parse_on(&args.value("--on")?)?),
            "--linger-ms" => {
                options.linger_ms = parse_num("--linger-ms", &args.value("--linger-ms")?)?
            }
            "--ack" => options.ack = Some(args.value("--ack")?),
            _ => return Err(unknown(&arg)),
        }
    }
    Ok(options)
}

pub fn run(args: Args) -> Result<(), Failure> {
    // First, before parsing: a signal that arrives from now on is queued for sigwaitinfo.
    let all = SignalSet::full();
    all.block()?;
    let options = parse(args)?;

    // A blocked signal is queued even when ignored, so an ignored one leaves the mask and the
    // wait set: SIG_IGN then discards it on arrival.
    let mut waited = all;
    for (signo, _) in options.on.iter().filter(|(_, a)| *a == Action::Ignore) {
        set_disposition(*signo, libc::SIG_IGN)?;
        SignalSet::empty().with(*signo).set_mask(libc::SIG_UNBLOCK)?;
        waited = waited.without(*signo);
    }

    let ack = options.ack.as_deref().map(open_ack).transpose()?;
    handshake("signals");
    loop {
        let (signo, sender) = waited.wait()?;
        if signo == libc::SIGCHLD {
            continue;
        }
        signal_fact(signo, sender);
        if let Some(ack) = &ack {
            nix::unistd::write(ack, b"+").context("write the acknowledgement")?;
        }
        match options.action(signo) {
            Action::Log | Action::Ignore => {}
            Action::Stop => {
                fact("stopping");
                nix::sys::signal::raise(nix::sys::signal::Signal::SIGSTOP)
                    .context("raise SIGSTOP")?;
            }
            Action::Exit(code) => {
                linger(options.linger_ms);
                fact(format_args!("exiting code={code}"));
                std::process::exit(code);
            }
            Action::Die => {
                linger(options.linger_ms);
                fact(format_args!("exiting signal={}", signal_name(signo)));
                return Err(die_of(signo));
            }
        }
    }
}

/// The FIFO, made if need be and held open for reading and writing: opening it neither blocks
/// for a reader nor fails for want of one, and a write only fails once the pipe is full.
fn open_ack(fifo: &str) -> Result<OwnedFd, Failure> {
    match nix::unistd::mkfifo(fifo, Mode::from_bits_truncate(0o600)) {
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(e) => return Err(Failure::internal(format!("mkfifo {fifo}: {e}"))),
    }
    open(fifo, OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty()).context(format_args!("open {fifo}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signal_names::sigrtmin;

    #[test]
    fn defaults_die_on_stop_signals_and_log_the_rest() {
        let options = parse(Args::of(&[])).unwrap();
        assert_eq!(options.linger_ms, 0);
        for signo in [libc::SIGTERM, libc::SIGINT, libc::SIGQUIT, libc::SIGHUP] {
            assert_eq!(options.action(signo), Action::Die);
        }
        assert_eq!(options.action(libc::SIGUSR1), Action::Log);
        assert_eq!(options.action(sigrtmin() + 1), Action::Log);
    }

    #[test]
    fn on_overrides_and_later_wins() {
        let options = parse(Args::of(&[
            "--on",
            "TERM=exit:3",
            "--on",
            "USR1=ignore",
            "--on",
            "RTMIN+2=die",
            "--on",
            "SIGTERM=log",
            "--linger-ms",
            "250",
            "--ack",
            "/tmp/ack",
        ]))
        .unwrap();
        assert_eq!(options.action(libc::SIGTERM), Action::Log);
        assert_eq!(options.action(libc::SIGUSR1), Action::Ignore);
        assert_eq!(options.action(sigrtmin() + 2), Action::Die);
        assert_eq!(options.linger_ms, 250);
        assert_eq!(options.ack.as_deref(), Some("/tmp/ack"));
    }

    #[test]
    fn rejects_bad_arguments() {
        for bad in [
            &["--on"][..],
            &["--on", "TERM"],
            &["--on", "TERM=explode"],
            &["--on", "TERM=exit:256"],
            &["--on", "KILL=ignore"],
            &["--on", "CHLD=die"],
            &["--linger-ms", "soon"],
            &["--verbose"],
        ] {
            assert!(matches!(parse(Args::of(bad)), Err(Failure::Usage(_))), "{bad:?}");
        }
    }
}
