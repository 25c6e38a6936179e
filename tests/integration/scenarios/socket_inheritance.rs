//! Sockets: the init binds the ports, the child serves them, and the host reaches them through
//! ports published on 127.0.0.1 (or the host network), with an application-level round trip.
//!
//! scinit's contract (README, "Socket activation contract" and "Restarts"): each port is bound
//! once, at fds 3.. in `--ports` order, with `LISTEN_FDS`, `LISTEN_PID` (the child's own pid),
//! `LISTEN_FDNAMES` and `SCINIT_INHERITED_FDS`; a restart stops the old child and starts a new
//! one on the *same* sockets, so connections arriving meanwhile wait in the kernel backlog
//! instead of being refused. The original scinit's restarts dropped connections for about a
//! second; these scenarios measure the claim from outside, as a load balancer would see it.
//!
//! Evidence: the inspector's JSON (fds, socket inodes, environment), the echo server's lines and
//! replies (`ECHO PID=<pid>: ...` names the process that answered, so a restart is visible in the
//! traffic), `/proc` read through `docker exec` (the init's own fds, the listening socket's accept
//! queue) and Docker's state. A bare TCP connect proves nothing through docker-proxy
//! (moby#16976, #48132; docs/known-bugs.md#moby-16976): every request needs its reply.
//!
//! Everything but the first and the `docker restart` comparison needs scinit's ports and
//! restarts: `n/a` for the other inits.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use crate::figures::restart;
use crate::infrastructure::probe::{self, published, Session};
use crate::infrastructure::{
    scenario, Capability, Container, ContainerSpec, Follower, Network, Run,
};
use crate::performance::load::{bounded_load, record_restarts};
use crate::utils::child_report::{ChildReport, Inspection};
use crate::utils::proc::PortView;
use crate::utils::wait::{self, secs, Polled};

/// How long a restarted child may take to print its handshake (generous: 2 shared cores).
const RESTART_WITHIN: Duration = Duration::from_secs(10);
/// The worst request latency accepted while the server restarts (liveness, not performance).
const LATENCY_BOUND: Duration = Duration::from_secs(5);

/// The echo server answers through a published port; with an init that binds ports (scinit) it
/// serves the socket the init bound, with the other inits it binds the port itself.
#[scenario]
async fn echo_server_answers_through_a_published_port(run: Run) -> Result<()> {
    let scenario = ContainerSpec::new(&run);
    let scenario = if run.init().has(Capability::Ports) {
        scenario.with_ports([8080]).child(["testkit", "echo"])
    } else {
        scenario.publish([8080]).child(["testkit", "echo", "--listen", "0.0.0.0:8080"])
    };
    let c = scenario.start().await?;
    let port = c.host_port(8080).await?;
    let reply = probe::wait_until_serving(published(port)?, secs(10)).await;
    check_in!(c, reply.is_ok(), "no echo through 127.0.0.1:{port}: {}", why(&reply));
    Ok(())
}

/// The text of an error, for messages about results kept as evidence.
fn why<T>(result: &Result<T>) -> String {
    result.as_ref().err().map(|e| format!("{e:#}")).unwrap_or_default()
}

// --- The inheritance contract --------------------------------------------------------------

/// Ports, bind address and the address the child must see its sockets bound to.
struct InheritanceCase {
    ports: &'static [u16],
    bind: Option<&'static str>,
    /// The host part of `getsockname` as the inspector prints it (`0.0.0.0`, `[::]`).
    host: &'static str,
}

impl InheritanceCase {
    fn ipv6(&self) -> bool {
        self.host.starts_with('[')
    }

    fn scenario(&self, run: &Run, child: &[&str]) -> ContainerSpec {
        let mut s = ContainerSpec::new(run)
            .with_ports(self.ports.iter().copied())
            .child(child.iter().copied());
        if let Some(addr) = self.bind {
            s = s.bind_addr(addr);
        }
        if self.ipv6() {
            // Docker turns IPv6 off in containers on a network without it, even on the
            // loopback; `::` still binds (dual stack), but `::1` only exists with this.
            s = s.sysctl("net.ipv6.conf.lo.disable_ipv6", "0");
        }
        s
    }

