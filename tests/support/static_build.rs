//! Builds the static binaries that run inside containers (and under the process-level tests):
//! every row of `images/binaries.txt` (scinit, the testkit helper, the deliberately broken init).
//!
//! They are built once per test binary, with `+crt-static` for this machine's own target, in a
//! target directory of their own: the cargo that runs the tests holds the lock on the normal one,
//! and the host-side test dependencies must not become crt-static. `--target` is required: without
//! it the flag also reaches proc-macro crates and the build fails.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

#[path = "target.rs"]
mod target;

pub use target::target;

/// One row of `images/binaries.txt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Helper {
    pub package: String,
    pub binary: String,
    /// Where every test image carries it (`None`: only as an init, at `/init`).
    pub image_path: Option<String>,
}

/// Paths of the freshly built static binaries.
#[derive(Debug, Clone)]
pub struct StaticBinaries {
    pub dir: PathBuf,
    pub helpers: Vec<Helper>,
}

impl StaticBinaries {
    /// The built binary named `binary` (a row of `images/binaries.txt`).
    pub fn path(&self, binary: &str) -> PathBuf {
        self.dir.join(binary)
    }
}

/// The workspace root (where `Cargo.toml` with the `[workspace]` lives).
pub fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The rows of `images/binaries.txt`.
pub fn helpers() -> Result<Vec<Helper>, String> {
    let path = workspace_root().join("images/binaries.txt");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse_helpers(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn parse_helpers(text: &str) -> Result<Vec<Helper>, String> {
    let rows = text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#'));
    rows.map(|line| match line.split_whitespace().collect::<Vec<_>>()[..] {
        [package, binary, at] => Ok(Helper {
            package: package.into(),
            binary: binary.into(),
            image_path: Some(at).filter(|a| *a != "-").map(str::to_string),
        }),
        _ => Err(format!("`{line}`: expected `package binary path`")),
    })
    .collect()
}

/// Builds (or finds up to date) the static binaries. The first caller pays; a failed build is
/// reported to every caller with cargo's own output.
pub fn static_binaries() -> Result<&'static StaticBinaries, String> {
    static BUILT: OnceLock<Result<StaticBinaries, String>> = OnceLock::new();
    BUILT.get_or_init(build).as_ref().map_err(Clone::clone)
}

fn build() -> Result<StaticBinaries, String> {
    let root = workspace_root();
    let helpers = helpers()?;
    let target_dir = root.join("target").join("static");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let packages = helpers.iter().flat_map(|h| ["-p", h.package.as_str()]);
    let output = Command::new(cargo)
        .current_dir(root)
        .args(["build", "--release", "--locked", "--target", target()])
        .args(packages)
        .env("CARGO_TARGET_DIR", &target_dir)
        .env("CARGO_ENCODED_RUSTFLAGS", target::STATIC_RUSTFLAGS)
        .env_remove("RUSTFLAGS")
        .output()
        .map_err(|e| format!("cannot run cargo to build the static binaries: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "building the static binaries failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(StaticBinaries { dir: target_dir.join(target()).join("release"), helpers })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_helper_list_parses_and_puts_testkit_in_every_image() {
        let helpers = helpers().unwrap();
        let testkit = helpers.iter().find(|h| h.binary == "testkit").unwrap();
        assert_eq!(testkit.image_path.as_deref(), Some("/bin/testkit"));
        assert!(helpers.iter().any(|h| h.package == "scinit" && h.image_path.is_none()));
        assert!(parse_helpers("a b").is_err());
    }
}
