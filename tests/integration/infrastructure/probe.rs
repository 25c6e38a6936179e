//! The outside probe: an application-level round trip through a published port (or the host
//! network). A bare `connect` proves nothing, since docker-proxy accepts connections even when
//! nothing listens inside (moby#16976, #48132): every request must come back as
//! `ECHO PID=<pid>: <line>` from the echo server.
//!
//! Load loops are bounded in count and time, and target 127.0.0.1 only.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// One successful round trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply {
    pub pid: i32,
    pub latency: Duration,
}

pub fn localhost(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// A port free on 127.0.0.1 right now (for containers on the host network).
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

/// One request: connect, send `line`, require the echo server's answer for exactly that line.
pub async fn request(addr: SocketAddr, line: &str, timeout: Duration) -> Result<Reply> {
    let start = Instant::now();
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.context("connect")?;
        stream.write_all(format!("{line}\n").as_bytes()).await.context("send")?;
        let mut reader = BufReader::new(stream);
        let mut answer = String::new();
        let n = reader.read_line(&mut answer).await.context("receive")?;
        if n == 0 {
            bail!("connection closed without a reply");
        }
        parse_echo(answer.trim_end(), line)
    };
    let pid = tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| anyhow!("no reply within {timeout:?}"))??;
    Ok(Reply { pid, latency: start.elapsed() })
}

fn parse_echo(answer: &str, sent: &str) -> Result<i32> {
    let rest = answer.strip_prefix("ECHO PID=").ok_or_else(|| anyhow!("unexpected reply {answer:?}"))?;
    let (pid, echoed) = rest.split_once(": ").ok_or_else(|| anyhow!("unexpected reply {answer:?}"))?;
    if echoed != sent {
        bail!("reply {answer:?} does not echo {sent:?}");
    }
    pid.parse().map_err(|_| anyhow!("reply {answer:?} has no pid"))
}

