//! The inits the suite knows, as a table (`fixtures/inits.txt`, one row each): name, binary,
//! Debian package, argv template, capabilities and which make targets run it. An [`Init`] is one
//! row made ready to run: it turns a scenario's [`Intent`] ("run CMD", "grace 1 s", "serve ports
//! P") into the container's command line. Where an init is *expected* to behave differently is
//! data too: `fixtures/expected_outputs/<name>.txt`.
//!
//! Chosen by the environment: `INIT_PROFILE=<name>` (default `scinit`) and
//! `INIT_UNDER_TEST=/path/to/binary` (default: the row's binary, with this tree's scinit built
//! on first use). `INIT_LABEL` names the run in reports.

use std::fmt;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};

use crate::static_build::{static_binaries, workspace_root};

/// Something a scenario may ask of an init beyond "run the child as PID 1". A scenario declares
/// what it needs (`#[scenario(needs(Ports))]`); an init that lacks it makes the scenario `n/a`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Capability {
    /// Binds listening sockets and hands them to its child (`--ports`).
    Ports,
    /// Restarts its child in place on a signal (`--restart-signal`).
    Restart,
    /// Restarts its child when watched files change (`--live-reload`).
    LiveReload,
    /// Takes scinit's command line: its option validation, raw arguments.
    ScinitCli,
    /// Can be started by another program that is PID 1 (a shell, a script): Docker's own init
    /// cannot, Docker puts it in front of the command itself.
    Wrappable,
    /// Stops its child with a signal of the user's choosing (`--stop-signal`).
    StopSignal,
    /// Restarts start the new child first and stop the old one once it is ready
    /// (`--restart-order start-first`, `--notify`, `--ready-delay-ms`, `--ready-timeout-secs`).
    StartFirst,
}

impl Capability {
    pub const ALL: [Capability; 7] = [
        Capability::Ports,
        Capability::Restart,
        Capability::LiveReload,
        Capability::ScinitCli,
        Capability::Wrappable,
        Capability::StopSignal,
        Capability::StartFirst,
    ];

    /// The name used in `fixtures/inits.txt`.
    pub fn name(self) -> &'static str {
        match self {
            Capability::Ports => "ports",
            Capability::Restart => "restart",
            Capability::LiveReload => "live-reload",
            Capability::ScinitCli => "scinit-cli",
            Capability::Wrappable => "wrappable",
            Capability::StopSignal => "stop-signal",
            Capability::StartFirst => "start-first",
        }
    }

    /// What an init without it cannot be asked to do: the reason of an `n/a` verdict.
    pub fn missing(self) -> &'static str {
        match self {
            Capability::Ports => "binds no listening sockets for its child (scinit's --ports)",
            Capability::Restart => "cannot restart its child in place (scinit's --restart-signal)",
            Capability::LiveReload => {
                "has no file watcher to restart its child (scinit's --live-reload)"
            }
            Capability::ScinitCli => {
                "takes no scinit command line (its options and their validation)"
            }
            Capability::Wrappable => {
                "is always PID 1: Docker puts it in front of the command itself"
            }
            Capability::StopSignal => {
                "cannot be given a stop signal of its own (scinit's --stop-signal)"
            }
            Capability::StartFirst => {
                "cannot start a new child before stopping the old one (scinit's --restart-order)"
            }
        }
    }

    fn parse(word: &str) -> Result<Capability> {
        Capability::ALL.into_iter().find(|c| c.name() == word).ok_or_else(|| {
            let known: Vec<&str> = Capability::ALL.iter().map(|c| c.name()).collect();
            anyhow!("`{word}` is no capability; known: {}", known.join(", "))
        })
    }
}

/// Where an init's binary comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Binary {
    /// Copied into the image at `/init`.
    File(PathBuf),
    /// This tree's scinit, built statically on first use.
    Built,
    /// Docker's own `--init`: Docker mounts it and puts it in front of the command.
    Docker,
}

