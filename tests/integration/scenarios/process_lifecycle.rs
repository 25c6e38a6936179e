//! Process lifecycle: exit codes (every one of 0-255), exec failures, a command named like a
//! flag, the child's process group and environment (its signal mask whatever the init's parent
//! blocked or ignored, the init's own working directory), reaping, the processes left at
//! shutdown, freezing and stopping, and an init that is not PID 1.
//!
//! The child is a `testkit` helper (`images/README.md`); evidence is what it printed (handshake,
//! signal lines, the inspector's JSON), the process table inside the container (`testkit ps`,
//! zombies included) and what Docker reports. The peer-init bug each case reproduces is in its
//! doc comment, with its link.

use std::time::Duration;

use anyhow::{bail, Result};

use crate::infrastructure::{scenario, Container, ContainerSpec, Pid1Wrapper, Run};
use crate::utils::child_report::{mask_is_empty, signals_in, Inspection, Proc};
use crate::utils::wait::{self, millis, secs, Polled};

/// The pid in the first `kind pid=N` line (`daemon`, `escapee`).
async fn made_pid(c: &Container, kind: &str) -> Result<i32> {
    c.wait_for_fact(kind, 1, secs(5), |_| true).await?.num("pid")
}

async fn zombies(c: &Container, counted: impl Fn(&Proc) -> bool) -> Result<Vec<Proc>> {
    Ok(c.processes().await?.into_iter().filter(|p| p.is_zombie() && counted(p)).collect())
}

/// The zombies still there once `within` has passed (none as soon as they are all reaped).
async fn zombies_left(
    c: &Container,
    within: Duration,
    counted: impl Fn(&Proc) -> bool + Copy,
) -> Result<Vec<Proc>> {
    let settled = wait::until("no zombie left", within, || async move {
        let left = zombies(c, counted).await?;
        Ok(if left.is_empty() {
            Polled::Ready(())
        } else {
            Polled::NotYet(format!("{} zombies", left.len()))
        })
    })
    .await;
    match settled {
        Ok(()) => Ok(Vec::new()),
        // A timeout: read the table once more so that a Docker failure stays a harness error.
        Err(_) => zombies(c, counted).await,
    }
}

// --- Exit codes -------------------------------------------------------------------------------

/// A child that ends on its own, and the code Docker must report.
struct ExitCase {
    child: &'static [&'static str],
    code: i64,
}

async fn exit_code_case(run: Run, case: ExitCase) -> Result<()> {
    let c = ContainerSpec::new(&run)
        .child(case.child.iter().copied())
        .without_ready_wait()
        .start()
        .await?;
    let exit =
        c.exit_within(secs(10), format_args!("the child {:?} ended by itself", case.child)).await?;
    let started = c.report().await?.of_kind("ready").any(|f| f.get("cmd") == Some("exit-with"));
    check_in!(
        c,
        started,
        "the child never printed its handshake: the init did not run {:?}",
        case.child
    );
    check_in!(
        c,
        exit.code == case.code,
        "exit code {}, expected {} for {:?}",
        exit.code,
        case.code,
        case.child
    );
    Ok(())
}

scenario_table! {
    exit_code_case;
    /// Death by a signal is 128+N (dumb-init reported 0 before PR #60).
    death_by_sigterm_gives_exit_code_143 => ExitCase {
        child: &["testkit", "exit-with", "signal:TERM"],
        code: 143,
    },
    death_by_sigkill_gives_exit_code_137 => ExitCase {
        child: &["testkit", "exit-with", "signal:KILL"],
        code: 137,
    },
    death_by_sigsegv_gives_exit_code_139 => ExitCase {
        child: &["testkit", "exit-with", "signal:SEGV"],
        code: 139,
    },
    death_by_sigusr1_gives_exit_code_138 => ExitCase {
        child: &["testkit", "exit-with", "signal:USR1"],
        code: 138,
    },
}

/// The child of the every-exit-code scenario's Docker runs: each start exits with the next code
/// of its container's list (`$CODES`, then what is left of it in `/tmp/codes`, which the
/// container keeps across `docker start`).
const EXIT_SERIES: &str = "set -- $(cat /tmp/codes 2>/dev/null || echo \"$CODES\")\n\
                           code=$1; shift; echo \"$@\" > /tmp/codes\n\
                           exec testkit exit-with \"$code\"\n";
/// Containers side by side for the every-exit-code scenario's Docker runs.
const EXIT_SERIES_CONTAINERS: usize = 16;
/// The codes every init's container exits with through Docker, whatever else runs: the edges,
/// the shell conventions (126, 127: catatonit once hung on 127, docs/known-bugs.md#catatonit-5)
/// and codes above 128 that are the child's own, not signal deaths.
const EXIT_SAMPLE: [u16; 8] = [0, 1, 2, 126, 127, 128, 200, 255];

/// Runs one container through `codes` (`docker start` for each after the first); returns those
/// Docker did not report, with what it reported.
async fn exit_code_series(run: &Run, codes: Vec<u16>) -> Result<Vec<(u16, String)>> {
    let list = codes.iter().map(u16::to_string).collect::<Vec<_>>().join(" ");
    let c = ContainerSpec::new(run)
        .with_file("/tmp/exit_series.sh", EXIT_SERIES)
        .env("CODES", &list)
        .child(["sh", "/tmp/exit_series.sh"])
        .without_ready_wait()
        .start()
        .await?;
    let mut wrong = Vec::new();
    for (n, &code) in codes.iter().enumerate() {
        if n > 0 {
            // An exited container: `docker restart` is a plain start.
            c.restart(Duration::ZERO).await?;
        }
        match c.exited_within(secs(10)).await? {
            Some(exit) if exit.code == i64::from(code) => {}
            Some(exit) => wrong.push((code, format!("exit code {}", exit.code))),
            None => wrong.push((code, "still running after 10 s".to_string())),
        }
    }
    let runs =
        c.report().await?.of_kind("ready").filter(|f| f.get("cmd") == Some("exit-with")).count();
    if runs != codes.len() {
        bail!(
            "the series {list} started the child {runs} times, expected {}\n{}",
            codes.len(),
            c.evidence().await
        );
    }
    Ok(wrong)
}

