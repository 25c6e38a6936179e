//! `testkit signal-pid1 --signal SIG [--at first-sleep|signal-held] [--release FIFO]
//! [--count N --ack FIFO] [--within-ms N]`: run with `docker exec`, it sends SIG to the
//! container's PID 1, at a chosen moment of the init's start-up (watching `/proc/1/status` from
//! inside the container) or at once.
//!
//! This is how the suite races a signal against an init's start-up through the Docker API alone:
//! `docker kill` goes through the API, containerd and a `runc kill` process (about 10 ms), by
//! which time the child has usually finished starting. Spinning next to PID 1 lands the signal
//! within microseconds of the moment. From inside the namespace, `kill(2)` to PID 1 behaves as
//! from the host for every signal but SIGKILL and SIGSTOP: a signal PID 1 blocks stays pending,
//! one it catches is delivered, and one it leaves at its default action is dropped.
//!
//! `--release FIFO`: the container's PID 1 is a shell holding on FIFO before it `exec`s the init
//! (the suite's held containers); this subcommand lets it go first, so that it sees the whole
//! start-up. It waits for the FIFO to exist, since `docker exec` may run before the shell made
//! it.
//!
//! Output with `--at`: one line, `signalled moment=.. signal=.. waited=true|false name=..
//! state=..`, printed *before* the signal is sent: an init that exits at once on it ends the
//! container, and the kernel then kills this process too. `waited`: PID 1 had not reached the
//! moment when the watch began. Exit 70 with one line when the moment does not come within
//! `--within-ms` (5000).
//!
//! `--count N --ack FIFO` (the forwarding benchmark): N signals, each sent once the child has
//! acknowledged the previous one by a byte on FIFO (`testkit signals --ack FIFO`), so that none
//! coalesce; one line per signal, `sent signal=.. n=.. mono_ns=..` with the moment just before
//! its `kill(2)`, on the clock the child's `signal` lines use.

use std::time::{Duration, Instant};

use std::os::fd::{AsFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::sys::stat::Mode;
use nix::unistd::{read, write, Pid};

use crate::args::{parse_num, unknown, Args};
use crate::procfs::{self, Process, Status};
use crate::protocol::{fact, mono_ns, Context, Failure};
use crate::signal_names::{parse_signal, signal_name};

/// A moment of the init's start-up, as its `/proc/1/status` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moment {
    /// The first time PID 1, running the init (no longer runc's stub or the holding shell), is
    /// asleep. That comes after a correct init's first statement, and catches an init that
    /// sleeps (e.g. while spawning its child) before it blocks its signals.
    FirstSleep,
    /// The first time PID 1, running the init, blocks or catches the signal: from then on a
    /// correct init holds it, so this catches an init that discards signals that arrived before
    /// its loop runs.
    SignalHeld,
}

impl Moment {
    fn parse(text: &str) -> Result<Moment, Failure> {
        match text {
            "first-sleep" => Ok(Moment::FirstSleep),
            "signal-held" => Ok(Moment::SignalHeld),
            _ => Err(Failure::usage(format!(
                "--at: expected first-sleep or signal-held, got {text:?}"
            ))),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Moment::FirstSleep => "first-sleep",
            Moment::SignalHeld => "signal-held",
        }
    }

    /// Whether PID 1's status shows the moment has come.
    fn reached(self, status: &Status, signo: i32) -> bool {
        let name = status.field("Name").unwrap_or("");
        // runc's stub, or the shell of a held container: not the init yet.
        if name.starts_with("runc:") || name == "sh" {
            return false;
        }
        let state = status.field("State").unwrap_or("");
        let asleep = state.starts_with(['S', 'Z', 'X']);
        let mask = |field: &str| {
            status.field(field).and_then(|hex| u64::from_str_radix(hex, 16).ok()).unwrap_or(0)
        };
        let held = (mask("SigBlk") | mask("SigCgt")) & (1u64 << (signo - 1)) != 0;
        match self {
            Moment::FirstSleep => asleep,
            // An init asleep in `sigwait`/`sigtimedwait` holds the signal too, although the
            // kernel clears the waited-for signals from `SigBlk` for the length of the wait.
            Moment::SignalHeld => asleep || held,
        }
    }
}

