//! The gate's own test: scinit built with one deliberate regression at a time (a cargo feature
//! of the scinit package, `src/regress.rs`), each sized at a tenth of what the committed
//! baseline measured, each checked against that baseline; the unchanged build must pass.

use std::path::Path;

use anyhow::{Context, Result};

use crate::figures::Figures;
use crate::gate::{self, LIMIT};
use crate::static_build::{self, Build};

/// One build to check.
struct Variant {
    /// The cargo feature (none for the unchanged build).
    feature: Option<&'static str>,
    /// What it injects, for the report.
    what: String,
    /// The environment variable that sizes it, and its value.
    size: Option<(&'static str, u64)>,
    /// The figures of which one must regress (none: nothing may).
    figures: &'static [&'static str],
    /// Whether the self-test fails when it is missed. Not for the wait: its figure is a
    /// wall-clock ratio, judged only on a quiet machine and noisy even there (README).
    required: bool,
}

/// Builds and checks every variant; `true` if the unchanged build passed every check and every
/// required regression was caught by one of its own figures every time.
///
/// `scale` multiplies every regression (1: the gate's 10%), to see where a figure that misses
/// 10% starts being caught.
pub fn run(
    baseline: &Figures,
    repeat: usize,
    rounds: usize,
    scale: f64,
    work: &Path,
) -> Result<bool> {
    let per_signal = count(baseline, "per_signal")?;
    let (median_us, rss_kib) = (ratio(baseline, "forward_median")?, ratio(baseline, "idle_rss")?);
    let share = LIMIT * scale;
    let percent = share * 100.0;
    let cpu = (per_signal * share).ceil() as u64;
    let sleep_ns = (median_us * 1000.0 * share).ceil() as u64;
    // Whole pages: what a process holds is counted in pages.
    let memory = (rss_kib * share / 4.0).ceil() as u64 * 4096;
    let variants = [
        Variant {
            feature: None,
            what: "the unchanged build".into(),
            size: None,
            figures: &[],
            required: true,
        },
        Variant {
            feature: Some("regress-forward-cpu"),
            what: format!(
                "{cpu} more instructions per forwarded signal ({percent:.0}% of {per_signal:.0})"
            ),
            size: Some(("SCINIT_REGRESS_FORWARD_CPU", cpu)),
            figures: &["instructions per_signal"],
            required: true,
        },
        Variant {
            feature: Some("regress-forward-sleep"),
            what: format!(
                "a {:.2} us wait per forwarded signal ({percent:.0}% of the {median_us:.1} us \
                 median)",
                sleep_ns as f64 / 1000.0
            ),
            size: Some(("SCINIT_REGRESS_FORWARD_SLEEP_NS", sleep_ns)),
            figures: &["ratio forward_median"],
            required: false,
        },
        Variant {
            feature: Some("regress-idle-memory"),
            what: format!(
                "{} KiB more held at idle ({percent:.0}% of {rss_kib:.0} KiB RSS)",
                memory.div_ceil(1024)
            ),
            size: Some(("SCINIT_REGRESS_IDLE_MEMORY", memory)),
            // Memory held is anonymous memory: either figure may show it first.
            figures: &["ratio idle_rss", "ratio idle_anonymous"],
            required: true,
        },
    ];

    let standard = static_build::standard()?;
    let mut summary = Vec::new();
    let mut passed = true;
    for variant in &variants {
        let scinit = match variant.feature {
            None => standard.scinit.clone(),
            Some(feature) => {
                let build = Build {
                    // A new size rebuilds scinit alone: cargo tracks the variable.
                    target_dir: static_build::bench_dir().join("selftest").join(feature),
                    packages: &["scinit"],
                    features: &[feature],
                    env: variant.size.iter().map(|(k, v)| (*k, v.to_string())).collect(),
                };
                build.run()?.join("scinit")
            }
        };
        let name = variant.feature.unwrap_or("unchanged");
        let mut caught = 0;
        let mut moves: Vec<String> = Vec::new();
        for attempt in 1..=repeat {
            println!("== {name}: {} (check {attempt} of {repeat})", variant.what);
            let now = crate::measure(&scinit, &standard.testkit, rounds, &work.join(name))?;
            let verdicts = gate::judge(baseline, &now).map_err(anyhow::Error::msg)?;
            print!("{}", gate::table(&verdicts));
            println!("{}", gate::last_line(&verdicts));
            let regressed: Vec<&str> =
                verdicts.iter().filter(|v| v.regressed).map(|v| v.metric.as_str()).collect();
            let expected = match variant.figures {
                [] => regressed.is_empty(),
                figures => regressed.iter().any(|r| figures.contains(r)),
            };
            caught += usize::from(expected);
            for v in verdicts.iter().filter(|v| variant.figures.contains(&v.metric.as_str())) {
                let judged = if v.not_judged.is_some() { " (not judged: busy)" } else { "" };
                moves.push(format!("{} {:+.1}%{judged}", v.metric, v.change * 100.0));
            }
            if !regressed.is_empty() {
                moves.push(format!("flagged: {}", regressed.join(", ")));
            }
        }
        passed &= caught == repeat || !variant.required;
        let outcome = match (variant.figures, variant.required) {
            ([], _) => format!("passed {caught} of {repeat} checks"),
            (_, true) => format!("caught in {caught} of {repeat} checks"),
            (_, false) => format!("caught in {caught} of {repeat} checks (not required)"),
        };
        summary.push(format!("{name}: {}: {outcome} ({})", variant.what, moves.join("; ")));
    }
    println!("\nself-test summary:");
    for line in &summary {
        println!("  {line}");
    }
    println!(
        "scinit-bench selftest: {}",
        if passed { "passed" } else { "FAILED: see the summary above" }
    );
    Ok(passed)
}

fn count(baseline: &Figures, name: &str) -> Result<f64> {
    baseline.counts.iter().find(|c| c.name == name).map(|c| c.scinit).context(name.to_string())
}

/// scinit's own figure (not the ratio) behind a ratio of the baseline.
fn ratio(baseline: &Figures, name: &str) -> Result<f64> {
    baseline.ratios.iter().find(|r| r.name == name).map(|r| r.scinit).context(name.to_string())
}
