//! broken-init: a small, honest container init with exactly one deliberate defect, chosen at run
//! time by `BROKEN_INIT_DEFECT`, so the suite can prove that it catches each defect
//! (`images/README.md`, "broken-init"). With `none` it is a correct minimal init: the control.
//!
//! Nothing is shared with scinit: the small parts of scinit's logic it needs (option parsing, the
//! blocked-signal set, exit codes) are written again here on purpose, because a bug in shared
//! code would make the init and its control wrong in the same way, and the control could no
//! longer reveal it.
//!
//! It accepts the subset of scinit's command line the suite uses and behaves like scinit:
//! signals blocked first and read from a signalfd; the child in its own process group with
//! default dispositions and an empty mask; signals forwarded to that group; every orphan reaped;
//! a stop signal forwarded, SIGKILL after the grace period; then every remaining descendant gets
//! SIGTERM, and SIGKILL when the grace period ends; exit with the child's code (128+N for a
//! signal, 127/126 when the command cannot be executed). `--ports` are bound once and passed at
//! fds 3.. with the systemd variables; the restart signal stops the child and starts it again on
//! the same sockets.
//!
//! Each defect is one `Defect::...` test at the single place where it changes the behaviour;
//! search for `DEFECT` to see them all.

use std::ffi::{CString, OsString};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::libc;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::socket::{
    bind, listen, setsockopt, socket, sockopt, AddressFamily, Backlog, SockFlag, SockType,
    SockaddrStorage,
};
use nix::unistd::{fork, getpid, pipe2, read, setpgid, ForkResult, Pid};

/// Bad command line or unknown defect.
const USAGE_ERROR: i32 = 2;
/// Set-up failure (bind, bad address, signalfd).
const SETUP_ERROR: i32 = 1;
/// After the final SIGKILL, how long to wait for the reaping before exiting anyway (a process in
/// uninterruptible sleep must not hang PID 1).
const KILL_REAP_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Defect {
    None,
    NoReap,
    ExitZero,
    ChildPidOnly,
    LateBlock,
    Rebind,
    NoForward,
    KillAllAtExit,
}

