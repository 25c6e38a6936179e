//! Signal handling: what `docker kill` and `docker stop` deliver must reach the child, exactly,
//! and the container must exit with the child's status.
//!
//! The child is `testkit signals`, which logs every signal it receives (dumb-init's
//! `print_signals` pattern); assertions compare its lines with what was sent. What it checks, and
//! the bugs of other inits each part reproduces:
//! * stop signals and `docker stop` end the container at once with the child's status (moby#32310,
//!   tini#69, dumb-init PR #60);
//! * every other standard signal is forwarded and the init survives, one test each, real-time
//!   ones included (dumb-init#70), job-control ones too (podman#18095), and a job-control signal
//!   really stops a child without handlers until SIGCONT;
//! * a fault signal sent from outside (`docker kill -s SEGV`) reaches neither the init nor the
//!   child, and a forwarded SIGUSR1 kills a child without a handler (138);
//! * forwarding reaches the child's whole process group, so a shell wrapper that does not `exec`
//!   does not swallow it (krallin/tini#15);
//! * a signal sent right after start is never lost (dumb-init's start-up race);
//! * a child that ignores SIGTERM is SIGKILLed after the grace period, not before;
//! * the restart signal restarts the child, and bursts or storms of signals leave the init
//!   responsive; PID 1's memory stays flat over 10,000 forwarded signals and 1,000 restarts.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures::StreamExt;

use crate::infrastructure::{scenario, Container, ContainerSpec, Pid1Moment, Pid1Wrapper, Run};
use crate::utils::child_report::{Fact, Ready};
use crate::utils::wait::{self, secs, Polled};

/// Docker's default stop timeout: `docker stop` SIGKILLs PID 1 when it has not exited by then.
const DOCKER_STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// A stop signal must end the container well inside Docker's stop timeout.
const WELL_INSIDE: Duration = Duration::from_secs(5);
/// How long a forwarded signal may take to show up in the child's log (it takes milliseconds).
const DELIVERY: Duration = Duration::from_secs(5);

fn named(name: &str) -> impl Fn(&Fact) -> bool + '_ {
    move |f| f.get("name") == Some(name)
}

/// `SIGRTMIN+3` for `RTMIN+3`, `SIGINT` for `SIGINT`: the name the child logs.
fn logged_name(signal: &str) -> String {
    format!("SIG{}", signal.trim_start_matches("SIG"))
}

