//! Per-init expectations, as data, judged strictly (nextest's `EXPECTED_TEST_SUITES` /
//! `check_run_output`). `fixtures/expected_outputs/<init>.txt` has one line per scenario:
//!
//! ```text
//! <scenario>  pass
//! <scenario>  differs  <why this init behaves differently>
//! <scenario>  n/a      <why the scenario cannot be asked of this init>
//! <scenario>  varies   <why the outcome is a matter of chance for this init (a race)>
//! ```
//!
//! A missing entry, an entry for no scenario, an unexpected pass and an unexpected failure all
//! fail the suite: the table cannot go stale.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::OnceLock;

use anyhow::{anyhow, bail, Context, Result};

use super::init_profile::InitKind;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    Pass,
    Differs(String),
    NotApplicable(String),
    /// A race in this init makes either outcome possible (e.g. dumb-init loses an early SIGTERM
    /// in a few runs out of hundreds); both are accepted and reported as such.
    Varies(String),
}

/// What a scenario run showed.
#[derive(Debug, Clone)]
pub enum Observed {
    /// The init behaved as the contract says.
    Pass,
    /// The init behaved differently; the text says how (from the scenario's checks).
    Deviation(String),
    /// The harness itself failed (Docker error, timeout of the harness, bad fixture).
    Error(String),
}

/// The judgement of one scenario against one init.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    ExpectedDifference,
    NotApplicable,
    /// An init known to be racy passed this time.
    VariedPass,
    /// An init known to be racy lost the race this time.
    VariedDifference,
    Fail,
    UnexpectedPass,
    Error,
}

impl Verdict {
    pub fn is_failure(self) -> bool {
        matches!(self, Verdict::Fail | Verdict::UnexpectedPass | Verdict::Error)
    }

    pub fn name(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::ExpectedDifference => "expected-difference",
            Verdict::NotApplicable => "n/a",
            Verdict::VariedPass => "varies:pass",
            Verdict::VariedDifference => "varies:difference",
            Verdict::Fail => "FAIL",
            Verdict::UnexpectedPass => "UNEXPECTED-PASS",
            Verdict::Error => "ERROR",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

pub fn judge(expect: &Expect, observed: &Observed) -> Verdict {
    match (expect, observed) {
        (_, Observed::Error(_)) => Verdict::Error,
        (Expect::Pass, Observed::Pass) => Verdict::Pass,
        (Expect::Pass, Observed::Deviation(_)) => Verdict::Fail,
        (Expect::Differs(_), Observed::Deviation(_)) => Verdict::ExpectedDifference,
        (Expect::Differs(_), Observed::Pass) => Verdict::UnexpectedPass,
        (Expect::NotApplicable(_), _) => Verdict::NotApplicable,
        (Expect::Varies(_), Observed::Pass) => Verdict::VariedPass,
        (Expect::Varies(_), Observed::Deviation(_)) => Verdict::VariedDifference,
    }
}

pub type Table = BTreeMap<String, Expect>;

fn expected_dir() -> PathBuf {
    crate::static_build::workspace_root().join("fixtures/expected_outputs")
}

/// The table of `init` (`scinit`, `tini`, ...), read once per process.
pub fn table(init: InitKind) -> Result<&'static Table> {
    static TABLES: OnceLock<BTreeMap<&'static str, Result<Table, String>>> = OnceLock::new();
    let tables = TABLES.get_or_init(|| {
        InitKind::ALL
            .into_iter()
            .map(|k| {
                let path = expected_dir().join(format!("{}.txt", k.name()));
                let parsed = std::fs::read_to_string(&path)
                    .map_err(|e| format!("{}: {e}", path.display()))
                    .and_then(|text| parse(&text).map_err(|e| format!("{}: {e:#}", path.display())));
                (k.name(), parsed)
            })
            .collect()
    });
    tables
        .get(init.name())
        .ok_or_else(|| anyhow!("no expectations for {}", init.name()))?
        .as_ref()
        .map_err(|e| anyhow!("{e}"))
}

pub fn lookup(init: InitKind, scenario: &str) -> Result<Expect> {
    table(init)?.get(scenario).cloned().ok_or_else(|| {
        anyhow!(
            "fixtures/expected_outputs/{}.txt has no entry for scenario `{scenario}`: add `pass`, `differs <why>` or `n/a <why>`",
            init.name()
        )
    })
}

pub fn parse(text: &str) -> Result<Table> {
    let mut table = Table::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut parts = line.splitn(3, char::is_whitespace);
        let scenario = parts.next().unwrap_or_default().to_string();
        let rest = parts.collect::<Vec<_>>().join(" ");
        let (word, reason) = rest.trim().split_once(char::is_whitespace).unwrap_or((rest.trim(), ""));
        let reason = reason.trim().to_string();
        let expect = match word {
            "pass" if reason.is_empty() => Expect::Pass,
            "differs" if !reason.is_empty() => Expect::Differs(reason),
            "n/a" if !reason.is_empty() => Expect::NotApplicable(reason),
            "varies" if !reason.is_empty() => Expect::Varies(reason),
            "pass" => bail!("line {}: `pass` takes no reason", n + 1),
            "differs" | "n/a" | "varies" => bail!("line {}: `{word}` needs a reason", n + 1),
            other => bail!("line {}: `{other}` is not pass, differs, n/a or varies", n + 1),
        };
        if table.insert(scenario.clone(), expect).is_some() {
            bail!("line {}: `{scenario}` appears twice", n + 1);
        }
    }
    Ok(table)
}