impl Defect {
    /// Unset means `none`; an unknown name is a usage error.
    fn parse(value: Option<&str>) -> Result<Defect, String> {
        Ok(match value.unwrap_or("none") {
            "none" => Defect::None,
            "no-reap" => Defect::NoReap,
            "exit-zero" => Defect::ExitZero,
            "child-pid-only" => Defect::ChildPidOnly,
            "late-block" => Defect::LateBlock,
            "rebind" => Defect::Rebind,
            "no-forward" => Defect::NoForward,
            "kill-all-at-exit" => Defect::KillAllAtExit,
            other => return Err(format!("BROKEN_INIT_DEFECT: unknown defect {other:?}")),
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Config {
    ports: Vec<u16>,
    bind_addr: IpAddr,
    grace: Duration,
    restart_signal: Option<i32>,
    command: Vec<OsString>,
}

/// A command-line error and its exit code.
#[derive(Debug, PartialEq)]
struct CliError(String, i32);

fn usage(message: String) -> CliError {
    CliError(message, USAGE_ERROR)
}

/// scinit's rules: options stop at `--` or at the first non-option word (COMMAND); values come
/// as the next word or after `=`.
fn parse_args(args: Vec<OsString>) -> Result<Config, CliError> {
    let mut config = Config {
        ports: Vec::new(),
        bind_addr: IpAddr::from([0, 0, 0, 0]),
        grace: Duration::from_secs(5),
        restart_signal: Some(libc::SIGHUP),
        command: Vec::new(),
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let text = arg.to_string_lossy().into_owned();
        if text == "--" {
            break;
        }
        if !text.starts_with('-') || text == "-" {
            config.command.push(arg);
            break;
        }
        let (name, value) = match text.split_once('=') {
            Some((name, value)) => (name.to_string(), value.to_string()),
            None => {
                let value =
                    args.next().ok_or_else(|| usage(format!("option '{text}' needs a value")))?;
                (text, value.to_string_lossy().into_owned())
            }
        };
        match name.as_str() {
            "--ports" => {
                for part in value.split(',') {
                    let port =
                        part.trim().parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| {
                            usage(format!("--ports: '{part}' is not a port number (1-65535)"))
                        })?;
                    if config.ports.contains(&port) {
                        return Err(usage(format!("--ports: port {port} is given twice")));
                    }
                    config.ports.push(port);
                }
            }
            "--bind-addr" => {
                let text = value.trim_start_matches('[').trim_end_matches(']');
                config.bind_addr = text.parse().map_err(|_| {
                    CliError(format!("--bind-addr '{value}' is not an IP address"), SETUP_ERROR)
                })?;
            }
            "--graceful-timeout-secs" => {
                config.grace = value
                    .parse::<f64>()
                    .ok()
                    .and_then(|s| Duration::try_from_secs_f64(s).ok())
                    .ok_or_else(|| {
                        usage(format!(
                            "--graceful-timeout-secs: '{value}' is not a number of seconds"
                        ))
                    })?;
            }
            "--restart-signal" => {
                config.restart_signal = if value.eq_ignore_ascii_case("none") {
                    None
                } else {
                    Some(parse_signal(&value).ok_or_else(|| {
                        usage(format!("--restart-signal: unknown signal '{value}'"))
                    })?)
                };
            }
            _ => return Err(usage(format!("unknown option '{name}'"))),
        }
    }
    config.command.extend(args);
    if config.command.is_empty() {
        return Err(usage("missing COMMAND".to_string()));
    }
    Ok(config)
}

/// `HUP`, `SIGHUP`, `1`, `RTMIN+3`, `SIGRTMIN+3`.
fn parse_signal(text: &str) -> Option<i32> {
    if let Ok(n) = text.parse::<i32>() {
        return (1..=libc::SIGRTMAX()).contains(&n).then_some(n);
    }
    let upper = text.to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(offset) = bare.strip_prefix("RTMIN") {
        let offset =
            if offset.is_empty() { 0 } else { offset.strip_prefix('+')?.parse::<i32>().ok()? };
        let signo = libc::SIGRTMIN() + offset;
        return (signo <= libc::SIGRTMAX()).then_some(signo);
    }
    format!("SIG{bare}").parse::<Signal>().ok().map(|s| s as i32)
}

fn log(message: impl std::fmt::Display) {
    eprintln!("broken-init: {message}");
}

/// Fault signals stay unblocked: a fault in the init itself must not be blocked or forwarded.
fn handled_signals() -> SigSet {
    let mut set = SigSet::all();
    for fault in [
        Signal::SIGSEGV,
        Signal::SIGBUS,
        Signal::SIGILL,
        Signal::SIGFPE,
        Signal::SIGABRT,
        Signal::SIGTRAP,
        Signal::SIGSYS,
    ] {
        set.remove(fault);
    }
    set
}

fn main() {
    let defect = Defect::parse(std::env::var("BROKEN_INIT_DEFECT").ok().as_deref());
    if defect == Ok(Defect::LateBlock) {
        // DEFECT late-block: signals stay unblocked for 200 ms. As PID 1 with default
        // dispositions, the kernel drops an early SIGTERM; it is never seen.
        std::thread::sleep(Duration::from_millis(200));
    }
    // First (except for the defect above): from here on every signal stays pending for the
    // signalfd, and the child cannot exist before this point.
    if let Err(e) =
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&handled_signals()), None)
    {
        log(format_args!("cannot block signals: {e}"));
        std::process::exit(SETUP_ERROR);
    }
    let defect = defect.unwrap_or_else(|message| {
        log(message);
        std::process::exit(USAGE_ERROR)
    });
    let config = parse_args(std::env::args_os().skip(1).collect()).unwrap_or_else(
        |CliError(message, code)| {
            log(message);
            std::process::exit(code)
        },
    );
    match Init::new(defect, config) {
        Ok(mut init) => init.run(),
        Err(message) => {
            log(message);
            std::process::exit(SETUP_ERROR)
        }
    }
}

/// Where the init is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The main child runs.
    Running,
    /// The restart signal came: the child has SIGTERM and is restarted when it exits.
    Restarting,
    /// A restart's exec failed: no child, sockets kept, waiting for another restart or a stop.
    Idle { code: i32 },
    /// A stop signal came: the child has it and its exit ends the init.
    Stopping,
    /// The main child is gone: the rest get SIGTERM, then SIGKILL; exit when none are left.
    Draining { code: i32 },
}