    /// Every way `seen` breaks the contract for a child whose pid is `seen.pid`.
    fn problems(&self, seen: &Inspection) -> Vec<String> {
        let n = self.ports.len();
        let mut problems = Vec::new();
        let expected_fds: Vec<i64> = (0..3 + n as i64).collect();
        if seen.fds != expected_fds {
            problems.push(format!(
                "fds {:?}, expected exactly {expected_fds:?} (stdio + the sockets)",
                seen.fds
            ));
        }
        let sockets: Vec<(i64, String, bool)> =
            seen.sockets.iter().map(|s| (s.fd, s.addr.clone(), s.listening)).collect();
        let expected: Vec<(i64, String, bool)> = self
            .ports
            .iter()
            .enumerate()
            .map(|(i, p)| (3 + i as i64, format!("{}:{p}", self.host), true))
            .collect();
        if sockets != expected {
            problems.push(format!(
                "sockets (fd, addr, listening) {sockets:?}, expected {expected:?} in --ports order"
            ));
        }
        let count = n.to_string();
        if seen.env("LISTEN_FDS") != Some(count.as_str()) {
            problems.push(format!("LISTEN_FDS={:?}, expected {n}", seen.env("LISTEN_FDS")));
        }
        let pid = seen.pid.to_string();
        if seen.env("LISTEN_PID") != Some(pid.as_str()) {
            problems.push(format!(
                "LISTEN_PID={:?}, expected the child's own pid {pid}",
                seen.env("LISTEN_PID")
            ));
        }
        let names: Vec<&str> =
            seen.env("LISTEN_FDNAMES").map(|v| v.split(':').collect()).unwrap_or_default();
        if names.len() != n || names.iter().any(|name| name.is_empty()) {
            let names = seen.env("LISTEN_FDNAMES");
            problems.push(format!(
                "LISTEN_FDNAMES={names:?}, expected {n} non-empty colon-separated names"
            ));
        }
        let fds = (3..3 + n).map(|fd| fd.to_string()).collect::<Vec<_>>().join(",");
        if seen.env("SCINIT_INHERITED_FDS") != Some(fds.as_str()) {
            problems.push(format!(
                "SCINIT_INHERITED_FDS={:?}, expected {fds:?}",
                seen.env("SCINIT_INHERITED_FDS")
            ));
        }
        problems
    }
}

/// The next inspector report on `follower`.
async fn next_inspection(follower: &mut Follower) -> Result<Inspection> {
    let line = follower
        .next_line("the inspector's `inspect` line", secs(10), |l| l.starts_with("inspect "))
        .await?;
    Inspection::from_lines(&[line])
}

