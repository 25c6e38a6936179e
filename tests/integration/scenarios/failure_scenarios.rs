//! Failures: what the init does when it cannot do its job (a bad command line, a taken port, too
//! few file descriptors) and when its child fails in ways a container sees in production (a
//! crash after a restart, a command that vanished, the OOM killer, a fork storm under a pids
//! limit). The contract (issue 2): usage errors exit 2 and set-up errors exit 1, each with one
//! `scinit:` line on stderr; nothing hangs; the child's fate becomes the container's exit code.
//! After a restart (README "Restarts"), a new child that exits on its own ends the container with
//! its code, and one that cannot be executed leaves scinit up with its sockets until the next
//! restart trigger or a stop (then 127/126).
//!
//! The bad-command-line, port and fd cases speak scinit's own flags and need its capabilities
//! (`n/a` for the other inits); the OOM and fork-load cases run against every init. The init's
//! own `--help`, `--version` and a missing COMMAND run against every init that can be started
//! by a script, each judged by what scinit's README documents.

use std::time::Duration;

use anyhow::Result;

use crate::infrastructure::{scenario, ContainerSpec, Pid1Wrapper, Run};
use crate::utils::child_report::Fact;
use crate::utils::wait::{self, secs, Polled};

/// The liveness bound of every "fails at once" case: generous, a hang takes forever.
const FAILS_WITHIN: Duration = Duration::from_secs(5);

/// Whether the init's stderr is exactly one line, prefixed `scinit:`, that contains `names`.
fn one_line_naming(stderr: &[String], names: &str) -> bool {
    matches!(stderr, [line] if line.starts_with("scinit:") && line.contains(names))
}

/// A command line the init must refuse before it starts anything.
struct BadCommandLine {
    args: &'static [&'static str],
    code: i64,
    /// What the error line must name.
    names: &'static str,
}

async fn bad_command_line_case(run: Run, case: BadCommandLine) -> Result<()> {
    let c = ContainerSpec::new(&run)
        .init_args(case.args.iter().copied())
        .child(["testkit", "signals"])
        .without_ready_wait()
        .start()
        .await?;
    let code = c.exit_within(FAILS_WITHIN, format_args!("{:?}", case.args)).await?.code;
    let logs = c.logs().await?;
    check_in!(
        c,
        code == case.code,
        "{:?}: exit code {code}, expected {} (2 usage error, 1 set-up error)",
        case.args,
        case.code
    );
    check_in!(
        c,
        one_line_naming(&logs.stderr, case.names),
        "{:?}: stderr must be exactly one `scinit:` line naming {:?}, got {:?}",
        case.args,
        case.names,
        logs.stderr
    );
    let readies = c.report().await?.readies()?;
    check_in!(c, readies.is_empty(), "{:?}: the child was started anyway: {readies:?}", case.args);
    Ok(())
}

scenario_table! {
    bad_command_line_case needs(ScinitCli);
    /// An option scinit does not know is a usage error, not an argument silently dropped.
    an_unknown_init_flag_exits_2_with_one_line_naming_it => BadCommandLine {
        args: &["--no-such-flag"],
        code: 2,
        names: "--no-such-flag",
    },
    a_port_above_65535_exits_2_with_one_line_naming_it => BadCommandLine {
        args: &["--ports", "70000"],
        code: 2,
        names: "70000",
    },
    a_non_numeric_port_exits_2_with_one_line_naming_it => BadCommandLine {
        args: &["--ports", "abc"],
        code: 2,
        names: "abc",
    },
    /// A hostname would need a resolver in a static PID 1 and make the bound address depend on
    /// DNS: the contract rejects it as a set-up error.
    a_hostname_as_bind_address_exits_1_with_one_line_naming_it => BadCommandLine {
        args: &["--bind-addr", "localhost"],
        code: 1,
        names: "localhost",
    },
    /// Watching nothing would silently turn live reload off.
    a_missing_watch_path_exits_1_with_one_line_naming_it => BadCommandLine {
        args: &["--live-reload", "--watch-path", "/nope"],
        code: 1,
        names: "/nope",
    },
}

/// What the init must print for its own arguments, given alone.
#[derive(Debug, Clone, Copy)]
enum Says {
    /// A help text naming its usage, on stdout.
    Usage,
    /// One line on stdout: the init's name and its version.
    Version,
    /// One line on stderr, prefixed with the init's name.
    OneErrorLine,
}

