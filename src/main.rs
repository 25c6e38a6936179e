//! scinit: a container init (PID 1).
//!
//! `main` reads like catatonit's: block signals, parse, set up, run the loop, exit. Each job
//! lives in its own module; the decisions live in `supervisor`, which makes no system calls.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

// First, so that its macros (`error!`, `warn!`, `info!`, `debug!`) are in scope everywhere.
#[macro_use]
mod log;
mod cli;
mod event_loop;
mod exit_status;
mod notify;
mod reap;
mod signals;
mod sockets;
mod spawn;
mod supervisor;
mod watch;

use std::io::Write;
use std::path::PathBuf;

use crate::cli::{Config, Parsed};
use crate::exit_status::Fatal;

fn main() {
    // Before *anything else*: a signal that arrives before the loop runs must stay pending,
    // not kill scinit through a default disposition or be lost. No thread or child exists yet,
    // so the mask applies to everything scinit will ever run.
    let outcome = match signals::block_all() {
        Ok(()) => run(),
        Err(errno) => Err(Fatal::setup(format!("cannot block signals: {}", errno.desc()))),
    };
    let code = outcome.unwrap_or_else(|fatal| {
        log::line(format_args!("{}", fatal.message));
        fatal.code
    });
    std::process::exit(code);
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
    });
    let context = event_loop::Context { signals: signalfd, watcher, notify, spawner };
    let code = event_loop::run(supervisor, context);
    foreground.restore();
    Ok(code)
}

/// The `--watch-path`s, or by default the command's executable resolved through PATH. A
/// command that is not there is 127, as when it is executed, not a watch set-up error.
fn watch_paths(config: &Config) -> Result<Vec<PathBuf>, Fatal> {
    if !config.watch_paths.is_empty() {
        return Ok(config.watch_paths.clone());
    }
    let command = config.command.first().map(|c| c.as_os_str()).unwrap_or_default();
    watch::resolve_command(command, std::env::var_os("PATH").as_deref())
        .map(|path| vec![path])
        .ok_or_else(|| spawn::not_found(&command.to_string_lossy()))
}
