//! `testkit await-reap [--signal SIG] [--within-ms N] PID...`: for each PID in turn, sends it SIG
//! (default USR1) and watches `/proc/PID` until it is gone, that is until its parent has reaped
//! it; one line per process, `reaped pid=.. mono_ns=..`, with the moment it was gone.
//!
//! The reaping benchmark runs it with `docker exec`: the processes are orphans held by the
//! container's PID 1, each a signal logger that exits on SIG after logging it with its own
//! `mono_ns`, so the time PID 1 took to reap it is the difference. Watching from inside the
//! container needs nothing but the Docker API. Exit 70 with one line when a process is not gone
//! within `--within-ms` (5000) of its signal.

use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::args::{parse_num, Args};
use crate::protocol::{fact, mono_ns, Context, Failure};
use crate::signal_names::parse_signal;

#[derive(Debug, PartialEq, Eq)]
pub struct Options {
    signal: Signal,
    within: Duration,
    pids: Vec<i32>,
}

pub fn parse(mut args: Args) -> Result<Options, Failure> {
    let mut options =
        Options { signal: Signal::SIGUSR1, within: Duration::from_secs(5), pids: Vec::new() };
    while let Some(arg) = args.next_str()? {
        match arg.as_str() {
            "--signal" => {
                let signo = parse_signal(&args.value("--signal")?)?;
                options.signal = Signal::try_from(signo)
                    .map_err(|e| Failure::usage(format!("--signal: {e}")))?;
            }
            "--within-ms" => {
                let ms = parse_num("--within-ms", &args.value("--within-ms")?)?;
                options.within = Duration::from_millis(ms);
            }
            pid => options.pids.push(parse_num("PID", pid)?),
        }
    }
    if options.pids.is_empty() {
        return Err(Failure::usage("no PID given"));
    }
    Ok(options)
}

pub fn run(args: Args) -> Result<(), Failure> {
    let options = parse(args)?;
    for &pid in &options.pids {
        let proc_dir = format!("/proc/{pid}");
        kill(Pid::from_raw(pid), options.signal).context(format_args!("kill {pid}"))?;
        let deadline = Instant::now() + options.within;
        // Spin rather than pause: a reap takes a few hundred microseconds, and a sleep's
        // granularity would be a good part of that. A zombie keeps its /proc entry.
        while std::path::Path::new(&proc_dir).exists() {
            if Instant::now() >= deadline {
                return Err(Failure::internal(format!(
                    "{pid} was not reaped within {:?}",
                    options.within
                )));
            }
            std::thread::yield_now();
        }
        fact(format_args!("reaped pid={pid} mono_ns={}", mono_ns()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_list(list: &[&str]) -> Result<Options, Failure> {
        parse(Args::of(list))
    }

    #[test]
    fn pids_are_required_and_numbers() {
        let options = parse_list(&["--signal", "TERM", "7", "9"]).unwrap();
        assert_eq!((options.signal, options.pids), (Signal::SIGTERM, vec![7, 9]));
        assert_eq!(parse_list(&["12"]).unwrap().signal, Signal::SIGUSR1);
        assert!(parse_list(&[]).is_err());
        assert!(parse_list(&["seven"]).is_err());
        assert!(parse_list(&["--within-ms", "soon", "7"]).is_err());
    }
}