/// `codes` through Docker, shared among [`EXIT_SERIES_CONTAINERS`] containers side by side.
async fn through_docker(run: &Run, codes: &[u16]) -> Result<Vec<(u16, String)>> {
    let shares = (0..EXIT_SERIES_CONTAINERS.min(codes.len()))
        .map(|k| codes.iter().skip(k).step_by(EXIT_SERIES_CONTAINERS).copied().collect::<Vec<_>>());
    let series = futures::future::join_all(shares.map(|share| exit_code_series(run, share))).await;
    Ok(series.into_iter().collect::<Result<Vec<_>>>()?.into_iter().flatten().collect())
}

/// PID 1 of the sweep: starts the init (its argv is the script's arguments) once per code, the
/// child exiting with `$CODE`, and prints the status the init exited with each time.
const EXIT_SWEEP: &str = "for code in $(seq 0 255); do\n\
                          CODE=$code \"$@\"\n\
                          echo \"status code=$code got=$?\"\n\
                          done\n";

/// All 256 codes in one container, the init started 256 times below a shell: its exit status is
/// what Docker reports for a container it is PID 1 of (which [`EXIT_SAMPLE`] checks). Docker's
/// own init cannot be put below a shell, but Docker mounts its binary in the container at
/// `/sbin/docker-init`: the shell, the child of that PID 1, starts that same binary.
async fn through_a_sweep(run: &Run) -> Result<Vec<(u16, String)>> {
    let child = ["sh", "-c", "exec testkit exit-with \"$CODE\""];
    let spec = ContainerSpec::new(run).with_file("/tmp/exit_sweep.sh", EXIT_SWEEP);
    let spec = if run.init().is_docker_init() {
        let sweep = ["sh", "/tmp/exit_sweep.sh", "/sbin/docker-init", "--"];
        spec.child(sweep.into_iter().chain(child))
    } else {
        spec.pid1(Pid1Wrapper::Script("/tmp/exit_sweep.sh".into())).child(child)
    };
    let c = spec.without_ready_wait().start().await?;
    c.exit_within(secs(60), "the sweep over 256 exit codes").await?;
    let report = c.report().await?;
    let mut wrong = Vec::new();
    let mut seen = 0;
    for fact in report.of_kind("status") {
        let (code, got): (u16, i64) = (fact.num("code")?, fact.num("got")?);
        seen += 1;
        if got != i64::from(code) {
            wrong.push((code, format!("the init exited {got}")));
        }
    }
    if seen != 256 {
        bail!("the sweep reported {seen} of 256 codes\n{}", c.evidence().await);
    }
    Ok(wrong)
}

/// Every exit code from 0 to 255 passes through unchanged: the child exits with N and the init
/// with N. The init is started 256 times in one container, below a shell that records each
/// status (a second or two), and its container exits through Docker with a sample of codes
/// ([`EXIT_SAMPLE`]).
#[scenario]
async fn every_exit_code_from_0_to_255_is_passed_through(run: Run) -> Result<()> {
    let run = &run;
    let (sweep, sample) = futures::join!(through_a_sweep(run), through_docker(run, &EXIT_SAMPLE));
    let mut wrong = [sweep?, sample?].concat();
    wrong.sort();
    wrong.dedup();
    run.record("exit_codes_not_passed_through", wrong.len() as f64, "codes");
    check!(
        wrong.is_empty(),
        "{} exit codes were not passed through: {}",
        wrong.len(),
        wrong.iter().map(|(code, what)| format!("{code}: {what}")).collect::<Vec<_>>().join(", ")
    );
    Ok(())
}

// --- Exec failure -----------------------------------------------------------------------------

/// A command the init cannot exec, and the shell-convention code it must exit with.
struct ExecFailureCase {
    command: &'static str,
    code: i64,
}

async fn exec_failure_case(run: Run, case: ExecFailureCase) -> Result<()> {
    let c = ContainerSpec::new(&run).child([case.command]).without_ready_wait().start().await?;
    let exit = c.exit_within(secs(10), format_args!("the exec of {} failed", case.command)).await?;
    let logs = c.logs().await?;
    let lines: Vec<&String> = logs.stderr.iter().filter(|l| !l.trim().is_empty()).collect();
    check_in!(
        c,
        exit.code == case.code,
        "exit code {} for {}, expected {}",
        exit.code,
        case.command,
        case.code
    );
    check_in!(
        c,
        lines.len() == 1 && lines[0].contains(case.command),
        "expected exactly one stderr line naming {}, got {lines:?}",
        case.command
    );
    Ok(())
}

scenario_table! {
    exec_failure_case;
    /// ENOENT gives 127, as in shells and tini (dumb-init exits 2, catatonit 1).
    missing_command_exits_127_with_one_line_naming_it =>
        ExecFailureCase { command: "/bin/no-such-command", code: 127 },
    /// EACCES (a directory cannot be executed) gives 126, as in shells and tini.
    non_executable_command_exits_126_with_one_line_naming_it =>
        ExecFailureCase { command: "/tmp", code: 126 },
}