struct Init {
    defect: Defect,
    config: Config,
    signals: SignalFd,
    listeners: Vec<OwnedFd>,
    child: Option<Pid>,
    phase: Phase,
    /// The next wake-up: SIGKILL for the child or the leftovers, or the give-up after SIGKILL.
    deadline: Option<Instant>,
    /// The end of the current stop's or restart's grace period; the leftovers get what is left.
    grace_end: Option<Instant>,
    /// SIGKILL was sent for the current deadline; in Draining, exit at `deadline` regardless.
    killed: bool,
}

impl Init {
    fn new(defect: Defect, config: Config) -> Result<Init, String> {
        if std::process::id() != 1 {
            // Outside a container (host tests): adopt orphans below us like PID 1 does.
            nix::sys::prctl::set_child_subreaper(true)
                .map_err(|e| format!("cannot become a subreaper: {e}"))?;
        }
        let signals = SignalFd::with_flags(
            &handled_signals(),
            SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC,
        )
        .map_err(|e| format!("cannot open a signalfd: {e}"))?;
        let listeners = bind_all(config.bind_addr, &config.ports)?;
        let mut init = Init {
            defect,
            config,
            signals,
            listeners,
            child: None,
            phase: Phase::Running,
            deadline: None,
            grace_end: None,
            killed: false,
        };
        match init.spawn() {
            Ok(pid) => init.child = Some(pid),
            Err(code) => finish(defect, code),
        }
        Ok(init)
    }

    /// The only place that waits: the signalfd, with the nearest deadline as timeout.
    fn run(&mut self) -> ! {
        loop {
            let timeout = match self.deadline {
                None => PollTimeout::NONE,
                Some(at) => {
                    let left = at.saturating_duration_since(Instant::now());
                    // Round up: waking a millisecond early would only loop.
                    PollTimeout::try_from(left + Duration::from_micros(999))
                        .unwrap_or(PollTimeout::MAX)
                }
            };
            let mut fds = [PollFd::new(self.signals.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, timeout) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(e) => log(format_args!("poll: {e}")),
            }
            loop {
                match self.signals.read_signal() {
                    Ok(Some(info)) => self.on_signal(info.ssi_signo as i32),
                    Ok(None) => break,
                    Err(Errno::EINTR) => {}
                    Err(e) => {
                        log(format_args!("read signalfd: {e}"));
                        break;
                    }
                }
            }
            // Reaping after every wake-up, not only on SIGCHLD: SIGCHLDs coalesce
            // (catatonit#4), and a child may have exited before its SIGCHLD was read.
            self.reap();
            self.on_time(Instant::now());
        }
    }

    fn on_signal(&mut self, signo: i32) {
        if signo == libc::SIGCHLD {
            return;
        }
        // The restart signal comes first, as in scinit, even if it is a stop signal.
        if self.config.restart_signal == Some(signo) {
            self.on_restart();
        } else if matches!(signo, libc::SIGTERM | libc::SIGINT | libc::SIGQUIT) {
            self.on_stop(signo);
        } else if self.defect == Defect::NoForward {
            // DEFECT no-forward: every signal but SIGTERM/SIGINT/SIGQUIT is dropped.
        } else if let Some(child) = self.child {
            self.signal_child(child, signo);
        }
    }

    fn on_stop(&mut self, signo: i32) {
        match (self.phase, self.child) {
            (Phase::Running, Some(child)) => {
                self.phase = Phase::Stopping;
                self.grace_end = Some(Instant::now() + self.config.grace);
                self.deadline = self.grace_end;
                self.signal_child(child, signo);
            }
            // The child has been under SIGTERM since the restart began: its grace keeps running.
            (Phase::Restarting | Phase::Stopping, Some(child)) => {
                self.phase = Phase::Stopping;
                self.signal_child(child, signo);
            }
            (Phase::Draining { .. }, _) => signal_descendants(signo),
            (Phase::Idle { code }, _) => self.drain(code),
            _ => {}
        }
    }

