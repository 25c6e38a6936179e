//! Benchmarks and the load they share: figures, not verdicts. `load` is the scenarios' (the load
//! through a restart and the restart figures); the rest are the measurements of `make bench`
//! (`tests/bench/main.rs` runs them one after another, nothing else on the engine, and reports
//! medians with confidence intervals against the peer inits). Each measures one init per call,
//! records its headline figures in the [`Run`](crate::infrastructure::Run) and returns its raw
//! samples; each asserts only that the measurement itself worked.

use std::future::Future;

use anyhow::Context;

use crate::infrastructure::run::benchmark;
use crate::infrastructure::{Init, Run};

pub mod load;

// `make bench`'s measurements. This module tree is shared by both test targets and the scenario
// suite runs none of them: dead code is allowed here for its build.
#[allow(dead_code)]
pub mod forwarding;
#[allow(dead_code)]
pub mod lifecycle;
#[allow(dead_code)]
pub mod reaping;
#[allow(dead_code)]
pub mod restarts;

/// Runs `body` against `init` as the benchmark `name` (`run::benchmark`: its figures are recorded
/// with the verdict it earned) and returns what it measured, or why it failed. It runs in a task
/// of its own, so that the panic that ends a failed benchmark fails this measurement only; its
/// containers are removed as the task unwinds.
#[allow(dead_code)]
pub async fn benchmark_one<T, F, Fut>(name: &str, init: &Init, body: F) -> Result<T, String>
where
    T: Send + 'static,
    F: FnOnce(Run) -> Fut + Send + 'static,
    Fut: Future<Output = anyhow::Result<T>> + Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    let (name, init) = (name.to_string(), init.clone());
    let task = tokio::spawn(async move {
        benchmark(&name, vec![init], |runs| async move {
            let run = runs.into_iter().next().context("the benchmark gave no run")?;
            // The receiver outlives this task: the send cannot fail.
            let _ = tx.send(body(run).await?);
            Ok(())
        })
        .await
    });
    match task.await {
        Ok(()) => rx.await.map_err(|_| "the benchmark returned nothing".to_string()),
        Err(e) => Err(match e.try_into_panic() {
            Ok(panic) => panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "the benchmark panicked".to_string()),
            Err(e) => e.to_string(),
        }),
    }
}

/// The host's `CLOCK_MONOTONIC` in nanoseconds: the clock a container shares with the host, and
/// the one the testkit's `mono_ns` and `start_mono_ns` are read on.
#[allow(dead_code)]
pub fn monotonic_ns() -> anyhow::Result<u64> {
    use nix::time::{clock_gettime, ClockId};
    let now = clock_gettime(ClockId::CLOCK_MONOTONIC)?;
    Ok(u64::try_from(now.tv_sec())? * 1_000_000_000 + u64::try_from(now.tv_nsec())?)
}

/// The median of `values` (NaN for none), for the headline figures each benchmark records.
#[allow(dead_code)]
fn median(values: &[f64]) -> f64 {
    crate::utils::stats::percentile(values, 50.0)
}