/// The init run alone as PID 1 (`fixtures/test_scripts/failure_init_alone.sh`) with `args`, no
/// COMMAND: the exit code and output the README documents for scinit.
struct OwnArguments {
    args: &'static str,
    code: i64,
    says: Says,
}

async fn own_arguments_case(run: Run, case: OwnArguments) -> Result<()> {
    let c = ContainerSpec::new(&run)
        .pid1(Pid1Wrapper::Script("/scripts/failure_init_alone.sh".into()))
        .env("INIT_ARGS", case.args)
        .without_ready_wait()
        .start()
        .await?;
    let code = c.exit_within(FAILS_WITHIN, format_args!("`init {}`", case.args)).await?.code;
    let logs = c.logs().await?;
    // The program's name, which its modes share (`tini -g` is still tini): its package's, or
    // the row's for scinit, which is built here.
    let row = &run.init().row;
    let name = row.package.as_deref().unwrap_or(&row.name);
    let (out, err) = (&logs.stdout, &logs.stderr);
    check_in!(
        c,
        code == case.code,
        "`init {}`: exit code {code}, expected {}",
        case.args,
        case.code
    );
    let expected = match case.says {
        Says::Usage => err.is_empty() && out.iter().any(|l| l.to_lowercase().contains("usage")),
        Says::Version => {
            err.is_empty()
                && matches!(&out[..], [line] if line.starts_with(name)
                    && line.contains(|c: char| c.is_ascii_digit()))
        }
        Says::OneErrorLine => {
            out.is_empty() && matches!(&err[..], [line] if line.starts_with(&format!("{name}:")))
        }
    };
    check_in!(
        c,
        expected,
        "`init {}` printed {} lines on stdout and {:?} on stderr, expected {:?}",
        case.args,
        out.len(),
        err,
        case.says
    );
    Ok(())
}

scenario_table! {
    own_arguments_case needs(Wrappable);
    /// `--help` prints the usage on stdout and exits 0 (README "Command line").
    the_inits_help_flag_prints_its_usage_on_stdout_and_exits_0 =>
        OwnArguments { args: "--help", code: 0, says: Says::Usage },
    /// `--version` prints one line, `<name> <version>`, and exits 0.
    the_inits_version_flag_prints_one_line_with_its_version_and_exits_0 =>
        OwnArguments { args: "--version", code: 0, says: Says::Version },
    /// No COMMAND is a usage error: exit 2 with one line on stderr, before anything starts.
    the_init_without_a_command_exits_2_with_one_line_on_stderr =>
        OwnArguments { args: "", code: 2, says: Says::OneErrorLine },
}

/// A port another process already holds (bound without SO_REUSEPORT) cannot be bound: the init,
/// started by a shell that is PID 1, exits 1 with one line naming the port and starts no child.
#[scenario(needs(ScinitCli, Wrappable))]
async fn a_port_taken_inside_the_container_exits_1_with_one_line_naming_it(run: Run) -> Result<()> {
    let c = ContainerSpec::new(&run)
        .pid1(Pid1Wrapper::Script("/scripts/failure_port_taken.sh".into()))
        .init_args(["--ports", "8080"])
        .child(["testkit", "signals"])
        .start()
        .await?;
    let code = c.exit_within(FAILS_WITHIN, "port 8080 taken").await?.code;
    let report = c.report().await?;
    let init_exit: Vec<&Fact> = report.of_kind("init-exit").collect();
    check_in!(
        c,
        init_exit.len() == 1,
        "the wrapper shell saw {} init exits, expected 1",
        init_exit.len()
    );
    let init_code: i64 = init_exit[0].num("code")?;
    let logs = c.logs().await?;
    check_in!(
        c,
        init_code == 1 && code == 1,
        "the init exited {init_code} (container {code}), expected 1 (set-up error)"
    );
    check_in!(
        c,
        one_line_naming(&logs.stderr, "8080"),
        "stderr must be one `scinit:` line naming port 8080, got {:?}",
        logs.stderr
    );
    let readies: Vec<&Fact> =
        report.of_kind("ready").filter(|f| f.get("cmd") == Some("signals")).collect();
    check_in!(
        c,
        readies.is_empty(),
        "the child was started although its port could not be bound: {readies:?}"
    );
    Ok(())
}

