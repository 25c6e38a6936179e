//! The container guard: a started scenario container, driven from outside through the engine,
//! and removed when the guard drops (panics included). Its verbs carry the scenario's evidence:
//! waits that fail with the container's story, and the helpers that turn "the init did not do
//! its part" into a [`Deviation`] judged against the expected outputs.

use std::fmt::Display;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};

use super::engine::{self, ExecOutput, Logs, State};
use super::pid1::{self, Pid1Moment};
use super::run::Deviation;
use super::spec::CreateRequest;
use crate::utils::child_report::{ChildReport, Fact, Proc, Ready};
use crate::utils::proc::{self, PortView};

/// How a container ended, as Docker reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    pub code: i64,
    /// From the call that caused or awaited the exit until Docker saw it.
    pub elapsed: Duration,
}

/// Reads stdout lines in order; see [`Container::follow`].
pub struct Follower {
    lines: tokio::sync::mpsc::UnboundedReceiver<Result<String>>,
}

impl Follower {
    /// The next fact of `kind` for which `matches` holds, at most `within` from now.
    pub async fn next_fact(
        &mut self,
        kind: &str,
        within: Duration,
        mut matches: impl FnMut(&Fact) -> bool,
    ) -> Result<Fact> {
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
        tokio::time::timeout(within, wait)
            .await
            .map_err(|_| anyhow!("no `{kind}` fact within {within:?}"))?
    }

    /// The next stdout line for which `matches` holds, at most `within` from now: for programs
    /// that do not speak the testkit protocol (a foreign server's log).
    pub async fn next_line(
        &mut self,
        what: &str,
        within: Duration,
        mut matches: impl FnMut(&str) -> bool,
    ) -> Result<String> {
        let wait = async {
            while let Some(line) = self.lines.recv().await {
                let line = line?;
                if matches(&line) {
                    return Ok(line);
                }
            }
            bail!("the container's output ended before {what}")
        };
        tokio::time::timeout(within, wait)
            .await
            .map_err(|_| anyhow!("no {what} within {within:?}"))?
    }
}

/// A started scenario container. Dropping it removes the container (unless
/// `SCINIT_TEST_KEEP=1`, for debugging).
pub struct Container {
    docker: engine::Client,
    id: String,
    host_network: bool,
    init_label: String,
    /// PID 1 is a shell waiting to `exec` the init (`Pid1Wrapper::Held`).
    held: bool,
    /// Set once the container is gone, so that the drop does not remove it again.
    removed: bool,
}

impl Container {
    /// Creates and starts the container `request` describes; the guard exists before the
    /// container starts, so a failed start still removes it.
    pub(super) async fn start(
        request: &CreateRequest,
        scenario: &str,
        init_label: &str,
        held: bool,
    ) -> Result<Container> {
        let docker = engine::client().await?;
        let id = engine::create(&docker, &container_name(scenario), request).await?;
        let c = Container {
            docker,
            id,
            host_network: request.network == super::spec::Network::Host,
            init_label: init_label.to_string(),
            held,
            removed: false,
        };
        engine::start(&c.docker, &c.id).await?;
        Ok(c)
    }

    /// `docker kill -s SIG`: `"SIGTERM"`, `"TERM"`, `"RTMIN+3"` all work.
    pub async fn kill(&self, signal: &str) -> Result<()> {
        engine::kill(&self.docker, &self.id, signal).await
    }

    /// `docker stop -t T`: the stop signal, then SIGKILL after T. Returns the exit it caused.
    pub async fn stop(&self, timeout: Duration) -> Result<Exit> {
        let start = Instant::now();
        engine::stop(&self.docker, &self.id, timeout).await?;
        let code = engine::wait_exit(&self.docker, &self.id).await?;
        Ok(Exit { code, elapsed: start.elapsed() })
    }

    /// `docker restart -t T` (stop, then start again: the container's own restart).
    pub async fn restart(&self, timeout: Duration) -> Result<()> {
        engine::restart(&self.docker, &self.id, timeout).await
    }

    pub async fn pause(&self) -> Result<()> {
        engine::pause(&self.docker, &self.id).await
    }

    pub async fn unpause(&self) -> Result<()> {
        engine::unpause(&self.docker, &self.id).await
    }

    /// `Some(exit)` if the container exits within `within`, `None` if it is still running then.
    pub async fn exited_within(&self, within: Duration) -> Result<Option<Exit>> {
        let start = Instant::now();
        match tokio::time::timeout(within, engine::wait_exit(&self.docker, &self.id)).await {
            Ok(code) => Ok(Some(Exit { code: code?, elapsed: start.elapsed() })),
            Err(_) => Ok(None),
        }
    }

