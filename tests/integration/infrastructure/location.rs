//! Where the engine is, seen from this process: which endpoint to talk to, at which address a
//! published port is bound and reached, and whether a container on the host network shares this
//! process's network. The suite runs wherever a Docker API answers: beside the daemon, as a
//! non-root user of the `docker` group, in a container of its own with the daemon's socket
//! mounted (as GitLab and Jenkins runners do), or against `DOCKER_HOST=tcp://...`.
//!
//! Whether this process shares the engine host's network is a fact, not a guess: the engine's
//! default bridge has a gateway address on the engine's host; if this process can bind to that
//! address, it is on the engine host's network (beside a local daemon); if it cannot, it is
//! somewhere else (a container of its own, another machine), and reaches that gateway through
//! its routes. The decisions are pure functions of those facts, unit-tested below; the facts
//! are gathered once per process, when it first connects ([`init`]).

use std::net::{IpAddr, Ipv4Addr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::OnceLock;

use anyhow::{anyhow, bail, Result};

/// The engine as this process reaches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The endpoint: `unix:///var/run/docker.sock`, `tcp://host:2375`, ...
    pub endpoint: String,
    /// Where it came from, for messages: `DOCKER_HOST`, `the Docker context "x"`, `the default`.
    pub source: String,
    /// The address published ports are bound on, on the engine's host, and reached at from here.
    pub publish_ip: IpAddr,
    /// `None` when a container on the host network shares this process's network (its
    /// loopback is ours); otherwise why not, the reason host-network scenarios are skipped.
    pub foreign_network: Option<String>,
}

/// What [`endpoint`] and [`locate`] decide from.
#[derive(Debug, Clone, Default)]
pub struct Environment {
    /// `DOCKER_HOST`.
    pub docker_host: Option<String>,
    /// The current Docker context's name and endpoint, when it is not `default`.
    pub context: Option<(String, String)>,
    /// `SCINIT_TEST_PUBLISH_ADDR`: where published ports are bound and reached, overriding the
    /// rest.
    pub publish_override: Option<String>,
}

/// What the engine says about its host's network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineNetwork {
    /// The gateway of the engine's default bridge: an address of the engine's host.
    pub bridge_gateway: Option<IpAddr>,
    /// Whether this process can bind to that address, that is, whether it is on the engine
    /// host's network.
    pub gateway_is_ours: bool,
    /// Whether the engine's host name (`docker info`'s `Name`) is this machine's: Podman makes
    /// its bridge's interface only with its first container, so there may be no gateway to bind
    /// yet.
    pub same_host_name: bool,
}

/// The endpoint to connect to and where it came from: `DOCKER_HOST`, else the current Docker
/// context's, else the local socket. Pure.
pub fn endpoint(env: &Environment) -> (String, String) {
    match (&env.docker_host, &env.context) {
        (Some(host), _) => (host.clone(), "DOCKER_HOST".to_string()),
        (_, Some((name, endpoint))) => (endpoint.clone(), format!("the Docker context \"{name}\"")),
        _ => ("unix:///var/run/docker.sock".to_string(), "the default".to_string()),
    }
}

/// This process's environment, read once.
pub fn environment() -> &'static Environment {
    static ENVIRONMENT: OnceLock<Environment> = OnceLock::new();
    ENVIRONMENT.get_or_init(Environment::read)
}

static LOCATION: OnceLock<Result<Location, String>> = OnceLock::new();

/// Gathers the facts once per process, from the engine `docker` answers for (its default
/// bridge's gateway), and decides the location. Called on the first connection.
pub async fn init(docker: &bollard::Docker) -> Result<&'static Location> {
    if LOCATION.get().is_none() {
        let bridge_gateway = match docker.inspect_network("bridge", None).await {
            Ok(network) => network
                .ipam
                .and_then(|ipam| ipam.config)
                .into_iter()
                .flatten()
                .find_map(|config| bridge_gateway(config.gateway, config.subnet)),
            // An engine without Docker's default bridge (Podman names its own `podman`): no
            // address to test, so the endpoint alone decides.
            Err(_) => None,
        };
        let gateway_is_ours =
            bridge_gateway.is_some_and(|ip| std::net::TcpListener::bind((ip, 0)).is_ok());
        let ours = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        let engines = docker.info().await.ok().and_then(|info| info.name).unwrap_or_default();
        let same_host_name = !engines.is_empty() && engines == ours.trim();
        let facts = EngineNetwork { bridge_gateway, gateway_is_ours, same_host_name };
        let _ = LOCATION.set(locate(environment(), facts).map_err(|e| format!("{e:#}")));
    }
    location()
}