/// How a stop signal reaches PID 1.
#[derive(Debug, Clone, Copy)]
enum Delivery {
    /// `docker kill -s SIG`.
    Kill(&'static str),
    /// `docker stop -t 10`: SIGTERM, then Docker's own SIGKILL after 10 s.
    Stop,
    /// `kill -SIG 1` from a `docker exec`: a sender inside the PID namespace, which the kernel
    /// lets through to PID 1 only for signals the init blocks or handles.
    FromInside(&'static str),
}

/// A stop signal, the child's reaction, and what the child and Docker must report.
struct StopCase {
    delivery: Delivery,
    child: &'static [&'static str],
    seen: &'static str,
    code: i64,
}

async fn stop_signal_case(run: Run, case: StopCase) -> Result<()> {
    let c = ContainerSpec::new(&run).child(case.child.iter().copied()).start().await?;
    let sent = Instant::now();
    match case.delivery {
        Delivery::Kill(signal) => c.kill(signal).await?,
        Delivery::Stop => {
            c.stop(DOCKER_STOP_TIMEOUT).await?;
        }
        Delivery::FromInside(signal) => {
            // PID 1's exit kills the namespace, the exec'd `kill` included, and can cut the exec
            // short: only a failure while the container still runs is the harness's.
            if let Err(e) = c.exec(&["/bin/kill", &format!("-{signal}"), "1"]).await {
                if c.state().await?.running {
                    return Err(e);
                }
            }
        }
    }
    let exit = c.exited_within(WELL_INSIDE.saturating_sub(sent.elapsed())).await?;
    let exit = c
        .require(exit, format_args!("still running {WELL_INSIDE:?} after {:?}", case.delivery))
        .await?;
    let elapsed = sent.elapsed();
    run.record("exit_after_stop_signal", elapsed.as_secs_f64() * 1000.0, "ms");
    let seen = c.report().await?.signal_names(None)?;
    check_in!(
        c,
        seen == [case.seen],
        "the child saw {seen:?}, expected exactly [{}] from {:?}",
        case.seen,
        case.delivery
    );
    check_in!(
        c,
        exit.code == case.code,
        "exit code {}, expected {} (the child's status)",
        exit.code,
        case.code
    );
    check_in!(
        c,
        elapsed < WELL_INSIDE,
        "the container took {elapsed:?} to exit after {:?}: not well inside Docker's \
         {DOCKER_STOP_TIMEOUT:?} stop timeout",
        case.delivery
    );
    Ok(())
}

const DIES_OF_STOP_SIGNALS: &[&str] = &["testkit", "signals"];
const TRAPS_TERM_EXIT_0: &[&str] = &["testkit", "signals", "--on", "TERM=exit:0"];

scenario_table! {
    stop_signal_case;
    /// `docker kill -s TERM`: the child sees SIGTERM, dies of it, and the container reports
    /// 128+15. A PID 1 without a handler would drop it (moby#32310).
    sigterm_reaches_child_and_exit_code_is_143 => StopCase {
        delivery: Delivery::Kill("SIGTERM"),
        child: DIES_OF_STOP_SIGNALS,
        seen: "SIGTERM",
        code: 143,
    },
    /// `docker kill -s INT` (Ctrl-C): the child dies of it, 128+2.
    sigint_reaches_child_and_exit_code_is_130 => StopCase {
        delivery: Delivery::Kill("SIGINT"),
        child: DIES_OF_STOP_SIGNALS,
        seen: "SIGINT",
        code: 130,
    },
    /// `docker kill -s QUIT`: the child dies of it, 128+3.
    sigquit_reaches_child_and_exit_code_is_131 => StopCase {
        delivery: Delivery::Kill("SIGQUIT"),
        child: DIES_OF_STOP_SIGNALS,
        seen: "SIGQUIT",
        code: 131,
    },
    /// A child that traps SIGTERM and exits 0 gives 0, not 143: the init reports the child's
    /// status, not the signal it forwarded (krallin/tini#69, dumb-init#260).
    sigterm_trapped_by_the_child_gives_exit_code_0 => StopCase {
        delivery: Delivery::Kill("SIGTERM"),
        child: TRAPS_TERM_EXIT_0,
        seen: "SIGTERM",
        code: 0,
    },
    /// A child that traps SIGINT and exits 3 gives 3: the status passes through unchanged.
    sigint_trapped_by_the_child_gives_its_own_exit_code_3 => StopCase {
        delivery: Delivery::Kill("SIGINT"),
        child: &["testkit", "signals", "--on", "INT=exit:3"],
        seen: "SIGINT",
        code: 3,
    },
    /// `docker stop` (t=10 s) ends an untrapping child with 143 in well under 5 s; without an
    /// init it would wait the full 10 s and report 137 (moby#32310, #12228).
    docker_stop_delivers_sigterm_and_exits_143_well_inside_the_timeout => StopCase {
        delivery: Delivery::Stop,
        child: DIES_OF_STOP_SIGNALS,
        seen: "SIGTERM",
        code: 143,
    },
    /// `docker stop` of a child that shuts down cleanly on SIGTERM reports 0 (krallin/tini#69).
    docker_stop_of_a_child_that_traps_sigterm_exits_0_well_inside_the_timeout => StopCase {
        delivery: Delivery::Stop,
        child: TRAPS_TERM_EXIT_0,
        seen: "SIGTERM",
        code: 0,
    },
    /// `docker stop` waits for a child that takes a second to shut down cleanly: it exits 0, not
    /// 137 (an init must not cut the child's own shutdown short).
    docker_stop_waits_for_a_child_that_takes_a_second_to_shut_down => StopCase {
        delivery: Delivery::Stop,
        child: &["testkit", "signals", "--on", "TERM=exit:0", "--linger-ms", "1000"],
        seen: "SIGTERM",
        code: 0,
    },
    /// `kill -TERM 1` from inside the container (a sidecar script, an admin's `docker exec`):
    /// the kernel drops it unless PID 1 blocks or handles SIGTERM.
    sigterm_sent_from_inside_the_container_reaches_child_and_exit_code_is_143 => StopCase {
        delivery: Delivery::FromInside("TERM"),
        child: DIES_OF_STOP_SIGNALS,
        seen: "SIGTERM",
        code: 143,
    },
}

/// Sends `signal` and checks that the child logged exactly it, then that the init and the same
/// child are still there: a later, different signal reaches the same pid and the container runs.
async fn forwarded_signal_case(run: Run, signal: &'static str) -> Result<()> {
    let c = ContainerSpec::new(&run).child(["testkit", "signals"]).start().await?;
    let child = c.first_ready().await?;
    let name = logged_name(signal);
    let later_name = if name == "SIGUSR1" { "SIGUSR2" } else { "SIGUSR1" };
    c.kill(signal).await?;
    let seen = c.fact_within("signal", 1, DELIVERY, named(&name)).await?;
    if seen.is_none() {
        // Dropped, or turned into something the child cannot log (a SIGSTOP leaves it stopped):
        // its process state tells which.
        let state = c.processes().await?.into_iter().find(|p| p.pid == child.pid).map(|p| p.state);
        let what = format!(
            "the child (pid {}, state {state:?}) never logged {name} within {DELIVERY:?}",
            child.pid
        );
        return Err(c.deviation(what).await);
    }
    c.kill(later_name).await?;
    let later = c.fact_within("signal", 1, DELIVERY, named(later_name)).await?;
    let later = c
        .require(later, format_args!("after {name}, a later {later_name} never reached the child"))
        .await?;
    check_in!(
        c,
        later.num::<i32>("pid")? == child.pid,
        "after {name} the {later_name} reached pid {:?}, not the child {}",
        later.get("pid"),
        child.pid
    );
    let seen = c.report().await?.signal_names(Some(child.pid))?;
    check_in!(
        c,
        seen == [name.as_str(), later_name],
        "the child saw {seen:?}, expected exactly [{name}, {later_name}]"
    );
    check_in!(c, c.state().await?.running, "the container is no longer running after {name}");
    Ok(())
}

scenario_table! {
    forwarded_signal_case;
    /// SIGUSR1 is forwarded, and neither the child nor the init exits because of it.
    sigusr1_is_forwarded_and_the_init_survives => "SIGUSR1",
    /// SIGUSR2 is forwarded and changes nothing else.
    sigusr2_is_forwarded_and_the_init_survives => "SIGUSR2",
    /// SIGWINCH (terminal resize; default action: ignore) is forwarded.
    sigwinch_is_forwarded_and_the_init_survives => "SIGWINCH",
    /// SIGCONT is forwarded; it is no stop signal for the init.
    sigcont_is_forwarded_and_the_init_survives => "SIGCONT",
    /// SIGALRM is forwarded: the init's own timers must not use it.
    sigalrm_is_forwarded_and_the_init_survives => "SIGALRM",
    /// SIGPWR is forwarded (the contract names it; some daemons shut down on it).
    sigpwr_is_forwarded_and_the_init_survives => "SIGPWR",
    /// A real-time signal is forwarded and logged by its name (dumb-init#70 did not forward them).
    sigrtmin_plus_3_is_forwarded_and_the_init_survives => "RTMIN+3",
    /// SIGPIPE is forwarded: the init's own broken pipes are not the child's, but one sent is.
    sigpipe_is_forwarded_and_the_init_survives => "SIGPIPE",
    /// SIGSTKFLT (unused by Linux itself, free for programs) is forwarded.
    sigstkflt_is_forwarded_and_the_init_survives => "SIGSTKFLT",
    /// SIGURG (default action: ignore) is forwarded.
    sigurg_is_forwarded_and_the_init_survives => "SIGURG",
    /// SIGXCPU (the CPU-time limit's warning) is forwarded.
    sigxcpu_is_forwarded_and_the_init_survives => "SIGXCPU",
    /// SIGXFSZ (the file-size limit's) is forwarded.
    sigxfsz_is_forwarded_and_the_init_survives => "SIGXFSZ",
    /// SIGVTALRM is forwarded: the init's own timers must not use it either.
    sigvtalrm_is_forwarded_and_the_init_survives => "SIGVTALRM",
    /// SIGPROF (profilers' timer) is forwarded.
    sigprof_is_forwarded_and_the_init_survives => "SIGPROF",
    /// SIGIO (asynchronous I/O readiness) is forwarded.
    sigio_is_forwarded_and_the_init_survives => "SIGIO",
}

scenario_table! {
    forwarded_signal_case;
    /// scinit forwards job-control signals to the child's group like any other. catatonit drops
    /// them (podman#18095: the app never sees SIGTSTP); dumb-init turns them into SIGSTOP.
    sigtstp_is_forwarded_to_the_child_and_the_init_survives => "SIGTSTP",
    /// As SIGTSTP; tini ignores SIGTTIN itself and never forwards it.
    sigttin_is_forwarded_to_the_child_and_the_init_survives => "SIGTTIN",
    /// As SIGTSTP; tini ignores SIGTTOU itself and never forwards it.
    sigttou_is_forwarded_to_the_child_and_the_init_survives => "SIGTTOU",
}

/// The marker sent after a fault signal: a real-time signal, which both the init and the child
/// collect after every pending standard one, so by the time the child logs it a fault signal
/// sent before it has been forwarded, if it ever is.
const MARKER: &str = "RTMIN+3";

/// `docker kill -s <fault signal>`: a fault signal sent from outside, as a person or a tool
/// might (`docker kill -s SEGV` to get a core dump). scinit neither blocks nor forwards them
/// (README "Signals": the kernel raises them for a fault in scinit itself), so the kernel
/// discards one sent to it as PID 1 with its default action: the init survives, and the child
/// sees nothing of it, only the marker sent after it. dumb-init forwards them
/// (docs/known-bugs.md#dumb-init-forwards-fault-signals).
async fn fault_signal_from_outside_case(run: Run, signal: &'static str) -> Result<()> {
    let c = ContainerSpec::new(&run).child(["testkit", "signals"]).start().await?;
    let child = c.first_ready().await?;
    c.kill(signal).await?;
    // The container may be gone already: then the marker is refused, and its absence says so.
    let marked = c.kill(MARKER).await;
    let marker = c.fact_within("signal", 1, DELIVERY, named(&logged_name(MARKER))).await?;
    if marker.is_none() {
        let state = c.state().await?;
        let what = format!(
            "after {signal} from outside, the marker {MARKER} never reached the child ({}; the \
             container: status {} exit code {:?})",
            marked.err().map_or("sent".to_string(), |e| format!("not sent: {e:#}")),
            state.status,
            state.exit_code
        );
        return Err(c.deviation(what).await);
    }
    let seen = c.report().await?.signal_names(Some(child.pid))?;
    check_in!(
        c,
        seen == [logged_name(MARKER)],
        "the child saw {seen:?}, expected only the marker [{}]: {signal} sent from outside \
         reached it",
        logged_name(MARKER)
    );
    check_in!(c, c.state().await?.running, "the container stopped after {signal}");
    Ok(())
}

scenario_table! {
    fault_signal_from_outside_case;
    /// SIGSEGV from outside is dropped: neither the init nor the child dies of it.
    sigsegv_from_outside_reaches_neither_the_init_nor_the_child => "SIGSEGV",
    /// SIGBUS from outside is dropped likewise.
    sigbus_from_outside_reaches_neither_the_init_nor_the_child => "SIGBUS",
    /// SIGILL from outside is dropped likewise.
    sigill_from_outside_reaches_neither_the_init_nor_the_child => "SIGILL",
    /// SIGFPE from outside is dropped likewise.
    sigfpe_from_outside_reaches_neither_the_init_nor_the_child => "SIGFPE",
    /// SIGABRT from outside is dropped likewise.
    sigabrt_from_outside_reaches_neither_the_init_nor_the_child => "SIGABRT",
    /// SIGTRAP from outside is dropped likewise.
    sigtrap_from_outside_reaches_neither_the_init_nor_the_child => "SIGTRAP",
    /// SIGSYS from outside is dropped likewise.
    sigsys_from_outside_reaches_neither_the_init_nor_the_child => "SIGSYS",
}

/// `docker kill -s USR1` to a child without a handler (`testkit inspect --stay` waits with every
/// disposition at its default): the forwarded SIGUSR1 kills it, and the container reports
/// 128+10 = 138, as Docker shows it (dumb-init reported 0 before PR #60,
/// docs/known-bugs.md#dumb-init-60).
#[scenario]
async fn a_forwarded_sigusr1_kills_a_child_without_a_handler_and_the_exit_code_is_138(
    run: Run,
) -> Result<()> {
    let c = ContainerSpec::new(&run).child(["testkit", "inspect", "--stay"]).start().await?;
    c.wait_for_line("the inspector's report", DELIVERY, |l| l.starts_with("inspect ")).await?;
    c.kill("SIGUSR1").await?;
    let exit = c.exit_within(WELL_INSIDE, "SIGUSR1").await?;
    check_in!(c, exit.code == 138, "exit code {}, expected 138 (128+SIGUSR1)", exit.code);
    Ok(())
}

/// One shell line that signals PID 1 eight times within microseconds, so that all of them are
/// pending in the init at once (`docker kill` round trips would space them by milliseconds).
/// Real-time signal 37 is `SIGRTMIN+3` with glibc (busybox `kill` knows no RTMIN names).
const BURST: &str =
    "kill -USR1 1 && kill -USR2 1 && kill -WINCH 1 && kill -ALRM 1 && kill -CONT 1 \
                     && kill -37 1 && kill -37 1 && kill -37 1";
const BURST_SEEN: [&str; 8] = [
    "SIGUSR1",
    "SIGUSR2",
    "SIGWINCH",
    "SIGALRM",
    "SIGCONT",
    "SIGRTMIN+3",
    "SIGRTMIN+3",
    "SIGRTMIN+3",
];

fn multiset<'a>(names: impl IntoIterator<Item = &'a str>) -> BTreeMap<&'a str, usize> {
    let mut counts = BTreeMap::new();
    for name in names {
        *counts.entry(name).or_default() += 1;
    }
    counts
}

