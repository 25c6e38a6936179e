//! Scenarios, one file per theme. Each test is named by the behaviour it proves, runs against the
//! init under test (`INIT_PROFILE`/`INIT_UNDER_TEST`) and is judged by
//! `fixtures/expected_outputs/<init>.txt`. No scenario file imports another: what two themes
//! share lives in `performance/` or `utils/`.

mod failure_scenarios;
mod live_reload;
pub mod process_lifecycle;
mod real_servers;
mod restart_order;
pub mod signal_handling;
pub mod socket_inheritance;
mod terminal_and_stdio;
