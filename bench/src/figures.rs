//! Every figure the gate judges, measured in one go: scinit's instruction counts (tini's beside
//! them, for reference), and the wall-clock ratios scinit/tini with the spread of their rounds.

use std::path::Path;

use anyhow::{Context, Result};
use serde_json::{json, Value};

use crate::counts;
use crate::native::{self, percentile};
use crate::static_build::TINI;

/// One instruction count.
#[derive(Debug, Clone, PartialEq)]
pub struct Count {
    pub name: String,
    pub scinit: f64,
    /// tini's, where tini can do it (it cannot restart its child).
    pub tini: Option<f64>,
}

/// One wall-clock figure as the ratio scinit/tini. A check measures a few rounds and takes the
/// median of their ratios; a baseline measures more, and its noise band is the range of that
/// median over the baseline's rounds (see [`band`]): what a check of an unchanged scinit sees.
#[derive(Debug, Clone, PartialEq)]
pub struct Ratio {
    pub name: String,
    pub unit: String,
    /// The median of the rounds' ratios.
    pub ratio: f64,
    /// The noise band.
    pub min: f64,
    pub max: f64,
    /// scinit's and tini's own figures, medians over the rounds.
    pub scinit: f64,
    pub tini: f64,
    /// Every round's ratio, for the record.
    pub rounds: Vec<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Figures {
    pub counts: Vec<Count>,
    pub ratios: Vec<Ratio>,
}

/// The instruction counts of scinit and tini.
pub fn counts(scinit: &Path, testkit: &Path, work: &Path) -> Result<Vec<Count>> {
    let ours = counts::measure(scinit, testkit, true, &work.join("scinit"))?;
    let tini = counts::measure(Path::new(TINI), testkit, false, &work.join("tini"))?;
    Ok(vec![
        count("start_to_exec", ours.start_to_exec, Some(tini.start_to_exec)),
        count("per_signal", ours.per_signal, Some(tini.per_signal)),
        count("per_orphan", ours.per_orphan, Some(tini.per_orphan)),
        count("per_restart", ours.per_restart.unwrap_or(f64::NAN), None),
    ])
}

fn count(name: &str, scinit: f64, tini: Option<f64>) -> Count {
    Count { name: name.to_string(), scinit, tini }
}

/// The wall-clock ratios over `rounds` rounds, with a noise band for checks of `per_check`
/// rounds each.
pub fn ratios(
    scinit: &Path,
    testkit: &Path,
    rounds: usize,
    per_check: usize,
    work: &Path,
) -> Result<Vec<Ratio>> {
    let tini = Path::new(TINI);
    // A build just before (the self-test's, cargo's own) leaves megabytes of dirty pages, whose
    // writeback would otherwise land in the middle of the rounds.
    nix::unistd::sync();
    let mut pairs = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let figures = native::round(&[scinit, tini], testkit, work)?;
        if let [ours, theirs] = figures[..] {
            pairs.push((ours, theirs));
        }
    }
    let ratio = |name: &str, unit: &str, pick: fn(&native::Figures) -> f64| {
        let rounds: Vec<f64> = pairs.iter().map(|(s, t)| pick(s) / pick(t)).collect();
        let ours: Vec<f64> = pairs.iter().map(|(s, _)| pick(s)).collect();
        let theirs: Vec<f64> = pairs.iter().map(|(_, t)| pick(t)).collect();
        let (min, max) = band(&rounds, per_check);
        Ratio {
            name: name.to_string(),
            unit: unit.to_string(),
            ratio: percentile(&rounds, 50.0),
            min,
            max,
            scinit: percentile(&ours, 50.0),
            tini: percentile(&theirs, 50.0),
            rounds,
        }
    };
    Ok(vec![
        ratio("forward_median", "us", |f| f.forward_median_us),
        ratio("forward_p99", "us", |f| f.forward_p99_us),
        ratio("idle_rss", "KiB", |f| f.idle_rss_kib),
        ratio("idle_anonymous", "KiB", |f| f.idle_anonymous_kib),
    ])
}

/// The 1st and 99th percentiles of the median of `per_check` rounds drawn (with replacement)
/// from `rounds`, over a few thousand draws: the range in which a check of an unchanged scinit,
/// on a machine like the baseline's, finds its median 98 times in 100. A fixed seed keeps a
/// baseline reproducible from its rounds.
pub fn band(rounds: &[f64], per_check: usize) -> (f64, f64) {
    const DRAWS: usize = 4000;
    if rounds.is_empty() || per_check == 0 {
        return (f64::NAN, f64::NAN);
    }
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        // xorshift64*: plenty for picking rounds.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % rounds.len()
    };
    let mut draw = vec![0.0; per_check];
    let medians: Vec<f64> = (0..DRAWS)
        .map(|_| {
            for slot in draw.iter_mut() {
                *slot = rounds[next()];
            }
            percentile(&draw, 50.0)
        })
        .collect();
    (percentile(&medians, 1.0), percentile(&medians, 99.0))
}