/// The gateway of an IPAM configuration: as given, or, when the engine leaves it out (Docker
/// 20.10 does for its default bridge), the subnet's first address, which Docker gives it.
fn bridge_gateway(gateway: Option<String>, subnet: Option<String>) -> Option<IpAddr> {
    if let Some(ip) = gateway.and_then(|g| g.parse().ok()) {
        return Some(ip);
    }
    let network: Ipv4Addr = subnet?.split_once('/')?.0.parse().ok()?;
    Some(IpAddr::V4(Ipv4Addr::from(u32::from(network) + 1)))
}

/// The location [`init`] decided.
pub fn location() -> Result<&'static Location> {
    LOCATION
        .get()
        .ok_or_else(|| anyhow!("the engine's location is read on the first connection"))?
        .as_ref()
        .map_err(|e| anyhow!("{e}"))
}

/// Pure: the engine's location from `env` and what the engine said.
pub fn locate(env: &Environment, engine: EngineNetwork) -> Result<Location> {
    let (endpoint, source) = endpoint(env);
    let remote_host = remote_host(&endpoint)?;
    let local = match &remote_host {
        None => true,
        Some(host) => resolve(host)?.is_loopback(),
    };
    // Beside a local engine, this process shares its host's network when the bridge's gateway is
    // one of its own addresses, or the engine's host has this machine's name (a container of
    // its own has a name of its own); with no bridge to test, assume it does.
    let shares = local
        && (engine.gateway_is_ours || engine.same_host_name || engine.bridge_gateway.is_none());
    let (publish_ip, foreign_network) = match (&env.publish_override, remote_host) {
        (Some(addr), _) => {
            let ip: IpAddr = addr
                .parse()
                .map_err(|_| anyhow!("SCINIT_TEST_PUBLISH_ADDR={addr:?} is not an IP address"))?;
            let shared = shares && ip.is_loopback();
            (ip, (!shared).then(|| format!("published ports are reached at {ip}")))
        }
        (None, Some(host)) if !local => {
            let ip = resolve(&host)?;
            (ip, Some(format!("the engine is at {host} ({endpoint} from {source})")))
        }
        (None, _) if shares => (IpAddr::V4(Ipv4Addr::LOCALHOST), None),
        (None, _) => {
            let gateway = engine.bridge_gateway.ok_or_else(|| {
                anyhow!("the engine's bridge has no gateway: set SCINIT_TEST_PUBLISH_ADDR")
            })?;
            let why = format!(
                "this process is not on the engine host's network (it cannot bind the engine's \
                 bridge gateway {gateway}, which it reaches through its routes)"
            );
            (gateway, Some(why))
        }
    };
    Ok(Location { endpoint, source, publish_ip, foreign_network })
}

/// Whether the suite's client can talk to `endpoint`; the error says what to do instead.
pub fn supported(endpoint: &str) -> Result<()> {
    remote_host(endpoint).map(drop)
}

/// The host of a network endpoint (`tcp://`, `http://`, `https://`), `None` for a local socket.
/// `ssh://` is refused with the workaround: bollard's ssh transport is a feature this suite does
/// not build (it pulls in an ssh client library), and a forwarded socket does the same job.
fn remote_host(endpoint: &str) -> Result<Option<String>> {
    if endpoint.starts_with("unix://") {
        return Ok(None);
    }
    if let Some(rest) = endpoint.strip_prefix("ssh://") {
        let host = rest.rsplit('@').next().unwrap_or(rest);
        bail!(
            "DOCKER_HOST={endpoint}: ssh:// is not supported by the suite's Docker client; \
             forward the engine's socket and use it instead: \
             `ssh -nNT -L /tmp/docker.sock:/var/run/docker.sock {host} &` then \
             `DOCKER_HOST=unix:///tmp/docker.sock`"
        );
    }
    let rest = ["tcp://", "http://", "https://"]
        .iter()
        .find_map(|scheme| endpoint.strip_prefix(scheme))
        .ok_or_else(|| anyhow!("unsupported Docker endpoint {endpoint:?} (unix://, tcp://)"))?;
    let authority = rest.split('/').next().unwrap_or(rest);
    let host = match authority.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
        _ => authority,
    };
    Ok(Some(host.trim_start_matches('[').trim_end_matches(']').to_string()))
}

