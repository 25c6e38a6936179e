//! The binaries under test: scinit and the testkit helper, built static as in every image
//! (`images/README.md`), each build in a target directory of its own.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

#[path = "../../tests/support/target.rs"]
mod target;

pub use target::target;

/// The reference init, from Debian's `tini` package.
pub const TINI: &str = "/usr/bin/tini-static";

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap_or(Path::new(".")).to_path_buf()
}

/// The bench's own corner of `target/`: apart from `target/static` (the test suite's), so that
/// neither waits for the other's lock. The standard build goes to `target/bench`, the self-test's
/// variants and the profiling build below it.
pub fn bench_dir() -> PathBuf {
    root().join("target").join("bench")
}

/// One static build of scinit (and, for the standard one, testkit).
pub struct Build<'a> {
    pub target_dir: PathBuf,
    pub packages: &'a [&'a str],
    pub features: &'a [&'a str],
    /// Extra environment for cargo: the self-test's regression sizes, profile overrides.
    pub env: Vec<(&'static str, String)>,
}

impl Build<'_> {
    /// Builds (or finds up to date); returns the directory that holds the binaries.
    pub fn run(&self) -> Result<PathBuf> {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut command = Command::new(cargo);
        command
            .current_dir(root())
            .args(["build", "-q", "--release", "--locked", "--target", target()])
            .env("CARGO_TARGET_DIR", &self.target_dir)
            .env("CARGO_ENCODED_RUSTFLAGS", target::STATIC_RUSTFLAGS)
            .env_remove("RUSTFLAGS")
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        for package in self.packages {
            command.args(["-p", package]);
        }
        if !self.features.is_empty() {
            command.args(["--features", &self.features.join(",")]);
        }
        let status = command.status().context("cannot run cargo")?;
        if !status.success() {
            bail!("the static build of {} failed ({status})", self.packages.join(", "));
        }
        Ok(self.target_dir.join(target()).join("release"))
    }
}

/// scinit and testkit as the bench measures them unless told otherwise.
pub struct Binaries {
    pub scinit: PathBuf,
    pub testkit: PathBuf,
}

/// Builds (or finds up to date) the unchanged scinit and testkit in `target/bench`.
pub fn standard() -> Result<Binaries> {
    let build = Build {
        target_dir: bench_dir(),
        packages: &["scinit", "scinit-testkit"],
        features: &[],
        env: Vec::new(),
    };
    let dir = build.run()?;
    Ok(Binaries { scinit: dir.join("scinit"), testkit: dir.join("testkit") })
}

/// scinit with symbols and line tables, for `callgrind_annotate`: the same code as the
/// standard build (symbols and debug info change no instruction), in `target/bench/profile`.
pub fn with_symbols() -> Result<PathBuf> {
    let build = Build {
        target_dir: bench_dir().join("profile"),
        packages: &["scinit"],
        features: &[],
        env: vec![
            ("CARGO_PROFILE_RELEASE_STRIP", "false".into()),
            ("CARGO_PROFILE_RELEASE_DEBUG", "line-tables-only".into()),
        ],
    };
    Ok(build.run()?.join("scinit"))
}
