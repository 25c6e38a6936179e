//! The engine adapter: the only module that talks to Docker. Connection, labels, the leftover
//! sweep, image builds, and every container call the guard needs, including the one way a
//! container is created: [`create_body`] turns the spec's [`CreateRequest`] into Docker's
//! create body (pure, unit-tested), [`create`] sends it. Every bollard error leaves this module
//! wrapped in a sentence naming the operation and the container, as testcontainers'
//! `ClientError` does.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::models::{
    ContainerCreateBody, HealthConfig, HostConfig, PortBinding, ResourcesUlimits,
};
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, BuildImageOptionsBuilder, CreateContainerOptionsBuilder,
    KillContainerOptionsBuilder, ListContainersOptionsBuilder, LogsOptionsBuilder,
    RemoveContainerOptionsBuilder, RestartContainerOptionsBuilder, StatsOptionsBuilder,
    StopContainerOptionsBuilder, WaitContainerOptionsBuilder,
};
use bollard::Docker;
use futures::StreamExt;

use super::location;
use super::spec::{CreateRequest, Network};
use crate::utils::proc;

/// A connection to the engine (bollard's client, named here so that no other module needs
/// bollard).
pub type Client = Docker;

/// Every object the suite creates carries this label (value `1`).
pub const LABEL_SUITE: &str = "scinit.test";
/// `<scope>:<pid>:<start time>` of the test process that owns a container, the scope naming the
/// kernel boot and PID namespace in which that pid means something: the sweep removes containers
/// whose owner is gone, and only those of its own scope, so parallel test processes never remove
/// each other's, nor do runners on other machines (or in other containers) sharing the engine.
pub const LABEL_OWNER: &str = "scinit.test.owner";
/// The run (`SCINIT_TEST_SESSION`, set by `make docker-test`), so a wrapper can remove a whole run.
pub const LABEL_SESSION: &str = "scinit.test.session";

/// Connects to the engine where [`location`](super::location) says it is (`DOCKER_HOST`, the
/// current Docker context, or the local socket) and negotiates the API version. The first
/// failure is turned into one line that says what to do, instead of a backtrace.
pub async fn connect() -> Result<Docker> {
    let (endpoint, source) = location::endpoint(location::environment());
    location::supported(&endpoint)?;
    let unreachable = |cause: &dyn std::fmt::Display| {
        anyhow!(
            "Docker is not reachable at {endpoint} (from {source}): {cause}; start the daemon \
             (e.g. `sudo systemctl start docker`), set DOCKER_HOST, or join the `docker` group"
        )
    };
    let docker = Docker::connect_with_host(&endpoint).map_err(|e| unreachable(&e))?;
    let docker = docker.negotiate_version().await.map_err(|e| unreachable(&e))?;
    location::init(&docker).await?;
    Ok(docker)
}

/// The client for this process, after the once-per-process leftover sweep.
pub async fn client() -> Result<Docker> {
    static SWEPT: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    static RUNTIME_CHECKED: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    let docker = connect().await?;
    RUNTIME_CHECKED.get_or_try_init(|| check_runtime(&docker)).await?;
    SWEPT.get_or_try_init(|| async { sweep_leftovers(&docker).await.map(|_| ()) }).await?;
    Ok(docker)
}

/// This process's identity for [`LABEL_OWNER`].
pub fn owner_id() -> &'static str {
    static OWNER: OnceLock<String> = OnceLock::new();
    OWNER.get_or_init(|| {
        let pid = std::process::id();
        format!("{}:{pid}:{}", owner_scope(), proc::start_time(pid).unwrap_or_default())
    })
}

/// Where this process's pids mean something: the kernel's boot id and this process's PID
/// namespace (`<boot id>/<namespace inode>`). Two processes with the same scope see the same
/// `/proc`.
fn owner_scope() -> &'static str {
    static SCOPE: OnceLock<String> = OnceLock::new();
    SCOPE.get_or_init(|| {
        let namespace = std::fs::read_link("/proc/self/ns/pid").unwrap_or_default();
        let namespace = namespace.to_string_lossy();
        let inode = namespace.trim_start_matches("pid:[").trim_end_matches(']');
        format!("{}/{inode}", machine())
    })
}

