//! `scinit-report`: turns the suite's `records.jsonl` into `results.json` and prints the summary
//! tables of `make docker-test`: the scenario × init verdict matrix, and every recorded figure
//! (with the restart table for the downtime scenarios). It also merges the parts of one run that
//! ran on different machines (CI's shards) into what that run would have written on one.
//!
//! Usage: `scinit-report [--out DIR] [--inits LIST] [--summary FILE] [INPUT...]`
//!
//! * `INPUT`: a results directory (its `records.jsonl`) or a records file; `target/test-results`
//!   by default. Several inputs are parts of one run: their records are taken in the order given,
//!   each file in its own order, and a record met twice (the same line in two parts) counts once.
//! * `--out DIR`: where `results.json` goes; by default the input, when it is one directory. A
//!   DIR that is not that one input also gets the merged `records.jsonl` and the benchmark's
//!   report (`performance.md`, `performance.json`, `history.jsonl`, the plots) from the input
//!   that has one, so that it reads like the results directory of a single run.
//! * `--inits LIST`: the inits the run was for, separated by commas or spaces. Their columns come
//!   first, in this order, and one without any record fails the report.
//! * `--summary FILE`: appends the tables in Markdown to FILE (GitHub's `$GITHUB_STEP_SUMMARY`),
//!   with the benchmark's Performance Summary when DIR has a `performance.md`.
//!
//! With `SCINIT_TEST_SESSION` set, only that run's records count. The tables are the same
//! whatever order the records come in: rows follow the scenario, then the column of the init.
//! Exit 0 when every verdict is acceptable, 1 when any is FAIL / UNEXPECTED-PASS / ERROR or an
//! init of `--inits` has no record, 2 on a usage error, or when an input cannot be read, has a
//! line that does not parse, or more than one input has a benchmark report. What could be read is
//! still reported and written; only when nothing could be read is nothing written.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::{json, Value};

#[path = "../../support/figures.rs"]
mod figures;

use figures::restart::{self, kind};

const USAGE: &str = "usage: scinit-report [--out DIR] [--inits LIST] [--summary FILE] [INPUT...]";

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

/// The benchmark's report (`tests/bench/report.rs`), whose summary the job summary shows.
const PERFORMANCE_MD: &str = "performance.md";

/// The benchmark's files besides its plots (every `.svg`): what a merged results directory takes
/// from the part that ran the benchmark.
const BENCH_REPORT: [&str; 3] = [PERFORMANCE_MD, "performance.json", "history.jsonl"];

/// The section of `performance.md` that the summary shows, as `tests/run-suite` prints it.
const PERFORMANCE_SUMMARY: &str = "## Performance Summary";

fn main() -> ExitCode {
    let session = std::env::var("SCINIT_TEST_SESSION").unwrap_or_default();
    let code = match parse_args(std::env::args_os().skip(1), session).and_then(|o| run(&o)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("scinit-report: {e}");
            2
        }
    };
    ExitCode::from(code)
}

struct Options {
    inputs: Vec<PathBuf>,
    out: PathBuf,
    /// `out` is not simply the one input directory: it gets the merged records and the
    /// benchmark's report too.
    merge: bool,
    inits: Vec<String>,
    summary: Option<PathBuf>,
    /// Only this run's records count (all of them when empty).
    session: String,
}

