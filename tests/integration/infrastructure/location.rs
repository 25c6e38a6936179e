//! Where the engine is, seen from this process: which endpoint to talk to, at which address a
//! published port is bound and reached, and whether a container on the host network shares this
//! process's network. The suite runs wherever a Docker API answers: beside the daemon, as a
//! non-root user of the `docker` group, in a container of its own with the daemon's socket
//! mounted (as GitLab and Jenkins runners do), or against `DOCKER_HOST=tcp://...`.
//!
//! The decisions are pure functions of what is read from the environment, unit-tested below;
//! [`location`] reads it once per process.

use std::net::{IpAddr, Ipv4Addr, ToSocketAddrs};
use std::path::{Path, PathBuf};
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

/// What [`locate`] decides from.
#[derive(Debug, Clone, Default)]
pub struct Environment {
    /// `DOCKER_HOST`.
    pub docker_host: Option<String>,
    /// The current Docker context's name and endpoint, when it is not `default`.
    pub context: Option<(String, String)>,
    /// `SCINIT_TEST_PUBLISH_ADDR`: where published ports are bound and reached, overriding the rest.
    pub publish_override: Option<String>,
    /// This process runs in a container of its own (`/.dockerenv` or `/run/.containerenv`).
    pub in_container: bool,
    /// This process's default gateway (from `/proc/net/route`): the engine's host, seen from a
    /// container on one of its bridges.
    pub gateway: Option<Ipv4Addr>,
}

/// The location of the engine for this process, read once.
pub fn location() -> Result<&'static Location> {
    static LOCATION: OnceLock<Result<Location, String>> = OnceLock::new();
    LOCATION
        .get_or_init(|| locate(&Environment::read()).map_err(|e| format!("{e:#}")))
        .as_ref()
        .map_err(|e| anyhow!("{e}"))
}

