//! Any init under test. A profile maps the suite's intent ("run CMD", "grace 1 s", "serve ports
//! P") to one init's command line. Where the init is *expected* to behave differently is not
//! here but in data: `fixtures/expected_outputs/<profile>.txt`.
//!
//! Chosen by the environment: `INIT_PROFILE=scinit|tini|dumb-init|catatonit|docker-init`
//! (default `scinit`) and `INIT_UNDER_TEST=/path/to/binary` (default: the freshly built scinit,
//! or the Debian package's binary for the reference inits). `INIT_LABEL` names the run in reports.

use std::fmt;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{anyhow, bail, Result};

use crate::static_build::static_binaries;

/// The command-line dialects the suite knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitKind {
    Scinit,
    Tini,
    DumbInit,
    Catatonit,
    DockerInit,
}

impl InitKind {
    pub const ALL: [InitKind; 5] =
        [InitKind::Scinit, InitKind::Tini, InitKind::DumbInit, InitKind::Catatonit, InitKind::DockerInit];

    pub fn name(self) -> &'static str {
        match self {
            InitKind::Scinit => "scinit",
            InitKind::Tini => "tini",
            InitKind::DumbInit => "dumb-init",
            InitKind::Catatonit => "catatonit",
            InitKind::DockerInit => "docker-init",
        }
    }

    fn parse(name: &str) -> Result<InitKind> {
        InitKind::ALL.into_iter().find(|k| k.name() == name).ok_or_else(|| {
            anyhow!("INIT_PROFILE={name} is not known; use one of scinit, tini, dumb-init, catatonit, docker-init")
        })
    }

    /// Where Debian puts the reference init (scinit's default is built by the suite).
    fn default_binary(self) -> Option<PathBuf> {
        match self {
            InitKind::Tini => Some("/usr/bin/tini-static".into()),
            InitKind::DumbInit => Some("/usr/bin/dumb-init".into()),
            InitKind::Catatonit => Some("/usr/bin/catatonit".into()),
            InitKind::Scinit | InitKind::DockerInit => None,
        }
    }
}

/// One init, ready to be put in an image and given a command line.
#[derive(Debug, Clone)]
pub struct InitProfile {
    pub kind: InitKind,
    /// The name in reports and verdict tables.
    pub label: String,
    /// The binary copied to `/init`; `None` for Docker's `--init`, which Docker mounts itself.
    pub binary: Option<PathBuf>,
    /// Extra environment for the container (e.g. a broken init's defect).
    pub env: Vec<(String, String)>,
}

/// What a scenario wants from the init, independent of any init's flags.
#[derive(Debug, Clone, Default)]
pub struct Intent {
    pub child: Vec<String>,
    /// Grace period between the stop signal and SIGKILL; inits without one ignore it.
    pub grace: Option<Duration>,
    pub ports: Vec<u16>,
    pub bind_addr: Option<String>,
    pub restart_signal: Option<String>,
    pub live_reload: Option<LiveReload>,
    /// Raw extra arguments for scinit's dialect (scinit-only scenarios, e.g. bad CLI).
    pub init_args: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct LiveReload {
    pub watch_path: String,
    pub debounce: Duration,
}

/// The container's command line, and whether Docker's own init goes in front.
#[derive(Debug, Clone)]
pub struct Launch {
    pub cmd: Vec<String>,
    pub docker_init: bool,
}

/// The profile cannot express a scenario's intent (e.g. tini does not bind sockets).
#[derive(Debug, Clone)]
pub struct Unsupported {
    pub init: String,
    pub what: String,
}

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} cannot be asked to {}", self.init, self.what)
    }
}

impl std::error::Error for Unsupported {}

