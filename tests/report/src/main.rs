//! `scinit-report`: turns the suite's `records.jsonl` into `results.json` and prints the summary
//! tables of `make docker-test`: the scenario × init verdict matrix, and every recorded figure
//! (with the restart table for the downtime scenarios).
//!
//! Usage: `scinit-report [RESULTS_DIR]` (default `target/test-results`). With
//! `SCINIT_TEST_SESSION` set, only that run's records count. Exit 0 when every
//! verdict is acceptable, 1 when any is FAIL / UNEXPECTED-PASS / ERROR, 2 when the records
//! cannot be read.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::{json, Value};

#[path = "../../support/figures.rs"]
mod figures;

use figures::restart::{self, kind};

/// The restart table: the figures, in column order, with their headers.
const RESTART_TABLE: [(&str, &str); 6] = [
    (restart::RESTARTS, "restarts"),
    (restart::REQUESTS, "requests"),
    (restart::FAILED, "failed"),
    (restart::LONGEST_GAP_MS, "longest gap ms"),
    (restart::P99_MS, "p99 ms"),
    (restart::MAX_MS, "max ms"),
];

/// The restart table's `kind` column: the kind figure a row recorded, by name.
const RESTART_KINDS: [(&str, &str); 3] = [
    (kind::STOP_FIRST, "SIGHUP stop-first"),
    (kind::START_FIRST, "SIGHUP start-first"),
    (kind::DOCKER_RESTART, "docker restart"),
];

fn main() -> ExitCode {
    let dir = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| "target/test-results".into());
    match run(&dir) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("scinit-report: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(dir: &Path) -> Result<bool, String> {
    let path = dir.join("records.jsonl");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let session = std::env::var("SCINIT_TEST_SESSION").unwrap_or_default();
    let records: Vec<Value> = parse_records(&text)?
        .into_iter()
        .filter(|r| session.is_empty() || str_of(r, "session") == session)
        .collect();
    let results = json!({ "records": records, "matrix": matrix_json(&records) });
    let out = dir.join("results.json");
    let pretty = serde_json::to_string_pretty(&results).map_err(|e| e.to_string())?;
    std::fs::write(&out, pretty).map_err(|e| format!("{}: {e}", out.display()))?;
    print!("{}", render_matrix(&records));
    print!("{}", render_restart_table(&records));
    print!("{}", render_figures(&records));
    println!("results: {}", out.display());
    Ok(records.iter().all(|r| !is_failure(str_of(r, "verdict"))))
}

fn parse_records(text: &str) -> Result<Vec<Value>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(n, l)| {
            serde_json::from_str(l).map_err(|e| format!("records.jsonl line {}: {e}", n + 1))
        })
        .collect()
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or("")
}

fn is_failure(verdict: &str) -> bool {
    matches!(verdict, "FAIL" | "UNEXPECTED-PASS" | "ERROR")
}

/// scenario → init → verdict (the last record wins when a scenario ran twice).
fn verdicts(records: &[Value]) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut m: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for r in records {
        m.entry(str_of(r, "scenario").to_string())
            .or_default()
            .insert(str_of(r, "init").to_string(), str_of(r, "verdict").to_string());
    }
    m
}

fn inits(records: &[Value]) -> Vec<String> {
    let mut seen = Vec::new();
    for r in records {
        let init = str_of(r, "init").to_string();
        if !seen.contains(&init) {
            seen.push(init);
        }
    }
    seen
}

fn matrix_json(records: &[Value]) -> Value {
    json!(verdicts(records))
}

fn render_matrix(records: &[Value]) -> String {
    let inits = inits(records);
    let rows = verdicts(records);
    let mut table = vec![std::iter::once("scenario".to_string())
        .chain(inits.iter().cloned())
        .collect::<Vec<_>>()];
    for (scenario, by_init) in &rows {
        let mut row = vec![scenario.clone()];
        row.extend(inits.iter().map(|i| by_init.get(i).cloned().unwrap_or_else(|| "-".into())));
        table.push(row);
    }
    let mut out = format!("\n== Verdicts: scenario × init ({} scenarios) ==\n", rows.len());
    out.push_str(&render_table(&table));
    let differences: Vec<String> = records
        .iter()
        .filter(|r| {
            matches!(
                str_of(r, "verdict"),
                "expected-difference" | "varies:difference" | "FAIL" | "UNEXPECTED-PASS" | "ERROR"
            )
        })
        .map(|r| {
            let first_line = str_of(r, "detail").lines().next().unwrap_or("");
            format!(
                "  {} / {} [{}]: {first_line}",
                str_of(r, "scenario"),
                str_of(r, "init"),
                str_of(r, "verdict")
            )
        })
        .collect();
    if !differences.is_empty() {
        out.push_str("\nWhy they differ:\n");
        out.push_str(&differences.join("\n"));
        out.push('\n');
    }
    out
}

