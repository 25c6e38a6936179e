//! Orphan reap latency of an init as PID 1: how long an orphan that exited stays a zombie.
//!
//! The child starts the orphans first: each is a signal logger started by a subshell that exits
//! at once, so it is reparented to PID 1 and waits there. For each orphan in turn the host sends
//! SIGUSR1 straight to its host pid; the orphan logs the signal with its `CLOCK_MONOTONIC` and
//! exits at once (`--on USR1=exit:0`), and the host watches `/proc/<pid>` until it is gone, that
//! is until PID 1 has reaped the zombie. Latency = gone − logged on the shared clock: it includes
//! the orphan's own exit, which costs every init alike. The watch spins on a blocking thread
//! (yielding the CPU), as `HostPid1::signal_at` does: a reap takes a few hundred microseconds,
//! and a sleep's granularity would be a good part of that.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use nix::sys::signal::Signal;
use nix::unistd::Pid;

use super::{median, monotonic_ns};
use crate::infrastructure::{ContainerSpec, Run};
use crate::utils::proc;
use crate::utils::stats::percentile;
use crate::utils::wait::{self, secs, Polled};

/// How long one orphan may stay a zombie before the benchmark calls the init stuck.
const REAP_WITHIN: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Default)]
pub struct Reaping {
    pub latencies_us: Vec<f64>,
}

/// `orphans` orphans of `run`'s init, reaped one at a time. `progress` hears how many were.
pub async fn measure(
    run: &Run,
    orphans: usize,
    mut progress: impl FnMut(usize),
) -> Result<Reaping> {
    // `testkit inspect --stay` is a child that just waits; its handshake says `cmd=inspect`, the
    // orphans' say `cmd=signals`.
    let script = format!(
        "for i in $(seq {orphans}); do (testkit signals --on USR1=exit:0 &); done; \
         exec testkit inspect --stay"
    );
    let c = ContainerSpec::new(run).child(["sh", "-c", &script]).start().await?;
    let pid1 = i32::try_from(c.state().await?.host_pid)?;
    let mut follower = c.follow();
    // A logger's handshake comes once it blocks its signals: only then may SIGUSR1 come.
    let mut ready = BTreeSet::new();
    while ready.len() < orphans {
        let fact =
            follower.next_fact("ready", secs(30), |f| f.get("cmd") == Some("signals")).await?;
        ready.insert(fact.num::<i32>("pid")?);
    }
    let held = wait::until("every orphan reparented to PID 1", secs(10), || {
        let ready = &ready;
        async move {
            let held = orphans_of(pid1, ready)?;
            Ok(if held.len() == ready.len() {
                Polled::Ready(held)
            } else {
                Polled::NotYet(format!("{} of {} orphans", held.len(), ready.len()))
            })
        }
    })
    .await?;

    let mut latencies_us = Vec::with_capacity(orphans);
    for (n, (host_pid, pid)) in held.into_iter().enumerate() {
        let gone = tokio::task::spawn_blocking(move || exit_and_watch(host_pid)).await??;
        let logged = follower
            .next_fact("signal", secs(5), |f| f.num::<i32>("pid").ok() == Some(pid))
            .await?;
        let logged: u64 = logged.num("mono_ns")?;
        latencies_us.push(gone.saturating_sub(logged) as f64 / 1000.0);
        progress(n + 1);
    }
    c.remove().await?;
    run.record("reap_median", median(&latencies_us), "us");
    run.record("reap_p99", percentile(&latencies_us, 99.0), "us");
    Ok(Reaping { latencies_us })
}

/// The children of PID 1 (host pid `pid1`) whose container pids are in `orphans`, as
/// `(host pid, container pid)`.
fn orphans_of(pid1: i32, orphans: &BTreeSet<i32>) -> Result<Vec<(i32, i32)>> {
    let mut held = Vec::new();
    for host_pid in proc::children(pid1)? {
        // A child that is gone between the listing and this read is no orphan of ours.
        let pid = proc::Status::of(host_pid).ok().and_then(|s| s.namespace_pid());
        if let Some(pid) = pid.filter(|p| orphans.contains(p)) {
            held.push((host_pid, pid));
        }
    }
    Ok(held)
}

/// Tells the orphan with host pid `host_pid` to exit and returns the moment its zombie was gone.
fn exit_and_watch(host_pid: i32) -> Result<u64> {
    nix::sys::signal::kill(Pid::from_raw(host_pid), Signal::SIGUSR1)?;
    let deadline = Instant::now() + REAP_WITHIN;
    while proc::exists(host_pid) {
        if Instant::now() >= deadline {
            bail!("orphan {host_pid} was not reaped within {REAP_WITHIN:?}");
        }
        std::thread::yield_now();
    }
    monotonic_ns()
}