impl Figures {
    pub fn to_json(&self) -> Value {
        let counts: serde_json::Map<String, Value> = self
            .counts
            .iter()
            .map(|c| {
                let mut value = json!({ "scinit": round(c.scinit, 1) });
                if let Some(tini) = c.tini {
                    value["tini"] = json!(round(tini, 1));
                    value["scinit_to_tini"] = json!(round(c.scinit / tini, 2));
                }
                (c.name.clone(), value)
            })
            .collect();
        let ratios: serde_json::Map<String, Value> = self
            .ratios
            .iter()
            .map(|r| {
                let value = json!({
                    "ratio": round(r.ratio, 3),
                    "min": round(r.min, 3),
                    "max": round(r.max, 3),
                    "scinit": round(r.scinit, 1),
                    "tini": round(r.tini, 1),
                    "unit": r.unit,
                    "rounds": r.rounds.iter().map(|x| round(*x, 3)).collect::<Vec<_>>(),
                });
                (r.name.clone(), value)
            })
            .collect();
        json!({ "instructions": counts, "ratios": ratios })
    }

    /// From a baseline. Its objects come back in name order: they are put back in the bench's.
    pub fn from_json(value: &Value) -> Result<Figures> {
        let number = |v: &Value, key: &str| {
            v.get(key).and_then(Value::as_f64).with_context(|| format!("no number `{key}`"))
        };
        let object = |key: &str| {
            value.get(key).and_then(Value::as_object).with_context(|| format!("no `{key}`"))
        };
        let counts = object("instructions")?
            .iter()
            .map(|(name, v)| {
                let scinit = number(v, "scinit").with_context(|| name.clone())?;
                Ok(Count {
                    name: name.clone(),
                    scinit,
                    tini: v.get("tini").and_then(Value::as_f64),
                })
            })
            .collect::<Result<Vec<Count>>>()?;
        let ratios = object("ratios")?
            .iter()
            .map(|(name, v)| {
                let field = |key: &str| number(v, key).with_context(|| name.clone());
                let rounds = v.get("rounds").and_then(Value::as_array);
                Ok(Ratio {
                    name: name.clone(),
                    unit: v.get("unit").and_then(Value::as_str).unwrap_or("").to_string(),
                    ratio: field("ratio")?,
                    min: field("min")?,
                    max: field("max")?,
                    scinit: field("scinit")?,
                    tini: field("tini")?,
                    rounds: rounds.into_iter().flatten().filter_map(Value::as_f64).collect(),
                })
            })
            .collect::<Result<Vec<Ratio>>>()?;
        let mut figures = Figures { counts, ratios };
        figures.counts.sort_by_key(|c| order(&c.name));
        figures.ratios.sort_by_key(|r| order(&r.name));
        Ok(figures)
    }
}

/// Where a figure comes in tables: as measured; names the bench does not know, last.
fn order(name: &str) -> usize {
    const ORDER: [&str; 8] = [
        "start_to_exec",
        "per_signal",
        "per_orphan",
        "per_restart",
        "forward_median",
        "forward_p99",
        "idle_rss",
        "idle_anonymous",
    ];
    ORDER.iter().position(|n| *n == name).unwrap_or(ORDER.len())
}

fn round(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn sample() -> Figures {
        Figures {
            counts: vec![
                count("start_to_exec", 65348.0, Some(20430.0)),
                count("per_restart", 3532.2, None),
            ],
            ratios: vec![Ratio {
                name: "forward_median".into(),
                unit: "us".into(),
                ratio: 0.95,
                min: 0.9,
                max: 1.05,
                scinit: 13.5,
                tini: 14.2,
                rounds: vec![0.9, 0.95, 1.05],
            }],
        }
    }

    #[test]
    fn figures_survive_json() {
        let figures = sample();
        assert_eq!(Figures::from_json(&figures.to_json()).unwrap(), figures);
    }

    #[test]
    fn the_band_holds_the_medians_a_check_can_draw() {
        let mut rounds = [1.0, 1.01, 1.02, 1.0, 0.99, 1.01, 1.6, 1.0, 1.02, 1.01].repeat(2);
        rounds[16] = 1.0;
        let (low, high) = band(&rounds, 5);
        assert!((0.99..=1.0).contains(&low), "{low}");
        // One wild round in twenty cannot carry a median of five on its own.
        assert!((1.01..=1.02).contains(&high), "{high}");
        assert_eq!(band(&rounds, 5), (low, high));
        assert_eq!(band(&[1.3; 4], 5), (1.3, 1.3));
    }

    #[test]
    fn json_without_a_section_is_refused() {
        assert!(Figures::from_json(&json!({ "ratios": {} })).is_err());
        let bad = json!({ "instructions": { "per_signal": { "tini": 3 } }, "ratios": {} });
        assert!(Figures::from_json(&bad).is_err());
    }
}
