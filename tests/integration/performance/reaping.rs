//! Orphan reap latency of an init as PID 1: how long an orphan that exited stays a zombie.
//!
//! The child starts the orphans first: each is a signal logger started by a subshell that exits
//! at once, so it is reparented to PID 1 and waits there. Then `testkit await-reap`, run with
//! `docker exec`, takes the orphans in turn: it sends one SIGUSR1, the orphan logs the signal
//! with its `CLOCK_MONOTONIC` and exits at once (`--on USR1=exit:0`), and the watcher spins on
//! `/proc/<pid>` inside the container until it is gone, that is until PID 1 has reaped the
//! zombie. Latency = gone − logged on the shared clock: it includes the orphan's own exit, which
//! costs every init alike. Nothing but the Docker API is needed.

use std::collections::BTreeMap;

use anyhow::{bail, Result};

use super::median;
use crate::infrastructure::{ContainerSpec, Run};
use crate::utils::child_report::Fact;
use crate::utils::stats::percentile;
use crate::utils::wait::{self, secs, Polled};

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
    let mut follower = c.follow();
    // A logger's handshake comes once it blocks its signals: only then may SIGUSR1 come.
    let mut ready = Vec::with_capacity(orphans);
    while ready.len() < orphans {
        let fact =
            follower.next_fact("ready", secs(30), |f| f.get("cmd") == Some("signals")).await?;
        ready.push(fact.num::<i32>("pid")?);
    }
    wait::until("every orphan reparented to PID 1", secs(10), || {
        let (c, ready) = (&c, &ready);
        async move {
            let held = c.processes().await?;
            let held = held.iter().filter(|p| p.ppid == 1 && ready.contains(&p.pid)).count();
            Ok(if held == ready.len() {
                Polled::Ready(())
            } else {
                Polled::NotYet(format!("{held} of {} orphans", ready.len()))
            })
        }
    })
    .await?;

    let mut watcher = vec!["testkit".to_string(), "await-reap".into()];
    watcher.extend(ready.iter().map(i32::to_string));
    let watcher: Vec<&str> = watcher.iter().map(String::as_str).collect();
    let logged = async {
        let mut logged = BTreeMap::new();
        for n in 1..=orphans {
            let fact = follower.next_fact("signal", secs(5), |f| f.get("name") == Some("SIGUSR1"));
            let fact = fact.await?;
            logged.insert(fact.num::<i32>("pid")?, fact.num::<u64>("mono_ns")?);
            progress(n);
        }
        anyhow::Ok(logged)
    };
    let (gone, logged) = tokio::join!(c.exec(&watcher), logged);
    let (gone, logged) = (gone?, logged?);
    let mut latencies_us = Vec::with_capacity(orphans);
    for fact in gone.stdout.iter().filter_map(|l| Fact::parse(l)).filter(|f| f.kind == "reaped") {
        let pid: i32 = fact.num("pid")?;
        let Some(&logged) = logged.get(&pid) else {
            bail!("orphan {pid} was reaped without logging its SIGUSR1");
        };
        latencies_us.push(fact.num::<u64>("mono_ns")?.saturating_sub(logged) as f64 / 1000.0);
    }
    if latencies_us.len() != orphans {
        bail!(
            "{} of {orphans} orphans seen reaped: {}",
            latencies_us.len(),
            [gone.stdout, gone.stderr].concat().join(" | ")
        );
    }
    c.remove().await?;
    run.record("reap_median", median(&latencies_us), "us");
    run.record("reap_p99", percentile(&latencies_us, 99.0), "us");
    Ok(Reaping { latencies_us })
}
