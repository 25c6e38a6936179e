//! Suite power: the suite must fail against a broken init, and say why. tini asserts that its
//! reaping test *fails* without a subreaper (`run_inner_tests.py:183-196`); here
//! `images/broken-init` carries one deliberate defect at a time (`BROKEN_INIT_DEFECT`,
//! `images/README.md`), and the real scenario bodies of the other files run against it. Each
//! defect must turn the scenario aimed at it into a deviation whose message names the broken
//! behaviour; with defect `none` the same init passes all of them, so the failures come from the
//! defects and not from broken-init being a different program.
//!
//! These tests judge broken inits themselves: they are not scenarios, and not in the expected
//! outputs.

use std::future::Future;
use std::pin::Pin;

use anyhow::Result;

use crate::infrastructure::expectations::Observed;
use crate::infrastructure::image::built_binaries;
use crate::infrastructure::inits::{self, Init};
use crate::infrastructure::run::observe;
use crate::infrastructure::Run;
use crate::scenarios::{process_lifecycle, signal_handling, socket_inheritance};

/// A scenario body, boxed so that rows of a table can hold different ones.
type Body = fn(Run) -> Pin<Box<dyn Future<Output = Result<()>>>>;

/// One defect and the scenario that must catch it.
struct Power {
    defect: &'static str,
    /// The scenario's id (its test name), for the container's name and the messages.
    scenario: &'static str,
    body: Body,
    /// What the deviation must mention (case-insensitive): the broken behaviour in the
    /// scenario's own words.
    names: &'static str,
}

/// A row: the scenario's id is its test name, taken from the path of its body.
macro_rules! power {
    ($defect:literal, $module:ident :: $scenario:ident, $names:literal) => {
        Power {
            defect: $defect,
            scenario: stringify!($scenario),
            body: |run| Box::pin($module::$scenario::body(run)),
            names: $names,
        }
    };
}

const NO_REAP: Power =
    power!("no-reap", process_lifecycle::orphans_from_docker_exec_are_reaped, "zombie");

const EXIT_ZERO: Power = power!(
    "exit-zero",
    process_lifecycle::every_exit_code_from_0_to_255_is_passed_through,
    "the init exited 0"
);

const CHILD_PID_ONLY: Power = power!(
    "child-pid-only",
    signal_handling::sigusr1_reaches_every_process_in_a_non_exec_shell_wrappers_group,
    "only the shell got it"
);

const LATE_BLOCK: Power = power!(
    "late-block",
    signal_handling::an_early_sigterm_right_after_start_is_never_lost,
    "SIGTERM lost"
);

const REBIND: Power = power!(
    "rebind",
    socket_inheritance::one_port_is_inherited_at_fd_3_with_the_activation_variables_on_ipv4,
    "re-created across the restart"
);

const NO_FORWARD: Power = power!(
    "no-forward",
    signal_handling::sigusr2_is_forwarded_and_the_init_survives,
    "never logged SIGUSR2"
);

const KILL_ALL_AT_EXIT: Power = power!(
    "kill-all-at-exit",
    process_lifecycle::double_forked_daemon_gets_sigterm_and_finishes_before_the_container_exits,
    "never got SIGTERM"
);

/// Every row, for the control.
const ALL: [Power; 7] =
    [NO_REAP, EXIT_ZERO, CHILD_PID_ONLY, LATE_BLOCK, REBIND, NO_FORWARD, KILL_ALL_AT_EXIT];

/// broken-init with `defect`, speaking scinit's command line.
async fn broken_init(defect: &str) -> Result<Init> {
    let binaries = built_binaries().await?;
    let label = format!("broken-init:{defect}");
    Ok(Init::custom(inits::row("scinit")?, binaries.path("broken-init"), label)
        .with_env("BROKEN_INIT_DEFECT", defect))
}

/// Runs the row's scenario against broken-init with `defect`.
async fn outcome(power: &Power, defect: &str) -> Result<Observed> {
    let init = broken_init(defect).await?;
    Ok(observe(Run::new(init, power.scenario), power.body).await)
}

/// The scenario must deviate against the row's defect, naming the broken behaviour.
async fn defect_is_caught(power: Power) {
    let observed = match outcome(&power, power.defect).await {
        Ok(o) => o,
        Err(e) => panic!("setting up broken-init ({}): {e:#}", power.defect),
    };
    match observed {
        Observed::Deviation(message) => assert!(
            message.to_lowercase().contains(&power.names.to_lowercase()),
            "`{}` caught broken-init:{} but its message does not name the broken behaviour ({:?}):\n{message}",
            power.scenario,
            power.defect,
            power.names
        ),
        Observed::Pass => panic!("`{}` PASSED against broken-init:{}: the suite misses this defect", power.scenario, power.defect),
        Observed::Error(e) => panic!(
            "`{}` against broken-init:{} ended in a harness error, not a deviation naming the defect:\n{e}",
            power.scenario, power.defect
        ),
        Observed::NotApplicable(why) => panic!(
            "`{}` cannot run here ({why}), so this environment cannot show that it catches broken-init:{}",
            power.scenario, power.defect
        ),
    }
}

/// One test per row: `name => ROW`.
macro_rules! power_table {
    ($($(#[$meta:meta])* $name:ident => $power:expr),+ $(,)?) => {
        $(
            $(#[$meta])*
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                defect_is_caught($power).await
            }
        )+
    };
}

power_table! {
    /// tini's negative control: an init that never reaps leaves the exec's orphans as zombies.
    an_init_that_never_reaps_fails_the_orphan_reaping_scenario => NO_REAP,
    /// dumb-init before PR #60 reported death by signal as 0.
    an_init_that_always_exits_zero_fails_the_exit_code_scenario => EXIT_ZERO,
    /// tini and Docker's init without `-g` (krallin/tini#15).
    an_init_that_signals_only_the_child_pid_fails_the_shell_wrapper_group_scenario => CHILD_PID_ONLY,
    /// dumb-init's start-up window (docs/known-bugs.md#dumb-init-startup-race): an early
    /// SIGTERM to PID 1 is dropped.
    an_init_that_blocks_signals_late_fails_the_early_sigterm_scenario => LATE_BLOCK,
    /// A re-bound socket loses its backlog: connections during a restart are refused.
    an_init_that_rebinds_its_sockets_on_restart_fails_the_socket_inheritance_scenario => REBIND,
    an_init_that_forwards_only_stop_signals_fails_the_forwarding_scenario => NO_FORWARD,
    /// krallin/tini#229, dumb-init#80: remaining processes are killed with no SIGTERM.
    an_init_that_sigkills_the_remaining_processes_fails_the_graceful_shutdown_scenario => KILL_ALL_AT_EXIT,
}

/// The control: broken-init without a defect passes every scenario above, so each failure comes
/// from its defect. The scenarios run one after another (the early-SIGTERM one alone starts 24
/// containers, and together they starve a loaded 2-core machine); every failure is collected and
/// reported together.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_init_without_a_defect_passes_every_scenario_the_defects_fail() {
    let mut failures = Vec::new();
    for power in &ALL {
        match outcome(power, "none").await {
            Ok(Observed::Pass) => {}
            Ok(other) => failures.push(format!("`{}`: {other:?}", power.scenario)),
            Err(e) => failures.push(format!("`{}`: setting up broken-init: {e:#}", power.scenario)),
        }
    }
    assert!(
        failures.is_empty(),
        "broken-init:none (a correct init) fails {} of {} scenarios, so they cannot tell a defect from a difference:\n{}",
        failures.len(),
        ALL.len(),
        failures.join("\n")
    );
}