/// One row of `fixtures/inits.txt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub name: String,
    pub binary: Binary,
    pub package: Option<String>,
    pub argv: Vec<String>,
    pub capabilities: Vec<Capability>,
    /// Run only by `make matrix` (a peer's mode, `runs` = `matrix`), not by `make docker-test`
    /// or `make bench`, which keep to the base inits (`runs` = `docker-test`).
    pub matrix_only: bool,
}

/// Every row, in table order, read once per process.
pub fn table() -> Result<&'static [Row]> {
    static TABLE: OnceLock<Result<Vec<Row>, String>> = OnceLock::new();
    TABLE
        .get_or_init(|| {
            let path = workspace_root().join("fixtures/inits.txt");
            std::fs::read_to_string(&path)
                .map_err(|e| format!("{}: {e}", path.display()))
                .and_then(|text| parse(&text).map_err(|e| format!("{}: {e:#}", path.display())))
        })
        .as_deref()
        .map_err(|e| anyhow!("{e}"))
}

pub fn row(name: &str) -> Result<&'static Row> {
    let rows = table()?;
    rows.iter().find(|r| r.name == name).ok_or_else(|| {
        let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        anyhow!("INIT_PROFILE={name} is not in fixtures/inits.txt; use one of {}", names.join(", "))
    })
}

pub fn parse(text: &str) -> Result<Vec<Row>> {
    let mut rows: Vec<Row> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let [name, binary, package, argv, capabilities, runs] = cells[..] else {
            bail!("line {}: expected 6 cells separated by `|`, got {}", n + 1, cells.len());
        };
        let binary = match binary {
            "(built)" => Binary::Built,
            "(docker)" => Binary::Docker,
            path if path.starts_with('/') => Binary::File(path.into()),
            other => {
                bail!("line {}: binary `{other}` is no absolute path, (built) or (docker)", n + 1)
            }
        };
        let argv: Vec<String> = argv.split_whitespace().map(str::to_string).collect();
        if argv.iter().filter(|a| *a == "{child}").count() != 1 {
            bail!("line {}: the argv template needs exactly one {{child}}", n + 1);
        }
        let capabilities = capabilities
            .split_whitespace()
            .filter(|w| *w != "-")
            .map(Capability::parse)
            .collect::<Result<Vec<_>>>()
            .with_context(|| format!("line {}", n + 1))?;
        let matrix_only = match runs {
            "docker-test" => false,
            "matrix" => true,
            other => bail!("line {}: runs `{other}` is neither docker-test nor matrix", n + 1),
        };
        if rows.iter().any(|r| r.name == name) {
            bail!("line {}: `{name}` appears twice", n + 1);
        }
        rows.push(Row {
            name: name.to_string(),
            binary,
            package: Some(package).filter(|p| *p != "-").map(str::to_string),
            argv,
            capabilities,
            matrix_only,
        });
    }
    Ok(rows)
}

/// What a scenario wants from the init, independent of any init's flags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Intent {
    pub child: Vec<String>,
    /// Grace period between the stop signal and SIGKILL; inits without one ignore it.
    pub grace: Option<Duration>,
    pub ports: Vec<u16>,
    pub bind_addr: Option<String>,
    pub restart_signal: Option<String>,
    pub live_reload: Option<LiveReload>,
    /// The signal that stops the child, for a restart or a shutdown (`--stop-signal`).
    pub stop_signal: Option<String>,
    /// Start the new child first, and when it counts as ready.
    pub start_first: Option<Readiness>,
    /// Raw extra arguments in scinit's dialect (bad command lines, `--restart-delay-ms`).
    pub init_args: Vec<String>,
}

