//! `make repro`: reproduces a bug report without writing Rust (issue 12). A user's shell script
//! runs as the child of each init named (rows of `fixtures/inits.txt`), in the suite's own kind
//! of image (`FROM scratch`: busybox, testkit, the init, and the script at `/repro.sh`, run as
//! `/bin/sh /repro.sh` through the init's argv template). Signals go through the Docker API at
//! the times given, relative to the container's start; the process table is read (`testkit ps`
//! through `docker exec`) just before each and at the deadline. Then it prints the inits side by
//! side, each one's timeline and Docker's view, and writes the same as JSON
//! (`target/test-results/repro-<time>.json`). README "Reproducing a bug".
//!
//! A plain program, like `tests/bench/main.rs`, over the container suite's harness: containers
//! are made by `ContainerSpec`, labelled and removed by the `Container` guard (on errors and on
//! Ctrl-C too) and swept by the harness after a SIGKILL. The inits run one after another, so
//! that nothing else runs on the engine meanwhile and their times compare.
//!
//! Exit: 0 when every init ran, 1 when one could not (its error is in the report), 2 for bad
//! input or no Docker, 130 on Ctrl-C. `--self-test` checks the parsers instead (`make
//! unit-test`); without arguments (`cargo test` running every target) it does nothing.

// The harness of the container suite, compiled into this program too. Only part of it is used
// here, and without a test harness the modules' unit tests are compiled out, leaving their
// imports unused (the suite runs them).
#[path = "../support/static_build.rs"]
#[allow(dead_code, unused_imports)]
mod static_build;

#[macro_use]
#[path = "../integration/infrastructure/mod.rs"]
#[allow(dead_code, unused_imports, unused_macros)]
mod infrastructure;

#[path = "../integration/utils/mod.rs"]
#[allow(dead_code, unused_imports)]
mod utils;

mod args;
mod report;
mod self_test;

use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use futures::stream::{FuturesUnordered, StreamExt};
use tokio::time::{sleep_until, Instant};

use args::{Action, Command, DockerArgs, Event, Input};
use infrastructure::container::Exit;
use infrastructure::inits::{self, Init};
use infrastructure::{engine, results, Container, ContainerSpec, Network, Run};
use report::{Ended, InitRun, Line, Observed, Proc, Sent, Snapshot};

/// Where the script goes in the image.
const SCRIPT_PATH: &str = "/repro.sh";

/// How long before a signal the process table is read: a `docker exec` takes some tens of
/// milliseconds (more on a busy machine), and the signal should still leave on time.
const SNAPSHOT_LEAD: Duration = Duration::from_millis(500);

/// How long a `docker stop` still under way when the container has exited may take to return.
const STOP_RETURN: Duration = Duration::from_secs(2);

/// The run, parsed and checked: everything but the inits' binaries.
pub struct Plan {
    /// SCRIPT as given.
    pub script_path: String,
    pub script: Vec<u8>,
    pub init_names: Vec<String>,
    /// In time order.
    pub events: Vec<Event>,
    /// DOCKER_ARGS as given, and as understood.
    pub docker_args: String,
    pub docker: DockerArgs,
    /// After the last event (after the start without events): the run's deadline.
    pub timeout: Duration,
}

impl Plan {
    /// Every check that needs no Docker and builds nothing; errors are one line.
    fn prepare(input: &Input) -> Result<Plan, String> {
        if input.script.trim().is_empty() {
            return Err("SCRIPT is missing: make repro SCRIPT=path.sh [INITS=\"tini scinit\"] \
                        [SIGNALS=TERM@1s,...] [DOCKER_ARGS=\"...\"] [TIMEOUT=15s]"
                .into());
        }
        let script = std::fs::read(&input.script)
            .map_err(|e| format!("SCRIPT={}: cannot read it: {e}", input.script))?;
        let events = args::signals(&input.signals)?;
        let docker = args::docker_args(&input.docker_args)?;
        let timeout = args::timeout(&input.timeout)?;
        let table = inits::table().map_err(|e| format!("{e:#}"))?;
        let mut init_names = args::inits(&input.inits);
        if init_names.is_empty() {
            init_names =
                table.iter().filter(|row| !row.matrix_only).map(|row| row.name.clone()).collect();
        }
        if let Some(unknown) = init_names.iter().find(|n| !table.iter().any(|r| &&r.name == n)) {
            let known: Vec<&str> = table.iter().map(|r| r.name.as_str()).collect();
            return Err(format!(
                "INITS: `{unknown}` is not a row of fixtures/inits.txt; the inits are {}",
                known.join(", ")
            ));
        }
        Ok(Plan {
            script_path: input.script.clone(),
            script,
            init_names,
            events,
            docker_args: input.docker_args.clone(),
            docker,
            timeout,
        })
    }

