//! Names of the figures the suite records and `scinit-report` tabulates: one list, compiled into
//! both (`#[path]`), so a renamed figure cannot leave a table column empty.

/// The restart table's figures, recorded by every scenario that restarts a server under load.
pub mod restart {
    pub const RESTARTS: &str = "restarts";
    pub const REQUESTS: &str = "requests";
    pub const FAILED: &str = "failed";
    pub const LONGEST_GAP_MS: &str = "longest_gap_ms";
    pub const P99_MS: &str = "p99_ms";
    pub const MAX_MS: &str = "max_ms";
}
