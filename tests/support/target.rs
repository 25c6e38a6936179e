//! The target the static binaries are built for, shared by the suite's static build
//! (`static_build.rs`) and the performance gate's (`bench/src/static_build.rs`).

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