async fn inheritance_case(run: Run, case: InheritanceCase) -> Result<()> {
    // The inspector: what a child sees, before and after a SIGHUP restart.
    let c = case.scenario(&run, &["testkit", "inspect", "--stay"]).start().await?;
    let mut follower = c.follow();
    let first = next_inspection(&mut follower).await?;
    let problems = case.problems(&first);
    check_in!(
        c,
        problems.is_empty(),
        "the first child's view breaks the contract:\n  {}",
        problems.join("\n  ")
    );
    let inodes: Vec<u64> = first.sockets.iter().map(|s| s.inode).collect();
    let held = c.socket_inodes(1).await?;
    check_in!(
        c,
        inodes.iter().all(|i| held.contains(i)),
        "the child's sockets {inodes:?} are not the init's own {held:?}"
    );

    c.kill("SIGHUP").await?;
    c.next_ready(&mut follower, RESTART_WITHIN, "SIGHUP").await?;
    let second = next_inspection(&mut follower).await?;
    let problems = case.problems(&second);
    check_in!(
        c,
        problems.is_empty(),
        "the restarted child's view breaks the contract:\n  {}",
        problems.join("\n  ")
    );
    check_in!(c, second.pid != first.pid, "the restarted child has the old pid {}", first.pid);
    let after: Vec<u64> = second.sockets.iter().map(|s| s.inode).collect();
    check_in!(
        c,
        after == inodes,
        "the sockets were re-created across the restart: inodes {inodes:?} before, {after:?} after \
         (a re-bound socket drops its backlog)"
    );

    // The echo server: the same sockets, adopted and served.
    let c = case.scenario(&run, &["testkit", "echo"]).start().await?;
    // The handshake comes first; the `listening` lines follow it, one per socket.
    c.fact_within("listening", case.ports.len(), secs(5), |_| true).await?;
    let report = c.report().await?;
    let listening: Vec<String> = report.of_kind("listening").map(|f| f.to_string()).collect();
    let expected: Vec<String> = case
        .ports
        .iter()
        .enumerate()
        .map(|(i, p)| format!("listening addr={}:{p} fd={} inherited=true", case.host, 3 + i))
        .collect();
    check_in!(
        c,
        listening == expected,
        "the echo server reported {listening:?}, expected {expected:?}"
    );
    let pid = report.readies()?.first().map(|r| r.pid).context("no handshake")?;
    for &port in case.ports {
        let line = format!("via-{port}");
        let answer = if case.ipv6() {
            // From inside: the IPv6 loopback, so the reply proves the socket serves IPv6.
            let script = format!("echo {line} | nc -w 5 ::1 {port}");
            c.exec(&["sh", "-c", &script]).await?.stdout.join("\n")
        } else {
            let reply = probe::request(published(c.host_port(port).await?)?, &line, secs(10)).await;
            reply
                .map(|r| format!("ECHO PID={}: {line}", r.pid))
                .unwrap_or_else(|e| format!("{e:#}"))
        };
        let wanted = format!("ECHO PID={pid}: {line}");
        check_in!(c, answer == wanted, "port {port}: got {answer:?}, expected {wanted:?}");
    }
    Ok(())
}

scenario_table! {
    inheritance_case needs(Ports, Restart);
    /// One port on the default bind address (0.0.0.0: scinit's home is a container, where a
    /// loopback-only socket is unreachable through a published port).
    one_port_is_inherited_at_fd_3_with_the_activation_variables_on_ipv4 =>
        InheritanceCase { ports: &[8080], bind: None, host: "0.0.0.0" },
    /// Three ports, deliberately not sorted: fds 3, 4, 5 follow `--ports` order.
    three_ports_are_inherited_at_fds_3_to_5_in_ports_order_on_ipv4 =>
        InheritanceCase { ports: &[8080, 9090, 7070], bind: None, host: "0.0.0.0" },
    /// `--bind-addr ::`, answered over the container's IPv6 loopback.
    one_port_is_inherited_at_fd_3_with_the_activation_variables_on_ipv6 =>
        InheritanceCase { ports: &[8080], bind: Some("::"), host: "[::]" },
    three_ports_are_inherited_at_fds_3_to_5_in_ports_order_on_ipv6 =>
        InheritanceCase { ports: &[8080, 9090, 7070], bind: Some("::"), host: "[::]" },
}

// --- The listening socket's options, seen by a second binder ---------------------------------

/// What the kernel tells a second process that binds the init's port 8080 inside the container
/// (`testkit bind` through `docker exec`), with or without `SO_REUSEPORT` of its own:
/// `[without, with]`, each `ok` or an errno name.
async fn second_binds(reuse_port_flag: bool, run: &Run) -> Result<(Container, [String; 2])> {
    let spec = ContainerSpec::new(run).with_ports([8080]).child(["testkit", "echo"]);
    let spec = if reuse_port_flag { spec.init_args(["--reuse-port"]) } else { spec };
    let c = spec.start().await?;
    c.wait_for_fact("listening", 1, secs(5), |_| true).await?;
    let mut results = Vec::new();
    for extra in [None, Some("--reuse-port")] {
        let argv: Vec<&str> =
            ["testkit", "bind", "0.0.0.0:8080"].into_iter().chain(extra).collect();
        let out = c.exec(&argv).await?;
        let result = ChildReport::parse(&out.stdout)
            .of_kind("bind")
            .find_map(|f| f.get("result").map(str::to_string));
        match result {
            Some(result) if out.code == 0 => results.push(result),
            _ => bail!("{argv:?} exited {}: {:?} {:?}", out.code, out.stdout, out.stderr),
        }
    }
    let [without, with] = <[String; 2]>::try_from(results).map_err(|r| anyhow!("{r:?}"))?;
    Ok((c, [without, with]))
}