/// File descriptors run out while binding (`--ulimit nofile=16`, 20 ports): one line naming
/// the cause, exit 1, no child and no hang. (runc itself needs about 12 fds to start.)
#[scenario(needs(ScinitCli))]
async fn running_out_of_file_descriptors_while_binding_exits_1_with_one_line(
    run: Run,
) -> Result<()> {
    let ports: Vec<String> = (8081..=8100).map(|p: u16| p.to_string()).collect();
    let c = ContainerSpec::new(&run)
        .init_args(["--ports".to_string(), ports.join(",")])
        .nofile_limit(16)
        .child(["testkit", "signals"])
        .without_ready_wait()
        .start()
        .await?;
    let code = c.exit_within(FAILS_WITHIN, "nofile=16 with 20 ports").await?.code;
    let logs = c.logs().await?;
    check_in!(c, code == 1, "exit code {code}, expected 1 (set-up error)");
    check_in!(
        c,
        one_line_naming(&logs.stderr, "Too many open files"),
        "stderr must be one `scinit:` line naming EMFILE, got {:?}",
        logs.stderr
    );
    let readies = c.report().await?.readies()?;
    check_in!(c, readies.is_empty(), "the child was started without all its sockets: {readies:?}");
    Ok(())
}

/// The restart signal restarts the child; the new child crashes at once (exit 1). A child that
/// exits on its own ends the container with its code: the init neither hangs nor restarts it
/// in a loop.
#[scenario(needs(Restart))]
async fn a_child_that_crashes_after_a_restart_ends_the_container_with_its_code(
    run: Run,
) -> Result<()> {
    let c = ContainerSpec::new(&run)
        .restart_signal("SIGHUP")
        .child(["/scripts/failure_crash_on_restart.sh"])
        .start()
        .await?;
    c.kill("SIGHUP").await?;
    let code = c.exit_within(FAILS_WITHIN, "crash after restart").await?.code;
    let report = c.report().await?;
    let crashes = report.of_kind("crash").count();
    let first_child_saw = report.signal_names(None)?;
    check_in!(
        c,
        crashes == 1,
        "the crashing child started {crashes} times, expected once (no restart loop)"
    );
    check_in!(
        c,
        first_child_saw == ["SIGTERM"],
        "the first child saw {first_child_saw:?}, expected [SIGTERM] (stopped for the restart)"
    );
    check_in!(c, code == 1, "exit code {code}, expected the crashed child's 1");
    Ok(())
}

/// After a restart whose exec fails (the command vanished), the init keeps the listening
/// socket and waits: every further SIGHUP tries again and fails with one line naming the
/// command, and a stop still ends the container at once, with 127 (command not found).
#[scenario(needs(Ports, Restart))]
async fn a_restart_whose_exec_fails_keeps_the_socket_and_still_answers_signals(
    run: Run,
) -> Result<()> {
    const ATTEMPTS: usize = 3;
    let c = ContainerSpec::new(&run)
        .with_ports([8080])
        .restart_signal("SIGHUP")
        .child(["/scripts/failure_vanishing_child.sh"])
        .start()
        .await?;
    for attempt in 1..=ATTEMPTS {
        c.kill("SIGHUP").await?;
        let failed = wait::until(&format!("failed start #{attempt}"), secs(5), || async {
            let stderr = c.logs().await?.stderr;
            let n = stderr.iter().filter(|l| l.contains("failure_vanishing_child.sh")).count();
            Ok(if n >= attempt { Polled::Ready(n) } else { Polled::NotYet(format!("{stderr:?}")) })
        })
        .await;
        check_ok!(c, failed, "SIGHUP #{attempt} gave no line naming the missing command");
        check_in!(
            c,
            c.state().await?.running,
            "the container exited after failed restart #{attempt}"
        );
    }
    let port = c.listening(8080).await?;
    check_in!(
        c,
        port.listening(),
        "port 8080 is no longer listening after the failed restarts: {port:?}"
    );
    let exit = c.stop(secs(10)).await?;
    let readies = c.report().await?.readies()?;
    check_in!(
        c,
        readies.len() == 1,
        "{} children started, expected only the first one",
        readies.len()
    );
    check_in!(
        c,
        exit.elapsed < FAILS_WITHIN,
        "docker stop took {:?}: the idle init did not act on SIGTERM",
        exit.elapsed
    );
    check_in!(
        c,
        exit.code == 127,
        "exit code {}, expected 127 (the last start found no command)",
        exit.code
    );
    Ok(())
}

