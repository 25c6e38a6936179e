//! The harness: starts scinit (static build) as a plain process on the host, where it makes
//! itself a child subreaper, with the static `testkit` as its child, and waits on events
//! (a stdout line, an exit) with deadlines. Nothing here sleeps for a fixed time.
//!
//! [`Scinit`] is a guard: dropping it SIGKILLs scinit and every descendant it still has, so a
//! failing test leaves no process behind.

use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use nix::libc;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::static_build;

/// How long any single expected event may take. Generous: these are liveness bounds, not
/// performance figures, and the machine may be busy building.
pub const DEADLINE: Duration = Duration::from_secs(15);

/// The static binaries, built once per test run.
pub fn binaries() -> (PathBuf, PathBuf) {
    match static_build::static_binaries() {
        Ok(built) => (built.path("scinit"), built.path("testkit")),
        Err(error) => panic!("{error}"),
    }
}

/// Path of the static testkit, as a string for command lines.
pub fn testkit() -> String {
    binaries().1.display().to_string()
}

/// A TCP port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local_addr").port()
}

/// `key=value` field of a testkit fact line.
pub fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split(' ').find_map(|word| word.strip_prefix(key)?.strip_prefix('='))
}

/// One running scinit.
pub struct Scinit {
    pid: i32,
    lines: Receiver<String>,
    seen: Vec<String>,
    status: Receiver<i32>,
    exit_code: Option<i32>,
    stderr: Receiver<String>,
    stderr_seen: Vec<String>,
}

/// Starts `scinit OPTIONS... testkit CHILD_ARGS...`, with `env` added to scinit's environment.
pub fn start(options: &[&str], child: &[&str], env: &[(&str, &str)]) -> Scinit {
    let mut command: Vec<OsString> = options.iter().map(OsString::from).collect();
    command.push(testkit().into());
    command.extend(child.iter().map(OsString::from));
    start_command(command, env.iter().copied())
}

/// No extra environment, for [`start_command`].
pub const NO_ENV: [(&str, &str); 0] = [];

/// Starts scinit with exactly these arguments, and `env` added to its environment.
pub fn start_command<K, V>(args: Vec<OsString>, env: impl IntoIterator<Item = (K, V)>) -> Scinit
where
    K: AsRef<OsStr>,
    V: AsRef<OsStr>,
{
    let mut command = Command::new(binaries().0);
    command.args(args).envs(env);
    launch(command)
}

/// Starts scinit in the working directory `dir`, with `child` as its command.
pub fn start_in(dir: &Path, child: &[&str]) -> Scinit {
    let mut command = Command::new(binaries().0);
    command.current_dir(dir).arg(testkit()).args(child);
    launch(command)
}

