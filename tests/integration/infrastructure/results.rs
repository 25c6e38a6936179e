//! Named measurements and verdicts, appended one JSON object per line to
//! `target/test-results/records.jsonl` (or `$SCINIT_TEST_RESULTS/records.jsonl`). Appends of one
//! line are atomic enough for parallel test threads and processes; `scinit-report` turns the
//! records into `results.json` and the summary tables.

use std::io::Write;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use serde_json::json;

use super::expectations::Verdict;

/// One figure, recorded by name (e.g. `restart.longest_gap_ms`).
#[derive(Debug, Clone)]
pub struct Measurement {
    pub name: String,
    pub value: f64,
    pub unit: String,
}

pub fn results_dir() -> PathBuf {
    std::env::var_os("SCINIT_TEST_RESULTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::static_build::workspace_root().join("target/test-results"))
}

/// One scenario's outcome against one init.
pub struct Record<'a> {
    pub scenario: &'a str,
    pub init: &'a str,
    pub verdict: Verdict,
    pub detail: &'a str,
    pub duration_ms: u128,
    pub measurements: &'a [Measurement],
}

pub fn append(record: &Record<'_>) -> Result<()> {
    let dir = results_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let measurements: Vec<_> = record
        .measurements
        .iter()
        .map(|m| json!({"name": m.name, "value": m.value, "unit": m.unit}))
        .collect();
    let line = json!({
        "session": std::env::var("SCINIT_TEST_SESSION").unwrap_or_default(),
        "runtime": super::engine::runtime().unwrap_or("default"),
        "time": SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
        "scenario": record.scenario,
        "init": record.init,
        "verdict": record.verdict.name(),
        "detail": record.detail,
        "duration_ms": record.duration_ms,
        "measurements": measurements,
    });
    let path = dir.join("records.jsonl");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    file.write_all(format!("{line}\n").as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}
