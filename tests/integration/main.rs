//! The container suite: every scenario runs an init as the real PID 1 of a Docker container,
//! drives it from outside through the Docker API, and judges what the child saw and what Docker
//! reports against `fixtures/expected_outputs/<init>.txt`. See `tests/integration/README.md`.

#[path = "../support/static_build.rs"]
mod static_build;

#[path = "../support/figures.rs"]
mod figures;

#[macro_use]
mod infrastructure;
mod performance;
mod scenarios;
mod suite_power;
mod utils;
