//! Load through a restart, and the restart figures it yields: shared by every scenario that
//! restarts a server while the host sends it requests (SIGHUP restarts, live reload,
//! `docker restart`, the real servers).

use std::net::SocketAddr;
use std::time::Duration;

use crate::figures::restart;
use crate::infrastructure::probe::{Load, Timeline};
use crate::infrastructure::Run;
use crate::utils::wait::{millis, secs};

/// Four clients, one request every 10 ms each: a few hundred requests per second at most,
/// bounded to a minute.
pub fn bounded_load(addr: SocketAddr) -> Load {
    Load {
        connections: 4,
        interval: millis(10),
        max_duration: secs(60),
        request_timeout: secs(10),
        ..Load::new(addr)
    }
}

/// Records the restart table's figures (`make docker-test`) for `restarts` restarts of `kind`
/// (`restart::kind`: what restarted the server, the table's kind column) that took `elapsed`
/// under the load that gave `timeline`.
pub fn record_restarts(
    run: &Run,
    kind: &str,
    restarts: usize,
    timeline: &Timeline,
    elapsed: Duration,
) {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    run.record(kind, 1.0, "kind");
    run.record(restart::RESTARTS, restarts as f64, "count");
    run.record(restart::REQUESTS, timeline.total() as f64, "count");
    run.record(restart::FAILED, timeline.failures().len() as f64, "count");
    run.record(restart::LONGEST_GAP_MS, ms(timeline.longest_gap()), "ms");
    run.record("p50_ms", ms(timeline.latency_percentile(50.0)), "ms");
    run.record(restart::P99_MS, ms(timeline.latency_percentile(99.0)), "ms");
    run.record(restart::MAX_MS, ms(timeline.max_latency()), "ms");
    run.record("restarts_per_s", restarts as f64 / elapsed.as_secs_f64(), "1/s");
}