fn resolve(host: &str) -> Result<IpAddr> {
    if let Ok(ip) = host.parse() {
        return Ok(ip);
    }
    (host, 0)
        .to_socket_addrs()
        .map_err(|e| anyhow!("resolving the engine's host {host}: {e}"))?
        .map(|a| a.ip())
        .next()
        .ok_or_else(|| anyhow!("the engine's host {host} has no address"))
}

impl Environment {
    fn read() -> Environment {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Environment {
            docker_host: var("DOCKER_HOST"),
            context: current_context(var("DOCKER_CONTEXT"), docker_config_dir()),
            publish_override: var("SCINIT_TEST_PUBLISH_ADDR"),
        }
    }
}

/// `$DOCKER_CONFIG`, or `~/.docker`.
fn docker_config_dir() -> Option<PathBuf> {
    std::env::var_os("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".docker")))
}

/// The current context (`DOCKER_CONTEXT`, else `currentContext` in `config.json`) and its Docker
/// endpoint, as the `docker` CLI resolves it, unless it is `default`. Context metadata lives in
/// `contexts/meta/<digest of the name>/meta.json`; the entry is found by its `Name` field.
fn current_context(named: Option<String>, config_dir: Option<PathBuf>) -> Option<(String, String)> {
    let config_dir = config_dir?;
    let name = named.or_else(|| {
        let config = std::fs::read_to_string(config_dir.join("config.json")).ok()?;
        let config: serde_json::Value = serde_json::from_str(&config).ok()?;
        config.get("currentContext")?.as_str().map(str::to_string)
    })?;
    if name == "default" {
        return None;
    }
    let entries = std::fs::read_dir(config_dir.join("contexts").join("meta")).ok()?;
    entries.filter_map(|e| e.ok()).find_map(|entry| {
        let meta = std::fs::read_to_string(entry.path().join("meta.json")).ok()?;
        context_endpoint(&meta, &name).map(|endpoint| (name.clone(), endpoint))
    })
}

/// The Docker endpoint of a context's `meta.json`, if it is the context `name`.
fn context_endpoint(meta_json: &str, name: &str) -> Option<String> {
    let meta: serde_json::Value = serde_json::from_str(meta_json).ok()?;
    (meta.get("Name")?.as_str()? == name).then_some(())?;
    Some(meta.pointer("/Endpoints/docker/Host")?.as_str()?.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(docker_host: Option<&str>) -> Environment {
        Environment { docker_host: docker_host.map(str::to_string), ..Environment::default() }
    }

    const GATEWAY: IpAddr = IpAddr::V4(Ipv4Addr::new(172, 17, 0, 1));
    /// Beside the engine: its bridge's gateway is one of this process's addresses.
    const BESIDE: EngineNetwork = EngineNetwork {
        bridge_gateway: Some(GATEWAY),
        gateway_is_ours: true,
        same_host_name: true,
    };
    /// In a container of its own (or on another machine): it is not.
    const APART: EngineNetwork = EngineNetwork {
        bridge_gateway: Some(GATEWAY),
        gateway_is_ours: false,
        same_host_name: false,
    };

    #[test]
    fn beside_a_local_engine_ports_are_on_the_loopback_and_the_host_network_is_shared() {
        for host in [None, Some("unix:///var/run/docker.sock"), Some("tcp://127.0.0.1:2375")] {
            let l = locate(&env(host), BESIDE).unwrap();
            assert_eq!(l.publish_ip, IpAddr::V4(Ipv4Addr::LOCALHOST), "{host:?}");
            assert_eq!(l.foreign_network, None, "{host:?}");
        }
        let no_bridge =
            EngineNetwork { bridge_gateway: None, gateway_is_ours: false, same_host_name: false };
        assert_eq!(locate(&env(None), no_bridge).unwrap().foreign_network, None);
        // Podman's bridge interface comes with its first container: the host's name tells.
        let podman = EngineNetwork { gateway_is_ours: false, ..BESIDE };
        assert_eq!(locate(&env(None), podman).unwrap().foreign_network, None);
        assert_eq!(locate(&env(None), BESIDE).unwrap().source, "the default");
    }

    #[test]
    fn the_bridge_gateway_is_given_or_the_first_address_of_its_subnet() {
        let some = |s: &str| Some(s.to_string());
        assert_eq!(
            bridge_gateway(some("10.88.0.1"), some("10.88.0.0/16")),
            "10.88.0.1".parse().ok()
        );
        assert_eq!(bridge_gateway(None, some("172.17.0.0/16")), Some(GATEWAY));
        assert_eq!(bridge_gateway(None, some("fd00::/64")), None);
        assert_eq!(bridge_gateway(None, None), None);
    }

    #[test]
    fn apart_from_a_local_engine_ports_are_on_its_bridge_gateway_and_the_host_network_is_not_ours()
    {
        let l = locate(&env(Some("unix:///var/run/docker.sock")), APART).unwrap();
        assert_eq!(l.publish_ip, GATEWAY);
        assert!(l.foreign_network.unwrap().contains("172.17.0.1"));
    }

    #[test]
    fn a_remote_tcp_endpoint_publishes_on_its_host_and_never_shares_the_network() {
        let remote = locate(&env(Some("tcp://10.1.2.3:2376/")), BESIDE).unwrap();
        assert_eq!(remote.publish_ip, "10.1.2.3".parse::<IpAddr>().unwrap());
        assert!(remote.foreign_network.unwrap().contains("10.1.2.3"));
        let v6 = locate(&env(Some("http://[::1]:2375")), BESIDE).unwrap();
        assert_eq!((v6.publish_ip, v6.foreign_network), (IpAddr::V4(Ipv4Addr::LOCALHOST), None));
    }

    #[test]
    fn the_publish_address_can_be_set_and_must_be_an_address() {
        let e =
            Environment { publish_override: Some("192.168.5.4".into()), ..Environment::default() };
        let l = locate(&e, BESIDE).unwrap();
        assert_eq!(l.publish_ip, "192.168.5.4".parse::<IpAddr>().unwrap());
        assert!(l.foreign_network.is_some());
        let bad = Environment { publish_override: Some("host".into()), ..Environment::default() };
        assert!(locate(&bad, BESIDE).is_err());
    }

    #[test]
    fn ssh_endpoints_are_refused_with_the_socket_forwarding_workaround() {
        let err = format!("{:#}", locate(&env(Some("ssh://me@box")), BESIDE).unwrap_err());
        assert!(err.contains("ssh -nNT -L /tmp/docker.sock:/var/run/docker.sock box"), "{err}");
        assert!(locate(&env(Some("ftp://box")), BESIDE).is_err());
    }

    #[test]
    fn docker_host_wins_over_the_context_which_wins_over_the_default() {
        let context = Some(("ci".to_string(), "tcp://127.0.0.1:2375".to_string()));
        let e = Environment { context: context.clone(), ..Environment::default() };
        let (endpoint_, source) = endpoint(&e);
        assert_eq!(
            (endpoint_.as_str(), source.as_str()),
            ("tcp://127.0.0.1:2375", "the Docker context \"ci\"")
        );
        let e = Environment {
            docker_host: Some("unix:///x.sock".into()),
            context,
            ..Environment::default()
        };
        assert_eq!(endpoint(&e).1, "DOCKER_HOST");
    }

    #[test]
    fn a_contexts_endpoint_is_read_from_its_meta_json_by_name() {
        let meta = r#"{"Name":"ci","Metadata":{},"Endpoints":{"docker":{"Host":"tcp://127.0.0.1:2375","SkipTLSVerify":false}}}"#;
        assert_eq!(context_endpoint(meta, "ci").as_deref(), Some("tcp://127.0.0.1:2375"));
        assert_eq!(context_endpoint(meta, "other"), None);
        let dir = std::env::temp_dir().join(format!("scinit-context-test-{}", std::process::id()));
        let meta_dir = dir.join("contexts/meta/0123abcd");
        std::fs::create_dir_all(&meta_dir).unwrap();
        std::fs::write(meta_dir.join("meta.json"), meta).unwrap();
        std::fs::write(dir.join("config.json"), r#"{"currentContext":"ci"}"#).unwrap();
        let found = current_context(None, Some(dir.clone()));
        let by_env = current_context(Some("default".into()), Some(dir.clone()));
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(found, Some(("ci".into(), "tcp://127.0.0.1:2375".into())));
        assert_eq!(by_env, None);
    }
}