/// Without `--reuse-port` the init's listening socket has no `SO_REUSEPORT` (README "Socket
/// activation contract"): a second process in the container cannot bind the port, not even one
/// that sets `SO_REUSEPORT` itself (EADDRINUSE both ways), so no stray server silently takes a
/// share of the connections.
#[scenario(needs(Ports))]
async fn without_reuse_port_a_second_bind_of_the_inits_port_fails_with_eaddrinuse(
    run: Run,
) -> Result<()> {
    let (c, [without, with]) = second_binds(false, &run).await?;
    check_in!(
        c,
        without == "EADDRINUSE" && with == "EADDRINUSE",
        "a second bind of port 8080 gave {without} without SO_REUSEPORT and {with} with it, \
         expected EADDRINUSE both times"
    );
    Ok(())
}

/// With `--reuse-port` the socket has `SO_REUSEPORT`: a second process that sets it too binds
/// the same port (and the kernel would split the connections), one that does not still gets
/// EADDRINUSE.
#[scenario(needs(Ports, ScinitCli))]
async fn with_reuse_port_a_second_process_that_sets_it_too_binds_the_inits_port(
    run: Run,
) -> Result<()> {
    let (c, [without, with]) = second_binds(true, &run).await?;
    check_in!(
        c,
        without == "EADDRINUSE" && with == "ok",
        "a second bind of port 8080 gave {without} without SO_REUSEPORT and {with} with it, \
         expected EADDRINUSE and ok"
    );
    Ok(())
}

// --- Zero-downtime restart under load ------------------------------------------------------

/// The container port of the echo server on the bridge.
const ECHO_PORT: u16 = 8080;
/// SIGHUP restarts per load run.
const RESTARTS: usize = 50;

/// An echo server under scinit, on `network`, and the address the host reaches it at.
async fn echo_server(
    run: &Run,
    network: Network,
    child: &[&str],
    grace: Option<Duration>,
) -> Result<(Container, SocketAddr)> {
    let mut scenario = ContainerSpec::new(run).child(child.iter().copied()).network(network);
    if let Some(grace) = grace {
        scenario = scenario.grace(grace);
    }
    let port = match network {
        Network::Host => {
            let port = probe::free_port()?;
            scenario = scenario.with_ports([port]).bind_addr("127.0.0.1");
            port
        }
        _ => {
            scenario = scenario.with_ports([ECHO_PORT]);
            ECHO_PORT
        }
    };
    let c = scenario.start().await?;
    let addr = published(c.host_port(port).await?)?;
    Ok((c, addr))
}

/// Fifty SIGHUP restarts while a host-side load runs. Each restart waits for its event (the new
/// child's handshake, then a load reply from the new pid), never for a fixed time.
///
/// The two network paths differ by docker-proxy. Through a published port the userland proxy on
/// the host accepts each client itself (even when nothing listens inside, moby#16976) and opens
/// its own connection to the container: during a restart that second connection is what waits
/// in scinit's backlog, and every request pays a second hop and the proxy's scheduling (p50 of
/// a few ms instead of under one). On the host network the client's SYN lands straight in the
/// backlog of the socket scinit holds, so those figures show scinit alone.
async fn restart_under_load_case(run: Run, network: Network) -> Result<()> {
    let (c, addr) = echo_server(&run, network, &["testkit", "echo"], None).await?;
    let mut follower = c.follow();
    let mut pids = vec![c.next_ready(&mut follower, RESTART_WITHIN, "start").await?.pid];
    let load = bounded_load(addr).start();
    let serving = load.wait_for_pid(pids[0], secs(10)).await;
    check_ok!(c, serving, "the first child never answered the load");

    let started = Instant::now();
    for n in 1..=RESTARTS {
        c.kill("SIGHUP").await?;
        let pid = c.next_ready(&mut follower, RESTART_WITHIN, format!("SIGHUP #{n}")).await?.pid;
        check_in!(
            c,
            !pids.contains(&pid),
            "SIGHUP #{n}: the new child has the pid {pid} of an earlier one"
        );
        pids.push(pid);
        let answered = load.wait_for_pid(pid, secs(10)).await;
        check_ok!(c, answered, "SIGHUP #{n}: the new child {pid} never answered the load");
    }
    let elapsed = started.elapsed();
    let timeline = load.stop().await?;
    record_restarts(&run, restart::kind::STOP_FIRST, RESTARTS, &timeline, elapsed);

    check_in!(
        c,
        timeline.failures().is_empty(),
        "requests failed during {RESTARTS} restarts: {}",
        timeline.summary()
    );
    let answered: BTreeSet<i32> = timeline.pids().into_iter().collect();
    let started_pids: BTreeSet<i32> = pids.iter().copied().collect();
    check_in!(
        c,
        answered == started_pids && answered.len() == RESTARTS + 1,
        "the replies came from pids {answered:?}; expected exactly the {} children started \
         {started_pids:?}",
        RESTARTS + 1
    );
    check_in!(
        c,
        timeline.max_latency() < LATENCY_BOUND,
        "a request took {:?}: {}",
        timeline.max_latency(),
        timeline.summary()
    );
    check_in!(c, c.state().await?.running, "the container stopped after the restarts");
    Ok(())
}