pub struct Options {
    /// `None`: at once.
    moment: Option<Moment>,
    signal: Signal,
    release: Option<String>,
    count: u32,
    ack: Option<String>,
    within: Duration,
}

pub fn parse(mut args: Args) -> Result<Options, Failure> {
    let (mut moment, mut signo, mut release, mut ack) = (None, None, None, None);
    let mut count = 1;
    let mut within = Duration::from_secs(5);
    while let Some(arg) = args.next_str()? {
        match arg.as_str() {
            "--at" => moment = Some(Moment::parse(&args.value("--at")?)?),
            "--signal" => signo = Some(parse_signal(&args.value("--signal")?)?),
            "--release" => release = Some(args.value("--release")?),
            "--count" => count = parse_num("--count", &args.value("--count")?)?,
            "--ack" => ack = Some(args.value("--ack")?),
            "--within-ms" => {
                within =
                    Duration::from_millis(parse_num("--within-ms", &args.value("--within-ms")?)?)
            }
            other => return Err(unknown(other)),
        }
    }
    let signo = signo.ok_or_else(|| Failure::usage("--signal is required"))?;
    // Real-time signals are not in nix's enum; no caller needs them here.
    let signal = Signal::try_from(signo).map_err(|e| Failure::usage(format!("--signal: {e}")))?;
    if count == 0 || (count > 1 && (ack.is_none() || moment.is_some())) {
        return Err(Failure::usage("--count N > 1 needs --ack FIFO and no --at"));
    }
    Ok(Options { moment, signal, release, count, ack, within })
}

pub fn run(args: Args) -> Result<(), Failure> {
    let options = parse(args)?;
    let deadline = Instant::now() + options.within;
    if let Some(fifo) = &options.release {
        release(fifo, deadline)?;
    }
    match options.moment {
        Some(moment) => at(moment, &options, deadline),
        None => repeatedly(&options),
    }
}

fn at(moment: Moment, options: &Options, deadline: Instant) -> Result<(), Failure> {
    let signo = options.signal as i32;
    let mut waited = false;
    loop {
        let status = procfs::status(Process::Pid(1))?;
        if moment.reached(&status, signo) {
            fact(format_args!(
                "signalled moment={} signal={} waited={waited} name={} state={}",
                moment.name(),
                signal_name(signo),
                status.field("Name").unwrap_or("?"),
                status.field("State").unwrap_or("?").split_whitespace().next().unwrap_or("?"),
            ));
            return kill(Pid::from_raw(1), options.signal).context("kill 1");
        }
        waited = true;
        if Instant::now() >= deadline {
            return Err(Failure::internal(format!(
                "PID 1 did not reach {} within {:?} (Name {}, State {})",
                moment.name(),
                options.within,
                status.field("Name").unwrap_or("?"),
                status.field("State").unwrap_or("?"),
            )));
        }
        // Spin rather than pause: the windows that matter (a first sleep while spawning the
        // child, the moments after the mask is set) may last well under a millisecond.
        std::thread::yield_now();
    }
}

/// `--count` signals at once, each after the previous one's acknowledgement.
fn repeatedly(options: &Options) -> Result<(), Failure> {
    let ack = match &options.ack {
        Some(fifo) => Some(open_ack(fifo)?),
        None => None,
    };
    for n in 1..=options.count {
        let sent = mono_ns();
        kill(Pid::from_raw(1), options.signal).context("kill 1")?;
        if let Some(ack) = &ack {
            await_ack(ack, options.within)?;
        }
        fact(format_args!(
            "sent signal={} n={n} mono_ns={sent}",
            signal_name(options.signal as i32)
        ));
    }
    Ok(())
}