/// Distinct signals sent back to back all reach the child. Their order is not compared: the
/// kernel hands pending signals out lowest number first. Real-time signals queue instead of
/// coalescing, so three SIGRTMIN+3 must arrive three times: an init that keeps a "pending"
/// bit per signal would merge them.
#[scenario]
async fn a_burst_of_distinct_signals_all_arrive_and_realtime_ones_are_not_merged(
    run: Run,
) -> Result<()> {
    let c = ContainerSpec::new(&run).child(["testkit", "signals"]).start().await?;
    let child = c.first_ready().await?;
    c.sh(BURST).await.context("the burst inside the container failed")?;
    let last = c.fact_within("signal", BURST_SEEN.len(), DELIVERY, |_| true).await?;
    let seen = c.report().await?.signal_names(Some(child.pid))?;
    check_in!(
        c,
        last.is_some(),
        "only {} of {} signals arrived within {DELIVERY:?}: {seen:?}",
        seen.len(),
        BURST_SEEN.len()
    );
    check_in!(
        c,
        multiset(seen.iter().map(String::as_str)) == multiset(BURST_SEEN),
        "the child saw {seen:?}, expected each of {BURST_SEEN:?} (in any order)"
    );
    check_in!(c, c.state().await?.running, "the container stopped after the burst");
    Ok(())
}