/// Starts scinit with exactly these arguments, allowed only `max_fds` open files
/// (`RLIMIT_NOFILE`) and inheriting none but stdin, stdout and stderr: a test then knows which of
/// scinit's own fds is the first that does not fit.
pub fn start_with_fd_limit(args: Vec<OsString>, max_fds: u64) -> Scinit {
    let mut command = Command::new(binaries().0);
    command.args(args);
    let limit = libc::rlimit { rlim_cur: max_fds, rlim_max: max_fds };
    // SAFETY: the closure makes only async-signal-safe system calls, as required between fork
    // and exec in a multi-threaded process.
    unsafe {
        command.pre_exec(move || {
            // CLOEXEC rather than closing: std's own exec-error pipe must stay open until exec.
            let flags = libc::CLOSE_RANGE_CLOEXEC;
            if libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, flags) != 0
                || libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    launch(command)
}

fn launch(mut command: Command) -> Scinit {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn scinit");
    let pid = child.id() as i32;
    let stdout = child.stdout.take().expect("stdout");
    let stderr = child.stderr.take().expect("stderr");
    let lines = forward_lines(stdout);
    let stderr = forward_lines(stderr);
    let (status_tx, status) = mpsc::channel();
    std::thread::spawn(move || {
        use std::os::unix::process::ExitStatusExt;
        if let Ok(exit) = child.wait() {
            let code = exit.code().or_else(|| exit.signal().map(|s| 128 + s)).unwrap_or(-1);
            let _ = status_tx.send(code);
        }
    });
    Scinit {
        pid,
        lines,
        seen: Vec::new(),
        status,
        exit_code: None,
        stderr,
        stderr_seen: Vec::new(),
    }
}

/// Sends every line read from `pipe` into a channel, from a thread, until EOF.
fn forward_lines(pipe: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

impl Scinit {
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Sends a signal to scinit itself.
    pub fn signal(&self, signal: Signal) {
        kill(Pid::from_raw(self.pid), signal).expect("signal scinit");
    }

    /// Waits for the next stdout line matching `matches`; lines before it are consumed.
    #[track_caller]
    pub fn line(&mut self, what: &str, matches: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            match self.lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if matches(&line) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!("timed out waiting for {what}\n{}", self.report())
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("stdout closed before {what}\n{}", self.report())
                }
            }
        }
    }

    /// Waits for a line starting with `prefix` (e.g. `"ready "`, `"signal name=SIGUSR1"`).
    #[track_caller]
    pub fn line_starting(&mut self, prefix: &str) -> String {
        self.line(&format!("a line starting '{prefix}'"), |l| l.starts_with(prefix))
    }

    /// Waits for the handshake of the testkit subcommand `cmd`; returns its pid.
    #[track_caller]
    pub fn ready(&mut self, cmd: &str) -> i32 {
        let line = self.line(&format!("the handshake of '{cmd}'"), |l| {
            l.starts_with("ready ") && field(l, "cmd") == Some(cmd)
        });
        field(&line, "pid").and_then(|p| p.parse().ok()).expect("pid in handshake")
    }

    /// Whether scinit is still running (without waiting).
    pub fn running(&mut self) -> bool {
        if self.exit_code.is_none() {
            self.exit_code = self.status.try_recv().ok();
        }
        self.exit_code.is_none()
    }

    /// Waits for scinit to exit; returns its exit code (128+N for a death by signal N).
    #[track_caller]
    pub fn exit_code(&mut self) -> i32 {
        if let Some(code) = self.exit_code {
            return code;
        }
        match self.status.recv_timeout(DEADLINE) {
            Ok(code) => {
                self.exit_code = Some(code);
                code
            }
            Err(_) => panic!("scinit did not exit in time\n{}", self.report()),
        }
    }

    /// Waits for a stderr line containing `text` (scinit's logs).
    #[track_caller]
    pub fn stderr_line(&mut self, text: &str) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            match self.stderr.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => {
                    self.stderr_seen.push(line.clone());
                    if line.contains(text) {
                        return line;
                    }
                }
                Err(_) => panic!("no stderr line containing '{text}'\n{}", self.report()),
            }
        }
    }

    /// scinit's whole stderr, one `\n` after each line; waits for it to exit first.
    #[track_caller]
    pub fn stderr(&mut self) -> String {
        self.exit_code();
        let deadline = Instant::now() + DEADLINE;
        while let Ok(line) =
            self.stderr.recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            self.stderr_seen.push(line);
        }
        self.stderr_seen.iter().map(|l| format!("{l}\n")).collect()
    }

    /// scinit's whole stdout (its children's lines), seen or not; waits for it to exit first.
    #[track_caller]
    pub fn stdout(&mut self) -> Vec<String> {
        self.exit_code();
        let deadline = Instant::now() + DEADLINE;
        while let Ok(line) =
            self.lines.recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            self.seen.push(line);
        }
        self.seen.clone()
    }

    /// Everything seen so far, for failure messages.
    pub fn report(&self) -> String {
        format!(
            "--- scinit pid {} exit {:?}\n--- stdout so far:\n{}\n--- stderr so far:\n{}",
            self.pid,
            self.exit_code,
            self.seen.join("\n"),
            self.stderr_seen.join("\n")
        )
    }
}

impl Drop for Scinit {
    fn drop(&mut self) {
        if !self.running() {
            return;
        }
        // Children first (found while scinit is still their parent), then scinit.
        for pid in descendants(self.pid) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        let _ = kill(Pid::from_raw(self.pid), Signal::SIGKILL);
    }
}

/// One process as `/proc/<pid>/stat` shows it.
#[derive(Debug, Clone)]
pub struct Proc {
    pub pid: i32,
    pub ppid: i32,
    pub state: char,
}

/// Every process in `/proc`.
pub fn processes() -> Vec<Proc> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            let rest = &stat[stat.rfind(')')? + 2..];
            let mut fields = rest.split(' ');
            let state = fields.next()?.chars().next()?;
            let ppid = fields.next()?.parse().ok()?;
            Some(Proc { pid, ppid, state })
        })
        .collect()
}

/// The value of `name` in the environment `pid` was started with, if set.
pub fn environ(pid: i32, name: &str) -> Option<String> {
    let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    let prefix = format!("{name}=");
    environ.split(|b| *b == 0).find_map(|entry| {
        let value = entry.strip_prefix(prefix.as_bytes())?;
        Some(String::from_utf8_lossy(value).into_owned())
    })
}

/// Transitive descendants of `root`.
pub fn descendants(root: i32) -> Vec<i32> {
    let table = processes();
    let mut found = Vec::new();
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        for p in table.iter().filter(|p| p.ppid == parent) {
            found.push(p.pid);
            frontier.push(p.pid);
        }
    }
    found
}

/// Retries `condition` until it holds or the deadline passes. For states that produce no event
/// to wait on (the process table); the retry interval is short and bounded by the deadline.
#[track_caller]
pub fn wait_until(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}
