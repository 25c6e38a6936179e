//! The target and flags of the static binaries, shared by the suite's static build
//! (`static_build.rs`) and the performance gate's (`bench/src/static_build.rs`).

/// The flags of every static build, for `CARGO_ENCODED_RUSTFLAGS` (0x1f between flags; with
/// `--target`, so that they stay away from build scripts and proc-macros):
/// - `+crt-static` links glibc statically: the binary runs in any image, `FROM scratch` too;
/// - `relocation-model=static` makes a static executable that is not position-independent, as
///   tini-static is. A static-PIE relocates itself before `main` (1,869 relocations, 26,000 of
///   the 63,000 instructions scinit executes from start to exec); this one is loaded at a fixed
///   address and starts at once. Its stack, heap and mappings are still randomised; only its
///   own code and data are at a known address (README, "Building").
pub const STATIC_RUSTFLAGS: &str = "-Ctarget-feature=+crt-static\x1f-Crelocation-model=static";

/// This machine's own target (`rustc -vV`'s host), so an aarch64 machine builds aarch64
/// binaries. Read once.
pub fn target() -> &'static str {
    static TARGET: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TARGET.get_or_init(|| {
        let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
        let host = std::process::Command::new(rustc).arg("-vV").output().ok().and_then(|out| {
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.lines().find_map(|l| l.strip_prefix("host: ")).map(str::to_string)
        });
        // Without a rustc to ask, cargo itself will fail to build and say why.
        host.unwrap_or_else(|| "x86_64-unknown-linux-gnu".to_string())
    })
}