/// `/scripts/group_usr1.sh` is a shell wrapper that does not `exec`: the signal logger runs
/// as a background job in the shell's group. SIGUSR1 must reach it, not only the shell.
/// Catches an init that forwards to the child's pid only (krallin/tini#15: tini and Docker's
/// init do that without `-g`).
#[scenario]
async fn sigusr1_reaches_every_process_in_a_non_exec_shell_wrappers_group(run: Run) -> Result<()> {
    let c = ContainerSpec::new(&run).child(["/scripts/group_usr1.sh"]).start().await?;
    let logger = c.first_ready().await?;
    c.kill("SIGUSR1").await?;
    let shell = c.fact_within("shell-signal", 1, DELIVERY, named("SIGUSR1")).await?;
    c.require(shell, "the wrapper shell itself never logged SIGUSR1: nothing was forwarded")
        .await?;
    let reached = c.fact_within("signal", 1, DELIVERY, named("SIGUSR1")).await?;
    c.require(
        reached,
        format_args!(
            "the background logger (pid {}) in the shell's group never saw SIGUSR1: only the \
             shell got it",
            logger.pid
        ),
    )
    .await?;
    let seen = c.report().await?.signal_names(Some(logger.pid))?;
    check_in!(c, seen == ["SIGUSR1"], "the logger saw {seen:?}, expected exactly [SIGUSR1]");
    check_in!(c, c.state().await?.running, "the container stopped after SIGUSR1");
    Ok(())
}

/// Ctrl-C against `sh -c 'program; ...'` (krallin/tini#15): the shell waits for its program
/// and does nothing with SIGINT itself, so the container only stops if the program gets it
/// too. It then dies of SIGINT, the shell follows, and the container exits 130.
#[scenario]
async fn sigint_reaches_the_program_a_non_exec_shell_wrapper_waits_for(run: Run) -> Result<()> {
    let c =
        ContainerSpec::new(&run).child(["sh", "-c", "testkit signals; exit $?"]).start().await?;
    let program = c.first_ready().await?;
    c.kill("SIGINT").await?;
    let exit = c.exited_within(WELL_INSIDE).await?;
    let seen = c.report().await?.signal_names(Some(program.pid))?;
    check_in!(
        c,
        seen == ["SIGINT"],
        "the program below the shell saw {seen:?}, expected exactly [SIGINT]"
    );
    let exit = c.require(exit, format_args!("still running {WELL_INSIDE:?} after SIGINT")).await?;
    check_in!(
        c,
        exit.code == 130,
        "exit code {}, expected 130 (the shell dies of SIGINT after its program)",
        exit.code
    );
    Ok(())
}

/// The grace period the escalation scenarios ask for. A fraction, so that an init that
/// truncates it to whole seconds fails the lower bound.
const GRACE: Duration = Duration::from_millis(1500);
const IGNORES_TERM: &[&str] = &["testkit", "signals", "--on", "TERM=log"];

/// `docker kill -s TERM` to a child that ignores SIGTERM: the init SIGKILLs it (137) after
/// the grace period, and not before. Inits without a grace period (tini, dumb-init,
/// catatonit) forward SIGTERM once and wait for ever: only a later `docker stop` ends it.
#[scenario]
async fn a_child_ignoring_sigterm_is_sigkilled_after_the_grace_period(run: Run) -> Result<()> {
    let c =
        ContainerSpec::new(&run).child(IGNORES_TERM.iter().copied()).grace(GRACE).start().await?;
    let sent = Instant::now();
    c.kill("SIGTERM").await?;
    let exit = c.exited_within(GRACE + secs(3)).await?;
    let elapsed = sent.elapsed();
    let seen = c.report().await?.signal_names(None)?;
    check_in!(
        c,
        seen == ["SIGTERM"],
        "the child saw {seen:?}, expected exactly [SIGTERM] before the SIGKILL"
    );
    let exit = c
        .require(
            exit,
            format_args!(
                "the child ignoring SIGTERM still runs {:?} later: nothing escalated to SIGKILL",
                GRACE + secs(3)
            ),
        )
        .await?;
    run.record("sigkill_after_sigterm", elapsed.as_secs_f64() * 1000.0, "ms");
    check_in!(c, exit.code == 137, "exit code {}, expected 137 (128+SIGKILL)", exit.code);
    check_in!(
        c,
        elapsed >= GRACE,
        "the child was killed {elapsed:?} after SIGTERM, before the {GRACE:?} grace period"
    );
    Ok(())
}

/// `docker stop -t 4` in the escalation scenario: long enough to tell the init's SIGKILL (after
/// the 1 s grace) from Docker's.
const SHORT_STOP_TIMEOUT: Duration = Duration::from_secs(4);

/// `docker stop` of a child that ignores SIGTERM ends at the init's grace period (1 s), with
/// 137, not at Docker's stop timeout. Without a grace period of its own, the init sits
/// until Docker SIGKILLs it at the timeout: also 137, but 4 s later (the figure is recorded).
#[scenario]
async fn docker_stop_of_a_child_ignoring_sigterm_ends_after_the_grace_period_not_dockers_timeout(
    run: Run,
) -> Result<()> {
    let grace = secs(1);
    let c =
        ContainerSpec::new(&run).child(IGNORES_TERM.iter().copied()).grace(grace).start().await?;
    let exit = c.stop(SHORT_STOP_TIMEOUT).await?;
    run.record("docker_stop_of_term_ignoring_child", exit.elapsed.as_secs_f64() * 1000.0, "ms");
    let seen = c.report().await?.signal_names(None)?;
    check_in!(c, seen == ["SIGTERM"], "the child saw {seen:?}, expected exactly [SIGTERM]");
    check_in!(c, exit.code == 137, "exit code {}, expected 137 (128+SIGKILL)", exit.code);
    check_in!(
        c,
        exit.elapsed >= grace,
        "`docker stop` ended after {:?}, before the {grace:?} grace period",
        exit.elapsed
    );
    check_in!(
        c,
        exit.elapsed < SHORT_STOP_TIMEOUT - secs(1),
        "`docker stop -t {}` ended after {:?}: Docker's own SIGKILL at the timeout, not the \
         init's after {grace:?}",
        SHORT_STOP_TIMEOUT.as_secs(),
        exit.elapsed
    );
    Ok(())
}

/// Repetitions of the early-SIGTERM race, and how many containers run at once (2 cores).
const EARLY_RUNS: usize = 24;
const EARLY_PARALLEL: usize = 4;

/// What one repetition of the early-SIGTERM race showed.
struct EarlyRun {
    /// What went wrong, with the evidence; `None` when the child died of SIGTERM in time.
    failure: Option<String>,
    /// The child never printed its handshake: SIGTERM reached it during its start-up.
    before_handshake: bool,
    /// PID 1 was still runc's stub, or had not yet gone to sleep, when `docker start` returned.
    waited_for_pid1: bool,
}

