//! Restarts that start the new child first (README "Restarts", `--restart-order start-first`):
//! the new child starts on the same sockets while the old one keeps serving, and the old one is
//! stopped only once the new one is ready, so a server that takes a second to stop costs no
//! gap (einhorn, Go's tableflip and systemd socket activation do the same). Ready means
//! `READY=1` on `NOTIFY_SOCKET` from the new child or a process below it (`--notify`, systemd's
//! `sd_notify` protocol, README "NOTIFY_SOCKET contract"), or a delay after its start.
//!
//! The child is the echo server, whose own small script (below) sends `READY=1` with
//! `testkit notify` once the test creates [`GO`]: the test decides when the new child is ready,
//! and nothing waits for a fixed time. The old child's `signal name=SIGTERM` line is the moment
//! it was told to stop. scinit-only: `n/a` for inits without start-first restarts.

use std::time::{Duration, Instant};

use anyhow::Result;

use crate::infrastructure::probe::published;
use crate::infrastructure::{scenario, Container, ContainerSpec, Follower, ReadySignal, Run};
use crate::performance::load::bounded_load;
use crate::utils::child_report::{Fact, Ready};
use crate::utils::wait::{self, millis, secs, Polled};

/// The file whose creation makes every child's notifier send `READY=1`.
const GO: &str = "/tmp/go";
/// The echo server with a notifier of its own: a process in its tree that sends `READY=1` once
/// [`GO`] exists (the loop is the child's own wait, in the container).
const NOTIFYING_ECHO: &str = "(while [ ! -e /tmp/go ]; do usleep 20000; done; \
                              exec testkit notify READY=1) & exec testkit echo";
/// How long a new child may take to print its handshake (generous: 2 shared cores).
const RESTART_WITHIN: Duration = Duration::from_secs(10);
/// How long the test watches for something that must not happen (the old child stopped early).
const QUIET: Duration = Duration::from_secs(1);

fn notifying_echo(run: &Run, ready: ReadySignal) -> ContainerSpec {
    ContainerSpec::new(run).with_ports([8080]).grace(secs(5)).start_first(ready, None).child([
        "sh",
        "-c",
        NOTIFYING_ECHO,
    ])
}

/// Whether `fact` is the SIGTERM line of process `pid`.
fn sigterm_of(pid: i32) -> impl Fn(&Fact) -> bool {
    move |f| f.get("name") == Some("SIGTERM") && f.num::<i32>("pid").ok() == Some(pid)
}

/// Starts `spec`, waits for its first child, and restarts it with SIGHUP: returns the
/// container, its follower, and the old and new children.
async fn restarted(spec: ContainerSpec) -> Result<(Container, Follower, Ready, Ready)> {
    let c = spec.start().await?;
    let mut follower = c.follow();
    let old = c.next_ready(&mut follower, RESTART_WITHIN, "start").await?;
    c.kill("SIGHUP").await?;
    let new = c.next_ready(&mut follower, RESTART_WITHIN, "SIGHUP").await?;
    Ok((c, follower, old, new))
}

/// `READY=1` from the new child's tree, and only that, ends the old child: before it, and after
/// a `READY=1` from a process outside the new child's tree (a `docker exec`), the old child
/// keeps serving.
async fn ready_ends_the_old_child(run: Run, ready: ReadySignal) -> Result<()> {
    let (c, mut follower, old, new) = restarted(notifying_echo(&run, ready)).await?;
    let load = bounded_load(published(c.host_port(8080).await?)?).start();
    let early = c.fact_within("signal", 1, QUIET, sigterm_of(old.pid)).await?;
    check_in!(
        c,
        early.is_none(),
        "the old child {} was stopped before the new one was ready",
        old.pid
    );
    // A stranger's READY=1: a process entered with docker exec, with the child's own address.
    let stranger = format!(
        "NOTIFY_SOCKET=\"$(tr '\\0' '\\n' < /proc/{}/environ | sed -n 's/^NOTIFY_SOCKET=//p')\" \
         testkit notify READY=1",
        new.pid
    );
    c.sh(&stranger).await?;
    let fooled = c.fact_within("signal", 1, QUIET, sigterm_of(old.pid)).await?;
    check_in!(
        c,
        fooled.is_none(),
        "a READY=1 from outside the new child's tree stopped the old child"
    );
    let served = load.wait_for_pid(old.pid, secs(5)).await;
    check_ok!(c, served, "the old child {} stopped serving before the new one was ready", old.pid);

    c.sh(&format!(": > {GO}")).await?;
    let stopped = follower.next_fact("signal", RESTART_WITHIN, sigterm_of(old.pid)).await;
    check_ok!(
        c,
        stopped,
        "the old child {} was not stopped once the new one said READY=1",
        old.pid
    );
    let answered = load.wait_for_pid(new.pid, secs(10)).await;
    check_ok!(c, answered, "the new child {} never answered", new.pid);
    let timeline = load.stop().await?;
    check_in!(c, timeline.failures().is_empty(), "requests failed: {}", timeline.summary());
    let readies = c.report().await?.readies()?.len();
    check_in!(c, readies == 2, "{readies} children started for one restart, expected 2");
    check_in!(c, c.state().await?.running, "the container stopped after the restart");
    Ok(())
}

