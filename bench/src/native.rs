//! Wall-clock figures, measured natively (no valgrind), each init as PID 1 of a fresh PID
//! namespace with `testkit signals` as its child: the latency of forwarding a signal, and the
//! memory PID 1 holds once idle. In a round, scinit and tini-static run side by side and take
//! turns, one signal each, so that whatever the machine does meanwhile hits both; only their
//! ratio is judged.

use std::ffi::OsString;
use std::path::Path;

use anyhow::{Context, Result};
use nix::sys::signal::Signal;
use nix::time::{clock_gettime, ClockId};

use crate::pid1::{field, Pid1};

/// Signals per init and round (the issue asks for at least 1000).
pub const SAMPLES: usize = 1000;
/// Signals sent first and not counted: the first ones fault the forwarding path's pages in.
const WARM_UP: usize = 20;

/// One init's figures in one round.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Figures {
    pub forward_median_us: f64,
    pub forward_p99_us: f64,
    pub idle_rss_kib: f64,
    pub idle_anonymous_kib: f64,
}

/// One round: `init -- testkit signals` for each of `inits` at once, `SAMPLES` SIGUSR1 to each
/// (sent one at a time, the next once the child has logged the last), then each PID 1's
/// memory, idle in its wait.
///
/// Both inits and their children run on one CPU (`taskset`), the same for both: on a shared
/// two-core machine whatever else runs tends to sit on one core, and an init that the scheduler
/// put there forwarded signals up to 30% slower than the other in the same round; pinned, the
/// ratio holds within 2% even with the machine busy.
///
/// Address-space randomisation is off for the inits (`setarch -R`, which then execs the init as
/// PID 1): where the kernel loads a position-independent binary such as scinit decides which
/// neighbouring pages fault-around maps with each page it touches, and with randomisation on,
/// scinit's RSS moves by about 10% from run to run (tini-static is not position-independent and
/// does not move). With it off, both are the same to the page every run.
pub fn round(inits: &[&Path], testkit: &Path, work: &Path) -> Result<Vec<Figures>> {
    std::fs::create_dir_all(work)?;
    let cpu = last_cpu().to_string();
    let mut running = Vec::new();
    for (i, init) in inits.iter().enumerate() {
        let argv: Vec<OsString> = vec![
            "taskset".into(),
            "-c".into(),
            cpu.as_str().into(),
            "setarch".into(),
            "x86_64".into(),
            "-R".into(),
            init.into(),
            "--".into(),
            testkit.into(),
            "signals".into(),
        ];
        let name = init.file_name().unwrap_or_default().to_string_lossy().into_owned();
        let mut pid1 = Pid1::start(&name, &argv, &work.join(format!("stderr.{i}")))?;
        pid1.expect("ready", &["cmd=signals"])?;
        running.push((pid1, Vec::with_capacity(SAMPLES)));
    }
    for i in 0..WARM_UP + SAMPLES {
        for (pid1, latencies) in running.iter_mut() {
            let latency = forward_once(pid1)?;
            if i >= WARM_UP {
                latencies.push(latency);
            }
        }
    }
    let mut figures = Vec::new();
    for (mut pid1, latencies) in running {
        let pid = pid1.host_pid()?.as_raw();
        figures.push(Figures {
            forward_median_us: percentile(&latencies, 50.0),
            forward_p99_us: percentile(&latencies, 99.0),
            idle_rss_kib: kib(&format!("/proc/{pid}/status"), "VmRSS")?,
            idle_anonymous_kib: kib(&format!("/proc/{pid}/smaps_rollup"), "Anonymous")?,
        });
        pid1.signal(Signal::SIGTERM)?;
        pid1.finish()?;
    }
    Ok(figures)
}

/// The highest-numbered CPU this process may run on (the inits' CPU).
fn last_cpu() -> usize {
    let allowed = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0));
    let count = nix::sched::CpuSet::count();
    allowed.map_or(0, |set| {
        (0..count).rev().find(|&cpu| set.is_set(cpu).unwrap_or(false)).unwrap_or(0)
    })
}

/// Sends one SIGUSR1 and waits for the child to log it; returns the latency in microseconds,
/// from the host's clock just before `kill` to the child's on receipt (one monotonic clock).
fn forward_once(pid1: &mut Pid1) -> Result<f64> {
    let sent = monotonic_ns()?;
    pid1.signal(Signal::SIGUSR1)?;
    let line = pid1.expect("signal", &["name=SIGUSR1"])?;
    let received: u64 = field(&line, "mono_ns")
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("no mono_ns in {line:?}"))?;
    Ok(received.saturating_sub(sent) as f64 / 1000.0)
}

fn monotonic_ns() -> Result<u64> {
    let now = clock_gettime(ClockId::CLOCK_MONOTONIC)?;
    Ok(u64::try_from(now.tv_sec())? * 1_000_000_000 + u64::try_from(now.tv_nsec())?)
}

/// The number of a `Name:   1234 kB` line of a `/proc` file.
fn kib(path: &str, name: &str) -> Result<f64> {
    let text = std::fs::read_to_string(path).with_context(|| path.to_string())?;
    parse_kib(&text, name).with_context(|| format!("no {name} in {path}"))
}

fn parse_kib(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let value = line.strip_prefix(name)?.strip_prefix(':')?;
        value.split_whitespace().next()?.parse().ok()
    })
}

/// The `p`th percentile (nearest rank) of `values`; 0 when empty.
pub fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 50.0), 50.0);
        assert_eq!(percentile(&values, 99.0), 99.0);
        assert_eq!(percentile(&[3.0, 1.0, 2.0], 50.0), 2.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }

    #[test]
    fn kib_figures_are_read_by_name() {
        let status = "Name:\tscinit\nVmRSS:\t    1024 kB\nThreads:\t1\n";
        assert_eq!(parse_kib(status, "VmRSS"), Some(1024.0));
        assert_eq!(parse_kib("Rss:  900 kB\nAnonymous:    84 kB\n", "Anonymous"), Some(84.0));
        assert_eq!(parse_kib(status, "VmHWM"), None);
    }
}
