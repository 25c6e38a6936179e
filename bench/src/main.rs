//! scinit-bench: the performance gate (issue 10), with no Docker in the way.
//!
//! Instruction counts under callgrind are the gate's backbone: they repeat to a few
//! instructions where wall-clock figures on a shared two-core machine move by more than 10% from
//! run to run. Wall-clock figures are judged only as ratios to tini-static measured in the same
//! run, and only beyond the noise band the baseline saw. See the README's "Performance gate".

mod counts;
mod figures;
mod gate;
mod machine;
mod native;
mod pid1;
mod selftest;
mod static_build;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::figures::Figures;

const USAGE: &str = "\
usage: scinit-bench COMMAND [OPTIONS]

  counts    scinit's and tini's instruction counts under callgrind
  native    the wall-clock ratios scinit/tini (forwarding latency, idle memory)
  check     everything, against the baseline; exits 1 if a figure regressed
  baseline  everything, written to the baseline (with the date and the machine)
  selftest  builds scinit with one injected regression at a time and checks each
  profile   one workload under callgrind, with symbols, for callgrind_annotate
            (WORKLOAD: exec, signals, orphans or restarts)

options:
  --baseline PATH   the baseline (default fixtures/perf-baseline.json)
  --scinit PATH     measure this scinit instead of building it (counts, native, check)
  --rounds N        rounds of wall-clock measurements (default 5; baseline: 30)
  --repeat N        selftest: checks per variant (default 1)
  --scale F         selftest: regressions F times the gate's 10% (default 1)
";

/// Rounds of wall-clock measurements for a check, and for a baseline: the range of the median
/// of `CHECK_ROUNDS` of its rounds is the noise band a check is judged against.
const CHECK_ROUNDS: usize = 5;
const BASELINE_ROUNDS: usize = 30;
/// Times a baseline measures the counts, to record how much they move.
const BASELINE_COUNT_RUNS: usize = 3;

struct Options {
    command: String,
    workload: Option<String>,
    baseline: PathBuf,
    scinit: Option<PathBuf>,
    rounds: Option<usize>,
    repeat: usize,
    scale: f64,
}

fn main() {
    let code = match parse(std::env::args().skip(1).collect()).and_then(run) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("scinit-bench: {error:#}");
            2
        }
    };
    std::process::exit(code);
}

fn parse(args: Vec<String>) -> Result<Options> {
    let mut args = args.into_iter();
    let command = args.next().unwrap_or_default();
    let mut options = Options {
        command,
        workload: None,
        baseline: static_build::root().join("fixtures/perf-baseline.json"),
        scinit: None,
        rounds: None,
        repeat: 1,
        scale: 1.0,
    };
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--baseline" => options.baseline = value()?.into(),
            "--scinit" => options.scinit = Some(value()?.into()),
            "--rounds" => options.rounds = Some(value()?.parse().context("--rounds")?),
            "--repeat" => options.repeat = value()?.parse().context("--repeat")?,
            "--scale" => options.scale = value()?.parse().context("--scale")?,
            "-h" | "--help" => options.command = "help".into(),
            _ if options.command == "profile" && options.workload.is_none() => {
                options.workload = Some(arg)
            }
            _ => bail!("unknown argument {arg:?}\n{USAGE}"),
        }
    }
    Ok(options)
}

fn run(options: Options) -> Result<i32> {
    let started = Instant::now();
    let work = static_build::bench_dir().join("work");
    match options.command.as_str() {
        "counts" => {
            let (scinit, testkit) = binaries(&options)?;
            print!("{}", counts_table(&figures::counts(&scinit, &testkit, &work)?));
        }
        "native" => {
            let (scinit, testkit) = binaries(&options)?;
            let rounds = options.rounds.unwrap_or(CHECK_ROUNDS);
            let ratios = figures::ratios(&scinit, &testkit, rounds, CHECK_ROUNDS, &work)?;
            print!("{}", ratios_table(&ratios));
        }
        "check" => {
            let baseline = load(&options.baseline)?;
            let (scinit, testkit) = binaries(&options)?;
            let rounds = options.rounds.unwrap_or(CHECK_ROUNDS);
            let now = measure(&scinit, &testkit, rounds, &work)?;
            println!("{}{}", counts_table(&now.counts), ratios_table(&now.ratios));
            let verdicts = gate::judge(&baseline, &now).map_err(anyhow::Error::msg)?;
            print!("{}", gate::table(&verdicts));
            println!("(scinit-bench check took {:.0?})", started.elapsed());
            println!("{}", gate::last_line(&verdicts));
            return Ok(if verdicts.iter().any(|v| v.regressed) { 1 } else { 0 });
        }
        "baseline" => write_baseline(&options, &work)?,
        "selftest" => {
            let baseline = load(&options.baseline)?;
            let passed =
                selftest::run(&baseline, options.repeat, CHECK_ROUNDS, options.scale, &work)?;
            println!("(scinit-bench selftest took {:.0?})", started.elapsed());
            return Ok(if passed { 0 } else { 1 });
        }
        "profile" => {
            let workload = options.workload.as_deref().unwrap_or("signals");
            let workload = match workload {
                "exec" => counts::Workload::Exec,
                "signals" => counts::Workload::Signals(1000),
                "orphans" => counts::Workload::Orphans(500),
                "restarts" => counts::Workload::Restarts(50),
                other => bail!("unknown workload {other:?} (exec, signals, orphans, restarts)"),
            };
            let scinit = static_build::with_symbols()?;
            let testkit = static_build::standard()?.testkit;
            let dir = static_build::bench_dir().join("profile").join("work");
            let total = counts::run(&scinit, &testkit, workload, &dir)?;
            println!("{workload:?}: {total} instructions");
            println!("callgrind_annotate {}", dir.join("callgrind.1").display());
        }
        "help" | "" => print!("{USAGE}"),
        other => bail!("unknown command {other:?}\n{USAGE}"),
    }
    Ok(0)
}

