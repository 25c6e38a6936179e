//! The benchmark's report, in `target/test-results/` (or `$SCINIT_TEST_RESULTS`):
//!
//! * `performance.md`: the Performance Summary (one row per metric: the init under test, each
//!   peer, the ratio to tini, the baseline and the status), scinit's restarts under load, the
//!   suite's own wall time, the plots, the trend over the last runs, and the figures the
//!   scenarios recorded in the last `make docker-test` (a parallel run: measured under load);
//! * `performance.json`: the same, with every sample;
//! * `history.jsonl`: one line appended per run (the medians), never rewritten;
//! * the plots (`plots.rs`).
//!
//! Every figure is a median (or the percentile named) with a 95 % confidence interval from order
//! statistics (`utils/stats.rs`). The baseline comes from `fixtures/perf-baseline.json` when that
//! file has a number under the metric's key; a status compares the interval with it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::{json, Value};

use crate::infrastructure::results::results_dir;
use crate::infrastructure::Init;
use crate::performance::forwarding::Forwarding;
use crate::performance::lifecycle::{self, BinaryFile, Lifecycle};
use crate::performance::reaping::Reaping;
use crate::performance::restarts::RestartRun;
use crate::static_build::workspace_root;
use crate::utils::stats::{longest_gap_per_window, median_ci, percentile, percentile_ci, Estimate};
use crate::Plan;

/// Confidence level of every interval.
const LEVEL: f64 = 0.95;
/// How far outside the baseline (either way) an interval must lie to change the status.
const TOLERANCE: f64 = 0.10;
/// Runs shown in the trend.
const TREND_RUNS: usize = 8;
/// The peer every ratio is taken against.
const REFERENCE: &str = "tini";
/// Where a measurement step's records are told apart from the scenarios'.
const BENCH_PREFIX: &str = "bench_";

/// What the run measured, by init label.
pub struct Measured {
    pub lifecycle: BTreeMap<String, Lifecycle>,
    pub forwarding: BTreeMap<String, Forwarding>,
    pub reaping: BTreeMap<String, Reaping>,
    pub restarts: Vec<RestartRun>,
    pub failures: Vec<Failure>,
}

/// A measurement that did not work.
pub struct Failure {
    pub step: String,
    pub init: String,
    pub error: String,
}

/// One init of the run.
pub struct InitInfo {
    pub label: String,
    /// `None` for Docker's own init (or a binary that could not be read).
    pub binary: Option<BinaryFile>,
}

impl InitInfo {
    pub fn of(init: &Init) -> InitInfo {
        InitInfo { label: init.label.clone(), binary: lifecycle::binary(init).ok().flatten() }
    }
}

/// The run itself.
pub struct RunInfo {
    pub plan: Plan,
    /// The checked-out commit (`commit()`).
    pub commit: Option<String>,
    /// How many other tasks were runnable on the host as each measurement began, and its CPU
    /// count: other work on the machine disturbs every figure.
    pub busy: Vec<u32>,
    pub cpus: usize,
    /// Unix seconds at the start.
    pub time: u64,
    pub elapsed: Duration,
    /// The init under test first, then the peers.
    pub inits: Vec<InitInfo>,
}

impl RunInfo {
    fn subject(&self) -> &str {
        &self.inits[0].label
    }

    fn busy_median(&self) -> f64 {
        let busy: Vec<f64> = self.busy.iter().map(|&n| f64::from(n)).collect();
        percentile(&busy, 50.0)
    }
}

/// One cell of the summary: an init's figure for a metric.
#[derive(Debug, Clone, Copy)]
enum Cell {
    Estimate(Estimate),
    /// A single figure without an interval: a file's size, or one reading.
    Exact {
        value: f64,
        dynamic: bool,
    },
    /// The metric does not apply (Docker's init has no binary of its own).
    NotApplicable,
    /// Not measured: the step failed.
    Missing,
}

impl Cell {
    fn value(self) -> Option<f64> {
        match self {
            Cell::Estimate(e) => Some(e.value),
            Cell::Exact { value, .. } => Some(value),
            _ => None,
        }
    }

    fn text(self) -> String {
        match self {
            Cell::Estimate(e) if e.low == e.high => number(e.value),
            Cell::Estimate(e) => {
                format!("{} [{}–{}]", number(e.value), number(e.low), number(e.high))
            }
            Cell::Exact { value, dynamic } => {
                format!("{}{}", number(value), if dynamic { " ¹" } else { "" })
            }
            Cell::NotApplicable => "n/a".into(),
            Cell::Missing => "–".into(),
        }
    }