scenario_table! {
    restart_under_load_case needs(Ports, Restart);
    fifty_sighup_restarts_under_load_fail_no_request_through_a_published_port => Network::Bridge,
    fifty_sighup_restarts_under_load_fail_no_request_on_the_host_network => Network::Host,
}

// --- Restarts that go wrong ----------------------------------------------------------------

/// The new child cannot be executed (its binary was removed, as by a botched deploy): scinit
/// logs it, stays up and keeps the listening socket, so a connection made meanwhile waits in
/// the backlog; once the binary is back, the next SIGHUP starts a child that answers it.
#[scenario(needs(Ports, Restart))]
async fn a_restart_whose_binary_is_gone_keeps_the_socket_and_the_next_restart_answers_the_queue(
    run: Run,
) -> Result<()> {
    let (c, addr) =
        echo_server(&run, Network::Bridge, &["/bin/testkit", "echo"], Some(secs(2))).await?;
    let mut follower = c.follow();
    let first = c.next_ready(&mut follower, RESTART_WITHIN, "start").await?;
    let held = c.socket_inodes(1).await?;
    c.sh("cp /bin/testkit /tmp/testkit.saved && rm /bin/testkit").await?;

    c.kill("SIGHUP").await?;
    let exited = follower.next_fact("exiting", secs(10), |_| true).await;
    check_ok!(c, exited, "the old child was not stopped by SIGHUP");
    let logged = wait::until("scinit's log of the failed start", secs(5), || async {
        let stderr = c.logs().await?.stderr;
        Ok(match stderr.iter().find(|l| l.starts_with("scinit:") && l.contains("/bin/testkit")) {
            Some(line) => Polled::Ready(line.clone()),
            None => Polled::NotYet(format!("{stderr:?}")),
        })
    })
    .await;
    check_ok!(c, logged, "the failed start was not logged");

    let queued = tokio::spawn(probe::request(addr, "queued", secs(20)));
    let in_backlog = wait::until("the connection in the accept queue", secs(5), || async {
        Ok(match c.listening(ECHO_PORT).await? {
            PortView { queued: Some(n), .. } if n >= 1 => Polled::Ready(()),
            other => Polled::NotYet(format!("{other:?}")),
        })
    })
    .await;
    check_ok!(c, in_backlog, "no listening socket held the connection while no child ran");
    check_in!(c, c.state().await?.running, "the init exited after the failed start");
    let still = c.socket_inodes(1).await?;
    check_in!(
        c,
        still == held,
        "the init's sockets changed after the failed start: {held:?} -> {still:?}"
    );

    c.sh("cp /tmp/testkit.saved /bin/testkit").await?;
    c.kill("SIGHUP").await?;
    let second =
        c.next_ready(&mut follower, RESTART_WITHIN, "the binary came back and SIGHUP").await?;
    let answer = queued.await.map_err(|e| anyhow!("the queued request's task: {e}"))?;
    check_in!(
        c,
        answer.as_ref().is_ok_and(|r| r.pid == second.pid),
        "the queued request got {}, expected a reply from the new child {}",
        answer.as_ref().map_or_else(|e| format!("{e:#}"), |r| format!("{r:?}")),
        second.pid
    );
    check_in!(c, second.pid != first.pid, "no new child: pid {} before and after", first.pid);
    Ok(())
}

