//! Instruction counts under callgrind: what an init executes for a workload, repeatable to a few
//! instructions where wall-clock figures move by 10% run to run.
//!
//! Each workload runs the init under `valgrind --tool=callgrind` as PID 1 of a fresh PID
//! namespace; its children run natively (valgrind does not follow exec), so only the init's own
//! instructions are counted. Per-event figures come from two runs that differ only in the
//! number of events (N and 2N): start-up and shutdown cancel out.

use std::ffi::OsString;
use std::path::Path;

use anyhow::{bail, Context, Result};
use nix::sys::signal::Signal;

use crate::pid1::{self, Pid1};

/// Events per run (the second run has twice as many): enough that a few instructions of jitter
/// vanish, few enough to stay within seconds under valgrind.
pub const SIGNALS: u32 = 100;
pub const ORPHANS: u32 = 50;
pub const RESTARTS: u32 = 5;

/// What one run does between the init's start and its exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// `-- /bin/true`: start, exec, the child's exit, exit.
    Exec,
    /// `-- testkit signals`; N SIGUSR1, each sent once the previous one has been logged by the
    /// child; then SIGTERM.
    Signals(u32),
    /// N orphans exit while the init is stopped, so that one wake-up reaps them all, however the
    /// scheduler spreads their exits; then SIGTERM.
    Orphans(u32),
    /// N restart signals (SIGHUP), each once the previous new child has said `ready`; then
    /// SIGTERM.
    Restarts(u32),
}

/// Instruction counts of one init.
#[derive(Debug, Clone, PartialEq)]
pub struct Counts {
    pub start_to_exec: f64,
    pub per_signal: f64,
    pub per_orphan: f64,
    /// Only for inits that restart their child.
    pub per_restart: Option<f64>,
}

/// Measures every count of `init` (scinit if `restarts`, which tini cannot do).
pub fn measure(init: &Path, testkit: &Path, restarts: bool, work: &Path) -> Result<Counts> {
    let per = |one: fn(u32) -> Workload, n: u32| -> Result<f64> {
        let single = run(init, testkit, one(n), work)?;
        let double = run(init, testkit, one(2 * n), work)?;
        Ok((double as f64 - single as f64) / f64::from(n))
    };
    Ok(Counts {
        start_to_exec: run(init, testkit, Workload::Exec, work)? as f64,
        per_signal: per(Workload::Signals, SIGNALS)?,
        per_orphan: per(Workload::Orphans, ORPHANS)?,
        per_restart: if restarts { Some(per(Workload::Restarts, RESTARTS)?) } else { None },
    })
}

/// Runs `workload` once under callgrind; returns the init's total instruction count.
pub fn run(init: &Path, testkit: &Path, workload: Workload, work: &Path) -> Result<u64> {
    std::fs::create_dir_all(work)?;
    // `%p`: a forked child that never execs would write its own file; PID 1's is ours.
    let out = work.join("callgrind.1");
    let _ = std::fs::remove_file(&out);
    let mut argv: Vec<OsString> = vec![
        "valgrind".into(),
        "--tool=callgrind".into(),
        "-q".into(),
        format!("--callgrind-out-file={}", work.join("callgrind.%p").display()).into(),
        init.into(),
        "--".into(),
    ];
    argv.extend(child_argv(testkit, workload));
    let name = init.file_name().unwrap_or_default().to_string_lossy();
    let label = format!("{name} under callgrind, {workload:?}");
    let mut pid1 = Pid1::start(&label, &argv, &work.join("stderr"))?;
    drive(&mut pid1, workload)?;
    let code = pid1.finish()?;
    // `true` exits 0; otherwise the child dies of the SIGTERM passed on, and the init with it.
    let expected = if workload == Workload::Exec { 0 } else { 128 + Signal::SIGTERM as i32 };
    if code != expected {
        bail!("{label}: exit code {code}, expected {expected}");
    }
    let text = std::fs::read_to_string(&out).with_context(|| out.display().to_string())?;
    total(&text).with_context(|| format!("{}: no total", out.display()))
}

/// The command the init runs for `workload`.
fn child_argv(testkit: &Path, workload: Workload) -> Vec<OsString> {
    match workload {
        Workload::Exec => vec!["/bin/true".into()],
        Workload::Signals(_) | Workload::Restarts(_) => vec![testkit.into(), "signals".into()],
        // The shell waits for the host's go, so the host can stop the init first.
        Workload::Orphans(n) => vec![
            "/bin/sh".into(),
            "-c".into(),
            format!("echo waiting; read go; exec \"$0\" tree orphans {n} -- \"$0\" signals").into(),
            testkit.into(),
        ],
    }
}

fn drive(pid1: &mut Pid1, workload: Workload) -> Result<()> {
    match workload {
        Workload::Exec => return Ok(()),
        Workload::Signals(n) => {
            pid1.expect("ready", &["cmd=signals"])?;
            for _ in 0..n {
                pid1.signal(Signal::SIGUSR1)?;
                pid1.expect("signal", &["name=SIGUSR1"])?;
            }
        }
        Workload::Orphans(n) => {
            pid1.expect("waiting", &[])?;
            pid1.signal(Signal::SIGSTOP)?;
            pid1.until("stopped", |pid| pid1::state(pid.as_raw()) == Some('T'))?;
            pid1.say("go")?;
            pid1.expect("orphans", &[&format!("count={n}")])?;
            pid1.expect("ready", &["cmd=signals"])?;
            let zombies = |pid: nix::unistd::Pid| {
                let children = pid1::children(pid.as_raw());
                children.iter().filter(|&&c| pid1::state(c) == Some('Z')).count()
            };
            pid1.until("holding every orphan", |pid| zombies(pid) == n as usize)?;
            // SIGCONT resumes it (and is itself forwarded: the same in both runs).
            pid1.signal(Signal::SIGCONT)?;
            pid1.until("done reaping", |pid| pid1::children(pid.as_raw()).len() == 1)?;
        }
        Workload::Restarts(n) => {
            pid1.expect("ready", &["cmd=signals"])?;
            for _ in 0..n {
                pid1.signal(Signal::SIGHUP)?;
                pid1.expect("ready", &["cmd=signals"])?;
            }
        }
    }
    pid1.signal(Signal::SIGTERM)
}

/// The total `Ir` of a callgrind output file (its `summary:` or `totals:` line).
pub fn total(callgrind_out: &str) -> Option<u64> {
    callgrind_out.lines().find_map(|line| {
        let value = line.strip_prefix("summary:").or_else(|| line.strip_prefix("totals:"))?;
        value.split_whitespace().next()?.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_total_comes_from_the_summary_or_totals_line() {
        let out =
            "version: 1\ncreator: callgrind-3.19.0\nevents: Ir\nfn=main\n3 4\nsummary: 196902\n";
        assert_eq!(total(out), Some(196902));
        assert_eq!(total("events: Ir\ntotals: 40906\n"), Some(40906));
        assert_eq!(total("events: Ir\n"), None);
    }
}