/// When a new child started first counts as ready, and how long it may take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    pub signal: ReadySignal,
    pub timeout: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadySignal {
    /// This long after it started (`--ready-delay-ms`).
    Delay(Duration),
    /// When it sends `READY=1` to `NOTIFY_SOCKET`, at the address the init chooses (`--notify`).
    Notify,
    /// When it sends `READY=1` to `NOTIFY_SOCKET` at this address (`--notify-socket`): a path,
    /// or `@name` for an abstract socket.
    NotifyAt(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveReload {
    pub watch_path: String,
    pub debounce: Duration,
}

impl Intent {
    /// The capabilities this intent asks of an init.
    pub fn needs(&self) -> Vec<Capability> {
        let mut needs = Vec::new();
        if !self.ports.is_empty() || self.bind_addr.is_some() {
            needs.push(Capability::Ports);
        }
        if self.restart_signal.is_some() {
            needs.push(Capability::Restart);
        }
        if self.live_reload.is_some() {
            needs.push(Capability::LiveReload);
        }
        if !self.init_args.is_empty() {
            needs.push(Capability::ScinitCli);
        }
        if self.stop_signal.is_some() {
            needs.push(Capability::StopSignal);
        }
        if self.start_first.is_some() {
            needs.push(Capability::StartFirst);
        }
        needs
    }
}

/// An init cannot be asked for something: it lacks the capability. Scenarios declare what they
/// need, so meeting this error means a declaration is missing.
#[derive(Debug, Clone)]
pub struct Unsupported {
    pub init: String,
    pub capability: Capability,
}

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.init, self.capability.missing())
    }
}

impl std::error::Error for Unsupported {}

/// One init, ready to be put in an image and given a command line.
#[derive(Debug, Clone)]
pub struct Init {
    /// The row of `fixtures/inits.txt` it follows: argv template, capabilities, expectations.
    pub row: &'static Row,
    /// The name in reports and verdict tables.
    pub label: String,
    /// The binary copied to `/init`; `None` for Docker's own init.
    pub binary: Option<PathBuf>,
    /// Extra environment for the container (e.g. a broken init's defect).
    pub env: Vec<(String, String)>,
}

impl Init {
    /// The init this test process judges (from the environment, resolved once).
    pub fn under_test() -> Result<&'static Init> {
        static INIT: OnceLock<Result<Init, String>> = OnceLock::new();
        INIT.get_or_init(|| Init::from_env().map_err(|e| format!("{e:#}")))
            .as_ref()
            .map_err(|e| anyhow!("{e}"))
    }

    fn from_env() -> Result<Init> {
        let name = std::env::var("INIT_PROFILE").ok().filter(|n| !n.is_empty());
        let row = row(name.as_deref().unwrap_or("scinit"))?;
        let custom =
            std::env::var_os("INIT_UNDER_TEST").filter(|v| !v.is_empty()).map(PathBuf::from);
        let mut init = match custom {
            Some(_) if row.binary == Binary::Docker => bail!(
                "INIT_UNDER_TEST cannot be combined with INIT_PROFILE={}: Docker mounts its own init",
                row.name
            ),
            Some(path) => {
                if !path.is_file() {
                    bail!("INIT_UNDER_TEST={} does not exist or is not a file", path.display());
                }
                let file = path.file_name().map(|f| f.to_string_lossy().into_owned());
                let label = format!("{}@{}", row.name, file.unwrap_or_default());
                Init::custom(row, path, label)
            }
            None => Init::reference(&row.name)?,
        };
        if let Some(label) = std::env::var("INIT_LABEL").ok().filter(|l| !l.is_empty()) {
            init.label = label;
        }
        Ok(init)
    }

    /// The row's own binary: this tree's scinit, or the Debian package's.
    pub fn reference(name: &str) -> Result<Init> {
        let row = row(name)?;
        let binary = match &row.binary {
            Binary::Built => Some(static_binaries().map_err(|e| anyhow!(e))?.path("scinit")),
            Binary::Docker => None,
            Binary::File(path) => {
                if !path.is_file() {
                    let package = row.package.as_deref().unwrap_or("its package");
                    bail!(
                        "{} is missing: install {package} (`make deps`) or set INIT_UNDER_TEST",
                        path.display()
                    );
                }
                Some(path.clone())
            }
        };
        Ok(Init { row, label: row.name.clone(), binary, env: Vec::new() })
    }

    /// Any binary that follows `row`'s command line.
    pub fn custom(row: &'static Row, binary: PathBuf, label: String) -> Init {
        Init { row, label, binary: Some(binary), env: Vec::new() }
    }

    pub fn with_env(mut self, key: &str, value: &str) -> Init {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    pub fn has(&self, capability: Capability) -> bool {
        self.row.capabilities.contains(&capability)
    }

    /// The first of `needs` this init lacks.
    pub fn lacks(&self, needs: &[Capability]) -> Option<Unsupported> {
        let capability = needs.iter().copied().find(|c| !self.has(*c))?;
        Some(Unsupported { init: self.label.clone(), capability })
    }

    /// Docker's own `--init` goes in front of the command.
    pub fn is_docker_init(&self) -> bool {
        self.row.binary == Binary::Docker
    }

    /// The container's command line for `intent`, from the row's argv template.
    pub fn argv(&self, intent: &Intent) -> Result<Vec<String>, Unsupported> {
        if let Some(missing) = self.lacks(&intent.needs()) {
            return Err(missing);
        }
        let mut argv = Vec::new();
        for word in &self.row.argv {
            match word.as_str() {
                "{child}" => argv.extend(intent.child.iter().cloned()),
                "{scinit-flags}" => argv.extend(scinit_flags(intent)),
                other => argv.push(other.to_string()),
            }
        }
        Ok(argv)
    }
}

