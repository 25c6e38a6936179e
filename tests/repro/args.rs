//! The repro's input, parsed without I/O: its command line (what `make repro` passes from SCRIPT,
//! INITS, SIGNALS, DOCKER_ARGS and TIMEOUT), the signal schedule and the subset of `docker run`
//! options it maps onto the harness's container spec. Every error is one line that names the
//! variable, the offending item and what is accepted; `self_test.rs` checks them.

use std::time::Duration;

/// The usage line, for errors about the command line itself.
pub const USAGE: &str =
    "usage: repro --script PATH [--inits \"NAME ...\"] [--signals SIG@TIME,...] \
                         [--docker-args \"...\"] [--timeout TIME] | --self-test";

/// What the DOCKER_ARGS error names as supported.
pub const SUPPORTED_DOCKER_ARGS: &str = "-e K=V, --memory N[k|m|g], --pids-limit N, -t, \
                                         --network host, --health-cmd CMD, --health-interval TIME";

/// The grace after the last signal when TIMEOUT is not given.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);

/// Docker's own `docker stop` timeout, for a bare `STOP`.
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// The health-check interval when `--health-cmd` comes without `--health-interval`: Docker's
/// 30 s would outlast most runs.
pub const DEFAULT_HEALTH_INTERVAL: Duration = Duration::from_secs(1);

/// No time of the schedule (or TIMEOUT) may be later: a run is meant to take seconds.
const LATEST: Duration = Duration::from_secs(3600);

/// What the program was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// No arguments: `cargo test` running every target, which must not start containers.
    Nothing,
    /// A test runner listing tests (`--list`): there are none.
    List,
    /// Check the parsers and exit (`make unit-test`).
    SelfTest,
    Repro(Input),
}

/// The raw values, as the Makefile passes them; empty means not given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Input {
    pub script: String,
    pub inits: String,
    pub signals: String,
    pub docker_args: String,
    pub timeout: String,
}

pub fn command(args: &[String]) -> Result<Command, String> {
    match args {
        [] => return Ok(Command::Nothing),
        [only] if only == "--self-test" => return Ok(Command::SelfTest),
        _ if args.iter().any(|a| a == "--list") => return Ok(Command::List),
        _ => {}
    }
    let mut input = Input::default();
    let mut rest = args.iter();
    while let Some(flag) = rest.next() {
        let (name, inline) = match flag.split_once('=') {
            Some((name, value)) => (name, Some(value.to_string())),
            None => (flag.as_str(), None),
        };
        let slot = match name {
            "--script" => &mut input.script,
            "--inits" => &mut input.inits,
            "--signals" => &mut input.signals,
            "--docker-args" => &mut input.docker_args,
            "--timeout" => &mut input.timeout,
            _ => return Err(format!("unknown argument `{flag}`; {USAGE}")),
        };
        *slot = match inline.or_else(|| rest.next().cloned()) {
            Some(value) => value,
            None => return Err(format!("`{name}` needs a value; {USAGE}")),
        };
    }
    Ok(Command::Repro(input))
}

/// One step of the schedule: what is sent, `at` after the container's start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub at: Duration,
    pub action: Action,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `docker kill -s SIG`, the signal as Docker takes it: `SIGTERM`, `SIGRTMIN+3`, `9`.
    Kill(String),
    /// `docker stop -t T`: the stop signal, then SIGKILL after T.
    Stop(Duration),
}

impl Event {
    /// How the schedule names it: `SIGTERM@1s`, `STOP:10@2.5s`.
    pub fn label(&self) -> String {
        format!("{}@{}", self.action.label(), seconds(self.at))
    }
}

impl Action {
    pub fn label(&self) -> String {
        match self {
            Action::Kill(signal) => signal.clone(),
            Action::Stop(t) => format!("STOP:{}", t.as_secs()),
        }
    }

    /// The Docker command it stands for.
    pub fn docker(&self) -> String {
        match self {
            Action::Kill(signal) => format!("docker kill -s {signal}"),
            Action::Stop(t) => format!("docker stop -t {}", t.as_secs()),
        }
    }
}

/// `1.5s`, `2s`: a time of the schedule as SIGNALS spells it.
pub fn seconds(d: Duration) -> String {
    format!("{}s", d.as_secs_f64())
}