/// This machine, as long as it runs: the kernel's boot id. The suite's images carry it
/// ([`super::image::LABEL_BUILDER`]), so that a run removes only stale images its machine built.
pub fn machine() -> &'static str {
    static MACHINE: OnceLock<String> = OnceLock::new();
    MACHINE.get_or_init(|| {
        let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
        boot.trim().to_string()
    })
}

/// The labels every container of this process carries.
pub fn labels() -> Vec<(String, String)> {
    let mut labels = vec![
        (LABEL_SUITE.to_string(), "1".to_string()),
        (LABEL_OWNER.to_string(), owner_id().to_string()),
    ];
    if let Ok(session) = std::env::var("SCINIT_TEST_SESSION") {
        labels.push((LABEL_SESSION.to_string(), session));
    }
    labels
}

/// Whether the sweep must leave the container of `owner` alone: its owner still runs, or it is
/// another scope's (another machine, container or PID namespace), which this process cannot
/// judge. An owner label without a scope (written before scopes existed) is judged as this
/// scope's.
fn spared(owner: &str, scope: &str) -> bool {
    let mut parts = owner.rsplitn(3, ':');
    let (Some(start), Some(pid)) = (parts.next(), parts.next()) else { return false };
    if parts.next().is_some_and(|owner_scope| owner_scope != scope) {
        return true;
    }
    let Ok(pid) = pid.parse::<u32>() else { return false };
    proc::start_time(pid).is_some_and(|s| s.to_string() == start)
}

/// Removes the suite's containers whose owning test process is gone (a run killed before its
/// guards could drop). Runs once per test process. Best effort: a container that cannot be
/// removed now is reported and left to the next sweep, never a reason to fail a test.
pub async fn sweep_leftovers(docker: &Docker) -> Result<usize> {
    let filters = HashMap::from([("label", vec![LABEL_SUITE.to_string()])]);
    let containers = docker
        .list_containers(Some(
            ListContainersOptionsBuilder::default().all(true).filters(&filters).build(),
        ))
        .await
        .context("listing the suite's containers for the leftover sweep")?;
    let mut removed = 0;
    for c in containers {
        let owner = c.labels.as_ref().and_then(|l| l.get(LABEL_OWNER)).cloned().unwrap_or_default();
        if spared(&owner, owner_scope()) {
            continue;
        }
        if let Some(id) = c.id {
            match remove(docker, &id).await {
                Ok(()) => removed += 1,
                Err(e) => eprintln!("leftover sweep: {e:#}"),
            }
        }
    }
    Ok(removed)
}

/// What every container of this process shares: the address its ports are published on (the
/// loopback beside a local engine: see [`location`]), and the OCI runtime it runs under
/// ([`runtime`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement<'a> {
    pub publish_ip: IpAddr,
    pub runtime: Option<&'a str>,
}

/// `SCINIT_TEST_RUNTIME` (`crun`, `runsc`, ...): the OCI runtime of every container of the run,
/// where the engine has more than one; `None` for the engine's default.
pub fn runtime() -> Option<&'static str> {
    static RUNTIME: OnceLock<Option<String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| std::env::var("SCINIT_TEST_RUNTIME").ok().filter(|r| !r.is_empty()))
        .as_deref()
}

/// Fails, in one line naming what the engine offers, unless the engine offers [`runtime`].
async fn check_runtime(docker: &Docker) -> Result<()> {
    let Some(wanted) = runtime() else { return Ok(()) };
    let info = docker.info().await.context("docker info, for its runtimes")?;
    let offered: Vec<String> = info.runtimes.unwrap_or_default().into_keys().collect();
    if offered.iter().any(|r| r == wanted) {
        return Ok(());
    }
    bail!(
        "SCINIT_TEST_RUNTIME={wanted}: the engine offers no such runtime; it offers {}",
        offered.join(", ")
    )
}

