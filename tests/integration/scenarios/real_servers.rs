//! Real servers nobody here wrote, taking their sockets from scinit: Debian's lighttpd and
//! gunicorn read `LISTEN_FDS`/`LISTEN_PID` as they would under systemd, serve HTTP on the socket
//! scinit bound, and keep serving, with no failed request, across SIGHUP restarts in either
//! order (README "Restarts"). The testkit echo server (socket_inheritance.rs) was written for
//! the contract; these were not: their own start-up, shutdown and logs show whether the contract
//! holds for programs in the wild. Beside them, the same servers binding their port themselves
//! and restarted with `docker restart`: what a container without socket inheritance has.
//!
//! Evidence: HTTP replies through the published port (the `Server` header names who answered),
//! the servers' own log lines (started, told to stop, stopped), and `/proc` read through
//! `docker exec` (which processes run, which sockets they hold). The SIGHUP rows need scinit's
//! ports and restarts (`n/a` for the other inits); the `docker restart` rows run under every
//! init.

use std::fmt;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};

use crate::figures::restart::kind;
use crate::infrastructure::engine::Logs;
use crate::infrastructure::probe::{self, published, HttpReply, Load, Protocol};
use crate::infrastructure::{Container, ContainerSpec, ReadySignal, Run};
use crate::performance::load::{bounded_load, record_restarts};
use crate::utils::wait::{self, secs, Polled};

/// The container port both servers serve.
const HTTP_PORT: u16 = 8080;
/// How long a restarted server may take to start, or to stop by itself (generous: 2 shared
/// cores).
const RESTART_WITHIN: Duration = Duration::from_secs(10);
/// The worst request latency accepted while a server restarts (liveness, not performance).
const LATENCY_BOUND: Duration = Duration::from_secs(5);
/// Stop-first SIGHUP restarts per row: lighttpd's graceful stop can take up to a second (its
/// idle check runs once a second), and the whole file should stay under a minute.
const STOP_FIRST_RESTARTS: usize = 5;
/// Start-first SIGHUP restarts per row: the old server's stop overlaps the next restart, so
/// these are cheap.
const START_FIRST_RESTARTS: usize = 10;
/// `docker restart` round trips per row: each costs a second or more.
const DOCKER_RESTARTS: usize = 3;

// --- The servers ---------------------------------------------------------------------------

/// What lighttpd serves at `/`.
const LIGHTTPD_BODY: &str = "served by lighttpd\n";
/// lighttpd's configuration with socket activation (`fixtures/lighttpd/lighttpd.conf`).
const LIGHTTPD_INHERITING: &str = "/etc/lighttpd/lighttpd.conf";
/// lighttpd's configuration binding the port itself (`fixtures/lighttpd/own-port.conf`).
const LIGHTTPD_BINDING: &str = "/etc/lighttpd/own-port.conf";
/// How long after its start a new lighttpd counts as ready in a start-first restart: lighttpd
/// does not speak sd_notify. It logs `server started` within milliseconds; the log order
/// (checked) shows it was serving before the old one was told to stop.
const LIGHTTPD_READY_DELAY: Duration = Duration::from_millis(300);