fn measurements(r: &Value) -> BTreeMap<String, (f64, String)> {
    r["measurements"]
        .as_array()
        .map(|ms| {
            ms.iter()
                .map(|m| {
                    (
                        str_of(m, "name").to_string(),
                        (m["value"].as_f64().unwrap_or(f64::NAN), str_of(m, "unit").to_string()),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn render_restart_table(records: &[Value]) -> String {
    let rows: Vec<Vec<String>> = records
        .iter()
        .filter_map(|r| {
            let m = measurements(r);
            m.contains_key(restart::RESTARTS).then(|| {
                let kind = RESTART_KINDS.iter().find(|(k, _)| m.contains_key(*k));
                let mut row = vec![
                    str_of(r, "scenario").to_string(),
                    str_of(r, "init").to_string(),
                    kind.map_or("-", |(_, label)| label).to_string(),
                ];
                row.extend(
                    RESTART_TABLE
                        .iter()
                        .map(|(k, _)| m.get(*k).map_or("-".into(), |(v, _)| format_value(*v))),
                );
                row
            })
        })
        .collect();
    if rows.is_empty() {
        return String::new();
    }
    let mut table = vec![["scenario", "init", "kind"]
        .iter()
        .chain(RESTART_TABLE.iter().map(|(_, h)| h))
        .map(|s| s.to_string())
        .collect()];
    table.extend(rows);
    format!("\n== Restarts under load ==\n{}", render_table(&table))
}

fn render_figures(records: &[Value]) -> String {
    let restart_keys: BTreeSet<&str> =
        RESTART_TABLE.iter().chain(&RESTART_KINDS).map(|(k, _)| *k).collect();
    let mut table =
        vec![vec!["scenario".to_string(), "init".into(), "figure".into(), "value".into()]];
    for r in records {
        for (name, (value, unit)) in measurements(r) {
            if restart_keys.contains(name.as_str()) {
                continue;
            }
            table.push(vec![
                str_of(r, "scenario").to_string(),
                str_of(r, "init").to_string(),
                name,
                format!("{} {unit}", format_value(value)),
            ]);
        }
    }
    if table.len() == 1 {
        return String::new();
    }
    format!("\n== Figures ==\n{}", render_table(&table))
}

fn format_value(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn render_table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().filter_map(|r| r.get(c)).map(|s| s.chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for (n, row) in rows.iter().enumerate() {
        let cells: Vec<String> =
            row.iter().enumerate().map(|(c, s)| format!("{s:<w$}", w = widths[c])).collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
        if n == 0 {
            out.push_str(&widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>().join("  "));
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECORDS: &str = r#"{"scenario":"a","init":"scinit","verdict":"pass","detail":"","measurements":[]}
{"scenario":"a","init":"tini","verdict":"expected-difference","detail":"tini forwards to the pid\nmore","measurements":[]}
{"scenario":"r","init":"scinit","verdict":"pass","detail":"","measurements":[{"name":"restarts","value":50,"unit":"count"},{"name":"failed","value":0,"unit":"count"},{"name":"rss","value":1.5,"unit":"MiB"}]}
{"scenario":"s","init":"scinit","verdict":"pass","detail":"","measurements":[{"name":"restarts","value":10,"unit":"count"},{"name":"kind_sighup_start_first","value":1,"unit":"kind"}]}
"#;

    #[test]
    fn the_matrix_has_a_column_per_init_and_explains_differences() {
        let records = parse_records(RECORDS).unwrap();
        let text = render_matrix(&records);
        assert!(text.contains("scenario  scinit  tini"), "{text}");
        assert!(text.contains("a         pass    expected-difference"), "{text}");
        assert!(
            text.contains("a / tini [expected-difference]: tini forwards to the pid"),
            "{text}"
        );
        assert!(!text.contains("more"), "{text}");
    }

    #[test]
    fn restart_figures_go_to_the_restart_table_and_others_to_figures() {
        let records = parse_records(RECORDS).unwrap();
        let restarts = render_restart_table(&records);
        assert!(restarts.contains("r         scinit  -                   50"), "{restarts}");
        assert!(restarts.contains("s         scinit  SIGHUP start-first  10"), "{restarts}");
        let figures = render_figures(&records);
        assert!(figures.contains("rss     1.50 MiB"), "{figures}");
        assert!(!figures.contains("restarts") && !figures.contains("kind_"), "{figures}");
    }

    #[test]
    fn failures_are_detected() {
        assert!(is_failure("FAIL") && is_failure("UNEXPECTED-PASS") && is_failure("ERROR"));
        assert!(!is_failure("expected-difference") && !is_failure("n/a"));
    }
}