/// The scinit options that express `intent` (README "Command line").
fn scinit_flags(intent: &Intent) -> Vec<String> {
    let mut flags: Vec<String> = Vec::new();
    if let Some(grace) = intent.grace {
        flags.extend(["--graceful-timeout-secs".into(), grace.as_secs_f64().to_string()]);
    }
    if !intent.ports.is_empty() {
        let ports: Vec<String> = intent.ports.iter().map(u16::to_string).collect();
        flags.extend(["--ports".into(), ports.join(",")]);
    }
    if let Some(addr) = &intent.bind_addr {
        flags.extend(["--bind-addr".into(), addr.clone()]);
    }
    if let Some(signal) = &intent.restart_signal {
        flags.extend(["--restart-signal".into(), signal.clone()]);
    }
    if let Some(reload) = &intent.live_reload {
        flags.extend([
            "--live-reload".into(),
            "--watch-path".into(),
            reload.watch_path.clone(),
            "--debounce-ms".into(),
            reload.debounce.as_millis().to_string(),
        ]);
    }
    if let Some(signal) = &intent.stop_signal {
        flags.extend(["--stop-signal".into(), signal.clone()]);
    }
    if let Some(readiness) = &intent.start_first {
        flags.extend(["--restart-order".into(), "start-first".into()]);
        match &readiness.signal {
            ReadySignal::Delay(delay) => {
                flags.extend(["--ready-delay-ms".into(), delay.as_millis().to_string()])
            }
            ReadySignal::Notify => flags.push("--notify".into()),
            ReadySignal::NotifyAt(addr) => flags.extend(["--notify-socket".into(), addr.clone()]),
        }
        if let Some(timeout) = readiness.timeout {
            flags.extend(["--ready-timeout-secs".into(), timeout.as_secs_f64().to_string()]);
        }
    }
    flags.extend(intent.init_args.iter().cloned());
    flags
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "# comment\n\
        scinit | (built) | - | /init {scinit-flags} -- {child} | ports restart scinit-cli wrappable start-first stop-signal | docker-test\n\
        tini   | /usr/bin/tini-static | tini | /init -g -- {child} | wrappable | matrix\n\
        docker | (docker) | - | {child} | - | docker-test\n";

    fn init(name: &str) -> Init {
        let rows: &'static [Row] = Box::leak(parse(TABLE).unwrap().into_boxed_slice());
        let row = rows.iter().find(|r| r.name == name).unwrap();
        Init { row, label: name.into(), binary: None, env: Vec::new() }
    }

    fn intent() -> Intent {
        Intent { child: vec!["testkit".into(), "signals".into()], ..Intent::default() }
    }

    #[test]
    fn the_committed_table_parses_and_names_scinit_first() {
        let path = workspace_root().join("fixtures/inits.txt");
        let rows = parse(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert_eq!(rows[0].name, "scinit");
        assert_eq!(rows[0].binary, Binary::Built);
        assert!(rows.iter().any(|r| r.binary == Binary::Docker));
    }

    #[test]
    fn rows_parse_and_bad_rows_are_refused() {
        let rows = parse(TABLE).unwrap();
        assert_eq!(rows[1].package.as_deref(), Some("tini"));
        assert_eq!(rows[1].capabilities, [Capability::Wrappable]);
        assert!(rows[2].capabilities.is_empty());
        assert!(!rows[0].matrix_only && rows[1].matrix_only);
        assert!(parse("a | (built) | - | /init | - | docker-test").is_err(), "no {{child}}");
        assert!(parse("a | init | - | {child} | - | docker-test").is_err(), "relative binary");
        assert!(
            parse("a | (built) | - | {child} | flies | docker-test").is_err(),
            "unknown capability"
        );
        assert!(parse("a | (built) | - | {child} | - | bench").is_err(), "unknown runs");
        assert!(parse("a | (built) | - | {child} | -").is_err(), "five cells");
    }

    #[test]
    fn scinit_gets_its_flags_then_the_child_after_a_double_dash() {
        let intent = Intent {
            grace: Some(Duration::from_millis(1500)),
            ports: vec![8080, 9090],
            ..intent()
        };
        assert_eq!(
            init("scinit").argv(&intent).unwrap(),
            [
                "/init",
                "--graceful-timeout-secs",
                "1.5",
                "--ports",
                "8080,9090",
                "--",
                "testkit",
                "signals"
            ]
        );
    }

    #[test]
    fn start_first_readiness_and_the_stop_signal_become_scinit_flags() {
        let notify = Intent {
            stop_signal: Some("SIGINT".into()),
            start_first: Some(Readiness {
                signal: ReadySignal::NotifyAt("/run/notify".into()),
                timeout: Some(Duration::from_millis(2500)),
            }),
            ..intent()
        };
        assert_eq!(
            init("scinit").argv(&notify).unwrap(),
            [
                "/init",
                "--stop-signal",
                "SIGINT",
                "--restart-order",
                "start-first",
                "--notify-socket",
                "/run/notify",
                "--ready-timeout-secs",
                "2.5",
                "--",
                "testkit",
                "signals"
            ]
        );
        let delayed = Intent {
            start_first: Some(Readiness {
                signal: ReadySignal::Delay(Duration::from_millis(300)),
                timeout: None,
            }),
            ..intent()
        };
        let argv = init("scinit").argv(&delayed);
        assert_eq!(
            argv.unwrap()[1..5],
            ["--restart-order", "start-first", "--ready-delay-ms", "300"]
        );
        assert_eq!(init("tini").argv(&delayed).unwrap_err().capability, Capability::StartFirst);
    }

    #[test]
    fn an_init_without_a_capability_refuses_the_intent_that_needs_it() {
        let tini = init("tini");
        let err = tini.argv(&Intent { ports: vec![80], ..intent() }).unwrap_err();
        assert_eq!(err.capability, Capability::Ports);
        assert!(tini.argv(&Intent { restart_signal: Some("HUP".into()), ..intent() }).is_err());
        assert_eq!(tini.argv(&intent()).unwrap(), ["/init", "-g", "--", "testkit", "signals"]);
        let docker = init("docker");
        assert_eq!(docker.argv(&intent()).unwrap(), ["testkit", "signals"]);
        assert!(docker.is_docker_init());
        assert_eq!(
            docker.lacks(&[Capability::Wrappable]).unwrap().capability,
            Capability::Wrappable
        );
    }
}
