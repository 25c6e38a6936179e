//! The rules: what counts as a regression against the baseline, and how it is told.
//!
//! - An instruction count regresses when it is 10% or more above its baseline: counts repeat to
//!   a few instructions, so no band is needed.
//! - A wall-clock ratio (scinit/tini, lower is better) regresses when it is 10% or more above
//!   its baseline *and* above its noise band (the highest median a check could draw from the
//!   baseline's rounds): shared machines move these figures by more than 10% from run to run.
//! - A latency ratio is judged only on a machine about as quiet as the baseline's: when tini's
//!   own latency is more than [`BUSY`] times the baseline's, the two-core machine is busy with
//!   something else, and the ratio moves by 10-30% with no change to scinit (the README has the
//!   figures). It is then reported as not judged; the instruction counts still are.

use crate::figures::Figures;

/// How far a figure may move up before it is a regression.
pub const LIMIT: f64 = 0.10;

/// How much slower than at the baseline tini may forward signals (its median) before the
/// machine counts as too busy to judge latency.
pub const BUSY: f64 = 1.5;

#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// `instructions per_signal`, `ratio forward_median`.
    pub metric: String,
    pub baseline: f64,
    pub measured: f64,
    /// `measured / baseline - 1`.
    pub change: f64,
    /// The top of the baseline's noise band, for ratios.
    pub band_max: Option<f64>,
    pub regressed: bool,
    /// Why the figure was not judged, if it was not.
    pub not_judged: Option<String>,
}

/// Judges every figure of the baseline; a figure missing from `now` is an error (the baseline
/// and the bench disagree on what is measured).
pub fn judge(baseline: &Figures, now: &Figures) -> Result<Vec<Verdict>, String> {
    let mut verdicts = Vec::new();
    for base in &baseline.counts {
        let measured = now
            .counts
            .iter()
            .find(|c| c.name == base.name)
            .ok_or_else(|| format!("instructions {} were not measured", base.name))?;
        let change = measured.scinit / base.scinit - 1.0;
        verdicts.push(Verdict {
            metric: format!("instructions {}", base.name),
            baseline: base.scinit,
            measured: measured.scinit,
            change,
            band_max: None,
            regressed: at_limit(change),
            not_judged: None,
        });
    }
    // How busy the machine is, from tini's median latency: its p99 is too noisy to say.
    let tini_median = |figures: &Figures| {
        figures.ratios.iter().find(|r| r.name == "forward_median").map(|r| r.tini)
    };
    let busy = match (tini_median(baseline), tini_median(now)) {
        (Some(base), Some(measured)) if measured > base * BUSY => Some(format!(
            "machine busy: tini's own median {measured:.1} us against {base:.1} at the baseline"
        )),
        _ => None,
    };
    for base in &baseline.ratios {
        let measured = now
            .ratios
            .iter()
            .find(|r| r.name == base.name)
            .ok_or_else(|| format!("ratio {} was not measured", base.name))?;
        let change = measured.ratio / base.ratio - 1.0;
        let not_judged = busy.clone().filter(|_| base.unit == "us");
        verdicts.push(Verdict {
            metric: format!("ratio {}", base.name),
            baseline: base.ratio,
            measured: measured.ratio,
            change,
            band_max: Some(base.max),
            regressed: not_judged.is_none() && at_limit(change) && measured.ratio > base.max,
            not_judged,
        });
    }
    Ok(verdicts)
}

/// 10% or more, with room for the rounding of figures stored in the baseline.
fn at_limit(change: f64) -> bool {
    change >= LIMIT - 1e-9
}

/// The table, one line per figure.
pub fn table(verdicts: &[Verdict]) -> String {
    let mut out = format!(
        "{:<30} {:>12} {:>12} {:>8}  {}\n",
        "figure", "baseline", "now", "change", "verdict"
    );
    for v in verdicts {
        let verdict = match (v.regressed, v.band_max) {
            _ if v.not_judged.is_some() => {
                format!("not judged ({})", v.not_judged.as_deref().unwrap_or_default())
            }
            (true, _) => "REGRESSED".to_string(),
            (false, Some(max)) if at_limit(v.change) => {
                format!("ok (within the noise band, up to {})", number(max))
            }
            (false, _) => "ok".to_string(),
        };
        out.push_str(&format!(
            "{:<30} {:>12} {:>12} {:>7.1}%  {verdict}\n",
            v.metric,
            number(v.baseline),
            number(v.measured),
            v.change * 100.0
        ));
    }
    out
}

