//! `scinit-matrix`: writes the conformance table, `docs/conformance.md` and
//! `docs/conformance.html`, from the suite's fixtures: one row per scenario, grouped by theme, one
//! column per init and mode of `fixtures/inits.txt`, each cell the init's expected output for the
//! scenario (`fixtures/expected_outputs/<init>.txt`), which the suite enforces strictly.
//!
//! Usage: `scinit-matrix [--record-versions]`
//!
//! * without arguments (`make matrix-docs`): regenerates both pages from the fixtures alone;
//! * `--record-versions` (`make matrix`, after a green suite run): first writes the versions of
//!   the peer inits installed here (`dpkg-query -W`, `docker version`) to
//!   `fixtures/peer-versions.txt`, which the pages cite.
//!
//! Exit 0 when the pages are written, 1 when the fixtures disagree with each other or with the
//! scenarios (every problem is printed), 2 on a usage error.
//!
//! Its test (`cargo test -p scinit-matrix`) regenerates both pages in memory and fails when the
//! committed ones differ: the table cannot go stale.

mod fixtures;
mod matrix;
mod render;
mod source;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

const MARKDOWN: &str = "docs/conformance.md";
const HTML: &str = "docs/conformance.html";

/// The workspace root: this crate is `tests/matrix`.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Both pages, as the fixtures under `root` make them.
fn pages(root: &Path) -> Result<[(&'static str, String); 2], String> {
    let m = matrix::build(root)?;
    Ok([(MARKDOWN, render::markdown(&m)), (HTML, render::html(&m))])
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let record = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        [] => false,
        ["--record-versions"] => true,
        _ => {
            eprintln!("usage: scinit-matrix [--record-versions]");
            return ExitCode::from(2);
        }
    };
    let root = root();
    let written = (|| {
        if record {
            let table = std::fs::read_to_string(root.join("fixtures/inits.txt"))
                .map_err(|e| format!("fixtures/inits.txt: {e}"))?;
            let inits = fixtures::inits(&table).map_err(|e| format!("fixtures/inits.txt: {e}"))?;
            fixtures::record_versions(&root, &inits)?;
        }
        for (path, text) in pages(&root)? {
            std::fs::write(root.join(path), text).map_err(|e| format!("{path}: {e}"))?;
        }
        Ok::<(), String>(())
    })();
    match written {
        Ok(()) => {
            eprintln!("scinit-matrix: wrote {MARKDOWN} and {HTML}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("scinit-matrix: the conformance table cannot be made:\n{e}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed pages are what the fixtures make now. Cheap and without Docker: it reads the
    /// fixtures and the scenarios' sources, and never the suite's build.
    #[test]
    fn committed_conformance_pages_match_the_fixtures() {
        let root = root();
        let pages = pages(&root).unwrap_or_else(|e| panic!("the fixtures disagree:\n{e}"));
        for (path, text) in pages {
            let committed = std::fs::read_to_string(root.join(path)).unwrap_or_default();
            assert!(committed == text, "{path} is stale: run make matrix (or make matrix-docs)");
        }
    }
}
