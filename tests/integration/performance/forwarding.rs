//! Signal-forwarding latency of an init as PID 1: from the moment a sender inside the container
//! signals PID 1 until the child logs the signal, both on `CLOCK_MONOTONIC`. The sender is
//! `testkit signal-pid1` run with `docker exec`: `docker kill` ends in the same `kill(2)` after
//! milliseconds of API plumbing, and a sender beside PID 1 needs nothing but the Docker API
//! (no host pid, no host `kill`). Signals are sent one at a time, each once the child has
//! acknowledged the previous one on a FIFO (`testkit signals --ack`), so none coalesce. The
//! container's memory as Docker's stats report it (page cache excluded) is read at the end,
//! after every signal went through.

use anyhow::{bail, Result};

use super::median;
use crate::infrastructure::{ContainerSpec, Run};
use crate::utils::child_report::Fact;
use crate::utils::stats::percentile;
use crate::utils::wait::secs;

/// The child's acknowledgement FIFO, in the container.
const ACK: &str = "/tmp/.scinit-bench-ack";

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
    let c = ContainerSpec::new(run).child(["testkit", "signals", "--ack", ACK]).start().await?;
    let mut follower = c.follow();
    let count = signals.to_string();
    let sender = ["testkit", "signal-pid1", "--signal", "USR1", "--count", &count, "--ack", ACK];
    let received = async {
        let mut received = Vec::with_capacity(signals);
        for n in 1..=signals {
            let usr1 = |f: &Fact| f.get("name") == Some("SIGUSR1");
            let fact = follower.next_fact("signal", secs(5), usr1).await?;
            received.push(fact.num::<u64>("mono_ns")?);
            progress(n);
        }
        anyhow::Ok(received)
    };
    let (sent, received) = tokio::join!(c.exec(&sender), received);
    let (sent, received) = (sent?, received?);
    let sent: Vec<u64> = sent
        .stdout
        .iter()
        .filter_map(|line| Fact::parse(line).filter(|f| f.kind == "sent"))
        .map(|f| f.num("mono_ns"))
        .collect::<Result<_>>()?;
    if sent.len() != received.len() {
        bail!(
            "the sender reports {} signals sent, the child {} received: {:?}",
            sent.len(),
            received.len(),
            c.evidence().await
        );
    }
    let latencies_us: Vec<f64> =
        sent.iter().zip(&received).map(|(s, r)| r.saturating_sub(*s) as f64 / 1000.0).collect();
    let container_kib = c.memory_usage().await? as f64 / 1024.0;
    c.remove().await?;
    run.record("forward_median", median(&latencies_us), "us");
    run.record("forward_p90", percentile(&latencies_us, 90.0), "us");
    run.record("forward_p99", percentile(&latencies_us, 99.0), "us");
    run.record("container_memory", container_kib, "KiB");
    Ok(Forwarding { latencies_us, container_kib })
}
