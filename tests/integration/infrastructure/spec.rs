//! The container spec: a plain value that says what a scenario's container is (the init and
//! what stands in front of it, the child, ports, files, limits, terminal, health check), built
//! with `with_*`-style methods as testcontainers' `ImageExt` is. [`ContainerSpec::request`] turns
//! it, without any I/O, into the engine-neutral [`CreateRequest`]; `start` builds or reuses the
//! image and hands the request to the engine.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;

use super::container::Container;
use super::image::{self, RootFs};
use super::inits::{Capability, Init, Intent, LiveReload, Readiness, ReadySignal, Unsupported};
use super::location;
use super::pid1;
use super::run::{Inapplicable, Run};
use crate::static_build::StaticBinaries;

/// What stands between Docker and the init: who is PID 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pid1Wrapper {
    /// The init is PID 1 (the default).
    None,
    /// `/bin/sh -c '<init argv>; exit $?'`: a shell stays PID 1 and the init is its child, as
    /// under a wrapper entrypoint or in a pod that shares its PID namespace.
    Shell,
    /// `/bin/sh <script> <init argv...>`: the script prepares the container (e.g. takes a
    /// port, ignores signals) and then starts the init with `"$@"`.
    Script(String),
    /// A shell holds PID 1 before the init runs and then `exec`s it as the same PID 1, so a
    /// test can watch the init's start-up from its first instruction (see `pid1.rs`). Docker's
    /// own init cannot be held (Docker starts it): it starts normally.
    Held,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    /// The default bridge, ports published on 127.0.0.1.
    Bridge,
    /// The host's network namespace: no docker-proxy in the path.
    Host,
}

/// A published container port, and the host port it must have (`None`: Docker picks one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    pub container: u16,
    pub host: Option<u16>,
}

/// A Docker HEALTHCHECK: `argv` every `interval`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    pub argv: Vec<String>,
    pub interval: Duration,
}

/// Resource limits of the container (`docker run --memory/--pids-limit/--ulimit nofile`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    pub memory_bytes: Option<i64>,
    pub pids: Option<i64>,
    pub nofile: Option<i64>,
}

/// What the engine is asked to create: the spec resolved against its init and image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateRequest {
    pub image: String,
    pub cmd: Vec<String>,
    /// Docker's own init goes in front of `cmd` (`docker run --init`).
    pub docker_init: bool,
    pub env: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub network: Network,
    /// Published on 127.0.0.1 (the bridge only: on the host network ports need no publishing).
    pub published: Vec<Published>,
    pub sysctls: BTreeMap<String, String>,
    pub working_dir: Option<String>,
    pub limits: Limits,
    pub health_check: Option<HealthCheck>,
    pub tty: bool,
    /// The container's stdin is open for writing through an attach, and closes when the writer
    /// detaches (`docker run -i` fed from a pipe).
    pub stdin: bool,
}

/// The label naming the scenario a container belongs to.
pub const LABEL_SCENARIO: &str = "scinit.test.scenario";

/// How long a container may take to print its child's handshake.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A scenario's container, as a value.
#[derive(Debug, Clone)]
pub struct ContainerSpec {
    init: Init,
    scenario: String,
    intent: Intent,
    wrapper: Pid1Wrapper,
    network: Network,
    wait_ready: bool,
    env: Vec<(String, String)>,
    limits: Limits,
    programs: Vec<(String, PathBuf)>,
    trees: Vec<(PathBuf, Vec<String>)>,
    files: Vec<(String, Vec<u8>)>,
    symlinks: Vec<(String, String)>,
    published: Vec<Published>,
    sysctls: BTreeMap<String, String>,
    working_dir: Option<String>,
    health_check: Option<HealthCheck>,
    tty: bool,
    stdin: bool,
}

impl ContainerSpec {
    /// The run's init as PID 1, running the child given to [`ContainerSpec::child`].
    pub fn new(run: &Run) -> ContainerSpec {
        ContainerSpec {
            init: run.init().clone(),
            scenario: run.scenario_id().to_string(),
            intent: Intent::default(),
            wrapper: Pid1Wrapper::None,
            network: Network::Bridge,
            wait_ready: true,
            env: Vec::new(),
            limits: Limits::default(),
            programs: Vec::new(),
            trees: Vec::new(),
            files: Vec::new(),
            symlinks: Vec::new(),
            published: Vec::new(),
            sysctls: BTreeMap::new(),
            working_dir: None,
            health_check: None,
            tty: false,
            stdin: false,
        }
    }

    /// The child's command line (`testkit` and busybox applets are on `PATH`).
    pub fn child<S: Into<String>>(mut self, argv: impl IntoIterator<Item = S>) -> Self {
        self.intent.child = argv.into_iter().map(Into::into).collect();
        self
    }

