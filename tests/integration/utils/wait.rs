//! Waiting on conditions with deadlines. A condition that has an event stream (a log line, an
//! exit) waits on that stream; this is for the rest (a process table, a port), polled with a
//! short bounded interval until the deadline, never a bare sleep standing in for a wait.

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

/// How often a polled condition is re-checked.
const POLL_INTERVAL: Duration = Duration::from_millis(25);

/// Re-evaluates `check` until it returns `Some`, or fails after `within` naming `what` and the
/// last state seen.
pub async fn until<T, F, Fut>(what: &str, within: Duration, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Polled<T>>>,
{
    let deadline = Instant::now() + within;
    loop {
        let last = match check().await? {
            Polled::Ready(value) => return Ok(value),
            Polled::NotYet(state) => state,
        };
        if Instant::now() >= deadline {
            bail!("timed out after {within:?} waiting for {what}; last seen: {last}");
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// The outcome of one check: done, or not yet with a description of what was seen.
pub enum Polled<T> {
    Ready(T),
    NotYet(String),
}

pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

pub fn millis(ms: u64) -> Duration {
    Duration::from_millis(ms)
}
