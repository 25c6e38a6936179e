//! `make bench`: the Docker-side benchmark (issue 10). A plain program rather than a test
//! harness: it runs its measurements one after another, so that nothing else runs on the
//! engine meanwhile, and each runs through `run::benchmark` like every benchmark of the suite
//! (its headline figures go to `records.jsonl` with the verdict they earned). It measures the
//! init under test (`INIT_PROFILE`/`INIT_UNDER_TEST`, scinit by default) beside every other
//! base init of the table (`fixtures/inits.txt`): start, idle memory, stop, signal forwarding
//! and orphan reaping of PID 1, then scinit's restarts under load in both restart orders,
//! through the bridge and on the host network (`tests/integration/performance/`). The report
//! goes to `target/test-results/` (`report.rs`, `plots.rs`).
//!
//! `cargo test --test bench` is the full run; `-- --short` the short form that
//! `tests/run-suite` runs at the end of `make docker-test` (fewer samples, tini as the only
//! peer). It exits 1 when a measurement failed, 2 when it could not start, and 0 otherwise;
//! with other arguments (a test runner's `--list`, a test-name filter) it measures nothing.

// The harness of the container suite, compiled into this program too. This program uses part of
// the harness the scenario suite shares (no scenario macros, no verdict judgement), so the rest
// is unused here; and without a test harness the modules' unit tests are compiled out, leaving
// their imports unused (the suite runs them).
#[path = "../support/static_build.rs"]
#[allow(dead_code, unused_imports)]
mod static_build;

#[path = "../support/figures.rs"]
#[allow(dead_code)]
mod figures;

#[macro_use]
#[path = "../integration/infrastructure/mod.rs"]
#[allow(dead_code, unused_imports, unused_macros)]
mod infrastructure;

#[path = "../integration/utils/mod.rs"]
#[allow(dead_code, unused_imports)]
mod utils;

#[path = "../integration/performance/mod.rs"]
mod performance;

mod plots;
mod progress;
mod report;

use std::collections::BTreeMap;
use std::future::Future;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

use infrastructure::inits::{table, Capability, Init};
use infrastructure::{location, Network, Run};
use performance::restarts::{Order, Setup};
use performance::{forwarding, lifecycle, reaping, restarts};
use progress::Progress;
use report::{Failure, InitInfo, Measured, RunInfo};

/// How many samples each measurement takes, per init. The full run's counts keep `make bench`
/// near a minute and a half on two cores once the images are built (well under six on a busy
/// machine): 25 containers for start, memory and stop (about 0.5 s each), 2,000 signals and 500
/// orphans (enough for the interval of a p99 to close below the largest sample; about a second
/// each), 50 restarts per restart setup (scinit only, about 4 s each).
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// `full` or `short`: the trend compares runs of one kind only.
    pub mode: &'static str,
    pub containers: usize,
    pub signals: usize,
    pub orphans: usize,
    pub restarts: usize,
    /// Every init of the table as a peer, or tini alone (the ratios' reference).
    pub all_peers: bool,
}

const FULL: Plan = Plan {
    mode: "full",
    containers: 25,
    signals: 2000,
    orphans: 500,
    restarts: 50,
    all_peers: true,
};

/// The short form for the end of `make docker-test`: some fifteen seconds for a summary table of
/// this build beside tini, with too few samples for narrow intervals.
const SHORT: Plan = Plan {
    mode: "short",
    containers: 4,
    signals: 200,
    orphans: 20,
    restarts: 10,
    all_peers: false,
};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let plan = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        [] => FULL,
        ["--short"] => SHORT,
        // A test runner listing tests (cargo-nextest, `cargo test -- --list`): there are none.
        _ if args.iter().any(|a| a == "--list") => return ExitCode::SUCCESS,
        _ => {
            eprintln!(
                "bench: not measuring: unknown arguments {args:?} (`--short` for the short form)"
            );
            return ExitCode::SUCCESS;
        }
    };
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build();
    match runtime {
        Ok(runtime) => runtime.block_on(bench(plan)),
        Err(e) => {
            eprintln!("bench: cannot start the runtime: {e}");
            ExitCode::from(2)
        }
    }
}