/// Docker's create body for `request`, with this process's labels added, placed as `placement`
/// says. Pure.
pub fn create_body(
    request: &CreateRequest,
    labels: &[(String, String)],
    placement: Placement<'_>,
) -> ContainerCreateBody {
    let bridge = request.network == Network::Bridge;
    let port_bindings = bridge.then(|| {
        request
            .published
            .iter()
            .map(|p| {
                // On the loopback whenever the engine is local: nothing the suite starts is then
                // reachable from outside.
                let binding = PortBinding {
                    host_ip: Some(placement.publish_ip.to_string()),
                    host_port: Some(p.host.map_or_else(String::new, |h| h.to_string())),
                };
                (format!("{}/tcp", p.container), Some(vec![binding]))
            })
            .collect()
    });
    let host_config = HostConfig {
        network_mode: Some(if bridge { "bridge" } else { "host" }.to_string()),
        port_bindings,
        init: request.docker_init.then_some(true),
        runtime: placement.runtime.map(str::to_string),
        sysctls: (!request.sysctls.is_empty())
            .then(|| request.sysctls.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
        memory: request.limits.memory_bytes,
        // No swap beyond the limit, so the OOM killer acts at the limit.
        memory_swap: request.limits.memory_bytes,
        pids_limit: request.limits.pids,
        ulimits: request.limits.nofile.map(|n| {
            vec![ResourcesUlimits { name: Some("nofile".into()), soft: Some(n), hard: Some(n) }]
        }),
        ..Default::default()
    };
    let mut all_labels: HashMap<String, String> = labels.iter().cloned().collect();
    all_labels.extend(request.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
    ContainerCreateBody {
        image: Some(request.image.clone()),
        cmd: Some(request.cmd.clone()),
        env: Some(request.env.clone()),
        labels: Some(all_labels),
        tty: Some(request.tty),
        // `docker run -i`: a stdin to attach to, closed when the attached writer is done.
        open_stdin: Some(request.stdin),
        stdin_once: Some(request.stdin),
        working_dir: request.working_dir.clone(),
        exposed_ports: bridge
            .then(|| request.published.iter().map(|p| format!("{}/tcp", p.container)).collect()),
        healthcheck: request.health_check.as_ref().map(|h| HealthConfig {
            test: Some(["CMD".to_string()].into_iter().chain(h.argv.iter().cloned()).collect()),
            interval: Some(i64::try_from(h.interval.as_nanos()).unwrap_or(i64::MAX)),
            ..Default::default()
        }),
        host_config: Some(host_config),
        ..Default::default()
    }
}

/// Creates the container `request` describes, named `name`, with this process's labels.
pub async fn create(docker: &Docker, name: &str, request: &CreateRequest) -> Result<String> {
    let options = CreateContainerOptionsBuilder::default().name(name).build();
    let placement = Placement { publish_ip: location::location()?.publish_ip, runtime: runtime() };
    let body = create_body(request, &labels(), placement);
    let created = docker.create_container(Some(options), body).await;
    Ok(created.with_context(|| format!("create container {name} from {}", request.image))?.id)
}

/// Whether an image with `tag` exists.
pub async fn image_exists(docker: &Docker, tag: &str) -> bool {
    docker.inspect_image(tag).await.is_ok()
}

/// Builds `tag` from a tar build context with a `Dockerfile`, offline (`--network none`), with
/// the classic builder (BuildKit would leave build cache behind).
pub async fn build_image(
    docker: &Docker,
    context: Vec<u8>,
    tag: &str,
    labels: &[(&str, &str)],
) -> Result<()> {
    let labels: HashMap<&str, &str> = labels.iter().copied().collect();
    let options = BuildImageOptionsBuilder::default()
        .dockerfile("Dockerfile")
        .t(tag)
        .rm(true)
        .forcerm(true)
        .networkmode("none")
        .labels(&labels)
        .build();
    let mut stream = docker.build_image(options, None, Some(bollard::body_full(context.into())));
    let mut transcript = String::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(info) => {
                if let Some(line) = info.stream {
                    transcript.push_str(&line);
                }
                if let Some(err) = info.error_detail.and_then(|d| d.message) {
                    bail!("building image {tag} failed: {err}\n{transcript}");
                }
            }
            Err(e) => bail!("building image {tag} failed: {e}\n{transcript}"),
        }
    }
    Ok(())
}

