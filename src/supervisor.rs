//! The supervisor: a pure state machine that decides what scinit does.
//!
//! `on_event(Event, now) -> Vec<Action>` performs no system calls: the event loop turns raw
//! input (signalfd, reaper, inotify, deadlines) into [`Event`]s and performs the returned
//! [`Action`]s. Escalation timing, restart sequencing and debouncing are therefore plain unit
//! tests below, with a synthetic clock.
//!
//! Lifecycle of the main child:
//!
//! - `Spawning` → `Running` when the child starts. If it cannot be started: the first time,
//!   exit with the failure's code (127/126 for exec, 1 for fork); after a restart, `Idle`
//!   (sockets kept) until the next restart trigger.
//! - `Running` → `Stopping` on a restart trigger (SIGTERM) or a stop signal (forwarded), then
//!   SIGKILL if the grace period ends first. `Stopping` records what follows the child's exit:
//!   `Then::Respawn` for a restart, `Then::Drain` for a shutdown. A stop signal during a
//!   restart turns `Respawn` into `Drain`, keeping the grace period already running.
//! - `Stopping` (`Respawn`) → `Delaying` (`--restart-delay-ms`, skipped when zero) once the old
//!   child has exited → `Spawning`.
//! - `Stopping` (`Drain`), or `Running` when the child exits on its own → `Draining`: everything
//!   left gets SIGTERM, then SIGKILL when the grace period ends; with no children left → exit
//!   with the main child's code. A stop signal while no child runs (`Delaying`, `Idle`) goes
//!   straight to `Draining`.

use std::time::{Duration, Instant};

use nix::libc;

use crate::log::Level;
use crate::signals::{self, Class};

/// After SIGKILL, how long to wait for the remaining processes to be reaped before exiting
/// anyway. SIGKILL cannot be caught, so this only matters for processes stuck in the kernel
/// (uninterruptible sleep); PID 1 must not hang on them forever.
pub const KILL_REAP_TIMEOUT: Duration = Duration::from_secs(1);

/// While draining, how often to look again for processes that are not scinit's children
/// (entered with `docker exec`): no SIGCHLD tells when they end. Only then does scinit poll.
pub const RECHECK_INTERVAL: Duration = Duration::from_millis(20);

/// The settings the supervisor needs, taken from the command line.
#[derive(Debug, Clone)]
pub struct Settings {
    pub grace: Duration,
    pub restart_delay: Duration,
    pub debounce: Duration,
    pub restart_signal: Option<i32>,
}

/// Something that happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A signal read from the signalfd (never SIGCHLD: the loop turns that into `Reaped`).
    Signal(i32),
    /// The result of one reaper drain: `(pid, exit code)` per reaped process, whether scinit
    /// has no children left at all (`ECHILD`), and whether processes it cannot wait for are
    /// still running (entered with `docker exec`: not its children, so no SIGCHLD will say
    /// when they are gone). The last is only looked up once no child is left.
    Reaped { exits: Vec<(i32, i32)>, no_children_left: bool, others_left: bool },
    /// A relevant change in a watched path.
    FilesChanged,
    /// The `Spawn` action started the child with this pid.
    Spawned(i32),
    /// The `Spawn` action failed, with the exit code the failure maps to (127/126 when the
    /// exec failed, 1 when scinit could not fork).
    SpawnFailed(i32),
    /// The loop woke up because `next_deadline` passed.
    Timeout,
}

