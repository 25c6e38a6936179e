//! The footprint of PID 1 (issue 2): idle RSS, anonymous memory, thread count, binary size and
//! the latency of forwarding a signal to the child, for the init under test and for
//! `tini-static` measured in the same run. The target is ratios ≤ 1.5 against tini; they are
//! reported, not asserted, since figures on a shared 2-core machine are no pass/fail material.
//! RSS of a static binary is mostly its clean text pages (the kernel maps the cached neighbours
//! of every fault), so it follows the binary's size; the anonymous memory (heap, stack, data:
//! `Anonymous` of `smaps_rollup`) is reported beside it, as what the init allocates at run time,
//! and so is the whole container's memory as Docker's stats report it (cgroup v1 or v2, page
//! cache excluded).
//!
//! Latency is measured without Docker in the path: the host sends SIGUSR1 straight to PID 1's
//! host pid and compares its `CLOCK_MONOTONIC` with the one the child logs on receipt (a
//! container shares the host's monotonic clock).

use std::time::Instant;

use anyhow::{bail, Context, Result};
use nix::sys::signal::Signal;
use nix::sys::time::TimeSpec;
use nix::time::{clock_gettime, ClockId};

use crate::infrastructure::run::benchmark;
use crate::infrastructure::{ContainerSpec, Init, Run};
use crate::utils::stats::percentile;
use crate::utils::wait::secs;

/// Signals per init: enough for a stable median, few enough to stay under a second or two.
const SAMPLES: usize = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn footprint_of_the_init_under_test_against_tini() {
    let inits = match (Init::under_test(), Init::reference("tini")) {
        (Ok(under_test), Ok(tini)) => vec![under_test.clone(), tini],
        (Err(e), _) | (_, Err(e)) => panic!("{e:#}"),
    };
    benchmark("footprint", inits, |runs| async move {
        let mut rss = Vec::new();
        let mut anonymous = Vec::new();
        let mut forward = Vec::new();
        for run in &runs {
            let f = measure(run).await?;
            rss.push(f.rss_kib);
            anonymous.push(f.anon_kib);
            forward.push(f.forward_median_us);
        }
        // The first run is the init under test, the last tini.
        runs[0].record("rss_ratio_to_tini", rss[0] / rss[1], "x");
        runs[0].record("anonymous_ratio_to_tini", anonymous[0] / anonymous[1], "x");
        runs[0].record("forward_ratio_to_tini", forward[0] / forward[1], "x");
        Ok(())
    })
    .await;
}

struct Footprint {
    rss_kib: f64,
    anon_kib: f64,
    forward_median_us: f64,
}

/// Measures `run`'s init and records every figure in `run`.
async fn measure(run: &Run) -> Result<Footprint> {
    if let Some(path) = &run.init().binary {
        let bytes = std::fs::metadata(path).with_context(|| path.display().to_string())?.len();
        run.record("binary_size", bytes as f64, "bytes");
    }
    let c = ContainerSpec::new(run).child(["testkit", "signals"]).start().await?;
    let pid1 = c.host_pid1().await?;
    let mut follower = c.follow();
    let mut latencies_us = Vec::with_capacity(SAMPLES);
    let started = Instant::now();
    for _ in 0..SAMPLES {
        let sent = monotonic_ns()?;
        pid1.kill(Signal::SIGUSR1)?;
        let fact =
            follower.next_fact("signal", secs(5), |f| f.get("name") == Some("SIGUSR1")).await?;
        let received: u64 = fact.num("mono_ns")?;
        latencies_us.push(received.saturating_sub(sent) as f64 / 1000.0);
    }
    if started.elapsed() > secs(60) {
        bail!("{SAMPLES} signals took {:?}: the init is not keeping up", started.elapsed());
    }
    let status = pid1.status()?;
    let footprint = Footprint {
        rss_kib: status.number("VmRSS")? as f64,
        anon_kib: pid1.anonymous_kib()? as f64,
        forward_median_us: percentile(&latencies_us, 50.0),
    };
    run.record("idle_rss", footprint.rss_kib, "KiB");
    run.record("idle_anonymous", footprint.anon_kib, "KiB");
    run.record("container_memory", c.memory_usage().await? as f64 / 1024.0, "KiB");
    run.record("threads", status.number("Threads")? as f64, "count");
    run.record("forward_median", footprint.forward_median_us, "us");
    run.record("forward_p95", percentile(&latencies_us, 95.0), "us");
    Ok(footprint)
}

fn monotonic_ns() -> Result<u64> {
    let now: TimeSpec = clock_gettime(ClockId::CLOCK_MONOTONIC)?;
    Ok(u64::try_from(now.tv_sec())? * 1_000_000_000 + u64::try_from(now.tv_nsec())?)
}