pub async fn start(docker: &Docker, id: &str) -> Result<()> {
    docker.start_container(id, None).await.with_context(|| format!("start container {}", short(id)))
}

pub async fn remove(docker: &Docker, id: &str) -> Result<()> {
    match docker
        .remove_container(
            id,
            Some(RemoveContainerOptionsBuilder::default().force(true).v(true).build()),
        )
        .await
    {
        Ok(()) => Ok(()),
        Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => Ok(()),
        // Another process (a guard dropping, or a parallel sweep) is already removing it.
        Err(bollard::errors::Error::DockerResponseServerError { status_code: 409, message })
            if message.contains("already in progress") =>
        {
            Ok(())
        }
        Err(e) => Err(anyhow!("remove container {}: {e}", short(id))),
    }
}

pub async fn kill(docker: &Docker, id: &str, signal: &str) -> Result<()> {
    docker
        .kill_container(id, Some(KillContainerOptionsBuilder::default().signal(signal).build()))
        .await
        .with_context(|| format!("kill {signal} → container {}", short(id)))
}

pub async fn stop(docker: &Docker, id: &str, timeout: Duration) -> Result<()> {
    docker
        .stop_container(
            id,
            Some(StopContainerOptionsBuilder::default().t(whole_secs(timeout)).build()),
        )
        .await
        .with_context(|| format!("stop (t={timeout:?}) container {}", short(id)))
}

pub async fn restart(docker: &Docker, id: &str, timeout: Duration) -> Result<()> {
    docker
        .restart_container(
            id,
            Some(RestartContainerOptionsBuilder::default().t(whole_secs(timeout)).build()),
        )
        .await
        .with_context(|| format!("restart (t={timeout:?}) container {}", short(id)))
}

pub async fn pause(docker: &Docker, id: &str) -> Result<()> {
    docker.pause_container(id).await.with_context(|| format!("pause container {}", short(id)))
}

pub async fn unpause(docker: &Docker, id: &str) -> Result<()> {
    docker.unpause_container(id).await.with_context(|| format!("unpause container {}", short(id)))
}

fn whole_secs(d: Duration) -> i32 {
    i32::try_from(d.as_secs()).unwrap_or(i32::MAX)
}

/// Writes `data` to the container's stdin through an attach (`docker attach`, or `docker run -i`
/// fed from a pipe), then ends the input and waits until Docker has passed it on. With
/// `StdinOnce` and no terminal, Docker then closes the container's stdin: its reader sees end of
/// file. With a terminal, the stdin stays open (a user types ^D for end of file).
pub async fn write_stdin(docker: &Docker, id: &str, data: &[u8]) -> Result<()> {
    use tokio::io::AsyncWriteExt;
    let what = || format!("write {} bytes to the stdin of container {}", data.len(), short(id));
    let options = AttachContainerOptionsBuilder::default().stdin(true).stream(true).build();
    let mut attached = docker.attach_container(id, Some(options)).await.with_context(what)?;
    attached.input.write_all(data).await.with_context(what)?;
    attached.input.shutdown().await.with_context(what)?;
    // Docker ends the attach once it has copied the input through: nothing else is attached.
    while let Some(chunk) = attached.output.next().await {
        chunk.with_context(what)?;
    }
    Ok(())
}

/// Waits until the container is not running and returns its exit code. A non-zero code arrives
/// from bollard as an error; it is mapped back here.
pub async fn wait_exit(docker: &Docker, id: &str) -> Result<i64> {
    let mut stream = docker.wait_container(
        id,
        Some(WaitContainerOptionsBuilder::default().condition("not-running").build()),
    );
    match stream.next().await {
        Some(Ok(r)) => Ok(r.status_code),
        Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => Ok(code),
        Some(Err(e)) => Err(anyhow!("wait for container {} to exit: {e}", short(id))),
        None => Err(anyhow!("wait for container {}: the stream ended without a status", short(id))),
    }
}