impl InitProfile {
    /// The init this test process judges (from the environment, resolved once).
    pub fn under_test() -> Result<&'static InitProfile> {
        static PROFILE: OnceLock<Result<InitProfile, String>> = OnceLock::new();
        PROFILE
            .get_or_init(|| InitProfile::from_env().map_err(|e| format!("{e:#}")))
            .as_ref()
            .map_err(|e| anyhow!("{e}"))
    }

    fn from_env() -> Result<InitProfile> {
        let kind = match std::env::var("INIT_PROFILE") {
            Ok(name) if !name.is_empty() => InitKind::parse(&name)?,
            _ => InitKind::Scinit,
        };
        let custom = std::env::var_os("INIT_UNDER_TEST").filter(|v| !v.is_empty()).map(PathBuf::from);
        if kind == InitKind::DockerInit && custom.is_some() {
            bail!("INIT_UNDER_TEST cannot be combined with INIT_PROFILE=docker-init: Docker mounts its own init");
        }
        let mut profile = match custom {
            Some(path) => {
                if !path.is_file() {
                    bail!("INIT_UNDER_TEST={} does not exist or is not a file", path.display());
                }
                let file = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
                InitProfile::custom(kind, path, format!("{}@{file}", kind.name()))
            }
            None => InitProfile::reference(kind)?,
        };
        if let Ok(label) = std::env::var("INIT_LABEL") {
            if !label.is_empty() {
                profile.label = label;
            }
        }
        Ok(profile)
    }

    /// The reference build of `kind`: scinit from this tree, the others from Debian.
    pub fn reference(kind: InitKind) -> Result<InitProfile> {
        let binary = match kind {
            InitKind::Scinit => Some(static_binaries().map_err(|e| anyhow!(e))?.scinit.clone()),
            InitKind::DockerInit => None,
            other => {
                let path = other.default_binary().unwrap_or_default();
                if !path.is_file() {
                    bail!(
                        "{} is missing: install the Debian package (`make deps`) or set INIT_UNDER_TEST",
                        path.display()
                    );
                }
                Some(path)
            }
        };
        Ok(InitProfile { kind, label: kind.name().to_string(), binary, env: Vec::new() })
    }

    /// Any binary speaking `kind`'s dialect.
    pub fn custom(kind: InitKind, binary: PathBuf, label: String) -> InitProfile {
        InitProfile { kind, label, binary: Some(binary), env: Vec::new() }
    }

    pub fn with_env(mut self, key: &str, value: &str) -> InitProfile {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// Maps `intent` to this init's command line.
    pub fn launch(&self, intent: &Intent) -> Result<Launch, Unsupported> {
        let unsupported = |what: &str| Unsupported { init: self.label.clone(), what: what.to_string() };
        if self.kind != InitKind::Scinit {
            if !intent.ports.is_empty() {
                return Err(unsupported("bind listening sockets for its child"));
            }
            if intent.restart_signal.is_some() || intent.live_reload.is_some() {
                return Err(unsupported("restart its child in place"));
            }
            if !intent.init_args.is_empty() {
                return Err(unsupported(&format!("take scinit's arguments {:?}", intent.init_args)));
            }
        }
        let mut cmd: Vec<String> = Vec::new();
        match self.kind {
            InitKind::Scinit => {
                cmd.push("/init".into());
                if let Some(grace) = intent.grace {
                    cmd.extend(["--graceful-timeout-secs".into(), format!("{}", grace.as_secs_f64())]);
                }
                if !intent.ports.is_empty() {
                    let ports: Vec<String> = intent.ports.iter().map(u16::to_string).collect();
                    cmd.extend(["--ports".into(), ports.join(",")]);
                }
                if let Some(addr) = &intent.bind_addr {
                    cmd.extend(["--bind-addr".into(), addr.clone()]);
                }
                if let Some(signal) = &intent.restart_signal {
                    cmd.extend(["--restart-signal".into(), signal.clone()]);
                }
                if let Some(reload) = &intent.live_reload {
                    cmd.extend([
                        "--live-reload".into(),
                        "--watch-path".into(),
                        reload.watch_path.clone(),
                        "--debounce-ms".into(),
                        reload.debounce.as_millis().to_string(),
                    ]);
                }
                cmd.extend(intent.init_args.iter().cloned());
                cmd.push("--".into());
            }
            InitKind::Tini | InitKind::Catatonit | InitKind::DumbInit => {
                cmd.extend(["/init".into(), "--".into()]);
            }
            InitKind::DockerInit => {}
        }
        cmd.extend(intent.child.iter().cloned());
        Ok(Launch { cmd, docker_init: self.kind == InitKind::DockerInit })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn intent() -> Intent {
        Intent { child: vec!["testkit".into(), "signals".into()], ..Intent::default() }
    }

    #[test]
    fn scinit_gets_its_flags_then_the_child_after_a_double_dash() {
        let p = InitProfile::custom(InitKind::Scinit, "/x".into(), "scinit".into());
        let launch = p
            .launch(&Intent { grace: Some(Duration::from_millis(1500)), ports: vec![8080, 9090], ..intent() })
            .unwrap();
        assert_eq!(
            launch.cmd,
            ["/init", "--graceful-timeout-secs", "1.5", "--ports", "8080,9090", "--", "testkit", "signals"]
        );
        assert!(!launch.docker_init);
    }

    #[test]
    fn reference_inits_cannot_be_asked_to_bind_ports_but_run_plain_children() {
        let tini = InitProfile::custom(InitKind::Tini, "/x".into(), "tini".into());
        assert!(tini.launch(&Intent { ports: vec![80], ..intent() }).is_err());
        assert_eq!(tini.launch(&intent()).unwrap().cmd, ["/init", "--", "testkit", "signals"]);
        let docker = InitProfile { kind: InitKind::DockerInit, label: "docker-init".into(), binary: None, env: vec![] };
        let launch = docker.launch(&intent()).unwrap();
        assert_eq!(launch.cmd, ["testkit", "signals"]);
        assert!(launch.docker_init);
    }
}
