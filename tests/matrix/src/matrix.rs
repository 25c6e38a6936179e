//! The table as data: for every scenario (a row, under its theme) and every init of
//! `fixtures/inits.txt` (a column), what the expected outputs say, checked the way the harness
//! checks them, so that a table that disagrees with the suite cannot be written.

use std::collections::BTreeMap;
use std::path::Path;

use crate::fixtures::{self, Binary, Expect, Init};
use crate::source::{self, Scenario};

/// One cell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    Pass,
    /// The init behaves otherwise: the number of the note that says how.
    Differs(usize),
    /// Either outcome, a race in the init: the number of the note that says which.
    Varies(usize),
    /// The scenario needs this capability, which the init lacks.
    Lacks(String),
    /// Not applicable for a reason the expected outputs give: the number of its note.
    NotApplicable(usize),
}

pub struct Row {
    pub scenario: String,
    pub cells: Vec<Cell>,
}

pub struct Theme {
    /// The module under `tests/integration/scenarios/`.
    pub module: String,
    pub rows: Vec<Row>,
}

/// A reason from the expected outputs; a reason given in several cells is one note.
pub struct Note {
    pub number: usize,
    pub reason: String,
}

pub struct Matrix {
    pub inits: Vec<Init>,
    /// What each column's init is, with its version: by init name.
    pub versions: BTreeMap<String, String>,
    pub themes: Vec<Theme>,
    pub notes: Vec<Note>,
    /// What an init without the capability cannot be asked to do, by capability name.
    pub capabilities: Vec<(String, String)>,
    /// The bug catalogue's entries, id to title.
    pub catalogue: BTreeMap<String, String>,
}

impl Matrix {
    pub fn note(&self, number: usize) -> &Note {
        &self.notes[number - 1]
    }

    pub fn description(&self, capability: &str) -> &str {
        self.capabilities.iter().find(|(c, _)| c == capability).map_or("", |(_, d)| d)
    }
}

fn read(root: &Path, path: &str) -> Result<String, String> {
    std::fs::read_to_string(root.join(path)).map_err(|e| format!("{path}: {e}"))
}

/// The catalogue ids a reason cites (`known-bugs.md#tini-15`).
pub fn citations(reason: &str) -> Vec<&str> {
    reason
        .match_indices("known-bugs.md#")
        .map(|(at, prefix)| {
            let rest = &reason[at + prefix.len()..];
            let end =
                rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '-')).unwrap_or(rest.len());
            &rest[..end]
        })
        .collect()
}

/// Reads everything under `root` (the workspace) and builds the table, or says every way in
/// which the inputs disagree.
pub fn build(root: &Path) -> Result<Matrix, String> {
    let inits = fixtures::inits(&read(root, "fixtures/inits.txt")?)
        .map_err(|e| format!("fixtures/inits.txt: {e}"))?;
    let scenarios = source::scenarios(&root.join("tests/integration/scenarios"))?;
    let capabilities =
        source::capability_descriptions(&root.join("tests/integration/infrastructure/inits.rs"))?;
    let catalogue = fixtures::catalogue(&read(root, "docs/known-bugs.md")?);
    let recorded = fixtures::versions(&read(root, fixtures::VERSIONS)?);

    let mut problems: Vec<String> = Vec::new();
    let mut versions = BTreeMap::new();
    let mut tables = Vec::new();
    for init in &inits {
        let version = match (&init.binary, &init.package) {
            (Binary::Built, _) => Some("built from this tree".to_string()),
            (Binary::Docker, _) => recorded.get("docker").map(|v| format!("Docker Engine {v}")),
            (Binary::File(_), Some(p)) => recorded.get(p).map(|v| format!("Debian {p} {v}")),
            (Binary::File(_), None) => Some("no package".to_string()),
        };
        match version {
            Some(v) => {
                versions.insert(init.name.clone(), v);
            }
            None => problems.push(format!(
                "{}: no version recorded for {}: run make matrix",
                fixtures::VERSIONS,
                init.name
            )),
        }
        for cap in &init.capabilities {
            if !capabilities.iter().any(|(c, _)| c == cap) {
                problems
                    .push(format!("fixtures/inits.txt: {}: `{cap}` is no capability", init.name));
            }
        }
        let path = format!("fixtures/expected_outputs/{}.txt", init.name);
        match read(root, &path)
            .and_then(|t| fixtures::expectations(&t).map_err(|e| format!("{path}: {e}")))
        {
            Ok(table) => tables.push(table),
            Err(e) => {
                problems.push(e);
                tables.push(BTreeMap::new());
            }
        }
    }
    for s in &scenarios {
        for cap in &s.needs {
            if !capabilities.iter().any(|(c, _)| c == cap) {
                problems
                    .push(format!("scenario `{}` needs `{cap}`, which is no capability", s.name));
            }
        }
    }

    // Themes first, in page order, so that note numbers count up down the page.
    let mut themes: Vec<(String, Vec<&Scenario>)> = Vec::new();
    for s in &scenarios {
        match themes.iter_mut().find(|(module, _)| *module == s.theme) {
            Some((_, members)) => members.push(s),
            None => themes.push((s.theme.clone(), vec![s])),
        }
    }
    themes.sort_by_key(|(module, _)| theme_rank(module));

    let mut notes: Vec<Note> = Vec::new();
    let mut note = |reason: &str| -> usize {
        if let Some(n) = notes.iter().find(|n| n.reason == reason) {
            return n.number;
        }
        notes.push(Note { number: notes.len() + 1, reason: reason.to_string() });
        notes.len()
    };
    let mut page = Vec::new();
    for (module, members) in &themes {
        let mut rows = Vec::new();
        for s in members {
            let mut cells = Vec::new();
            for (init, table) in inits.iter().zip(&tables) {
                let lacks = s.needs.iter().find(|c| !init.capabilities.contains(c));
                cells.push(match (lacks, table.get(&s.name)) {
                    (Some(cap), None) => Cell::Lacks(cap.clone()),
                    (Some(cap), Some(_)) => {
                        problems.push(format!(
                            "fixtures/expected_outputs/{}.txt has a line for `{}`, which its \
                             capabilities already decide (it lacks {cap}): remove it",
                            init.name, s.name
                        ));
                        Cell::Lacks(cap.clone())
                    }
                    (None, Some(Expect::Pass)) => Cell::Pass,
                    (None, Some(Expect::Differs(why))) => Cell::Differs(note(why)),
                    (None, Some(Expect::Varies(why))) => Cell::Varies(note(why)),
                    (None, Some(Expect::NotApplicable(why))) => Cell::NotApplicable(note(why)),
                    // A placeholder: any problem fails the whole table.
                    (None, None) => {
                        problems.push(format!(
                            "fixtures/expected_outputs/{}.txt has no entry for scenario `{}`",
                            init.name, s.name
                        ));
                        Cell::Pass
                    }
                });
            }
            rows.push(Row { scenario: s.name.clone(), cells });
        }
        page.push(Theme { module: module.clone(), rows });
    }
    for (init, table) in inits.iter().zip(&tables) {
        for name in table.keys().filter(|n| !scenarios.iter().any(|s| s.name == **n)) {
            problems.push(format!(
                "fixtures/expected_outputs/{}.txt: `{name}` is no scenario of \
                 tests/integration/scenarios/ (or tests/matrix/src/source.rs cannot see how it \
                 is declared)",
                init.name
            ));
        }
    }
    for (init, table) in inits.iter().zip(&tables) {
        for (scenario, expect) in table {
            let (Expect::Differs(why) | Expect::Varies(why) | Expect::NotApplicable(why)) = expect
            else {
                continue;
            };
            for id in citations(why).into_iter().filter(|id| !catalogue.contains_key(*id)) {
                problems.push(format!(
                    "fixtures/expected_outputs/{}.txt: `{scenario}` cites known-bugs.md#{id}, \
                     which docs/known-bugs.md does not have",
                    init.name
                ));
            }
        }
    }
    if !problems.is_empty() {
        return Err(problems.join("\n"));
    }
    Ok(Matrix { inits, versions, themes: page, notes, capabilities, catalogue })
}