/// What Docker reports about a container's state.
#[derive(Debug, Clone, Default)]
pub struct State {
    pub status: String,
    pub running: bool,
    pub paused: bool,
    pub exit_code: Option<i64>,
    pub oom_killed: bool,
    // The rest is read by `make repro` (tests/repro/main.rs), which compiles this module too;
    // the scenario suite reads none of it: dead code is allowed for its build.
    /// How many times Docker restarted it (a restart policy, `docker restart`).
    #[allow(dead_code)]
    pub restart_count: i64,
    /// The health check's status (`starting`, `healthy`, `unhealthy`); `None` without one.
    #[allow(dead_code)]
    pub health: Option<String>,
    /// When it last started and finished, RFC 3339 on the engine's clock (`FinishedAt` is
    /// Docker's zero time, year 1, until it has finished).
    #[allow(dead_code)]
    pub started_at: Option<String>,
    #[allow(dead_code)]
    pub finished_at: Option<String>,
}

pub async fn state(docker: &Docker, id: &str) -> Result<State> {
    let inspect = docker
        .inspect_container(id, None)
        .await
        .with_context(|| format!("inspect container {}", short(id)))?;
    let s = inspect.state.unwrap_or_default();
    Ok(State {
        status: s.status.map(|x| x.to_string()).unwrap_or_default(),
        running: s.running.unwrap_or(false),
        paused: s.paused.unwrap_or(false),
        exit_code: s.exit_code,
        oom_killed: s.oom_killed.unwrap_or(false),
        restart_count: inspect.restart_count.unwrap_or(0),
        health: s.health.and_then(|h| h.status).map(|x| x.to_string()).filter(|x| !x.is_empty()),
        started_at: s.started_at,
        finished_at: s.finished_at,
    })
}

/// The host port that `container_port/tcp` is published on (bound to 127.0.0.1). It changes on
/// every container restart, so callers read it again afterwards.
pub async fn host_port(docker: &Docker, id: &str, container_port: u16) -> Result<u16> {
    let inspect = docker
        .inspect_container(id, None)
        .await
        .with_context(|| format!("inspect container {} for its ports", short(id)))?;
    let key = format!("{container_port}/tcp");
    inspect
        .network_settings
        .and_then(|n| n.ports)
        .and_then(|p| p.get(&key).cloned().flatten())
        .and_then(|bindings| bindings.into_iter().find_map(|b| b.host_port))
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| anyhow!("container {} has no published port for {key}", short(id)))
}

/// One output stream of a container, split into lines.
#[derive(Debug, Clone, Default)]
pub struct Logs {
    pub stdout: Vec<String>,
    pub stderr: Vec<String>,
}

impl Logs {
    fn push(&mut self, (stream, line): (Stream, String)) {
        match stream {
            Stream::Stdout => self.stdout.push(line),
            Stream::Stderr => self.stderr.push(line),
        }
    }
}

/// Reassembles log chunks into lines: Docker may split a line across chunks.
#[derive(Default)]
struct LineSplitter {
    partial_out: String,
    partial_err: String,
}

#[derive(Clone, Copy)]
enum Stream {
    Stdout,
    Stderr,
}

impl LineSplitter {
    /// Feeds one chunk; returns the complete lines it finished, with their stream.
    fn feed(&mut self, chunk: bollard::container::LogOutput) -> Vec<(Stream, String)> {
        use bollard::container::LogOutput;
        let (stream, message, partial) = match chunk {
            LogOutput::StdOut { message } | LogOutput::Console { message } => {
                (Stream::Stdout, message, &mut self.partial_out)
            }
            LogOutput::StdErr { message } => (Stream::Stderr, message, &mut self.partial_err),
            LogOutput::StdIn { .. } => return Vec::new(),
        };
        partial.push_str(&String::from_utf8_lossy(&message));
        let mut lines = Vec::new();
        while let Some(end) = partial.find('\n') {
            let line: String = partial.drain(..=end).collect();
            lines.push((stream, line.trim_end_matches(['\n', '\r']).to_string()));
        }
        lines
    }

    /// The unterminated tails, once the stream has ended.
    fn finish(self) -> Vec<(Stream, String)> {
        let mut rest = Vec::new();
        if !self.partial_out.is_empty() {
            rest.push((Stream::Stdout, self.partial_out));
        }
        if !self.partial_err.is_empty() {
            rest.push((Stream::Stderr, self.partial_err));
        }
        rest
    }
}

