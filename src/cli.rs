//! Command line and `SCINIT_LOG` → [`Config`].
//!
//! Options end at the first non-option argument (COMMAND) or at `--`: everything after goes to
//! the child verbatim, hyphenated arguments included. Every error is a one-line [`Fatal`]: a
//! usage error (2), except a bad bind address, which the contract counts as a set-up error (1).

use std::ffi::OsString;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::exit_status::Fatal;
use crate::log::Level;
use crate::notify;
use crate::signals;
use crate::supervisor::RestartOrder;

pub const HELP: &str = "\
scinit: a container init (PID 1) with signal forwarding, reaping, graceful shutdown and
zero-downtime restarts over inherited sockets.

Usage: scinit [OPTIONS] [--] COMMAND [ARGS...]

Options (stop at COMMAND; everything after it goes to the child verbatim):
  --ports <N[,N...]>               TCP ports to bind before starting the child, passed as fds
                                   3, 4, ... (repeatable)
  --bind-addr <IP>                 address to bind the ports on [default: 0.0.0.0]
  --reuse-port                     set SO_REUSEPORT on the ports: another process that sets it
                                   can bind them too, and the kernel splits connections
  --graceful-timeout-secs <S>      grace period before SIGKILL, fractions allowed [default: 5]
  --restart-delay-ms <MS>          pause between the old child's exit and the new start [default: 0]
  --live-reload                    restart the child when watched files change
  --watch-path <P>                 path to watch (repeatable; implies --live-reload)
                                   [default: COMMAND resolved through PATH]
  --debounce-ms <MS>               quiet time after the last change before restarting [default: 500]
  --restart-signal <SIG|none>      signal that restarts the child; with none it is forwarded
                                   [default: SIGHUP]
  --stop-signal <SIG>              signal that stops the child, for a restart and in place of a
                                   received SIGTERM; SIGCONT follows it [default: SIGTERM]
  --restart-order <ORDER>          stop-first: stop the old child, then start the new one;
                                   start-first: start the new one and stop the old one once the
                                   new one is ready [default: stop-first]
  --notify                         give children NOTIFY_SOCKET (sd_notify): READY=1 from the new
                                   child or below it makes it ready
  --notify-socket <PATH|@NAME>     the NOTIFY_SOCKET address (implies --notify)
                                   [default: an abstract name chosen by the kernel]
  --ready-delay-ms <MS>            without --notify, a new child is ready this long after its
                                   start [default: 1000]
  --ready-timeout-secs <S>         a new child not ready by then is stopped and the restart
                                   abandoned; fractions allowed [default: 30]
  --zombie-reap-interval-ms <MS>   accepted and ignored (scinit is event-driven)
  --signal-poll-interval-ms <MS>   accepted and ignored (scinit is event-driven)
  -h, --help                       print this help and exit
  -V, --version                    print the version and exit

Environment:
  SCINIT_LOG=error|warn|info|debug  log level on stderr [default: warn]
";

/// Everything scinit needs to run, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub ports: Vec<u16>,
    pub bind_addr: IpAddr,
    /// `SO_REUSEPORT` on the ports: off by default, so that a port in use is an error.
    pub reuse_port: bool,
    pub graceful_timeout: Duration,
    pub restart_delay: Duration,
    pub live_reload: bool,
    pub watch_paths: Vec<PathBuf>,
    pub debounce: Duration,
    pub restart_signal: Option<i32>,
    pub stop_signal: i32,
    pub restart_order: RestartOrder,
    /// Where the notify socket is (`--notify`, `--notify-socket`); none without them.
    pub notify: Option<notify::Address>,
    pub ready_delay: Duration,
    pub ready_timeout: Duration,
    pub log_level: Level,
    pub command: Vec<OsString>,
}

/// What the command line asks for.
#[derive(Debug, PartialEq)]
pub enum Parsed {
    /// Boxed: a `Config` is large beside the other variants, and is built once.
    Run(Box<Config>),
    Help,
    Version,
}