    /// The grace period between the stop signal and SIGKILL (inits without one ignore it).
    pub fn grace(mut self, grace: Duration) -> Self {
        self.intent.grace = Some(grace);
        self
    }

    /// Ports the init binds and hands to the child (published on 127.0.0.1 on the bridge).
    pub fn with_ports(mut self, ports: impl IntoIterator<Item = u16>) -> Self {
        self.intent.ports = ports.into_iter().collect();
        self
    }

    /// Publishes container ports on 127.0.0.1 without asking the init to bind them (for a
    /// child that listens by itself).
    pub fn publish(mut self, ports: impl IntoIterator<Item = u16>) -> Self {
        self.published
            .extend(ports.into_iter().map(|container| Published { container, host: None }));
        self
    }

    /// Publishes `container_port` on 127.0.0.1:`host_port` rather than on a port Docker picks,
    /// so the address survives a `docker restart` (a picked port changes).
    pub fn publish_at(mut self, container_port: u16, host_port: u16) -> Self {
        self.published.push(Published { container: container_port, host: Some(host_port) });
        self
    }

    /// A namespaced kernel setting of the container (`docker run --sysctl`), e.g. turning IPv6
    /// back on for the loopback, which Docker disables on networks without IPv6.
    pub fn sysctl(mut self, key: &str, value: &str) -> Self {
        self.sysctls.insert(key.to_string(), value.to_string());
        self
    }

    pub fn bind_addr(mut self, addr: &str) -> Self {
        self.intent.bind_addr = Some(addr.to_string());
        self
    }

    pub fn restart_signal(mut self, signal: &str) -> Self {
        self.intent.restart_signal = Some(signal.to_string());
        self
    }

    pub fn live_reload(mut self, watch_path: &str, debounce: Duration) -> Self {
        self.intent.live_reload = Some(LiveReload { watch_path: watch_path.to_string(), debounce });
        self
    }