fn parse_args(
    args: impl IntoIterator<Item = OsString>,
    session: String,
) -> Result<Options, String> {
    let mut inputs = Vec::new();
    let (mut out, mut inits, mut summary) = (None, Vec::<String>::new(), None);
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value\n{USAGE}"));
        match arg.to_str() {
            Some("--out") => out = Some(PathBuf::from(value("--out")?)),
            Some("--summary") => summary = Some(PathBuf::from(value("--summary")?)),
            Some("--inits") => {
                let list = value("--inits")?.to_string_lossy().into_owned();
                for init in list.split(|c: char| c == ',' || c.is_whitespace()) {
                    if !init.is_empty() && !inits.iter().any(|i| i == init) {
                        inits.push(init.to_string());
                    }
                }
            }
            Some(option) if option.starts_with('-') => {
                return Err(format!("unknown option {option}\n{USAGE}"))
            }
            _ => inputs.push(PathBuf::from(arg)),
        }
    }
    if inputs.is_empty() {
        inputs.push("target/test-results".into());
    }
    let (out, merge) = match out {
        Some(out) => {
            let merge = !(inputs.len() == 1 && same_dir(&inputs[0], &out));
            (out, merge)
        }
        None if inputs.len() == 1 && !inputs[0].is_file() => (inputs[0].clone(), false),
        None => return Err(format!("several inputs, or a file, need --out DIR\n{USAGE}")),
    };
    Ok(Options { inputs, out, merge, inits, summary, session })
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// An input's records: a directory's `records.jsonl`, or the file itself.
fn records_file(input: &Path) -> PathBuf {
    if input.is_file() {
        input.to_path_buf()
    } else {
        input.join("records.jsonl")
    }
}

fn run(opts: &Options) -> Result<u8, String> {
    let parts = opts.inputs.iter().map(|input| {
        let file = records_file(input);
        let text = std::fs::read_to_string(&file).map_err(|e| e.to_string());
        (file.display().to_string(), text)
    });
    let Merged { records, problems: mut input_problems, read } = merge(parts);
    if read == 0 {
        // Nothing to report on: say why, where CI readers look too, and leave every file as it was.
        for p in &input_problems {
            eprintln!("scinit-report: {p}");
        }
        if let Some(path) = &opts.summary {
            append(path, &render_problems_markdown(&input_problems))?;
        }
        return Ok(2);
    }
    let records: Vec<Value> = records
        .into_iter()
        .filter(|r| opts.session.is_empty() || str_of(r, "session") == opts.session)
        .collect();
    if opts.merge {
        std::fs::create_dir_all(&opts.out)
            .map_err(|e| format!("creating {}: {e}", opts.out.display()))?;
        let lines: String = records.iter().map(|r| format!("{r}\n")).collect();
        write(&opts.out.join("records.jsonl"), &lines)?;
        let reports: Vec<&PathBuf> =
            opts.inputs.iter().filter(|i| i.join(PERFORMANCE_MD).is_file()).collect();
        match reports[..] {
            [] => {}
            [from] if same_dir(from, &opts.out) => {}
            [from] => copy_bench_report(from, &opts.out)?,
            _ => input_problems.push(format!(
                "a benchmark report in each of {}: a run has one, so none was taken",
                reports.iter().map(|r| r.display().to_string()).collect::<Vec<_>>().join(", ")
            )),
        }
    }
    let missing = missing_inits(&records, &opts.inits);
    let columns = columns(&records, &opts.inits);
    let problems: Vec<String> = missing
        .iter()
        .map(|init| format!("no record for init {init}: its part of the run recorded nothing"))
        .chain(input_problems.iter().cloned())
        .collect();
    let runtimes = runtimes(&records);
    let results = json!({
        "records": records,
        "matrix": matrix_json(&records),
        "runtimes": runtimes,
        "problems": problems,
    });
    let out = opts.out.join("results.json");
    write(&out, &serde_json::to_string_pretty(&results).map_err(|e| e.to_string())?)?;
    println!("OCI runtime: {}", runtimes.join(", "));
    print!("{}", render_matrix(&records, &columns));
    print!("{}", render_restart_table(&records, &columns));
    print!("{}", render_figures(&records, &columns));
    println!("results: {}", out.display());
    for p in &problems {
        eprintln!("scinit-report: {p}");
    }
    if let Some(path) = &opts.summary {
        // The benchmark's report, when this directory has one: the section run-suite prints.
        let performance = std::fs::read_to_string(opts.out.join(PERFORMANCE_MD))
            .ok()
            .and_then(|md| performance_summary(&md));
        let markdown = render_markdown(&records, &columns, &problems, performance.as_deref());
        append(path, &markdown)?;
    }
    let failed = records.iter().any(|r| is_failure(str_of(r, "verdict")));
    Ok(exit_code(!input_problems.is_empty(), failed || !missing.is_empty()))
}

