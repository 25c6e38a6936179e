//! The container guard: a running init as PID 1, driven from outside. testcontainers owns start,
//! wait-for-ready and removal on drop; everything else goes to bollard on the same id.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use bollard::Docker;
use testcontainers::{ContainerAsync, GenericImage};

use super::docker::{self, ExecOutput, Logs, State};
use crate::utils::child_report::{ChildReport, Fact, Proc, Ready};

/// How a container ended, as Docker reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    pub code: i64,
    /// From the call that caused or awaited the exit until Docker saw it.
    pub elapsed: Duration,
}

/// A moment of the init's start-up, as the host sees PID 1; see [`InitContainer::signal_pid1_at`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pid1Moment {
    /// The first time PID 1, running the init (no longer runc's stub), is asleep. That comes
    /// after a correct init's first statement, and catches an init that sleeps (e.g. while
    /// spawning its child) before it blocks its signals.
    FirstSleep,
    /// The first time PID 1, running the init, blocks or catches the signal: from then on a
    /// correct init holds it, so this catches an init that discards signals that arrived before
    /// its loop runs.
    SignalHeld,
}

impl Pid1Moment {
    /// Whether PID 1's `/proc/<pid>/status` shows the moment has come.
    fn reached(self, status: &str, signo: i32) -> bool {
        let field = |name: &str| status.lines().find_map(|l| l.strip_prefix(name)).map(str::trim).unwrap_or("");
        let mask = |name: &str| u64::from_str_radix(field(name), 16).unwrap_or(0);
        if is_stub(field("Name:")) {
            return false;
        }
        let asleep = field("State:").starts_with(['S', 'Z', 'X']);
        match self {
            Pid1Moment::FirstSleep => asleep,
            // An init asleep in `sigwait`/`sigtimedwait` holds the signal too, although the kernel
            // clears the waited-for signals from `SigBlk` for the length of the wait.
            Pid1Moment::SignalHeld => asleep || (mask("SigBlk:") | mask("SigCgt:")) & (1u64 << (signo - 1)) != 0,
        }
    }
}

/// Whether a `/proc/<pid>/status` name is one of the programs that run as PID 1 *before* the
/// init: runc's stub, or the shell of a held container.
fn is_stub(name: &str) -> bool {
    name.starts_with("runc:") || name == "sh"
}

/// Reads stdout lines in order; see [`InitContainer::follow`].
pub struct Follower {
    lines: tokio::sync::mpsc::UnboundedReceiver<Result<String>>,
}

impl Follower {
    /// The next fact of `kind` for which `matches` holds, at most `within` from now.
    pub async fn next_fact(&mut self, kind: &str, within: Duration, mut matches: impl FnMut(&Fact) -> bool) -> Result<Fact> {
        let wait = async {
            while let Some(line) = self.lines.recv().await {
                if let Some(fact) = Fact::parse(&line?) {
                    if fact.kind == kind && matches(&fact) {
                        return Ok(fact);
                    }
                }
            }
            bail!("the container's output ended before a `{kind}` fact")
        };
        tokio::time::timeout(within, wait).await.map_err(|_| anyhow!("no `{kind}` fact within {within:?}"))?
    }

    /// The next stdout line for which `matches` holds, at most `within` from now: for programs
    /// that do not speak the testkit protocol (a foreign server's log).
    pub async fn next_line(&mut self, what: &str, within: Duration, mut matches: impl FnMut(&str) -> bool) -> Result<String> {
        let wait = async {
            while let Some(line) = self.lines.recv().await {
                let line = line?;
                if matches(&line) {
                    return Ok(line);
                }
            }
            bail!("the container's output ended before {what}")
        };
        tokio::time::timeout(within, wait).await.map_err(|_| anyhow!("no {what} within {within:?}"))?
    }
}

/// A started scenario container. Dropping it removes the container (unless
/// `TESTCONTAINERS_COMMAND=keep`, for debugging).
pub struct InitContainer {
    owner: Owner,
    docker: Docker,
    id: String,
    host_network: bool,
    init_label: String,
    /// PID 1 is a shell waiting to `exec` the init (see `Scenario::held_before_init`).
    held: bool,
}