    /// Raw scinit arguments (scinit-only scenarios such as bad command lines).
    pub fn init_args<S: Into<String>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.intent.init_args = args.into_iter().map(Into::into).collect();
        self
    }

    /// The signal that stops the child, for a restart or a shutdown (`--stop-signal`).
    pub fn stop_signal(mut self, signal: &str) -> Self {
        self.intent.stop_signal = Some(signal.to_string());
        self
    }

    /// Restarts start the new child first and stop the old one once the new one is ready
    /// (`--restart-order start-first`), within `timeout` if given (`--ready-timeout-secs`).
    pub fn start_first(mut self, ready: ReadySignal, timeout: Option<Duration>) -> Self {
        self.intent.start_first = Some(Readiness { signal: ready, timeout });
        self
    }

    pub fn network(mut self, network: Network) -> Self {
        self.network = network;
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    pub fn memory_limit(mut self, bytes: i64) -> Self {
        self.limits.memory_bytes = Some(bytes);
        self
    }

    pub fn pids_limit(mut self, pids: i64) -> Self {
        self.limits.pids = Some(pids);
        self
    }

    pub fn nofile_limit(mut self, fds: i64) -> Self {
        self.limits.nofile = Some(fds);
        self
    }

    /// Adds a host program (with its shared libraries) to the image at `path`.
    pub fn with_program(mut self, path: &str, host: impl Into<PathBuf>) -> Self {
        self.programs.push((path.to_string(), host.into()));
        self
    }

    /// Copies the host directory `path` into the image at the same path, without the sub-paths
    /// in `skip` (relative to `path`); its ELF files bring their shared libraries (see
    /// [`RootFs::host_tree`]): an interpreter's library, a package.
    pub fn with_host_tree(mut self, path: &str, skip: &[&str]) -> Self {
        self.trees.push((path.into(), skip.iter().map(|s| s.to_string()).collect()));
        self
    }

    /// Adds a data file (mode 0644) to the image at `path`: a configuration, a document.
    pub fn with_file(mut self, path: &str, contents: impl Into<Vec<u8>>) -> Self {
        self.files.push((path.to_string(), contents.into()));
        self
    }

    /// Adds a symbolic link at `path` to `target` (e.g. a second name for a program).
    pub fn with_symlink(mut self, path: &str, target: &str) -> Self {
        self.symlinks.push((path.to_string(), target.to_string()));
        self
    }

    /// The container's working directory (`docker run -w`), which the child must inherit.
    pub fn working_dir(mut self, path: &str) -> Self {
        self.working_dir = Some(path.to_string());
        self
    }

    /// A `HEALTHCHECK CMD argv` run by Docker every `interval` (its processes are entered from
    /// outside the PID namespace, like `docker exec`).
    pub fn health_check<S: Into<String>>(
        mut self,
        argv: impl IntoIterator<Item = S>,
        interval: Duration,
    ) -> Self {
        self.health_check =
            Some(HealthCheck { argv: argv.into_iter().map(Into::into).collect(), interval });
        self
    }

    /// What stands between Docker and the init (default: nothing, the init is PID 1).
    /// [`Pid1Wrapper::Held`] implies [`ContainerSpec::without_ready_wait`].
    pub fn pid1(mut self, wrapper: Pid1Wrapper) -> Self {
        if wrapper == Pid1Wrapper::Held {
            self.wait_ready = false;
        }
        self.wrapper = wrapper;
        self
    }

    /// Gives the container a terminal, as `docker run -t` does: PID 1's stdin, stdout and stderr
    /// are the pty, and the init should hand the terminal's foreground to its child.
    pub fn tty(mut self) -> Self {
        self.tty = true;
        self
    }

    /// Opens the container's stdin, as `docker run -i` does: PID 1's stdin is a pipe (or, with
    /// [`ContainerSpec::tty`], the terminal) that [`Container::write_stdin`] writes to. Without a
    /// terminal, the pipe closes when that writer is done, so the reader sees end of file.
    pub fn interactive(mut self) -> Self {
        self.stdin = true;
        self
    }

    /// Starts without waiting for the child's handshake: for containers expected to exit at
    /// once (bad command lines, exec failures).
    pub fn without_ready_wait(mut self) -> Self {
        self.wait_ready = false;
        self
    }

    /// Whether PID 1 waits to be released before it runs the init.
    fn held(&self) -> bool {
        self.wrapper == Pid1Wrapper::Held && !self.init.is_docker_init()
    }

    /// The image's content: the standard root with the init and the spec's files.
    fn root_fs(&self, binaries: &StaticBinaries) -> Result<RootFs> {
        let mut fs = RootFs::standard(binaries)?;
        if let Some(binary) = &self.init.binary {
            fs.host_program("/init", binary)?;
        }
        for (path, host) in &self.programs {
            fs.host_program(path, host)?;
        }
        for (root, skip) in &self.trees {
            fs.host_tree(root, &skip.iter().map(String::as_str).collect::<Vec<_>>())?;
        }
        for (path, contents) in &self.files {
            fs.file(path, contents.clone(), 0o644);
        }
        for (path, target) in &self.symlinks {
            fs.symlink(path, target);
        }
        Ok(fs)
    }

    /// The create request for this spec, on `image`. Pure: unit-tested without Docker.
    pub fn request(&self, image: &str) -> Result<CreateRequest, Unsupported> {
        let init_argv = self.init.argv(&self.intent)?;
        let docker_init = self.init.is_docker_init();
        let wrapped = matches!(self.wrapper, Pid1Wrapper::Shell | Pid1Wrapper::Script(_));
        if wrapped && docker_init {
            return Err(Unsupported {
                init: self.init.label.clone(),
                capability: Capability::Wrappable,
            });
        }
        let cmd = match &self.wrapper {
            Pid1Wrapper::None => init_argv,
            Pid1Wrapper::Shell => shell_wrapped(&init_argv),
            Pid1Wrapper::Script(script) => {
                ["/bin/sh".to_string(), script.clone()].into_iter().chain(init_argv).collect()
            }
            Pid1Wrapper::Held if docker_init => init_argv,
            Pid1Wrapper::Held => pid1::held(init_argv),
        };
        let mut published: Vec<Published> = self
            .intent
            .ports
            .iter()
            .map(|&container| Published { container, host: None })
            .chain(self.published.iter().copied())
            .collect();
        if self.network == Network::Host {
            published.clear();
        }
        Ok(CreateRequest {
            image: image.to_string(),
            cmd,
            docker_init,
            env: self.init.env.iter().chain(&self.env).map(|(k, v)| format!("{k}={v}")).collect(),
            labels: BTreeMap::from([(LABEL_SCENARIO.to_string(), self.scenario.clone())]),
            network: self.network,
            published,
            sysctls: self.sysctls.clone(),
            working_dir: self.working_dir.clone(),
            limits: self.limits.clone(),
            health_check: self.health_check.clone(),
            tty: self.tty,
            stdin: self.stdin,
        })
    }

    /// Builds (or reuses) the image, creates and starts the container and, unless told
    /// otherwise, waits for the child's `ready` line.
    pub async fn start(self) -> Result<Container> {
        let binaries = image::built_binaries().await?;
        // Connects first: the engine's location is known from then on.
        let tag = image::ensure(&self.root_fs(&binaries)?).await?;
        if self.network == Network::Host {
            if let Some(why) = &location::location()?.foreign_network {
                return Err(Inapplicable(format!(
                    "a container on the host network does not share this process's network: {why}"
                ))
                .into());
            }
        }
        let request = self.request(&tag)?;
        let c = Container::start(&request, &self.scenario, &self.init.label, self.held()).await?;
        if self.wait_ready {
            c.wait_for_line("the child's handshake", READY_TIMEOUT, |l| {
                l.starts_with("ready pid=")
            })
            .await?;
        }
        Ok(c)
    }
}

