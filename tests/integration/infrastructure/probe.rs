//! The outside probe: an application-level round trip through a published port (or the host
//! network). A bare `connect` proves nothing, since docker-proxy accepts connections even when
//! nothing listens inside (moby#16976, #48132): every request must come back as
//! `ECHO PID=<pid>: <line>` from the echo server (or, for a foreign server, the expected HTTP
//! status and body).
//!
//! Load loops are bounded in count and time, and target only the suite's own containers: ports
//! published on the loopback beside a local engine, or on the engine's publish address.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::utils::stats::percentile;
use anyhow::{anyhow, bail, Context, Result};
use tokio::io::AsyncReadExt;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::watch;

/// One successful round trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply {
    pub pid: i32,
    pub latency: Duration,
}

/// Where this process reaches `port` of a container: published on the engine's publish address
/// (the loopback beside a local engine, see [`location`](super::location)), or bound on the host
/// network, which scenarios only use when it is this process's network.
pub fn published(port: u16) -> Result<SocketAddr> {
    Ok(SocketAddr::from((super::location::location()?.publish_ip, port)))
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
        let stream = TcpStream::connect(addr).await.context("connect")?;
        echo_exchange(&mut BufReader::new(stream), line).await
    };
    let pid = tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| anyhow!("no reply within {timeout:?}"))??;
    Ok(Reply { pid, latency: start.elapsed() })
}

/// Sends `line` and reads the echo server's answer to it on an open connection; the serving pid.
async fn echo_exchange(stream: &mut BufReader<TcpStream>, line: &str) -> Result<i32> {
    stream.get_mut().write_all(format!("{line}\n").as_bytes()).await.context("send")?;
    let mut answer = String::new();
    if stream.read_line(&mut answer).await.context("receive")? == 0 {
        bail!("connection closed without a reply");
    }
    parse_echo(answer.trim_end(), line)
}

fn parse_echo(answer: &str, sent: &str) -> Result<i32> {
    let rest =
        answer.strip_prefix("ECHO PID=").ok_or_else(|| anyhow!("unexpected reply {answer:?}"))?;
    let (pid, echoed) =
        rest.split_once(": ").ok_or_else(|| anyhow!("unexpected reply {answer:?}"))?;
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

/// One connection kept open for several lines: a request "in flight" across a restart.
pub struct Session {
    stream: BufReader<TcpStream>,
    timeout: Duration,
}

impl Session {
    /// Connects; `timeout` bounds the connect and every later exchange.
    pub async fn open(addr: SocketAddr, timeout: Duration) -> Result<Session> {
        let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| anyhow!("connect to {addr}: no answer within {timeout:?}"))?
            .with_context(|| format!("connect to {addr}"))?;
        Ok(Session { stream: BufReader::new(stream), timeout })
    }

    /// Sends `line` on this connection and requires its echo.
    pub async fn echo(&mut self, line: &str) -> Result<Reply> {
        let start = Instant::now();
        let pid = tokio::time::timeout(self.timeout, echo_exchange(&mut self.stream, line))
            .await
            .map_err(|_| anyhow!("no reply within {:?}", self.timeout))??;
        Ok(Reply { pid, latency: start.elapsed() })
    }
}

/// An HTTP response, read to the end of the connection (HTTP/1.0 requests, `Connection: close`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpReply {
    pub status: u16,
    /// The `Server` header, if any.
    pub server: Option<String>,
    pub body: String,
    pub latency: Duration,
}

/// `GET path` over HTTP/1.0: the whole response, parsed. Any status is returned; judging it is
/// the caller's business.
pub async fn http_get(addr: SocketAddr, path: &str, timeout: Duration) -> Result<HttpReply> {
    let start = Instant::now();
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.context("connect")?;
        let request =
            format!("GET {path} HTTP/1.0\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.context("send")?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.context("receive")?;
        parse_http(&String::from_utf8_lossy(&raw))
    };
    let (status, server, body) = tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| anyhow!("no HTTP response within {timeout:?}"))??;
    Ok(HttpReply { status, server, body, latency: start.elapsed() })
}

