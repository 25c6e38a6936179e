//! One init as PID 1 of a fresh PID namespace, driven from the host.
//!
//! `unshare --pid --fork --mount-proc` starts the command as PID 1 of a new namespace with its
//! own `/proc`, so the init scans a tiny process table, as in a container. Its host pid is
//! unshare's only child, which is where the host sends its signals. Everything waits on what the
//! child prints (the testkit protocol, `images/README.md`), never on a fixed sleep.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// How long any one step may take, valgrind included: far beyond what a healthy run needs.
const STEP: Duration = Duration::from_secs(60);

/// The environment of every measured run: what a container gets by default, and nothing of the
/// caller's, so that counts do not depend on who runs the bench (glibc's start-up and scinit's
/// copy of the environment both scale with it).
pub const ENV: [(&str, &str); 3] = [
    ("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
    ("HOSTNAME", "bench"),
    ("HOME", "/root"),
];

pub struct Pid1 {
    unshare: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    host_pid: Option<Pid>,
    stderr: PathBuf,
    label: String,
}

impl Pid1 {
    /// Starts `argv` as PID 1 of a new PID namespace; its stdout is read line by line and its
    /// stderr goes to `stderr` (shown when something fails).
    pub fn start(label: &str, argv: &[OsString], stderr: &Path) -> Result<Pid1> {
        let mut command = Command::new("unshare");
        if !nix::unistd::geteuid().is_root() {
            command.args(["--user", "--map-root-user"]);
        }
        let log = std::fs::File::create(stderr).with_context(|| stderr.display().to_string())?;
        let mut unshare = command
            .args(["--pid", "--fork", "--mount-proc", "--"])
            .args(argv)
            .env_clear()
            .envs(ENV)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .context("cannot run unshare (util-linux)")?;
        let stdout = unshare.stdout.take().context("unshare's stdout")?;
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Pid1 {
            stdin: unshare.stdin.take(),
            unshare,
            lines,
            host_pid: None,
            stderr: stderr.to_path_buf(),
            label: label.to_string(),
        })
    }

    /// Waits for the next line that starts with `kind ` and has every `key=value` of `fields`;
    /// returns it. Lines before it are skipped.
    pub fn expect(&mut self, kind: &str, fields: &[&str]) -> Result<String> {
        let deadline = Instant::now() + STEP;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let mut words = line.split(' ');
                    if words.next() == Some(kind) {
                        let words: Vec<&str> = words.collect();
                        if fields.iter().all(|f| words.contains(f)) {
                            return Ok(line);
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    bail!("{}: no `{kind}` line within {STEP:?}{}", self.label, self.stderr_tail())
                }
                Err(RecvTimeoutError::Disconnected) => {
                    bail!("{}: exited before a `{kind}` line{}", self.label, self.stderr_tail())
                }
            }
        }
    }

    /// Writes one line to the child's stdin.
    pub fn say(&mut self, line: &str) -> Result<()> {
        let stdin = self.stdin.as_mut().context("stdin already closed")?;
        writeln!(stdin, "{line}").context("writing to the child's stdin")
    }

    /// The init's pid on the host: unshare's only child.
    pub fn host_pid(&mut self) -> Result<Pid> {
        if let Some(pid) = self.host_pid {
            return Ok(pid);
        }
        let parent = self.unshare.id() as i32;
        let deadline = Instant::now() + STEP;
        loop {
            if let Some(&pid) = children(parent).first() {
                let pid = Pid::from_raw(pid);
                self.host_pid = Some(pid);
                return Ok(pid);
            }
            if Instant::now() > deadline {
                bail!("{}: unshare {parent} has no child", self.label);
            }
            std::thread::yield_now();
        }
    }

    pub fn signal(&mut self, signal: Signal) -> Result<()> {
        let pid = self.host_pid()?;
        kill(pid, signal).with_context(|| format!("{}: kill {pid} {signal}", self.label))
    }

    /// Polls `done` (every millisecond, up to a minute) until it holds: for states nothing prints,
    /// such as the init's children being reaped.
    pub fn until(&mut self, what: &str, mut done: impl FnMut(Pid) -> bool) -> Result<()> {
        let pid = self.host_pid()?;
        let deadline = Instant::now() + STEP;
        while !done(pid) {
            if Instant::now() > deadline {
                bail!("{}: not {what} within {STEP:?}", self.label);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(())
    }

    /// Waits for the whole run to end (the init exits, then unshare); returns unshare's exit
    /// code (the init's, or 128+N).
    pub fn finish(mut self) -> Result<i32> {
        drop(self.stdin.take());
        let deadline = Instant::now() + STEP;
        loop {
            if let Some(status) = self.unshare.try_wait()? {
                use std::os::unix::process::ExitStatusExt;
                return Ok(status.code().or(status.signal().map(|s| 128 + s)).unwrap_or(-1));
            }
            if Instant::now() > deadline {
                let _ = self.unshare.kill();
                bail!("{}: still running after {STEP:?}{}", self.label, self.stderr_tail());
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn stderr_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(10)..].join("\n");
        if tail.is_empty() {
            String::new()
        } else {
            format!("; its stderr ends with:\n{tail}")
        }
    }
}

impl Drop for Pid1 {
    fn drop(&mut self) {
        // A run abandoned on an error must not outlive the bench: SIGKILL reaches a namespace's
        // init from outside, and its namespace dies with it.
        if self.unshare.try_wait().ok().flatten().is_none() {
            if let Some(pid) = self.host_pid {
                let _ = kill(pid, Signal::SIGKILL);
            }
            let _ = self.unshare.kill();
            let _ = self.unshare.wait();
        }
    }
}

/// The children of `pid` (`/proc/<pid>/task/<pid>/children`).
pub fn children(pid: i32) -> Vec<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// The state letter of `/proc/<pid>/stat` (`R`, `S`, `T`, `Z`, ...), if the process exists.
pub fn state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..].trim_start().chars().next()
}

/// The value of `key=` in a protocol line.
pub fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split(' ').find_map(|word| word.strip_prefix(key)?.strip_prefix('='))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_read_from_protocol_lines() {
        let line = "signal name=SIGUSR1 num=10 pid=2 sender=1 mono_ns=12345";
        assert_eq!(field(line, "mono_ns"), Some("12345"));
        assert_eq!(field(line, "name"), Some("SIGUSR1"));
        assert_eq!(field(line, "mono"), None);
    }

    #[test]
    fn states_and_children_are_read_from_proc() {
        let mut shell = Command::new("sh")
            .args(["-c", "sleep 10 & echo $!; wait"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(shell.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let sleep: i32 = line.trim().parse().unwrap();
        assert_eq!(children(shell.id() as i32), vec![sleep]);
        assert!(state(sleep).is_some());
        kill(Pid::from_raw(sleep), Signal::SIGKILL).unwrap();
        shell.wait().unwrap();
        assert_eq!(state(sleep), None);
    }
}