    /// When a run that has not exited ends, after the container's start.
    pub fn deadline(&self) -> Duration {
        self.events.last().map_or(Duration::ZERO, |e| e.at) + self.timeout
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let input = match args::command(&args) {
        Ok(Command::Repro(input)) => input,
        Ok(Command::SelfTest) => return self_test::run(),
        Ok(Command::List) => return ExitCode::SUCCESS,
        Ok(Command::Nothing) => {
            eprintln!(
                "repro: nothing to reproduce without --script (`make repro SCRIPT=path.sh`, \
                 README \"Reproducing a bug\")"
            );
            return ExitCode::SUCCESS;
        }
        Err(e) => return bad_input(&e),
    };
    let plan = match Plan::prepare(&input) {
        Ok(plan) => plan,
        Err(e) => return bad_input(&e),
    };
    // Builds this tree's scinit if asked for it; a peer's missing package is one line.
    let inits: Result<Vec<Init>> = plan
        .init_names
        .iter()
        .map(|name| Init::reference(name).with_context(|| format!("INITS: {name}")))
        .collect();
    let inits = match inits {
        Ok(inits) => inits,
        Err(e) => return bad_input(&format!("{e:#}")),
    };
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build();
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(e) => return bad_input(&format!("cannot start the runtime: {e}")),
    };
    runtime.block_on(async {
        tokio::select! {
            code = repro(&plan, &inits) => code,
            // Leaving the select drops the run under way, and with it its container's guard,
            // which removes the container before the program exits.
            Ok(()) = tokio::signal::ctrl_c() => {
                eprintln!("\nrepro: interrupted; the container under way is removed");
                ExitCode::from(130)
            }
        }
    })
}

fn bad_input(message: &str) -> ExitCode {
    eprintln!("repro: {message}");
    ExitCode::from(2)
}