/// The logs so far (all runs of the container, in order).
pub async fn logs(docker: &Docker, id: &str) -> Result<Logs> {
    let stream =
        docker.logs(id, Some(LogsOptionsBuilder::default().stdout(true).stderr(true).build()));
    collect_lines(stream, || format!("read logs of container {}", short(id))).await
}

/// One line of a container's output and when Docker received it. For `make repro`
/// (tests/repro/main.rs) only, which compiles this module too: dead code for the suite's build.
#[allow(dead_code)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimedLine {
    pub stderr: bool,
    /// RFC 3339 with nanoseconds, on the engine's clock (the clock of `State::started_at`).
    pub time: String,
    pub text: String,
}

/// The logs so far, stdout and stderr in the order Docker stored them, each line with Docker's
/// own timestamp: when it was written, whenever it is read. For `make repro`, as [`TimedLine`].
#[allow(dead_code)]
pub async fn timed_logs(docker: &Docker, id: &str) -> Result<Vec<TimedLine>> {
    let options = LogsOptionsBuilder::default().stdout(true).stderr(true).timestamps(true).build();
    let mut stream = std::pin::pin!(docker.logs(id, Some(options)));
    let mut splitter = LineSplitter::default();
    let mut lines = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.with_context(|| format!("read logs of container {}", short(id)))?;
        lines.extend(splitter.feed(chunk));
    }
    lines.extend(splitter.finish());
    // Docker puts the timestamp and one space in front of every line it stored.
    Ok(lines
        .into_iter()
        .map(|(stream, line)| {
            let (time, text) = line.split_once(' ').unwrap_or((line.as_str(), ""));
            TimedLine {
                stderr: matches!(stream, Stream::Stderr),
                time: time.to_string(),
                text: text.to_string(),
            }
        })
        .collect())
}

/// Reads a finite stream of output chunks (logs, an exec's output) into stdout and stderr lines.
async fn collect_lines(
    stream: impl futures::Stream<Item = Result<bollard::container::LogOutput, bollard::errors::Error>>,
    what: impl Fn() -> String,
) -> Result<Logs> {
    let mut stream = std::pin::pin!(stream);
    let mut splitter = LineSplitter::default();
    let mut logs = Logs::default();
    while let Some(chunk) = stream.next().await {
        splitter.feed(chunk.with_context(&what)?).into_iter().for_each(|line| logs.push(line));
    }
    splitter.finish().into_iter().for_each(|line| logs.push(line));
    Ok(logs)
}

/// Follows the logs from the start and returns the first stdout line for which `matches` holds.
/// `Ok(None)` when the stream ends (the container stopped) without such a line.
pub async fn follow_until(
    docker: &Docker,
    id: &str,
    mut matches: impl FnMut(&str) -> bool,
) -> Result<Option<String>> {
    let mut stream = docker.logs(
        id,
        Some(LogsOptionsBuilder::default().stdout(true).stderr(true).follow(true).build()),
    );
    let mut splitter = LineSplitter::default();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.with_context(|| format!("follow logs of container {}", short(id)))?;
        for (stream, line) in splitter.feed(chunk) {
            if matches!(stream, Stream::Stdout) && matches(&line) {
                return Ok(Some(line));
            }
        }
    }
    Ok(splitter
        .finish()
        .into_iter()
        .find(|(s, l)| matches!(s, Stream::Stdout) && matches(l))
        .map(|(_, l)| l))
}

/// Streams the container's stdout lines from the start, as they come, through a channel fed by
/// a task (so a caller can wait for many events on one connection).
pub fn stdout_lines(
    docker: &Docker,
    id: &str,
) -> tokio::sync::mpsc::UnboundedReceiver<Result<String>> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let docker = docker.clone();
    let id = id.to_string();
    tokio::spawn(async move {
        let mut stream = docker.logs(
            &id,
            Some(LogsOptionsBuilder::default().stdout(true).stderr(false).follow(true).build()),
        );
        let mut splitter = LineSplitter::default();
        while let Some(chunk) = stream.next().await {
            let lines = match chunk {
                Ok(chunk) => splitter.feed(chunk),
                Err(e) => {
                    let _ = tx.send(Err(anyhow!("follow logs of container {}: {e}", short(&id))));
                    return;
                }
            };
            for (_, line) in lines {
                if tx.send(Ok(line)).is_err() {
                    return;
                }
            }
        }
        for (_, line) in splitter.finish() {
            let _ = tx.send(Ok(line));
        }
    });
    rx
}