scenario_table! {
    ready_ends_the_old_child needs(Ports, Restart, StartFirst);
    /// The default address: an abstract socket (`NOTIFY_SOCKET=@...`).
    start_first_stops_the_old_child_once_the_new_childs_tree_sends_ready_on_an_abstract_socket =>
        ReadySignal::Notify,
    /// `--notify-socket PATH`: the same over a socket file, as `sd_notify` libraries also speak.
    start_first_stops_the_old_child_once_the_new_childs_tree_sends_ready_on_a_socket_path =>
        ReadySignal::NotifyAt("/tmp/notify.sock".into()),
}

/// Without `--notify`, a new child counts as ready `--ready-delay-ms` after it started: the old
/// child's SIGTERM comes no earlier (seen from the host, where log latency only delays both
/// lines alike), and the restart fails no request.
#[scenario(needs(Ports, Restart, StartFirst))]
async fn start_first_without_notify_stops_the_old_child_after_the_ready_delay(
    run: Run,
) -> Result<()> {
    let delay = millis(1500);
    let spec = ContainerSpec::new(&run)
        .with_ports([8080])
        .start_first(ReadySignal::Delay(delay), None)
        .child(["testkit", "echo"]);
    let c = spec.start().await?;
    let mut follower = c.follow();
    let old = c.next_ready(&mut follower, RESTART_WITHIN, "start").await?;
    let load = bounded_load(published(c.host_port(8080).await?)?).start();
    c.kill("SIGHUP").await?;
    let new = c.next_ready(&mut follower, RESTART_WITHIN, "SIGHUP").await?;
    let started = Instant::now();
    let stopped = follower.next_fact("signal", delay + RESTART_WITHIN, sigterm_of(old.pid)).await;
    let waited = started.elapsed();
    check_ok!(c, stopped, "the old child {} was never stopped after the ready delay", old.pid);
    run.record("ready_delay_observed_ms", waited.as_secs_f64() * 1000.0, "ms");
    check_in!(
        c,
        waited >= delay.mul_f64(0.8),
        "the old child was stopped {waited:?} after the new child {} started, before the \
         {delay:?} ready delay",
        new.pid
    );
    let answered = load.wait_for_pid(new.pid, secs(10)).await;
    check_ok!(c, answered, "the new child {} never answered", new.pid);
    let timeline = load.stop().await?;
    check_in!(c, timeline.failures().is_empty(), "requests failed: {}", timeline.summary());
    Ok(())
}

/// A new child that crashes before it is ready abandons the restart: the old child keeps
/// serving, untouched, one `scinit:` line says why, and the container keeps running.
#[scenario(needs(Restart, StartFirst))]
async fn a_start_first_restart_is_abandoned_when_the_new_child_exits_before_it_is_ready(
    run: Run,
) -> Result<()> {
    let spec = ContainerSpec::new(&run)
        .start_first(ReadySignal::Notify, None)
        .child(["/scripts/failure_crash_on_restart.sh"]);
    let c = spec.start().await?;
    let old = c.first_ready().await?;
    c.kill("SIGHUP").await?;
    let crashed = c.fact_within("crash", 1, RESTART_WITHIN, |_| true).await?;
    c.require(crashed, "the new child never started").await?;
    let why = abandonment_line(&c).await?;
    let old_seen = c.report().await?.signal_names(Some(old.pid))?;
    check_in!(c, old_seen.is_empty(), "the old child {} saw {old_seen:?}: it was stopped", old.pid);
    check_in!(
        c,
        c.state().await?.running,
        "the container stopped when the new child crashed ({why})"
    );
    c.kill("SIGUSR1").await?;
    let usr1 = c.fact_within("signal", 1, secs(5), |f| f.get("name") == Some("SIGUSR1")).await?;
    let usr1 =
        c.require(usr1, "SIGUSR1 never reached the old child after the abandoned restart").await?;
    check_in!(
        c,
        usr1.num::<i32>("pid")? == old.pid,
        "SIGUSR1 reached {usr1}, not the old child {}",
        old.pid
    );
    Ok(())
}

