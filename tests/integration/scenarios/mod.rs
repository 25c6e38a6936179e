//! Scenarios, one file per theme. Each test is named by the behaviour it proves, runs against the
//! init under test (`INIT_PROFILE`/`INIT_UNDER_TEST`) and is judged by
//! `fixtures/expected_outputs/<init>.txt`.

mod failure_scenarios;
mod live_reload;
mod process_lifecycle;
mod signal_handling;
mod socket_inheritance;
mod suite_power;
