//! scinit: a container init (PID 1).
//!
//! `main` reads like catatonit's: block signals, parse, set up, run the loop, exit. Each job
//! lives in its own module; the decisions live in `supervisor`, which makes no system calls.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]
// scinit is entered through C's `main` (`c_main` below), not Rust's runtime: see there why.
#![cfg_attr(not(test), no_main)]

// First, so that its macros (`error!`, `warn!`, `info!`, `debug!`) are in scope everywhere.
#[macro_use]
mod log;
mod cli;
mod event_loop;
mod exit_status;
mod notify;
mod reap;
#[cfg(any(
    feature = "regress-forward-cpu",
    feature = "regress-forward-sleep",
    feature = "regress-idle-memory"
))]
mod regress;
mod signals;
mod sockets;
mod spawn;
mod supervisor;
mod watch;

use std::io::Write;
use std::path::PathBuf;

use crate::cli::{Config, Parsed};
use crate::exit_status::Fatal;

/// The process's entry point, called by glibc's start-up code in place of Rust's runtime
/// (`lang_start`). That runtime's set-up costs more than all of scinit's own start-up (its
/// stack-overflow guard parses `/proc/self/maps` with `sscanf`, some 40,000 instructions, for
/// a process that never recurses), and of the rest scinit needs only one piece, done in
/// `main`: stdio that is open. Its other pieces change nothing here: the arguments still come
/// through `std::env` (glibc hands them to std before `main`); SIGPIPE, which it would ignore, is
/// blocked like every other signal, so a write to a closed pipe fails with `EPIPE` either way;
/// and without the overflow guard a stack overflow is a plain SIGSEGV instead of one line first.
#[cfg(not(test))]
#[export_name = "main"]
extern "C" fn c_main(
    _argc: std::ffi::c_int,
    _argv: *const *const std::ffi::c_char,
) -> std::ffi::c_int {
    main();
    0
}

fn main() {
    // Before *anything else*: a signal that arrives before the loop runs must stay pending,
    // not kill scinit through a default disposition or be lost. No thread or child exists yet,
    // so the mask applies to everything scinit will ever run.
    let outcome = match signals::block_all() {
        Ok(()) => open_closed_stdio().and_then(|()| run()),
        Err(errno) => Err(Fatal::setup(format!("cannot block signals: {}", errno.desc()))),
    };
    let code = outcome.unwrap_or_else(|fatal| {
        log::line(format_args!("{}", fatal.message));
        fatal.code
    });
    std::process::exit(code);
}

/// Opens `/dev/null` on whichever of fds 0, 1 and 2 is closed, as Rust's runtime would have
/// (see `c_main`): otherwise the signalfd or a listening socket would take that number, and the
/// child would get it as its stdin, stdout or stderr.
fn open_closed_stdio() -> Result<(), Fatal> {
    let mut stdio = [0, 1, 2].map(|fd| nix::libc::pollfd { fd, events: 0, revents: 0 });
    // SAFETY: `stdio` is a valid array of 3 pollfds for the duration of the call; a zero
    // timeout only reports which fds are open (`POLLNVAL` for a closed one).
    if unsafe { nix::libc::poll(stdio.as_mut_ptr(), 3, 0) } < 0 {
        return Ok(());
    }
    // Each open takes the lowest free fd: the closed ones, in order. Kept open for good.
    for _ in stdio.iter().filter(|fd| fd.revents & nix::libc::POLLNVAL != 0) {
        nix::fcntl::open("/dev/null", nix::fcntl::OFlag::O_RDWR, nix::sys::stat::Mode::empty())
            .map(std::os::fd::IntoRawFd::into_raw_fd)
            .map_err(|e| Fatal::setup(format!("cannot open /dev/null: {}", e.desc())))?;
    }
    Ok(())
}

fn run() -> Result<i32, Fatal> {
    let config = match cli::parse(std::env::args_os().skip(1), std::env::var_os("SCINIT_LOG"))? {
        Parsed::Run(config) => config,
        Parsed::Help => return Ok(print(cli::HELP)),
        Parsed::Version => return Ok(print(&format!("scinit {}\n", env!("CARGO_PKG_VERSION")))),
    };
    log::set_level(config.log_level);
    set_up_and_run(&config)
}

fn print(text: &str) -> i32 {
    let _ = std::io::stdout().write_all(text.as_bytes());
    0
}

/// Set-up (every error fatal, see `event_loop`'s error policy), then the loop.
fn set_up_and_run(config: &Config) -> Result<i32, Fatal> {
    if std::process::id() != 1 {
        // Not PID 1 (tests, `docker run --init`-less nesting): become the reaper of orphans
        // below us anyway, so reaping and shutdown work the same.
        nix::sys::prctl::set_child_subreaper(true)
            .map_err(|e| Fatal::setup(format!("cannot become a child subreaper: {}", e.desc())))?;
    }
    let signalfd = signals::open_signalfd()
        .map_err(|e| Fatal::setup(format!("cannot open a signalfd: {}", e.desc())))?;
    let listeners = sockets::bind_all(config.bind_addr, &config.ports, config.reuse_port)?;
    let watcher =
        if config.live_reload { Some(watch::Watcher::new(&watch_paths(config)?)?) } else { None };
    // Dropped (and its socket file removed) whenever scinit returns from here, set-up errors
    // below included.
    let notify = config.notify.as_ref().map(notify::NotifySocket::open).transpose()?;
    let env = spawn::with_notify_socket(
        std::env::vars_os().collect(),
        notify.as_ref().map(notify::NotifySocket::env_value),
    );
    let foreground = spawn::Foreground::detect();
    let spawner = spawn::Spawner::new(&config.command, env, &listeners, foreground)?;
    #[cfg(feature = "regress-idle-memory")]
    regress::idle_memory();

    let supervisor = supervisor::Supervisor::new(supervisor::Settings {
        grace: config.graceful_timeout,
        restart_delay: config.restart_delay,
        debounce: config.debounce,
        restart_signal: config.restart_signal,
        stop_signal: config.stop_signal,
        restart_order: config.restart_order,
        readiness: match config.notify {
            Some(_) => supervisor::Readiness::Notify,
            None => supervisor::Readiness::Delay(config.ready_delay),
        },
        ready_timeout: config.ready_timeout,
        log_level: config.log_level,
    });
    // PID 1 keeps no directory busy (a volume below it could not be unmounted): children start
    // in the directory scinit was started in, and scinit waits in `/`.
    if spawner.remembers_the_working_directory() {
        if let Err(errno) = nix::unistd::chdir("/") {
            warn!("cannot leave the working directory for /: {}", errno.desc());
        }
    }
    let context = event_loop::Context { signals: signalfd, watcher, notify, spawner };
    let code = event_loop::run(supervisor, context);
    foreground.restore();
    Ok(code)
}

/// The `--watch-path`s, or by default the command's executable resolved through PATH. A
/// command that is not there is 127, as when it is executed, not a watch set-up error.
/// Made absolute: scinit leaves its working directory once set up, and watches are added again
/// later (a new subdirectory, a replaced file).
fn watch_paths(config: &Config) -> Result<Vec<PathBuf>, Fatal> {
    let paths = if !config.watch_paths.is_empty() {
        config.watch_paths.clone()
    } else {
        let command = config.command.first().map(|c| c.as_os_str()).unwrap_or_default();
        let found = watch::resolve_command(command, std::env::var_os("PATH").as_deref());
        vec![found.ok_or_else(|| spawn::not_found(&command.to_string_lossy()))?]
    };
    Ok(paths.into_iter().map(|p| std::path::absolute(&p).unwrap_or(p)).collect())
}