    fn json(self) -> Value {
        match self {
            Cell::Estimate(e) => json!({
                "value": e.value, "low": e.low, "high": e.high,
                "coverage": e.coverage, "samples": e.samples,
            }),
            Cell::Exact { value, dynamic } => json!({ "value": value, "dynamic": dynamic }),
            Cell::NotApplicable => json!("n/a"),
            Cell::Missing => Value::Null,
        }
    }
}

/// A row of the summary.
struct Metric {
    /// The name in `performance.json`, `history.jsonl` and the baseline file: the figure's name in
    /// `records.jsonl` too, but for the binary's size, recorded in bytes.
    key: &'static str,
    title: &'static str,
    unit: &'static str,
    /// One per init, in the run's order.
    cells: Vec<Cell>,
}

/// A row of the restart table: one setup.
struct RestartRow {
    setup: String,
    key: String,
    restarts: usize,
    requests: usize,
    failed: usize,
    longest_gap_ms: f64,
    gap_per_restart_ms: Option<Estimate>,
    p50_ms: f64,
    p99_ms: Option<Estimate>,
    max_ms: f64,
    gaps_ms: Vec<f64>,
}

/// Writes every file of the report and returns the Performance Summary for the terminal.
pub fn write(info: &RunInfo, measured: &Measured) -> Result<String> {
    let dir = results_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let metrics = metrics(info, measured);
    let restarts: Vec<RestartRow> = measured.restarts.iter().map(restart_row).collect();
    let baseline = read_json(&workspace_root().join("fixtures/perf-baseline.json"))?;
    let suite = Suite::read(&dir)?;
    let entry = history_entry(info, &metrics, &restarts, &suite);
    let history = append_history(&dir, &entry)?;
    let plots = crate::plots::draw(&dir, info, measured)?;

    let summary = render_summary(info, &metrics, &restarts, &suite, baseline.as_ref());
    let mut md = render_header(measured);
    md.push_str(&summary);
    md.push_str(&render_plots(&plots));
    md.push_str(&render_trend(info, &history));
    md.push_str(&render_parallel_figures(&suite));
    md.push_str(&render_failures(measured));
    let path = dir.join("performance.md");
    std::fs::write(&path, &md).with_context(|| format!("writing {}", path.display()))?;

    let document = json!({
        "time": info.time,
        "commit": info.commit,
        "mode": info.plan.mode,
        "elapsed_s": info.elapsed.as_secs_f64(),
        "cpus": info.cpus,
        "other_runnable_tasks": info.busy,
        "plan": {
            "containers": info.plan.containers, "signals": info.plan.signals,
            "orphans": info.plan.orphans, "restarts": info.plan.restarts,
        },
        "confidence": LEVEL,
        "inits": info.inits.iter().map(|i| json!({
            "label": i.label,
            "binary_bytes": i.binary.map(|b| b.bytes),
            "dynamic": i.binary.map(|b| b.dynamic),
        })).collect::<Vec<_>>(),
        "metrics": metrics.iter().map(|m| metric_json(info, m, baseline.as_ref())).collect::<Vec<_>>(),
        "restarts": restarts.iter().map(restart_json).collect::<Vec<_>>(),
        "suite": suite.json(),
        "samples": samples_json(measured),
        "failures": measured.failures.iter().map(|f| json!({
            "step": f.step, "init": f.init, "error": f.error,
        })).collect::<Vec<_>>(),
    });
    let path = dir.join("performance.json");
    let text = serde_json::to_string_pretty(&document)?;
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;

    Ok(format!("\n{summary}\nreport: {}\n", dir.join("performance.md").display()))
}

// --- The figures ---------------------------------------------------------------------------