/// One repetition: start without waiting for the child, and send SIGTERM at `moment` of the
/// init's start-up: at its first sleep (catches an init that blocks its signals late) or as soon
/// as it holds SIGTERM (catches one that discards what arrived before its loop). The windows
/// before either belong to runc and the scheduler, not to the init; see `signal_pid1_at`. It is
/// sent with the host's `kill(2)`, which is where `docker kill` ends: Docker's own path (API,
/// containerd, a `runc kill` process) takes about 10 ms, by which time the child has usually
/// finished starting.
async fn early_sigterm(run: &Run, n: usize, moment: Pid1Moment) -> Result<EarlyRun> {
    let c = ContainerSpec::new(run)
        .child(["testkit", "signals"])
        .pid1(Pid1Wrapper::Held)
        .start()
        .await?;
    let waited_for_pid1 = c.signal_pid1_at(moment, "SIGTERM", secs(5)).await?;
    let exit = c.exited_within(WELL_INSIDE).await?;
    let before_handshake = c.report().await?.readies()?.is_empty();
    let failure = match exit {
        Some(exit) if exit.code == 143 => None,
        Some(exit) => Some(format!(
            "run {n} ({moment:?}): exit code {}, expected 143\n{}",
            exit.code,
            c.evidence().await
        )),
        None => Some(format!(
            "run {n} ({moment:?}): SIGTERM lost, still running {WELL_INSIDE:?} later\n{}",
            c.evidence().await
        )),
    };
    c.remove().await?;
    Ok(EarlyRun { failure, before_handshake, waited_for_pid1 })
}

/// SIGTERM sent as soon as PID 1 runs the init and first waits (milliseconds after
/// `docker start`, while the child is still starting up) is never lost: over 24 runs each
/// container exits 143 within 5 s. An init that blocks its signals late drops it (the
/// kernel discards a default-disposition signal to PID 1), and so does one that forwards to
/// a process group the child has not formed yet (dumb-init's start-up race,
/// docs/known-bugs.md#dumb-init-startup-race). Runs not yet started when one goes wrong are
/// skipped: a broken init fails fast instead of costing 5 s per run.
#[scenario]
async fn an_early_sigterm_right_after_start_is_never_lost(run: Run) -> Result<()> {
    let went_wrong = &AtomicBool::new(false);
    let run = &run;
    let outcomes: Vec<Result<EarlyRun>> = futures::stream::iter(0..EARLY_RUNS)
        .filter(|_| std::future::ready(!went_wrong.load(Ordering::Relaxed)))
        .map(|n| async move {
            // Alternate the two moments: each catches a different way of losing the signal.
            let moment = if n % 2 == 0 { Pid1Moment::FirstSleep } else { Pid1Moment::SignalHeld };
            let outcome = early_sigterm(run, n, moment).await;
            if !matches!(outcome, Ok(EarlyRun { failure: None, .. })) {
                went_wrong.store(true, Ordering::Relaxed);
            }
            outcome
        })
        .buffer_unordered(EARLY_PARALLEL)
        .collect()
        .await;
    let runs = outcomes.into_iter().collect::<Result<Vec<_>>>()?;
    let count = |f: fn(&EarlyRun) -> bool| runs.iter().filter(|r| f(r)).count() as f64;
    run.record("early_sigterm_runs", runs.len() as f64, "runs");
    run.record("early_sigterm_before_handshake", count(|r| r.before_handshake), "runs");
    run.record("early_sigterm_waited_for_pid1", count(|r| r.waited_for_pid1), "runs");
    let failures: Vec<&str> = runs.iter().filter_map(|r| r.failure.as_deref()).collect();
    run.record("early_sigterm_lost", failures.len() as f64, "runs");
    check!(
        failures.is_empty(),
        "{} of {} early SIGTERMs went wrong:\n{}",
        failures.len(),
        runs.len(),
        failures.join("\n")
    );
    Ok(())
}

/// The restart signal (SIGHUP, named explicitly: inits without a restart feature report
/// this scenario as not applicable) stops the old child with its stop signal and starts a
/// new one; the init survives and forwards to the new child.
#[scenario(needs(Restart))]
async fn sighup_restarts_the_child_with_a_new_pid_and_the_init_survives(run: Run) -> Result<()> {
    let c = ContainerSpec::new(&run)
        .child(["testkit", "signals"])
        .restart_signal("SIGHUP")
        .start()
        .await?;
    let old = c.first_ready().await?;
    c.kill("SIGHUP").await?;
    let new = c.fact_within("ready", 2, DELIVERY, |_| true).await?;
    let new = Ready::from_fact(
        &c.require(new, format_args!("no new child started within {DELIVERY:?} of SIGHUP")).await?,
    )?;
    check_in!(c, new.pid != old.pid, "the \"new\" child has the old pid {}", old.pid);
    check_in!(c, new.ppid == 1, "the new child's parent is {}, not the init (pid 1)", new.ppid);
    let old_seen = c.report().await?.signal_names(Some(old.pid))?;
    check_in!(
        c,
        old_seen == ["SIGTERM"],
        "the old child saw {old_seen:?}, expected exactly [SIGTERM]: the restart signal is the \
         init's own"
    );
    c.kill("SIGUSR1").await?;
    let later = c.fact_within("signal", 1, DELIVERY, named("SIGUSR1")).await?;
    let later = c.require(later, "after the restart, SIGUSR1 never reached the new child").await?;
    check_in!(
        c,
        later.num::<i32>("pid")? == new.pid,
        "SIGUSR1 reached pid {:?}, not the new child {}",
        later.get("pid"),
        new.pid
    );
    check_in!(c, c.state().await?.running, "the container stopped after the restart");
    Ok(())
}

/// With `--restart-signal none`, SIGHUP is an ordinary signal: forwarded to the child, which
/// dies of it (129), and nothing is restarted.
#[scenario(needs(Restart))]
async fn with_restart_signal_none_sighup_reaches_the_child(run: Run) -> Result<()> {
    let c = ContainerSpec::new(&run)
        .child(["testkit", "signals"])
        .restart_signal("none")
        .start()
        .await?;
    c.kill("SIGHUP").await?;
    let exit = c.exited_within(WELL_INSIDE).await?;
    let report = c.report().await?;
    let seen = report.signal_names(None)?;
    check_in!(c, seen == ["SIGHUP"], "the child saw {seen:?}, expected exactly [SIGHUP]");
    let readies = report.readies()?.len();
    check_in!(
        c,
        readies == 1,
        "{readies} children started; SIGHUP must not restart with --restart-signal none"
    );
    let exit = c.require(exit, format_args!("still running {WELL_INSIDE:?} after SIGHUP")).await?;
    check_in!(c, exit.code == 129, "exit code {}, expected 129 (128+SIGHUP)", exit.code);
    Ok(())
}

/// Signals in each half of the storm.
const STORM_SIZE: usize = 200;
/// 200 SIGUSR1 and 200 real-time signals (37 is `SIGRTMIN+3` with glibc), interleaved, to PID 1
/// from one shell inside the container, as fast as `kill` runs.
const STORM: &str =
    "i=0; while [ $i -lt 200 ]; do kill -USR1 1 && kill -37 1 || exit 1; i=$((i+1)); done";