async fn bench(plan: Plan) -> ExitCode {
    let inits = match inits(&plan) {
        Ok(inits) => inits,
        Err(e) => {
            eprintln!("bench: {e:#}");
            return ExitCode::from(2);
        }
    };
    // The first connection also learns where the engine is (which networks are reachable).
    if let Err(e) = infrastructure::engine::client().await {
        eprintln!("bench: {e:#}");
        return ExitCode::from(2);
    }
    let began = Instant::now();
    let time = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let subject = inits[0].clone();
    let setups: Vec<Setup> = Setup::ALL
        .into_iter()
        .filter(|s| can_restart(&subject, *s) && network_reachable(*s))
        .collect();
    let progress = Arc::new(Progress::new(3 * inits.len() + setups.len()));
    let mut busy = Vec::new();
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let default_hook = std::panic::take_hook();
    // A failed benchmark panics (`run::benchmark`); its message starts on a line of its own.
    std::panic::set_hook(Box::new(move |info| {
        progress::clear_line(terminal);
        default_hook(info)
    }));

    let mut failures = Vec::new();
    let lifecycle = each_init(
        (&progress, &mut busy),
        &inits,
        ("bench_lifecycle", plan.containers, "containers"),
        &mut failures,
        |run, n, p| async move { lifecycle::measure(&run, n, |k| p.tick(k)).await },
    )
    .await;
    let forwarding = each_init(
        (&progress, &mut busy),
        &inits,
        ("bench_forwarding", plan.signals, "signals"),
        &mut failures,
        |run, n, p| async move { forwarding::measure(&run, n, |k| p.tick(k)).await },
    )
    .await;
    let reaping = each_init(
        (&progress, &mut busy),
        &inits,
        ("bench_reaping", plan.orphans, "orphans"),
        &mut failures,
        |run, n, p| async move { reaping::measure(&run, n, |k| p.tick(k)).await },
    )
    .await;
    let mut restart_runs = Vec::new();
    for setup in setups {
        let name = format!("bench_restarts_{}", setup.key());
        let n = plan.restarts;
        let what = format!("restarts ({setup})");
        let outcome = step(
            (&progress, &mut busy),
            (&name, &what),
            &subject,
            (n, "restarts"),
            move |run, p| async move { restarts::measure(&run, setup, n, |k| p.tick(k)).await },
        )
        .await;
        match outcome {
            Ok(run) => restart_runs.push(run),
            Err(error) => failures.push(Failure { step: name, init: subject.label.clone(), error }),
        }
    }
    let measured = Measured { lifecycle, forwarding, reaping, restarts: restart_runs, failures };

    let info = RunInfo {
        plan,
        commit: report::commit(),
        busy,
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        time,
        elapsed: began.elapsed(),
        inits: inits.iter().map(InitInfo::of).collect(),
    };
    let failed = !measured.failures.is_empty();
    match report::write(&info, &measured) {
        Ok(summary) => print!("{summary}"),
        Err(e) => {
            eprintln!("bench: writing the report: {e:#}");
            return ExitCode::from(1);
        }
    }
    if failed {
        eprintln!("bench: {} measurement(s) failed (see above)", measured.failures.len());
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

/// The init under test first, then its peers: every other base row of the init table (a peer's
/// modes differ in whom they signal, not in what they cost), or tini alone.
fn inits(plan: &Plan) -> Result<Vec<Init>> {
    let mut inits = vec![Init::under_test()?.clone()];
    let peers: Vec<String> = if plan.all_peers {
        table()?.iter().filter(|row| !row.matrix_only).map(|row| row.name.clone()).collect()
    } else {
        vec!["tini".to_string()]
    };
    for name in peers {
        if !inits.iter().any(|i| i.label == name) {
            inits.push(Init::reference(&name).with_context(|| format!("the peer init {name}"))?);
        }
    }
    Ok(inits)
}

/// Whether `init` can serve `setup`'s restarts (scinit's capabilities).
/// Whether this process can reach a server on `setup`'s network: not the host network of an
/// engine that does not share this process's network (the README's "Where the suite runs").
fn network_reachable(setup: Setup) -> bool {
    let foreign = location::location().ok().and_then(|l| l.foreign_network.as_deref());
    // Unknown (no connection) counts as reachable: the measurement then says what is wrong.
    match (setup.network, foreign) {
        (Network::Host, Some(why)) => {
            eprintln!("bench: restarts on the host network are not measured here: {why}");
            false
        }
        _ => true,
    }
}

fn can_restart(init: &Init, setup: Setup) -> bool {
    let needs = match setup.order {
        Order::StopFirst => &[Capability::Ports, Capability::Restart][..],
        Order::StartFirst => &[Capability::Ports, Capability::Restart, Capability::StartFirst],
    };
    init.lacks(needs).is_none()
}

/// Runs the measurement `what` (benchmark name, samples, their unit) against each init in turn:
/// what each measured, by init label; a failure is noted in `failures` and the next init goes on.
async fn each_init<T, F, Fut>(
    (progress, busy): (&Arc<Progress>, &mut Vec<u32>),
    inits: &[Init],
    (name, of, unit): (&'static str, usize, &'static str),
    failures: &mut Vec<Failure>,
    measure: F,
) -> BTreeMap<String, T>
where
    T: Send + 'static,
    F: Fn(Run, usize, Arc<Progress>) -> Fut + Copy + Send + 'static,
    Fut: Future<Output = Result<T>> + Send + 'static,
{
    let mut measured = BTreeMap::new();
    for init in inits {
        let what = name.trim_start_matches("bench_");
        let body = move |run, p| measure(run, of, p);
        match step((progress, &mut *busy), (name, what), init, (of, unit), body).await {
            Ok(value) => {
                measured.insert(init.label.clone(), value);
            }
            Err(error) => {
                failures.push(Failure { step: name.to_string(), init: init.label.clone(), error })
            }
        }
    }
    measured
}

/// Runs one measurement of `init` as the benchmark `name` and returns what `body` measured, or
/// why it failed, with a progress line that calls it `what` and counts `of` samples in `unit`.
/// How many other tasks were runnable on the host as it began goes to `busy`.
async fn step<T, F, Fut>(
    (progress, busy): (&Arc<Progress>, &mut Vec<u32>),
    (name, what): (&str, &str),
    init: &Init,
    (of, unit): (usize, &'static str),
    body: F,
) -> Result<T, String>
where
    T: Send + 'static,
    F: FnOnce(Run, Arc<Progress>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<T>> + Send + 'static,
{
    // This task is the one runnable task of the benchmark between two measurements.
    busy.push(utils::proc::runnable_tasks().map_or(0, |n| n.saturating_sub(1)));
    progress.begin(format!("{what} · {}", init.label), of, unit);
    let ticks = progress.clone();
    let outcome = performance::benchmark_one(name, init, move |run| body(run, ticks)).await;
    progress.end(outcome.as_ref().err().map(String::as_str));
    outcome
}