/// The themes a reader looks for first come first; any other follows in `mod.rs` order.
fn theme_rank(module: &str) -> usize {
    const FIRST: [&str; 8] = [
        "signal_handling",
        "process_lifecycle",
        "terminal_and_stdio",
        "failure_scenarios",
        "socket_inheritance",
        "restart_order",
        "real_servers",
        "live_reload",
    ];
    FIRST.iter().position(|m| *m == module).unwrap_or(FIRST.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A workspace of one theme, two inits and a catalogue, in a directory of its own.
    fn tree(name: &str, tini: &str) -> std::path::PathBuf {
        let root =
            std::env::temp_dir().join(format!("scinit-matrix-{name}-{}", std::process::id()));
        let files = [
            (
                "fixtures/inits.txt",
                "scinit | (built) | - | /init {scinit-flags} -- {child} | ports | docker-test\n\
                 tini | /usr/bin/tini-static | tini | /init -- {child} | - | docker-test\n",
            ),
            ("fixtures/expected_outputs/scinit.txt", "a_scenario  pass\nported  pass\n"),
            ("fixtures/expected_outputs/tini.txt", tini),
            ("fixtures/peer-versions.txt", "tini 0.19.0\n"),
            ("docs/known-bugs.md", "<a id=\"tini-15\"></a>\n### tini-15: Ctrl-C\n"),
            ("tests/integration/scenarios/mod.rs", "mod signal_handling;\n"),
            (
                "tests/integration/scenarios/signal_handling.rs",
                "#[scenario]\nasync fn a_scenario(run: Run) {}\n\
                 #[scenario(needs(Ports))]\nasync fn ported(run: Run) {}\n",
            ),
            (
                "tests/integration/infrastructure/inits.rs",
                "fn missing(self) -> &'static str { match self { Capability::Ports => \"no ports\" } }",
            ),
        ];
        for (path, text) in files {
            let path = root.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        root
    }

    #[test]
    fn cells_follow_the_expected_outputs_and_the_capabilities() {
        let root =
            tree("good", "a_scenario  differs it forwards to the pid (known-bugs.md#tini-15)\n");
        let m = build(&root).unwrap();
        std::fs::remove_dir_all(&root).unwrap();
        let cells: Vec<&[Cell]> = m.themes[0].rows.iter().map(|r| &r.cells[..]).collect();
        assert_eq!(
            cells,
            [&[Cell::Pass, Cell::Differs(1)][..], &[Cell::Pass, Cell::Lacks("ports".into())]]
        );
        assert_eq!(m.versions["tini"], "Debian tini 0.19.0");
        assert_eq!(m.description("ports"), "no ports");
    }

    #[test]
    fn a_table_that_disagrees_with_the_suite_is_refused_with_every_reason() {
        let root = tree("bad", "ported  pass\nnothing  pass\nx  differs see known-bugs.md#nope\n");
        let e = build(&root).err().unwrap();
        std::fs::remove_dir_all(&root).unwrap();
        assert!(e.contains("tini.txt has a line for `ported`"), "{e}");
        assert!(e.contains("tini.txt has no entry for scenario `a_scenario`"), "{e}");
        assert!(e.contains("`nothing` is no scenario"), "{e}");
        assert!(e.contains("known-bugs.md#nope"), "{e}");
    }
}
