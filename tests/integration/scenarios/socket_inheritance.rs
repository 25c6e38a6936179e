//! Sockets: the init binds the ports, the child serves them, and the host reaches them through
//! ports published on 127.0.0.1, with an application-level round trip.

use crate::infrastructure::probe::{self, localhost};
use crate::infrastructure::{Init, Scenario};
use crate::utils::wait::secs;

scenario! {
    /// The echo server answers through a published port; with scinit it serves the socket scinit
    /// bound, with other inits it binds the port itself.
    fn echo_server_answers_through_a_published_port(init) {
        let scenario = Scenario::new(&init);
        let scenario = if init.profile.kind == crate::infrastructure::InitKind::Scinit {
            scenario.with_ports([8080]).child(["testkit", "echo"])
        } else {
            scenario.publish([8080]).child(["testkit", "echo", "--listen", "0.0.0.0:8080"])
        };
        let c = scenario.start().await?;
        let port = c.host_port(8080).await?;
        let reply = probe::wait_until_serving(localhost(port), secs(10)).await;
        check_in!(c, reply.is_ok(), "no echo through 127.0.0.1:{port}: {:#}", reply.err().map(|e| e.to_string()).unwrap_or_default());
        Ok(())
    }
}