/// What `fixtures/gunicorn/app.py` answers.
const GUNICORN_BODY: &str = "served by gunicorn\n";
/// How long gunicorn's master waits, after SIGTERM, for its worker to finish its request
/// (`--graceful-timeout`, in seconds).
const GUNICORN_GRACEFUL: Duration = Duration::from_secs(2);
/// scinit's grace period: well beyond gunicorn's own, so that gunicorn always stops by itself.
const GUNICORN_SCINIT_GRACE: Duration = Duration::from_secs(10);
/// What gunicorn never opens of Python's standard library (`strace -f -e trace=openat` of a
/// start, a request and a SIGTERM): the static libpython and its build files, tests, tools and
/// packages it does not import. Left out for the image's size.
const PYTHON_UNUSED: &[&str] = &[
    "config-3.11-x86_64-linux-gnu",
    "test",
    "idlelib",
    "tkinter",
    "turtledemo",
    "ensurepip",
    "lib2to3",
    "pydoc_data",
    "distutils",
    "unittest",
    "asyncio",
    "multiprocessing",
    "venv",
    "sqlite3",
    "curses",
    "dbm",
    "xmlrpc",
    "wsgiref",
    "ctypes",
];
/// Extension modules gunicorn never loads: those whose libraries would add more than the rest
/// of the image's Python (libdb, libsqlite3, Kerberos through libnsl, readline and ncurses),
/// the East Asian codecs, the C versions of modules it does not import, and CPython's own test
/// modules.
const PYTHON_UNUSED_EXTENSIONS: &[&str] = &[
    "_dbm",
    "_sqlite3",
    "nis",
    "readline",
    "_curses",
    "_curses_panel",
    "_codecs_cn",
    "_codecs_hk",
    "_codecs_iso2022",
    "_codecs_jp",
    "_codecs_kr",
    "_codecs_tw",
    "_multibytecodec",
    "_decimal",
    "_ctypes",
    "_ctypes_test",
    "_testbuffer",
    "_testcapi",
    "_testclinic",
    "_testimportmultiple",
    "_testinternalcapi",
    "_testmultiphase",
    "_xxtestfuzz",
    "xxlimited",
    "xxlimited_35",
];

/// A server from Debian, run FROM scratch with what it needs from the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Server {
    /// lighttpd (`server.systemd-socket-activation = "enable"`), copied with its `ldd` closure.
    /// Its built-in modules (indexfile, staticfile) are enough: nothing from
    /// `/usr/lib/lighttpd/` is loaded. SIGTERM stops it at once, closing the connections it
    /// has accepted without a response; SIGINT is its graceful stop (it stops accepting and
    /// finishes them), hence `--stop-signal SIGINT`. It logs on stderr.
    Lighttpd,
    /// gunicorn (a Python WSGI server, `fixtures/gunicorn/app.py`) with the interpreter, the
    /// parts of its standard library gunicorn uses, and pkg_resources. Its master takes the
    /// sockets (`gunicorn/systemd.py`), its one worker serves them; SIGTERM is its graceful stop
    /// (the master logs `Shutting down: Master` once the worker is done), and it sends
    /// `READY=1` once it listens. It logs on stdout (`--error-logfile /dev/stdout`).
    Gunicorn,
}

/// Where a server's listening socket comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Binding {
    /// scinit binds [`HTTP_PORT`] and passes it (`LISTEN_FDS`), published on a port Docker
    /// picks.
    Inherited,
    /// The server binds [`HTTP_PORT`] itself, published at `host_port`, which survives a
    /// `docker restart`.
    Own { host_port: u16 },
}

/// What a server's log says about one of its processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event {
    /// It listens (lighttpd's `server started`, gunicorn's master's `Listening at:`).
    Started,
    /// It got the stop signal (lighttpd's `graceful shutdown started`, gunicorn's
    /// `Handling signal: term`).
    Stopping,
    /// It stopped by itself (lighttpd's `server stopped by`, gunicorn's
    /// `Shutting down: Master`), rather than being killed when the grace period ended.
    Stopped,
}

impl fmt::Display for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Server::Lighttpd => "lighttpd",
            Server::Gunicorn => "gunicorn",
        })
    }
}