/// 2 when an input could not be used as it is, else 1 when the run failed, else 0.
fn exit_code(input_problems: bool, failed: bool) -> u8 {
    match (input_problems, failed) {
        (true, _) => 2,
        (false, true) => 1,
        (false, false) => 0,
    }
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("writing {}: {e}", path.display()))
}

fn append(path: &Path, text: &str) -> Result<(), String> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| format!("appending to {}: {e}", path.display()))
}

/// Copies the benchmark's report, plots included, from `from` to `to`.
fn copy_bench_report(from: &Path, to: &Path) -> Result<(), String> {
    let entries = std::fs::read_dir(from).map_err(|e| format!("{}: {e}", from.display()))?;
    for entry in entries {
        let path = entry.map_err(|e| format!("{}: {e}", from.display()))?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if BENCH_REPORT.contains(&name) || name.ends_with(".svg") {
            std::fs::copy(&path, to.join(name))
                .map_err(|e| format!("copying {} to {}: {e}", path.display(), to.display()))?;
        }
    }
    Ok(())
}

/// The records of several parts of a run, and what went wrong reading them.
struct Merged {
    /// In the order of the parts, each part in its own order, each record once.
    records: Vec<Value>,
    problems: Vec<String>,
    /// How many parts could be read.
    read: usize,
}

/// Merges the parts `(name, its text or why it could not be read)`. A record that a part shares
/// with an earlier one is the same record (one artifact copied into another), not a second run of
/// its scenario: it counts once. A line that does not parse (a part stopped mid-write) is left
/// out, with a problem naming it; so is a part that could not be read at all (a shard that failed
/// before it recorded anything), and the other parts still count.
fn merge(parts: impl IntoIterator<Item = (String, Result<String, String>)>) -> Merged {
    let mut merged = Merged { records: Vec::new(), problems: Vec::new(), read: 0 };
    let mut seen = HashSet::new();
    for (name, text) in parts {
        let text = match text {
            Ok(text) => text,
            Err(e) => {
                merged.problems.push(format!(
                    "{name}: {e}; no records from this part (did it stop before \
                     recording anything?)"
                ));
                continue;
            }
        };
        merged.read += 1;
        let (records, problems) = parse_records(&text);
        merged.problems.extend(problems.into_iter().map(|p| format!("{name} {p}")));
        // serde_json's maps keep their keys sorted, so equal records print the same.
        merged.records.extend(records.into_iter().filter(|r| seen.insert(r.to_string())));
    }
    merged
}

/// The records of one `records.jsonl`, and a message for each line that does not parse.
fn parse_records(text: &str) -> (Vec<Value>, Vec<String>) {
    let mut records = Vec::new();
    let mut problems = Vec::new();
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        match serde_json::from_str(line) {
            Ok(record) => records.push(record),
            Err(e) => problems.push(format!("line {}: {e} (left out)", n + 1)),
        }
    }
    (records, problems)
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

/// The OCI runtimes the records ran under (`SCINIT_TEST_RUNTIME`, `default` for the engine's
/// own), each once, in order: a run has one, a merge of runs may have several.
fn runtimes(records: &[Value]) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    for record in records {
        let runtime = record.get("runtime").and_then(Value::as_str).unwrap_or("default");
        if !seen.iter().any(|r| r == runtime) {
            seen.push(runtime.to_string());
        }
    }
    seen
}

/// The matrix's columns: the inits the run was for, in that order, then any other init that
/// recorded something, in the order met.
fn columns(records: &[Value], expected: &[String]) -> Vec<String> {
    let mut columns = expected.to_vec();
    for r in records {
        let init = str_of(r, "init");
        if !columns.iter().any(|c| c == init) {
            columns.push(init.to_string());
        }
    }
    columns
}

