//! The data files the table is made of: the init table (`fixtures/inits.txt`), each init's
//! expected outputs (`fixtures/expected_outputs/<init>.txt`), the peers' versions
//! (`fixtures/peer-versions.txt`) and the anchors of the bug catalogue (`docs/known-bugs.md`).
//! The formats are the harness's (`tests/integration/infrastructure/{inits,expectations}.rs`);
//! they are read again here, without the harness's dependencies, so that this crate builds in
//! seconds.

use std::collections::BTreeMap;
use std::path::Path;

/// Where an init's binary comes from (`fixtures/inits.txt`, second column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Binary {
    /// This tree's scinit.
    Built,
    /// Docker's own `--init`.
    Docker,
    /// A binary from a Debian package.
    File(String),
}

/// One row of `fixtures/inits.txt`: one column of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Init {
    pub name: String,
    pub binary: Binary,
    pub package: Option<String>,
    pub argv: Vec<String>,
    pub capabilities: Vec<String>,
    /// Run by `make matrix` only, not by `make docker-test`.
    pub matrix_only: bool,
}

impl Init {
    /// The init's command line as a user would type it: the binary's name for `/init`,
    /// `[OPTIONS]` for the scinit options a scenario chooses, `COMMAND` for the child.
    pub fn command_line(&self) -> String {
        let program = match &self.binary {
            Binary::Built => "scinit".to_string(),
            Binary::Docker => return "docker run --init IMAGE COMMAND".to_string(),
            Binary::File(path) => path.rsplit('/').next().unwrap_or(path).to_string(),
        };
        self.argv
            .iter()
            .map(|word| match word.as_str() {
                "/init" => program.clone(),
                "{scinit-flags}" => "[OPTIONS]".to_string(),
                "{child}" => "COMMAND".to_string(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// The rows of the init table, in order.
pub fn inits(text: &str) -> Result<Vec<Init>, String> {
    let mut rows: Vec<Init> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let [name, binary, package, argv, capabilities, runs] = cells[..] else {
            return Err(format!("line {}: expected 6 cells, got {}", n + 1, cells.len()));
        };
        let binary = match binary {
            "(built)" => Binary::Built,
            "(docker)" => Binary::Docker,
            path => Binary::File(path.to_string()),
        };
        let matrix_only = match runs {
            "docker-test" => false,
            "matrix" => true,
            other => return Err(format!("line {}: runs `{other}` is no make target", n + 1)),
        };
        if rows.iter().any(|r| r.name == name) {
            return Err(format!("line {}: `{name}` appears twice", n + 1));
        }
        rows.push(Init {
            name: name.to_string(),
            binary,
            package: Some(package).filter(|p| *p != "-").map(str::to_string),
            argv: argv.split_whitespace().map(str::to_string).collect(),
            capabilities: capabilities
                .split_whitespace()
                .filter(|w| *w != "-")
                .map(str::to_string)
                .collect(),
            matrix_only,
        });
    }
    Ok(rows)
}

/// One line of an init's expected outputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    Pass,
    Differs(String),
    NotApplicable(String),
    Varies(String),
}

/// An init's expected outputs, by scenario.
pub fn expectations(text: &str) -> Result<BTreeMap<String, Expect>, String> {
    let mut table = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (scenario, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let rest = rest.trim();
        let (word, reason) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        let reason = reason.trim().to_string();
        let expect = match word {
            "pass" if reason.is_empty() => Expect::Pass,
            "differs" if !reason.is_empty() => Expect::Differs(reason),
            "n/a" if !reason.is_empty() => Expect::NotApplicable(reason),
            "varies" if !reason.is_empty() => Expect::Varies(reason),
            other => {
                return Err(format!(
                    "line {}: `{other}` is not pass, or differs, n/a or varies with a reason",
                    n + 1
                ))
            }
        };
        if table.insert(scenario.to_string(), expect).is_some() {
            return Err(format!("line {}: `{scenario}` appears twice", n + 1));
        }
    }
    Ok(table)
}

/// The entries of the bug catalogue: anchor id (`<a id="tini-15"></a>`) and title (the heading
/// that follows it, `### tini-15: Ctrl-C does not stop ...`, without the id).
pub fn catalogue(text: &str) -> BTreeMap<String, String> {
    let mut entries = BTreeMap::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let Some(id) = line.trim().strip_prefix("<a id=\"").and_then(|r| r.strip_suffix("\"></a>"))
        else {
            continue;
        };
        let heading = lines.peek().and_then(|h| h.trim().strip_prefix("### ")).unwrap_or("");
        let title = heading.strip_prefix(&format!("{id}: ")).unwrap_or(heading);
        entries.insert(id.to_string(), title.to_string());
    }
    entries
}

/// The file that records the peers' versions: package (or `docker` for the engine whose init
/// `docker-init` is) and version, one a line.
pub const VERSIONS: &str = "fixtures/peer-versions.txt";

pub fn versions(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once(char::is_whitespace))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

/// Asks the machine for the versions of every init of `inits` that is not this tree's
/// (`dpkg-query -W` for a package, `docker version` for Docker's own init) and writes them to
/// [`VERSIONS`] under `root`: what the suite run that `make matrix` just finished measured.
pub fn record_versions(root: &Path, inits: &[Init]) -> Result<(), String> {
    let mut text = String::from(
        "# The versions of the peer inits that the last `make matrix` measured, written by it\n\
         # (scinit-matrix --record-versions): Debian package and version, and `docker` for the\n\
         # engine whose docker-init the docker-init column ran. docs/conformance.md cites them.\n",
    );
    let mut keys: Vec<(String, Vec<&str>)> = Vec::new();
    for init in inits {
        let query: (String, Vec<&str>) = match (&init.binary, &init.package) {
            (Binary::Built, _) => continue,
            (Binary::Docker, _) => {
                ("docker".into(), vec!["docker", "version", "--format", "{{.Server.Version}}"])
            }
            (Binary::File(_), Some(package)) => {
                (package.clone(), vec!["dpkg-query", "-W", "-f=${Version}", package.as_str()])
            }
            (Binary::File(path), None) => {
                return Err(format!("{}: {path} has no package to ask", init.name))
            }
        };
        if !keys.iter().any(|(k, _)| *k == query.0) {
            keys.push(query);
        }
    }
    for (key, argv) in keys {
        let out = std::process::Command::new(argv[0])
            .args(&argv[1..])
            .output()
            .map_err(|e| format!("{}: {e}", argv.join(" ")))?;
        let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !out.status.success() || version.is_empty() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            return Err(format!("{} failed: {}", argv.join(" "), stderr.trim()));
        }
        text.push_str(&format!("{key} {version}\n"));
    }
    let path = root.join(VERSIONS);
    std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_parse_with_their_runs_cell() {
        let rows = inits(
            "# c\nscinit | (built) | - | /init {scinit-flags} -- {child} | ports | docker-test\n\
             tini-g | /usr/bin/tini-static | tini | /init -g -- {child} | wrappable | matrix\n\
             docker-init | (docker) | - | {child} | - | docker-test\n",
        )
        .unwrap();
        assert_eq!(rows[0].command_line(), "scinit [OPTIONS] -- COMMAND");
        assert_eq!(rows[1].command_line(), "tini-static -g -- COMMAND");
        assert_eq!(rows[2].command_line(), "docker run --init IMAGE COMMAND");
        assert!(!rows[0].matrix_only && rows[1].matrix_only);
        assert!(rows[2].capabilities.is_empty());
        assert!(inits("a | (built) | - | {child} | -").is_err());
        assert!(inits("a | (built) | - | {child} | - | bench").is_err());
    }

    #[test]
    fn expectation_lines_parse_and_bad_ones_are_refused() {
        let t = expectations("# c\na  pass\nb differs  it forwards to the pid\nc varies race\n")
            .unwrap();
        assert_eq!(t["a"], Expect::Pass);
        assert_eq!(t["b"], Expect::Differs("it forwards to the pid".into()));
        assert_eq!(t["c"], Expect::Varies("race".into()));
        assert!(expectations("a differs").is_err());
        assert!(expectations("a pass why").is_err());
        assert!(expectations("a pass\na pass").is_err());
    }

    #[test]
    fn catalogue_entries_are_anchors_with_their_titles() {
        let c = catalogue("# K\n<a id=\"tini-15\"></a>\n### tini-15: Ctrl-C does not stop it\n");
        assert_eq!(c["tini-15"], "Ctrl-C does not stop it");
    }
}