impl Server {
    fn body(self) -> &'static str {
        match self {
            Server::Lighttpd => LIGHTTPD_BODY,
            Server::Gunicorn => GUNICORN_BODY,
        }
    }

    /// Whether `reply` is this server's page, by its body and `Server` header.
    fn served(self, reply: &HttpReply) -> bool {
        let server = reply.server.as_deref().unwrap_or("");
        let named = match self {
            Server::Lighttpd => server.starts_with("lighttpd/"),
            Server::Gunicorn => server == "gunicorn",
        };
        reply.status == 200 && reply.body == self.body() && named
    }

    /// The name (`comm`) of the process the init starts.
    fn comm(self) -> &'static str {
        match self {
            Server::Lighttpd => "lighttpd",
            Server::Gunicorn => "python3",
        }
    }

    /// How long a start may take: a cold Python importing gunicorn and pkg_resources is slow.
    fn start_within(self) -> Duration {
        match self {
            Server::Lighttpd => secs(10),
            Server::Gunicorn => secs(30),
        }
    }

    /// How a start-first restart tells that the new server is ready.
    fn ready(self) -> ReadySignal {
        match self {
            Server::Lighttpd => ReadySignal::Delay(LIGHTTPD_READY_DELAY),
            Server::Gunicorn => ReadySignal::Notify,
        }
    }

    /// The container: the server and its files; with [`Binding::Inherited`], scinit's port and
    /// lighttpd's graceful stop signal.
    fn spec(self, run: &Run, binding: Binding) -> ContainerSpec {
        let spec = ContainerSpec::new(run);
        let spec = match binding {
            Binding::Inherited => spec.with_ports([HTTP_PORT]),
            Binding::Own { host_port } => spec.publish_at(HTTP_PORT, host_port),
        };
        match self {
            Server::Lighttpd => {
                // Both configurations in every image: one image for both bindings.
                let conf = match binding {
                    Binding::Inherited => LIGHTTPD_INHERITING,
                    Binding::Own { .. } => LIGHTTPD_BINDING,
                };
                let spec = spec
                    .with_program("/usr/sbin/lighttpd", "/usr/sbin/lighttpd")
                    .with_file(
                        LIGHTTPD_INHERITING,
                        include_str!("../../../fixtures/lighttpd/lighttpd.conf"),
                    )
                    .with_file(
                        LIGHTTPD_BINDING,
                        include_str!("../../../fixtures/lighttpd/own-port.conf"),
                    )
                    .with_file("/var/www/index.html", LIGHTTPD_BODY)
                    .child(["/usr/sbin/lighttpd", "-D", "-f", conf]);
                match binding {
                    Binding::Inherited => spec.stop_signal("SIGINT"),
                    Binding::Own { .. } => spec,
                }
            }
            Server::Gunicorn => {
                let extensions: Vec<String> = PYTHON_UNUSED_EXTENSIONS
                    .iter()
                    .map(|m| format!("lib-dynload/{m}.cpython-311-x86_64-linux-gnu.so"))
                    .collect();
                let python_skip: Vec<&str> = PYTHON_UNUSED
                    .iter()
                    .copied()
                    .chain(extensions.iter().map(String::as_str))
                    .collect();
                let graceful = GUNICORN_GRACEFUL.as_secs().to_string();
                let bind = format!("0.0.0.0:{HTTP_PORT}");
                let own_bind = match binding {
                    Binding::Inherited => vec![],
                    Binding::Own { .. } => vec!["--bind", bind.as_str()],
                };
                spec.grace(GUNICORN_SCINIT_GRACE)
                    .with_program("/usr/bin/python3", "/usr/bin/python3")
                    .with_host_tree("/usr/lib/python3.11", &python_skip)
                    .with_host_tree("/usr/lib/python3/dist-packages/gunicorn", &[])
                    .with_host_tree("/usr/lib/python3/dist-packages/pkg_resources", &[])
                    .with_file("/srv/app/app.py", include_str!("../../../fixtures/gunicorn/app.py"))
                    .child(
                        [
                            "/usr/bin/python3",
                            "-m",
                            "gunicorn",
                            "--chdir",
                            "/srv/app",
                            "--workers",
                            "1",
                            "--graceful-timeout",
                            &graceful,
                            "--error-logfile",
                            "/dev/stdout",
                        ]
                        .into_iter()
                        .chain(own_bind)
                        .chain(["app:app"]),
                    )
            }
        }
    }

    /// The log stream the server writes to.
    fn log(self, logs: Logs) -> Vec<String> {
        match self {
            Server::Lighttpd => logs.stderr,
            Server::Gunicorn => logs.stdout,
        }
    }

    /// What `line` of the server's log says, if it is one of the [`Event`]s.
    fn event(self, line: &str) -> Option<Event> {
        let markers = match self {
            Server::Lighttpd => {
                [") server started (", ") [note] graceful shutdown started", ") server stopped by "]
            }
            Server::Gunicorn => {
                ["] Listening at: ", "] Handling signal: term", "] Shutting down: Master"]
            }
        };
        let [started, stopping, stopped] = markers.map(|m| line.contains(m));
        match (started, stopping, stopped) {
            (true, _, _) => Some(Event::Started),
            (_, true, _) => Some(Event::Stopping),
            (_, _, true) => Some(Event::Stopped),
            _ => None,
        }
    }

    /// The events of the server's log so far, in order (all its processes write to the one
    /// stream).
    async fn events(self, c: &Container) -> Result<Vec<Event>> {
        Ok(self.log(c.logs().await?).iter().filter_map(|l| self.event(l)).collect())
    }

    /// Waits until the server's log holds `n` `event`s (polled: `docker logs`).
    async fn logged(self, c: &Container, event: Event, n: usize, within: Duration) -> Result<()> {
        wait::until(&format!("{n} {event:?} lines in {self}'s log"), within, || async {
            let events = self.events(c).await?;
            let seen = events.iter().filter(|e| **e == event).count();
            Ok(if seen >= n { Polled::Ready(()) } else { Polled::NotYet(format!("{events:?}")) })
        })
        .await
    }

    /// The pid of the one server process the init started since `known`, which must hold the
    /// `listening` socket: it is added to `known`.
    async fn new_process(self, c: &Container, listening: u64, known: &mut Vec<i32>) -> Result<i32> {
        let table = c.processes().await?;
        let new: Vec<i32> = table
            .iter()
            .filter(|p| p.ppid == 1 && p.comm == self.comm() && !known.contains(&p.pid))
            .map(|p| p.pid)
            .collect();
        let [pid] = new[..] else {
            return Err(c
                .deviation(format_args!(
                    "expected one new {self} process beside {known:?}, found {new:?} in {table:?}"
                ))
                .await);
        };
        known.push(pid);
        let used = c.socket_inodes(pid).await?;
        check_in!(
            c,
            used.contains(&listening),
            "{self} {pid} holds the sockets {used:?}, not scinit's listening socket {listening}"
        );
        Ok(pid)
    }
}