    /// The exit within `within` of `after` (what should have ended it). Still running then is
    /// a deviation: the init did not end the container.
    pub async fn exit_within(&self, within: Duration, after: impl Display) -> Result<Exit> {
        let exit = self.exited_within(within).await?;
        self.require(exit, format_args!("still running {within:?} after {after}")).await
    }

    /// Waits for the container to exit, at most `within`. A timeout is a harness error that
    /// carries the container's story: for exits the scenario causes itself.
    pub async fn wait_exit(&self, within: Duration) -> Result<Exit> {
        match self.exited_within(within).await? {
            Some(exit) => Ok(exit),
            None => bail!("still running {within:?} later\n{}", self.evidence().await),
        }
    }

    /// `value`, or a deviation that says `what` is missing, with the container's evidence.
    pub async fn require<T>(&self, value: Option<T>, what: impl Display) -> Result<T> {
        match value {
            Some(v) => Ok(v),
            None => Err(self.deviation(what).await),
        }
    }

    /// A deviation that says `what`, with the container's evidence.
    pub async fn deviation(&self, what: impl Display) -> anyhow::Error {
        Deviation(format!("{what}\n{}", self.evidence().await)).into()
    }

    pub async fn state(&self) -> Result<State> {
        engine::state(&self.docker, &self.id).await
    }

    /// PID 1's `/proc/1/status` and `/proc/1/smaps_rollup` (`VmRSS`, `Threads`, `Anonymous`,
    /// ...), read inside the container: the same fields whatever the engine's host.
    pub async fn pid1_memory(&self) -> Result<proc::Status> {
        let out = self.exec(&["cat", "/proc/1/status", "/proc/1/smaps_rollup"]).await?;
        if out.code != 0 {
            bail!("reading PID 1's memory failed ({}): {}", out.code, out.stderr.join(" | "));
        }
        Ok(proc::Status::parse(&out.stdout.join("\n")))
    }

    /// Sends `signal` (`TERM`, `SIGTERM`, ...) to PID 1 at `moment` of the init's start-up, from
    /// inside the container (`testkit signal-pid1` through `docker exec`). A held container is
    /// released by the same command, so that it sees the whole start-up. Returns whether PID 1
    /// had not yet reached `moment` when the watch began.
    ///
    /// `docker start` returns once runc has released its stub, possibly before its `execve`, and
    /// a busy machine can then keep the new program off the CPU for milliseconds before its
    /// `main` runs: a signal sent in either window is lost whatever the init, so both moments
    /// come after them. Docker's `--init` cannot be held: its start-up has passed by the time the
    /// exec runs, so for it the race is a plain early signal.
    pub async fn signal_pid1_at(
        &self,
        moment: Pid1Moment,
        signal: &str,
        within: Duration,
    ) -> Result<bool> {
        let argv = pid1::signal_at(moment, signal, within, self.held);
        let out = self.exec(&argv.iter().map(String::as_str).collect::<Vec<_>>()).await?;
        // The line comes before the signal: an init that exits at once on it ends the container,
        // and the exec with it, so the exec's own exit code says nothing.
        pid1::signalled(&out.stdout).ok_or_else(|| {
            anyhow!(
                "testkit signal-pid1 did not signal PID 1 (exit {}): {}",
                out.code,
                [out.stdout, out.stderr].concat().join(" | ")
            )
        })
    }

    pub async fn logs(&self) -> Result<Logs> {
        engine::logs(&self.docker, &self.id).await
    }

    /// Every line written so far, stdout and stderr, with the time Docker received it. For `make
    /// repro` (tests/repro/main.rs), which compiles this module too; the scenarios do not use it.
    #[allow(dead_code)]
    pub async fn timed_logs(&self) -> Result<Vec<engine::TimedLine>> {
        engine::timed_logs(&self.docker, &self.id).await
    }

    /// What the child (and everything else writing to stdout) reported so far.
    pub async fn report(&self) -> Result<ChildReport> {
        Ok(ChildReport::parse(&self.logs().await?.stdout))
    }

