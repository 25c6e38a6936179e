//! Real servers nobody here wrote, taking their sockets from scinit: Debian's lighttpd and
//! gunicorn read `LISTEN_FDS`/`LISTEN_PID` as they would under systemd, serve HTTP on the socket
//! scinit bound, and keep serving, with no failed request, across SIGHUP restarts. The testkit
//! echo server (socket_inheritance.rs) was written for the contract; these were not: their own
//! start-up, shutdown and logs show whether the contract holds for programs in the wild.
//!
//! Evidence: HTTP replies through the published port (the `Server` header names who answered),
//! the servers' own log lines, and `/proc` read through `docker exec` (which sockets a process
//! holds). Both need scinit's ports and restarts: `n/a` for the other inits.

use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};

use crate::infrastructure::probe::{self, localhost, Load, Protocol};
use crate::infrastructure::{scenario, Container, ContainerSpec, Follower, Run};
use crate::performance::load::{bounded_load, record_restarts};
use crate::utils::wait::{self, secs, Polled};

/// The container port both servers serve (lighttpd.conf's `server.port`).
const HTTP_PORT: u16 = 8080;
/// How long a restarted server may take to start (generous: 2 shared cores).
const RESTART_WITHIN: Duration = Duration::from_secs(10);
/// The worst request latency accepted while a server restarts (liveness, not performance).
const LATENCY_BOUND: Duration = Duration::from_secs(5);

// --- lighttpd ------------------------------------------------------------------------------

/// What lighttpd serves at `/`.
const LIGHTTPD_BODY: &str = "served by lighttpd from scinit's socket\n";
/// SIGHUP restarts of lighttpd under load.
const LIGHTTPD_RESTARTS: usize = 5;

/// Waits until lighttpd has logged its `n`-th `server started` (on stderr: polled).
async fn lighttpd_started(c: &Container, n: usize, within: Duration) -> Result<()> {
    wait::until(&format!("lighttpd's `server started` #{n}"), within, || async {
        let stderr = c.logs().await?.stderr;
        let seen = stderr.iter().filter(|l| l.contains("server started")).count();
        Ok(if seen >= n {
            Polled::Ready(())
        } else {
            Polled::NotYet(format!("{seen} starts: {stderr:?}"))
        })
    })
    .await
}

/// lighttpd's pid, from the process table.
async fn lighttpd_pid(c: &Container) -> Result<i32> {
    let table = c.processes().await?;
    table
        .iter()
        .find(|p| p.comm == "lighttpd")
        .map(|p| p.pid)
        .ok_or_else(|| anyhow!("no lighttpd in {table:?}"))
}