/// An old child that ignores SIGTERM (`--term stall`: stops accepting, never exits) is killed
/// when the grace period ends, not before; requests sent meanwhile wait in the backlog and
/// are answered by the new child.
#[scenario(needs(Ports, Restart))]
async fn an_old_child_ignoring_sigterm_is_killed_after_the_grace_period_and_queued_requests_succeed(
    run: Run,
) -> Result<()> {
    let grace = secs(1);
    let (c, addr) =
        echo_server(&run, Network::Bridge, &["testkit", "echo", "--term", "stall"], Some(grace))
            .await?;
    let mut follower = c.follow();
    let first = c.next_ready(&mut follower, RESTART_WITHIN, "start").await?;
    probe::request(addr, "before", secs(10)).await?;

    let sent = Instant::now();
    c.kill("SIGHUP").await?;
    let termed = follower.next_fact("signal", secs(5), |f| f.get("name") == Some("SIGTERM")).await;
    check_ok!(c, termed, "the old child never got SIGTERM");
    // The stalled child accepts nothing from here on: these wait in the backlog.
    let queued: Vec<_> = (0..4)
        .map(|n| {
            tokio::spawn(
                async move { probe::request(addr, &format!("queued-{n}"), secs(15)).await },
            )
        })
        .collect();
    let second =
        c.next_ready(&mut follower, RESTART_WITHIN, "SIGHUP to a child ignoring SIGTERM").await?;
    let escalation = sent.elapsed();
    run.record("escalation_ms", escalation.as_secs_f64() * 1000.0, "ms");

    check_in!(
        c,
        escalation >= grace,
        "the new child started {escalation:?} after SIGHUP, before the {grace:?} grace period ended"
    );
    check_in!(
        c,
        escalation < grace + secs(4),
        "the old child was replaced only {escalation:?} after SIGHUP (grace {grace:?})"
    );
    let mut answers = Vec::new();
    for task in queued {
        answers.push(task.await.map_err(|e| anyhow!("a queued request's task: {e}"))?);
    }
    let wrong: Vec<String> = answers
        .iter()
        .filter_map(|a| match a {
            Ok(r) if r.pid == second.pid => None,
            Ok(r) => Some(format!("answered by {}", r.pid)),
            Err(e) => Some(format!("{e:#}")),
        })
        .collect();
    check_in!(
        c,
        wrong.is_empty(),
        "queued requests not answered by the new child {}: {wrong:?}",
        second.pid
    );
    let left = c.processes().await?;
    check_in!(
        c,
        left.iter().all(|p| p.pid != first.pid),
        "the old child {} is still there: {left:?}",
        first.pid
    );
    Ok(())
}

