//! Start, idle memory and stop of an init as PID 1, one fresh container per sample, and the size
//! of its binary.
//!
//! * **Start**: from the host's request to run the container (the harness creates and starts it
//!   in one go; the image is built before the first sample) until the child's first instruction.
//!   Both ends are read on `CLOCK_MONOTONIC`, which a container shares with the host: the child's
//!   handshake carries the moment its `main` began (`start_mono_ns`), so the log's own latency is
//!   not in the figure. Docker's create and runc's start weigh the same for every init; what
//!   differs is the init's own work before its child runs.
//! * **Idle memory**: once the child runs, PID 1's `VmRSS` and `Threads` (`/proc/1/status`) and
//!   the `Anonymous` total of its `smaps_rollup`, read inside the container (`docker exec`). RSS of a static binary is mostly its clean
//!   text pages (the kernel maps the cached neighbours of every fault), so it follows the
//!   binary's size; the anonymous memory (heap, stack, data) is what the init allocates.
//! * **Stop**: from `docker kill -s TERM` (the API call) until Docker's wait reports the
//!   container exited: the init forwards SIGTERM, the child (the signal logger) dies of it, the
//!   init exits, and Docker notices.

use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result};

use super::{median, monotonic_ns};
use crate::infrastructure::{ContainerSpec, Init, Run};
use crate::utils::wait::secs;

/// What one init's containers showed, one entry per container.
#[derive(Debug, Clone, Default)]
pub struct Lifecycle {
    pub start_ms: Vec<f64>,
    pub rss_kib: Vec<f64>,
    pub anonymous_kib: Vec<f64>,
    pub threads: Vec<f64>,
    pub stop_ms: Vec<f64>,
    /// The exit codes Docker reported after SIGTERM, for the report's footnotes.
    pub exit_codes: Vec<i64>,
}

/// The file copied to `/init`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BinaryFile {
    pub bytes: u64,
    /// Dynamically linked: the size leaves out the libraries it loads.
    pub dynamic: bool,
}

/// `samples` containers of `run`'s init, one after another, after one unmeasured container that
/// builds (or finds) the image. `progress` hears the number of samples taken so far.
pub async fn measure(
    run: &Run,
    samples: usize,
    mut progress: impl FnMut(usize),
) -> Result<Lifecycle> {
    cycle(run).await.context("the first (unmeasured) container")?;
    let mut all = Lifecycle::default();
    for n in 1..=samples {
        cycle(run).await.map(|s| s.add_to(&mut all)).with_context(|| format!("container {n}"))?;
        progress(n);
    }
    run.record("start_ms", median(&all.start_ms), "ms");
    run.record("idle_rss", median(&all.rss_kib), "KiB");
    run.record("idle_anonymous", median(&all.anonymous_kib), "KiB");
    run.record("threads", median(&all.threads), "count");
    run.record("stop_ms", median(&all.stop_ms), "ms");
    if let Some(binary) = binary(run.init())? {
        run.record("binary_size", binary.bytes as f64, "bytes");
    }
    Ok(all)
}

/// The init's binary; `None` for Docker's own init, which Docker mounts.
pub fn binary(init: &Init) -> Result<Option<BinaryFile>> {
    let Some(path) = &init.binary else { return Ok(None) };
    let bytes = std::fs::metadata(path).with_context(|| path.display().to_string())?.len();
    // `ldd` lists `name => path` lines only for a dynamic executable (a static PIE is "statically
    // linked"); the image factory asks it too.
    let ldd = Command::new("ldd").arg(path).output().context("running ldd")?;
    let dynamic = String::from_utf8_lossy(&ldd.stdout).contains("=>");
    Ok(Some(BinaryFile { bytes, dynamic }))
}

struct Sample {
    start_ms: f64,
    rss_kib: f64,
    anonymous_kib: f64,
    threads: f64,
    stop_ms: f64,
    exit_code: i64,
}

impl Sample {
    fn add_to(self, all: &mut Lifecycle) {
        all.start_ms.push(self.start_ms);
        all.rss_kib.push(self.rss_kib);
        all.anonymous_kib.push(self.anonymous_kib);
        all.threads.push(self.threads);
        all.stop_ms.push(self.stop_ms);
        all.exit_codes.push(self.exit_code);
    }
}

async fn cycle(run: &Run) -> Result<Sample> {
    let spec = ContainerSpec::new(run).child(["testkit", "signals"]);
    let requested = monotonic_ns()?;
    let c = spec.start().await?;
    let ready = c.wait_for_fact("ready", 1, secs(5), |_| true).await?;
    let began: u64 = ready.num("start_mono_ns")?;

    let memory = c.pid1_memory().await?;
    let (rss_kib, threads) = (memory.number("VmRSS")?, memory.number("Threads")?);
    let anonymous_kib = memory.number("Anonymous")?;

    let asked = Instant::now();
    c.kill("SIGTERM").await?;
    let exit = c.wait_exit(secs(15)).await?;
    let stop_ms = asked.elapsed().as_secs_f64() * 1000.0;
    c.remove().await?;
    Ok(Sample {
        start_ms: began.saturating_sub(requested) as f64 / 1e6,
        rss_kib: rss_kib as f64,
        anonymous_kib: anonymous_kib as f64,
        threads: threads as f64,
        stop_ms,
        exit_code: exit.code,
    })
}