/// Parses the arguments (without argv\[0\]) and the value of `SCINIT_LOG`.
pub fn parse<I>(args: I, scinit_log: Option<OsString>) -> Result<Parsed, Fatal>
where
    I: IntoIterator<Item = OsString>,
{
    let mut config = Config {
        ports: Vec::new(),
        bind_addr: IpAddr::from([0, 0, 0, 0]),
        reuse_port: false,
        graceful_timeout: Duration::from_secs(5),
        restart_delay: Duration::ZERO,
        live_reload: false,
        watch_paths: Vec::new(),
        debounce: Duration::from_millis(500),
        restart_signal: Some(nix::libc::SIGHUP),
        stop_signal: nix::libc::SIGTERM,
        restart_order: RestartOrder::StopFirst,
        notify: None,
        ready_delay: Duration::from_secs(1),
        ready_timeout: Duration::from_secs(30),
        log_level: Level::Warn,
        command: Vec::new(),
    };
    let mut bind_addr_text: Option<String> = None;

    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let Some(text) = arg.to_str() else {
            // A non-UTF-8 word cannot be one of our options: it is the command.
            config.command.push(arg);
            break;
        };
        if text == "--" {
            break;
        }
        if !text.starts_with('-') || text == "-" {
            config.command.push(arg);
            break;
        }
        let (name, inline) = match text.split_once('=') {
            Some((name, value)) if name.starts_with("--") => {
                (name.to_string(), Some(value.to_string()))
            }
            _ => (text.to_string(), None),
        };
        match name.as_str() {
            "-h" | "--help" => return Ok(Parsed::Help),
            "-V" | "--version" => return Ok(Parsed::Version),
            // A flag takes no value: `--live-reload=no` is an error rather than silently "yes".
            "--live-reload" | "--reuse-port" if inline.is_some() => {
                return Err(Fatal::usage(format!("option '{name}' takes no value")));
            }
            "--live-reload" => config.live_reload = true,
            "--notify" if inline.is_some() => {
                return Err(Fatal::usage(format!("option '{name}' takes no value")));
            }
            // After `--notify-socket`, `--notify` keeps its address.
            "--notify" => {
                config.notify.get_or_insert(notify::Address::Auto);
            }
            "--reuse-port" => config.reuse_port = true,
            _ => {
                let value = match inline {
                    Some(value) => value,
                    None => match args.next() {
                        Some(value) => value.into_string().map_err(|_| {
                            Fatal::usage(format!("option '{name}': value is not valid UTF-8"))
                        })?,
                        None => return Err(Fatal::usage(format!("option '{name}' needs a value"))),
                    },
                };
                apply(&mut config, &mut bind_addr_text, &name, &value)?;
            }
        }
    }
    config.command.extend(args);

    if config.command.is_empty() {
        return Err(Fatal::usage("missing COMMAND (try 'scinit --help')"));
    }
    if let Some(value) = scinit_log.filter(|v| !v.is_empty()) {
        let text = value.to_string_lossy();
        config.log_level = Level::parse(&text).ok_or_else(|| {
            Fatal::usage(format!("SCINIT_LOG='{text}' is not one of error, warn, info, debug"))
        })?;
    }
    if let Some(text) = bind_addr_text {
        config.bind_addr = parse_ip(&text).ok_or_else(|| {
            Fatal::setup(format!(
                "--bind-addr '{text}' is not an IP address (hostnames are not resolved)"
            ))
        })?;
    }
    Ok(Parsed::Run(Box::new(config)))
}

fn apply(
    config: &mut Config,
    bind_addr: &mut Option<String>,
    name: &str,
    value: &str,
) -> Result<(), Fatal> {
    match name {
        "--ports" => {
            for part in value.split(',') {
                let port =
                    part.trim().parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| {
                        Fatal::usage(format!("--ports: '{part}' is not a port number (1-65535)"))
                    })?;
                if config.ports.contains(&port) {
                    return Err(Fatal::usage(format!("--ports: port {port} is given twice")));
                }
                config.ports.push(port);
            }
        }
        "--bind-addr" => *bind_addr = Some(value.to_string()),
        "--graceful-timeout-secs" => config.graceful_timeout = seconds(name, value)?,
        "--ready-timeout-secs" => {
            config.ready_timeout = seconds(name, value)?;
            if config.ready_timeout.is_zero() {
                return Err(Fatal::usage(format!("{name}: '{value}' is not more than 0")));
            }
        }
        "--ready-delay-ms" => config.ready_delay = millis(name, value)?,
        "--restart-delay-ms" => config.restart_delay = millis(name, value)?,
        "--debounce-ms" => config.debounce = millis(name, value)?,
        "--watch-path" => {
            config.watch_paths.push(PathBuf::from(value));
            config.live_reload = true;
        }
        "--restart-signal" => config.restart_signal = restart_signal(value)?,
        "--stop-signal" => config.stop_signal = stop_signal(value)?,
        "--restart-order" => {
            config.restart_order = match value {
                "stop-first" => RestartOrder::StopFirst,
                "start-first" => RestartOrder::StartFirst,
                _ => {
                    return Err(Fatal::usage(format!(
                        "{name}: '{value}' is not stop-first or start-first"
                    )))
                }
            }
        }
        "--notify-socket" => {
            let address = notify::Address::parse(value)
                .map_err(|why| Fatal::usage(format!("{name}: '{value}': {why}")))?;
            config.notify = Some(address);
        }
        "--zombie-reap-interval-ms" | "--signal-poll-interval-ms" => {
            // Accepted for compatibility with older scinit command lines; nothing polls.
            millis(name, value)?;
        }
        _ => return Err(Fatal::usage(format!("unknown option '{name}' (try 'scinit --help')"))),
    }
    Ok(())
}