/// Polls with requests until one succeeds, at most `within`.
pub async fn wait_until_serving(addr: SocketAddr, within: Duration) -> Result<Reply> {
    let deadline = Instant::now() + within;
    loop {
        let last = match request(addr, "probe", Duration::from_secs(1)).await {
            Ok(reply) => return Ok(reply),
            Err(e) => e,
        };
        if Instant::now() >= deadline {
            bail!("{addr} did not answer within {within:?}: {last:#}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A bounded load: `connections` clients, each sending one request per connection every
/// `interval`, until stopped, `max_duration` passes or `max_requests` per client are sent.
#[derive(Debug, Clone)]
pub struct Load {
    pub addr: SocketAddr,
    pub connections: usize,
    pub interval: Duration,
    pub max_duration: Duration,
    pub max_requests: usize,
    pub request_timeout: Duration,
}

impl Load {
    pub fn new(addr: SocketAddr) -> Load {
        Load {
            addr,
            connections: 4,
            interval: Duration::from_millis(10),
            max_duration: Duration::from_secs(120),
            max_requests: 20_000,
            request_timeout: Duration::from_secs(15),
        }
    }

    pub fn start(self) -> RunningLoad {
        let stop = Arc::new(AtomicBool::new(false));
        let origin = Instant::now();
        let tasks = (0..self.connections)
            .map(|conn| {
                let (load, stop) = (self.clone(), stop.clone());
                tokio::spawn(async move {
                    let mut samples = Vec::new();
                    for n in 0..load.max_requests {
                        if stop.load(Ordering::Relaxed) || origin.elapsed() > load.max_duration {
                            break;
                        }
                        let sent_at = origin.elapsed();
                        let outcome = request(load.addr, &format!("c{conn}-{n}"), load.request_timeout).await;
                        samples.push(Sample {
                            sent_at,
                            latency: origin.elapsed() - sent_at,
                            outcome: outcome.map(|r| r.pid).map_err(|e| format!("{e:#}")),
                        });
                        tokio::time::sleep(load.interval).await;
                    }
                    samples
                })
            })
            .collect();
        RunningLoad { stop, tasks }
    }
}

pub struct RunningLoad {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<Vec<Sample>>>,
}

impl RunningLoad {
    /// Stops the clients and returns every request they made, in sending order.
    pub async fn stop(self) -> Result<Timeline> {
        self.stop.store(true, Ordering::Relaxed);
        let mut samples = Vec::new();
        for task in self.tasks {
            samples.extend(task.await.context("a load client panicked")?);
        }
        samples.sort_by_key(|s| s.sent_at);
        Ok(Timeline { samples })
    }
}

/// One request of a load run.
#[derive(Debug, Clone)]
pub struct Sample {
    pub sent_at: Duration,
    pub latency: Duration,
    pub outcome: Result<i32, String>,
}

/// Everything a load run saw, from which the downtime figures are computed.
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    pub samples: Vec<Sample>,
}

impl Timeline {
    pub fn total(&self) -> usize {
        self.samples.len()
    }

    pub fn failures(&self) -> Vec<&Sample> {
        self.samples.iter().filter(|s| s.outcome.is_err()).collect()
    }

    /// The server pids that answered, in order of first appearance.
    pub fn pids(&self) -> Vec<i32> {
        let mut pids = Vec::new();
        for s in &self.samples {
            if let Ok(pid) = s.outcome {
                if !pids.contains(&pid) {
                    pids.push(pid);
                }
            }
        }
        pids
    }

    /// The longest stretch without any successful reply completing.
    pub fn longest_gap(&self) -> Duration {
        let mut done: Vec<Duration> =
            self.samples.iter().filter(|s| s.outcome.is_ok()).map(|s| s.sent_at + s.latency).collect();
        done.sort();
        done.windows(2).map(|w| w[1] - w[0]).max().unwrap_or_default()
    }

    /// The latency at percentile `p` (0..=100) over all requests.
    pub fn latency_percentile(&self, p: f64) -> Duration {
        let mut latencies: Vec<Duration> = self.samples.iter().map(|s| s.latency).collect();
        if latencies.is_empty() {
            return Duration::ZERO;
        }
        latencies.sort();
        let rank = ((p / 100.0) * (latencies.len() - 1) as f64).round() as usize;
        latencies[rank.min(latencies.len() - 1)]
    }

    pub fn max_latency(&self) -> Duration {
        self.samples.iter().map(|s| s.latency).max().unwrap_or_default()
    }

    /// A one-paragraph summary with the first failures, for failure messages.
    pub fn summary(&self) -> String {
        let failures = self.failures();
        let first: Vec<String> = failures
            .iter()
            .take(5)
            .map(|s| format!("  at {:?}: {}", s.sent_at, s.outcome.as_ref().err().map_or("", String::as_str)))
            .collect();
        format!(
            "{} requests, {} failed, pids {:?}, longest gap {:?}, p99 {:?}, max {:?}\n{}",
            self.total(),
            failures.len(),
            self.pids(),
            self.longest_gap(),
            self.latency_percentile(99.0),
            self.max_latency(),
            first.join("\n")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at_ms: u64, latency_ms: u64, outcome: Result<i32, String>) -> Sample {
        Sample { sent_at: Duration::from_millis(at_ms), latency: Duration::from_millis(latency_ms), outcome }
    }

    #[test]
    fn echo_replies_must_echo_the_request() {
        assert_eq!(parse_echo("ECHO PID=7: hello", "hello").unwrap(), 7);
        assert!(parse_echo("ECHO PID=7: other", "hello").is_err());
        assert!(parse_echo("HTTP/1.1 200 OK", "hello").is_err());
    }

    #[test]
    fn timeline_figures_come_from_the_samples() {
        let t = Timeline {
            samples: vec![
                sample(0, 1, Ok(7)),
                sample(10, 2, Ok(7)),
                sample(20, 300, Ok(9)),
                sample(30, 5, Err("refused".into())),
            ],
        };
        assert_eq!(t.failures().len(), 1);
        assert_eq!(t.pids(), vec![7, 9]);
        assert_eq!(t.longest_gap(), Duration::from_millis(308));
        assert_eq!(t.max_latency(), Duration::from_millis(300));
    }
}