/// The kernel OOM killer ends the child under `--memory 32m`: the container exits 137
/// (128+SIGKILL) and Docker reports OOMKilled. A worker of the child is OOM-killed first and
/// the child survives it; only once the harness has seen that does the child exhaust memory
/// itself, so that Docker's OOM bookkeeping cannot race the exit (containerd#8180).
#[scenario]
async fn a_child_killed_by_the_oom_killer_gives_137_and_oom_killed(run: Run) -> Result<()> {
    let c = ContainerSpec::new(&run)
        .memory_limit(32 * 1024 * 1024)
        .child(["/scripts/failure_memory_hog.sh"])
        .without_ready_wait()
        .start()
        .await?;
    let worker = c.wait_for_fact("worker-exit", 1, secs(30), |_| true).await;
    let worker_code: i64 =
        check_ok!(c, worker, "the child did not survive its worker's OOM kill").num("code")?;
    check_in!(
        c,
        worker_code == 137,
        "the worker ended with {worker_code}, expected 137 (OOM-killed)"
    );
    c.sh("echo go > /tmp/oom-go").await?;
    let exit = c.wait_exit(secs(30)).await?;
    let report = c.report().await?;
    let state = c.state().await?;
    check_in!(
        c,
        report.of_kind("hog").count() == 1,
        "the child never started exhausting memory itself"
    );
    check_in!(
        c,
        report.of_kind("allocated").count() == 0,
        "200 MB were allocated: the memory limit did not apply"
    );
    check_in!(
        c,
        exit.code == 137,
        "exit code {}, expected 137 (the child died of SIGKILL)",
        exit.code
    );
    check_in!(c, state.oom_killed, "Docker does not report OOMKilled");
    Ok(())
}

/// 2000 short-lived orphans under `--pids-limit 64`: a PID 1 that reaps keeps the pids cgroup
/// from filling up (moby#47583), so nearly every fork succeeds; afterwards no zombie is left,
/// a forwarded signal still reaches the child and `docker stop` ends it with 143.
#[scenario]
async fn a_fork_storm_under_a_pids_limit_is_reaped_and_the_init_stays_responsive(
    run: Run,
) -> Result<()> {
    const FORKS: u32 = 2000;
    let forks = FORKS.to_string();
    let c = ContainerSpec::new(&run)
        .pids_limit(64)
        .child(["testkit", "tree", "forker", forks.as_str(), "--", "testkit", "signals"])
        .start()
        .await?;
    let done = c.wait_for_fact("forker", 1, secs(60), |_| true).await?;
    let (spawned, failed): (u32, u32) = (done.num("spawned")?, done.num("failed")?);
    run.record("fork_storm_failed_forks", f64::from(failed), "forks");
    check_in!(
        c,
        spawned >= FORKS / 2,
        "only {spawned} of {FORKS} forks succeeded ({failed} EAGAIN): the pids cgroup filled \
         with unreaped orphans"
    );
    c.wait_for_fact("ready", 1, secs(10), |f| f.get("cmd") == Some("signals")).await?;
    c.kill("SIGUSR1").await?;
    let usr1 = c.wait_for_fact("signal", 1, secs(5), |f| f.get("name") == Some("SIGUSR1")).await;
    check_ok!(c, usr1, "SIGUSR1 did not reach the child after the fork storm");
    let zombies = wait::until("no zombie left", secs(5), || async {
        let zombies: Vec<_> = c.processes().await?.into_iter().filter(|p| p.is_zombie()).collect();
        Ok(if zombies.is_empty() {
            Polled::Ready(())
        } else {
            Polled::NotYet(format!("{zombies:?}"))
        })
    })
    .await;
    check_ok!(c, zombies, "zombies stay unreaped");
    let exit = c.stop(secs(10)).await?;
    let seen = c.report().await?.signal_names(None)?;
    check_in!(
        c,
        seen == ["SIGUSR1", "SIGTERM"],
        "the child saw {seen:?}, expected [SIGUSR1, SIGTERM]"
    );
    check_in!(c, exit.code == 143, "docker stop gave {}, expected 143 (128+SIGTERM)", exit.code);
    Ok(())
}
