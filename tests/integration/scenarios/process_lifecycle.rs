//! Process lifecycle: exit codes, reaping, and the processes left at shutdown.

use anyhow::Result;

use crate::infrastructure::{Init, Scenario};
use crate::utils::wait::{self, secs, Polled};

/// A child that ends on its own, and the code Docker must report.
struct ExitCase {
    child: &'static [&'static str],
    code: i64,
}

async fn exit_code_case(init: Init, case: ExitCase) -> Result<()> {
    let c = Scenario::new(&init).child(case.child.iter().copied()).without_ready_wait().start().await?;
    let exit = c.wait_exit(secs(10)).await?;
    check_in!(c, exit.code == case.code, "exit code {}, expected {} for {:?}", exit.code, case.code, case.child);
    Ok(())
}

scenario_table! {
    exit_code_case;
    exit_code_0_is_passed_through => ExitCase { child: &["testkit", "exit-with", "0"], code: 0 },
    exit_code_3_is_passed_through => ExitCase { child: &["testkit", "exit-with", "3"], code: 3 },
}

scenario! {
    /// Orphans of a `docker exec` are reparented to PID 1 (their parent is outside the
    /// namespace); PID 1 must reap them or the pids cgroup fills up (moby#47583).
    fn orphans_from_docker_exec_are_reaped(init) {
        let c = Scenario::new(&init).child(["testkit", "signals"]).start().await?;
        let made = c.exec(&["/bin/testkit", "tree", "orphans", "20"]).await?;
        check_in!(c, made.code == 0, "testkit tree orphans failed: {:?}", made);
        let zombies = wait::until("no zombie left", secs(5), || async {
            let zombies: Vec<_> = c.processes().await?.into_iter().filter(|p| p.is_zombie()).collect();
            Ok(if zombies.is_empty() { Polled::Ready(()) } else { Polled::NotYet(format!("{zombies:?}")) })
        })
        .await;
        check_in!(c, zombies.is_ok(), "zombies stay unreaped: {:#}", zombies.err().map(|e| e.to_string()).unwrap_or_default());
        Ok(())
    }
}
