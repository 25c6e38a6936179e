//! The harness. Only this folder touches bollard and testcontainers; scenarios use the builder
//! (`Scenario`), the guard (`InitContainer`) and the probe.

#[macro_use]
pub mod macros;
pub mod container;
pub mod docker;
pub mod expectations;
pub mod image;
pub mod init_profile;
pub mod probe;
pub mod results;
pub mod scenario;

pub use container::{Exit, InitContainer, Pid1Moment};
pub use init_profile::{InitKind, InitProfile};
pub use scenario::{Deviation, Init, Network, Scenario};