/// A storm of 200 SIGUSR1 interleaved with 200 SIGRTMIN+3 leaves the init responsive: a later
/// SIGUSR2 still reaches the same child, and the `docker stop` that follows still ends it
/// with 143 at once. Standard signals coalesce, so only "at least one SIGUSR1" is asserted;
/// real-time signals queue, so all 200 must be forwarded: an init that drops signals under
/// load loses some of those.
#[scenario]
async fn a_signal_storm_leaves_the_init_responsive_and_loses_no_queued_signal(
    run: Run,
) -> Result<()> {
    let c = ContainerSpec::new(&run).child(["testkit", "signals"]).start().await?;
    let child = c.first_ready().await?;
    c.sh(STORM).await.context("the storm inside the container failed")?;
    let realtime = c.fact_within("signal", STORM_SIZE, DELIVERY, named("SIGRTMIN+3")).await?;
    let count = |seen: &[String], name: &str| seen.iter().filter(|n| *n == name).count();
    let seen = c.report().await?.signal_names(Some(child.pid))?;
    run.record("sigusr1_delivered_of_200", count(&seen, "SIGUSR1") as f64, "signals");
    check_in!(
        c,
        count(&seen, "SIGUSR1") >= 1,
        "none of the {STORM_SIZE} SIGUSR1 reached the child"
    );
    check_in!(
        c,
        realtime.is_some() && count(&seen, "SIGRTMIN+3") == STORM_SIZE,
        "{} of {STORM_SIZE} queued SIGRTMIN+3 reached the child within {DELIVERY:?}",
        count(&seen, "SIGRTMIN+3")
    );
    c.kill("SIGUSR2").await?;
    let later = c.fact_within("signal", 1, DELIVERY, named("SIGUSR2")).await?;
    let later = c.require(later, "after the storm, SIGUSR2 never reached the child").await?;
    check_in!(
        c,
        later.num::<i32>("pid")? == child.pid,
        "SIGUSR2 reached pid {:?}, not the child {}",
        later.get("pid"),
        child.pid
    );
    let exit = c.stop(DOCKER_STOP_TIMEOUT).await?;
    let last = c.report().await?.signal_names(Some(child.pid))?.last().cloned();
    check_in!(
        c,
        last.as_deref() == Some("SIGTERM"),
        "the child's last signal was {last:?}, expected SIGTERM from `docker stop`"
    );
    check_in!(c, exit.code == 143, "exit code {} after the storm, expected 143", exit.code);
    check_in!(
        c,
        exit.elapsed < WELL_INSIDE,
        "`docker stop` after the storm took {:?}",
        exit.elapsed
    );
    Ok(())
}

/// The acknowledgement FIFO of the memory scenarios' signal logger (`testkit signals --ack`).
const ACK: &str = "/tmp/ack";
/// How much PID 1's resident memory may grow over a flood of signals or restarts: 16 pages.
const RSS_SLACK_KIB: u64 = 64;

/// PID 1's resident memory (`VmRSS`), read inside the container.
async fn pid1_rss_kib(c: &Container) -> Result<u64> {
    c.pid1_memory().await?.number("VmRSS")
}

/// Sends `count` SIGUSR1 to PID 1 from inside the container, each once the child has logged the
/// previous one (`testkit signal-pid1 --count` against the logger's `--ack`), so none coalesce.
/// A signal the init never forwards leaves its sender without an acknowledgement: a deviation.
async fn forward_acknowledged(c: &Container, count: u32) -> Result<()> {
    let n = count.to_string();
    let argv = ["testkit", "signal-pid1", "--signal", "USR1", "--count", &n, "--ack", ACK];
    let out = c.exec(&argv).await?;
    check_in!(
        c,
        out.code == 0,
        "{} of {count} SIGUSR1 were acknowledged by the child: {}",
        out.stdout.iter().filter(|l| l.starts_with("sent ")).count(),
        out.stderr.join(" | ")
    );
    Ok(())
}

/// Signals in the memory scenario's flood.
const FLOOD: u32 = 10_000;

/// PID 1's resident memory after 10,000 forwarded SIGUSR1 is within 64 KiB of what it was after
/// the first one: nothing is kept per signal. Each one is sent from inside the container once
/// the child has logged the previous one, and the child's log must hold all 10,000.
#[scenario]
async fn pid1_memory_stays_flat_over_10000_forwarded_signals(run: Run) -> Result<()> {
    let c = ContainerSpec::new(&run).child(["testkit", "signals", "--ack", ACK]).start().await?;
    let child = c.first_ready().await?.pid;
    forward_acknowledged(&c, 1).await?;
    let first = pid1_rss_kib(&c).await?;
    forward_acknowledged(&c, FLOOD - 1).await?;
    let after = pid1_rss_kib(&c).await?;
    run.record("pid1_rss_after_the_first_signal", first as f64, "KiB");
    run.record("pid1_rss_after_10000_signals", after as f64, "KiB");
    let seen = c.report().await?.signal_names(Some(child))?;
    let usr1 = seen.iter().filter(|n| *n == "SIGUSR1").count();
    check_in!(
        c,
        usr1 == FLOOD as usize && seen.len() == usr1,
        "the child logged {usr1} SIGUSR1 of {FLOOD} sent, and {} other signals",
        seen.len() - usr1
    );
    check_in!(
        c,
        after <= first + RSS_SLACK_KIB,
        "PID 1's resident memory grew from {first} KiB after the first signal to {after} KiB \
         after {FLOOD}: more than {RSS_SLACK_KIB} KiB"
    );
    Ok(())
}

/// The file that tells `testkit chain` how many more restarts to ask for.
const CHAIN: &str = "/tmp/chain";
/// Restarts in the memory scenario, after the first.
const RESTARTS: u32 = 1000;

/// PID 1's resident memory after 1,000 more restarts is within 64 KiB of what it was after the
/// first: nothing is kept per child. Each child (`testkit chain`) asks for the next restart
/// itself with SIGHUP to its parent until the count in [`CHAIN`] runs out, so the restarts cost
/// no round trip through the Docker API; the last one becomes the signal logger.
#[scenario(needs(Restart))]
async fn pid1_memory_stays_flat_over_1000_restarts(run: Run) -> Result<()> {
    let c = ContainerSpec::new(&run)
        .restart_signal("SIGHUP")
        .child(["testkit", "chain", CHAIN, "--", "testkit", "signals"])
        .start()
        .await?;
    c.kill("SIGHUP").await?;
    let restarted = c.fact_within("chain", 2, DELIVERY, |_| true).await?;
    c.require(restarted, "SIGHUP did not restart the child").await?;
    let first = pid1_rss_kib(&c).await?;
    c.sh(&format!("echo {} > {CHAIN}", RESTARTS - 1)).await?;
    let started = Instant::now();
    c.kill("SIGHUP").await?;
    let within = secs(120);
    let last = c.fact_within("chain", RESTARTS as usize + 2, within, |_| true).await?;
    let last = c
        .require(
            last,
            format_args!(
                "{RESTARTS} restarts, each asked for by the child, did not happen within \
                 {within:?}"
            ),
        )
        .await?;
    run.record("time_for_1000_restarts", started.elapsed().as_secs_f64() * 1000.0, "ms");
    check_in!(
        c,
        last.get("remaining") == Some("0"),
        "child #{} started with `{last}`, expected remaining=0",
        RESTARTS + 2
    );
    let after = pid1_rss_kib(&c).await?;
    run.record("pid1_rss_after_the_first_restart", first as f64, "KiB");
    run.record("pid1_rss_after_1000_restarts", after as f64, "KiB");
    check_in!(
        c,
        after <= first + RSS_SLACK_KIB,
        "PID 1's resident memory grew from {first} KiB after the first restart to {after} KiB \
         after {RESTARTS} more: more than {RSS_SLACK_KIB} KiB"
    );
    Ok(())
}

