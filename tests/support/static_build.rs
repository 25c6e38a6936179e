//! Builds the static binaries that run inside containers (and under the process-level tests):
//! scinit, the testkit helper and the deliberately broken init.
//!
//! They are built once per test binary, with `+crt-static` for `x86_64-unknown-linux-gnu`, in a
//! target directory of their own: the cargo that runs the tests holds the lock on the normal one,
//! and the host-side test dependencies must not become crt-static. `--target` is required: without
//! it the flag also reaches proc-macro crates and the build fails.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

pub const TARGET: &str = "x86_64-unknown-linux-gnu";

/// Paths of the freshly built static binaries.
#[derive(Debug, Clone)]
pub struct StaticBinaries {
    pub scinit: PathBuf,
    pub testkit: PathBuf,
    pub broken_init: PathBuf,
}

/// The workspace root (where `Cargo.toml` with the `[workspace]` lives).
pub fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Builds (or finds up to date) the static binaries. The first caller pays; a failed build is
/// reported to every caller with cargo's own output.
pub fn static_binaries() -> Result<&'static StaticBinaries, String> {
    static BUILT: OnceLock<Result<StaticBinaries, String>> = OnceLock::new();
    BUILT.get_or_init(build).as_ref().map_err(Clone::clone)
}

fn build() -> Result<StaticBinaries, String> {
    let root = workspace_root();
    let target_dir = root.join("target").join("static");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(root)
        .args(["build", "--release", "--locked", "--target", TARGET])
        .args(["-p", "scinit", "-p", "scinit-testkit", "-p", "broken-init"])
        .env("CARGO_TARGET_DIR", &target_dir)
        .env("CARGO_ENCODED_RUSTFLAGS", "-Ctarget-feature=+crt-static")
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
    let dir = target_dir.join(TARGET).join("release");
    Ok(StaticBinaries {
        scinit: dir.join("scinit"),
        testkit: dir.join("testkit"),
        broken_init: dir.join("broken-init"),
    })
}
