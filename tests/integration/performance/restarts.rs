//! Restarts under load: scinit restarts its echo server with SIGHUP, again and again, while the
//! host's bounded load (four clients, one request every 10 ms each) goes through a published
//! port (the bridge and docker-proxy) or the host network; in either restart order. Each
//! restart waits for its events (the new child's handshake, for start-first the old child's
//! SIGTERM, then replies from the new child to a few rounds of fresh requests), never for a
//! fixed time. The figures are the load's:
//! longest gap without a reply, latency percentiles, failed requests; every figure is measured
//! under that load.

use std::fmt;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::figures::restart;
use crate::infrastructure::probe::{free_port, published, Timeline};
use crate::infrastructure::{ContainerSpec, Follower, Network, ReadySignal, Run};
use crate::performance::load::{bounded_load, record_restarts};
use crate::utils::child_report::{Fact, Ready};
use crate::utils::wait::secs;

/// How long a new child may take to print its handshake (generous: 2 shared cores).
const RESTART_WITHIN: Duration = Duration::from_secs(10);
/// Rounds of fresh requests the new child answers before the next restart. A scinit restart
/// takes a few tens of milliseconds: without these, restarts would follow one another within a
/// handful of requests; with them each one starts from a steady load and has a stretch of the
/// timeline of its own (some 50 ms).
const SETTLE_ROUNDS: usize = 5;
/// The echo server's port on the bridge.
const ECHO_PORT: u16 = 8080;
/// The echo server behind a notifier of its own: `READY=1` comes from the new child's tree as it
/// starts (the sockets are inherited and already listening, so requests wait in the backlog
/// until it accepts).
const NOTIFYING_ECHO: &str = "testkit notify READY=1 & exec testkit echo";

/// `--restart-order`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    StopFirst,
    StartFirst,
}

/// One network path and restart order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setup {
    pub network: Network,
    pub order: Order,
}

impl Setup {
    pub const ALL: [Setup; 4] = [
        Setup { network: Network::Bridge, order: Order::StopFirst },
        Setup { network: Network::Bridge, order: Order::StartFirst },
        Setup { network: Network::Host, order: Order::StopFirst },
        Setup { network: Network::Host, order: Order::StartFirst },
    ];

    /// `bridge_stop_first`: for benchmark and figure names.
    pub fn key(self) -> String {
        self.to_string().replace(", ", "_").replace('-', "_")
    }
}

impl fmt::Display for Setup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let network = match self.network {
            Network::Bridge => "bridge",
            Network::Host => "host",
        };
        let order = match self.order {
            Order::StopFirst => "stop-first",
            Order::StartFirst => "start-first",
        };
        write!(f, "{network}, {order}")
    }
}

/// What one setup's run saw.
#[derive(Debug, Clone)]
pub struct RestartRun {
    pub setup: Setup,
    pub restarts: usize,
    pub timeline: Timeline,
    /// When each SIGHUP was sent, from the start of the load (the timeline's origin).
    pub marks: Vec<Duration>,
    /// From the first SIGHUP until the last new child answered.
    pub elapsed: Duration,
}

/// `restarts` SIGHUP restarts of scinit's echo server under load, in `setup`. `progress` hears
/// how many restarts are done.
pub async fn measure(
    run: &Run,
    setup: Setup,
    restarts: usize,
    mut progress: impl FnMut(usize),
) -> Result<RestartRun> {
    let mut spec = ContainerSpec::new(run).network(setup.network);
    let port = match setup.network {
        Network::Host => {
            let port = free_port()?;
            spec = spec.with_ports([port]).bind_addr("127.0.0.1");
            port
        }
        Network::Bridge => {
            spec = spec.with_ports([ECHO_PORT]);
            ECHO_PORT
        }
    };
    spec = match setup.order {
        Order::StopFirst => spec.child(["testkit", "echo"]),
        Order::StartFirst => {
            spec.start_first(ReadySignal::Notify, None).child(["sh", "-c", NOTIFYING_ECHO])
        }
    };
    let c = spec.start().await?;
    let addr = published(c.host_port(port).await?)?;
    let mut follower = c.follow();
    let mut pid = next_child(&mut follower, None, Order::StopFirst).await?;
    let origin = Instant::now();
    let load = bounded_load(addr).start();
    load.wait_for_pid(pid, secs(10)).await?;

    let mut marks = Vec::with_capacity(restarts);
    let started = Instant::now();
    for n in 1..=restarts {
        marks.push(origin.elapsed());
        c.kill("SIGHUP").await?;
        let restarted = next_child(&mut follower, Some(pid), setup.order).await;
        pid = restarted.with_context(|| format!("SIGHUP #{n}"))?;
        load.wait_for_pid(pid, secs(10)).await?;
        for _ in 0..SETTLE_ROUNDS {
            load.wait_for_success_since(Instant::now(), secs(10)).await?;
        }
        progress(n);
    }
    let elapsed = started.elapsed();
    let timeline = load.stop().await?;
    c.remove().await?;
    let kind = match setup.order {
        Order::StopFirst => restart::kind::STOP_FIRST,
        Order::StartFirst => restart::kind::START_FIRST,
    };
    record_restarts(run, kind, restarts, &timeline, elapsed);
    Ok(RestartRun { setup, restarts, timeline, marks, elapsed })
}

/// The pid of the next child that prints its handshake, once the restart is over: for
/// start-first also the SIGTERM of the `old` child, which may reach the log first (the notifier
/// can beat the new child's handshake). (`Container::next_ready` would judge a missing child as
/// the init's deviation; here it is the measurement failing, and the future must be `Send`: the
/// benchmark runs in a task of its own.)
async fn next_child(follower: &mut Follower, old: Option<i32>, order: Order) -> Result<i32> {
    let mut new = None;
    let mut old_stopped = order == Order::StopFirst;
    while new.is_none() || !old_stopped {
        let what = "the new child's handshake and the old child's SIGTERM";
        let line = follower.next_line(what, RESTART_WITHIN, |l| Fact::parse(l).is_some()).await?;
        let Some(fact) = Fact::parse(&line) else { continue };
        match fact.kind.as_str() {
            "ready" => new = Some(Ready::from_fact(&fact)?.pid),
            "signal" => {
                old_stopped |=
                    fact.get("name") == Some("SIGTERM") && fact.num::<i32>("pid").ok() == old
            }
            _ => {}
        }
    }
    new.context("no new child")
}
