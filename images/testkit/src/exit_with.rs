//! `testkit exit-with CODE|signal:SIG`: the child whose end the init must report faithfully.

use crate::args::{parse_num, unknown, Args};
use crate::protocol::{handshake, Failure};
use crate::signal_names::{default_terminates, parse_signal};
use crate::signal_state::die_of;

#[derive(Debug, PartialEq, Eq)]
pub enum End {
    Code(i32),
    Signal(i32),
}

pub fn parse(mut args: Args) -> Result<End, Failure> {
    let what = args.value("exit-with")?;
    if let Some(extra) = args.next_str()? {
        return Err(unknown(&extra));
    }
    match what.strip_prefix("signal:") {
        Some(sig) => {
            let signo = parse_signal(sig)?;
            if !default_terminates(signo) {
                return Err(Failure::usage(format!(
                    "{sig}: its default action does not terminate"
                )));
            }
            Ok(End::Signal(signo))
        }
        None => Ok(End::Code(i32::from(parse_num::<u8>("exit code", &what)?))),
    }
}

pub fn run(args: Args) -> Result<(), Failure> {
    let end = parse(args)?;
    handshake("exit-with");
    match end {
        End::Code(code) => std::process::exit(code),
        End::Signal(signo) => Err(die_of(signo)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::libc;

    fn parse_list(list: &[&str]) -> Result<End, Failure> {
        parse(Args::of(list))
    }

    #[test]
    fn parses_codes_and_signals() {
        assert_eq!(parse_list(&["0"]), Ok(End::Code(0)));
        assert_eq!(parse_list(&["255"]), Ok(End::Code(255)));
        assert_eq!(parse_list(&["signal:TERM"]), Ok(End::Signal(libc::SIGTERM)));
        assert_eq!(parse_list(&["signal:9"]), Ok(End::Signal(libc::SIGKILL)));
    }

    #[test]
    fn rejects_bad_ends() {
        for bad in [&[][..], &["256"], &["-1"], &["signal:CHLD"], &["signal:NOPE"], &["1", "2"]] {
            assert!(matches!(parse_list(bad), Err(Failure::Usage(_))), "{bad:?}");
        }
    }
}
