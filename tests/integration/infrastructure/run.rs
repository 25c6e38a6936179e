//! Scenarios: the builder a test body uses to describe its container, and the runner that judges
//! the body's outcome against the init's expected outputs and records it.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use bollard::models::{ContainerCreateBody, HostConfig, PortBinding};
use testcontainers::core::{Healthcheck, IntoContainerPort, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{GenericImage, ImageExt};
use tokio::sync::OnceCell;

use super::container::{InitContainer, Owner, RemoveOnDrop};
use super::docker;
use super::expectations::{self, Expect, Observed, Verdict};
use super::image::{ensure_image, RootFs};
use super::init_profile::{InitProfile, Intent, Launch, LiveReload, Unsupported};
use super::results::{self, Measurement, Record};
use crate::static_build::{static_binaries, StaticBinaries};

/// How long one scenario may take before the harness calls it hung.
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(180);
/// How long a container may take to print its child's handshake.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The init a scenario body runs against, and where it records its figures.
#[derive(Clone)]
pub struct Init {
    pub profile: InitProfile,
    scenario: String,
    measurements: Arc<Mutex<Vec<Measurement>>>,
}

impl Init {
    pub fn new(profile: InitProfile, scenario: &str) -> Init {
        Init { profile, scenario: scenario.to_string(), measurements: Arc::default() }
    }

    pub fn scenario_id(&self) -> &str {
        &self.scenario
    }

    /// Records a named figure for `results.json` (e.g. `("longest_gap", 12.0, "ms")`).
    pub fn record(&self, name: &str, value: f64, unit: &str) {
        if let Ok(mut m) = self.measurements.lock() {
            m.push(Measurement { name: name.to_string(), value, unit: unit.to_string() });
        }
    }

    fn measurements(&self) -> Vec<Measurement> {
        self.measurements.lock().map(|m| m.clone()).unwrap_or_default()
    }
}

/// The init behaved differently from the contract: judged against the expected outputs, unlike
/// harness errors, which always fail.
#[derive(Debug)]
pub struct Deviation(pub String);

impl fmt::Display for Deviation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Deviation {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    /// The default bridge, ports published on 127.0.0.1.
    Bridge,
    /// The host's network namespace: no docker-proxy in the path.
    Host,
}

/// A container to start: the child, what the init should do, and the container's limits.
#[derive(Clone)]
pub struct Scenario {
    init: Init,
    intent: Intent,
    network: Network,
    wait_ready: bool,
    env: Vec<(String, String)>,
    memory_limit: Option<i64>,
    pids_limit: Option<i64>,
    nofile_limit: Option<i64>,
    extra_files: Vec<(String, std::path::PathBuf)>,
    data_files: Vec<(String, Vec<u8>)>,
    published: Vec<u16>,
    fixed_host_ports: HashMap<u16, u16>,
    sysctls: HashMap<String, String>,
    working_dir: Option<String>,
    health_check: Option<(Vec<String>, Duration)>,
    under_shell: bool,
    under_script: Option<String>,
    tty: bool,
    held: bool,
}

impl Scenario {
    pub fn new(init: &Init) -> Scenario {
        Scenario {
            init: init.clone(),
            intent: Intent::default(),
            network: Network::Bridge,
            wait_ready: true,
            env: Vec::new(),
            memory_limit: None,
            pids_limit: None,
            nofile_limit: None,
            extra_files: Vec::new(),
            data_files: Vec::new(),
            published: Vec::new(),
            fixed_host_ports: HashMap::new(),
            sysctls: HashMap::new(),
            working_dir: None,
            health_check: None,
            under_shell: false,
            under_script: None,
            tty: false,
            held: false,
        }
    }

    /// The child's command line (`testkit` and busybox applets are on `PATH`).
    pub fn child<S: Into<String>>(mut self, argv: impl IntoIterator<Item = S>) -> Scenario {
        self.intent.child = argv.into_iter().map(Into::into).collect();
        self
    }

    pub fn grace(mut self, grace: Duration) -> Scenario {
        self.intent.grace = Some(grace);
        self
    }

    pub fn with_ports(mut self, ports: impl IntoIterator<Item = u16>) -> Scenario {
        self.intent.ports = ports.into_iter().collect();
        self
    }

    /// Publishes container ports on 127.0.0.1 without asking the init to bind them (for a child
    /// that listens by itself). Ports given to `with_ports` are published too.
    pub fn publish(mut self, ports: impl IntoIterator<Item = u16>) -> Scenario {
        self.published = ports.into_iter().collect();
        self
    }

    /// Publishes `container_port` on 127.0.0.1:`host_port` rather than on a port Docker picks,
    /// so the address survives a `docker restart` (a picked port changes).
    pub fn publish_at(mut self, container_port: u16, host_port: u16) -> Scenario {
        self.published.push(container_port);
        self.fixed_host_ports.insert(container_port, host_port);
        self
    }

    /// A namespaced kernel setting of the container (`docker run --sysctl`), e.g. turning IPv6
    /// back on for the loopback, which Docker disables on networks without IPv6.
    pub fn sysctl(mut self, key: &str, value: &str) -> Scenario {
        self.sysctls.insert(key.to_string(), value.to_string());
        self
    }

    pub fn bind_addr(mut self, addr: &str) -> Scenario {
        self.intent.bind_addr = Some(addr.to_string());
        self
    }

    pub fn restart_signal(mut self, signal: &str) -> Scenario {
        self.intent.restart_signal = Some(signal.to_string());
        self
    }

    pub fn live_reload(mut self, watch_path: &str, debounce: Duration) -> Scenario {
        self.intent.live_reload = Some(LiveReload { watch_path: watch_path.to_string(), debounce });
        self
    }

    /// Raw scinit arguments (scinit-only scenarios such as bad command lines).
    pub fn init_args<S: Into<String>>(mut self, args: impl IntoIterator<Item = S>) -> Scenario {
        self.intent.init_args = args.into_iter().map(Into::into).collect();
        self
    }

    pub fn network(mut self, network: Network) -> Scenario {
        self.network = network;
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Scenario {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    pub fn memory_limit(mut self, bytes: i64) -> Scenario {
        self.memory_limit = Some(bytes);
        self
    }

    pub fn pids_limit(mut self, pids: i64) -> Scenario {
        self.pids_limit = Some(pids);
        self
    }

    pub fn nofile_limit(mut self, fds: i64) -> Scenario {
        self.nofile_limit = Some(fds);
        self
    }

    /// Adds a host program (with its shared libraries) to the image at `path`.
    pub fn with_program(mut self, path: &str, host: impl Into<std::path::PathBuf>) -> Scenario {
        self.extra_files.push((path.to_string(), host.into()));
        self
    }

    /// The container's working directory (`docker run -w`), which the child must inherit.
    pub fn working_dir(mut self, path: &str) -> Scenario {
        self.working_dir = Some(path.to_string());
        self
    }

    /// A `HEALTHCHECK CMD argv` run by Docker every `interval` (its processes are entered from
    /// outside the PID namespace, like `docker exec`).
    pub fn health_check<S: Into<String>>(mut self, argv: impl IntoIterator<Item = S>, interval: Duration) -> Scenario {
        self.health_check = Some((argv.into_iter().map(Into::into).collect(), interval));
        self
    }

    /// Runs the init's command line under `/bin/sh -c`, so that the shell is PID 1 and the init
    /// is not (the init is not PID 1 in a pod sharing its PID namespace, or under a wrapper).
    /// Docker's own init is always PID 1: that profile reports it as unsupported.
    pub fn under_shell(mut self) -> Scenario {
        self.under_shell = true;
        self
    }

    /// Like [`Scenario::under_shell`], but PID 1 is `/bin/sh <script> <init command line...>`: the
    /// script prepares the container (e.g. takes a port) before it starts the init with `"$@"`.
    pub fn under_script(mut self, script: &str) -> Scenario {
        self.under_script = Some(script.to_string());
        self
    }

    /// Adds a data file (mode 0644) to the image at `path`: a configuration, a document.
    pub fn with_file(mut self, path: &str, contents: impl Into<Vec<u8>>) -> Scenario {
        self.data_files.push((path.to_string(), contents.into()));
        self
    }

    /// Gives the container a terminal, as `docker run -t` does: PID 1's stdin, stdout and stderr
    /// are the pty, and the init should hand the terminal's foreground to its child.
    pub fn tty(mut self) -> Scenario {
        self.tty = true;
        self
    }

    /// Holds PID 1 before the init runs: a shell waits on a FIFO and then `exec`s the init as
    /// the same PID 1, so a test can watch the init's start-up from its first instruction (see
    /// [`InitContainer::signal_pid1_at`]). Implies `without_ready_wait`. Docker's own init
    /// cannot be held (Docker starts it); it starts normally.
    pub fn held_before_init(mut self) -> Scenario {
        self.held = true;
        self.wait_ready = false;
        self
    }

    /// Starts without waiting for the child's handshake: for containers expected to exit at
    /// once (bad command lines, exec failures).
    pub fn without_ready_wait(mut self) -> Scenario {
        self.wait_ready = false;
        self
    }

    /// Builds (or reuses) the image, starts the container and, unless told otherwise, waits for
    /// the child's `ready` line.
    pub async fn start(self) -> Result<InitContainer> {
        let profile = &self.init.profile;
        let mut launch = profile.launch(&self.intent)?;
        if self.under_shell {
            if launch.docker_init {
                return Err(Unsupported { init: profile.label.clone(), what: "run below a shell as PID 1".into() }.into());
            }
            launch.cmd = shell_wrapped(&launch.cmd);
        }
        let held = self.held && !launch.docker_init;
        if held {
            let hold = format!("mkfifo {HOLD_FIFO} && read -r _ < {HOLD_FIFO}; exec \"$@\"");
            launch.cmd.splice(0..0, ["/bin/sh".to_string(), "-c".into(), hold, "held".into()]);
        }
        if let Some(script) = &self.under_script {
            if launch.docker_init {
                return Err(Unsupported { init: profile.label.clone(), what: "run below a script as PID 1".into() }.into());
            }
            launch.cmd.splice(0..0, ["/bin/sh".to_string(), script.clone()]);
        }
        let docker = suite_docker().await?;
        let binaries = built_binaries().await?;
        let mut fs = RootFs::standard(&binaries.testkit)?;
        if let Some(binary) = &profile.binary {
            fs.host_program("/init", binary)?;
        }
        for (path, host) in &self.extra_files {
            fs.host_program(path, host)?;
        }
        for (path, contents) in &self.data_files {
            fs.file(path, contents.clone(), 0o644);
        }
        let tag = ensure_image(&docker, &fs).await?;
        let (name, version) = tag.split_once(':').context("image tag without version")?;

        let mut image = GenericImage::new(name, version);
        let mut ports = self.intent.ports.clone();
        ports.extend(&self.published);
        for port in &ports {
            image = image.with_exposed_port(port.tcp());
        }
        if self.wait_ready {
            image = image.with_wait_for(WaitFor::message_on_stdout("ready pid="));
        }
        let mut request = image
            .with_cmd(launch.cmd.clone())
            .with_container_name(container_name(self.init.scenario_id()))
            .with_startup_timeout(READY_TIMEOUT);
        for (k, v) in docker::labels() {
            request = request.with_label(k, v);
        }
        request = request.with_label("scinit.test.scenario", self.init.scenario_id());
        for (k, v) in profile.env.iter().chain(&self.env) {
            request = request.with_env_var(k, v);
        }
        if let Some(n) = self.nofile_limit {
            request = request.with_ulimit("nofile", n, Some(n));
        }
        if let Some(dir) = &self.working_dir {
            request = request.with_working_dir(dir);
        }
        if let Some((argv, interval)) = &self.health_check {
            request = request.with_health_check(Healthcheck::cmd(argv.iter().cloned()).with_interval(*interval));
        }
        match self.network {
            Network::Bridge => {}
            Network::Host => request = request.with_network("host"),
        }
        let (memory, pids, docker_init, bridge) =
            (self.memory_limit, self.pids_limit, launch.docker_init, self.network == Network::Bridge);
        let (fixed_host_ports, sysctls) = (self.fixed_host_ports.clone(), self.sysctls.clone());
        let exposed = ports.clone();
        let configure = move |hc: &mut HostConfig| {
            // testcontainers publishes on 0.0.0.0; the suite only ever exposes 127.0.0.1.
            hc.publish_all_ports = Some(false);
            if bridge {
                hc.port_bindings = Some(
                    ports
                        .iter()
                        .map(|p| {
                            let host_port = fixed_host_ports.get(p).map_or_else(String::new, u16::to_string);
                            let binding = PortBinding { host_ip: Some("127.0.0.1".into()), host_port: Some(host_port) };
                            (format!("{p}/tcp"), Some(vec![binding]))
                        })
                        .collect::<HashMap<_, _>>(),
                );
            }
            if docker_init {
                hc.init = Some(true);
            }
            if !sysctls.is_empty() {
                hc.sysctls = Some(sysctls.clone());
            }
            if let Some(bytes) = memory {
                hc.memory = Some(bytes);
                hc.memory_swap = Some(bytes);
            }
            if let Some(n) = pids {
                hc.pids_limit = Some(n);
            }
        };
        if self.tty {
            return self.start_with_tty(docker, &tag, launch, configure, exposed).await;
        }
        request = request.with_host_config_modifier(configure);
        let container = request
            .start()
            .await
            .map_err(|e| anyhow!("starting {:?} under {}: {e}", launch.cmd, profile.label))?;
        let container = InitContainer::new(
            Owner::Testcontainers(Box::new(container)),
            docker,
            self.network == Network::Host,
            profile.label.clone(),
        );
        Ok(if held { container.held() } else { container })
    }

    /// testcontainers cannot set `Tty`, so a terminal container is created through bollard with
    /// the same settings and its own removal guard.
    async fn start_with_tty(
        self,
        docker: bollard::Docker,
        tag: &str,
        launch: Launch,
        configure: impl Fn(&mut HostConfig),
        ports: Vec<u16>,
    ) -> Result<InitContainer> {
        if self.health_check.is_some() || self.nofile_limit.is_some() {
            bail!("a health check or an fd limit is not supported together with a TTY");
        }
        let mut host_config = HostConfig::default();
        configure(&mut host_config);
        host_config.network_mode = Some(
            match self.network {
                Network::Bridge => "bridge",
                Network::Host => "host",
            }
            .to_string(),
        );
        let mut labels: HashMap<String, String> = docker::labels().into_iter().collect();
        labels.insert("scinit.test.scenario".into(), self.init.scenario_id().to_string());
        let env = self.init.profile.env.iter().chain(&self.env).map(|(k, v)| format!("{k}={v}")).collect();
        let body = ContainerCreateBody {
            image: Some(tag.to_string()),
            cmd: Some(launch.cmd),
            env: Some(env),
            labels: Some(labels),
            tty: Some(true),
            working_dir: self.working_dir.clone(),
            exposed_ports: Some(ports.iter().map(|p| format!("{p}/tcp")).collect()),
            host_config: Some(host_config),
            ..Default::default()
        };
        let id = docker::create(&docker, &container_name(self.init.scenario_id()), body).await?;
        let container = InitContainer::new(
            Owner::Direct(RemoveOnDrop::new(id.clone())),
            docker.clone(),
            self.network == Network::Host,
            self.init.profile.label.clone(),
        );
        docker::start(&docker, &id).await?;
        if self.wait_ready {
            container.wait_for_line("the child's handshake", READY_TIMEOUT, |l| l.starts_with("ready pid=")).await?;
        }
        Ok(container)
    }
}

/// Where a held container's shell waits before it `exec`s the init.
pub(super) const HOLD_FIFO: &str = "/tmp/.scinit-test-hold";

/// `/bin/sh -c '<argv quoted>; exit $?'`: the trailing command keeps the shell from exec'ing the
/// init in its place, so the shell stays PID 1.
fn shell_wrapped(argv: &[String]) -> Vec<String> {
    let quoted: Vec<String> = argv.iter().map(|a| format!("'{}'", a.replace('\'', r"'\''"))).collect();
    vec!["/bin/sh".into(), "-c".into(), format!("{}; exit $?", quoted.join(" "))]
}

fn container_name(scenario: &str) -> String {
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let short: String = scenario.chars().take(40).collect();
    format!("scinit-test-{short}-{}-{n}", std::process::id())
}

/// The static binaries of this tree (scinit, testkit, broken-init), built on first use; the
/// build blocks, so it runs off the async threads.
pub async fn built_binaries() -> Result<StaticBinaries> {
    tokio::task::spawn_blocking(|| static_binaries().cloned()).await?.map_err(|e| anyhow!(e))
}

/// A Docker client for this test's runtime, after the once-per-process leftover sweep.
async fn suite_docker() -> Result<bollard::Docker> {
    static SWEPT: OnceCell<()> = OnceCell::const_new();
    let docker = docker::connect().await?;
    SWEPT
        .get_or_try_init(|| async {
            docker::sweep_leftovers(&docker).await.map(|_| ())
        })
        .await?;
    Ok(docker)
}

/// Runs `body` against the init under test and judges it against the expected outputs.
/// Panics (fails the test) on FAIL, UNEXPECTED-PASS and ERROR, with the whole story.
pub async fn run<F, Fut>(scenario: &str, body: F)
where
    F: FnOnce(Init) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let profile = match InitProfile::under_test() {
        Ok(p) => p.clone(),
        Err(e) => panic!("{e:#}"),
    };
    let expect = match expectations::lookup(profile.kind, scenario) {
        Ok(e) => e,
        Err(e) => panic!("{e:#}"),
    };
    let init = Init::new(profile.clone(), scenario);
    let start = Instant::now();
    let (verdict, detail) = match &expect {
        Expect::NotApplicable(reason) => (Verdict::NotApplicable, reason.clone()),
        _ => {
            let observed = observe(init.clone(), body).await;
            let detail = match &observed {
                Observed::Pass => String::new(),
                Observed::Deviation(d) | Observed::Error(d) => d.clone(),
            };
            (expectations::judge(&expect, &observed), detail)
        }
    };
    let recorded = results::append(&Record {
        scenario,
        init: &profile.label,
        verdict,
        detail: &detail,
        duration_ms: start.elapsed().as_millis(),
        measurements: &init.measurements(),
    });
    let expected = match &expect {
        Expect::Pass => "pass".to_string(),
        Expect::Differs(why) => format!("differs ({why})"),
        Expect::NotApplicable(why) => format!("n/a ({why})"),
        Expect::Varies(why) => format!("either outcome ({why})"),
    };
    if verdict.is_failure() {
        panic!("{verdict}: scenario `{scenario}` against {}: expected {expected}\n{detail}", profile.label);
    }
    if let Err(e) = recorded {
        panic!("recording the result of `{scenario}`: {e:#}");
    }
}

/// Runs `body` and classifies its outcome; used by [`run`] and by the suite-power tests, which
/// judge broken inits themselves.
pub async fn observe<F, Fut>(init: Init, body: F) -> Observed
where
    F: FnOnce(Init) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    match tokio::time::timeout(SCENARIO_TIMEOUT, body(init)).await {
        Err(_) => Observed::Error(format!("the scenario did not finish within {SCENARIO_TIMEOUT:?}")),
        Ok(Ok(())) => Observed::Pass,
        Ok(Err(e)) => {
            if let Some(d) = e.downcast_ref::<Deviation>() {
                Observed::Deviation(d.0.clone())
            } else if let Some(u) = e.downcast_ref::<Unsupported>() {
                Observed::Error(format!("{u}: mark the scenario `n/a` for this init"))
            } else {
                Observed::Error(format!("{e:#}"))
            }
        }
    }
}