/// A command whose name starts with a hyphen (`/bin/-weird`, a link to testkit) is the child's,
/// not an option, once it follows `--`: the init runs it and supervises it (SIGTERM reaches it,
/// 143). An init that keeps parsing options after `--` refuses it as an unknown flag.
#[scenario]
async fn a_command_named_like_a_flag_runs_after_the_double_dash(run: Run) -> Result<()> {
    let c = ContainerSpec::new(&run)
        .with_symlink("/bin/-weird", "testkit")
        .child(["-weird", "signals"])
        .without_ready_wait()
        .start()
        .await?;
    let ready = c.fact_within("ready", 1, secs(10), |_| true).await?;
    let ready = c.require(ready, "the command `-weird` never started").await?;
    check_in!(
        c,
        ready.get("cmd") == Some("signals"),
        "the child started as `{ready}`, expected `-weird signals` (cmd=signals)"
    );
    c.kill("SIGTERM").await?;
    let exit = c.exit_within(secs(5), "SIGTERM").await?;
    check_in!(c, exit.code == 143, "exit code {}, expected 143 from `-weird`", exit.code);
    Ok(())
}

// --- Process group ----------------------------------------------------------------------------

/// The child leads a new process group: group forwarding and the terminal's foreground group
/// can then target the child's whole job without ever hitting the init.
#[scenario]
async fn child_leads_a_new_process_group(run: Run) -> Result<()> {
    let c = ContainerSpec::new(&run).child(["testkit", "signals"]).start().await?;
    let ready = c.first_ready().await?;
    let init_pgid = c.processes().await?.iter().find(|p| p.pid == 1).map(|p| p.pgid);
    check_in!(
        c,
        ready.pgid == ready.pid,
        "the child (pid {}) is in process group {}, not its own",
        ready.pid,
        ready.pgid
    );
    check_in!(
        c,
        init_pgid != Some(ready.pgid),
        "the child shares the init's process group {}",
        ready.pgid
    );
    let exit = c.stop(secs(10)).await?;
    check_in!(c, exit.code == 143, "docker stop gave exit code {}, expected 143", exit.code);
    Ok(())
}

// --- Reaping ----------------------------------------------------------------------------------

/// 100 orphans of the child are reparented to PID 1 as they exit; it reaps every one
/// (tini's reaping test uses 100 too).
#[scenario]
async fn hundred_orphans_of_the_child_are_reaped(run: Run) -> Result<()> {
    let c = ContainerSpec::new(&run)
        .child(["testkit", "tree", "orphans", "100", "--", "testkit", "signals"])
        .start()
        .await?;
    let made = c.wait_for_fact("orphans", 1, secs(10), |_| true).await?;
    if made.num::<u32>("count")? != 100 {
        bail!("the tree maker made {made} instead of 100 orphans");
    }
    let left = zombies_left(&c, secs(5), |_| true).await?;
    check_in!(
        c,
        left.is_empty(),
        "{} zombies stay unreaped 5 s after the orphans exited: {left:?}",
        left.len()
    );
    check_in!(c, c.state().await?.running, "the container stopped while reaping orphans");
    Ok(())
}

/// Orphans of a `docker exec` are reparented to PID 1 (their parent is outside the
/// namespace); PID 1 must reap them or the pids cgroup fills up (moby#47583).
#[scenario]
async fn orphans_from_docker_exec_are_reaped(run: Run) -> Result<()> {
    let c = ContainerSpec::new(&run).child(["testkit", "signals"]).start().await?;
    let made = c.sh("/bin/testkit tree orphans 100").await?;
    if !made.stdout.iter().any(|l| l.starts_with("orphans count=100 ")) {
        bail!("testkit tree orphans failed: {made:?}");
    }
    let left = zombies_left(&c, secs(5), |_| true).await?;
    check_in!(
        c,
        left.is_empty(),
        "{} zombies stay unreaped 5 s after the exec's orphans exited: {left:?}",
        left.len()
    );
    check_in!(c, c.state().await?.running, "the container stopped while reaping orphans");
    Ok(())
}

/// Reproduces moby#47583: HEALTHCHECK probes are entered from outside the PID namespace, so
/// the grandchildren of a double-forking probe become PID 1's; after several probes none may
/// be left as a zombie.
#[scenario]
async fn double_forking_healthcheck_leaves_no_zombies(run: Run) -> Result<()> {
    const PROBES: usize = 5;
    let c = ContainerSpec::new(&run)
        .child(["testkit", "signals"])
        .health_check(["/scripts/lifecycle_healthcheck.sh", &PROBES.to_string(), "5"], millis(200))
        .start()
        .await?;
    wait::until("the forking health probes", secs(30), || async {
        let out = c.exec(&["/bin/cat", "/tmp/probes"]).await?;
        let done = out.stdout.iter().filter(|l| l.as_str() == "probe").count();
        Ok(if done >= PROBES {
            Polled::Ready(())
        } else {
            Polled::NotYet(format!("{done} probes"))
        })
    })
    .await?;
    let left = zombies_left(&c, secs(5), |_| true).await?;
    check_in!(
        c,
        left.is_empty(),
        "{} zombies left by {PROBES} double-forking health probes: {left:?}",
        left.len()
    );
    check_in!(c, c.state().await?.running, "the container stopped during the health probes");
    Ok(())
}