    /// Waits until a stdout line satisfies `matches`; fails if the container stops first or
    /// `within` passes.
    pub async fn wait_for_line(
        &self,
        what: &str,
        within: Duration,
        matches: impl FnMut(&str) -> bool,
    ) -> Result<String> {
        let followed = engine::follow_until(&self.docker, &self.id, matches);
        match tokio::time::timeout(within, followed).await {
            Ok(Ok(Some(line))) => Ok(line),
            Ok(Ok(None)) => {
                bail!("the container stopped before {what} appeared\n{}", self.evidence().await)
            }
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
                "fact #{n} of kind `{kind}` did not appear within {within:?}, or the container \
                 stopped first\n{}",
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
        let followed = engine::follow_until(&self.docker, &self.id, |line| {
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
        Follower { lines: engine::stdout_lines(&self.docker, &self.id) }
    }

    /// The next handshake on `follower`: the next (re)started child, within `within` of `after`.
    /// Its absence is a deviation: the init did not start the child.
    pub async fn next_ready(
        &self,
        follower: &mut Follower,
        within: Duration,
        after: impl Display,
    ) -> Result<Ready> {
        let fact = follower.next_fact("ready", within, |_| true).await;
        Ready::from_fact(&check_ok!(self, fact, "no new child after {after}"))
    }

    /// `docker exec`, whatever its exit code.
    pub async fn exec(&self, argv: &[&str]) -> Result<ExecOutput> {
        engine::exec(&self.docker, &self.id, argv).await
    }

    /// `docker exec sh -c script`, which must exit 0: a failure is the harness's (the step the
    /// scenario needed did not happen), with the script's stderr.
    pub async fn sh(&self, script: &str) -> Result<ExecOutput> {
        self.sh_argv(&["/bin/sh", "-c", script]).await
    }

    async fn sh_argv(&self, argv: &[&str]) -> Result<ExecOutput> {
        let out = self.exec(argv).await?;
        if out.code != 0 {
            bail!("{argv:?} in the container exited {}: {}", out.code, out.stderr.join("\n"));
        }
        Ok(out)
    }

    /// `docker exec -d`: see [`engine::exec_detached`].
    pub async fn exec_detached(&self, argv: &[&str]) -> Result<()> {
        engine::exec_detached(&self.docker, &self.id, argv).await
    }

    /// Writes `data` to the container's stdin and ends the input (a container made with
    /// [`ContainerSpec::interactive`](super::spec::ContainerSpec::interactive)): see
    /// [`engine::write_stdin`].
    pub async fn write_stdin(&self, data: &[u8]) -> Result<()> {
        engine::write_stdin(&self.docker, &self.id, data).await
    }

    /// The process table inside the container, zombies included (`docker top` hides them).
    pub async fn processes(&self) -> Result<Vec<Proc>> {
        let out = self.sh_argv(&["/bin/testkit", "ps"]).await?;
        ChildReport::parse(&out.stdout).processes()
    }

    /// The TCP sockets on `port` inside the container: is it listening, how many connections
    /// wait in its accept queue, how many are established.
    pub async fn listening(&self, port: u16) -> Result<PortView> {
        let out = self.exec(&["cat", "/proc/net/tcp", "/proc/net/tcp6"]).await?;
        Ok(PortView::parse(&out.stdout, port))
    }

    /// The inodes of the sockets process `pid` holds, in fd order.
    pub async fn socket_inodes(&self, pid: i32) -> Result<Vec<u64>> {
        let out = self.exec(&["ls", "-l", &format!("/proc/{pid}/fd")]).await?;
        // An fd closed while `ls` lists the directory (a connection ending) makes it exit 1 with
        // the rest listed; only an empty listing means the process is gone.
        if out.stdout.is_empty() {
            bail!("ls /proc/{pid}/fd failed ({}): {}", out.code, out.stderr.join("\n"));
        }
        Ok(proc::socket_inodes(&out.stdout))
    }

    /// The host port for `container_port` (127.0.0.1). Read again after every restart: Docker
    /// picks a new one. On the host network it is the container port itself.
    pub async fn host_port(&self, container_port: u16) -> Result<u16> {
        if self.host_network {
            return Ok(container_port);
        }
        engine::host_port(&self.docker, &self.id, container_port).await
    }

    pub async fn memory_usage(&self) -> Result<u64> {
        engine::memory_usage(&self.docker, &self.id).await
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
            Ok(l) => {
                format!("--- stdout\n{}\n--- stderr\n{}", l.stdout.join("\n"), l.stderr.join("\n"))
            }
            Err(e) => format!("(logs unavailable: {e:#})"),
        };
        let id = engine::short(&self.id);
        format!("=== container {id} (init {}): {state}\n{logs}\n===", self.init_label)
    }

    /// Removes the container now (the guard would do it on drop).
    pub async fn remove(mut self) -> Result<()> {
        engine::remove(&self.docker, &self.id).await?;
        self.removed = true;
        Ok(())
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if self.removed || std::env::var("SCINIT_TEST_KEEP").is_ok_and(|v| v == "1") {
            return;
        }
        let id = self.id.clone();
        // Drop cannot await, and the test's runtime may be shutting down: a thread with its own
        // runtime and client removes the container, and the guard waits for it, so nothing
        // outlives the test. A failure leaves the container to the next run's sweep.
        let removal = std::thread::spawn(move || {
            let runtime =
                tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            runtime.block_on(async {
                let docker = engine::connect().await.ok()?;
                engine::remove(&docker, &id).await.ok()
            })
        });
        let _ = removal.join();
    }
}

/// A name that says which scenario and test process a container belongs to.
fn container_name(scenario: &str) -> String {
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let short: String = scenario.chars().take(40).collect();
    format!("scinit-test-{short}-{}-{n}", std::process::id())
}