fn metrics(info: &RunInfo, m: &Measured) -> Vec<Metric> {
    let per_init = |f: &dyn Fn(&str) -> Option<Estimate>| -> Vec<Cell> {
        info.inits.iter().map(|i| f(&i.label).map_or(Cell::Missing, Cell::Estimate)).collect()
    };
    let lifecycle = |pick: fn(&Lifecycle) -> &Vec<f64>| {
        per_init(&|label| m.lifecycle.get(label).and_then(|l| median_ci(pick(l))))
    };
    let forward = |p: f64| {
        per_init(&|label| {
            m.forwarding.get(label).and_then(|f| percentile_ci(&f.latencies_us, p, LEVEL))
        })
    };
    let reap = |p: f64| {
        per_init(&|label| {
            m.reaping.get(label).and_then(|r| percentile_ci(&r.latencies_us, p, LEVEL))
        })
    };
    let binary = info
        .inits
        .iter()
        .map(|i| match i.binary {
            Some(b) => Cell::Exact { value: b.bytes as f64 / 1024.0, dynamic: b.dynamic },
            None => Cell::NotApplicable,
        })
        .collect();
    let container = info
        .inits
        .iter()
        .map(|i| {
            m.forwarding
                .get(&i.label)
                .map_or(Cell::Missing, |f| Cell::Exact { value: f.container_kib, dynamic: false })
        })
        .collect();
    let row = |key, title, unit, cells| Metric { key, title, unit, cells };
    vec![
        row("binary_size_kib", "binary size", "KiB", binary),
        row("idle_rss", "idle RSS of PID 1", "KiB", lifecycle(|l| &l.rss_kib)),
        row("idle_anonymous", "idle anonymous memory", "KiB", lifecycle(|l| &l.anonymous_kib)),
        row("threads", "threads of PID 1", "count", lifecycle(|l| &l.threads)),
        row("container_memory", "container memory (Docker stats) ²", "KiB", container),
        row(
            "start_ms",
            "start: run request → child's first instruction",
            "ms",
            lifecycle(|l| &l.start_ms),
        ),
        row("forward_median", "forwarding p50", "µs", forward(50.0)),
        row("forward_p90", "forwarding p90", "µs", forward(90.0)),
        row("forward_p99", "forwarding p99", "µs", forward(99.0)),
        row("stop_ms", "stop: docker kill -s TERM → exited", "ms", lifecycle(|l| &l.stop_ms)),
        row("reap_median", "orphan reap p50: exit → zombie gone", "µs", reap(50.0)),
        row("reap_p99", "orphan reap p99", "µs", reap(99.0)),
    ]
}

fn restart_row(run: &RestartRun) -> RestartRow {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let samples = &run.timeline.samples;
    let completions: Vec<f64> =
        samples.iter().filter(|s| s.outcome.is_ok()).map(|s| ms(s.sent_at + s.latency)).collect();
    let marks: Vec<f64> = run.marks.iter().map(|m| ms(*m)).collect();
    let gaps_ms: Vec<f64> =
        longest_gap_per_window(&completions, &marks).into_iter().filter(|g| !g.is_nan()).collect();
    let latencies: Vec<f64> = samples.iter().map(|s| ms(s.latency)).collect();
    RestartRow {
        setup: run.setup.to_string(),
        key: run.setup.key(),
        restarts: run.restarts,
        requests: run.timeline.total(),
        failed: run.timeline.failures().len(),
        longest_gap_ms: ms(run.timeline.longest_gap()),
        gap_per_restart_ms: median_ci(&gaps_ms),
        p50_ms: percentile(&latencies, 50.0),
        p99_ms: percentile_ci(&latencies, 99.0, LEVEL),
        max_ms: ms(run.timeline.max_latency()),
        gaps_ms,
    }
}

/// The subject's figure over tini's.
fn ratio(info: &RunInfo, metric: &Metric) -> Option<f64> {
    let reference = info.inits.iter().position(|i| i.label == REFERENCE)?;
    let subject = metric.cells[0].value()?;
    let reference = metric.cells[reference].value()?;
    (reference > 0.0).then(|| subject / reference)
}

/// The performance gate's baseline for a wall-clock figure: the init under test's ratio to tini
/// and the band it moved in over the gate's rounds (`fixtures/perf-baseline.json`, `ratios`).
#[derive(Debug, Clone, Copy)]
struct BaselineRatio {
    ratio: f64,
    min: f64,
    max: f64,
}

impl BaselineRatio {
    fn of(doc: Option<&Value>, key: &str) -> Option<BaselineRatio> {
        let entry = &doc?["ratios"][key];
        Some(BaselineRatio {
            ratio: entry["ratio"].as_f64()?,
            min: entry["min"].as_f64()?,
            max: entry["max"].as_f64()?,
        })
    }