/// Reproduces catatonit#4: the main child and a grandchild die together, their SIGCHLDs
/// coalesce into one, and an init that reaps only the pid named by the signal misses the main
/// child's exit and hangs. Every run must exit with the main child's code within seconds.
#[scenario]
async fn main_child_dying_together_with_a_grandchild_is_never_missed(run: Run) -> Result<()> {
    const RUNS: u64 = 6;
    let mut failures = Vec::new();
    for ms in 0..RUNS {
        let delay = ms.to_string();
        let c = ContainerSpec::new(&run)
            .child(["testkit", "tree", "sibling-exit", &delay, "--", "testkit", "exit-with", "7"])
            .without_ready_wait()
            .start()
            .await?;
        let exit = c.exited_within(secs(5)).await?;
        let report = c.report().await?;
        let both = report.of_kind("sibling").count() == 1
            && report.of_kind("ready").any(|f| f.get("cmd") == Some("exit-with"));
        match exit {
            None => failures.push(format!(
                "sibling after {ms} ms: still running after 5 s\n{}",
                c.evidence().await
            )),
            Some(e) if e.code != 7 => failures.push(format!(
                "sibling after {ms} ms: exit code {}, expected 7\n{}",
                e.code,
                c.evidence().await
            )),
            Some(_) if !both => failures.push(format!(
                "sibling after {ms} ms: the tree did not run\n{}",
                c.evidence().await
            )),
            Some(_) => {}
        }
        c.remove().await?;
    }
    check!(
        failures.is_empty(),
        "{} of {RUNS} runs went wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
    Ok(())
}

// --- Shutdown of the remaining processes ------------------------------------------------------

/// A descendant that left the child's process group, and the line kind the tree maker gives it.
struct RemainingCase {
    mode: &'static str,
    kind: &'static str,
}

/// `docker stop`: the main child dies of SIGTERM, then the init must SIGTERM the descendant
/// left behind and wait (within the grace period) while it takes 200 ms to clean up.
async fn remaining_process_case(run: Run, case: RemainingCase) -> Result<()> {
    let kind = case.kind;
    let c = ContainerSpec::new(&run)
        .grace(secs(10))
        .child([
            "testkit",
            "tree",
            case.mode,
            "--on-term",
            "log",
            "--linger-ms",
            "200",
            "--",
            "testkit",
            "signals",
        ])
        .start()
        .await?;
    let pid = made_pid(&c, kind).await?;
    let exit = c.stop(secs(20)).await?;
    let report = c.report().await?;
    let got_term = report.signal_names(Some(pid))?.iter().any(|s| s == "SIGTERM");
    let cleaned_up =
        report.of_kind(&format!("{kind}-exit")).any(|f| f.num::<i32>("pid").ok() == Some(pid));
    run.record("shutdown_with_a_200ms_descendant", exit.elapsed.as_secs_f64() * 1000.0, "ms");
    check_in!(
        c,
        got_term,
        "the {kind} (pid {pid}) never got SIGTERM: it was killed with no chance to clean up"
    );
    check_in!(
        c,
        cleaned_up,
        "the {kind} (pid {pid}) got SIGTERM but was killed before its 200 ms of clean-up ended"
    );
    check_in!(c, exit.code == 143, "exit code {}, expected the main child's 143", exit.code);
    check_in!(
        c,
        exit.elapsed < secs(5),
        "the init took {:?} although the {kind} was gone after 200 ms",
        exit.elapsed
    );
    Ok(())
}

scenario_table! {
    remaining_process_case;
    /// krallin/tini#229, #236, #95 and dumb-init#80, #212: a double-forked daemon (reparented to
    /// PID 1, own session) gets no SIGTERM from a tini-family init; the kernel SIGKILLs it.
    double_forked_daemon_gets_sigterm_and_finishes_before_the_container_exits =>
        RemainingCase { mode: "daemon", kind: "daemon" },
    /// dumb-init#191: a `setsid` escapee has left the child's group, so group forwarding misses it.
    setsid_escapee_gets_sigterm_and_finishes_before_the_container_exits =>
        RemainingCase { mode: "setsid", kind: "escapee" },
}

/// When the main child exits on its own (no stop signal), what it left behind still gets
/// SIGTERM and the time to clean up before the container exits with the child's code: the
/// kernel would SIGKILL it as soon as PID 1 exits (krallin/tini#236, dumb-init#212).
#[scenario]
async fn daemon_left_by_a_child_that_exits_on_its_own_gets_sigterm_before_the_container_exits(
    run: Run,
) -> Result<()> {
    let c = ContainerSpec::new(&run)
        .grace(secs(10))
        .child([
            "testkit",
            "tree",
            "daemon",
            "--on-term",
            "log",
            "--linger-ms",
            "200",
            "--",
            "testkit",
            "signals",
            "--on",
            "USR1=exit:3",
        ])
        .start()
        .await?;
    let pid = made_pid(&c, "daemon").await?;
    c.kill("SIGUSR1").await?;
    let exit = c.wait_exit(secs(10)).await?;
    let report = c.report().await?;
    let got_term = report.signal_names(Some(pid))?.iter().any(|s| s == "SIGTERM");
    let cleaned_up = report.of_kind("daemon-exit").any(|f| f.num::<i32>("pid").ok() == Some(pid));
    check_in!(
        c,
        got_term,
        "the daemon (pid {pid}) never got SIGTERM after the main child exited: it was killed \
         with no chance to clean up"
    );
    check_in!(
        c,
        cleaned_up,
        "the daemon (pid {pid}) got SIGTERM but was killed before its 200 ms of clean-up ended"
    );
    check_in!(c, exit.code == 3, "exit code {}, expected the main child's 3", exit.code);
    check_in!(
        c,
        exit.elapsed < secs(5),
        "the init took {:?} although the daemon was gone after 200 ms",
        exit.elapsed
    );
    Ok(())
}

/// A daemon that ignores SIGTERM is SIGKILLed by the init when the grace period ends: the
/// container exits after the grace period, long before Docker's own stop timeout, with the
/// main child's code.
#[scenario]
async fn daemon_ignoring_sigterm_is_killed_when_the_grace_period_ends(run: Run) -> Result<()> {
    let grace = secs(1);
    let c = ContainerSpec::new(&run)
        .grace(grace)
        .child(["testkit", "tree", "daemon", "--on-term", "ignore", "--", "testkit", "signals"])
        .start()
        .await?;
    let pid = made_pid(&c, "daemon").await?;
    let exit = c.stop(secs(20)).await?;
    let got_term = c.report().await?.signal_names(Some(pid))?.iter().any(|s| s == "SIGTERM");
    run.record("shutdown_with_a_straggler", exit.elapsed.as_secs_f64() * 1000.0, "ms");
    check_in!(c, got_term, "the daemon (pid {pid}) never got SIGTERM before it was killed");
    check_in!(c, exit.code == 143, "exit code {}, expected the main child's 143", exit.code);
    check_in!(
        c,
        exit.elapsed >= grace,
        "exited after {:?}, before the {grace:?} grace period owed to the daemon",
        exit.elapsed
    );
    check_in!(
        c,
        exit.elapsed < grace + secs(4),
        "exited after {:?}: the straggler was not SIGKILLed when the grace period ended",
        exit.elapsed
    );
    Ok(())
}

/// The processes left behind share the grace period that began with the stop signal: they
/// are not owed a fresh one when the main child exits. The child takes 2 s of its 3 s grace
/// to stop, so the daemon that ignores SIGTERM must be SIGKILLed about 1 s later, not 3 s.
#[scenario]
async fn leftovers_share_the_grace_period_that_began_with_the_stop_signal(run: Run) -> Result<()> {
    let grace = secs(3);
    let c = ContainerSpec::new(&run)
        .grace(grace)
        .child([
            "testkit",
            "tree",
            "daemon",
            "--on-term",
            "ignore",
            "--",
            "testkit",
            "signals",
            "--on",
            "TERM=exit:0",
            "--linger-ms",
            "2000",
        ])
        .start()
        .await?;
    let pid = made_pid(&c, "daemon").await?;
    let exit = c.stop(secs(20)).await?;
    let got_term = c.report().await?.signal_names(Some(pid))?.iter().any(|s| s == "SIGTERM");
    run.record(
        "shutdown_with_a_slow_child_and_a_straggler",
        exit.elapsed.as_secs_f64() * 1000.0,
        "ms",
    );
    check_in!(c, got_term, "the daemon (pid {pid}) never got SIGTERM before it was killed");
    check_in!(c, exit.code == 0, "exit code {}, expected the main child's 0", exit.code);
    check_in!(
        c,
        exit.elapsed < grace + millis(1300),
        "exited {:?} after the stop signal: the straggler got a fresh grace period after the \
         child's exit instead of what was left of the {grace:?}",
        exit.elapsed
    );
    Ok(())
}

/// A second stop signal during the shutdown reaches the child too: a child that logs SIGTERM
/// and keeps going is told to hurry up with SIGINT (Ctrl-C twice; docs/known-bugs.md#tini-15).
#[scenario]
async fn a_second_stop_signal_during_shutdown_reaches_the_child(run: Run) -> Result<()> {
    let c = ContainerSpec::new(&run)
        .grace(secs(20))
        .child(["testkit", "signals", "--on", "TERM=log"])
        .start()
        .await?;
    c.kill("SIGTERM").await?;
    c.wait_for_fact("signal", 1, secs(5), |f| f.get("name") == Some("SIGTERM")).await?;
    c.kill("SIGINT").await?;
    let exit = c.exited_within(secs(5)).await?;
    let seen = c.report().await?.signal_names(None)?;
    check_in!(
        c,
        seen.iter().any(|s| s == "SIGINT"),
        "the child saw {seen:?}: the second stop signal (SIGINT) never reached it"
    );
    check_in!(
        c,
        exit.is_some_and(|e| e.code == 130),
        "the container ended {exit:?}, expected exit code 130 from the child dying of SIGINT"
    );
    Ok(())
}

/// At shutdown every descendant gets SIGTERM, not only the init's direct children: a daemon's
/// own worker is the init's grandchild (`fixtures/test_scripts/lifecycle_nested_daemon.sh`).
#[scenario]
async fn a_daemons_own_worker_gets_sigterm_at_shutdown(run: Run) -> Result<()> {
    let c = ContainerSpec::new(&run)
        .grace(secs(5))
        .child(["/scripts/lifecycle_nested_daemon.sh"])
        .start()
        .await?;
    // The worker is the logger whose parent is the daemon shell, not PID 1.
    let worker: i32 =
        c.wait_for_fact("ready", 1, secs(5), |f| f.get("ppid") != Some("1")).await?.num("pid")?;
    let exit = c.stop(secs(20)).await?;
    let got_term = c.report().await?.signal_names(Some(worker))?.iter().any(|s| s == "SIGTERM");
    check_in!(
        c,
        got_term,
        "the daemon's worker (pid {worker}), a grandchild of the init, never got SIGTERM before \
         the container exited"
    );
    check_in!(c, exit.code == 143, "exit code {}, expected the main child's 143", exit.code);
    check_in!(
        c,
        exit.elapsed < secs(4),
        "the init took {:?} although every process ends at once on SIGTERM",
        exit.elapsed
    );
    Ok(())
}

/// A process started by `docker exec` (its parent is outside the container: PPid 0) is one
/// of the container's processes too, and gets SIGTERM at shutdown like the others; PID 1's
/// exit would SIGKILL it (moby#47583 for where such processes come from).
#[scenario]
async fn a_process_started_by_docker_exec_gets_sigterm_at_shutdown(run: Run) -> Result<()> {
    let c = ContainerSpec::new(&run).grace(secs(5)).child(["testkit", "signals"]).start().await?;
    // Its lines go to PID 1's stdout, i.e. to the container's log.
    c.exec_detached(&[
        "/bin/sh",
        "-c",
        "exec testkit signals --on TERM=exit:0 > /proc/1/fd/1 2>&1",
    ])
    .await?;
    let pid: i32 =
        c.wait_for_fact("ready", 1, secs(5), |f| f.get("ppid") == Some("0")).await?.num("pid")?;
    let exit = c.stop(secs(20)).await?;
    let got_term = c.report().await?.signal_names(Some(pid))?.iter().any(|s| s == "SIGTERM");
    check_in!(
        c,
        got_term,
        "the exec'd process (pid {pid}, ppid 0) never got SIGTERM before the container exited"
    );
    check_in!(c, exit.code == 143, "exit code {}, expected the main child's 143", exit.code);
    Ok(())
}

// --- The child's environment ------------------------------------------------------------------

/// Runs `testkit inspect` (which exits 0 at once) and returns its report.
async fn inspect(spec: ContainerSpec) -> Result<(Container, Inspection)> {
    let c = spec.child(["testkit", "inspect"]).start().await?;
    let exit = c.wait_exit(secs(10)).await?;
    let inspection = Inspection::from_lines(&c.logs().await?.stdout)?;
    check_in!(c, exit.code == 0, "the inspector exited {}, expected 0", exit.code);
    Ok((c, inspection))
}

/// The child starts with an empty signal mask and default dispositions: nothing the init
/// blocks for itself leaks, and SIGPIPE (ignored by the Rust runtime) is not ignored.
/// catatonit leaves SIGTSTP/SIGTTIN/SIGTTOU blocked
/// (docs/known-bugs.md#catatonit-child-blocks-job-control).
#[scenario]
async fn child_starts_with_an_empty_signal_mask_and_no_ignored_signals(run: Run) -> Result<()> {
    let (c, i) = inspect(ContainerSpec::new(&run)).await?;
    check_in!(
        c,
        mask_is_empty(&i.sigblk),
        "the child starts with signals {:?} blocked (SigBlk {})",
        signals_in(&i.sigblk),
        i.sigblk
    );
    check_in!(
        c,
        mask_is_empty(&i.sigign),
        "the child starts with signals {:?} ignored (SigIgn {}; 13 is SIGPIPE)",
        signals_in(&i.sigign),
        i.sigign
    );
    Ok(())
}

/// Without ports the child gets only fds 0, 1 and 2: no signalfd, pipe or socket of the init.
#[scenario]
async fn child_gets_only_stdio_descriptors_without_ports(run: Run) -> Result<()> {
    let (c, i) = inspect(ContainerSpec::new(&run)).await?;
    check_in!(
        c,
        i.fds == [0, 1, 2],
        "the child has fds {:?}, expected [0, 1, 2]: {}",
        i.fds,
        i.raw["fds"]
    );
    Ok(())
}

/// The child runs in the container's working directory (`docker run -w`) and sees the
/// container's environment verbatim.
#[scenario]
async fn child_keeps_the_working_directory_and_the_environment(run: Run) -> Result<()> {
    let value = "kept as-is=1 2";
    let (c, i) =
        inspect(ContainerSpec::new(&run).working_dir("/tmp").env("TESTKIT_LIFECYCLE_MARK", value))
            .await?;
    check_in!(c, i.cwd == "/tmp", "the child runs in {:?}, expected /tmp", i.cwd);
    check_in!(
        c,
        i.env("TESTKIT_LIFECYCLE_MARK") == Some(value),
        "TESTKIT_LIFECYCLE_MARK is {:?}, expected {value:?}",
        i.env("TESTKIT_LIFECYCLE_MARK")
    );
    Ok(())
}

/// The init keeps no directory busy: under `docker run -w /tmp` its child runs in /tmp, while
/// PID 1's own working directory (`/proc/1/cwd`, read with `docker exec`) is `/`, so the init
/// pins nothing below it (a directory it sits in cannot be unmounted). Of the inits here only
/// dumb-init changes to `/`; scinit, tini and catatonit stay where Docker started them
/// (docs/known-bugs.md#working-directory-kept).
#[scenario]
async fn the_init_keeps_no_working_directory_busy(run: Run) -> Result<()> {
    let c =
        ContainerSpec::new(&run).working_dir("/tmp").child(["testkit", "signals"]).start().await?;
    let child = c.first_ready().await?.pid;
    let cwd = |pid: i32| {
        let c = &c;
        async move {
            let out = c.exec(&["readlink", &format!("/proc/{pid}/cwd")]).await?;
            match &out.stdout[..] {
                [dir] if out.code == 0 => Ok(dir.clone()),
                _ => bail!("readlink /proc/{pid}/cwd exited {}: {out:?}", out.code),
            }
        }
    };
    let (init_cwd, child_cwd) = (cwd(1).await?, cwd(child).await?);
    check_in!(c, child_cwd == "/tmp", "the child runs in {child_cwd}, expected /tmp");
    check_in!(
        c,
        init_cwd == "/",
        "PID 1's working directory is {init_cwd}, expected /: the init keeps the container's \
         working directory busy"
    );
    Ok(())
}

/// Without ports, socket-activation variables inherited from the container's environment are
/// stripped: a child must not take fds 3..8 for sockets it never got.
#[scenario]
async fn inherited_listen_variables_are_stripped_without_ports(run: Run) -> Result<()> {
    let stale = ["LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "SCINIT_INHERITED_FDS"];
    let (c, i) = inspect(
        ContainerSpec::new(&run)
            .env("LISTEN_FDS", "5")
            .env("LISTEN_PID", "1")
            .env("LISTEN_FDNAMES", "stale")
            .env("SCINIT_INHERITED_FDS", "3,4,5,6,7"),
    )
    .await?;
    let seen: Vec<String> =
        stale.iter().filter_map(|k| i.env(k).map(|v| format!("{k}={v}"))).collect();
    check_in!(c, seen.is_empty(), "the child still sees {seen:?}");
    Ok(())
}

/// Signals the init inherited as ignored (a real-time one among them) are not the child's
/// business: it starts with default dispositions. tini and catatonit keep them ignored
/// (docs/known-bugs.md#ignored-signals-stay-ignored).
#[scenario(needs(Wrappable))]
async fn signals_ignored_by_the_inits_parent_are_default_again_in_the_child(
    run: Run,
) -> Result<()> {
    let (c, i) = inspect(
        ContainerSpec::new(&run)
            .pid1(Pid1Wrapper::Script("/scripts/lifecycle_odd_inheritance.sh".into())),
    )
    .await?;
    check_in!(
        c,
        mask_is_empty(&i.sigign),
        "the child starts with signals {:?} ignored (SigIgn {}): the init passed on what its \
         parent ignored",
        signals_in(&i.sigign),
        i.sigign
    );
    Ok(())
}

/// Signals blocked in the mask of the init's parent are not the child's business either: it
/// starts with an empty mask (tini's sigconf test). `fixtures/test_scripts/
/// lifecycle_blocked_signals.sh` starts the init with standard, job-control and real-time
/// signals blocked, which survives `exec`. tini and catatonit pass that mask on
/// (docs/known-bugs.md#blocked-signals-stay-blocked).
#[scenario(needs(Wrappable))]
async fn signals_blocked_by_the_inits_parent_are_unblocked_in_the_child(run: Run) -> Result<()> {
    let (c, i) = inspect(
        ContainerSpec::new(&run)
            .pid1(Pid1Wrapper::Script("/scripts/lifecycle_blocked_signals.sh".into())),
    )
    .await?;
    let blocked = c.report().await?.of_kind("block").count();
    if blocked != 1 {
        bail!("the wrapper did not block the signals before the init\n{}", c.evidence().await);
    }
    check_in!(
        c,
        mask_is_empty(&i.sigblk),
        "the child starts with signals {:?} blocked (SigBlk {}): the init passed on what its \
         parent blocked",
        signals_in(&i.sigblk),
        i.sigblk
    );
    Ok(())
}

/// The environment passes through byte for byte: a value that is not UTF-8 reaches the child
/// unchanged (the inspector reports it in hex).
#[scenario(needs(Wrappable))]
async fn an_environment_value_that_is_not_utf8_reaches_the_child_unchanged(run: Run) -> Result<()> {
    let (c, i) = inspect(
        ContainerSpec::new(&run)
            .pid1(Pid1Wrapper::Script("/scripts/lifecycle_odd_inheritance.sh".into())),
    )
    .await?;
    let raw = i.env("TESTKIT_RAW_hex");
    check_in!(
        c,
        raw == Some("61ff62"),
        "the child saw TESTKIT_RAW as {:?} (hex {raw:?}), expected the bytes 61 ff 62",
        i.env("TESTKIT_RAW")
    );
    Ok(())
}

/// While the init waits out the grace period for a child that is still finishing, other
/// signals still reach that child.
#[scenario]
async fn signals_still_reach_a_child_that_is_finishing_after_sigterm(run: Run) -> Result<()> {
    let c = ContainerSpec::new(&run)
        .grace(secs(20))
        .child(["testkit", "signals", "--on", "TERM=log"])
        .start()
        .await?;
    c.kill("SIGTERM").await?;
    c.wait_for_fact("signal", 1, secs(5), |f| f.get("name") == Some("SIGTERM")).await?;
    c.kill("SIGUSR1").await?;
    let usr1 = c.fact_within("signal", 1, secs(5), |f| f.get("name") == Some("SIGUSR1")).await?;
    check_in!(
        c,
        usr1.is_some(),
        "SIGUSR1 sent during the shutdown's grace period never reached the child"
    );
    Ok(())
}

// --- A terminal (`docker run -t`) -------------------------------------------------------------

/// Under `docker run -t` the child's process group becomes the terminal's foreground group, so
/// interactive programs can read the terminal and get Ctrl-C; before tini 0.8.1 they hung
/// (krallin/tini#15, #21; dumb-init#51).
#[scenario]
async fn child_is_the_terminals_foreground_group_under_docker_run_t(run: Run) -> Result<()> {
    let c = ContainerSpec::new(&run).tty().child(["testkit", "inspect", "--stay"]).start().await?;
    c.wait_for_line("the inspector's report", secs(10), |l| l.starts_with("inspect ")).await?;
    let i = Inspection::from_lines(&c.logs().await?.stdout)?;
    check_in!(
        c,
        i.pgid == i.pid,
        "the child (pid {}) is in group {}, not a group of its own",
        i.pid,
        i.pgid
    );
    check_in!(
        c,
        i.tpgid == i.pgid,
        "the terminal's foreground group is {}, not the child's group {}",
        i.tpgid,
        i.pgid
    );
    Ok(())
}

/// Under `docker run -t` nothing but what is sent reaches the child: dumb-init, as session
/// leader, once let the SIGHUP and SIGCONT of its own TIOCNOTTY through, and children died
/// with 129 right after start (dumb-init#136, PR #174). A stop afterwards still gives 143.
#[scenario]
async fn no_spurious_signal_reaches_the_child_under_docker_run_t(run: Run) -> Result<()> {
    let c = ContainerSpec::new(&run).tty().child(["testkit", "signals"]).start().await?;
    c.kill("SIGUSR1").await?;
    let marker = c.fact_within("signal", 1, secs(5), |f| f.get("name") == Some("SIGUSR1")).await?;
    check_in!(c, marker.is_some(), "SIGUSR1 sent after the handshake never reached the child");
    let seen = c.report().await?.signal_names(None)?;
    check_in!(
        c,
        seen == ["SIGUSR1"],
        "the child saw {seen:?} by the time SIGUSR1 arrived, expected only [SIGUSR1]"
    );
    c.kill("SIGTERM").await?;
    let exit = c.wait_exit(secs(5)).await?;
    check_in!(c, exit.code == 143, "exit code {} after SIGTERM, expected 143", exit.code);
    Ok(())
}

// --- Freezing and stopping --------------------------------------------------------------------

/// `docker pause` freezes the init and the child (cgroup freezer, no signal involved); after
/// `docker unpause` the init still forwards signals to the same child, and `docker stop` ends
/// the container with the child's status.
#[scenario]
async fn docker_pause_and_unpause_leave_the_init_working(run: Run) -> Result<()> {
    let c = ContainerSpec::new(&run).child(["testkit", "signals"]).start().await?;
    let child = c.first_ready().await?.pid;
    c.pause().await?;
    let frozen = c.state().await?;
    c.unpause().await?;
    if !frozen.paused {
        bail!("Docker did not report the container paused: {frozen:?}");
    }
    check_in!(
        c,
        c.exited_within(millis(300)).await?.is_none(),
        "the container exited after unpause"
    );
    c.kill("SIGUSR1").await?;
    let usr1 = c.wait_for_fact("signal", 1, secs(5), |f| f.get("name") == Some("SIGUSR1")).await;
    check_in!(c, usr1.is_ok(), "SIGUSR1 sent after unpause never reached the child");
    let exit = c.stop(secs(10)).await?;
    let seen = c.report().await?.signal_names(Some(child))?;
    check_in!(
        c,
        seen == ["SIGUSR1", "SIGTERM"],
        "the child saw {seen:?}, expected [SIGUSR1, SIGTERM]"
    );
    check_in!(
        c,
        exit.code == 143,
        "docker stop after unpause gave exit code {}, expected 143",
        exit.code
    );
    Ok(())
}

/// SIGSTOP and SIGCONT of the child (`docker exec kill`): a stopped child is not an exited
/// one, so the init keeps waiting; after SIGCONT signals reach the same child again.
#[scenario]
async fn stopped_and_continued_child_keeps_the_init_waiting(run: Run) -> Result<()> {
    let c = ContainerSpec::new(&run).child(["testkit", "signals"]).start().await?;
    let child = c.first_ready().await?.pid;
    let state_of = |wanted: bool| {
        let c = &c;
        move || async move {
            let state = c.processes().await?.into_iter().find(|p| p.pid == child).map(|p| p.state);
            let stopped = state.as_deref() == Some("T");
            Ok(if stopped == wanted {
                Polled::Ready(())
            } else {
                Polled::NotYet(format!("state {state:?}"))
            })
        }
    };
    let pid = child.to_string();
    c.exec(&["/bin/kill", "-STOP", &pid]).await?;
    wait::until("the child stopped", secs(5), state_of(true)).await?;
    check_in!(
        c,
        c.exited_within(millis(500)).await?.is_none(),
        "the container exited while its child was only stopped"
    );
    c.exec(&["/bin/kill", "-CONT", &pid]).await?;
    wait::until("the child continued", secs(5), state_of(false)).await?;
    c.kill("SIGUSR1").await?;
    let usr1 = c.wait_for_fact("signal", 1, secs(5), |f| f.get("name") == Some("SIGUSR1")).await;
    check_in!(c, usr1.is_ok(), "SIGUSR1 did not reach the child after SIGCONT");
    let exit = c.stop(secs(10)).await?;
    let seen = c.report().await?.signal_names(Some(child))?;
    check_in!(
        c,
        seen.ends_with(&["SIGUSR1".to_string(), "SIGTERM".to_string()]),
        "the child saw {seen:?}, expected it to end with [SIGUSR1, SIGTERM]"
    );
    check_in!(c, exit.code == 143, "docker stop gave exit code {}, expected 143", exit.code);
    Ok(())
}

// --- Not PID 1 --------------------------------------------------------------------------------

/// Under a shell as PID 1 (a wrapper entrypoint, a shared PID namespace) the init registers
/// as child subreaper: a double-forked daemon is reparented to the init, not to PID 1, and
/// the orphans it adopts are reaped. tini warns and does neither without `-s`
/// (krallin/tini#141, #120); dumb-init has no subreaper mode.
#[scenario(needs(Wrappable))]
async fn init_below_a_shell_becomes_a_subreaper_and_reaps_orphans(run: Run) -> Result<()> {
    let c = ContainerSpec::new(&run)
        .pid1(Pid1Wrapper::Shell)
        .child([
            "testkit", "tree", "daemon", "--", "testkit", "tree", "orphans", "10", "--", "testkit",
            "signals",
        ])
        .start()
        .await?;
    let daemon = made_pid(&c, "daemon").await?;
    c.wait_for_fact("orphans", 1, secs(5), |_| true).await?;
    let init_pid = c.first_ready().await?.ppid;
    let procs = c.processes().await?;
    if procs.iter().find(|p| p.pid == 1).map(|p| p.comm.as_str()) != Some("sh") || init_pid == 1 {
        bail!("the shell is not PID 1 above the init (pid {init_pid}): {procs:?}");
    }
    let parent = procs.iter().find(|p| p.pid == daemon).map(|p| p.ppid);
    check_in!(
        c,
        parent == Some(init_pid),
        "the daemon (pid {daemon}) has parent {parent:?}, not the init (pid {init_pid}): the \
         init is no subreaper"
    );
    let left = zombies_left(&c, secs(5), |p| p.ppid == init_pid).await?;
    check_in!(
        c,
        left.is_empty(),
        "{} orphans stay zombies of the init (pid {init_pid}): {left:?}",
        left.len()
    );
    check_in!(c, c.state().await?.running, "the container stopped");
    Ok(())
}
