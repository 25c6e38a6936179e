//! The harness. Only `engine.rs` talks to Docker (bollard); scenarios describe a container with
//! [`ContainerSpec`], drive it through the [`Container`] guard and the probe, and are judged by
//! the runner.

#[macro_use]
pub mod macros;
pub mod container;
pub mod engine;
pub mod expectations;
pub mod image;
pub mod inits;
pub mod location;
pub mod pid1;
pub mod probe;
pub mod results;
pub mod run;
pub mod spec;

pub use container::{Container, Follower};
pub use inits::{Capability, Init, ReadySignal};
pub use pid1::Pid1Moment;
pub use run::{Deviation, Run};
pub use scinit_test_macros::scenario;
pub use spec::{ContainerSpec, Network, Pid1Wrapper};