    fn text(self) -> String {
        format!("{} [{}–{}]", number(self.ratio), number(self.min), number(self.max))
    }
}

/// The figures whose ratio this report judges against the gate's baseline: the memory of PID 1,
/// which other work on the machine does not move. Latency ratios under Docker move with
/// whatever else runs, so they are judged by `make bench-check`, natively, where the gate
/// controls for a busy machine; here their baseline is shown for reference only.
const JUDGED: [&str; 2] = ["idle_rss", "idle_anonymous"];

/// The gate's rule for a ratio: `regressed` when it is 10 % or more above the baseline ratio
/// and outside its noise band, `improved` in the mirror case, `ok` otherwise; `-` without a
/// baseline or a ratio, and for figures this report does not judge (see [`JUDGED`]). Lower is
/// better for every metric.
fn status(key: &str, ratio: Option<f64>, base: Option<BaselineRatio>) -> &'static str {
    if !JUDGED.contains(&key) {
        return "-";
    }
    match (ratio, base) {
        (Some(r), Some(b)) if r >= b.ratio * (1.0 + TOLERANCE) && r > b.max => "regressed",
        (Some(r), Some(b)) if r <= b.ratio * (1.0 - TOLERANCE) && r < b.min => "improved",
        (Some(_), Some(_)) => "ok",
        _ => "-",
    }
}

// --- The suite's own time ------------------------------------------------------------------

/// The last `make docker-test`: the scenarios' records of its session (`records.jsonl`) and,
/// when `tests/run-suite` wrote it for that session, `suite-time.json` (its wall time up to the
/// benchmark step, builds included).
struct Suite {
    /// The session's records (the benchmark steps' left out).
    records: Vec<Value>,
    /// `suite-time.json`, if it is this session's.
    time: Option<Value>,
}

impl Suite {
    fn read(dir: &Path) -> Result<Suite> {
        let mut records = scenario_records(dir)?;
        // The suite's sessions are named; scenarios run by hand (`cargo test`) have none.
        let latest = records
            .iter()
            .filter(|r| r["session"].as_str().is_some_and(|s| !s.is_empty()))
            .max_by_key(|r| r["time"].as_u64().unwrap_or(0))
            .map(|r| r["session"].clone());
        records.retain(|r| latest.as_ref() == Some(&r["session"]));
        let time = read_json(&dir.join("suite-time.json"))?
            .filter(|t| latest.as_ref() == Some(&t["session"]));
        Ok(Suite { records, time })
    }

    /// The wall time: `tests/run-suite`'s own count, or else the span of the records (from the
    /// start of the first scenario to the end of the last; builds left out).
    fn seconds(&self) -> Option<f64> {
        if let Some(seconds) = self.time.as_ref().and_then(|t| t["seconds"].as_f64()) {
            return Some(seconds);
        }
        self.span()
    }

    fn span(&self) -> Option<f64> {
        let ends = self.records.iter().filter_map(|r| r["time"].as_f64());
        let starts = self.records.iter().filter_map(|r| {
            Some(r["time"].as_f64()? - r["duration_ms"].as_f64().unwrap_or(0.0) / 1000.0)
        });
        Some(ends.reduce(f64::max)? - starts.reduce(f64::min)?)
    }

    fn slowest(&self) -> Option<&Value> {
        self.records.iter().max_by_key(|r| r["duration_ms"].as_u64().unwrap_or(0))
    }

    fn json(&self) -> Value {
        json!({
            "session": self.records.first().map(|r| r["session"].clone()),
            "seconds": self.seconds(),
            "run_suite": self.time,
            "records_span_s": self.span(),
            "scenario_runs": self.records.len(),
            "slowest": self.slowest().map(|r| json!({
                "scenario": r["scenario"], "init": r["init"], "seconds": seconds(&r["duration_ms"]),
            })),
        })
    }

