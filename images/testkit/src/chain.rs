//! `testkit chain FILE [--signal SIG] [-- COMMAND...]`: a child that asks its init for the next
//! restart itself, so that a thousand restarts take a thousand process starts inside the
//! container and no round trip through the Docker API.
//!
//! FILE holds how many restarts are still to be asked for (no file: 0). Each start prints the
//! handshake and `chain remaining=N`. With N > 0 it writes N-1 back, sends SIG (default
//! `SIGHUP`, the restart signal) to its parent, and waits with default dispositions and an empty
//! mask until a signal ends it (the restart's SIGTERM: 143). With N = 0 it `exec`s COMMAND, or
//! exits 0 without one.

use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStringExt;

use nix::errno::Errno;
use nix::libc;
use nix::unistd::getppid;

use crate::args::{unknown, Args};
use crate::protocol::{fact, handshake, Context, Failure};
use crate::signal_names::parse_signal;
use crate::signal_state::{set_disposition, SignalSet};

#[derive(Debug, PartialEq, Eq)]
pub struct Options {
    pub file: String,
    pub signal: i32,
    pub command: Vec<OsString>,
}

pub fn parse(mut args: Args) -> Result<Options, Failure> {
    let file = args.value("chain")?;
    let mut options = Options { file, signal: libc::SIGHUP, command: Vec::new() };
    while let Some(arg) = args.next_str()? {
        match arg.as_str() {
            "--signal" => options.signal = parse_signal(&args.value("--signal")?)?,
            "--" => {
                options.command = args.rest();
                if options.command.is_empty() {
                    return Err(Failure::usage("-- needs a COMMAND"));
                }
            }
            _ => return Err(unknown(&arg)),
        }
    }
    Ok(options)
}

pub fn run(args: Args) -> Result<(), Failure> {
    let options = parse(args)?;
    let command = options
        .command
        .iter()
        .map(|arg| CString::new(arg.clone().into_vec()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| Failure::usage("COMMAND contains a NUL byte"))?;
    handshake("chain");
    let remaining = remaining(&options.file)?;
    fact(format_args!("chain remaining={remaining}"));
    if remaining > 0 {
        std::fs::write(&options.file, format!("{}\n", remaining - 1))
            .context(format_args!("write {}", options.file))?;
        set_disposition(libc::SIGTERM, libc::SIG_DFL)?;
        SignalSet::empty().install()?;
        // Raw `kill`: nix's `Signal` has no real-time signals.
        // SAFETY: kill has no memory-safety preconditions.
        Errno::result(unsafe { libc::kill(getppid().as_raw(), options.signal) })
            .context("kill the parent")?;
        loop {
            // SAFETY: pause has no preconditions; only a fatal signal ends this loop.
            unsafe { libc::pause() };
        }
    }
    let Some(program) = command.first() else {
        return Ok(());
    };
    let err = nix::unistd::execvp(program, &command).unwrap_err();
    Err(Failure::internal(format!("exec {:?}: {err}", options.command[0])))
}

/// The count in `file`; 0 when there is no file.
fn remaining(file: &str) -> Result<u32, Failure> {
    match std::fs::read_to_string(file) {
        Ok(text) => text
            .trim()
            .parse()
            .map_err(|_| Failure::internal(format!("{file}: not a count: {text:?}"))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(Failure::internal(format!("read {file}: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_list(list: &[&str]) -> Result<Options, Failure> {
        parse(Args::of(list))
    }

    #[test]
    fn parses_the_file_the_signal_and_the_command() {
        let plain = parse_list(&["/tmp/chain"]).unwrap();
        assert_eq!((plain.file.as_str(), plain.signal), ("/tmp/chain", libc::SIGHUP));
        let full = parse_list(&["/tmp/c", "--signal", "USR2", "--", "testkit", "signals"]).unwrap();
        assert_eq!(full.signal, libc::SIGUSR2);
        assert_eq!(full.command, ["testkit", "signals"].map(OsString::from));
        for bad in [&[][..], &["/tmp/c", "--"], &["/tmp/c", "--signal", "NOPE"], &["/tmp/c", "x"]] {
            assert!(matches!(parse_list(bad), Err(Failure::Usage(_))), "{bad:?}");
        }
    }

    #[test]
    fn a_missing_file_counts_zero_and_a_bad_one_fails() {
        let dir = std::env::temp_dir().join(format!("testkit-chain-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("count");
        let path = file.to_str().unwrap();
        assert_eq!(remaining(path), Ok(0));
        std::fs::write(&file, "12\n").unwrap();
        assert_eq!(remaining(path), Ok(12));
        std::fs::write(&file, "many").unwrap();
        assert!(matches!(remaining(path), Err(Failure::Internal(_))));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