/// The inode of the socket listening on [`HTTP_PORT`] (`/proc/net/tcp`, whose tenth column is
/// the inode): the one scinit binds and passes on. scinit's other socket, `NOTIFY_SOCKET`'s,
/// stays its own.
async fn listening_inode(c: &Container) -> Result<u64> {
    let out = c.exec(&["cat", "/proc/net/tcp", "/proc/net/tcp6"]).await?;
    let port = format!(":{HTTP_PORT:04X}");
    let inodes: Vec<u64> = out
        .stdout
        .iter()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|f| f.get(1).is_some_and(|a| a.ends_with(&port)) && f.get(3) == Some(&"0A"))
        .filter_map(|f| f.get(9)?.parse().ok())
        .collect();
    match inodes[..] {
        [inode] => Ok(inode),
        _ => Err(anyhow!("not one socket listening on {HTTP_PORT}: {:?}", out.stdout)),
    }
}

// --- SIGHUP restarts on scinit's sockets ---------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    StopFirst,
    StartFirst,
}

impl Order {
    fn restarts(self) -> usize {
        match self {
            Order::StopFirst => STOP_FIRST_RESTARTS,
            Order::StartFirst => START_FIRST_RESTARTS,
        }
    }

    /// The restart table's name for this kind of restart.
    fn kind(self) -> &'static str {
        match self {
            Order::StopFirst => kind::STOP_FIRST,
            Order::StartFirst => kind::START_FIRST,
        }
    }

    /// The server's log events, in order, that the order fixes: all of them in stop-first;
    /// in start-first, without the old servers' `Stopped`, which overlap the next restarts.
    fn ordered(self, events: Vec<Event>) -> Vec<Event> {
        match self {
            Order::StopFirst => events,
            Order::StartFirst => events.into_iter().filter(|e| *e != Event::Stopped).collect(),
        }
    }

    /// What [`Order::ordered`] must be after `restarts` restarts: stop-first starts the new
    /// server once the old one has stopped; start-first tells the old one to stop only once the
    /// new one listens.
    fn expected(self, restarts: usize) -> Vec<Event> {
        let each: &[Event] = match self {
            Order::StopFirst => &[Event::Stopping, Event::Stopped, Event::Started],
            Order::StartFirst => &[Event::Started, Event::Stopping],
        };
        std::iter::once(Event::Started).chain(each.repeat(restarts)).collect()
    }
}