/// scinit (`--scinit`, or the standard build) and testkit (always built).
fn binaries(options: &Options) -> Result<(PathBuf, PathBuf)> {
    let built = static_build::standard()?;
    Ok((options.scinit.clone().unwrap_or(built.scinit), built.testkit))
}

/// Every figure the gate judges.
pub fn measure(scinit: &Path, testkit: &Path, rounds: usize, work: &Path) -> Result<Figures> {
    Ok(Figures {
        counts: figures::counts(scinit, testkit, &work.join("callgrind"))?,
        ratios: figures::ratios(scinit, testkit, rounds, CHECK_ROUNDS, &work.join("native"))?,
    })
}

pub fn load(path: &Path) -> Result<Figures> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{} (make bench-baseline writes it)", path.display()))?;
    let value: Value = serde_json::from_str(&text).with_context(|| path.display().to_string())?;
    Figures::from_json(&value).with_context(|| path.display().to_string())
}

/// Measures everything (the counts several times, to record how much they move) and writes the
/// baseline.
fn write_baseline(options: &Options, work: &Path) -> Result<()> {
    let (scinit, testkit) = binaries(options)?;
    let mut runs = Vec::new();
    for _ in 0..BASELINE_COUNT_RUNS {
        runs.push(figures::counts(&scinit, &testkit, &work.join("callgrind"))?);
    }
    let rounds = options.rounds.unwrap_or(BASELINE_ROUNDS);
    let ratios = figures::ratios(&scinit, &testkit, rounds, CHECK_ROUNDS, &work.join("native"))?;
    // The median run of each count, and the spread of all runs.
    let mut counts = runs[0].clone();
    let mut spread = serde_json::Map::new();
    for (i, count) in counts.iter_mut().enumerate() {
        let values: Vec<f64> = runs.iter().map(|run| run[i].scinit).collect();
        count.scinit = native::percentile(&values, 50.0);
        let tinis: Vec<f64> = runs.iter().filter_map(|run| run[i].tini).collect();
        count.tini = (!tinis.is_empty()).then(|| native::percentile(&tinis, 50.0));
        let (min, max) =
            values.iter().fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
        spread.insert(count.name.clone(), json!([min, max]));
    }
    let figures = Figures { counts, ratios };
    let mut baseline = json!({
        "about": "The performance gate's baseline: written by `make bench-baseline` \
                  (scinit-bench baseline), judged by `make bench-check`. See the README's \
                  \"Performance gate\".",
        "recorded": machine::describe(),
        "workloads": {
            "signals": counts::SIGNALS,
            "orphans": counts::ORPHANS,
            "restarts": counts::RESTARTS,
            "latency_samples": native::SAMPLES,
            "rounds": rounds,
            "rounds_per_check": CHECK_ROUNDS,
            "count_runs": BASELINE_COUNT_RUNS,
        },
        "instruction_spread": spread,
    });
    if let (Some(out), Value::Object(measured)) = (baseline.as_object_mut(), figures.to_json()) {
        out.extend(measured);
    }
    let text = serde_json::to_string_pretty(&baseline)? + "\n";
    std::fs::write(&options.baseline, text)
        .with_context(|| options.baseline.display().to_string())?;
    print!("{}", counts_table(&figures.counts));
    print!("{}", ratios_table(&figures.ratios));
    println!("baseline written to {}", options.baseline.display());
    Ok(())
}

fn counts_table(counts: &[figures::Count]) -> String {
    let mut out =
        format!("{:<16} {:>12} {:>12} {:>8}\n", "instructions", "scinit", "tini", "ratio");
    for c in counts {
        let (tini, ratio) = match c.tini {
            Some(t) => (format!("{t:.1}"), format!("{:.2}x", c.scinit / t)),
            None => ("-".into(), "-".into()),
        };
        out.push_str(&format!("{:<16} {:>12.1} {:>12} {:>8}\n", c.name, c.scinit, tini, ratio));
    }
    out
}

fn ratios_table(ratios: &[figures::Ratio]) -> String {
    let mut out = format!(
        "{:<16} {:>10} {:>10} {:>8} {:>13} {:>13}\n",
        "wall clock", "scinit", "tini", "ratio", "band", "rounds"
    );
    for r in ratios {
        let low = r.rounds.iter().copied().fold(f64::INFINITY, f64::min);
        let high = r.rounds.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        out.push_str(&format!(
            "{:<16} {:>7.1} {:<2} {:>7.1} {:<2} {:>7.3} {:>6.3}-{:.3} {:>6.3}-{:.3}\n",
            r.name, r.scinit, r.unit, r.tini, r.unit, r.ratio, r.min, r.max, low, high
        ));
    }
    out
}
