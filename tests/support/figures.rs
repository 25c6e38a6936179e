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

    /// What restarted the server, for rows that would otherwise differ only by their long
    /// names: a scenario records the figure of its kind with the value 1, and the table shows
    /// the kind in a column of its own.
    pub mod kind {
        /// SIGHUP to scinit, `--restart-order stop-first` (the default).
        pub const STOP_FIRST: &str = "kind_sighup_stop_first";
        /// SIGHUP to scinit, `--restart-order start-first`.
        pub const START_FIRST: &str = "kind_sighup_start_first";
        /// `docker restart` of a container whose server binds its own port.
        pub const DOCKER_RESTART: &str = "kind_docker_restart";
    }
}