/// Debian's lighttpd (`server.systemd-socket-activation = "enable"`,
/// `fixtures/lighttpd/lighttpd.conf`), copied with its `ldd` closure: a real program that
/// takes its socket from `LISTEN_FDS`/`LISTEN_PID` serves HTTP on scinit's socket, and keeps
/// serving, with no failed request, across SIGHUP restarts. Its built-in modules
/// (indexfile, staticfile) are enough: nothing from `/usr/lib/lighttpd/` is loaded.
#[scenario(needs(Ports, Restart))]
async fn lighttpd_serves_http_from_inherited_sockets_across_sighup_restarts(
    run: Run,
) -> Result<()> {
    let c = ContainerSpec::new(&run)
        .with_ports([HTTP_PORT])
        .with_program("/usr/sbin/lighttpd", "/usr/sbin/lighttpd")
        .with_file(
            "/etc/lighttpd/lighttpd.conf",
            include_str!("../../../fixtures/lighttpd/lighttpd.conf"),
        )
        .with_file("/var/www/index.html", LIGHTTPD_BODY)
        .child(["/scripts/socket_lighttpd.sh"])
        .without_ready_wait()
        .start()
        .await?;
    let started = lighttpd_started(&c, 1, secs(10)).await;
    check_ok!(c, started, "lighttpd never started on the inherited socket");
    let addr = localhost(c.host_port(HTTP_PORT).await?);
    let page = probe::http_get(addr, "/", secs(10)).await;
    let from_lighttpd =
        |p: &probe::HttpReply| p.server.as_deref().is_some_and(|s| s.starts_with("lighttpd/"));
    let served =
        page.as_ref().is_ok_and(|p| p.status == 200 && p.body == LIGHTTPD_BODY && from_lighttpd(p));
    let page = page.map_or_else(|e| format!("{e:#}"), |p| format!("{p:?}"));
    check_in!(c, served, "GET / through 127.0.0.1:{}: {page}", addr.port());
    let held = c.socket_inodes(1).await?;
    let mut pids = vec![lighttpd_pid(&c).await?];
    let used = c.socket_inodes(pids[0]).await?;
    check_in!(
        c,
        held.iter().all(|i| used.contains(i)),
        "lighttpd's sockets {used:?} do not include scinit's {held:?}"
    );

    let http = Protocol::Http { path: "/".into(), body: LIGHTTPD_BODY.into() };
    let load = Load { protocol: http, ..bounded_load(addr) }.start();
    let started = Instant::now();
    for n in 1..=LIGHTTPD_RESTARTS {
        c.kill("SIGHUP").await?;
        let restarted = lighttpd_started(&c, n + 1, RESTART_WITHIN).await;
        check_ok!(c, restarted, "lighttpd was not started again after SIGHUP #{n}");
        let pid = lighttpd_pid(&c).await?;
        check_in!(
            c,
            !pids.contains(&pid),
            "SIGHUP #{n}: lighttpd has the pid {pid} of an earlier run"
        );
        pids.push(pid);
        let used = c.socket_inodes(pid).await?;
        check_in!(
            c,
            held.iter().all(|i| used.contains(i)),
            "lighttpd {pid}'s sockets {used:?} miss scinit's {held:?}"
        );
        let back = load.wait_for_success_since(Instant::now(), secs(10)).await;
        check_ok!(c, back, "no page served after SIGHUP #{n}");
    }
    let elapsed = started.elapsed();
    let timeline = load.stop().await?;
    record_restarts(&run, LIGHTTPD_RESTARTS, &timeline, elapsed);
    check_in!(
        c,
        timeline.failures().is_empty(),
        "requests failed across lighttpd restarts: {}",
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

// --- gunicorn ------------------------------------------------------------------------------

/// What `fixtures/gunicorn/app.py` answers.
const GUNICORN_BODY: &str = "served by gunicorn from scinit's socket\n";
/// SIGHUP restarts of gunicorn under load.
const GUNICORN_RESTARTS: usize = 5;
/// How long gunicorn's master waits, after SIGTERM, for its worker to finish its request
/// (`--graceful-timeout`, in seconds).
const GUNICORN_GRACEFUL: Duration = Duration::from_secs(2);
/// scinit's grace period: well beyond gunicorn's own, so that gunicorn always stops by itself.
const GUNICORN_SCINIT_GRACE: Duration = Duration::from_secs(10);
/// How long the first start may take: a cold Python importing gunicorn and pkg_resources.
const GUNICORN_START_WITHIN: Duration = Duration::from_secs(30);
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

/// One start of gunicorn, as it logs it.
#[derive(Debug)]
struct GunicornStart {
    /// The master: scinit's child, which took the sockets.
    master: i32,
    /// The address gunicorn says it listens at.
    listening: String,
    worker: i32,
}

/// The next start of gunicorn on `log`: `Listening at: <address> (<master pid>)`, then
/// `Booting worker with pid: <pid>`, both within `within`.
async fn gunicorn_started(log: &mut Follower, within: Duration) -> Result<GunicornStart> {
    let deadline = Instant::now() + within;
    let line = log
        .next_line("gunicorn's `Listening at`", within, |l| l.contains("] Listening at: "))
        .await?;
    let (listening, master) = line
        .split_once("] Listening at: ")
        .and_then(|(_, rest)| rest.rsplit_once(" ("))
        .and_then(|(addr, pid)| Some((addr.to_string(), pid.strip_suffix(')')?.parse().ok()?)))
        .with_context(|| format!("unexpected `Listening at` line {line:?}"))?;
    let left = deadline.saturating_duration_since(Instant::now());
    let line = log
        .next_line("gunicorn's `Booting worker`", left, |l| {
            l.contains("] Booting worker with pid: ")
        })
        .await?;
    let worker = line
        .split_once("] Booting worker with pid: ")
        .and_then(|(_, pid)| pid.trim().parse().ok())
        .with_context(|| format!("unexpected `Booting worker` line {line:?}"))?;
    Ok(GunicornStart { master, listening, worker })
}

/// Debian's gunicorn (a Python WSGI server, `fixtures/gunicorn/app.py`), run FROM scratch with
/// the interpreter, the parts of its standard library gunicorn uses, and gunicorn with
/// pkg_resources: its master takes scinit's socket from `LISTEN_FDS`/`LISTEN_PID`
/// (`gunicorn/systemd.py`), its worker serves it, and on each SIGHUP restart gunicorn stops
/// gracefully on SIGTERM (it logs `Shutting down: Master`) and the next master serves the same
/// socket, with no failed request. It logs to stdout (`--error-logfile /dev/stdout`), so its
/// lines are followed as they come.
#[scenario(needs(Ports, Restart))]
async fn gunicorn_serves_http_from_inherited_sockets_across_sighup_restarts(
    run: Run,
) -> Result<()> {
    let extensions: Vec<String> = PYTHON_UNUSED_EXTENSIONS
        .iter()
        .map(|m| format!("lib-dynload/{m}.cpython-311-x86_64-linux-gnu.so"))
        .collect();
    let python_skip: Vec<&str> =
        PYTHON_UNUSED.iter().copied().chain(extensions.iter().map(String::as_str)).collect();
    let graceful = GUNICORN_GRACEFUL.as_secs().to_string();
    let c = ContainerSpec::new(&run)
        .with_ports([HTTP_PORT])
        .grace(GUNICORN_SCINIT_GRACE)
        .with_program("/usr/bin/python3", "/usr/bin/python3")
        .with_host_tree("/usr/lib/python3.11", &python_skip)
        .with_host_tree("/usr/lib/python3/dist-packages/gunicorn", &[])
        .with_host_tree("/usr/lib/python3/dist-packages/pkg_resources", &[])
        .with_file("/srv/app/app.py", include_str!("../../../fixtures/gunicorn/app.py"))
        .child([
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
            "app:app",
        ])
        .without_ready_wait()
        .start()
        .await?;
    let mut log = c.follow();
    let first = gunicorn_started(&mut log, GUNICORN_START_WITHIN).await;
    let first = check_ok!(c, first, "gunicorn never started");
    let inherited = format!("http://0.0.0.0:{HTTP_PORT}");
    check_in!(
        c,
        first.listening == inherited,
        "gunicorn listens at {}, not on the inherited {inherited} (it bound a socket itself)",
        first.listening
    );
    let addr = localhost(c.host_port(HTTP_PORT).await?);
    let page = probe::http_get(addr, "/", secs(10)).await;
    let served = page.as_ref().is_ok_and(|p| {
        p.status == 200 && p.body == GUNICORN_BODY && p.server.as_deref() == Some("gunicorn")
    });
    let page = page.map_or_else(|e| format!("{e:#}"), |p| format!("{p:?}"));
    check_in!(c, served, "GET / through 127.0.0.1:{}: {page}", addr.port());
    let held = c.socket_inodes(1).await?;
    for (role, pid) in [("master", first.master), ("worker", first.worker)] {
        let used = c.socket_inodes(pid).await?;
        check_in!(
            c,
            held.iter().all(|i| used.contains(i)),
            "gunicorn's {role} {pid} holds the sockets {used:?}, not scinit's {held:?}"
        );
    }

    let mut masters = vec![first.master];
    let http = Protocol::Http { path: "/".into(), body: GUNICORN_BODY.into() };
    let load = Load { protocol: http, ..bounded_load(addr) }.start();
    let started = Instant::now();
    for n in 1..=GUNICORN_RESTARTS {
        c.kill("SIGHUP").await?;
        let stopped = log
            .next_line("gunicorn's `Shutting down: Master`", RESTART_WITHIN, |l| {
                l.contains("] Shutting down: Master")
            })
            .await;
        check_ok!(c, stopped, "gunicorn did not stop by itself after SIGHUP #{n}");
        let restarted = gunicorn_started(&mut log, RESTART_WITHIN).await;
        let next = check_ok!(c, restarted, "gunicorn was not started again after SIGHUP #{n}");
        check_in!(
            c,
            !masters.contains(&next.master),
            "SIGHUP #{n}: gunicorn's master has the pid {} of an earlier one",
            next.master
        );
        masters.push(next.master);
        let used = c.socket_inodes(next.master).await?;
        check_in!(
            c,
            held.iter().all(|i| used.contains(i)),
            "gunicorn {}'s sockets {used:?} miss scinit's {held:?}",
            next.master
        );
        let back = load.wait_for_success_since(Instant::now(), secs(10)).await;
        check_ok!(c, back, "no page served after SIGHUP #{n}");
    }
    let elapsed = started.elapsed();
    let timeline = load.stop().await?;
    record_restarts(&run, GUNICORN_RESTARTS, &timeline, elapsed);
    check_in!(
        c,
        timeline.failures().is_empty(),
        "requests failed across gunicorn restarts: {}",
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