impl InitContainer {
    pub(super) fn new(owner: Owner, docker: Docker, host_network: bool, init_label: String) -> Self {
        let id = match &owner {
            Owner::Testcontainers(container) => container.id().to_string(),
            Owner::Direct(guard) => guard.id.clone(),
        };
        InitContainer { owner, docker, id, host_network, init_label, held: false }
    }

    pub(super) fn held(mut self) -> Self {
        self.held = true;
        self
    }

    /// `docker kill -s SIG`: `"SIGTERM"`, `"TERM"`, `"RTMIN+3"` all work.
    pub async fn kill(&self, signal: &str) -> Result<()> {
        docker::kill(&self.docker, &self.id, signal).await
    }

    /// `docker stop -t T`: the stop signal, then SIGKILL after T. Returns the exit it caused.
    pub async fn stop(&self, timeout: Duration) -> Result<Exit> {
        let start = Instant::now();
        docker::stop(&self.docker, &self.id, timeout).await?;
        let code = docker::wait_exit(&self.docker, &self.id).await?;
        Ok(Exit { code, elapsed: start.elapsed() })
    }

    /// `docker restart -t T` (stop, then start again: the container's own restart).
    pub async fn restart(&self, timeout: Duration) -> Result<()> {
        docker::restart(&self.docker, &self.id, timeout).await
    }

    pub async fn pause(&self) -> Result<()> {
        docker::pause(&self.docker, &self.id).await
    }

    pub async fn unpause(&self) -> Result<()> {
        docker::unpause(&self.docker, &self.id).await
    }

    /// Waits for the container to exit, at most `within`. A timeout is an error that carries the
    /// container's story (still running is a finding, not a hang).
    pub async fn wait_exit(&self, within: Duration) -> Result<Exit> {
        let start = Instant::now();
        match tokio::time::timeout(within, docker::wait_exit(&self.docker, &self.id)).await {
            Ok(code) => Ok(Exit { code: code?, elapsed: start.elapsed() }),
            Err(_) => bail!("still running {within:?} later\n{}", self.evidence().await),
        }
    }

    /// `Some(exit)` if the container exits within `within`, `None` if it is still running then.
    pub async fn exit_within(&self, within: Duration) -> Result<Option<Exit>> {
        let start = Instant::now();
        match tokio::time::timeout(within, docker::wait_exit(&self.docker, &self.id)).await {
            Ok(code) => Ok(Some(Exit { code: code?, elapsed: start.elapsed() })),
            Err(_) => Ok(None),
        }
    }

    pub async fn state(&self) -> Result<State> {
        docker::state(&self.docker, &self.id).await
    }

    /// Sends `signal` to PID 1 with the host's `kill(2)` at `moment` of the init's start-up,
    /// spinning on the host's `/proc/<pid>` so the signal lands within microseconds of it.
    ///
    /// `docker start` returns once runc has released its stub (`runc:[2:INIT]`), possibly before
    /// its `execve`, and a busy machine can then keep the new program off the CPU for
    /// milliseconds before its `main` runs: a signal sent in either window is lost whatever the
    /// init, so both moments come after them. `kill(2)` from the host is where `docker kill`
    /// ends (runc signals PID 1 from the parent namespace), without the milliseconds of API
    /// plumbing before it. Reads the host's `/proc`, like `performance/` (the suite runs beside
    /// the Docker daemon). A held container (`Scenario::held_before_init`) is released only once
    /// the watch runs, so the whole start-up of the init is seen. Returns whether PID 1 had not
    /// yet reached `moment` when the watch began.
    pub async fn signal_pid1_at(&self, moment: Pid1Moment, signal: &str, within: Duration) -> Result<bool> {
        let signal: nix::sys::signal::Signal = signal.parse().map_err(|e| anyhow!("signal {signal}: {e}"))?;
        let pid = i32::try_from(self.state().await?.host_pid)?;
        let watch = Self::watch_and_signal(pid, moment, signal, within);
        if !self.held {
            return watch.await?;
        }
        let released = self.exec(&["/bin/sh", "-c", &format!("echo go > {}", super::scenario::HOLD_FIFO)]).await?;
        if released.code != 0 {
            bail!("releasing the held init failed ({}): {}", released.code, released.stderr.join("\n"));
        }
        watch.await?
    }