/// The result of `docker exec`.
#[derive(Debug, Clone)]
pub struct ExecOutput {
    pub code: i64,
    pub stdout: Vec<String>,
    pub stderr: Vec<String>,
}

pub async fn exec(docker: &Docker, id: &str, argv: &[&str]) -> Result<ExecOutput> {
    let what = || format!("exec {argv:?} in container {}", short(id));
    let created = create_exec(docker, id, argv, true).await.with_context(what)?;
    let output = match docker.start_exec(&created.id, None).await.with_context(what)? {
        StartExecResults::Attached { output, .. } => collect_lines(output, what).await?,
        StartExecResults::Detached => Logs::default(),
    };
    let code = docker.inspect_exec(&created.id).await.with_context(what)?.exit_code.unwrap_or(-1);
    Ok(ExecOutput { code, stdout: output.stdout, stderr: output.stderr })
}

async fn create_exec(
    docker: &Docker,
    id: &str,
    argv: &[&str],
    attach: bool,
) -> Result<bollard::exec::CreateExecResults, bollard::errors::Error> {
    let options = CreateExecOptions {
        cmd: Some(argv.iter().map(|s| s.to_string()).collect::<Vec<String>>()),
        attach_stdout: Some(attach),
        attach_stderr: Some(attach),
        ..Default::default()
    };
    docker.create_exec(id, options).await
}

/// Starts `argv` with `docker exec -d`: it keeps running as a process whose parent is outside
/// the container (PPid 0 inside), as `docker exec` and HEALTHCHECK processes are.
pub async fn exec_detached(docker: &Docker, id: &str, argv: &[&str]) -> Result<()> {
    let what = || format!("exec -d {argv:?} in container {}", short(id));
    let created = create_exec(docker, id, argv, false).await.with_context(what)?;
    let options =
        bollard::exec::StartExecOptions { detach: true, tty: false, output_capacity: None };
    docker.start_exec(&created.id, Some(options)).await.with_context(what)?;
    Ok(())
}

/// Memory in use by the container, in bytes: `usage` minus the page cache, with the cache key
/// that exists on cgroup v1 (`total_inactive_file`/`cache`) or v2 (`inactive_file`).
pub async fn memory_usage(docker: &Docker, id: &str) -> Result<u64> {
    let stats = docker
        .stats(id, Some(StatsOptionsBuilder::default().stream(false).one_shot(true).build()))
        .next()
        .await
        .ok_or_else(|| anyhow!("no stats for container {}", short(id)))?
        .with_context(|| format!("stats of container {}", short(id)))?;
    let memory = stats.memory_stats.context("stats without memory_stats")?;
    let usage = memory.usage.context("memory_stats without usage")?;
    let cache = memory
        .stats
        .as_ref()
        .and_then(|s| s.get("inactive_file").or(s.get("total_inactive_file")).copied())
        .unwrap_or(0);
    Ok(usage.saturating_sub(cache))
}

