//! Signal handling: what `docker kill` and `docker stop` deliver must reach the child, exactly,
//! and the container must exit with the child's status.
//!
//! The child is `testkit signals`, which logs every signal it receives (dumb-init's
//! `print_signals` pattern); assertions compare its lines with what was sent.

use crate::infrastructure::{Init, Scenario};
use crate::utils::wait::secs;

scenario! {
    /// `docker kill -s TERM`: the child sees SIGTERM, dies of it, and the container reports
    /// 128+15. A PID 1 without a handler would drop it (moby#32310).
    fn sigterm_reaches_child_and_exit_code_is_143(init) {
        let c = Scenario::new(&init).child(["testkit", "signals"]).start().await?;
        c.kill("SIGTERM").await?;
        let exit = c.wait_exit(secs(5)).await?;
        let seen = c.report().await?.signal_names(None)?;
        check_in!(c, seen == ["SIGTERM"], "the child saw {seen:?}, expected exactly [SIGTERM]");
        check_in!(c, exit.code == 143, "exit code {}, expected 143 (128+SIGTERM)", exit.code);
        Ok(())
    }
}

scenario! {
    /// SIGUSR1 is forwarded, and neither the child nor the init exits because of it.
    fn sigusr1_is_forwarded_and_the_init_survives(init) {
        let c = Scenario::new(&init).child(["testkit", "signals"]).start().await?;
        c.kill("SIGUSR1").await?;
        c.wait_for_fact("signal", 1, secs(5), |f| f.get("name") == Some("SIGUSR1")).await?;
        check_in!(c, c.exit_within(crate::utils::wait::millis(300)).await?.is_none(), "the container exited after SIGUSR1");
        c.kill("SIGUSR2").await?;
        c.wait_for_fact("signal", 1, secs(5), |f| f.get("name") == Some("SIGUSR2")).await?;
        Ok(())
    }
}
