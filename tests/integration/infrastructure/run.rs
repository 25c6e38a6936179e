//! The runner: one scenario against one init. [`run`] gives the body its [`Run`] context,
//! classifies what happened (pass, [`Deviation`], harness error), judges it against the init's
//! expected outputs and records it.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::expectations::{self, Expect, Observed, Verdict};
use super::inits::{Capability, Init, Unsupported};
use super::results::{self, Measurement, Record};

/// How long one scenario may take before the harness calls it hung. Below nextest's
/// terminate-after (3 × 60 s in `.config/nextest.toml`), so that a hung scenario is recorded as
/// such and its guards drop before nextest kills the process.
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(170);

/// Set by the expected-outputs checker: every scenario test then reports what it needs and
/// returns, so the checker learns each scenario's capabilities without Docker.
pub const DECLARE_NEEDS: &str = "SCINIT_DECLARE_NEEDS";
/// The line a scenario prints on stderr under [`DECLARE_NEEDS`].
pub const NEEDS_LINE: &str = "scinit-scenario-needs";

/// One scenario run against one init: what the body needs to know, and where it records its
/// figures.
#[derive(Clone)]
pub struct Run {
    init: Init,
    scenario: String,
    measurements: Arc<Mutex<Vec<Measurement>>>,
}

impl Run {
    pub fn new(init: Init, scenario: &str) -> Run {
        Run { init, scenario: scenario.to_string(), measurements: Arc::default() }
    }

    pub fn init(&self) -> &Init {
        &self.init
    }

    pub fn scenario_id(&self) -> &str {
        &self.scenario
    }

    /// Records a named figure for `results.json` (e.g. `("longest_gap_ms", 12.0, "ms")`).
    pub fn record(&self, name: &str, value: f64, unit: &str) {
        if let Ok(mut m) = self.measurements.lock() {
            m.push(Measurement { name: name.to_string(), value, unit: unit.to_string() });
        }
    }

    pub fn measurements(&self) -> Vec<Measurement> {
        self.measurements.lock().map(|m| m.clone()).unwrap_or_default()
    }
}

/// The init behaved differently from the contract: judged against the expected outputs, unlike
/// harness errors, which always fail.
#[derive(Debug)]
pub struct Deviation(pub String);

impl fmt::Display for Deviation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Deviation {}

/// The scenario cannot run in this environment, and why: it is `n/a` here rather than failed
/// (see [`Observed::NotApplicable`]).
#[derive(Debug)]
pub struct Inapplicable(pub String);

impl fmt::Display for Inapplicable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Inapplicable {}

/// Runs `body` against the init under test and judges it against the expected outputs.
/// Panics (fails the test) on FAIL, UNEXPECTED-PASS and ERROR, with the whole story.
pub async fn run<F, Fut>(scenario: &str, needs: &[Capability], body: F)
where
    F: FnOnce(Run) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    if std::env::var_os(DECLARE_NEEDS).is_some() {
        let needs: Vec<&str> = needs.iter().map(|c| c.name()).collect();
        eprintln!("{NEEDS_LINE} {scenario} {}", needs.join(","));
        return;
    }
    let init = match Init::under_test() {
        Ok(i) => i.clone(),
        Err(e) => panic!("{e:#}"),
    };
    let expect = match expectations::expect(&init, scenario, needs) {
        Ok(e) => e,
        Err(e) => panic!("{e:#}"),
    };
    let run = Run::new(init.clone(), scenario);
    let start = Instant::now();
    let (verdict, detail) = match &expect {
        Expect::NotApplicable(reason) => (Verdict::NotApplicable, reason.clone()),
        _ => {
            let observed = observe(run.clone(), body).await;
            let detail = match &observed {
                Observed::Pass => String::new(),
                Observed::Deviation(d) | Observed::Error(d) => d.clone(),
                Observed::NotApplicable(why) => format!("not applicable here: {why}"),
            };
            (expectations::judge(&expect, &observed), detail)
        }
    };
    let recorded = results::append(&Record {
        scenario,
        init: &init.label,
        verdict,
        detail: &detail,
        duration_ms: start.elapsed().as_millis(),
        measurements: &run.measurements(),
    });
    if verdict.is_failure() {
        panic!(
            "{verdict}: scenario `{scenario}` against {}: expected {expect}\n{detail}",
            init.label
        );
    }
    if let Err(e) = recorded {
        panic!("recording the result of `{scenario}`: {e:#}");
    }
}

/// Runs a benchmark: `body` gets one [`Run`] per init of `inits` and records their figures.
/// Each init's figures are recorded under `name` with the verdict the body earned: `pass` when
/// the measurement worked, `ERROR` (and a failed test) when it did not.
pub async fn benchmark<F, Fut>(name: &str, inits: Vec<Init>, body: F)
where
    F: FnOnce(Vec<Run>) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let runs: Vec<Run> = inits.into_iter().map(|init| Run::new(init, name)).collect();
    let start = Instant::now();
    let outcome = match tokio::time::timeout(SCENARIO_TIMEOUT, body(runs.clone())).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("{e:#}")),
        Err(_) => Err(format!("the benchmark did not finish within {SCENARIO_TIMEOUT:?}")),
    };
    let (verdict, detail) = match &outcome {
        Ok(()) => (Verdict::Pass, String::new()),
        Err(e) => (Verdict::Error, e.clone()),
    };
    for run in &runs {
        let recorded = results::append(&Record {
            scenario: name,
            init: &run.init.label,
            verdict,
            detail: &detail,
            duration_ms: start.elapsed().as_millis(),
            measurements: &run.measurements(),
        });
        if let Err(e) = recorded {
            panic!("recording the figures of `{name}`: {e:#}");
        }
    }
    if let Err(e) = outcome {
        panic!("benchmark `{name}` failed: {e}");
    }
}

/// Runs `body` and classifies its outcome; used by [`run`] and by the suite-power tests, which
/// judge broken inits themselves.
pub async fn observe<F, Fut>(run: Run, body: F) -> Observed
where
    F: FnOnce(Run) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    match tokio::time::timeout(SCENARIO_TIMEOUT, body(run)).await {
        Err(_) => {
            Observed::Error(format!("the scenario did not finish within {SCENARIO_TIMEOUT:?}"))
        }
        Ok(Ok(())) => Observed::Pass,
        Ok(Err(e)) => {
            if let Some(d) = e.downcast_ref::<Deviation>() {
                Observed::Deviation(d.0.clone())
            } else if let Some(n) = e.downcast_ref::<Inapplicable>() {
                Observed::NotApplicable(n.0.clone())
            } else if let Some(u) = e.downcast_ref::<Unsupported>() {
                Observed::Error(format!(
                    "{u}: declare it with #[scenario(needs({:?}))]",
                    u.capability
                ))
            } else {
                Observed::Error(format!("{e:#}"))
            }
        }
    }
}