pub fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::*;
    use crate::infrastructure::spec::{HealthCheck, Limits, Published};

    const LOOPBACK: Placement<'static> =
        Placement { publish_ip: IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), runtime: None };

    #[test]
    fn the_sweep_spares_live_owners_and_other_scopes_and_takes_dead_owners_of_its_own() {
        let me = owner_id();
        let scope = owner_scope();
        assert!(me.starts_with(scope) && scope.contains('/'), "{me}");
        assert!(spared(me, scope), "a live owner is spared");
        let dead = format!("{scope}:{}:1", u32::MAX);
        assert!(!spared(&dead, scope), "a dead owner of this scope is swept");
        let elsewhere = format!("another-boot/4026531836:{}:1", u32::MAX);
        assert!(spared(&elsewhere, scope), "another scope's container is left alone");
        let unscoped_me = me.strip_prefix(scope).unwrap().trim_start_matches(':');
        assert!(spared(unscoped_me, scope), "an unscoped label is judged as this scope's");
        assert!(!spared(&format!("{}:1", u32::MAX), scope));
        assert!(!spared("garbage", scope));
    }

    fn request() -> CreateRequest {
        CreateRequest {
            image: "scinit-test:1".into(),
            cmd: vec!["/init".into(), "--".into(), "x".into()],
            docker_init: false,
            env: vec!["A=1".into()],
            labels: BTreeMap::from([("scinit.test.scenario".into(), "s".into())]),
            network: Network::Bridge,
            published: vec![
                Published { container: 8080, host: None },
                Published { container: 9090, host: Some(19090) },
            ],
            sysctls: BTreeMap::new(),
            working_dir: None,
            limits: Limits::default(),
            health_check: None,
            tty: false,
            stdin: false,
        }
    }

    #[test]
    fn published_ports_are_bound_on_the_engines_publish_address_only() {
        let gateway: IpAddr = "172.17.0.1".parse().unwrap();
        let body = create_body(&request(), &[], Placement { publish_ip: gateway, runtime: None });
        let bindings = body.host_config.unwrap().port_bindings.unwrap();
        for binding in bindings.values() {
            assert_eq!(binding.clone().unwrap()[0].host_ip.as_deref(), Some("172.17.0.1"));
        }
    }

    #[test]
    fn the_chosen_runtime_reaches_the_body_and_none_leaves_the_engines_default() {
        let crun = Placement { runtime: Some("crun"), ..LOOPBACK };
        let body = create_body(&request(), &[], crun);
        assert_eq!(body.host_config.unwrap().runtime.as_deref(), Some("crun"));
        assert_eq!(create_body(&request(), &[], LOOPBACK).host_config.unwrap().runtime, None);
    }

    #[test]
    fn published_ports_are_bound_on_the_loopback_beside_a_local_engine() {
        let body = create_body(&request(), &[("scinit.test".into(), "1".into())], LOOPBACK);
        let host = body.host_config.unwrap();
        let bindings = host.port_bindings.unwrap();
        let only = |port: &str| bindings[port].clone().unwrap()[0].clone();
        assert_eq!(only("8080/tcp").host_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(only("8080/tcp").host_port.as_deref(), Some(""));
        assert_eq!(only("9090/tcp").host_port.as_deref(), Some("19090"));
        assert_eq!(body.exposed_ports.unwrap(), ["8080/tcp", "9090/tcp"]);
        let labels = body.labels.unwrap();
        assert_eq!(labels["scinit.test"], "1");
        assert_eq!(labels["scinit.test.scenario"], "s");
        assert_eq!(host.network_mode.as_deref(), Some("bridge"));
        assert_eq!(host.init, None);
    }

    #[test]
    fn limits_terminal_health_check_and_dockers_init_reach_the_body() {
        let r = CreateRequest {
            docker_init: true,
            network: Network::Host,
            limits: Limits { memory_bytes: Some(32 << 20), pids: Some(64), nofile: Some(16) },
            health_check: Some(HealthCheck {
                argv: vec!["/probe".into()],
                interval: Duration::from_millis(200),
            }),
            tty: true,
            stdin: true,
            ..request()
        };
        let body = create_body(&r, &[], LOOPBACK);
        assert_eq!(body.tty, Some(true));
        assert_eq!((body.open_stdin, body.stdin_once), (Some(true), Some(true)));
        let health = body.healthcheck.unwrap();
        assert_eq!(health.test.unwrap(), ["CMD", "/probe"]);
        assert_eq!(health.interval, Some(200_000_000));
        let host = body.host_config.unwrap();
        assert_eq!(host.init, Some(true));
        assert_eq!(host.network_mode.as_deref(), Some("host"));
        assert!(host.port_bindings.is_none() && body.exposed_ports.is_none());
        assert_eq!(
            (host.memory, host.memory_swap, host.pids_limit),
            (Some(32 << 20), Some(32 << 20), Some(64))
        );
        let nofile = &host.ulimits.unwrap()[0];
        assert_eq!((nofile.soft, nofile.hard), (Some(16), Some(16)));
    }
}