/// Something to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Start the main child; the loop answers with `Spawned` or `SpawnFailed` at once.
    Spawn,
    /// Send a signal to the child's process group, or to its pid if the group is gone.
    SignalChild {
        pid: i32,
        signo: i32,
    },
    /// Send a signal to every remaining descendant of scinit.
    SignalDescendants(i32),
    /// Run the reaper now; the loop answers with `Reaped`.
    Reap,
    Log(Level, String),
    /// Restore the terminal and exit with this code. Nothing else ever ends scinit.
    Exit(i32),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Waiting for the `Spawn` result; `previous` is the last child's code after a restart.
    Spawning {
        previous: Option<i32>,
    },
    Running {
        child: i32,
    },
    /// Waiting for the main child to exit after SIGTERM (restart) or a stop signal (shutdown);
    /// `killed` once the grace period has ended in SIGKILL.
    Stopping {
        child: i32,
        deadline: Instant,
        killed: bool,
        then: Then,
    },
    /// The old child is gone; waiting `--restart-delay-ms`.
    Delaying {
        until: Instant,
        code: i32,
    },
    /// The restarted child could not be started; waiting for the next restart trigger.
    Idle {
        code: i32,
    },
    /// The main child is gone: waiting for every other process, within the grace period.
    /// `recheck` is when to look again for processes that are not scinit's children.
    Draining {
        code: i32,
        deadline: Instant,
        killed: bool,
        recheck: Option<Instant>,
    },
    Exited,
}

/// What `Stopping` leads to once the child has exited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Then {
    /// A restart: a new child, after `--restart-delay-ms`.
    Respawn,
    /// A shutdown: `Draining` whatever is left, then exit.
    Drain,
}

#[derive(Debug)]
pub struct Supervisor {
    settings: Settings,
    state: State,
    /// Trailing-edge debounce: every change pushes it back; the restart happens when it passes.
    debounce_deadline: Option<Instant>,
}

impl Supervisor {
    /// A supervisor whose first action must be [`Supervisor::start`].
    pub fn new(settings: Settings) -> Supervisor {
        Supervisor { settings, state: State::Spawning { previous: None }, debounce_deadline: None }
    }

    /// The actions that start everything.
    pub fn start(&self) -> Vec<Action> {
        vec![Action::Spawn]
    }