    fn on_restart(&mut self) {
        match (self.phase, self.child) {
            (Phase::Running, Some(child)) => {
                self.phase = Phase::Restarting;
                self.grace_end = Some(Instant::now() + self.config.grace);
                self.deadline = self.grace_end;
                self.killed = false;
                self.signal_child(child, libc::SIGTERM);
            }
            (Phase::Idle { .. }, _) => self.respawn(),
            _ => {}
        }
    }

    /// Signals the main child's process group (where its own children are too).
    fn signal_child(&self, child: Pid, signo: i32) {
        let target = if self.defect == Defect::ChildPidOnly {
            // DEFECT child-pid-only: the child's pid, not its group; its children miss out.
            child.as_raw()
        } else {
            -child.as_raw()
        };
        // SAFETY: kill(2) has no memory-safety preconditions. Raw because nix's `kill` has no
        // real-time signals.
        if unsafe { libc::kill(target, signo) } != 0 {
            // The group may be gone already while the child is a zombie not yet reaped.
            // SAFETY: as above.
            unsafe { libc::kill(child.as_raw(), signo) };
        }
    }

    /// Reaps every exited child (orphans included) and acts on the main child's exit.
    fn reap(&mut self) {
        let mut none_left = false;
        loop {
            let mut status = 0;
            let pid = if self.defect == Defect::NoReap {
                // DEFECT no-reap: only the main child is ever waited for; orphans stay zombies.
                match self.child {
                    // SAFETY: waitpid with a valid out-pointer.
                    Some(child) => unsafe {
                        libc::waitpid(child.as_raw(), &mut status, libc::WNOHANG)
                    },
                    None => {
                        none_left = live_descendants().is_empty();
                        0
                    }
                }
            } else {
                // SAFETY: waitpid with a valid out-pointer.
                unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) }
            };
            if pid == 0 {
                break;
            }
            if pid < 0 {
                match Errno::last() {
                    Errno::EINTR => continue,
                    Errno::ECHILD => none_left = true,
                    e => log(format_args!("waitpid: {e}")),
                }
                break;
            }
            if Some(Pid::from_raw(pid)) == self.child {
                if let Some(code) = exit_code(status) {
                    self.child = None;
                    self.on_child_exit(code);
                }
            }
        }
        if none_left {
            if let Phase::Draining { code } = self.phase {
                finish(self.defect, code);
            }
        }
    }

    fn on_child_exit(&mut self, code: i32) {
        match self.phase {
            Phase::Restarting => self.respawn(),
            // A stop signal's grace period carries over to the leftovers.
            Phase::Stopping => self.drain_within(code, self.grace_end),
            _ => self.drain(code),
        }
    }

    /// Starts the child again on the same sockets; a failed exec leaves the init idle.
    fn respawn(&mut self) {
        self.deadline = None;
        self.grace_end = None;
        self.killed = false;
        if self.defect == Defect::Rebind {
            // DEFECT rebind: the listening sockets are closed and bound anew for every restart,
            // dropping their backlog and leaving the port closed in between.
            self.listeners.clear();
            match bind_all(self.config.bind_addr, &self.config.ports) {
                Ok(listeners) => self.listeners = listeners,
                Err(message) => log(message),
            }
        }
        match self.spawn() {
            Ok(pid) => {
                self.child = Some(pid);
                self.phase = Phase::Running;
            }
            Err(code) => self.phase = Phase::Idle { code },
        }
    }

    fn drain(&mut self, code: i32) {
        self.drain_within(code, None);
    }

    /// The main child is gone: SIGTERM everything left, SIGKILL at `deadline` (a full grace
    /// period unless a stop already started one).
    fn drain_within(&mut self, code: i32, deadline: Option<Instant>) {
        let now = Instant::now();
        let deadline = deadline.unwrap_or(now + self.config.grace);
        self.phase = Phase::Draining { code };
        if self.defect == Defect::KillAllAtExit {
            // DEFECT kill-all-at-exit: no SIGTERM and no grace for the remaining processes.
            self.kill_leftovers(now);
        } else if deadline <= now {
            self.kill_leftovers(now);
        } else {
            self.deadline = Some(deadline);
            self.killed = false;
            signal_descendants(libc::SIGTERM);
        }
    }

    fn kill_leftovers(&mut self, now: Instant) {
        signal_descendants(libc::SIGKILL);
        self.deadline = Some(now + KILL_REAP_TIMEOUT);
        self.killed = true;
    }

    fn on_time(&mut self, now: Instant) {
        let Some(deadline) = self.deadline else {
            return;
        };
        if now < deadline {
            return;
        }
        match (self.phase, self.child) {
            (Phase::Restarting | Phase::Stopping, Some(child)) if !self.killed => {
                log(format_args!("child {child} still running after the grace period: SIGKILL"));
                self.signal_child(child, libc::SIGKILL);
                self.killed = true;
                self.deadline = None;
            }
            (Phase::Draining { .. }, _) if !self.killed => {
                log("processes still running after the grace period: SIGKILL");
                self.kill_leftovers(now);
            }
            (Phase::Draining { code }, _) => {
                log("some processes could not be reaped after SIGKILL; exiting anyway");
                finish(self.defect, code);
            }
            _ => self.deadline = None,
        }
    }

    /// Forks and execs the child; `Err(127|126)` when the exec failed (reported through a
    /// CLOEXEC pipe, which closes unread when the exec succeeds).
    fn spawn(&self) -> Result<Pid, i32> {
        let name = self.config.command[0].to_string_lossy().into_owned();
        let argv: Vec<CString> =
            self.config.command.iter().filter_map(|a| CString::new(a.as_bytes()).ok()).collect();
        let (report_r, report_w) = pipe2(OFlag::O_CLOEXEC).map_err(|e| {
            log(format_args!("cannot start '{name}': {e}"));
            126
        })?;
        // SAFETY: the init is single-threaded; the child only prepares and execs.
        match unsafe { fork() } {
            Err(e) => {
                log(format_args!("cannot start '{name}': {e}"));
                Err(126)
            }
            Ok(ForkResult::Child) => {
                drop(report_r);
                let env = child_env(std::env::vars_os(), &self.config.ports, getpid().as_raw());
                exec_child(&argv, &env, &self.listeners, report_w.as_raw_fd())
            }
            Ok(ForkResult::Parent { child }) => {
                drop(report_w);
                // The child does this too; here as well so that a signal forwarded right after
                // the spawn finds the group.
                let _ = setpgid(child, child);
                let mut bytes = [0u8; 4];
                let mut filled = 0;
                while filled < 4 {
                    match read(&report_r, &mut bytes[filled..]) {
                        Ok(0) => break,
                        Ok(n) => filled += n,
                        Err(Errno::EINTR) => {}
                        Err(_) => break,
                    }
                }
                if filled < 4 {
                    return Ok(child);
                }
                let errno = Errno::from_raw(i32::from_ne_bytes(bytes));
                let mut status = 0;
                // SAFETY: waitpid with a valid out-pointer; the failed child exits at once.
                unsafe { libc::waitpid(child.as_raw(), &mut status, 0) };
                log(format_args!("cannot execute '{name}': {}", errno.desc()));
                Err(exec_exit_code(errno))
            }
        }
    }
}