    fn render(&self) -> String {
        let Some(first) = self.records.first() else {
            return "The suite: no `make docker-test` left its records yet.\n".into();
        };
        let mut out = match &self.time {
            Some(time) => format!(
                "The suite: the last `make docker-test` (session `{}`, {}, inits {}, {} tests at \
                 once) took {} up to its benchmark step, builds included",
                text(&first["session"]),
                utc(time["time"].as_u64().unwrap_or(0)),
                text(&time["inits"]),
                text(&time["threads"]),
                duration(self.seconds().unwrap_or(0.0)),
            ),
            None => format!(
                "The suite: the records of the last `make docker-test` (session `{}`) span {}, \
                 builds left out",
                text(&first["session"]),
                duration(self.span().unwrap_or(0.0)),
            ),
        };
        let _ = write!(out, ": {} scenario runs", self.records.len());
        if let Some(r) = self.slowest() {
            let _ = write!(
                out,
                "; the slowest, `{}` against {}, {:.1} s",
                text(&r["scenario"]),
                text(&r["init"]),
                seconds(&r["duration_ms"])
            );
        }
        out.push_str(".\n");
        out
    }
}

/// Every record of `records.jsonl` but the benchmark steps'.
fn scenario_records(dir: &Path) -> Result<Vec<Value>> {
    let path = dir.join("records.jsonl");
    let Ok(text) = std::fs::read_to_string(&path) else { return Ok(Vec::new()) };
    let records = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str::<Value>(l).with_context(|| format!("{}", path.display())))
        .collect::<Result<Vec<_>>>()?;
    Ok(records
        .into_iter()
        .filter(|r| !r["scenario"].as_str().unwrap_or("").starts_with(BENCH_PREFIX))
        .collect())
}

// --- History -------------------------------------------------------------------------------

fn history_entry(
    info: &RunInfo,
    metrics: &[Metric],
    restarts: &[RestartRow],
    suite: &Suite,
) -> Value {
    let medians: serde_json::Map<String, Value> = info
        .inits
        .iter()
        .enumerate()
        .map(|(n, init)| {
            let values: serde_json::Map<String, Value> = metrics
                .iter()
                .filter_map(|m| Some((m.key.to_string(), json!(m.cells[n].value()?))))
                .collect();
            (init.label.clone(), Value::Object(values))
        })
        .collect();
    let restarts: serde_json::Map<String, Value> = restarts
        .iter()
        .map(|r| {
            let figures = json!({
                "longest_gap_ms": r.longest_gap_ms,
                "p99_ms": r.p99_ms.map(|e| e.value),
                "max_ms": r.max_ms,
                "failed": r.failed,
            });
            (r.key.clone(), figures)
        })
        .collect();
    json!({
        "time": info.time,
        "commit": info.commit,
        "mode": info.plan.mode,
        "subject": info.subject(),
        "medians": medians,
        "restarts": restarts,
        "docker_test_s": suite.seconds(),
        "busy": info.busy_median(),
    })
}

/// Appends `entry` to `history.jsonl` and returns every entry, this one last.
fn append_history(dir: &Path, entry: &Value) -> Result<Vec<Value>> {
    let path = dir.join("history.jsonl");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    writeln!(file, "{entry}").with_context(|| format!("writing {}", path.display()))?;
    let text = std::fs::read_to_string(&path)?;
    // A line that does not parse (a run killed mid-write) is skipped, not fatal.
    Ok(text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect())
}

// --- Rendering -----------------------------------------------------------------------------

fn render_header(measured: &Measured) -> String {
    let mut out = format!(
        "# Performance\n\n`make bench` runs one measurement at a time with nothing else on the \
         engine; the short form is the benchmark step of `make docker-test`. Every figure is a \
         median (or the percentile named) with its 95 % confidence interval from order \
         statistics, `median [low–high]`; lower is better throughout. The ratio is the init \
         under test over {REFERENCE}. The baseline is the performance gate's ratio to {REFERENCE} for \
         the same figure, with the band it moved in (`fixtures/perf-baseline.json`, measured \
         natively, without Docker in the path); the status applies the gate's rule to this run's \
         ratio for the memory figures (regressed when it is {:.0} % or more above the baseline and \
         outside its band); latency is judged natively by `make bench-check`.\n",
        TOLERANCE * 100.0,
    );
    if !measured.failures.is_empty() {
        let _ = write!(
            out,
            "\n**{} measurement(s) failed**: see Failures at the end.\n",
            measured.failures.len()
        );
    }
    out
}