/// SIGNALS: `SIG@TIME` items separated by commas, in any order; returned in time order (items
/// at the same time keep theirs). SIG is a signal name with or without `SIG` (`TERM`, `SIGINT`,
/// `RTMIN+3`, `RTMAX-1`) or number (1-64); bare `STOP` is `docker stop` with Docker's 10 s
/// timeout and `STOP:N` with N seconds, so SIGSTOP itself is spelled `SIGSTOP` or `19`.
pub fn signals(text: &str) -> Result<Vec<Event>, String> {
    let mut events = Vec::new();
    for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let bad =
            |why: String| format!("SIGNALS: `{item}`: {why}; expected SIG@TIME, e.g. TERM@1s");
        let (what, at) = item.split_once('@').ok_or_else(|| bad("no `@TIME`".into()))?;
        let at = duration(at).map_err(&bad)?;
        let action = action(what.trim()).map_err(&bad)?;
        events.push(Event { at, action });
    }
    events.sort_by_key(|e| e.at);
    Ok(events)
}

fn action(what: &str) -> Result<Action, String> {
    let upper = what.to_ascii_uppercase();
    if upper == "STOP" {
        return Ok(Action::Stop(DEFAULT_STOP_TIMEOUT));
    }
    if let Some(t) = upper.strip_prefix("STOP:") {
        let secs: u64 = t.parse().ok().filter(|s| *s <= LATEST.as_secs()).ok_or_else(|| {
            format!("`STOP:{t}` needs whole seconds (docker stop -t), e.g. STOP:3")
        })?;
        return Ok(Action::Stop(Duration::from_secs(secs)));
    }
    signal(&upper).map(Action::Kill)
}

/// The standard signals by the names Docker knows (moby's signal table for Linux).
const NAMES: [&str; 36] = [
    "ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT", "KILL",
    "PIPE", "POLL", "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM", "TRAP", "TSTP",
    "TTIN", "TTOU", "URG", "USR1", "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ", "RTMIN", "RTMAX",
];

/// A signal as Docker takes it (`SIGTERM`, `SIGRTMIN+3`, `15`), from an upper-case spelling.
fn signal(upper: &str) -> Result<String, String> {
    if upper.is_empty() {
        return Err("no signal before `@`".into());
    }
    if upper.bytes().all(|b| b.is_ascii_digit()) {
        return match upper.parse::<u32>() {
            Ok(n @ 1..=64) => Ok(n.to_string()),
            _ => Err(format!("signal number {upper} is not 1-64")),
        };
    }
    let name = upper.strip_prefix("SIG").unwrap_or(upper);
    let realtime = [("RTMIN+", "RTMIN"), ("RTMAX-", "RTMAX")]
        .into_iter()
        .find_map(|(prefix, base)| name.strip_prefix(prefix).map(|n| (base, n)));
    if let Some((base, n)) = realtime {
        // Docker names RTMIN+1..RTMIN+15 and RTMAX-14..RTMAX-1; the rest by number.
        let limit = if base == "RTMIN" { 15 } else { 14 };
        return match n.parse::<u32>() {
            Ok(k) if (1..=limit).contains(&k) => Ok(format!("SIG{name}")),
            _ => Err(format!("`{name}` is outside {base}±1-{limit}; give the number instead")),
        };
    }
    if NAMES.contains(&name) {
        return Ok(format!("SIG{name}"));
    }
    Err(format!("`{upper}` is no signal (TERM, SIGINT, RTMIN+3, 15, ...; STOP is docker stop)"))
}

/// A time: seconds with an optional fraction, `s` or `ms` (`1s`, `1.5`, `250ms`), at most an
/// hour.
pub fn duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, scale) = if let Some(n) = text.strip_suffix("ms") {
        (n, 1e-3)
    } else {
        (text.strip_suffix('s').unwrap_or(text), 1.0)
    };
    let valid = !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    let secs = number.parse::<f64>().ok().filter(|_| valid).map(|n| n * scale);
    match secs {
        Some(s) if s <= LATEST.as_secs_f64() => Ok(Duration::from_secs_f64(s)),
        Some(_) => Err(format!("time `{text}` is over an hour")),
        None => Err(format!("`{text}` is no time (1s, 1.5s, 250ms)")),
    }
}

/// TIMEOUT: how long a run may go on after the last signal (after its start without signals).
pub fn timeout(text: &str) -> Result<Duration, String> {
    if text.trim().is_empty() {
        return Ok(DEFAULT_TIMEOUT);
    }
    duration(text).map_err(|e| format!("TIMEOUT: {e}"))
}

/// INITS: names separated by spaces or commas, in order, each once.
pub fn inits(text: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for name in text.split([' ', ',', '\t', '\n']).filter(|n| !n.is_empty()) {
        if !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
    }
    names
}