fn parse_http(raw: &str) -> Result<(u16, Option<String>, String)> {
    if raw.is_empty() {
        bail!("connection closed without a response");
    }
    let (head, body) =
        raw.split_once("\r\n\r\n").ok_or_else(|| anyhow!("truncated HTTP response {raw:?}"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .strip_prefix("HTTP/1.")
        .and_then(|rest| rest.get(2..5))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| anyhow!("not an HTTP status line: {status_line:?}"))?;
    let server = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.eq_ignore_ascii_case("server"))
        .map(|(_, value)| value.trim().to_string());
    Ok((status, server, body.to_string()))
}

/// What each load request is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Protocol {
    /// One line to the echo server; the reply names the serving pid.
    Echo,
    /// `GET path`, which must answer 200 with exactly `body`. HTTP replies name no pid: the
    /// samples carry pid 0.
    Http { path: String, body: String },
}

/// How far a running load has got, updated by every client as replies come in.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    /// Every pid that answered so far.
    pub pids: std::collections::BTreeSet<i32>,
    /// When the latest request that succeeded was sent.
    pub last_success_sent: Option<Instant>,
    pub failures: usize,
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
    pub protocol: Protocol,
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
            protocol: Protocol::Echo,
        }
    }

    /// One request of this load, as `Ok(pid)` or the reason it failed.
    async fn request_once(&self, line: &str) -> Result<i32, String> {
        let outcome = match &self.protocol {
            Protocol::Echo => request(self.addr, line, self.request_timeout).await.map(|r| r.pid),
            Protocol::Http { path, body } => {
                match http_get(self.addr, path, self.request_timeout).await {
                    Ok(reply) if reply.status == 200 && &reply.body == body => Ok(0),
                    Ok(reply) => Err(anyhow!(
                        "HTTP {} with body {:?}, expected 200 with {body:?}",
                        reply.status,
                        reply.body
                    )),
                    Err(e) => Err(e),
                }
            }
        };
        outcome.map_err(|e| format!("{e:#}"))
    }

    pub fn start(self) -> RunningLoad {
        let stop = Arc::new(AtomicBool::new(false));
        let origin = Instant::now();
        let (progress_tx, progress) = watch::channel(Progress::default());
        let progress_tx = Arc::new(progress_tx);
        let tasks = (0..self.connections)
            .map(|conn| {
                let (load, stop, progress_tx) = (self.clone(), stop.clone(), progress_tx.clone());
                tokio::spawn(async move {
                    let mut samples = Vec::new();
                    for n in 0..load.max_requests {
                        if stop.load(Ordering::Relaxed) || origin.elapsed() > load.max_duration {
                            break;
                        }
                        let sent = Instant::now();
                        let outcome = load.request_once(&format!("c{conn}-{n}")).await;
                        progress_tx.send_modify(|p| match &outcome {
                            Ok(pid) => {
                                p.pids.insert(*pid);
                                p.last_success_sent = p.last_success_sent.max(Some(sent));
                            }
                            Err(_) => p.failures += 1,
                        });
                        samples.push(Sample {
                            sent_at: sent - origin,
                            latency: sent.elapsed(),
                            outcome,
                        });
                        tokio::time::sleep(load.interval).await;
                    }
                    samples
                })
            })
            .collect();
        RunningLoad { stop, tasks, progress }
    }
}

pub struct RunningLoad {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<Vec<Sample>>>,
    progress: watch::Receiver<Progress>,
}

impl RunningLoad {
    /// What the clients have seen so far.
    pub fn progress(&self) -> Progress {
        self.progress.borrow().clone()
    }

    /// Waits until some client got a reply from `pid`, at most `within`.
    pub async fn wait_for_pid(&self, pid: i32, within: Duration) -> Result<()> {
        self.wait_for(&format!("a reply from pid {pid}"), within, |p| p.pids.contains(&pid)).await
    }