/// Exits with the main child's code (127/126 if it could not be executed).
fn finish(defect: Defect, code: i32) -> ! {
    if defect == Defect::ExitZero {
        // DEFECT exit-zero: the child's status is thrown away.
        std::process::exit(0);
    }
    std::process::exit(code)
}

/// The forked child's side: never returns. A failure is reported as its errno on the report
/// pipe, then the child exits 127/126.
fn exec_child(argv: &[CString], env: &[CString], listeners: &[OwnedFd], report: RawFd) -> ! {
    let mut report = report;
    let errno = prepare_and_exec(argv, env, listeners, &mut report);
    // SAFETY: writing a local buffer to our pipe, then leaving without the init's exit path.
    unsafe {
        libc::write(report, (errno as i32).to_ne_bytes().as_ptr().cast(), 4);
        libc::_exit(exec_exit_code(errno))
    }
}

/// Own process group (and the terminal's foreground, if the init had it), sockets at 3..,
/// every other fd above 2 closed, default dispositions, empty mask, exec. Returns only the errno
/// of what failed; `report` follows the report pipe when the fd shuffle moves it.
fn prepare_and_exec(
    argv: &[CString],
    env: &[CString],
    listeners: &[OwnedFd],
    report: &mut RawFd,
) -> Errno {
    let _ = setpgid(Pid::from_raw(0), Pid::from_raw(0));
    // SAFETY: plain terminal calls on fd 0; signals are still blocked, so SIGTTOU cannot stop us.
    unsafe {
        if libc::isatty(0) == 1 && libc::tcgetpgrp(0) == libc::getpgid(libc::getppid()) {
            libc::tcsetpgrp(0, libc::getpid());
        }
    }
    let first_free = 3 + listeners.len() as RawFd;
    // Copies above the target range first, so that placing socket i at 3+i never overwrites a
    // socket (or the report pipe) that is still to be placed.
    let dup_high = |fd: RawFd| {
        // SAFETY: plain fd syscall.
        Errno::result(unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, first_free) })
    };
    *report = match dup_high(*report) {
        Ok(fd) => fd,
        Err(e) => return e,
    };
    let mut copies = Vec::new();
    for listener in listeners {
        match dup_high(listener.as_raw_fd()) {
            Ok(fd) => copies.push(fd),
            Err(e) => return e,
        }
    }
    for (target, copy) in (3..).zip(copies) {
        // SAFETY: plain fd syscall; dup2 leaves the target without CLOEXEC, as wanted.
        if let Err(e) = Errno::result(unsafe { libc::dup2(copy, target) }) {
            return e;
        }
    }
    // Everything else above the sockets goes, except the report pipe (CLOEXEC: exec closes it).
    for (low, high) in [(first_free, *report - 1), (*report + 1, RawFd::MAX)] {
        if low <= high {
            // SAFETY: close_range(2) takes no pointers.
            unsafe { libc::syscall(libc::SYS_close_range, low as u32, high as u32, 0u32) };
        }
    }
    reset_signals();
    match nix::unistd::execvpe(&argv[0], argv, env) {
        Err(errno) => errno,
        Ok(never) => match never {},
    }
}

