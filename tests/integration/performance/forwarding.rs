//! Signal-forwarding latency of an init as PID 1: from the host's `kill(2)` of PID 1's host pid
//! until the child logs the signal, both on `CLOCK_MONOTONIC` (a container shares the host's
//! monotonic clock). Docker is not in the path: `docker kill` ends in the same `kill(2)` after
//! milliseconds of API plumbing. Signals are sent one at a time, each once the previous one was
//! logged, so none coalesce. The container's memory as Docker's stats report it (page cache
//! excluded) is read at the end, after every signal went through.

use anyhow::Result;
use nix::sys::signal::Signal;

use super::{median, monotonic_ns};
use crate::infrastructure::{ContainerSpec, Run};
use crate::utils::stats::percentile;
use crate::utils::wait::secs;

#[derive(Debug, Clone, Default)]
pub struct Forwarding {
    /// One latency per signal, in sending order.
    pub latencies_us: Vec<f64>,
    pub container_kib: f64,
}

/// `signals` SIGUSR1s to `run`'s init, one at a time. `progress` hears how many went through.
pub async fn measure(
    run: &Run,
    signals: usize,
    mut progress: impl FnMut(usize),
) -> Result<Forwarding> {
    let c = ContainerSpec::new(run).child(["testkit", "signals"]).start().await?;
    let pid1 = c.host_pid1().await?;
    let mut follower = c.follow();
    let mut latencies_us = Vec::with_capacity(signals);
    for n in 1..=signals {
        let sent = monotonic_ns()?;
        pid1.kill(Signal::SIGUSR1)?;
        let fact =
            follower.next_fact("signal", secs(5), |f| f.get("name") == Some("SIGUSR1")).await?;
        let received: u64 = fact.num("mono_ns")?;
        latencies_us.push(received.saturating_sub(sent) as f64 / 1000.0);
        progress(n);
    }
    let container_kib = c.memory_usage().await? as f64 / 1024.0;
    c.remove().await?;
    run.record("forward_median", median(&latencies_us), "us");
    run.record("forward_p90", percentile(&latencies_us, 90.0), "us");
    run.record("forward_p99", percentile(&latencies_us, 99.0), "us");
    run.record("container_memory", container_kib, "KiB");
    Ok(Forwarding { latencies_us, container_kib })
}