/// The inits the run was for that recorded nothing.
fn missing_inits(records: &[Value], expected: &[String]) -> Vec<String> {
    let recorded: BTreeSet<&str> = records.iter().map(|r| str_of(r, "init")).collect();
    expected.iter().filter(|i| !recorded.contains(i.as_str())).cloned().collect()
}

/// Records sorted by scenario, then by their init's column; records of the same scenario and
/// init keep their order. Parallel tests and shards record in whatever order they finish.
fn in_table_order<'a>(records: &'a [Value], columns: &[String]) -> Vec<&'a Value> {
    let column = |r: &Value| columns.iter().position(|c| c == str_of(r, "init"));
    let mut sorted: Vec<&Value> = records.iter().collect();
    sorted.sort_by(|a, b| {
        str_of(a, "scenario").cmp(str_of(b, "scenario")).then(column(a).cmp(&column(b)))
    });
    sorted
}

fn matrix_json(records: &[Value]) -> Value {
    json!(verdicts(records))
}

/// The verdict matrix: a header, then one row per scenario.
fn matrix_rows(records: &[Value], columns: &[String]) -> Vec<Vec<String>> {
    let mut table = vec![std::iter::once("scenario".to_string())
        .chain(columns.iter().cloned())
        .collect::<Vec<_>>()];
    for (scenario, by_init) in verdicts(records) {
        let mut row = vec![scenario];
        row.extend(columns.iter().map(|i| by_init.get(i).cloned().unwrap_or_else(|| "-".into())));
        table.push(row);
    }
    table
}

/// A verdict that is not a plain pass, with the first line of its detail.
struct Difference<'a> {
    scenario: &'a str,
    init: &'a str,
    verdict: &'a str,
    first_line: &'a str,
}

fn differences<'a>(records: &'a [Value], columns: &[String]) -> Vec<Difference<'a>> {
    in_table_order(records, columns)
        .into_iter()
        .filter(|r| {
            matches!(
                str_of(r, "verdict"),
                "expected-difference" | "varies:difference" | "FAIL" | "UNEXPECTED-PASS" | "ERROR"
            )
        })
        .map(|r| Difference {
            scenario: str_of(r, "scenario"),
            init: str_of(r, "init"),
            verdict: str_of(r, "verdict"),
            first_line: str_of(r, "detail").lines().next().unwrap_or(""),
        })
        .collect()
}

