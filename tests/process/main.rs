//! Process-level tests: scinit runs as a plain process on the host (not PID 1, no Docker),
//! where it registers as child subreaper, with the static `testkit` helper as its child
//! (protocol: `images/README.md`). One binary, one file per theme.

// Shared with the container suite, which uses every binary it builds (broken-init too); this
// suite needs only scinit and testkit.
#[allow(dead_code)]
#[path = "../support/static_build.rs"]
mod static_build;

mod harness;

mod exit_codes;
mod forwarding;
mod reaping;
mod restart;
mod shutdown;
mod sockets;
mod start_first;
mod watch;