/// The last line of `bench-check`: which figures moved, and by how much; or the largest move.
pub fn last_line(verdicts: &[Verdict]) -> String {
    let mut regressed: Vec<&Verdict> = verdicts.iter().filter(|v| v.regressed).collect();
    regressed.sort_by(|a, b| b.change.total_cmp(&a.change));
    let skipped = verdicts.iter().filter(|v| v.not_judged.is_some()).count();
    let skipped = match skipped {
        0 => String::new(),
        n => format!("; {n} latency figure(s) not judged, the machine being busy"),
    };
    if regressed.is_empty() {
        let judged = verdicts.iter().filter(|v| v.not_judged.is_none());
        let largest = judged.max_by(|a, b| a.change.total_cmp(&b.change));
        return match largest {
            Some(v) => format!(
                "bench-check: passed: no figure is 10% or more worse than the baseline (largest \
                 move: {} {:+.1}%){skipped}",
                v.metric,
                v.change * 100.0
            ),
            None => "bench-check: passed: nothing to compare".to_string(),
        };
    }
    let moved: Vec<String> = regressed
        .iter()
        .map(|v| {
            let band = v.band_max.map(|m| format!(", above its noise band's {}", number(m)));
            format!(
                "{} {:+.1}% ({} -> {}{})",
                v.metric,
                v.change * 100.0,
                number(v.baseline),
                number(v.measured),
                band.unwrap_or_default()
            )
        })
        .collect();
    format!("bench-check: FAILED: {}{skipped}", moved.join("; "))
}

/// Counts as integers with separators, ratios with three decimals.
fn number(value: f64) -> String {
    if value.abs() >= 100.0 {
        let digits = format!("{:.0}", value);
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 && c != '-' {
                out.push(',');
            }
            out.push(c);
        }
        out
    } else {
        format!("{value:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::figures::{Count, Ratio};

    fn figures(per_signal: f64, ratio: f64) -> Figures {
        Figures {
            counts: vec![Count {
                name: "per_signal".into(),
                scinit: per_signal,
                tini: Some(103.0),
            }],
            ratios: vec![Ratio {
                name: "forward_median".into(),
                unit: "us".into(),
                ratio,
                min: 0.9,
                max: 1.15,
                scinit: 14.0,
                tini: 14.0,
                rounds: vec![],
            }],
        }
    }

    fn regressed(now: Figures) -> Vec<String> {
        let verdicts = judge(&figures(400.0, 1.0), &now).unwrap();
        verdicts.into_iter().filter(|v| v.regressed).map(|v| v.metric).collect()
    }

    #[test]
    fn a_count_10_percent_or_more_above_its_baseline_regresses() {
        assert_eq!(regressed(figures(439.0, 1.0)), Vec::<String>::new());
        assert_eq!(regressed(figures(440.0, 1.0)), ["instructions per_signal"]);
        // Fewer instructions are never a regression.
        assert_eq!(regressed(figures(100.0, 1.0)), Vec::<String>::new());
    }

    #[test]
    fn a_ratio_regresses_only_10_percent_worse_and_outside_its_band() {
        // +12%, but the baseline's rounds went up to 1.15: noise.
        assert_eq!(regressed(figures(400.0, 1.12)), Vec::<String>::new());
        assert_eq!(regressed(figures(400.0, 1.16)), ["ratio forward_median"]);
        // Outside the band but within 10%: the band of a quiet baseline can be narrow.
        let quiet = Figures { ratios: vec![], ..figures(400.0, 1.0) };
        let mut tight = figures(400.0, 1.0);
        tight.ratios[0].max = 1.01;
        let now = figures(400.0, 1.05);
        assert!(judge(&tight, &now).unwrap().iter().all(|v| !v.regressed));
        assert!(judge(&quiet, &now).unwrap().iter().all(|v| !v.regressed));
    }

    #[test]
    fn latency_is_not_judged_on_a_machine_much_busier_than_the_baselines() {
        let mut busy = figures(400.0, 1.3);
        busy.ratios[0].tini = 14.0 * BUSY + 0.1;
        let verdicts = judge(&figures(400.0, 1.0), &busy).unwrap();
        assert!(verdicts.iter().all(|v| !v.regressed));
        assert!(verdicts[1].not_judged.as_deref().unwrap().contains("busy"));
        assert!(last_line(&verdicts)
            .ends_with("1 latency figure(s) not judged, the machine being busy"));
        // Memory is judged whatever the load.
        let mut memory = figures(400.0, 1.0);
        memory.ratios[0].unit = "KiB".into();
        assert!(judge(&memory, &busy).unwrap()[1].regressed);
    }

    #[test]
    fn the_last_line_names_what_moved_and_by_how_much() {
        let verdicts = judge(&figures(400.0, 1.0), &figures(480.0, 1.25)).unwrap();
        assert_eq!(
            last_line(&verdicts),
            "bench-check: FAILED: ratio forward_median +25.0% (1.000 -> 1.250, above its noise \
             band's 1.150); instructions per_signal +20.0% (400 -> 480)"
        );
        let verdicts = judge(&figures(400.0, 1.0), &figures(404.0, 0.9)).unwrap();
        assert_eq!(
            last_line(&verdicts),
            "bench-check: passed: no figure is 10% or more worse than the baseline (largest \
             move: instructions per_signal +1.0%)"
        );
    }

    #[test]
    fn a_figure_the_bench_no_longer_measures_is_an_error() {
        let now = Figures { counts: vec![], ..figures(400.0, 1.0) };
        assert!(judge(&figures(400.0, 1.0), &now).is_err());
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(number(65348.0), "65,348");
        assert_eq!(number(429.0), "429");
        assert_eq!(number(1234567.4), "1,234,567");
        assert_eq!(number(0.987), "0.987");
    }
}