/// What this run was, in one paragraph: it heads the summary, which is also printed alone.
fn run_line(info: &RunInfo) -> String {
    let p = &info.plan;
    let peers: Vec<&str> = info.inits[1..].iter().map(|i| i.label.as_str()).collect();
    let line = format!(
        "{} of `make bench`, {}, commit {}, {}: {} against {}. Per init {} containers \
         (start, idle memory, stop), {} signals and {} orphans; {} restarts per restart setup.",
        if p.mode == "full" { "A full run" } else { "The short form" },
        utc(info.time),
        info.commit.as_deref().unwrap_or("unknown"),
        duration(info.elapsed.as_secs_f64()),
        info.subject(),
        peers.join(", "),
        p.containers,
        p.signals,
        p.orphans,
        p.restarts,
    );
    let (busy, most) = (info.busy_median(), info.busy.iter().max().copied().unwrap_or(0));
    let seen = format!(
        "other tasks runnable on the host as each measurement began: {busy:.0} (median), {most} \
         at most, on {} CPUs",
        info.cpus
    );
    // The count includes the engine's and the harness's own threads, which are runnable around
    // every measurement: only more runnable tasks than CPUs means something had to wait.
    if busy > info.cpus as f64 {
        format!("{line} **Measured under load**: {seen}; other work disturbed the figures.")
    } else {
        format!("{line} No more tasks were runnable than there are CPUs ({seen}).")
    }
}

fn render_summary(
    info: &RunInfo,
    metrics: &[Metric],
    restarts: &[RestartRow],
    suite: &Suite,
    baseline: Option<&Value>,
) -> String {
    let subject = info.subject();
    let mut header = vec!["metric".to_string()];
    header.extend(info.inits.iter().map(|i| i.label.clone()));
    header.extend([format!("{subject}/{REFERENCE}"), "baseline".into(), "status".into()]);
    let mut rows = vec![header];
    for m in metrics {
        let base = BaselineRatio::of(baseline, m.key);
        let ratio = ratio(info, m);
        let mut row = vec![format!("{} ({})", m.title, m.unit)];
        row.extend(m.cells.iter().map(|c| c.text()));
        row.push(ratio.map_or("-".into(), |r| format!("{r:.2}")));
        row.push(base.map_or("-".into(), BaselineRatio::text));
        row.push(status(m.key, ratio, base).into());
        rows.push(row);
    }
    let mut out = format!("\n## Performance Summary\n\n{}\n\n", run_line(info));
    out.push_str(&markdown_table(&rows));
    if info.inits.iter().any(|i| i.binary.is_some_and(|b| b.dynamic)) {
        out.push_str("\n¹ dynamically linked: the libraries it loads are not counted.  ");
    }
    out.push_str("\n² one sample per init, after the forwarding benchmark's signals.\n");
    if !restarts.is_empty() {
        let _ = write!(
            out,
            "\nRestarts under load ({subject}; four clients, one request every 10 ms each; all \
             figures measured under that load): SIGHUP restarts of an echo server on inherited \
             sockets, through a published port (the bridge, docker-proxy) or on the host \
             network, in each restart order. The gap per restart is the longest wait for a reply \
             that each restart caused.\n\n"
        );
        out.push_str(&markdown_table(&restart_rows(restarts)));
    }
    out.push('\n');
    out.push_str(&suite.render());
    out
}

fn restart_rows(restarts: &[RestartRow]) -> Vec<Vec<String>> {
    let header = [
        "setup",
        "restarts",
        "requests",
        "failed",
        "longest gap (ms)",
        "gap per restart (ms)",
        "p50 (ms)",
        "p99 (ms)",
        "max (ms)",
    ];
    let mut rows = vec![header.iter().map(|h| h.to_string()).collect::<Vec<_>>()];
    for r in restarts {
        let estimate = |e: Option<Estimate>| e.map_or(Cell::Missing, Cell::Estimate).text();
        rows.push(vec![
            r.setup.clone(),
            r.restarts.to_string(),
            r.requests.to_string(),
            r.failed.to_string(),
            number(r.longest_gap_ms),
            estimate(r.gap_per_restart_ms),
            number(r.p50_ms),
            estimate(r.p99_ms),
            number(r.max_ms),
        ]);
    }
    rows
}

fn render_plots(plots: &[(String, String)]) -> String {
    let mut out = String::from("\n## Plots\n\n");
    for (title, file) in plots {
        let _ = writeln!(out, "- [{title}]({file})");
    }
    for (title, file) in plots {
        let _ = write!(out, "\n![{title}]({file})\n");
    }
    out
}