/// A stop signal that arrives while a restart is stopping the old child turns the restart
/// into a shutdown: the old child (which takes 1.5 s to exit) gets the stop signal too, the
/// container exits with its status (0), and no new child is started. An init that lets the
/// restart run on starts a new child and keeps the container running.
#[scenario(needs(Restart))]
async fn a_stop_signal_during_a_restart_shuts_down_instead_of_starting_a_new_child(
    run: Run,
) -> Result<()> {
    let c = ContainerSpec::new(&run)
        .child(["testkit", "signals", "--on", "TERM=exit:0", "--linger-ms", "1500"])
        .grace(secs(5))
        .restart_signal("SIGHUP")
        .start()
        .await?;
    let old = c.first_ready().await?;
    c.kill("SIGHUP").await?;
    // The old child's SIGTERM line: the restart has begun and is waiting for it to exit.
    c.wait_for_fact("signal", 1, DELIVERY, named("SIGTERM")).await?;
    c.kill("SIGTERM").await?;
    let exit = c.exited_within(WELL_INSIDE).await?;
    let report = c.report().await?;
    let readies = report.readies()?;
    let new: Vec<i32> = readies.iter().map(|r| r.pid).filter(|p| *p != old.pid).collect();
    check_in!(
        c,
        new.is_empty(),
        "a new child {new:?} was started although SIGTERM arrived during the restart"
    );
    let old_seen = report.signal_names(Some(old.pid))?;
    check_in!(
        c,
        old_seen.first().map(String::as_str) == Some("SIGTERM"),
        "the old child saw {old_seen:?}, expected SIGTERM first"
    );
    let exit = c
        .require(exit, format_args!("still running {WELL_INSIDE:?} after SIGTERM during a restart"))
        .await?;
    check_in!(
        c,
        exit.code == 0,
        "exit code {}, expected 0 (the old child's own exit status)",
        exit.code
    );
    Ok(())
}

/// The `--restart-delay-ms` of the restart-delay scenario.
const RESTART_DELAY: Duration = Duration::from_millis(1000);

/// `--restart-delay-ms 1000` pauses between the old child's exit and the new child's start.
/// The old child dies of the restart's SIGTERM at once, so the new child's handshake cannot
/// show up on the host less than ~0.9 s after SIGHUP was sent (log latency only makes it
/// later); an init that ignores the delay starts it within milliseconds.
#[scenario(needs(Restart, ScinitCli))]
async fn the_restart_delay_separates_the_old_childs_exit_from_the_new_childs_start(
    run: Run,
) -> Result<()> {
    let c = ContainerSpec::new(&run)
        .child(["testkit", "signals"])
        .restart_signal("SIGHUP")
        .init_args(["--restart-delay-ms".to_string(), RESTART_DELAY.as_millis().to_string()])
        .start()
        .await?;
    let old = c.first_ready().await?;
    let sent = Instant::now();
    c.kill("SIGHUP").await?;
    let new = c.fact_within("ready", 2, RESTART_DELAY + DELIVERY, |_| true).await?;
    let waited = sent.elapsed();
    let new = Ready::from_fact(
        &c.require(
            new,
            format_args!("no new child within {:?} of SIGHUP", RESTART_DELAY + DELIVERY),
        )
        .await?,
    )?;
    run.record("restart_delay_observed_ms", waited.as_secs_f64() * 1000.0, "ms");
    let old_seen = c.report().await?.signal_names(Some(old.pid))?;
    check_in!(
        c,
        old_seen == ["SIGTERM"],
        "the old child saw {old_seen:?}, expected exactly [SIGTERM]"
    );
    check_in!(c, new.pid != old.pid, "the \"new\" child has the old pid {}", old.pid);
    check_in!(
        c,
        waited >= RESTART_DELAY.mul_f64(0.9),
        "the new child started {waited:?} after SIGHUP, before the {RESTART_DELAY:?} restart delay"
    );
    check_in!(c, c.state().await?.running, "the container stopped after the delayed restart");
    Ok(())
}

/// Prints the script's arguments as one fact (comma-separated), then becomes the signal logger.
const ARGS_SCRIPT: &str = "IFS=,; echo \"argv count=$# list=$*\"; exec testkit signals\n";

/// scinit's options stop at COMMAND (README "Command line"): in
/// `scinit --restart-signal SIGHUP sh /tmp/args.sh --restart-signal SIGUSR1
/// --graceful-timeout-secs 0 -- --version`, everything after `sh` is the child's, verbatim,
/// the `--` included, and SIGHUP still restarts the child. An init that keeps parsing after
/// COMMAND takes the child's flags as its own (SIGUSR1 becomes the restart signal) and the
/// `--` as its own separator.
#[scenario(needs(Restart, ScinitCli))]
async fn hyphenated_arguments_after_the_command_reach_the_child_verbatim(run: Run) -> Result<()> {
    let c = ContainerSpec::new(&run)
        .with_file("/tmp/args.sh", ARGS_SCRIPT)
        .restart_signal("SIGHUP")
        .init_args([
            "sh",
            "/tmp/args.sh",
            "--restart-signal",
            "SIGUSR1",
            "--graceful-timeout-secs",
            "0",
        ])
        .child(["--version"])
        .start()
        .await?;
    let argv = c.wait_for_fact("argv", 1, DELIVERY, |_| true).await?;
    let expected = "--restart-signal,SIGUSR1,--graceful-timeout-secs,0,--,--version";
    check_in!(
        c,
        argv.get("list") == Some(expected),
        "the child got `{argv}`, expected list={expected} (count=6)"
    );
    let old = c.first_ready().await?;
    c.kill("SIGHUP").await?;
    let new = c.fact_within("ready", 2, DELIVERY, |_| true).await?;
    let new = Ready::from_fact(
        &c.require(
            new,
            "SIGHUP did not restart the child: the child's --restart-signal was taken as scinit's",
        )
        .await?,
    )?;
    check_in!(c, new.pid != old.pid, "the \"new\" child has the old pid {}", old.pid);
    let old_seen = c.report().await?.signal_names(Some(old.pid))?;
    check_in!(
        c,
        old_seen == ["SIGTERM"],
        "the old child saw {old_seen:?}, expected exactly [SIGTERM] (a restart)"
    );
    Ok(())
}