/// A graceful child finishes what it accepted: connections it accepted before SIGHUP, whose
/// request comes only after the SIGTERM, still get their answer from the old child (scinit
/// waits for it, within the grace period), while new connections wait for the new child. No
/// request is cut. On the host network, so that the connections the old child accepted are
/// the test's own (through docker-proxy they would be the proxy's).
#[scenario(needs(Ports, Restart))]
async fn a_graceful_child_answers_its_in_flight_connections_during_a_restart(
    run: Run,
) -> Result<()> {
    let (c, addr) = echo_server(&run, Network::Host, &["testkit", "echo"], None).await?;
    let mut follower = c.follow();
    let first = c.next_ready(&mut follower, RESTART_WITHIN, "start").await?;
    let mut sessions = Vec::new();
    for _ in 0..4 {
        sessions.push(Session::open(addr, secs(10)).await?);
    }
    wait::until("the old child to accept the 4 connections", secs(5), || async {
        let view = c.listening(addr.port()).await?;
        let accepted = view.queued == Some(0) && view.established >= 4;
        Ok(if accepted { Polled::Ready(()) } else { Polled::NotYet(format!("{view:?}")) })
    })
    .await?;
    let load = bounded_load(addr).start();

    c.kill("SIGHUP").await?;
    let termed = follower.next_fact("signal", secs(5), |f| f.get("name") == Some("SIGTERM")).await;
    check_ok!(c, termed, "the old child never got SIGTERM");
    let mut cut = Vec::new();
    for (n, session) in sessions.iter_mut().enumerate() {
        match session.echo(&format!("in-flight-{n}")).await {
            Ok(reply) if reply.pid == first.pid => {}
            Ok(reply) => {
                cut.push(format!("connection {n}: answered by {}, not the old child", reply.pid))
            }
            Err(e) => cut.push(format!("connection {n}: {e:#}")),
        }
    }
    let second = c
        .next_ready(&mut follower, RESTART_WITHIN, "the old child's connections were answered")
        .await?;
    let answered = load.wait_for_pid(second.pid, secs(10)).await;
    check_ok!(c, answered, "the new child never answered the load");
    let timeline = load.stop().await?;

    check_in!(c, cut.is_empty(), "in-flight connections were cut by the restart: {cut:?}");
    check_in!(
        c,
        timeline.failures().is_empty(),
        "requests failed during the restart: {}",
        timeline.summary()
    );
    Ok(())
}

// --- What scinit saves: `docker restart` of a child that binds its own port ----------------

/// `docker restart` round trips per run: each costs about a second.
const DOCKER_RESTARTS: usize = 3;

/// The same load as above, restarted the way a container without socket inheritance has to be:
/// `docker restart`, with the child binding its port itself. While the container is down the
/// port is closed and requests are refused; on the bridge docker-proxy is restarted too, and the
/// first connection through the new proxy waits one SYN retransmit (about 1 s: its first SYN
/// is dropped while the proxy's rules are replaced, and TCP's initial retransmission timeout is
/// 1 s). The restart table shows these figures beside scinit's SIGHUP restarts.
/// The host port is fixed so the clients' address survives the restart. Any init can be asked
/// this.
async fn docker_restart_case(run: Run, network: Network) -> Result<()> {
    let host_port = probe::free_port()?;
    let scenario = ContainerSpec::new(&run).grace(secs(2)).network(network);
    let scenario = match network {
        Network::Host => {
            scenario.child(["testkit", "echo", "--listen", &format!("127.0.0.1:{host_port}")])
        }
        _ => scenario.publish_at(ECHO_PORT, host_port).child([
            "testkit",
            "echo",
            "--listen",
            "0.0.0.0:8080",
        ]),
    };
    let c = scenario.start().await?;
    let load = bounded_load(published(host_port)?).start();
    load.wait_for_success_since(Instant::now(), secs(10)).await?;

    let started = Instant::now();
    for n in 1..=DOCKER_RESTARTS {
        c.restart(secs(5)).await?;
        let back = load.wait_for_success_since(Instant::now(), secs(15)).await;
        check_ok!(c, back, "no reply after docker restart #{n}");
    }
    let elapsed = started.elapsed();
    let timeline = load.stop().await?;
    record_restarts(&run, restart::kind::DOCKER_RESTART, DOCKER_RESTARTS, &timeline, elapsed);

    let readies = c.report().await?.readies()?.len();
    check_in!(
        c,
        readies == DOCKER_RESTARTS + 1,
        "{readies} handshakes for {DOCKER_RESTARTS} docker restarts"
    );
    let gap = timeline.longest_gap();
    check_in!(
        c,
        !timeline.failures().is_empty() || gap >= secs(1),
        "docker restart showed no downtime at all, so the comparison shows nothing: {}",
        timeline.summary()
    );
    Ok(())
}

scenario_table! {
    docker_restart_case;
    docker_restart_of_a_self_binding_child_loses_requests_through_a_published_port =>
        Network::Bridge,
    docker_restart_of_a_self_binding_child_loses_requests_on_the_host_network => Network::Host,
}