/// The subject's medians over the last runs of the same kind (full or short), oldest first.
fn render_trend(info: &RunInfo, history: &[Value]) -> String {
    let runs: Vec<&Value> =
        history.iter().filter(|h| h["mode"].as_str() == Some(info.plan.mode)).collect();
    let runs = &runs[runs.len().saturating_sub(TREND_RUNS)..];
    let columns: [(&str, &str); 7] = [
        ("start_ms", "start ms"),
        ("forward_median", "fwd p50 µs"),
        ("forward_p99", "fwd p99 µs"),
        ("stop_ms", "stop ms"),
        ("reap_median", "reap p50 µs"),
        ("idle_rss", "idle RSS KiB"),
        ("binary_size_kib", "binary KiB"),
    ];
    let mut header: Vec<String> = ["run", "commit", "init"].iter().map(|s| s.to_string()).collect();
    header.extend(columns.iter().map(|(_, h)| h.to_string()));
    header.extend(["worst longest gap ms", "docker-test s", "other tasks"].map(String::from));
    let mut rows = vec![header];
    for run in runs {
        let subject = run["subject"].as_str().unwrap_or("");
        let mut row =
            vec![utc(run["time"].as_u64().unwrap_or(0)), text(&run["commit"]), subject.to_string()];
        row.extend(
            columns
                .iter()
                .map(|(k, _)| run["medians"][subject][k].as_f64().map_or("-".into(), number)),
        );
        let worst = run["restarts"]
            .as_object()
            .and_then(|r| r.values().filter_map(|v| v["longest_gap_ms"].as_f64()).reduce(f64::max));
        row.push(worst.map_or("-".into(), number));
        row.push(run["docker_test_s"].as_f64().map_or("-".into(), |s| format!("{s:.0}")));
        row.push(run["busy"].as_f64().map_or("-".into(), |b| format!("{b:.0}")));
        rows.push(row);
    }
    format!(
        "\n## Trend\n\nThe init under test's medians over the last {} {} runs \
         (`history.jsonl`, one line per run), oldest first; \"other tasks\" (the median number of \
         other runnable tasks on the host as each measurement began) says whether other work \
         disturbed a run.\n\n{}",
        runs.len(),
        info.plan.mode,
        markdown_table(&rows)
    )
}

/// The figures the scenarios recorded in the last `make docker-test`: many scenarios ran at
/// once, so every one of them was measured under load.
fn render_parallel_figures(suite: &Suite) -> String {
    let mut inits: Vec<String> = Vec::new();
    let mut figures: Vec<((String, String), BTreeMap<String, String>)> = Vec::new();
    for r in &suite.records {
        let init = text(&r["init"]);
        for m in r["measurements"].as_array().into_iter().flatten() {
            // A `kind` names the restart for the restart table; it is no figure.
            let Some(value) = m["value"].as_f64().filter(|_| m["unit"] != "kind") else {
                continue;
            };
            if !inits.contains(&init) {
                inits.push(init.clone());
            }
            let key = (text(&r["scenario"]), text(&m["name"]));
            let cell = format!("{} {}", number(value), text(&m["unit"]));
            match figures.iter_mut().find(|(k, _)| *k == key) {
                Some((_, by_init)) => {
                    by_init.insert(init.clone(), cell);
                }
                None => figures.push((key, BTreeMap::from([(init.clone(), cell)]))),
            }
        }
    }
    if figures.is_empty() {
        return String::new();
    }
    let mut header = vec!["scenario".to_string(), "figure".into()];
    header.extend(inits.iter().cloned());
    let mut rows = vec![header];
    for ((scenario, name), by_init) in &figures {
        let mut row = vec![format!("`{scenario}`"), name.clone()];
        row.extend(inits.iter().map(|i| by_init.get(i).cloned().unwrap_or_else(|| "-".into())));
        rows.push(row);
    }
    let session = suite.records.first().map_or("-".into(), |r| text(&r["session"]));
    format!(
        "\n## Figures from the last `make docker-test` (a parallel run: measured under load)\n\n\
         Recorded by the scenarios of session `{session}`, while several of them ran on the \
         engine at once: **every figure here was measured under load**. They are kept for the \
         record and are not comparable with the serial figures above.\n\n{}",
        markdown_table(&rows)
    )
}

