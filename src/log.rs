//! Logging: one line per message on stderr, prefixed `scinit: `, no colour.
//!
//! The level is global because it is set once, right after argument parsing, and read from
//! every module; an atomic keeps that free of `unsafe` and of locks. Each line is formatted into
//! one buffer and written with a single `write` so that lines from scinit and its children do
//! not interleave mid-line on a shared stderr. A failed write is ignored: PID 1 must never die
//! because nobody reads its stderr (`eprintln!` would panic).

use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};

/// Log levels, from the quietest to the most verbose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error = 0,
    Warn = 1,
    Info = 2,
    Debug = 3,
}

impl Level {
    /// Parses the value of `SCINIT_LOG`. `None` for anything but the four level names.
    pub fn parse(value: &str) -> Option<Level> {
        match value.to_ascii_lowercase().as_str() {
            "error" => Some(Level::Error),
            "warn" => Some(Level::Warn),
            "info" => Some(Level::Info),
            "debug" => Some(Level::Debug),
            _ => None,
        }
    }
}

static LEVEL: AtomicU8 = AtomicU8::new(Level::Warn as u8);

pub fn set_level(level: Level) {
    LEVEL.store(level as u8, Ordering::Relaxed);
}

pub fn enabled(level: Level) -> bool {
    level as u8 <= LEVEL.load(Ordering::Relaxed)
}

/// Writes `scinit: <message>` on stderr, whatever the level (used for usage and fatal errors).
pub fn line(message: std::fmt::Arguments<'_>) {
    let text = format!("scinit: {message}\n");
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// Writes the message if `level` is enabled.
pub fn at(level: Level, message: std::fmt::Arguments<'_>) {
    if enabled(level) {
        line(message);
    }
}

/// The macros check the level before anything else: their arguments (signal names, pids) are
/// not even evaluated for a line that is not written, which is most lines on a busy PID 1.
macro_rules! log_at {
    ($level:expr, $($arg:tt)*) => {
        if $crate::log::enabled($level) {
            $crate::log::line(format_args!($($arg)*))
        }
    };
}
macro_rules! error {
    ($($arg:tt)*) => { log_at!($crate::log::Level::Error, $($arg)*) };
}
macro_rules! warn {
    ($($arg:tt)*) => { log_at!($crate::log::Level::Warn, $($arg)*) };
}
macro_rules! info {
    ($($arg:tt)*) => { log_at!($crate::log::Level::Info, $($arg)*) };
}
macro_rules! debug {
    ($($arg:tt)*) => { log_at!($crate::log::Level::Debug, $($arg)*) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_names_parse_case_insensitively() {
        assert_eq!(Level::parse("error"), Some(Level::Error));
        assert_eq!(Level::parse("WARN"), Some(Level::Warn));
        assert_eq!(Level::parse("Info"), Some(Level::Info));
        assert_eq!(Level::parse("debug"), Some(Level::Debug));
        assert_eq!(Level::parse("trace"), None);
        assert_eq!(Level::parse(""), None);
    }

    #[test]
    fn levels_are_ordered_from_quiet_to_verbose() {
        assert!(
            Level::Error < Level::Warn && Level::Warn < Level::Info && Level::Info < Level::Debug
        );
    }
}