struct RestartCase {
    server: Server,
    order: Order,
}

/// The server starts on scinit's socket and serves it; then, under load, each SIGHUP starts a
/// new server process that holds the same socket, the old one stops by itself (gracefully), in
/// the order asked, and no request fails.
async fn sighup_restart_case(run: Run, case: RestartCase) -> Result<()> {
    let RestartCase { server, order } = case;
    let spec = server.spec(&run, Binding::Inherited);
    let spec = match order {
        Order::StopFirst => spec,
        Order::StartFirst => spec.start_first(server.ready(), None),
    };
    let c = spec.without_ready_wait().start().await?;
    let started = server.logged(&c, Event::Started, 1, server.start_within()).await;
    check_ok!(c, started, "{server} never started on the inherited socket");
    let addr = published(c.host_port(HTTP_PORT).await?)?;
    let page = probe::http_get(addr, "/", secs(10)).await;
    let served = page.as_ref().is_ok_and(|p| server.served(p));
    let page = page.map_or_else(|e| format!("{e:#}"), |p| format!("{p:?}"));
    check_in!(c, served, "GET / through 127.0.0.1:{}: {page}", addr.port());
    let listening = listening_inode(&c).await?;
    let held = c.socket_inodes(1).await?;
    check_in!(
        c,
        held.contains(&listening),
        "scinit's sockets {held:?} miss the one listening on {HTTP_PORT} ({listening})"
    );
    let mut pids = Vec::new();
    server.new_process(&c, listening, &mut pids).await?;

    let http = Protocol::Http { path: "/".into(), body: server.body().into() };
    let load = Load { protocol: http, ..bounded_load(addr) }.start();
    let restarts = order.restarts();
    let started = Instant::now();
    for n in 1..=restarts {
        c.kill("SIGHUP").await?;
        let restarted = server.logged(&c, Event::Started, n + 1, RESTART_WITHIN).await;
        check_ok!(c, restarted, "{server} was not started again after SIGHUP #{n}");
        // In start-first the old server is told to stop once the new one is ready: waiting for
        // it keeps one restart from overlapping the next.
        let told = server.logged(&c, Event::Stopping, n, RESTART_WITHIN).await;
        check_ok!(c, told, "the old {server} was not told to stop after SIGHUP #{n}");
        server.new_process(&c, listening, &mut pids).await?;
        let back = load.wait_for_success_since(Instant::now(), secs(10)).await;
        check_ok!(c, back, "no page served after SIGHUP #{n}");
    }
    let elapsed = started.elapsed();
    let stopped = server.logged(&c, Event::Stopped, restarts, RESTART_WITHIN).await;
    check_ok!(c, stopped, "not every old {server} stopped by itself");
    let timeline = load.stop().await?;
    record_restarts(&run, order.kind(), restarts, &timeline, elapsed);

    let seen = order.ordered(server.events(&c).await?);
    let expected = order.expected(restarts);
    check_in!(
        c,
        seen == expected,
        "{server}'s log for {restarts} {order:?} restarts: {seen:?}, expected {expected:?}"
    );
    check_in!(
        c,
        timeline.failures().is_empty(),
        "requests failed across {server} restarts: {}",
        timeline.summary()
    );
    check_in!(
        c,
        timeline.max_latency() < LATENCY_BOUND,
        "a request took {:?}: {}",
        timeline.max_latency(),
        timeline.summary()
    );
    Ok(())
}