/// The `docker run` options DOCKER_ARGS may carry, as the container spec takes them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DockerArgs {
    pub env: Vec<(String, String)>,
    pub memory_bytes: Option<i64>,
    pub pids_limit: Option<i64>,
    pub tty: bool,
    pub host_network: bool,
    /// `--health-cmd`: run as `/bin/sh -c CMD`, as Docker runs a `CMD-SHELL` check.
    pub health_cmd: Option<String>,
    pub health_interval: Option<Duration>,
}

/// DOCKER_ARGS: split like a shell line (quotes and backslashes), then each option in `-o V`,
/// `--opt V` or `--opt=V` form. Anything else is refused with the list of what is supported.
pub fn docker_args(text: &str) -> Result<DockerArgs, String> {
    let words = shell_words(text).map_err(|e| format!("DOCKER_ARGS: {e}"))?;
    let mut parsed = DockerArgs::default();
    let mut rest = words.iter();
    while let Some(word) = rest.next() {
        let (name, inline) = match word.split_once('=') {
            Some((name, value)) if name.starts_with("--") => (name, Some(value)),
            _ => (word.as_str(), None),
        };
        let mut value = |what: &str| {
            inline.map(str::to_string).or_else(|| rest.next().cloned()).ok_or_else(|| {
                format!("DOCKER_ARGS: `{name}` needs {what}; supported: {SUPPORTED_DOCKER_ARGS}")
            })
        };
        let bad = |why: String| format!("DOCKER_ARGS: `{name}`: {why}");
        match name {
            "-e" | "--env" => {
                let pair = value("K=V")?;
                match pair.split_once('=') {
                    Some((k, v)) if !k.is_empty() => parsed.env.push((k.into(), v.into())),
                    _ => return Err(bad(format!("`{pair}` is not K=V"))),
                }
            }
            "-m" | "--memory" => parsed.memory_bytes = Some(bytes(&value("a size")?).map_err(bad)?),
            "--pids-limit" => {
                let n = value("a number")?;
                let pids = n.parse::<i64>().ok().filter(|p| *p > 0);
                parsed.pids_limit =
                    Some(pids.ok_or_else(|| bad(format!("`{n}` is not 1 or more")))?);
            }
            "-t" | "--tty" if inline.is_none() => parsed.tty = true,
            "--network" | "--net" => match value("host")?.as_str() {
                "host" => parsed.host_network = true,
                "bridge" | "default" => parsed.host_network = false,
                other => return Err(bad(format!("`{other}`: only host and bridge are supported"))),
            },
            "--health-cmd" => parsed.health_cmd = Some(value("a command")?),
            "--health-interval" => {
                parsed.health_interval = Some(duration(&value("a time")?).map_err(bad)?);
            }
            _ => {
                return Err(format!(
                    "DOCKER_ARGS: `{word}` is not supported; supported: {SUPPORTED_DOCKER_ARGS}"
                ))
            }
        }
    }
    if parsed.health_interval.is_some() && parsed.health_cmd.is_none() {
        return Err("DOCKER_ARGS: `--health-interval` needs `--health-cmd`".into());
    }
    Ok(parsed)
}

/// A `--memory` size: a whole number of bytes, or of `k`, `m` or `g` (with or without a `b`).
fn bytes(text: &str) -> Result<i64, String> {
    let lower = text.to_ascii_lowercase();
    let digits = lower.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = lower.split_at(digits);
    let scale: i64 = match unit.strip_suffix('b').unwrap_or(unit) {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        _ => return Err(format!("`{text}` is no size (64m, 1g, 524288k)")),
    };
    number
        .parse::<i64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("`{text}` is no size (64m, 1g, 524288k)"))
}

/// Splits `text` into words as a POSIX shell would, without expansions: blanks separate,
/// `'...'` is literal, `"..."` keeps blanks and takes `\` before `"`, `\`, `$` and `` ` ``, and
/// a `\` outside quotes escapes the next character.
pub fn shell_words(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' => words.extend(word.take()),
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => w.push(c),
                        None => return Err("a `'` is not closed".into()),
                    }
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => w.push(c),
                            Some(c) => w.extend(['\\', c]),
                            None => return Err("a `\"` is not closed".into()),
                        },
                        Some(c) => w.push(c),
                        None => return Err("a `\"` is not closed".into()),
                    }
                }
            }
            '\\' => {
                let escaped = chars.next().ok_or("a `\\` ends the line")?;
                word.get_or_insert_with(String::new).push(escaped);
            }
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    Ok(words)
}