/// `--stop-signal SIGINT` (systemd's `KillSignal=`, Docker's `STOPSIGNAL`): the SIGTERM of
/// `docker stop` reaches the child as SIGINT, its graceful stop, and it dies of it (130).
#[scenario(needs(StopSignal))]
async fn docker_stop_with_stop_signal_sigint_delivers_sigint_and_exit_code_is_130(
    run: Run,
) -> Result<()> {
    let spec = ContainerSpec::new(&run).stop_signal("SIGINT");
    let c = spec.child(DIES_OF_STOP_SIGNALS.iter().copied()).start().await?;
    let exit = c.stop(DOCKER_STOP_TIMEOUT).await?;
    let seen = c.report().await?.signal_names(None)?;
    check_in!(c, seen == ["SIGINT"], "the child saw {seen:?}, expected exactly [SIGINT]");
    check_in!(c, exit.code == 130, "exit code {}, expected 130 (128+SIGINT)", exit.code);
    check_in!(c, exit.elapsed < WELL_INSIDE, "`docker stop` took {:?}", exit.elapsed);
    Ok(())
}

/// A restart stops the old child with the stop signal too (`--stop-signal SIGINT`), not with
/// SIGTERM: lighttpd, for one, stops gracefully only on SIGINT.
#[scenario(needs(Restart, StopSignal))]
async fn a_restart_stops_the_old_child_with_the_stop_signal(run: Run) -> Result<()> {
    let spec = ContainerSpec::new(&run).stop_signal("SIGINT").restart_signal("SIGHUP");
    let c = spec.child(DIES_OF_STOP_SIGNALS.iter().copied()).start().await?;
    let old = c.first_ready().await?;
    c.kill("SIGHUP").await?;
    let new = c.fact_within("ready", 2, DELIVERY, |_| true).await?;
    c.require(new, format_args!("no new child within {DELIVERY:?} of SIGHUP")).await?;
    let old_seen = c.report().await?.signal_names(Some(old.pid))?;
    check_in!(
        c,
        old_seen == ["SIGINT"],
        "the old child saw {old_seen:?}, expected exactly [SIGINT]"
    );
    Ok(())
}

/// A child stopped by a forwarded SIGTSTP (Ctrl-Z) still shuts down gracefully on `docker
/// stop`: a stopped process cannot act on SIGTERM until it is continued, so the init sends
/// SIGCONT after the stop signal, as systemd does. An init that does not leaves SIGTERM pending
/// until Docker's SIGKILL at the stop timeout (137).
#[scenario]
async fn a_child_stopped_by_sigtstp_still_shuts_down_gracefully_on_docker_stop(
    run: Run,
) -> Result<()> {
    let child = ["testkit", "signals", "--on", "TERM=exit:0", "--on", "TSTP=stop"];
    let c = ContainerSpec::new(&run).child(child).start().await?;
    let child = c.first_ready().await?.pid;
    c.kill("SIGTSTP").await?;
    let stopped = until_state(&c, child, true, "stopped by SIGTSTP").await;
    check_ok!(c, stopped, "the child {child} never stopped on SIGTSTP");
    let exit = c.stop(SHORT_STOP_TIMEOUT).await?;
    check_in!(
        c,
        exit.code == 0,
        "exit code {} after {:?}, expected 0: the stopped child never ran its SIGTERM handler",
        exit.code,
        exit.elapsed
    );
    check_in!(
        c,
        exit.elapsed < SHORT_STOP_TIMEOUT - secs(1),
        "`docker stop` took {:?}",
        exit.elapsed
    );
    Ok(())
}

/// Waits until process `pid`'s state in the container's process table (`testkit ps`) is `T`
/// (stopped), or, for `stopped == false`, anything else; an error after [`DELIVERY`].
async fn until_state(c: &Container, pid: i32, stopped: bool, what: &str) -> Result<()> {
    wait::until(&format!("the child {what}"), DELIVERY, || async {
        let state = c.processes().await?.into_iter().find(|p| p.pid == pid).map(|p| p.state);
        Ok(match state.as_deref() {
            Some(s) if (s == "T") == stopped => Polled::Ready(()),
            other => Polled::NotYet(format!("state {other:?}")),
        })
    })
    .await
}

/// A job-control signal from outside really stops the child, as it does a program at a
/// terminal, and SIGCONT resumes it: both seen in the child's process state (`T`, then `S`),
/// not in a log line. The child is `testkit inspect --stay`, which waits with every disposition
/// at its default, as a program that leaves job control to the kernel does. Then `docker stop`
/// still ends it with 143. An init that drops the signal leaves the child running (catatonit,
/// docs/known-bugs.md#podman-18095, docs/known-bugs.md#catatonit-drops-job-control-signals); one
/// that sends SIGSTOP instead still stops it (docs/known-bugs.md#dumb-init-job-control-to-sigstop).
async fn job_control_stop_case(run: Run, signal: &'static str) -> Result<()> {
    let c = ContainerSpec::new(&run).child(["testkit", "inspect", "--stay"]).start().await?;
    c.wait_for_line("the inspector's report", DELIVERY, |l| l.starts_with("inspect ")).await?;
    let child = c.first_ready().await?.pid;
    c.kill(signal).await?;
    let stopped = until_state(&c, child, true, &format!("stopped by {signal}")).await;
    check_ok!(c, stopped, "the child {child} never stopped on {signal}");
    c.kill("SIGCONT").await?;
    let resumed = until_state(&c, child, false, "resumed by SIGCONT").await;
    check_ok!(c, resumed, "the child {child}, stopped by {signal}, never resumed on SIGCONT");
    let exit = c.stop(DOCKER_STOP_TIMEOUT).await?;
    check_in!(
        c,
        exit.code == 143 && exit.elapsed < WELL_INSIDE,
        "`docker stop` of the resumed child gave {} after {:?}, expected 143 at once",
        exit.code,
        exit.elapsed
    );
    Ok(())
}

scenario_table! {
    job_control_stop_case;
    /// SIGTSTP (Ctrl-Z) stops the child; SIGCONT resumes it.
    a_forwarded_sigtstp_stops_the_child_and_sigcont_resumes_it => "SIGTSTP",
    /// SIGTTIN stops the child; SIGCONT resumes it. tini ignores it
    /// (docs/known-bugs.md#tini-ignores-sigttin-sigttou).
    a_forwarded_sigttin_stops_the_child_and_sigcont_resumes_it => "SIGTTIN",
    /// SIGTTOU stops the child; SIGCONT resumes it. tini ignores it
    /// (docs/known-bugs.md#tini-ignores-sigttin-sigttou).
    a_forwarded_sigttou_stops_the_child_and_sigcont_resumes_it => "SIGTTOU",
}