scenario_table! {
    sighup_restart_case needs(Ports, Restart, StopSignal);
    lighttpd_serves_http_from_inherited_sockets_across_sighup_restarts =>
        RestartCase { server: Server::Lighttpd, order: Order::StopFirst },
}

scenario_table! {
    sighup_restart_case needs(Ports, Restart, StopSignal, StartFirst);
    /// Ready a fixed delay after its start: lighttpd does not speak sd_notify.
    lighttpd_serves_http_across_start_first_restarts_until_its_successor_listens =>
        RestartCase { server: Server::Lighttpd, order: Order::StartFirst },
}

scenario_table! {
    sighup_restart_case needs(Ports, Restart);
    gunicorn_serves_http_from_inherited_sockets_across_sighup_restarts =>
        RestartCase { server: Server::Gunicorn, order: Order::StopFirst },
}

scenario_table! {
    sighup_restart_case needs(Ports, Restart, StartFirst);
    /// Ready at its master's `READY=1`, which gunicorn sends once it listens but before it forks
    /// its worker: the old worker may stop before the new one accepts, and requests wait in the
    /// backlog meanwhile (the longest gap shows it).
    gunicorn_serves_http_across_start_first_restarts_until_its_successor_listens =>
        RestartCase { server: Server::Gunicorn, order: Order::StartFirst },
}

// --- What scinit saves: `docker restart` of a server binding its own port ------------------

/// The same server and load, restarted the way a container without socket inheritance has to
/// be: the server binds its port itself and the container is restarted with `docker restart`.
/// While it is down the port is closed and requests fail; on the bridge docker-proxy restarts
/// too, and the first connection through the new one waits a SYN retransmit (about 1 s, TCP's
/// initial retransmission timeout, see `socket_inheritance.rs`). The restart table shows these figures beside the SIGHUP rows. The init
/// only forwards `docker restart`'s SIGTERM, so any init can be asked this.
async fn docker_restart_case(run: Run, server: Server) -> Result<()> {
    let host_port = probe::free_port()?;
    let c = server.spec(&run, Binding::Own { host_port }).without_ready_wait().start().await?;
    let load = Load {
        protocol: Protocol::Http { path: "/".into(), body: server.body().into() },
        ..bounded_load(published(host_port)?)
    }
    .start();
    let serving = load.wait_for_success_since(Instant::now(), server.start_within()).await;
    check_ok!(c, serving, "{server} never served on the port it bound");

    let started = Instant::now();
    for n in 1..=DOCKER_RESTARTS {
        c.restart(secs(5)).await?;
        let back = load.wait_for_success_since(Instant::now(), server.start_within()).await;
        check_ok!(c, back, "no page served after docker restart #{n}");
    }
    let elapsed = started.elapsed();
    let timeline = load.stop().await?;
    record_restarts(&run, kind::DOCKER_RESTART, DOCKER_RESTARTS, &timeline, elapsed);

    let starts = server.events(&c).await?.into_iter().filter(|e| *e == Event::Started).count();
    check_in!(
        c,
        starts == DOCKER_RESTARTS + 1,
        "{server} started {starts} times for {DOCKER_RESTARTS} docker restarts"
    );
    check_in!(
        c,
        !timeline.failures().is_empty() || timeline.longest_gap() >= secs(1),
        "docker restart showed no downtime at all, so the comparison shows nothing: {}",
        timeline.summary()
    );
    Ok(())
}

scenario_table! {
    docker_restart_case;
    docker_restart_of_lighttpd_binding_its_own_port_loses_requests => Server::Lighttpd,
    docker_restart_of_gunicorn_binding_its_own_port_loses_requests => Server::Gunicorn,
}
