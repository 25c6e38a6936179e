//! `testkit block SIG[,SIG...] -- COMMAND...`: blocks the signals in its mask and `exec`s
//! COMMAND, which inherits the mask (a blocked mask survives `exec`): how a parent with signals
//! blocked starts an init (tini's sigconf test). It prints `block signals=<names>` first, and no
//! handshake (it is a launcher, not a child the init supervises).

use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStringExt;

use crate::args::Args;
use crate::protocol::{fact, Failure};
use crate::signal_names::{parse_signal, signal_name};
use crate::signal_state::SignalSet;

#[derive(Debug, PartialEq, Eq)]
pub struct Options {
    pub signals: Vec<i32>,
    pub command: Vec<OsString>,
}

pub fn parse(mut args: Args) -> Result<Options, Failure> {
    let list = args.value("block")?;
    let signals = list.split(',').map(parse_signal).collect::<Result<Vec<_>, _>>()?;
    if args.next_str()?.as_deref() != Some("--") {
        return Err(Failure::usage("block SIG[,SIG...] -- COMMAND..."));
    }
    let command = args.rest();
    if command.is_empty() {
        return Err(Failure::usage("-- needs a COMMAND"));
    }
    Ok(Options { signals, command })
}

pub fn run(args: Args) -> Result<(), Failure> {
    let options = parse(args)?;
    let command = options
        .command
        .iter()
        .map(|arg| CString::new(arg.clone().into_vec()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| Failure::usage("COMMAND contains a NUL byte"))?;
    let set = options.signals.iter().fold(SignalSet::empty(), |set, signo| set.with(*signo));
    set.block()?;
    let names: Vec<String> = options.signals.iter().map(|s| signal_name(*s)).collect();
    fact(format_args!("block signals={}", names.join(",")));
    let err = nix::unistd::execvp(&command[0], &command).unwrap_err();
    Err(Failure::internal(format!("exec {:?}: {err}", options.command[0])))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signal_names::sigrtmin;
    use nix::libc;

    fn parse_list(list: &[&str]) -> Result<Options, Failure> {
        parse(Args::of(list))
    }

    #[test]
    fn parses_the_signals_and_the_command() {
        let options = parse_list(&["USR1,TERM,RTMIN+3", "--", "/init", "--", "x"]).unwrap();
        assert_eq!(options.signals, [libc::SIGUSR1, libc::SIGTERM, sigrtmin() + 3]);
        assert_eq!(options.command, ["/init", "--", "x"].map(OsString::from));
    }

    #[test]
    fn rejects_bad_lists_and_a_missing_command() {
        for bad in [&[][..], &["USR1"], &["USR1", "--"], &["USR1,NOPE", "--", "x"], &["USR1", "x"]]
        {
            assert!(matches!(parse_list(bad), Err(Failure::Usage(_))), "{bad:?}");
        }
    }
}