    /// Waits until a request sent at `since` or later has succeeded, at most `within`.
    pub async fn wait_for_success_since(&self, since: Instant, within: Duration) -> Result<()> {
        self.wait_for("a request sent since then to succeed", within, |p| {
            p.last_success_sent >= Some(since)
        })
        .await
    }

    async fn wait_for(
        &self,
        what: &str,
        within: Duration,
        done: impl FnMut(&Progress) -> bool,
    ) -> Result<()> {
        let mut progress = self.progress.clone();
        let reached =
            tokio::time::timeout(within, async { progress.wait_for(done).await.is_ok() }).await;
        match reached {
            Ok(true) => Ok(()),
            Ok(false) => bail!("the load ended before {what}"),
            Err(_) => bail!("no {what} within {within:?}; load so far: {:?}", self.progress()),
        }
    }

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
        let mut done: Vec<Duration> = self
            .samples
            .iter()
            .filter(|s| s.outcome.is_ok())
            .map(|s| s.sent_at + s.latency)
            .collect();
        done.sort();
        done.windows(2).map(|w| w[1] - w[0]).max().unwrap_or_default()
    }

    /// The latency at percentile `p` (0..=100) over all requests.
    pub fn latency_percentile(&self, p: f64) -> Duration {
        let latencies: Vec<f64> = self.samples.iter().map(|s| s.latency.as_secs_f64()).collect();
        let value = percentile(&latencies, p);
        if value.is_nan() {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(value)
        }
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
            .map(|s| {
                format!(
                    "  at {:?}: {}",
                    s.sent_at,
                    s.outcome.as_ref().err().map_or("", String::as_str)
                )
            })
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
        Sample {
            sent_at: Duration::from_millis(at_ms),
            latency: Duration::from_millis(latency_ms),
            outcome,
        }
    }

    #[test]
    fn echo_replies_must_echo_the_request() {
        assert_eq!(parse_echo("ECHO PID=7: hello", "hello").unwrap(), 7);
        assert!(parse_echo("ECHO PID=7: other", "hello").is_err());
        assert!(parse_echo("HTTP/1.1 200 OK", "hello").is_err());
    }

    #[test]
    fn http_responses_are_split_into_status_server_and_body() {
        let raw = "HTTP/1.0 200 OK\r\nContent-Length: 6\r\nServer: lighttpd/1.4.69\r\n\r\nhello\n";
        assert_eq!(
            parse_http(raw).unwrap(),
            (200, Some("lighttpd/1.4.69".to_string()), "hello\n".to_string())
        );
        assert_eq!(parse_http("HTTP/1.1 404 Not Found\r\n\r\n").unwrap().0, 404);
        assert!(parse_http("").is_err());
        assert!(parse_http("ECHO PID=7: x\n").is_err());
    }

    /// A local stand-in for the echo server, answering as pid 7.
    async fn fake_echo_server() -> SocketAddr {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut stream = BufReader::new(stream);
                    let mut line = String::new();
                    if stream.read_line(&mut line).await.is_ok() {
                        let reply = format!("ECHO PID=7: {}\n", line.trim_end());
                        let _ = stream.get_mut().write_all(reply.as_bytes()).await;
                    }
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn a_running_load_reports_the_pids_it_sees_and_stops_with_every_sample() {
        let addr = fake_echo_server().await;
        let load =
            Load { connections: 2, interval: Duration::from_millis(5), ..Load::new(addr) }.start();
        load.wait_for_pid(7, Duration::from_secs(5)).await.unwrap();
        load.wait_for_success_since(Instant::now(), Duration::from_secs(5)).await.unwrap();
        assert!(load.wait_for_pid(8, Duration::from_millis(50)).await.is_err());
        let timeline = load.stop().await.unwrap();
        assert!(timeline.total() >= 2 && timeline.failures().is_empty(), "{}", timeline.summary());
        assert_eq!(timeline.pids(), vec![7]);
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