/// The read end of the child's acknowledgement FIFO. The child holds it open for writing, so
/// opening it does not block.
fn open_ack(fifo: &str) -> Result<OwnedFd, Failure> {
    open(fifo, OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC, Mode::empty())
        .context(format_args!("open {fifo}"))
}

/// Waits for one acknowledgement byte, at most `within`.
fn await_ack(ack: &OwnedFd, within: Duration) -> Result<(), Failure> {
    let timeout = PollTimeout::try_from(within.as_millis()).unwrap_or(PollTimeout::MAX);
    loop {
        let mut fds = [PollFd::new(ack.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, timeout) {
            Ok(0) => {
                return Err(Failure::internal(format!("no acknowledgement within {within:?}")))
            }
            Ok(_) => {}
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(Failure::internal(format!("poll: {e}"))),
        }
        let mut byte = [0u8; 1];
        match read(ack, &mut byte) {
            Ok(1) => return Ok(()),
            Ok(_) => return Err(Failure::internal("the child closed its acknowledgements")),
            Err(Errno::EAGAIN | Errno::EINTR) => continue,
            Err(e) => return Err(Failure::internal(format!("read: {e}"))),
        }
    }
}

/// Writes `go` to the holding shell's FIFO once it exists and the shell reads it.
fn release(fifo: &str, deadline: Instant) -> Result<(), Failure> {
    loop {
        // Non-blocking: ENOENT before the shell's `mkfifo`, ENXIO before its `read` opens it.
        match open(fifo, OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC, Mode::empty()) {
            Ok(fd) => {
                write(&fd, b"go\n").context(format_args!("write {fifo}"))?;
                return Ok(());
            }
            Err(Errno::ENOENT | Errno::ENXIO) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_micros(200))
            }
            Err(e) => return Err(Failure::internal(format!("open {fifo}: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(name: &str, state: &str, blk: &str) -> Status {
        Status::from_text(format!(
            "Name:\t{name}\nState:\t{state}\nSigBlk:\t{blk}\nSigCgt:\t0000000000000000\n"
        ))
    }

    #[test]
    fn moments_are_read_from_the_status_and_never_from_the_stub_or_the_holding_shell() {
        let term = nix::libc::SIGTERM;
        assert!(!Moment::FirstSleep.reached(&status("runc:[2:INIT]", "S", "0"), term));
        assert!(!Moment::FirstSleep.reached(&status("sh", "S", "0"), term));
        assert!(Moment::FirstSleep.reached(&status("init", "S (sleeping)", "0"), term));
        assert!(!Moment::SignalHeld.reached(&status("init", "R (running)", "0"), term));
        assert!(Moment::SignalHeld.reached(&status("init", "R", "0000000000004000"), term));
    }

    #[test]
    fn the_moment_and_the_signal_are_required() {
        let parse_list = |list: &[&str]| parse(Args::of(list)).map(drop);
        assert!(parse_list(&["--at", "first-sleep", "--signal", "TERM"]).is_ok());
        assert!(parse_list(&["--signal", "TERM"]).is_ok());
        assert!(parse_list(&["--signal", "USR1", "--count", "9", "--ack", "/tmp/a"]).is_ok());
        assert!(parse_list(&["--at", "first-sleep"]).is_err());
        assert!(parse_list(&["--at", "later", "--signal", "TERM"]).is_err());
        assert!(parse_list(&["--signal", "USR1", "--count", "9"]).is_err());
        assert!(parse_list(&["--signal", "USR1", "--count", "0", "--ack", "/tmp/a"]).is_err());
        let at_and_count =
            ["--at", "first-sleep", "--signal", "TERM", "--count", "2", "--ack", "a"];
        assert!(parse_list(&at_and_count).is_err());
    }
}