    /// The earliest moment at which `Event::Timeout` must be delivered, if any.
    pub fn next_deadline(&self) -> Option<Instant> {
        let state_deadline = match self.state {
            State::Stopping { deadline, killed: false, .. }
            | State::Draining { deadline, recheck: None, .. } => Some(deadline),
            State::Draining { deadline, recheck: Some(recheck), .. } => Some(deadline.min(recheck)),
            State::Delaying { until, .. } => Some(until),
            _ => None,
        };
        // A pending debounce is moot once a shutdown has begun.
        let debounce = if self.shutting_down() { None } else { self.debounce_deadline };
        match (state_deadline, debounce) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn shutting_down(&self) -> bool {
        matches!(
            self.state,
            State::Stopping { then: Then::Drain, .. } | State::Draining { .. } | State::Exited
        )
    }

    /// Decides what to do about one event.
    pub fn on_event(&mut self, event: Event, now: Instant) -> Vec<Action> {
        if self.state == State::Exited {
            return Vec::new();
        }
        match event {
            Event::Signal(signo) => self.on_signal(signo, now),
            Event::Reaped { exits, no_children_left, others_left } => {
                self.on_reaped(&exits, no_children_left, others_left, now)
            }
            Event::FilesChanged => {
                if !self.shutting_down() {
                    self.debounce_deadline = Some(now + self.settings.debounce);
                }
                Vec::new()
            }
            Event::Spawned(pid) => self.on_spawned(pid),
            Event::SpawnFailed(code) => self.on_spawn_failed(code),
            Event::Timeout => self.on_timeout(now),
        }
    }

    fn on_signal(&mut self, signo: i32, now: Instant) -> Vec<Action> {
        match signals::classify(signo, self.settings.restart_signal) {
            Class::Stop => self.on_stop(signo, now),
            Class::Restart => self.restart(now, &format!("{} received", signals::name(signo))),
            // The loop reaps on SIGCHLD itself; nothing to decide here.
            Class::Reap => Vec::new(),
            Class::Forward => match self.live_child() {
                Some(pid) => vec![Action::SignalChild { pid, signo }],
                None => vec![debug(format!("no child to forward {} to", signals::name(signo)))],
            },
        }
    }

    fn live_child(&self) -> Option<i32> {
        match self.state {
            State::Running { child } | State::Stopping { child, .. } => Some(child),
            _ => None,
        }
    }

    fn on_stop(&mut self, signo: i32, now: Instant) -> Vec<Action> {
        let name = signals::name(signo);
        match self.state {
            State::Running { child } => {
                self.state = State::Stopping {
                    child,
                    deadline: now + self.settings.grace,
                    killed: false,
                    then: Then::Drain,
                };
                vec![
                    info(format!("{name} received: stopping child {child}")),
                    Action::SignalChild { pid: child, signo },
                ]
            }
            // A stop during a restart wins. The old child has been under SIGTERM since the
            // restart began, so its grace period keeps running rather than starting over.
            State::Stopping { child, deadline, killed, then: Then::Respawn } => {
                self.state = State::Stopping { child, deadline, killed, then: Then::Drain };
                vec![
                    info(format!("{name} received during a restart: shutting down")),
                    Action::SignalChild { pid: child, signo },
                ]
            }
            // A second stop signal is forwarded too: the child may use it to hurry up.
            State::Stopping { child, then: Then::Drain, .. } => {
                vec![Action::SignalChild { pid: child, signo }]
            }
            State::Draining { .. } => vec![Action::SignalDescendants(signo)],
            State::Delaying { code, .. } | State::Idle { code } => {
                let mut actions =
                    vec![info(format!("{name} received with no child running: shutting down"))];
                actions.extend(self.drain(code, now + self.settings.grace, now));
                actions
            }
            // Unreachable in practice: the loop answers `Spawn` before reading any other input.
            State::Spawning { .. } | State::Exited => Vec::new(),
        }
    }

    fn restart(&mut self, now: Instant, why: &str) -> Vec<Action> {
        self.debounce_deadline = None;
        match self.state {
            State::Running { child } => {
                self.state = State::Stopping {
                    child,
                    deadline: now + self.settings.grace,
                    killed: false,
                    then: Then::Respawn,
                };
                vec![
                    info(format!("{why}: restarting child {child}")),
                    Action::SignalChild { pid: child, signo: libc::SIGTERM },
                ]
            }
            State::Idle { code } => {
                self.state = State::Spawning { previous: Some(code) };
                vec![info(format!("{why}: starting the child again")), Action::Spawn]
            }
            State::Stopping { then: Then::Respawn, .. }
            | State::Delaying { .. }
            | State::Spawning { .. } => {
                vec![debug(format!("{why}: a restart is already in progress"))]
            }
            State::Stopping { then: Then::Drain, .. } | State::Draining { .. } | State::Exited => {
                vec![debug(format!("{why}: ignored, shutting down"))]
            }
        }
    }

    fn on_reaped(
        &mut self,
        exits: &[(i32, i32)],
        no_children_left: bool,
        others_left: bool,
        now: Instant,
    ) -> Vec<Action> {
        let mut actions = Vec::new();
        for &(pid, code) in exits {
            if Some(pid) != self.live_child() {
                actions.push(debug(format!("reaped process {pid} (exit code {code})")));
                continue;
            }
            match self.state {
                State::Running { .. } => {
                    actions.push(info(format!("child {pid} exited (exit code {code})")));
                    actions.extend(self.drain(code, now + self.settings.grace, now));
                }
                State::Stopping { then: Then::Respawn, .. } => {
                    actions.push(info(format!("old child {pid} exited (exit code {code})")));
                    if self.settings.restart_delay.is_zero() {
                        self.state = State::Spawning { previous: Some(code) };
                        actions.push(Action::Spawn);
                    } else {
                        self.state =
                            State::Delaying { until: now + self.settings.restart_delay, code };
                    }
                }
                State::Stopping { deadline, then: Then::Drain, .. } => {
                    actions.push(info(format!("child {pid} exited (exit code {code})")));
                    actions.extend(self.drain(code, deadline, now));
                }
                _ => {}
            }
        }
        if let (State::Draining { recheck, .. }, true, true) =
            (&mut self.state, no_children_left, others_left)
        {
            // Nothing will signal their end: look again shortly, until they are gone or the
            // grace period ends.
            *recheck = Some(now + RECHECK_INTERVAL);
        } else if let (State::Draining { code, .. }, true) = (&self.state, no_children_left) {
            let code = *code;
            self.state = State::Exited;
            // Signalling an empty set is pointless: keep only what was logged.
            actions.retain(|a| matches!(a, Action::Log(..)));
            actions.push(Action::Exit(code));
        }
        actions
    }

    /// The main child is gone: TERM everything left (or KILL, if the grace period is already
    /// over) and reap, so that an empty process table ends scinit at once.
    fn drain(&mut self, code: i32, deadline: Instant, now: Instant) -> Vec<Action> {
        let killed = deadline <= now;
        let (signo, deadline) = if killed {
            (libc::SIGKILL, now + KILL_REAP_TIMEOUT)
        } else {
            (libc::SIGTERM, deadline)
        };
        self.state = State::Draining { code, deadline, killed, recheck: None };
        vec![Action::SignalDescendants(signo), Action::Reap]
    }

    fn on_spawned(&mut self, pid: i32) -> Vec<Action> {
        if let State::Spawning { .. } = self.state {
            self.state = State::Running { child: pid };
        }
        vec![info(format!("started child {pid}"))]
    }

    fn on_spawn_failed(&mut self, code: i32) -> Vec<Action> {
        match self.state {
            State::Spawning { previous: None } => {
                self.state = State::Exited;
                vec![Action::Exit(code)]
            }
            // After a restart the listening sockets must survive: stay up and let the next
            // restart trigger (a fixed file, a SIGHUP) try again.
            State::Spawning { previous: Some(_) } => {
                self.state = State::Idle { code };
                vec![Action::Log(
                    Level::Warn,
                    "the new child could not be started; keeping the sockets and waiting for the next restart"
                        .to_string(),
                )]
            }
            _ => Vec::new(),
        }
    }

    fn on_timeout(&mut self, now: Instant) -> Vec<Action> {
        let mut actions = Vec::new();
        match self.state {
            State::Stopping { child, deadline, killed: false, then } if deadline <= now => {
                self.state = State::Stopping { child, deadline, killed: true, then };
                actions.push(warn(match then {
                    Then::Respawn => {
                        format!("old child {child} ignored SIGTERM for the grace period: SIGKILL")
                    }
                    Then::Drain => {
                        format!("child {child} still running after the grace period: SIGKILL")
                    }
                }));
                actions.push(Action::SignalChild { pid: child, signo: libc::SIGKILL });
            }
            State::Delaying { until, code } if until <= now => {
                self.state = State::Spawning { previous: Some(code) };
                actions.push(Action::Spawn);
            }
            State::Draining { code, deadline, killed: false, .. } if deadline <= now => {
                self.state = State::Draining {
                    code,
                    deadline: now + KILL_REAP_TIMEOUT,
                    killed: true,
                    recheck: None,
                };
                // The loop logs what is still running: only it knows how many there are.
                actions.push(Action::SignalDescendants(libc::SIGKILL));
                actions.push(Action::Reap);
            }
            State::Draining { code, deadline, killed: true, .. } if deadline <= now => {
                self.state = State::Exited;
                actions.push(warn(
                    "some processes could not be reaped after SIGKILL; exiting anyway".to_string(),
                ));
                actions.push(Action::Exit(code));
            }
            State::Draining { code, deadline, killed, recheck: Some(recheck) }
                if recheck <= now =>
            {
                self.state = State::Draining { code, deadline, killed, recheck: None };
                actions.push(Action::Reap);
            }
            _ => {}
        }
        if self.debounce_deadline.is_some_and(|d| d <= now) && !self.shutting_down() {
            actions.extend(self.restart(now, "watched files changed"));
        }
        actions
    }
}

fn debug(message: String) -> Action {
    Action::Log(Level::Debug, message)
}

fn info(message: String) -> Action {
    Action::Log(Level::Info, message)
}

fn warn(message: String) -> Action {
    Action::Log(Level::Warn, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TERM: i32 = libc::SIGTERM;
    const KILL: i32 = libc::SIGKILL;
    const HUP: i32 = libc::SIGHUP;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A supervisor under a synthetic clock, with log actions filtered out of the results.
    struct Harness {
        sup: Supervisor,
        t0: Instant,
    }

    impl Harness {
        fn new(restart_delay: u64) -> Harness {
            Harness {
                sup: Supervisor::new(Settings {
                    grace: ms(5000),
                    restart_delay: ms(restart_delay),
                    debounce: ms(500),
                    restart_signal: Some(HUP),
                }),
                t0: Instant::now(),
            }
        }

        /// Started, with the child running as `pid`.
        fn running(pid: i32) -> Harness {
            let mut h = Harness::new(0);
            assert_eq!(h.sup.start(), vec![Action::Spawn]);
            h.at(0, Event::Spawned(pid));
            h
        }

        fn at(&mut self, t: u64, event: Event) -> Vec<Action> {
            self.sup
                .on_event(event, self.t0 + ms(t))
                .into_iter()
                .filter(|a| !matches!(a, Action::Log(..)))
                .collect()
        }

        fn deadline(&self) -> Option<u64> {
            self.sup.next_deadline().map(|d| (d - self.t0).as_millis() as u64)
        }
    }

    fn exited(pid: i32, code: i32, no_children_left: bool) -> Event {
        Event::Reaped { exits: vec![(pid, code)], no_children_left, others_left: false }
    }

    #[test]
    fn running_child_has_no_deadline_so_the_loop_sleeps() {
        let h = Harness::running(10);
        assert_eq!(h.deadline(), None);
    }

    #[test]
    fn child_exit_with_nothing_left_exits_with_its_code() {
        let mut h = Harness::running(10);
        assert_eq!(h.at(100, exited(10, 3, true)), vec![Action::Exit(3)]);
        assert_eq!(h.at(200, Event::Signal(TERM)), vec![]);
    }

    #[test]
    fn child_exit_with_leftovers_terms_them_then_kills_after_the_grace_period() {
        let mut h = Harness::running(10);
        assert_eq!(
            h.at(1000, exited(10, 0, false)),
            vec![Action::SignalDescendants(TERM), Action::Reap]
        );
        // Grace starts at the child's exit when there was no stop signal.
        assert_eq!(h.deadline(), Some(6000));
        assert_eq!(h.at(5999, Event::Timeout), vec![]);
        assert_eq!(h.at(6000, Event::Timeout), vec![Action::SignalDescendants(KILL), Action::Reap]);
        assert_eq!(
            h.at(
                6010,
                Event::Reaped {
                    exits: vec![(77, 137)],
                    no_children_left: true,
                    others_left: false
                }
            ),
            vec![Action::Exit(0)]
        );
    }

    #[test]
    fn leftovers_exiting_in_time_end_the_drain_early() {
        let mut h = Harness::running(10);
        h.at(0, exited(10, 5, false));
        assert_eq!(
            h.at(
                50,
                Event::Reaped {
                    exits: vec![(11, 143)],
                    no_children_left: false,
                    others_left: false
                }
            ),
            vec![]
        );
        assert_eq!(
            h.at(
                60,
                Event::Reaped { exits: vec![(12, 0)], no_children_left: true, others_left: false }
            ),
            vec![Action::Exit(5)]
        );
    }

    #[test]
    fn leftovers_that_are_not_children_are_rechecked_until_gone() {
        let mut h = Harness::running(10);
        h.at(0, exited(10, 5, false));
        // No child left, but a `docker exec` process still runs: no SIGCHLD will come for it.
        let reaped =
            |others_left| Event::Reaped { exits: vec![], no_children_left: true, others_left };
        assert_eq!(h.at(30, reaped(true)), vec![]);
        assert_eq!(h.deadline(), Some(30 + RECHECK_INTERVAL.as_millis() as u64));
        assert_eq!(h.at(50, Event::Timeout), vec![Action::Reap]);
        assert_eq!(h.deadline(), Some(5000));
        assert_eq!(h.at(55, reaped(false)), vec![Action::Exit(5)]);
    }

    #[test]
    fn leftovers_that_are_not_children_are_killed_when_the_grace_period_ends() {
        let mut h = Harness::running(10);
        h.at(0, exited(10, 5, false));
        let still_there =
            Event::Reaped { exits: vec![], no_children_left: true, others_left: true };
        h.at(4990, still_there);
        assert_eq!(h.at(5000, Event::Timeout), vec![Action::SignalDescendants(KILL), Action::Reap]);
    }

    #[test]
    fn unkillable_leftovers_do_not_hang_scinit_forever() {
        let mut h = Harness::running(10);
        h.at(0, exited(10, 1, false));
        h.at(5000, Event::Timeout);
        assert_eq!(h.deadline(), Some(5000 + KILL_REAP_TIMEOUT.as_millis() as u64));
        assert_eq!(h.at(6000, Event::Timeout), vec![Action::Exit(1)]);
    }

    #[test]
    fn stop_signal_is_forwarded_then_escalates_to_sigkill_after_the_grace_period() {
        let mut h = Harness::running(10);
        assert_eq!(
            h.at(1000, Event::Signal(TERM)),
            vec![Action::SignalChild { pid: 10, signo: TERM }]
        );
        assert_eq!(h.deadline(), Some(6000));
        assert_eq!(h.at(3000, Event::Timeout), vec![]);
        assert_eq!(h.at(6000, Event::Timeout), vec![Action::SignalChild { pid: 10, signo: KILL }]);
        assert_eq!(h.deadline(), None);
        // Grace is used up: the leftovers get SIGKILL straight away.
        assert_eq!(
            h.at(6005, exited(10, 137, false)),
            vec![Action::SignalDescendants(KILL), Action::Reap]
        );
        assert_eq!(
            h.at(6010, Event::Reaped { exits: vec![], no_children_left: true, others_left: false }),
            vec![Action::Exit(137)]
        );
    }

    #[test]
    fn leftovers_get_what_is_left_of_the_grace_period_after_a_stop_signal() {
        let mut h = Harness::running(10);
        h.at(1000, Event::Signal(libc::SIGINT));
        assert_eq!(
            h.at(2000, exited(10, 130, false)),
            vec![Action::SignalDescendants(TERM), Action::Reap]
        );
        assert_eq!(h.deadline(), Some(6000));
    }

    #[test]
    fn every_stop_signal_starts_a_shutdown_and_a_second_one_is_forwarded() {
        for signo in [TERM, libc::SIGINT, libc::SIGQUIT] {
            let mut h = Harness::running(10);
            assert_eq!(h.at(0, Event::Signal(signo)), vec![Action::SignalChild { pid: 10, signo }]);
            assert_eq!(
                h.at(10, Event::Signal(libc::SIGINT)),
                vec![Action::SignalChild { pid: 10, signo: libc::SIGINT }]
            );
            // The second signal does not restart the grace period.
            assert_eq!(h.deadline(), Some(5000));
        }
    }

    #[test]
    fn other_signals_are_forwarded_and_change_nothing() {
        let mut h = Harness::running(10);
        for signo in
            [libc::SIGUSR1, libc::SIGWINCH, libc::SIGTSTP, libc::SIGCONT, libc::SIGRTMIN() + 1]
        {
            assert_eq!(h.at(0, Event::Signal(signo)), vec![Action::SignalChild { pid: 10, signo }]);
        }
        assert_eq!(h.deadline(), None);
    }

    #[test]
    fn reaped_orphans_do_not_end_anything() {
        let mut h = Harness::running(10);
        assert_eq!(
            h.at(
                0,
                Event::Reaped {
                    exits: vec![(20, 0), (21, 1)],
                    no_children_left: false,
                    others_left: false
                }
            ),
            vec![]
        );
        assert_eq!(
            h.at(1, Event::Signal(libc::SIGUSR1)),
            vec![Action::SignalChild { pid: 10, signo: libc::SIGUSR1 }]
        );
    }

    #[test]
    fn main_child_status_is_found_among_coalesced_exits() {
        let mut h = Harness::running(10);
        let event = Event::Reaped {
            exits: vec![(20, 0), (10, 42), (21, 9)],
            no_children_left: true,
            others_left: false,
        };
        assert_eq!(h.at(0, event), vec![Action::Exit(42)]);
    }

    #[test]
    fn first_exec_failure_exits_with_its_code() {
        let mut h = Harness::new(0);
        assert_eq!(h.at(0, Event::SpawnFailed(127)), vec![Action::Exit(127)]);
    }

    #[test]
    fn restart_signal_stops_the_old_child_then_spawns_a_new_one() {
        let mut h = Harness::running(10);
        assert_eq!(h.at(0, Event::Signal(HUP)), vec![Action::SignalChild { pid: 10, signo: TERM }]);
        assert_eq!(h.deadline(), Some(5000));
        assert_eq!(h.at(100, exited(10, 143, false)), vec![Action::Spawn]);
        assert_eq!(h.at(100, Event::Spawned(11)), vec![]);
        assert_eq!(
            h.at(200, Event::Signal(libc::SIGUSR1)),
            vec![Action::SignalChild { pid: 11, signo: libc::SIGUSR1 }]
        );
        assert_eq!(h.deadline(), None);
    }

    #[test]
    fn restart_escalates_to_sigkill_for_a_stubborn_old_child() {
        let mut h = Harness::running(10);
        h.at(0, Event::Signal(HUP));
        assert_eq!(h.at(5000, Event::Timeout), vec![Action::SignalChild { pid: 10, signo: KILL }]);
        assert_eq!(h.at(5001, exited(10, 137, false)), vec![Action::Spawn]);
    }

    #[test]
    fn restart_delay_separates_the_old_exit_from_the_new_start() {
        let mut h = Harness::new(300);
        h.sup.start();
        h.at(0, Event::Spawned(10));
        h.at(0, Event::Signal(HUP));
        assert_eq!(h.at(100, exited(10, 0, false)), vec![]);
        assert_eq!(h.deadline(), Some(400));
        assert_eq!(h.at(399, Event::Timeout), vec![]);
        assert_eq!(h.at(400, Event::Timeout), vec![Action::Spawn]);
    }

    #[test]
    fn restart_signals_during_a_restart_are_coalesced() {
        let mut h = Harness::new(300);
        h.sup.start();
        h.at(0, Event::Spawned(10));
        h.at(0, Event::Signal(HUP));
        assert_eq!(h.at(10, Event::Signal(HUP)), vec![]);
        h.at(100, exited(10, 0, false));
        assert_eq!(h.at(200, Event::Signal(HUP)), vec![]);
        assert_eq!(h.at(400, Event::Timeout), vec![Action::Spawn]);
    }

    #[test]
    fn stop_signal_while_the_old_child_is_stopping_wins() {
        let mut h = Harness::running(10);
        h.at(0, Event::Signal(HUP));
        assert_eq!(
            h.at(1000, Event::Signal(TERM)),
            vec![Action::SignalChild { pid: 10, signo: TERM }]
        );
        // No new child: the old one's status is the exit code.
        assert_eq!(h.at(1100, exited(10, 143, true)), vec![Action::Exit(143)]);
    }

    #[test]
    fn stop_signal_during_a_restart_keeps_its_grace_period_and_drains_instead_of_respawning() {
        let mut h = Harness::running(10);
        h.at(0, Event::Signal(HUP));
        h.at(1000, Event::Signal(TERM));
        assert_eq!(h.deadline(), Some(5000));
        assert_eq!(h.at(5000, Event::Timeout), vec![Action::SignalChild { pid: 10, signo: KILL }]);
        assert_eq!(h.deadline(), None);
        assert_eq!(
            h.at(5001, exited(10, 137, false)),
            vec![Action::SignalDescendants(KILL), Action::Reap]
        );
    }

    #[test]
    fn stop_signal_during_the_restart_delay_exits_with_the_old_status() {
        let mut h = Harness::new(1000);
        h.sup.start();
        h.at(0, Event::Spawned(10));
        h.at(0, Event::Signal(HUP));
        h.at(100, exited(10, 143, false));
        assert_eq!(
            h.at(200, Event::Signal(TERM)),
            vec![Action::SignalDescendants(TERM), Action::Reap]
        );
        assert_eq!(
            h.at(201, Event::Reaped { exits: vec![], no_children_left: true, others_left: false }),
            vec![Action::Exit(143)]
        );
        assert_eq!(h.at(1100, Event::Timeout), vec![]);
    }

    #[test]
    fn failed_restart_keeps_scinit_up_until_the_next_trigger() {
        let mut h = Harness::running(10);
        h.at(0, Event::Signal(HUP));
        h.at(10, exited(10, 143, false));
        assert_eq!(h.at(10, Event::SpawnFailed(127)), vec![]);
        assert_eq!(h.deadline(), None);
        assert_eq!(h.at(20, Event::Signal(libc::SIGUSR1)), vec![]);
        assert_eq!(h.at(30, Event::Signal(HUP)), vec![Action::Spawn]);
        assert_eq!(h.at(30, Event::Spawned(11)), vec![]);
        assert_eq!(
            h.at(40, Event::Signal(TERM)),
            vec![Action::SignalChild { pid: 11, signo: TERM }]
        );
    }

    #[test]
    fn stop_signal_after_a_failed_restart_exits_with_the_exec_failure_code() {
        let mut h = Harness::running(10);
        h.at(0, Event::Signal(HUP));
        h.at(10, exited(10, 143, false));
        h.at(10, Event::SpawnFailed(126));
        h.at(20, Event::Signal(TERM));
        assert_eq!(
            h.at(21, Event::Reaped { exits: vec![], no_children_left: true, others_left: false }),
            vec![Action::Exit(126)]
        );
    }

    #[test]
    fn file_changes_restart_once_after_the_trailing_debounce() {
        let mut h = Harness::running(10);
        assert_eq!(h.at(0, Event::FilesChanged), vec![]);
        assert_eq!(h.deadline(), Some(500));
        h.at(300, Event::FilesChanged);
        assert_eq!(h.deadline(), Some(800));
        assert_eq!(h.at(500, Event::Timeout), vec![]);
        assert_eq!(h.at(800, Event::Timeout), vec![Action::SignalChild { pid: 10, signo: TERM }]);
        assert_eq!(h.deadline(), Some(5800));
    }

    #[test]
    fn file_changes_during_a_shutdown_are_ignored() {
        let mut h = Harness::running(10);
        h.at(0, Event::FilesChanged);
        h.at(100, Event::Signal(TERM));
        assert_eq!(h.deadline(), Some(5100));
        h.at(200, Event::FilesChanged);
        assert_eq!(h.at(600, Event::Timeout), vec![]);
    }

    #[test]
    fn restart_signal_none_forwards_sighup() {
        let mut h = Harness::running(10);
        h.sup.settings.restart_signal = None;
        assert_eq!(h.at(0, Event::Signal(HUP)), vec![Action::SignalChild { pid: 10, signo: HUP }]);
    }
}
