//! The footprint of PID 1 (issue 2): idle RSS, anonymous memory, thread count, binary size and the latency of
//! forwarding a signal to the child, for the init under test and for `tini-static` measured in the
//! same run. The target is ratios ≤ 1.5 against tini; they are reported, not asserted, since
//! figures on a shared 2-core machine are no pass/fail material. RSS of a static binary is mostly
//! its clean text pages (the kernel maps the cached neighbours of every fault), so it follows the
//! binary's size; the anonymous memory (heap, stack, data: `Anonymous` of `smaps_rollup`) is
//! reported beside it, as what the init allocates at run time, and so is the whole container's
//! memory as Docker's stats report it (cgroup v1 or v2, page cache excluded).
//!
//! Latency is measured without Docker in the path: the host sends SIGUSR1 straight to PID 1's
//! host pid and compares its `CLOCK_MONOTONIC` with the one the child logs on receipt (a
//! container shares the host's monotonic clock).

use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::sys::time::TimeSpec;
use nix::time::{clock_gettime, ClockId};
use nix::unistd::Pid;

use crate::infrastructure::expectations::Verdict;
use crate::infrastructure::results::{self, Measurement, Record};
use crate::infrastructure::{Init, InitKind, InitProfile, Scenario};
use crate::utils::wait::secs;

/// Signals per init: enough for a stable median, few enough to stay under a second or two.
const SAMPLES: usize = 200;

#[derive(Debug, Clone)]
struct Footprint {
    label: String,
    rss_kib: f64,
    anon_kib: f64,
    container_kib: f64,
    threads: f64,
    binary_bytes: Option<f64>,
    forward_median_us: f64,
    forward_p95_us: f64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn footprint_of_the_init_under_test_against_tini() -> Result<()> {
    let under_test = InitProfile::under_test()?.clone();
    let tini = InitProfile::reference(InitKind::Tini)?;
    let subject = measure(under_test).await?;
    let reference = measure(tini).await?;
    for f in [&subject, &reference] {
        let mut m = vec![
            figure("idle_rss", f.rss_kib, "KiB"),
            figure("idle_anonymous", f.anon_kib, "KiB"),
            figure("container_memory", f.container_kib, "KiB"),
            figure("threads", f.threads, "count"),
            figure("forward_median", f.forward_median_us, "us"),
            figure("forward_p95", f.forward_p95_us, "us"),
        ];
        if let Some(bytes) = f.binary_bytes {
            m.push(figure("binary_size", bytes, "bytes"));
        }
        if f.label == subject.label {
            m.push(figure("rss_ratio_to_tini", f.rss_kib / reference.rss_kib, "x"));
            m.push(figure("anonymous_ratio_to_tini", f.anon_kib / reference.anon_kib, "x"));
            m.push(figure("forward_ratio_to_tini", f.forward_median_us / reference.forward_median_us, "x"));
        }
        results::append(&Record {
            scenario: "footprint",
            init: &f.label,
            verdict: Verdict::Pass,
            detail: "",
            duration_ms: 0,
            measurements: &m,
        })?;
    }
    println!("{subject:?}\n{reference:?}");
    Ok(())
}

fn figure(name: &str, value: f64, unit: &str) -> Measurement {
    Measurement { name: name.to_string(), value, unit: unit.to_string() }
}

async fn measure(profile: InitProfile) -> Result<Footprint> {
    let label = profile.label.clone();
    let binary_bytes = match &profile.binary {
        Some(path) => Some(std::fs::metadata(path).with_context(|| path.display().to_string())?.len() as f64),
        None => None,
    };
    let init = Init::new(profile, "footprint");
    let c = Scenario::new(&init).child(["testkit", "signals"]).start().await?;
    let pid1 = Pid::from_raw(i32::try_from(c.state().await?.host_pid)?);
    let mut follower = c.follow();
    let mut latencies_us = Vec::with_capacity(SAMPLES);
    let started = Instant::now();
    for _ in 0..SAMPLES {
        let sent = monotonic_ns()?;
        kill(pid1, Signal::SIGUSR1).with_context(|| format!("sending SIGUSR1 to PID 1 (host pid {pid1})"))?;
        let fact = follower.next_fact("signal", secs(5), |f| f.get("name") == Some("SIGUSR1")).await?;
        let received: u64 = fact.num("mono_ns")?;
        latencies_us.push(received.saturating_sub(sent) as f64 / 1000.0);
    }
    let status = std::fs::read_to_string(format!("/proc/{pid1}/status")).context("reading PID 1's status")?;
    let rollup =
        std::fs::read_to_string(format!("/proc/{pid1}/smaps_rollup")).context("reading PID 1's smaps_rollup")?;
    let footprint = Footprint {
        label,
        rss_kib: status_field(&status, "VmRSS")?,
        anon_kib: status_field(&rollup, "Anonymous")?,
        container_kib: c.memory_usage().await? as f64 / 1024.0,
        threads: status_field(&status, "Threads")?,
        binary_bytes,
        forward_median_us: percentile(&mut latencies_us, 50.0),
        forward_p95_us: percentile(&mut latencies_us, 95.0),
    };
    if started.elapsed() > secs(60) {
        bail!("{SAMPLES} signals took {:?}: the init is not keeping up", started.elapsed());
    }
    Ok(footprint)
}

fn monotonic_ns() -> Result<u64> {
    let now: TimeSpec = clock_gettime(ClockId::CLOCK_MONOTONIC)?;
    Ok(u64::try_from(now.tv_sec())? * 1_000_000_000 + u64::try_from(now.tv_nsec())?)
}

/// A numeric field of `/proc/<pid>/status` (`VmRSS:  1234 kB` gives 1234).
fn status_field(status: &str, name: &str) -> Result<f64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow!("{name} missing in /proc status"))
}

fn percentile(values: &mut [f64], p: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * (values.len().saturating_sub(1)) as f64).round() as usize;
    values.get(rank).copied().unwrap_or(f64::NAN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_status_fields_and_percentiles_are_read() {
        let status = "Name:\tscinit\nVmRSS:\t    1024 kB\nThreads:\t1\n";
        assert_eq!(status_field(status, "VmRSS").unwrap(), 1024.0);
        assert_eq!(status_field(status, "Threads").unwrap(), 1.0);
        assert!(status_field(status, "VmSwap").is_err());
        assert_eq!(percentile(&mut [3.0, 1.0, 2.0], 50.0), 2.0);
    }
}