/// Default disposition for every signal (glibc's internal 32 and 33 included, through the raw
/// system call, since an inherited SIG_IGN survives exec), then an empty mask.
fn reset_signals() {
    #[repr(C)]
    struct KernelSigaction {
        handler: libc::sighandler_t,
        flags: libc::c_ulong,
        restorer: usize,
        mask: u64,
    }
    let action = KernelSigaction { handler: libc::SIG_DFL, flags: 0, restorer: 0, mask: 0 };
    for signo in 1..=libc::SIGRTMAX() {
        if signo != libc::SIGKILL && signo != libc::SIGSTOP {
            // SAFETY: a valid kernel sigaction, its size as the kernel expects (8-byte mask).
            unsafe {
                libc::syscall(
                    libc::SYS_rt_sigaction,
                    signo,
                    &action as *const KernelSigaction,
                    std::ptr::null_mut::<KernelSigaction>(),
                    8usize,
                )
            };
        }
    }
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
}

/// 127 when the command is not found, 126 for any other exec failure (shell convention).
fn exec_exit_code(errno: Errno) -> i32 {
    match errno {
        Errno::ENOENT | Errno::ENOTDIR => 127,
        _ => 126,
    }
}

/// The exit code for a raw wait status: the child's code, or 128+N; `None` if not an exit.
fn exit_code(status: i32) -> Option<i32> {
    if libc::WIFEXITED(status) {
        Some(libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        Some((128 + libc::WTERMSIG(status)).min(255))
    } else {
        None
    }
}

/// The child's environment: inherited activation variables replaced by ours (with `--ports`)
/// or removed (without). Built in the forked child: `LISTEN_PID` is the child's own `pid`.
fn child_env(
    inherited: impl Iterator<Item = (OsString, OsString)>,
    ports: &[u16],
    pid: i32,
) -> Vec<CString> {
    let activation =
        |name: &OsString| name.as_bytes().starts_with(b"LISTEN_") || name == "SCINIT_INHERITED_FDS";
    let mut env: Vec<(OsString, OsString)> =
        inherited.filter(|(name, _)| !activation(name)).collect();
    if !ports.is_empty() {
        let fds: Vec<String> = (3..3 + ports.len()).map(|fd| fd.to_string()).collect();
        let names: Vec<String> = ports.iter().map(|p| format!("port{p}")).collect();
        env.push(("LISTEN_FDS".into(), ports.len().to_string().into()));
        env.push(("LISTEN_PID".into(), pid.to_string().into()));
        env.push(("LISTEN_FDNAMES".into(), names.join(":").into()));
        env.push(("SCINIT_INHERITED_FDS".into(), fds.join(",").into()));
    }
    env.into_iter()
        .filter_map(|(name, value)| {
            let mut entry = name.into_vec();
            entry.push(b'=');
            entry.extend_from_slice(value.as_bytes());
            CString::new(entry).ok()
        })
        .collect()
}

/// Binds every port with SO_REUSEADDR (CLOEXEC: the child gets its copies through dup2).
fn bind_all(addr: IpAddr, ports: &[u16]) -> Result<Vec<OwnedFd>, String> {
    ports
        .iter()
        .map(|&port| {
            let address = SocketAddr::new(addr, port);
            let family = if address.is_ipv4() { AddressFamily::Inet } else { AddressFamily::Inet6 };
            let bound =
                socket(family, SockType::Stream, SockFlag::SOCK_CLOEXEC, None).and_then(|fd| {
                    setsockopt(&fd, sockopt::ReuseAddr, &true)?;
                    bind(fd.as_raw_fd(), &SockaddrStorage::from(address))?;
                    listen(&fd, Backlog::MAXCONN)?;
                    Ok(fd)
                });
            bound.map_err(|e| format!("cannot listen on {address}: {}", e.desc()))
        })
        .collect()
}

/// Every descendant of the init, from `/proc`: children, grandchildren and adopted orphans
/// (setsid escapees and daemons included); as PID 1 also the `docker exec` processes (ppid 0).
/// Empty when `/proc` is not this PID namespace's, so that nobody else is ever signalled.
fn descendants() -> Vec<(i32, char)> {
    let own = std::process::id() as i32;
    let proc_self =
        std::fs::read_link("/proc/self").ok().and_then(|p| p.to_str()?.parse::<i32>().ok());
    if proc_self != Some(own) {
        return Vec::new();
    }
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let table: Vec<(i32, i32, char)> = entries
        .flatten()
        .filter_map(|entry| {
            let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            let (state, ppid) = parse_stat(&stat)?;
            Some((pid, ppid, state))
        })
        .collect();
    let mut roots = vec![own];
    if own == 1 {
        roots.push(0);
    }
    let mut found: Vec<(i32, char)> = Vec::new();
    while let Some(parent) = roots.pop() {
        for &(pid, ppid, state) in &table {
            if ppid == parent && pid != own && !found.iter().any(|(p, _)| *p == pid) {
                found.push((pid, state));
                roots.push(pid);
            }
        }
    }
    found
}

/// Descendants that are not zombies.
fn live_descendants() -> Vec<i32> {
    descendants().into_iter().filter(|(_, state)| *state != 'Z').map(|(pid, _)| pid).collect()
}

fn signal_descendants(signo: i32) {
    for (pid, _) in descendants() {
        // SAFETY: kill(2) has no memory-safety preconditions.
        unsafe { libc::kill(pid, signo) };
    }
}

/// `(state, ppid)` from `/proc/<pid>/stat`; the comm may hold spaces and `)`, so fields are
/// counted after the last `)`.
fn parse_stat(stat: &str) -> Option<(char, i32)> {
    let mut fields = stat.get(stat.rfind(')')? + 1..)?.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn every_defect_has_a_name_and_unset_means_none() {
        assert_eq!(Defect::parse(None), Ok(Defect::None));
        for (name, defect) in [
            ("none", Defect::None),
            ("no-reap", Defect::NoReap),
            ("exit-zero", Defect::ExitZero),
            ("child-pid-only", Defect::ChildPidOnly),
            ("late-block", Defect::LateBlock),
            ("rebind", Defect::Rebind),
            ("no-forward", Defect::NoForward),
            ("kill-all-at-exit", Defect::KillAllAtExit),
        ] {
            assert_eq!(Defect::parse(Some(name)), Ok(defect));
        }
        assert!(Defect::parse(Some("slow")).is_err());
    }

    #[test]
    fn parses_the_scinit_subset() {
        let config = parse_args(args(&[
            "--graceful-timeout-secs",
            "1.5",
            "--ports",
            "8080,9090",
            "--bind-addr=::",
            "--restart-signal",
            "USR2",
            "--",
            "testkit",
            "signals",
        ]))
        .unwrap();
        assert_eq!(config.grace, Duration::from_millis(1500));
        assert_eq!(config.ports, [8080, 9090]);
        assert_eq!(config.bind_addr, "::".parse::<IpAddr>().unwrap());
        assert_eq!(config.restart_signal, Some(libc::SIGUSR2));
        assert_eq!(config.command, args(&["testkit", "signals"]));
    }

    #[test]
    fn defaults_match_scinit() {
        let config = parse_args(args(&["sleep", "--ports", "1"])).unwrap();
        assert_eq!(config.ports, Vec::<u16>::new());
        assert_eq!(config.grace, Duration::from_secs(5));
        assert_eq!(config.restart_signal, Some(libc::SIGHUP));
        assert_eq!(config.command, args(&["sleep", "--ports", "1"]));
        assert_eq!(
            parse_args(args(&["--restart-signal", "none", "x"])).unwrap().restart_signal,
            None
        );
    }

    #[test]
    fn command_line_errors_carry_scinit_exit_codes() {
        for bad in [
            &[][..],
            &["--ports", "0", "x"],
            &["--ports", "80,80", "x"],
            &["--graceful-timeout-secs", "-1", "x"],
            &["--restart-signal", "FOO", "x"],
            &["--live-reload", "x"],
            &["--ports"],
        ] {
            assert_eq!(parse_args(args(bad)).map_err(|e| e.1), Err(USAGE_ERROR), "{bad:?}");
        }
        assert_eq!(
            parse_args(args(&["--bind-addr", "localhost", "x"])).map_err(|e| e.1),
            Err(SETUP_ERROR)
        );
    }

    #[test]
    fn signals_parse_like_scinit() {
        assert_eq!(parse_signal("HUP"), Some(libc::SIGHUP));
        assert_eq!(parse_signal("SIGusr1"), Some(libc::SIGUSR1));
        assert_eq!(parse_signal("15"), Some(libc::SIGTERM));
        assert_eq!(parse_signal("RTMIN+2"), Some(libc::SIGRTMIN() + 2));
        assert_eq!(parse_signal("0"), None);
        assert_eq!(parse_signal("NOPE"), None);
    }

    #[test]
    fn wait_statuses_become_exit_codes() {
        assert_eq!(exit_code(3 << 8), Some(3));
        assert_eq!(exit_code(15), Some(143));
        assert_eq!(exit_code(11 | 0x80), Some(139));
        assert_eq!(exit_code((19 << 8) | 0x7f), None);
        assert_eq!(exec_exit_code(Errno::ENOENT), 127);
        assert_eq!(exec_exit_code(Errno::EACCES), 126);
    }

    #[test]
    fn activation_variables_are_replaced() {
        let inherited = vec![("LISTEN_FDS".into(), "9".into()), ("PATH".into(), "/bin".into())];
        let env: Vec<String> = child_env(inherited.clone().into_iter(), &[8080, 9090], 42)
            .iter()
            .map(|c| c.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            env,
            [
                "PATH=/bin".to_string(),
                "LISTEN_FDS=2".into(),
                "LISTEN_PID=42".into(),
                "LISTEN_FDNAMES=port8080:port9090".into(),
                "SCINIT_INHERITED_FDS=3,4".into(),
            ]
        );
        let env = child_env(inherited.into_iter(), &[], 42);
        assert_eq!(env, [CString::new("PATH=/bin").unwrap()]);
    }

    #[test]
    fn stat_fields_follow_the_last_parenthesis() {
        assert_eq!(parse_stat("12 (a) b (c)) Z 1 12 12 0"), Some(('Z', 1)));
        assert_eq!(parse_stat("12 (sleep"), None);
    }
}