/// Pure: the engine's location from `env`.
pub fn locate(env: &Environment) -> Result<Location> {
    let (endpoint, source) = match (&env.docker_host, &env.context) {
        (Some(host), _) if !host.is_empty() => (host.clone(), "DOCKER_HOST".to_string()),
        (_, Some((name, endpoint))) => (endpoint.clone(), format!("the Docker context \"{name}\"")),
        _ => ("unix:///var/run/docker.sock".to_string(), "the default".to_string()),
    };
    let remote_host = remote_host(&endpoint)?;
    let (publish_ip, foreign_network) = match (&env.publish_override, remote_host) {
        (Some(addr), _) => {
            let ip: IpAddr = addr
                .parse()
                .map_err(|_| anyhow!("SCINIT_TEST_PUBLISH_ADDR={addr:?} is not an IP address"))?;
            let shared = ip.is_loopback() && !env.in_container;
            (ip, (!shared).then(|| format!("published ports are reached at {ip}")))
        }
        (None, Some(host)) => {
            let ip = resolve(&host)?;
            if ip.is_loopback() && !env.in_container {
                (ip, None)
            } else {
                (ip, Some(format!("the engine is at {host} ({endpoint} from {source})")))
            }
        }
        (None, None) if env.in_container => {
            let gateway = env.gateway.ok_or_else(|| {
                anyhow!(
                    "this process runs in a container and has no default route to the engine's \
                     host: set SCINIT_TEST_PUBLISH_ADDR to an address of the engine's host that \
                     this container reaches"
                )
            })?;
            let why = format!(
                "this process runs in a container of its own network; the engine's host is its \
                 gateway {gateway}"
            );
            (IpAddr::V4(gateway), Some(why))
        }
        (None, None) => (IpAddr::V4(Ipv4Addr::LOCALHOST), None),
    };
    Ok(Location { endpoint, source, publish_ip, foreign_network })
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
            in_container: Path::new("/.dockerenv").exists()
                || Path::new("/run/.containerenv").exists(),
            gateway: std::fs::read_to_string("/proc/net/route").ok().and_then(|t| gateway(&t)),
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

/// The default gateway in the text of `/proc/net/route` (hex, little-endian).
fn gateway(route_table: &str) -> Option<Ipv4Addr> {
    route_table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.get(1) != Some(&"00000000") {
            return None;
        }
        let hex = u32::from_str_radix(fields.get(2)?, 16).ok()?;
        Some(Ipv4Addr::from(hex.to_le_bytes()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(docker_host: Option<&str>) -> Environment {
        Environment { docker_host: docker_host.map(str::to_string), ..Environment::default() }
    }

    #[test]
    fn a_local_socket_publishes_on_the_loopback_and_shares_the_host_network() {
        for host in [None, Some("unix:///var/run/docker.sock"), Some("unix:///tmp/d.sock")] {
            let l = locate(&env(host)).unwrap();
            assert_eq!(l.publish_ip, IpAddr::V4(Ipv4Addr::LOCALHOST), "{host:?}");
            assert_eq!(l.foreign_network, None);
        }
        assert_eq!(locate(&env(None)).unwrap().source, "the default");
    }

    #[test]
    fn a_tcp_endpoint_on_the_loopback_is_local_and_a_remote_one_is_not() {
        let local = locate(&env(Some("tcp://127.0.0.1:2375"))).unwrap();
        assert_eq!((local.publish_ip, local.foreign_network), ("127.0.0.1".parse().unwrap(), None));
        let remote = locate(&env(Some("tcp://10.1.2.3:2376/"))).unwrap();
        assert_eq!(remote.publish_ip, "10.1.2.3".parse::<IpAddr>().unwrap());
        assert!(remote.foreign_network.unwrap().contains("10.1.2.3"));
        let v6 = locate(&env(Some("http://[::1]:2375"))).unwrap();
        assert_eq!((v6.publish_ip, v6.foreign_network), ("::1".parse().unwrap(), None));
    }

    #[test]
    fn in_a_container_of_its_own_the_engine_is_reached_through_the_gateway() {
        let table = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\n\
                     eth0\t00000000\t010011AC\t0003\t0\t0\t0\t00000000\n\
                     eth0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\n";
        let gw = gateway(table).unwrap();
        assert_eq!(gw, Ipv4Addr::new(172, 17, 0, 1));
        let e = Environment { in_container: true, gateway: Some(gw), ..Environment::default() };
        let l = locate(&e).unwrap();
        assert_eq!(l.publish_ip, IpAddr::V4(gw));
        assert!(l.foreign_network.unwrap().contains("172.17.0.1"));
        let no_route = Environment { in_container: true, ..Environment::default() };
        assert!(
            format!("{:#}", locate(&no_route).unwrap_err()).contains("SCINIT_TEST_PUBLISH_ADDR")
        );
    }

    #[test]
    fn the_publish_address_can_be_set_and_must_be_an_address() {
        let e =
            Environment { publish_override: Some("192.168.5.4".into()), ..Environment::default() };
        let l = locate(&e).unwrap();
        assert_eq!(l.publish_ip, "192.168.5.4".parse::<IpAddr>().unwrap());
        assert!(l.foreign_network.is_some());
        let bad = Environment { publish_override: Some("host".into()), ..Environment::default() };
        assert!(locate(&bad).is_err());
    }

    #[test]
    fn ssh_endpoints_are_refused_with_the_socket_forwarding_workaround() {
        let err = format!("{:#}", locate(&env(Some("ssh://me@box"))).unwrap_err());
        assert!(err.contains("ssh -nNT -L /tmp/docker.sock:/var/run/docker.sock box"), "{err}");
        assert!(locate(&env(Some("ftp://box"))).is_err());
    }

    #[test]
    fn docker_host_wins_over_the_context_which_wins_over_the_default() {
        let context = Some(("ci".to_string(), "tcp://127.0.0.1:2375".to_string()));
        let e = Environment { context: context.clone(), ..Environment::default() };
        let l = locate(&e).unwrap();
        assert_eq!(
            (l.endpoint.as_str(), l.source.as_str()),
            ("tcp://127.0.0.1:2375", "the Docker context \"ci\"")
        );
        let e = Environment {
            docker_host: Some("unix:///x.sock".into()),
            context,
            ..Environment::default()
        };
        assert_eq!(locate(&e).unwrap().source, "DOCKER_HOST");
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