/// `/bin/sh -c '<argv quoted>; exit $?'`: the trailing command keeps the shell from exec'ing the
/// init in its place, so the shell stays PID 1.
fn shell_wrapped(argv: &[String]) -> Vec<String> {
    let quoted: Vec<String> =
        argv.iter().map(|a| format!("'{}'", a.replace('\'', r"'\''"))).collect();
    vec!["/bin/sh".into(), "-c".into(), format!("{}; exit $?", quoted.join(" "))]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::infrastructure::inits::{parse, Row};

    fn run_of(row: &str) -> Run {
        let table =
            "scinit | (built) | - | /init {scinit-flags} -- {child} | ports restart wrappable | docker-test\n\
                     tini | /usr/bin/tini-static | tini | /init -- {child} | wrappable | docker-test\n\
                     docker-init | (docker) | - | {child} | - | docker-test\n";
        let rows: &'static [Row] = Box::leak(parse(table).unwrap().into_boxed_slice());
        let row = rows.iter().find(|r| r.name == row).unwrap();
        Run::new(Init { row, label: row.name.clone(), binary: None, env: vec![] }, "a_scenario")
    }

    #[test]
    fn a_plain_spec_runs_the_init_with_the_child_and_labels_the_scenario() {
        let spec = ContainerSpec::new(&run_of("tini")).child(["testkit", "signals"]).env("A", "1");
        let request = spec.request("scinit-test:1").unwrap();
        assert_eq!(request.cmd, ["/init", "--", "testkit", "signals"]);
        assert_eq!(request.env, ["A=1"]);
        assert_eq!(request.labels[LABEL_SCENARIO], "a_scenario");
        assert!(!request.docker_init && !request.tty && request.published.is_empty());
        assert!(!request.stdin);
        let interactive = ContainerSpec::new(&run_of("tini")).tty().interactive();
        let request = interactive.request("scinit-test:1").unwrap();
        assert!(request.tty && request.stdin);
    }

    #[test]
    fn ports_are_bound_by_the_init_and_published_on_the_bridge_only() {
        let spec = ContainerSpec::new(&run_of("scinit")).with_ports([8080]).publish_at(9090, 19090);
        let request = spec.clone().request("i").unwrap();
        assert_eq!(
            request.published,
            [
                Published { container: 8080, host: None },
                Published { container: 9090, host: Some(19090) }
            ]
        );
        assert_eq!(request.cmd, ["/init", "--ports", "8080", "--"]);
        let on_host = spec.network(Network::Host).request("i").unwrap();
        assert!(on_host.published.is_empty());
    }

    #[test]
    fn wrappers_put_a_shell_or_a_script_in_front_of_the_init() {
        let spec = ContainerSpec::new(&run_of("tini")).child(["it's"]);
        let shell = spec.clone().pid1(Pid1Wrapper::Shell).request("i").unwrap();
        assert_eq!(shell.cmd, ["/bin/sh", "-c", r"'/init' '--' 'it'\''s'; exit $?"]);
        let script = spec.clone().pid1(Pid1Wrapper::Script("/s.sh".into())).request("i").unwrap();
        assert_eq!(script.cmd, ["/bin/sh", "/s.sh", "/init", "--", "it's"]);
        let held = spec.pid1(Pid1Wrapper::Held).request("i").unwrap();
        assert_eq!(&held.cmd[..2], ["/bin/sh", "-c"]);
        assert_eq!(&held.cmd[held.cmd.len() - 3..], ["/init", "--", "it's"]);
    }

    #[test]
    fn dockers_init_runs_the_child_itself_cannot_be_wrapped_and_starts_unheld() {
        let spec = ContainerSpec::new(&run_of("docker-init")).child(["x"]);
        let request = spec.clone().request("i").unwrap();
        assert!(request.docker_init);
        assert_eq!(request.cmd, ["x"]);
        let err = spec.clone().pid1(Pid1Wrapper::Shell).request("i").unwrap_err();
        assert_eq!(err.capability, Capability::Wrappable);
        assert_eq!(spec.clone().pid1(Pid1Wrapper::Held).request("i").unwrap().cmd, ["x"]);
        assert!(!spec.pid1(Pid1Wrapper::Held).held());
    }

    #[test]
    fn asking_an_init_for_what_it_lacks_names_the_capability() {
        let spec = ContainerSpec::new(&run_of("tini")).restart_signal("SIGHUP");
        assert_eq!(spec.request("i").unwrap_err().capability, Capability::Restart);
    }
}