/// The scenario ids compiled into this test binary: every test under `scenarios::` (except the
/// suite-power tests, which judge broken inits, not the init under test), named by its function.
fn compiled_scenarios() -> Result<Vec<String>> {
    let exe = std::env::current_exe().context("locating the test binary")?;
    let out = std::process::Command::new(exe)
        .args(["--list", "--format", "terse"])
        .output()
        .context("listing this binary's tests")?;
    let listing = String::from_utf8_lossy(&out.stdout);
    Ok(listing
        .lines()
        .filter_map(|l| l.strip_suffix(": test"))
        .filter(|path| path.starts_with("scenarios::") && !path.starts_with("scenarios::suite_power::"))
        .map(|path| path.rsplit("::").next().unwrap_or(path).to_string())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_parse_into_expectations_and_bad_lines_are_refused() {
        let t = parse("# c\na pass\nb differs tini forwards to the pid\nc  n/a   no ports\n").unwrap();
        assert_eq!(t["a"], Expect::Pass);
        assert_eq!(t["b"], Expect::Differs("tini forwards to the pid".into()));
        assert_eq!(t["c"], Expect::NotApplicable("no ports".into()));
        assert!(parse("a differs").is_err());
        assert!(parse("a pass\na pass").is_err());
        assert!(parse("a maybe").is_err());
    }

    #[test]
    fn verdicts_follow_the_table() {
        let dev = Observed::Deviation("x".into());
        assert_eq!(judge(&Expect::Pass, &Observed::Pass), Verdict::Pass);
        assert_eq!(judge(&Expect::Pass, &dev), Verdict::Fail);
        assert_eq!(judge(&Expect::Differs("r".into()), &dev), Verdict::ExpectedDifference);
        assert_eq!(judge(&Expect::Differs("r".into()), &Observed::Pass), Verdict::UnexpectedPass);
        assert_eq!(judge(&Expect::Pass, &Observed::Error("e".into())), Verdict::Error);
        assert!(Verdict::UnexpectedPass.is_failure());
        let racy = Expect::Varies("race".into());
        assert_eq!(judge(&racy, &Observed::Pass), Verdict::VariedPass);
        assert_eq!(judge(&racy, &dev), Verdict::VariedDifference);
    }

    /// Every compiled scenario has an entry for every init, and every entry names a scenario.
    #[test]
    fn expected_outputs_cover_every_scenario_for_every_init_and_nothing_else() {
        let scenarios = compiled_scenarios().unwrap();
        assert!(!scenarios.is_empty(), "no scenarios found in the test listing");
        let mut problems = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for s in &scenarios {
            if !seen.insert(s) {
                problems.push(format!("scenario name `{s}` is used twice"));
            }
        }
        for kind in InitKind::ALL {
            let table = match table(kind) {
                Ok(t) => t,
                Err(e) => {
                    problems.push(format!("{e:#}"));
                    continue;
                }
            };
            for s in &scenarios {
                if !table.contains_key(s) {
                    problems.push(format!("{}.txt: no entry for `{s}`", kind.name()));
                }
            }
            for s in table.keys() {
                if !seen.contains(s) {
                    problems.push(format!("{}.txt: `{s}` is no scenario", kind.name()));
                }
            }
        }
        assert!(problems.is_empty(), "expected outputs are stale:\n{}", problems.join("\n"));
    }
}