/// A new child that is not ready within `--ready-timeout-secs` abandons the restart: it is
/// stopped, and the old child keeps serving without a failed request.
#[scenario(needs(Ports, Restart, StartFirst))]
async fn a_start_first_restart_is_abandoned_when_the_new_child_is_not_ready_in_time(
    run: Run,
) -> Result<()> {
    let timeout = secs(2);
    let spec = ContainerSpec::new(&run)
        .with_ports([8080])
        .start_first(ReadySignal::Notify, Some(timeout))
        .child(["testkit", "echo"]);
    let (c, mut follower, old, new) = restarted(spec).await?;
    let load = bounded_load(published(c.host_port(8080).await?)?).start();
    let stopped = follower.next_fact("signal", timeout + RESTART_WITHIN, sigterm_of(new.pid)).await;
    check_ok!(c, stopped, "the new child {} that never said READY=1 was not stopped", new.pid);
    abandonment_line(&c).await?;
    let served = load.wait_for_success_since(Instant::now(), secs(5)).await;
    check_ok!(c, served, "nothing answered after the abandoned restart");
    let timeline = load.stop().await?;
    let old_seen = c.report().await?.signal_names(Some(old.pid))?;
    check_in!(c, old_seen.is_empty(), "the old child {} saw {old_seen:?}: it was stopped", old.pid);
    check_in!(c, timeline.failures().is_empty(), "requests failed: {}", timeline.summary());
    check_in!(c, c.state().await?.running, "the container stopped after the abandoned restart");
    Ok(())
}

/// The one `scinit:` line that says a restart was abandoned.
async fn abandonment_line(c: &Container) -> Result<String> {
    let logged = wait::until("scinit's line about the abandoned restart", secs(5), || async {
        let stderr = c.logs().await?.stderr;
        let lines: Vec<&String> = stderr.iter().filter(|l| l.contains("abandon")).collect();
        Ok(match lines[..] {
            [line] => Polled::Ready(line.clone()),
            _ => Polled::NotYet(format!("{stderr:?}")),
        })
    })
    .await;
    Ok(check_ok!(c, logged, "no single line said the restart was abandoned"))
}

/// A stop signal while both children run stops both: each gets SIGTERM, and the container ends
/// within the shared grace period.
#[scenario(needs(Ports, Restart, StartFirst))]
async fn a_stop_signal_during_a_start_first_restart_stops_both_children(run: Run) -> Result<()> {
    let (c, _follower, old, new) = restarted(notifying_echo(&run, ReadySignal::Notify)).await?;
    c.kill("SIGTERM").await?;
    let exit = c.exit_within(secs(10), "SIGTERM during the restart").await?;
    let report = c.report().await?;
    for (which, pid) in [("old", old.pid), ("new", new.pid)] {
        let seen = report.signal_names(Some(pid))?;
        check_in!(
            c,
            seen == ["SIGTERM"],
            "the {which} child {pid} saw {seen:?}, expected [SIGTERM]"
        );
    }
    check_in!(
        c,
        exit.code == 0,
        "exit code {}, expected 0 (the old child's graceful exit)",
        exit.code
    );
    Ok(())
}

/// SIGHUPs while a start-first restart waits for its new child coalesce: once it is ready,
/// exactly one more restart follows, not one per signal.
#[scenario(needs(Ports, Restart, StartFirst))]
async fn restart_triggers_during_a_start_first_restart_coalesce_into_one(run: Run) -> Result<()> {
    let (c, mut follower, _old, _new) =
        restarted(notifying_echo(&run, ReadySignal::Notify)).await?;
    for _ in 0..3 {
        c.kill("SIGHUP").await?;
    }
    c.sh(&format!(": > {GO}")).await?;
    c.next_ready(&mut follower, RESTART_WITHIN, "the coalesced SIGHUPs").await?;
    let extra = follower.next_fact("ready", QUIET + secs(1), |_| true).await.ok();
    check_in!(
        c,
        extra.is_none(),
        "a fourth child started: {extra:?}; three SIGHUPs during a restart must give one more"
    );
    Ok(())
}