/// Durations are capped at about 136 years, so that `Instant + duration` deadlines can never
/// overflow (which would panic inside PID 1's loop). Nobody waits longer on purpose.
fn bounded(duration: Duration) -> Duration {
    duration.min(Duration::from_secs(u64::from(u32::MAX)))
}

fn seconds(name: &str, value: &str) -> Result<Duration, Fatal> {
    decimal_seconds(value)
        .map(bounded)
        .ok_or_else(|| Fatal::usage(format!("{name}: '{value}' is not a number of seconds")))
}

/// `5`, `0.5`, `.25` or `10.`: whole seconds and a decimal fraction, to the nanosecond (digits
/// beyond are dropped). Parsed by hand rather than as an `f64`: float parsing's code and tables
/// are about 30 KiB of scinit's binary, mapped into every container's PID 1, for two options.
fn decimal_seconds(value: &str) -> Option<Duration> {
    let (whole, fraction) = value.split_once('.').unwrap_or((value, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() && fraction.is_empty() || !digits(whole) || !digits(fraction) {
        return None;
    }
    // More digits than a u64 holds is more than `bounded` allows anyway.
    let secs =
        whole.bytes().try_fold(0u64, |n, b| n.checked_mul(10)?.checked_add(u64::from(b - b'0')));
    let nanos = fraction
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(9)
        .fold(0u32, |n, b| n * 10 + u32::from(b - b'0'));
    Some(Duration::new(secs.unwrap_or(u64::MAX), nanos))
}

fn millis(name: &str, value: &str) -> Result<Duration, Fatal> {
    value.parse::<u64>().map(|ms| bounded(Duration::from_millis(ms))).map_err(|_| {
        Fatal::usage(format!("{name}: '{value}' is not a whole number of milliseconds"))
    })
}

fn restart_signal(value: &str) -> Result<Option<i32>, Fatal> {
    if value.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    let signo = signals::parse(value)
        .ok_or_else(|| Fatal::usage(format!("--restart-signal: unknown signal '{value}'")))?;
    // The restart signal must be one scinit can receive and would otherwise forward. glibc
    // keeps 32 and 33 (below SIGRTMIN) for itself and never lets them be blocked, so they
    // would never reach scinit's signalfd.
    if signals::classify(signo, None) != signals::Class::Forward
        || signo == nix::libc::SIGKILL
        || signo == nix::libc::SIGSTOP
        || signals::FAULT_SIGNALS.iter().any(|s| *s as i32 == signo)
        || (nix::libc::SIGSYS + 1..nix::libc::SIGRTMIN()).contains(&signo)
    {
        return Err(Fatal::usage(format!(
            "--restart-signal: {} cannot be the restart signal",
            signals::name(signo)
        )));
    }
    Ok(Some(signo))
}

/// Any signal the parser knows, but SIGKILL and SIGSTOP: the first leaves the child no grace
/// period to use, the second would only freeze it.
fn stop_signal(value: &str) -> Result<i32, Fatal> {
    let signo = signals::parse(value)
        .ok_or_else(|| Fatal::usage(format!("--stop-signal: unknown signal '{value}'")))?;
    if signo == nix::libc::SIGKILL || signo == nix::libc::SIGSTOP {
        return Err(Fatal::usage(format!(
            "--stop-signal: {} cannot be the stop signal",
            signals::name(signo)
        )));
    }
    Ok(signo)
}

/// An IP literal, IPv6 optionally in brackets (`[::1]`). Never a hostname: resolving names
/// would need a resolver in a static PID 1 and make the bound address depend on DNS.
fn parse_ip(text: &str) -> Option<IpAddr> {
    let bare = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')).unwrap_or(text);
    bare.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    fn run(args: &[&str]) -> Config {
        match parse(os(args), None) {
            Ok(Parsed::Run(config)) => *config,
            other => panic!("{args:?} gave {other:?}"),
        }
    }

    fn error(args: &[&str]) -> Fatal {
        match parse(os(args), None) {
            Err(e) => e,
            other => panic!("{args:?} should fail, gave {other:?}"),
        }
    }

    #[test]
    fn defaults_apply_when_only_a_command_is_given() {
        let c = run(&["app"]);
        assert_eq!(c.command, os(&["app"]));
        assert!(c.ports.is_empty());
        assert_eq!(c.bind_addr, "0.0.0.0".parse::<IpAddr>().unwrap());
        assert!(!c.reuse_port);
        assert_eq!(c.graceful_timeout, Duration::from_secs(5));
        assert_eq!(c.restart_delay, Duration::ZERO);
        assert!(!c.live_reload);
        assert_eq!(c.debounce, Duration::from_millis(500));
        assert_eq!(c.restart_signal, Some(nix::libc::SIGHUP));
        assert_eq!(c.stop_signal, nix::libc::SIGTERM);
        assert_eq!(c.restart_order, RestartOrder::StopFirst);
        assert_eq!(c.notify, None);
        assert_eq!(c.ready_delay, Duration::from_secs(1));
        assert_eq!(c.ready_timeout, Duration::from_secs(30));
        assert_eq!(c.log_level, Level::Warn);
    }

    #[test]
    fn every_option_is_parsed_in_both_spellings() {
        let c = run(&[
            "--ports",
            "8080,9090",
            "--ports=7070",
            "--bind-addr",
            "::1",
            "--reuse-port",
            "--graceful-timeout-secs=0.5",
            "--restart-delay-ms",
            "250",
            "--live-reload",
            "--watch-path",
            "/srv",
            "--watch-path=/etc/app.conf",
            "--debounce-ms=100",
            "--restart-signal",
            "USR2",
            "--stop-signal",
            "SIGINT",
            "--restart-order=start-first",
            "--notify-socket",
            "/run/notify",
            "--ready-delay-ms=250",
            "--ready-timeout-secs",
            "2.5",
            "--zombie-reap-interval-ms",
            "10",
            "--signal-poll-interval-ms=10",
            "app",
        ]);
        assert_eq!(c.ports, vec![8080, 9090, 7070]);
        assert_eq!(c.bind_addr, "::1".parse::<IpAddr>().unwrap());
        assert!(c.reuse_port);
        assert_eq!(c.graceful_timeout, Duration::from_millis(500));
        assert_eq!(c.restart_delay, Duration::from_millis(250));
        assert!(c.live_reload);
        assert_eq!(c.watch_paths, vec![PathBuf::from("/srv"), PathBuf::from("/etc/app.conf")]);
        assert_eq!(c.debounce, Duration::from_millis(100));
        assert_eq!(c.restart_signal, Some(nix::libc::SIGUSR2));
        assert_eq!(c.stop_signal, nix::libc::SIGINT);
        assert_eq!(c.restart_order, RestartOrder::StartFirst);
        assert_eq!(c.notify, Some(notify::Address::Path("/run/notify".into())));
        assert_eq!(c.ready_delay, Duration::from_millis(250));
        assert_eq!(c.ready_timeout, Duration::from_millis(2500));
        assert_eq!(c.command, os(&["app"]));
    }

    #[test]
    fn notify_chooses_an_address_unless_notify_socket_gives_one_in_any_order() {
        assert_eq!(run(&["--notify", "app"]).notify, Some(notify::Address::Auto));
        let named = Some(notify::Address::Abstract("scinit".into()));
        assert_eq!(run(&["--notify-socket=@scinit", "app"]).notify, named);
        assert_eq!(run(&["--notify", "--notify-socket", "@scinit", "app"]).notify, named);
        assert_eq!(run(&["--notify-socket", "@scinit", "--notify", "app"]).notify, named);
        assert_eq!(
            run(&["--restart-order", "stop-first", "app"]).restart_order,
            RestartOrder::StopFirst
        );
    }

    #[test]
    fn the_stop_signal_takes_what_the_restart_signal_parser_takes() {
        assert_eq!(run(&["--stop-signal", "QUIT", "app"]).stop_signal, nix::libc::SIGQUIT);
        assert_eq!(run(&["--stop-signal=10", "app"]).stop_signal, nix::libc::SIGUSR1);
        assert_eq!(
            run(&["--stop-signal", "SIGRTMIN+2", "app"]).stop_signal,
            nix::libc::SIGRTMIN() + 2
        );
        assert_eq!(run(&["--stop-signal", "sigterm", "app"]).stop_signal, nix::libc::SIGTERM);
    }

    #[test]
    fn options_stop_at_the_command_and_hyphenated_child_args_pass_verbatim() {
        let c = run(&["--ports", "80", "app", "-x", "--ports", "9", "--", "--help"]);
        assert_eq!(c.ports, vec![80]);
        assert_eq!(c.command, os(&["app", "-x", "--ports", "9", "--", "--help"]));
    }

    #[test]
    fn double_dash_ends_options_even_before_a_hyphenated_command() {
        let c = run(&["--live-reload", "--", "-weird-name", "-h"]);
        assert!(c.live_reload);
        assert_eq!(c.command, os(&["-weird-name", "-h"]));
    }

    #[test]
    fn huge_durations_are_capped_so_deadlines_cannot_overflow() {
        let c = run(&[
            "--graceful-timeout-secs",
            "100000000000000000000000.5",
            "--restart-delay-ms",
            "18446744073709551615",
            "app",
        ]);
        let cap = Duration::from_secs(u64::from(u32::MAX));
        assert_eq!((c.graceful_timeout, c.restart_delay), (cap, cap));
        assert!(std::time::Instant::now().checked_add(cap).is_some());
    }

    #[test]
    fn seconds_are_decimal_numbers_to_the_nanosecond() {
        let ok = |v: &str| decimal_seconds(v).unwrap_or_else(|| panic!("{v} rejected"));
        assert_eq!(ok("5"), Duration::from_secs(5));
        assert_eq!(ok("0.5"), Duration::from_millis(500));
        assert_eq!(ok(".25"), Duration::from_millis(250));
        assert_eq!(ok("10."), Duration::from_secs(10));
        assert_eq!(ok("1.0000000019"), Duration::new(1, 1));
        for bad in ["", ".", "-1", "+1", "1e3", "inf", "nan", "1.2.3", " 1", "0x10", "1,5"] {
            assert_eq!(decimal_seconds(bad), None, "{bad:?}");
        }
        let err = error(&["--graceful-timeout-secs", "1e3", "app"]);
        assert_eq!(err.message, "--graceful-timeout-secs: '1e3' is not a number of seconds");
        assert_eq!(err.code, 2);
    }

    #[test]
    fn watch_path_implies_live_reload() {
        assert!(run(&["--watch-path", "/srv", "app"]).live_reload);
    }

    #[test]
    fn restart_signal_none_disables_restarts() {
        assert_eq!(run(&["--restart-signal", "none", "app"]).restart_signal, None);
        assert_eq!(
            run(&["--restart-signal=SIGRTMIN+2", "app"]).restart_signal,
            Some(nix::libc::SIGRTMIN() + 2)
        );
        assert_eq!(
            run(&["--restart-signal", "RTMAX-1", "app"]).restart_signal,
            Some(nix::libc::SIGRTMAX() - 1)
        );
        assert_eq!(
            run(&["--restart-signal", "12", "app"]).restart_signal,
            Some(nix::libc::SIGUSR2)
        );
    }

    #[test]
    fn ipv6_literals_are_accepted_with_or_without_brackets() {
        assert_eq!(run(&["--bind-addr", "[::]", "app"]).bind_addr, "::".parse::<IpAddr>().unwrap());
        assert_eq!(
            run(&["--bind-addr=127.0.0.1", "app"]).bind_addr,
            "127.0.0.1".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn help_and_version_win_wherever_they_appear_before_the_command() {
        assert_eq!(parse(os(&["-h"]), None), Ok(Parsed::Help));
        assert_eq!(parse(os(&["--ports", "80", "--help", "app"]), None), Ok(Parsed::Help));
        assert_eq!(parse(os(&["-V"]), None), Ok(Parsed::Version));
        assert_eq!(parse(os(&["--version"]), None), Ok(Parsed::Version));
        // After COMMAND they belong to the child.
        assert_eq!(run(&["app", "--help"]).command, os(&["app", "--help"]));
    }

    #[test]
    fn usage_errors_exit_2_with_one_line() {
        let cases: &[&[&str]] = &[
            &[],
            &["--ports", "80"],
            &["--"],
            &["--nope", "app"],
            &["--ports"],
            &["--ports", "http", "app"],
            &["--ports", "0", "app"],
            &["--ports", "70000", "app"],
            &["--ports", "80,80", "app"],
            &["--graceful-timeout-secs", "-1", "app"],
            &["--graceful-timeout-secs", "soon", "app"],
            &["--restart-delay-ms", "1.5", "app"],
            &["--debounce-ms", "-3", "app"],
            &["--restart-signal", "SIGNOPE", "app"],
            &["--restart-signal", "TERM", "app"],
            &["--restart-signal", "KILL", "app"],
            &["--restart-signal", "CHLD", "app"],
            &["--restart-signal", "SEGV", "app"],
            &["--restart-signal", "RTMIN+-1", "app"],
            &["--restart-signal", "RTMIN+2147483647", "app"],
            &["--restart-signal", "32", "app"],
            &["--restart-signal", "33", "app"],
            &["--live-reload=yes", "app"],
            &["--reuse-port=1", "app"],
            &["--zombie-reap-interval-ms", "x", "app"],
            &["--stop-signal", "KILL", "app"],
            &["--stop-signal", "SIGSTOP", "app"],
            &["--stop-signal", "19", "app"],
            &["--stop-signal", "NOPE", "app"],
            &["--stop-signal", "RTMIN+-1", "app"],
            &["--stop-signal", "app"],
            &["--restart-order", "start-last", "app"],
            &["--restart-order", "", "app"],
            &["--notify=yes", "app"],
            &["--notify-socket", "relative/path", "app"],
            &["--notify-socket", "@", "app"],
            &["--notify-socket", "", "app"],
            &["--ready-delay-ms", "-1", "app"],
            &["--ready-timeout-secs", "0", "app"],
            &["--ready-timeout-secs", "0.0000000001", "app"],
            &["--ready-timeout-secs", "-2", "app"],
            &["--ready-timeout-secs", "soon", "app"],
        ];
        let mut failures = Vec::new();
        for args in cases {
            match parse(os(args), None) {
                Err(e) if e.code == 2 && !e.message.contains('\n') && !e.message.is_empty() => {}
                other => failures.push(format!("{args:?} -> {other:?}")),
            }
        }
        assert!(failures.is_empty(), "not usage errors:\n{}", failures.join("\n"));
    }

    #[test]
    fn hostnames_are_rejected_as_a_setup_error() {
        let e = error(&["--bind-addr", "localhost", "app"]);
        assert_eq!(e.code, 1);
        assert!(e.message.contains("localhost"), "{}", e.message);
    }

    #[test]
    fn scinit_log_sets_the_level_and_rejects_unknown_values() {
        let level = |v: &str| parse(os(&["app"]), Some(v.into()));
        let level_of = |v: &str| match level(v) {
            Ok(Parsed::Run(config)) => Some(config.log_level),
            _ => None,
        };
        assert_eq!(level_of("debug"), Some(Level::Debug));
        assert_eq!(level_of(""), Some(Level::Warn));
        assert_eq!(level("loud").map(|_| ()).unwrap_err().code, 2);
    }

    #[test]
    fn non_utf8_arguments_reach_the_child() {
        use std::os::unix::ffi::OsStringExt;
        let odd = OsString::from_vec(vec![b'a', 0xff]);
        let args = vec![OsString::from("app"), odd.clone()];
        match parse(args, None) {
            Ok(Parsed::Run(c)) => assert_eq!(c.command[1], odd),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn help_mentions_every_option_and_the_ignored_ones() {
        for option in [
            "--ports",
            "--bind-addr",
            "--reuse-port",
            "--graceful-timeout-secs",
            "--restart-delay-ms",
            "--live-reload",
            "--watch-path",
            "--debounce-ms",
            "--restart-signal",
            "--stop-signal",
            "--restart-order",
            "--notify",
            "--notify-socket",
            "--ready-delay-ms",
            "--ready-timeout-secs",
            "--zombie-reap-interval-ms",
            "--signal-poll-interval-ms",
            "--help",
            "--version",
            "SCINIT_LOG",
        ] {
            assert!(HELP.contains(option), "{option}");
        }
        assert!(HELP.contains("accepted and ignored"));
    }
}
