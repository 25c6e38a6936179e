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
//! A scenario that needs a capability the init lacks (`fixtures/inits.txt`) is `n/a` without a
//! line: the file lists only real differences. A missing entry, an entry for no scenario, an
//! entry the capabilities already decide, an unexpected pass and an unexpected failure all fail
//! the suite: the table cannot go stale.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::OnceLock;

use anyhow::{anyhow, bail, Context, Result};

use super::inits::{self, Capability, Init};
use super::run::{DECLARE_NEEDS, NEEDS_LINE};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    Pass,
    Differs(String),
    NotApplicable(String),
    /// A race in this init makes either outcome possible (e.g. dumb-init loses an early SIGTERM
    /// in a few runs out of hundreds); both are accepted and reported as such.
    Varies(String),
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expect::Pass => f.write_str("pass"),
            Expect::Differs(why) => write!(f, "differs ({why})"),
            Expect::NotApplicable(why) => write!(f, "n/a ({why})"),
            Expect::Varies(why) => write!(f, "either outcome ({why})"),
        }
    }
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
    /// The scenario cannot run where this process runs (e.g. it needs the host network to be
    /// this process's network); the text says why. Whatever the expectation, the scenario is
    /// `n/a` here.
    NotApplicable(String),
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
        (_, Observed::NotApplicable(_)) => Verdict::NotApplicable,
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

/// The table of the init named `name` (a row of `fixtures/inits.txt`), read once per process.
pub fn table(name: &str) -> Result<&'static Table> {
    /// Per init name, its parsed table or why it could not be read; the outer error is the init
    /// table's own.
    type Tables = Result<BTreeMap<String, Result<Table, String>>, String>;
    static TABLES: OnceLock<Tables> = OnceLock::new();
    let tables = TABLES
        .get_or_init(|| {
            let rows = inits::table().map_err(|e| format!("{e:#}"))?;
            let dir = crate::static_build::workspace_root().join("fixtures/expected_outputs");
            Ok(rows
                .iter()
                .map(|row| {
                    let path = dir.join(format!("{}.txt", row.name));
                    let parsed = std::fs::read_to_string(&path)
                        .map_err(|e| format!("{}: {e}", path.display()))
                        .and_then(|text| {
                            parse(&text).map_err(|e| format!("{}: {e:#}", path.display()))
                        });
                    (row.name.clone(), parsed)
                })
                .collect())
        })
        .as_ref()
        .map_err(|e| anyhow!("{e}"))?;
    tables
        .get(name)
        .ok_or_else(|| anyhow!("no expectations for {name}"))?
        .as_ref()
        .map_err(|e| anyhow!("{e}"))
}

/// What `init` is expected to do in `scenario`, which needs `needs`: `n/a` when the init lacks
/// one of them, else its line in the expected outputs.
pub fn expect(init: &Init, scenario: &str, needs: &[Capability]) -> Result<Expect> {
    let name = &init.row.name;
    let line = table(name)?.get(scenario).cloned();
    match (init.lacks(needs), line) {
        (Some(missing), None) => Ok(Expect::NotApplicable(missing.to_string())),
        (Some(missing), Some(_)) => bail!(
            "fixtures/expected_outputs/{name}.txt has a line for `{scenario}`, which the init's \
             capabilities already decide ({missing}): remove it"
        ),
        (None, Some(expect)) => Ok(expect),
        (None, None) => bail!(
            "fixtures/expected_outputs/{name}.txt has no entry for scenario `{scenario}`: add \
             `pass`, `differs <why>` or `varies <why>`"
        ),
    }
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
        let (word, reason) =
            rest.trim().split_once(char::is_whitespace).unwrap_or((rest.trim(), ""));
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

/// Every scenario compiled into this test binary, with the capabilities it needs: each
/// scenario test, run with [`DECLARE_NEEDS`] set, prints one line and returns at once. The
/// suite-power tests judge broken inits, not the init under test: they are not scenarios.
pub fn compiled_scenarios() -> Result<BTreeMap<String, Vec<Capability>>> {
    let exe = std::env::current_exe().context("locating the test binary")?;
    let out = std::process::Command::new(exe)
        .args(["scenarios::", "--nocapture", "--test-threads", "1"])
        .env(DECLARE_NEEDS, "1")
        .output()
        .context("asking this binary's scenarios what they need")?;
    let mut scenarios = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stderr).lines() {
        let Some(rest) = line.strip_prefix(NEEDS_LINE) else { continue };
        let mut words = rest.split_whitespace();
        let name = words.next().context("a needs line without a scenario name")?.to_string();
        let needs = words
            .next()
            .unwrap_or("")
            .split(',')
            .filter(|w| !w.is_empty())
            .map(|w| {
                Capability::ALL.into_iter().find(|c| c.name() == w).context("unknown capability")
            })
            .collect::<Result<Vec<_>>>()?;
        if scenarios.insert(name.clone(), needs).is_some() {
            bail!("scenario name `{name}` is used twice");
        }
    }
    Ok(scenarios)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_parse_into_expectations_and_bad_lines_are_refused() {
        let t =
            parse("# c\na pass\nb differs tini forwards to the pid\nc  n/a   no ports\n").unwrap();
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

    /// Every compiled scenario has an entry for every init that can run it, no entry where the
    /// capabilities decide, and every entry names a scenario.
    #[test]
    fn expected_outputs_cover_every_scenario_for_every_init_and_nothing_else() {
        let scenarios = compiled_scenarios().unwrap();
        assert!(scenarios.len() > 50, "only {} scenarios found: {scenarios:?}", scenarios.len());
        let mut problems = Vec::new();
        for row in inits::table().unwrap() {
            let init = Init { row, label: row.name.clone(), binary: None, env: Vec::new() };
            for (scenario, needs) in &scenarios {
                if let Err(e) = expect(&init, scenario, needs) {
                    problems.push(format!("{e:#}"));
                }
            }
            let table = match table(&row.name) {
                Ok(t) => t,
                Err(e) => {
                    problems.push(format!("{e:#}"));
                    continue;
                }
            };
            for s in table.keys().filter(|s| !scenarios.contains_key(*s)) {
                problems.push(format!("{}.txt: `{s}` is no scenario", row.name));
            }
        }
        assert!(problems.is_empty(), "expected outputs are stale:\n{}", problems.join("\n"));
    }
}