fn render_failures(measured: &Measured) -> String {
    if measured.failures.is_empty() {
        return String::new();
    }
    let mut out = String::from("\n## Failures\n\n");
    for f in &measured.failures {
        let _ = write!(out, "- {} against {}:\n\n```\n{}\n```\n", f.step, f.init, f.error.trim());
    }
    out
}

fn markdown_table(rows: &[Vec<String>]) -> String {
    let mut out = String::new();
    for (n, row) in rows.iter().enumerate() {
        let _ = writeln!(out, "| {} |", row.join(" | "));
        if n == 0 {
            let _ = writeln!(out, "|{}", "---|".repeat(row.len()));
        }
    }
    out
}

// --- JSON ----------------------------------------------------------------------------------

fn metric_json(info: &RunInfo, m: &Metric, baseline: Option<&Value>) -> Value {
    let cells: serde_json::Map<String, Value> =
        info.inits.iter().zip(&m.cells).map(|(i, c)| (i.label.clone(), c.json())).collect();
    let base = BaselineRatio::of(baseline, m.key);
    let ratio = ratio(info, m);
    json!({
        "key": m.key,
        "title": m.title,
        "unit": m.unit,
        "values": cells,
        "ratio_to_tini": ratio,
        "baseline_ratio": base.map(|b| json!({"ratio": b.ratio, "min": b.min, "max": b.max})),
        "status": status(m.key, ratio, base),
    })
}

fn restart_json(r: &RestartRow) -> Value {
    let estimate = |e: Option<Estimate>| e.map_or(Cell::Missing, Cell::Estimate).json();
    json!({
        "setup": r.setup,
        "key": r.key,
        "under_load": true,
        "restarts": r.restarts,
        "requests": r.requests,
        "failed": r.failed,
        "longest_gap_ms": r.longest_gap_ms,
        "gap_per_restart_ms": estimate(r.gap_per_restart_ms),
        "gaps_ms": r.gaps_ms,
        "p50_ms": r.p50_ms,
        "p99_ms": estimate(r.p99_ms),
        "max_ms": r.max_ms,
    })
}

fn samples_json(m: &Measured) -> Value {
    let mut by_init: BTreeMap<&str, serde_json::Map<String, Value>> = BTreeMap::new();
    for (label, l) in &m.lifecycle {
        let entry = by_init.entry(label).or_default();
        entry.insert("start_ms".into(), json!(l.start_ms));
        entry.insert("idle_rss_kib".into(), json!(l.rss_kib));
        entry.insert("idle_anonymous_kib".into(), json!(l.anonymous_kib));
        entry.insert("threads".into(), json!(l.threads));
        entry.insert("stop_ms".into(), json!(l.stop_ms));
        entry.insert("exit_codes_after_sigterm".into(), json!(l.exit_codes));
    }
    for (label, f) in &m.forwarding {
        by_init.entry(label).or_default().insert("forward_us".into(), json!(f.latencies_us));
    }
    for (label, r) in &m.reaping {
        by_init.entry(label).or_default().insert("reap_us".into(), json!(r.latencies_us));
    }
    json!(by_init)
}

// --- Small helpers -------------------------------------------------------------------------

fn read_json(path: &Path) -> Result<Option<Value>> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .with_context(|| format!("{} is not JSON", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// The checked-out commit, for the history (read-only: `git rev-parse`).
pub fn commit() -> Option<String> {
    let out = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(workspace_root())
        .output()
        .ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Three significant digits or so: `1096`, `89.4`, `0.42`; whole numbers as such (`1`).
fn number(v: f64) -> String {
    match v.abs() {
        a if a >= 100.0 || v.fract() == 0.0 => format!("{v:.0}"),
        a if a >= 10.0 => format!("{v:.1}"),
        _ => format!("{v:.2}"),
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

fn seconds(ms: &Value) -> f64 {
    ms.as_f64().unwrap_or(0.0) / 1000.0
}

/// `3 min 52 s`.
fn duration(s: f64) -> String {
    let s = s.round() as u64;
    if s < 60 {
        format!("{s} s")
    } else {
        format!("{} min {} s", s / 60, s % 60)
    }
}

/// `2026-12-02 10:14 UTC` for Unix seconds (the civil calendar from days since 1970, as in
/// Howard Hinnant's `civil_from_days`).
fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let (hour, minute) = (secs % 86_400 / 3600, secs % 3600 / 60);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year}-{month:02}-{day:02} {hour:02}:{minute:02} UTC")
}