fn render_matrix(records: &[Value], columns: &[String]) -> String {
    let table = matrix_rows(records, columns);
    let mut out = format!("\n== Verdicts: scenario × init ({} scenarios) ==\n", table.len() - 1);
    out.push_str(&render_table(&table));
    let differences = differences(records, columns);
    if !differences.is_empty() {
        out.push_str("\nWhy they differ:\n");
        for d in differences {
            let _ =
                writeln!(out, "  {} / {} [{}]: {}", d.scenario, d.init, d.verdict, d.first_line);
        }
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

/// The restart table: a header and one row per record with restart figures; nothing without any.
fn restart_rows(records: &[Value], columns: &[String]) -> Vec<Vec<String>> {
    let rows: Vec<Vec<String>> = in_table_order(records, columns)
        .into_iter()
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
        return rows;
    }
    let mut table = vec![["scenario", "init", "kind"]
        .iter()
        .chain(RESTART_TABLE.iter().map(|(_, h)| h))
        .map(|s| s.to_string())
        .collect()];
    table.extend(rows);
    table
}

fn render_restart_table(records: &[Value], columns: &[String]) -> String {
    let table = restart_rows(records, columns);
    if table.is_empty() {
        return String::new();
    }
    format!("\n== Restarts under load ==\n{}", render_table(&table))
}

/// Every other figure: a header and one row per figure; nothing without any.
fn figure_rows(records: &[Value], columns: &[String]) -> Vec<Vec<String>> {
    let restart_keys: BTreeSet<&str> =
        RESTART_TABLE.iter().chain(&RESTART_KINDS).map(|(k, _)| *k).collect();
    let mut table =
        vec![vec!["scenario".to_string(), "init".into(), "figure".into(), "value".into()]];
    for r in in_table_order(records, columns) {
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
        table.clear();
    }
    table
}

fn render_figures(records: &[Value], columns: &[String]) -> String {
    let table = figure_rows(records, columns);
    if table.is_empty() {
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

// --- Markdown, for GitHub's job summary ------------------------------------------------------

/// The same tables in Markdown: problems first, failing verdicts in bold, the figures folded
/// away (there are many), then the benchmark's Performance Summary.
fn render_markdown(
    records: &[Value],
    columns: &[String],
    problems: &[String],
    performance: Option<&str>,
) -> String {
    let mut out = render_problems_markdown(problems);
    let mut matrix = matrix_rows(records, columns);
    for cell in matrix.iter_mut().skip(1).flat_map(|row| row.iter_mut().skip(1)) {
        if is_failure(cell) {
            *cell = format!("**{cell}**");
        }
    }
    let _ = write!(
        out,
        "## Verdicts: scenario × init ({} scenarios)\n\n{}",
        matrix.len() - 1,
        markdown_table(&matrix)
    );
    let differences = differences(records, columns);
    if !differences.is_empty() {
        out.push_str("\n### Why they differ\n\n");
        for d in differences {
            let _ =
                writeln!(out, "- `{}` / {} [{}]: {}", d.scenario, d.init, d.verdict, d.first_line);
        }
    }
    let restarts = restart_rows(records, columns);
    if !restarts.is_empty() {
        let _ = write!(out, "\n### Restarts under load\n\n{}", markdown_table(&restarts));
    }
    let figures = figure_rows(records, columns);
    if !figures.is_empty() {
        let _ = write!(
            out,
            "\n<details><summary>Figures ({})</summary>\n\n{}\n</details>\n",
            figures.len() - 1,
            markdown_table(&figures)
        );
    }
    if let Some(section) = performance {
        let _ = write!(out, "\n{section}");
    }
    out
}

fn render_problems_markdown(problems: &[String]) -> String {
    if problems.is_empty() {
        return String::new();
    }
    let mut out = String::from("## Problems with this run's records\n\n");
    for p in problems {
        let _ = writeln!(out, "- {p}");
    }
    out.push('\n');
    out
}

fn markdown_table(rows: &[Vec<String>]) -> String {
    let mut out = String::new();
    for (n, row) in rows.iter().enumerate() {
        let cells: Vec<String> = row.iter().map(|c| c.replace('|', "\\|")).collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
        if n == 0 {
            let _ = writeln!(out, "|{}", "---|".repeat(row.len()));
        }
    }
    out
}

/// The Performance Summary section of `performance.md`, up to the next section.
fn performance_summary(md: &str) -> Option<String> {
    let mut on = false;
    let mut out = String::new();
    for line in md.lines() {
        if line.starts_with("## ") {
            on = line == PERFORMANCE_SUMMARY;
        }
        if on {
            out.push_str(line);
            out.push('\n');
        }
    }
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECORDS: &str = r#"{"scenario":"a","init":"scinit","verdict":"pass","detail":"","measurements":[]}
{"scenario":"a","init":"tini","verdict":"expected-difference","detail":"tini forwards to the pid\nmore","measurements":[]}
{"scenario":"r","init":"scinit","verdict":"pass","detail":"","measurements":[{"name":"restarts","value":50,"unit":"count"},{"name":"failed","value":0,"unit":"count"},{"name":"rss","value":1.5,"unit":"MiB"}]}
{"scenario":"s","init":"scinit","verdict":"pass","detail":"","measurements":[{"name":"restarts","value":10,"unit":"count"},{"name":"kind_sighup_start_first","value":1,"unit":"kind"}]}
"#;

    fn records(text: &str) -> Vec<Value> {
        let (records, problems) = parse_records(text);
        assert!(problems.is_empty(), "{problems:?}");
        records
    }

    fn part(name: &str, text: &str) -> (String, Result<String, String>) {
        (name.to_string(), Ok(text.to_string()))
    }

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    /// Every table a run prints, as one text.
    fn tables(records: &[Value], expected: &[String]) -> String {
        let columns = columns(records, expected);
        [
            render_matrix(records, &columns),
            render_restart_table(records, &columns),
            render_figures(records, &columns),
        ]
        .concat()
    }

    #[test]
    fn the_runtime_of_the_records_is_named_once_and_old_records_count_as_the_default() {
        let mut records = records(RECORDS);
        assert_eq!(runtimes(&records), ["default"]);
        records[1]["runtime"] = "crun".into();
        assert_eq!(runtimes(&records), ["default", "crun"]);
    }

    #[test]
    fn the_matrix_has_a_column_per_init_and_explains_differences() {
        let records = records(RECORDS);
        let text = render_matrix(&records, &columns(&records, &[]));
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
        let records = records(RECORDS);
        let columns = columns(&records, &[]);
        let restarts = render_restart_table(&records, &columns);
        assert!(restarts.contains("r         scinit  -                   50"), "{restarts}");
        assert!(restarts.contains("s         scinit  SIGHUP start-first  10"), "{restarts}");
        let figures = render_figures(&records, &columns);
        assert!(figures.contains("rss     1.50 MiB"), "{figures}");
        assert!(!figures.contains("restarts") && !figures.contains("kind_"), "{figures}");
    }

    #[test]
    fn failures_are_detected() {
        assert!(is_failure("FAIL") && is_failure("UNEXPECTED-PASS") && is_failure("ERROR"));
        assert!(!is_failure("expected-difference") && !is_failure("n/a"));
    }

    #[test]
    fn two_partitions_and_another_init_give_the_tables_of_one_run() {
        // One run as it recorded, scinit's scenarios first, then tini's.
        let single = records(RECORDS);
        let lines: Vec<&str> = RECORDS.lines().collect();
        // The same run split: scinit across two partitions that finished in another order, and
        // tini on a machine of its own.
        let merged = merge([
            part("scinit-1", &format!("{}\n{}\n", lines[3], lines[0])),
            part("scinit-2", &format!("{}\n", lines[2])),
            part("tini", &format!("{}\n", lines[1])),
        ]);
        assert!(merged.problems.is_empty(), "{:?}", merged.problems);
        assert_eq!(merged.records.len(), single.len());
        let expected = strings(&["scinit", "tini"]);
        assert_eq!(tables(&merged.records, &expected), tables(&single, &expected));
        assert_eq!(tables(&merged.records, &expected), tables(&single, &[]));
        assert_eq!(matrix_json(&merged.records), matrix_json(&single));
    }

    #[test]
    fn a_record_in_two_parts_counts_once() {
        let lines: Vec<&str> = RECORDS.lines().collect();
        // The benchmark's part starts from a copy of the shards' records and adds its own.
        let bench = format!("{}\n{}\n{}\n", lines[0], lines[1], lines[2]);
        let merged = merge([
            part("scinit", &format!("{}\n{}\n", lines[0], lines[2])),
            part("tini", &format!("{}\n", lines[1])),
            part("bench", &bench),
        ]);
        assert_eq!(merged.records.len(), 3, "{:?}", merged.records);
        assert_eq!(merged.records, records(&format!("{}\n{}\n{}\n", lines[0], lines[2], lines[1])));
        // Reformatted, the same record is still the same record.
        let spaced = lines[1].replace(':', ": ");
        let merged = merge([part("a", lines[1]), part("b", &spaced)]);
        assert_eq!(merged.records.len(), 1);
        // A scenario that really ran twice (another detail) is kept twice; the last one wins.
        let again = lines[0].replace(r#""verdict":"pass""#, r#""verdict":"FAIL""#);
        let merged = merge([part("a", lines[0]), part("b", &again)]);
        assert_eq!(merged.records.len(), 2);
        assert_eq!(verdicts(&merged.records)["a"]["scinit"], "FAIL");
    }

    #[test]
    fn an_init_without_records_is_missing_and_keeps_its_column() {
        let records = records(RECORDS);
        let expected = strings(&["scinit", "dumb-init", "tini"]);
        assert_eq!(missing_inits(&records, &expected), strings(&["dumb-init"]));
        let columns = columns(&records, &expected);
        assert_eq!(columns, expected);
        let text = render_matrix(&records, &columns);
        assert!(text.contains("scenario  scinit  dumb-init  tini"), "{text}");
        assert!(text.contains("r         pass    -          -"), "{text}");
        // Inits the run was not told about still get a column, after the others.
        let columns = super::columns(&records, &strings(&["tini"]));
        assert_eq!(columns, strings(&["tini", "scinit"]));
    }

    #[test]
    fn a_shard_that_failed_is_a_problem_and_the_others_still_count() {
        let lines: Vec<&str> = RECORDS.lines().collect();
        let merged = merge([
            part("scinit-1", &format!("{}\n", lines[0])),
            ("scinit-2".to_string(), Err("No such file or directory (os error 2)".to_string())),
            // Stopped while writing its second record.
            part("tini", &format!("{}\n{{\"scenario\":\"b\",\"in", lines[1])),
        ]);
        assert_eq!(merged.read, 2);
        assert_eq!(merged.records.len(), 2);
        assert_eq!(merged.problems.len(), 2, "{:?}", merged.problems);
        assert!(merged.problems[0].starts_with("scinit-2: No such file"), "{:?}", merged.problems);
        assert!(merged.problems[1].starts_with("tini line 2: "), "{:?}", merged.problems);
        // Unreadable parts outrank failing verdicts; both fail the report.
        assert_eq!(exit_code(true, false), 2);
        assert_eq!(exit_code(true, true), 2);
        assert_eq!(exit_code(false, true), 1);
        assert_eq!(exit_code(false, false), 0);
    }

    #[test]
    fn markdown_marks_failures_and_keeps_pipes_inside_cells() {
        let text = RECORDS
            .replace(
                r#""init":"tini","verdict":"expected-difference""#,
                r#""init":"tini","verdict":"FAIL""#,
            )
            .replace("tini forwards to the pid", "a | b");
        let records = records(&text);
        let columns = columns(&records, &[]);
        let md = render_markdown(&records, &columns, &strings(&["scinit-2: gone"]), Some("## P\n"));
        assert!(
            md.starts_with("## Problems with this run's records\n\n- scinit-2: gone\n"),
            "{md}"
        );
        assert!(md.contains("| scenario | scinit | tini |\n|---|---|---|\n"), "{md}");
        assert!(md.contains("| a | pass | **FAIL** |"), "{md}");
        assert!(md.contains("- `a` / tini [FAIL]: a | b"), "{md}");
        assert!(md.contains("| r | scinit | - | 50 |"), "{md}");
        assert!(md.contains("<details><summary>Figures (1)</summary>"), "{md}");
        assert!(md.ends_with("## P\n"), "{md}");
        assert_eq!(markdown_table(&[strings(&["x|y"])]), "| x\\|y |\n|---|\n");
    }

    #[test]
    fn the_performance_summary_is_its_section_only() {
        let md = "# Performance\n\nintro\n\n## Performance Summary\n\n| a |\n\nsuite\n\n## Plots\n\n- p\n";
        assert_eq!(
            performance_summary(md).as_deref(),
            Some("## Performance Summary\n\n| a |\n\nsuite\n\n")
        );
        assert_eq!(performance_summary("# Performance\n"), None);
    }

    #[test]
    fn arguments() {
        let args = |list: &[&str]| parse_args(list.iter().map(OsString::from), String::new());
        let single = args(&[]).unwrap();
        assert_eq!(single.inputs, [PathBuf::from("target/test-results")]);
        assert_eq!(single.out, PathBuf::from("target/test-results"));
        assert!(!single.merge);
        let merged = args(&["--out", "m", "--inits", "scinit, tini scinit", "a", "b"]).unwrap();
        assert_eq!(merged.inputs, [PathBuf::from("a"), PathBuf::from("b")]);
        assert!(merged.merge);
        assert_eq!(merged.inits, strings(&["scinit", "tini"]));
        assert!(args(&["a", "b"]).is_err(), "several inputs need --out");
        assert!(args(&["--out"]).is_err());
        assert!(args(&["--bogus"]).is_err());
    }

    /// A scratch directory of this test process, removed when dropped.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let dir =
                std::env::temp_dir().join(format!("scinit-report-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }

        fn put(&self, path: &str, text: &str) {
            let path = self.0.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }

        fn read(&self, path: &str) -> String {
            std::fs::read_to_string(self.0.join(path)).unwrap()
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn a_merge_writes_one_results_directory() {
        let s = Scratch::new("merge");
        let lines: Vec<&str> = RECORDS.lines().collect();
        s.put("scinit-1/records.jsonl", &format!("{}\n{}\n", lines[0], lines[2]));
        s.put("scinit-1/junit-scinit.xml", "<testsuites/>");
        s.put("tini/records.jsonl", &format!("{}\n", lines[1]));
        s.put("bench/records.jsonl", &format!("{}\n{}\n", lines[0], lines[3]));
        s.put("bench/performance.md", "# Performance\n\n## Performance Summary\n\nfast\n");
        s.put("bench/rss.svg", "<svg/>");
        s.put("summary.md", "before\n");
        let dirs = ["scinit-1", "scinit-2", "tini", "bench"].map(|d| s.0.join(d).into_os_string());
        let out = s.0.join("merged");
        let mut argv = vec!["--out".into(), out.clone().into_os_string()];
        argv.extend(["--inits".into(), "scinit,tini,catatonit".into()]);
        argv.extend(["--summary".into(), s.0.join("summary.md").into_os_string()]);
        argv.extend(dirs);
        let opts = parse_args(argv, String::new()).unwrap();
        // scinit-2 left nothing: the merge says so and fails, but writes what it has.
        assert_eq!(run(&opts).unwrap(), 2);
        let written = records(&s.read("merged/records.jsonl"));
        assert_eq!(
            written,
            records(&format!("{}\n{}\n{}\n{}\n", lines[0], lines[2], lines[1], lines[3]))
        );
        let results: Value = serde_json::from_str(&s.read("merged/results.json")).unwrap();
        assert_eq!(results["records"].as_array().unwrap().len(), 4);
        assert_eq!(results["matrix"]["s"]["scinit"], "pass");
        let problems = results["problems"].to_string();
        assert!(problems.contains("no record for init catatonit"), "{problems}");
        assert!(problems.contains("scinit-2"), "{problems}");
        assert_eq!(s.read("merged/performance.md"), s.read("bench/performance.md"));
        assert_eq!(s.read("merged/rss.svg"), "<svg/>");
        assert!(!out.join("junit-scinit.xml").exists());
        let summary = s.read("summary.md");
        assert!(summary.starts_with("before\n## Problems"), "{summary}");
        assert!(summary.contains("| scenario | scinit | tini | catatonit |"), "{summary}");
        assert!(summary.ends_with("## Performance Summary\n\nfast\n"), "{summary}");
    }

    #[test]
    fn a_single_run_only_gets_its_results_and_nothing_read_writes_nothing() {
        let s = Scratch::new("single");
        s.put("run/records.jsonl", RECORDS);
        let opts = parse_args([s.0.join("run").into_os_string()], String::new()).unwrap();
        assert_eq!(run(&opts).unwrap(), 0);
        assert!(s.0.join("run/results.json").is_file());
        assert_eq!(s.read("run/records.jsonl"), RECORDS);
        // Another session's records do not count.
        let mut opts = opts;
        opts.session = "other".into();
        assert_eq!(run(&opts).unwrap(), 0);
        let results: Value = serde_json::from_str(&s.read("run/results.json")).unwrap();
        assert_eq!(results["records"].as_array().unwrap().len(), 0);
        let opts = parse_args([s.0.join("none").into_os_string()], String::new()).unwrap();
        assert_eq!(run(&opts).unwrap(), 2);
        assert!(!s.0.join("none").exists());
    }
}