    fn watch_and_signal(
        pid: i32,
        moment: Pid1Moment,
        signal: nix::sys::signal::Signal,
        within: Duration,
    ) -> tokio::task::JoinHandle<Result<bool>> {
        // Spin on a blocking thread rather than poll with pauses: the windows that matter (a
        // first sleep while spawning the child, the moments after the mask is set) may last well
        // under a millisecond.
        tokio::task::spawn_blocking(move || {
            let path = format!("/proc/{pid}/status");
            let deadline = Instant::now() + within;
            let mut waited = false;
            loop {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                if text.is_empty() || moment.reached(&text, signal as i32) {
                    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal)
                        .map_err(|e| anyhow!("kill {signal} → host pid {pid}: {e}"))?;
                    return Ok(waited);
                }
                waited = true;
                if Instant::now() >= deadline {
                    bail!("PID 1 did not reach {moment:?} within {within:?}; last seen: {text}");
                }
                std::thread::yield_now();
            }
        })
    }

    pub async fn logs(&self) -> Result<Logs> {
        docker::logs(&self.docker, &self.id).await
    }

    /// What the child (and everything else writing to stdout) reported so far.
    pub async fn report(&self) -> Result<ChildReport> {
        Ok(ChildReport::parse(&self.logs().await?.stdout))
    }

    /// Waits until a stdout line satisfies `matches`; fails if the container stops first or
    /// `within` passes.
    pub async fn wait_for_line(&self, what: &str, within: Duration, matches: impl FnMut(&str) -> bool) -> Result<String> {
        match tokio::time::timeout(within, docker::follow_until(&self.docker, &self.id, matches)).await {
            Ok(Ok(Some(line))) => Ok(line),
            Ok(Ok(None)) => bail!("the container stopped before {what} appeared\n{}", self.evidence().await),
            Ok(Err(e)) => Err(e),
            Err(_) => bail!("{what} did not appear within {within:?}\n{}", self.evidence().await),
        }
    }

    /// Waits for the `n`-th (1-based) fact of `kind` for which `matches` holds; its absence is a
    /// harness error that carries the container's story.
    pub async fn wait_for_fact(
        &self,
        kind: &str,
        n: usize,
        within: Duration,
        matches: impl FnMut(&Fact) -> bool,
    ) -> Result<Fact> {
        match self.fact_within(kind, n, within, matches).await? {
            Some(fact) => Ok(fact),
            None => bail!(
                "fact #{n} of kind `{kind}` did not appear within {within:?}, or the container stopped first\n{}",
                self.evidence().await
            ),
        }
    }

    /// The child's handshake: its first `ready` line.
    pub async fn first_ready(&self) -> Result<Ready> {
        Ready::from_fact(&self.wait_for_fact("ready", 1, Duration::from_secs(5), |_| true).await?)
    }

    /// The `n`-th (1-based) fact of `kind` for which `matches` holds, or `None` when it has not
    /// appeared within `within` or the container stopped without it: for evidence whose absence
    /// is the finding (a deviation to judge), not a harness error.
    pub async fn fact_within(
        &self,
        kind: &str,
        n: usize,
        within: Duration,
        mut matches: impl FnMut(&Fact) -> bool,
    ) -> Result<Option<Fact>> {
        let mut seen = 0;
        let followed = docker::follow_until(&self.docker, &self.id, |line| {
            let hit = Fact::parse(line).is_some_and(|f| f.kind == kind && matches(&f));
            seen += usize::from(hit);
            hit && seen == n
        });
        match tokio::time::timeout(within, followed).await {
            Ok(line) => Ok(line?.as_deref().and_then(Fact::parse)),
            Err(_) => Ok(None),
        }
    }

    /// A follower of the child's stdout: many waits on one log stream, each from where the
    /// previous one stopped.
    pub fn follow(&self) -> Follower {
        Follower { lines: docker::stdout_lines(&self.docker, &self.id) }
    }

    pub async fn exec(&self, argv: &[&str]) -> Result<ExecOutput> {
        docker::exec(&self.docker, &self.id, argv).await
    }

    /// `docker exec -d`: see [`docker::exec_detached`].
    pub async fn exec_detached(&self, argv: &[&str]) -> Result<()> {
        docker::exec_detached(&self.docker, &self.id, argv).await
    }

    /// The process table inside the container, zombies included (`docker top` hides them).
    pub async fn processes(&self) -> Result<Vec<Proc>> {
        let out = self.exec(&["/bin/testkit", "ps"]).await?;
        if out.code != 0 {
            bail!("testkit ps failed ({}): {}", out.code, out.stderr.join("\n"));
        }
        ChildReport::parse(&out.stdout).processes()
    }

    /// The host port for `container_port` (127.0.0.1). Read again after every restart: Docker
    /// picks a new one. On the host network it is the container port itself.
    pub async fn host_port(&self, container_port: u16) -> Result<u16> {
        if self.host_network {
            return Ok(container_port);
        }
        docker::host_port(&self.docker, &self.id, container_port).await
    }

    pub async fn memory_usage(&self) -> Result<u64> {
        docker::memory_usage(&self.docker, &self.id).await
    }

    /// Everything a failure message needs: Docker's state, the init's stderr and the child's
    /// stdout. Errors while collecting are reported inline: evidence never hides the failure.
    pub async fn evidence(&self) -> String {
        let state = match self.state().await {
            Ok(s) => format!(
                "status={} running={} exit_code={:?} oom_killed={}",
                s.status, s.running, s.exit_code, s.oom_killed
            ),
            Err(e) => format!("(state unavailable: {e:#})"),
        };
        let logs = match self.logs().await {
            Ok(l) => format!("--- stdout\n{}\n--- stderr\n{}", l.stdout.join("\n"), l.stderr.join("\n")),
            Err(e) => format!("(logs unavailable: {e:#})"),
        };
        format!("=== container {} (init {}): {state}\n{logs}\n===", docker::short(&self.id), self.init_label)
    }

    /// Removes the container now (the guard would do it on drop).
    pub async fn remove(self) -> Result<()> {
        match self.owner {
            Owner::Testcontainers(container) => {
                container.rm().await.map_err(|e| anyhow!("remove container {}: {e}", docker::short(&self.id)))
            }
            Owner::Direct(mut guard) => {
                docker::remove(&self.docker, &self.id).await?;
                guard.removed = true;
                Ok(())
            }
        }
    }
}

/// Who removes the container when the guard drops.
pub(super) enum Owner {
    /// Started by testcontainers, which removes it on drop.
    Testcontainers(Box<ContainerAsync<GenericImage>>),
    /// Created through bollard, for what testcontainers cannot ask for (a TTY).
    Direct(RemoveOnDrop),
}

/// Removes a directly created container on drop, as testcontainers does for its own.
pub(super) struct RemoveOnDrop {
    id: String,
    removed: bool,
}

impl RemoveOnDrop {
    pub(super) fn new(id: String) -> RemoveOnDrop {
        RemoveOnDrop { id, removed: false }
    }
}

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if self.removed || std::env::var("TESTCONTAINERS_COMMAND").is_ok_and(|v| v == "keep") {
            return;
        }
        let id = self.id.clone();
        // Drop cannot await, and the test's runtime may be shutting down: a thread with its own
        // runtime and client removes the container, and the guard waits for it, so nothing
        // outlives the test. A failure leaves the container to the next run's sweep.
        let removal = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            runtime.block_on(async {
                let docker = docker::connect().await.ok()?;
                docker::remove(&docker, &id).await.ok()
            })
        });
        let _ = removal.join();
    }
}