async fn repro(plan: &Plan, inits: &[Init]) -> ExitCode {
    // The first connection sweeps containers left by a killed run, and says in one line why
    // Docker cannot be reached.
    if let Err(e) = engine::client().await {
        return bad_input(&format!("{e:#}"));
    }
    let mut runs = Vec::new();
    for init in inits {
        eprintln!(
            "repro: {}: running (at most {:.1} s once its image is ready)",
            init.label,
            plan.deadline().as_secs_f64()
        );
        let spec = spec(init, plan);
        // The image tag does not matter for the command line, which is all this is for.
        let (command, docker_init) = match spec.request("-") {
            Ok(request) => (request.cmd, request.docker_init),
            Err(e) => (vec![format!("({e})")], false),
        };
        let outcome = run(spec, plan).await.map_err(|e| format!("{e:#}"));
        runs.push(InitRun { label: init.label.clone(), command, docker_init, outcome });
    }
    print!("{}", report::text(plan, &runs));
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let stamp = report::file_stamp(now);
    let path = results::results_dir().join(format!("repro-{stamp}.json"));
    let written = std::fs::create_dir_all(results::results_dir())
        .and_then(|()| {
            let json = report::json(plan, &runs, now);
            std::fs::write(&path, format!("{json:#}\n"))
        })
        .with_context(|| format!("writing {}", path.display()));
    match written {
        Ok(()) => println!("\nJSON: {}", path.display()),
        Err(e) => {
            eprintln!("repro: {e:#}");
            return ExitCode::from(1);
        }
    }
    if runs.iter().any(|r| r.outcome.is_err()) {
        eprintln!("repro: an init could not be run (see its error above)");
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

/// The container of one init: the script as its child, with DOCKER_ARGS applied.
fn spec(init: &Init, plan: &Plan) -> ContainerSpec {
    let run = Run::new(init.clone(), &format!("repro-{}", init.label));
    let mut spec = ContainerSpec::new(&run)
        .child(["/bin/sh", SCRIPT_PATH])
        .with_file(SCRIPT_PATH, plan.script.clone())
        // The script speaks no testkit handshake: its run starts with the container.
        .without_ready_wait();
    let d = &plan.docker;
    for (key, value) in &d.env {
        spec = spec.env(key, value);
    }
    if let Some(bytes) = d.memory_bytes {
        spec = spec.memory_limit(bytes);
    }
    if let Some(pids) = d.pids_limit {
        spec = spec.pids_limit(pids);
    }
    if d.tty {
        spec = spec.tty();
    }
    if d.host_network {
        spec = spec.network(Network::Host);
    }
    if let Some(cmd) = &d.health_cmd {
        let interval = d.health_interval.unwrap_or(args::DEFAULT_HEALTH_INTERVAL);
        spec = spec.health_check(["/bin/sh", "-c", cmd.as_str()], interval);
    }
    spec
}

/// Starts the container, drives its schedule until it exits or the deadline, and collects what
/// it showed. The guard removes the container whatever happens.
async fn run(spec: ContainerSpec, plan: &Plan) -> Result<Observed> {
    let c = spec.start().await?;
    let t0 = Instant::now();
    let driven = drive(&c, plan, t0).await?;
    let docker = c.state().await?;
    let logs = c.timed_logs().await?;
    c.remove().await?;
    let started = docker.started_at.clone().unwrap_or_default();
    let lines = logs
        .into_iter()
        .map(|l| Line { at: report::since(&started, &l.time), stderr: l.stderr, text: l.text })
        .collect();
    let ended = match driven.exit {
        Some(exit) => {
            // Docker's own times, from the same clock as the lines'; this process's otherwise.
            let docker_took =
                docker.finished_at.as_deref().and_then(|f| report::since(&started, f));
            Ended::Exited { code: exit.code, took: docker_took.unwrap_or(driven.ended_at) }
        }
        None => Ended::Deadline { at: driven.ended_at },
    };
    Ok(Observed {
        lines,
        sent: driven.sent,
        unsent: driven.unsent,
        ended,
        at_end: driven.at_end,
        docker,
    })
}

/// What the schedule did to one container.
struct Driven {
    sent: Vec<Sent>,
    unsent: Vec<Event>,
    /// `None`: still running at the deadline.
    exit: Option<Exit>,
    ended_at: Duration,
    at_end: Option<Snapshot>,
}

/// Sends the schedule's events at their times (from `t0`, the container's start), each after a
/// read of the process table, until the container exits or the deadline passes. A `docker stop`
/// runs beside the rest: later events still leave on time while it waits.
async fn drive(c: &Container, plan: &Plan, t0: Instant) -> Result<Driven> {
    let deadline = t0 + plan.deadline();
    let mut exit = std::pin::pin!(c.exited_within(plan.deadline()));
    let mut pending = plan.events.iter().peekable();
    let mut stops = FuturesUnordered::new();
    let mut sent: Vec<Sent> = Vec::new();
    let exit = loop {
        let next = pending.peek().map(|e| t0 + e.at.saturating_sub(SNAPSHOT_LEAD));
        tokio::select! {
            biased;
            exit = &mut exit => break exit?,
            Some(stopped) = stops.next() => settle(&mut sent, stopped),
            () = sleep_until(next.unwrap_or(deadline)), if next.is_some() => {
                let Some(event) = pending.next() else { continue };
                let before = snapshot(c, plan, t0).await;
                sleep_until(t0 + event.at).await;
                let at = t0.elapsed();
                let outcome = match &event.action {
                    Action::Kill(signal) => match c.kill(signal).await {
                        Ok(()) => "sent".to_string(),
                        Err(e) => format!("failed: {e:#}"),
                    },
                    Action::Stop(timeout) => {
                        let (i, timeout) = (sent.len(), *timeout);
                        stops.push(async move { (i, c.stop(timeout).await) });
                        "under way".to_string()
                    }
                };
                sent.push(Sent { event: event.clone(), at, before, outcome });
            }
        }
    };
    let ended_at = t0.elapsed();
    let at_end = match exit {
        Some(_) => {
            // A `docker stop` returns once Docker has seen the exit: moments later.
            while let Ok(Some(stopped)) = tokio::time::timeout(STOP_RETURN, stops.next()).await {
                settle(&mut sent, stopped);
            }
            None
        }
        None => Some(snapshot(c, plan, t0).await),
    };
    Ok(Driven { sent, unsent: pending.cloned().collect(), exit, ended_at, at_end })
}

/// Records how the `docker stop` of `sent[i]` ended.
fn settle(sent: &mut [Sent], (i, stopped): (usize, Result<Exit>)) {
    sent[i].outcome = match stopped {
        Ok(exit) => {
            format!("returned {:.3} s later, exit {}", exit.elapsed.as_secs_f64(), exit.code)
        }
        Err(e) => format!("failed: {e:#}"),
    };
}

/// The container's process table now, zombies included, and its health when it has a check:
/// read while it runs, because Docker reports every exited container as unhealthy.
async fn snapshot(c: &Container, plan: &Plan, t0: Instant) -> Snapshot {
    let out = c.exec(&["/bin/testkit", "ps"]).await;
    let at = t0.elapsed();
    let procs = match out {
        Ok(out) if out.code == 0 => Ok(Proc::parse_all(&out.stdout)),
        Ok(out) => Err(format!("testkit ps exited {}: {}", out.code, out.stderr.join(" | "))),
        Err(e) => Err(format!("{e:#}")),
    };
    let health = match plan.docker.health_cmd {
        Some(_) => c.state().await.ok().and_then(|s| s.health),
        None => None,
    };
    Snapshot { at, procs, health }
}
