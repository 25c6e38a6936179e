//! The supervisor: a pure state machine that decides what scinit does.
//!
//! `on_event(Event, now, &mut actions)` performs no system calls: the event loop turns raw
//! input (signalfd, reaper, inotify, notify socket, deadlines) into [`Event`]s and performs the
//! returned [`Action`]s. Escalation timing, restart sequencing, readiness and debouncing are
//! therefore plain unit tests below, with a synthetic clock.
//!
//! Every stop signal scinit sends (to the main child's group, to a retiring child, to the
//! leftovers while draining) is followed by SIGCONT to the same target, as systemd does: a child
//! stopped by a forwarded SIGTSTP could not act on it otherwise, and would only be SIGKILLed.
//! The stop signal is `--stop-signal` (SIGTERM by default) for restarts and for a received
//! SIGTERM; a received SIGINT or SIGQUIT is passed on as it is.
//!
//! Lifecycle of the main child:
//!
//! - `Spawning` → `Running` when the child starts. If it cannot be started: the first time,
//!   exit with the failure's code (127/126 for exec, 1 for fork); after a restart, `Idle`
//!   (sockets kept) until the next restart trigger.
//! - `Running` → `Stopping` on a stop-first restart trigger (the stop signal) or a stop signal
//!   (forwarded), then SIGKILL if the grace period ends first. `Stopping` records what follows
//!   the child's exit: `Then::Respawn` for a restart, `Then::Drain` for a shutdown. A stop
//!   signal during a restart turns `Respawn` into `Drain`, keeping the grace period already
//!   running.
//! - `Stopping` (`Respawn`) → `Delaying` (`--restart-delay-ms`, skipped when zero) once the old
//!   child has exited → `Spawning`.
//! - `Running` → `StartingNew` → `Overlap` on a start-first restart trigger: the new child runs
//!   beside the old one, which stays the main child (it gets the forwarded signals) until the new
//!   one is ready (`READY=1` from its tree, or `--ready-delay-ms` after its start). Then the new
//!   one is the main child (`Running`) and the old one *retires*: it gets the stop signal, then
//!   SIGKILL when its grace period ends, and its exit ends nothing. If the new child exits or
//!   cannot be started first, or is not ready within `--ready-timeout-secs` (then it retires),
//!   the restart is abandoned: `Running` with the old child. If the old child exits on its own
//!   first, the new one takes over at once. Restart triggers during a start-first restart leave
//!   one more restart pending, started as soon as the supervisor is back in `Running`.
//! - `Overlap` → `Stopping` (`Drain`) on a stop signal: both children get it, with one grace
//!   period; the old one is the main child, the new one retires.
//! - `Stopping` (`Drain`), or `Running` when the child exits on its own → `Draining`: everything
//!   left gets the stop signal, then SIGKILL when the grace period ends; with no children left →
//!   exit with the main child's code. A stop signal while no child runs (`Delaying`, `Idle`) goes
//!   straight to `Draining`.

use std::collections::VecDeque;
use std::fmt;
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
    /// What stops a child: for a restart, and in place of a received SIGTERM.
    pub stop_signal: i32,
    pub restart_order: RestartOrder,
    /// When a new child started first counts as ready.
    pub readiness: Readiness,
    /// How long a new child started first may take to be ready.
    pub ready_timeout: Duration,
    /// The most verbose level logged (`SCINIT_LOG`): lines beyond it are not even formatted.
    pub log_level: Level,
}

/// `--restart-order`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartOrder {
    /// Stop the old child, wait for its exit, then start the new one.
    StopFirst,
    /// Start the new child, and stop the old one once the new one is ready.
    StartFirst,
}

/// When a new child started first counts as ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    /// When its tree sends `READY=1` to `NOTIFY_SOCKET` (`--notify`).
    Notify,
    /// This long after it started (`--ready-delay-ms`, without `--notify`).
    Delay(Duration),
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
    /// A `READY=1` datagram on the notify socket, from `sender` (the pid the kernel vouches for)
    /// whose parent, grandparent, ... up to scinit are `ancestors`.
    Ready { sender: i32, ancestors: Vec<i32> },
    /// The `Spawn` action started the child with this pid.
    Spawned(i32),
    /// The `Spawn` action failed, with the exit code the failure maps to (127/126 when the
    /// exec failed, 1 when scinit could not fork) and the one line that says why.
    SpawnFailed { code: i32, message: String },
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
    /// Send `signo`, then SIGCONT, to every remaining descendant of scinit but `spared` (the
    /// retiring children, which have been sent theirs already).
    StopDescendants {
        signo: i32,
        spared: Vec<i32>,
    },
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
    /// Waiting for the main child to exit after the stop signal (restart) or a received stop
    /// signal (shutdown); `killed` once the grace period has ended in SIGKILL.
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
    /// Start-first: waiting for the `Spawn` result of the new child; `old` keeps serving.
    StartingNew {
        old: i32,
    },
    /// Start-first: the new child runs beside `old`, which stays the main child until `new` is
    /// ready; `started` is when `new` started (ready delay and timeout count from there).
    Overlap {
        old: i32,
        new: i32,
        started: Instant,
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

/// A child that is no longer the main child and has been sent the stop signal: the old child
/// of a completed start-first restart, or a new child whose restart was abandoned or cut short
/// by a shutdown. SIGKILL at `deadline`; its exit ends nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Retiring {
    pid: i32,
    deadline: Instant,
    killed: bool,
}

#[derive(Debug)]
pub struct Supervisor {
    settings: Settings,
    state: State,
    /// Trailing-edge debounce: every change pushes it back; the restart happens when it passes.
    debounce_deadline: Option<Instant>,
    retiring: Vec<Retiring>,
    /// A restart was requested during a start-first restart: one more follows it.
    restart_pending: bool,
}

impl Supervisor {
    /// A supervisor whose first action must be [`Supervisor::start`].
    pub fn new(settings: Settings) -> Supervisor {
        Supervisor {
            settings,
            state: State::Spawning { previous: None },
            debounce_deadline: None,
            retiring: Vec::new(),
            restart_pending: false,
        }
    }

    fn debug(&self, message: fmt::Arguments<'_>) -> Action {
        line(self.settings.log_level, Level::Debug, message)
    }

    fn info(&self, message: fmt::Arguments<'_>) -> Action {
        line(self.settings.log_level, Level::Info, message)
    }

    fn warn(&self, message: fmt::Arguments<'_>) -> Action {
        line(self.settings.log_level, Level::Warn, message)
    }

    /// The actions that start everything.
    pub fn start(&self) -> Vec<Action> {
        vec![Action::Spawn]
    }

    /// The earliest moment at which `Event::Timeout` must be delivered, if any. The loop asks
    /// before every wait: plain comparisons, no iterator chains.
    pub fn next_deadline(&self) -> Option<Instant> {
        let mut next = match self.state {
            State::Stopping { deadline, killed: false, .. }
            | State::Draining { deadline, recheck: None, .. } => Some(deadline),
            State::Draining { deadline, recheck: Some(recheck), .. } => Some(deadline.min(recheck)),
            State::Delaying { until, .. } => Some(until),
            State::Overlap { started, .. } => Some(self.ready_deadline(started)),
            _ => None,
        };
        for retiring in self.retiring.iter().filter(|r| !r.killed) {
            next = earliest(next, Some(retiring.deadline));
        }
        // A pending debounce is moot once a shutdown has begun.
        if !self.shutting_down() {
            next = earliest(next, self.debounce_deadline);
        }
        next
    }

    /// When a new child that started at `started` is ready without `READY=1`, or given up.
    fn ready_deadline(&self, started: Instant) -> Instant {
        let timeout = started + self.settings.ready_timeout;
        match self.settings.readiness {
            Readiness::Delay(delay) => timeout.min(started + delay),
            Readiness::Notify => timeout,
        }
    }

    fn shutting_down(&self) -> bool {
        matches!(
            self.state,
            State::Stopping { then: Then::Drain, .. } | State::Draining { .. } | State::Exited
        )
    }

    /// Whether a reaper run can end in a drain, which needs to know whether processes that are
    /// not scinit's children are left (a `/proc` scan, see `Event::Reaped`). Not while a
    /// stop-first restart waits for the old child, its restart delay or the next trigger: an
    /// exit then starts the next child or ends nothing.
    pub fn drains_on_reap(&self) -> bool {
        !matches!(
            self.state,
            State::Stopping { then: Then::Respawn, .. }
                | State::Delaying { .. }
                | State::Idle { .. }
        )
    }

    /// Decides what to do about one event; appends the actions to `actions`.
    pub fn on_event(&mut self, event: Event, now: Instant, actions: &mut VecDeque<Action>) {
        if self.state == State::Exited {
            return;
        }
        match event {
            Event::Signal(signo) => self.on_signal(signo, now, actions),
            Event::Reaped { exits, no_children_left, others_left } => {
                actions.extend(self.on_reaped(&exits, no_children_left, others_left, now))
            }
            Event::FilesChanged => {
                if !self.shutting_down() {
                    self.debounce_deadline = Some(now + self.settings.debounce);
                }
            }
            Event::Ready { sender, ancestors } => {
                actions.extend(self.on_ready(sender, &ancestors, now))
            }
            Event::Spawned(pid) => actions.extend(self.on_spawned(pid, now)),
            Event::SpawnFailed { code, message } => {
                actions.extend(self.on_spawn_failed(code, message))
            }
            Event::Timeout => actions.extend(self.on_timeout(now)),
        }
        // After the whole event (a reaper batch may hold both children's exits), so that the
        // pending restart starts from where the current one really ended.
        if self.restart_pending && matches!(self.state, State::Running { .. }) {
            self.restart_pending = false;
            actions.extend(self.restart(now, &"restart requested during the previous one"));
        }
    }

    /// The commonest decision, for the loop's fast path: the child to pass `signo` on to, when
    /// passing it on is all there is to do about it; `None` when the signal must go through
    /// [`Supervisor::on_event`]. `Some(pid)` exactly when `on_event(Event::Signal(signo))` would
    /// change nothing and give `[SignalChild { pid, signo }]` (a unit test checks this in every
    /// state), so a signal may take either path. (`restart_pending` never outlives an event in
    /// `Running`, the only state where it acts.)
    pub fn forward_to(&self, signo: i32) -> Option<i32> {
        match signals::classify(signo, self.settings.restart_signal) {
            Class::Forward => self.main_child(),
            Class::Stop | Class::Restart | Class::Reap => None,
        }
    }

    /// A forwarded signal, the one event of a busy scinit, is pushed as it is: no allocation.
    fn on_signal(&mut self, signo: i32, now: Instant, actions: &mut VecDeque<Action>) {
        match signals::classify(signo, self.settings.restart_signal) {
            Class::Stop => actions.extend(self.on_stop(signo, now)),
            Class::Restart => {
                let why = format_args!("{} received", signals::name(signo));
                actions.extend(self.restart(now, &why))
            }
            // The loop reaps on SIGCHLD itself; nothing to decide here.
            Class::Reap => {}
            Class::Forward => actions.push_back(match self.forward_to(signo) {
                Some(pid) => Action::SignalChild { pid, signo },
                None => self.debug(format_args!("no child to forward {} to", signals::name(signo))),
            }),
        }
    }

    /// The child that receives forwarded signals and whose status is scinit's.
    fn main_child(&self) -> Option<i32> {
        match self.state {
            State::Running { child } | State::Stopping { child, .. } => Some(child),
            State::Overlap { old, .. } => Some(old),
            _ => None,
        }
    }

    /// What a received stop signal is passed on as: SIGTERM (what `docker stop` sends) becomes
    /// the stop signal; SIGINT and SIGQUIT go as they are (a Ctrl-C, a core-dump request).
    fn passed_on(&self, signo: i32) -> i32 {
        if signo == libc::SIGTERM {
            self.settings.stop_signal
        } else {
            signo
        }
    }

    fn on_stop(&mut self, signo: i32, now: Instant) -> Vec<Action> {
        let name = signals::name(signo);
        let sent = self.passed_on(signo);
        match self.state {
            State::Running { child } => {
                self.state = State::Stopping {
                    child,
                    deadline: now + self.settings.grace,
                    killed: false,
                    then: Then::Drain,
                };
                let mut actions =
                    vec![self.info(format_args!("{name} received: stopping child {child}"))];
                actions.extend(stop(child, sent));
                actions
            }
            // Both children are stopped, with one grace period; the old one is still the main
            // child, so its status is the exit code.
            State::Overlap { old, new, .. } => {
                let deadline = now + self.settings.grace;
                self.state =
                    State::Stopping { child: old, deadline, killed: false, then: Then::Drain };
                self.retiring.push(Retiring { pid: new, deadline, killed: false });
                let mut actions = vec![self.info(format_args!(
                    "{name} received during a restart: stopping child {old} and the new child {new}"
                ))];
                actions.extend(stop(old, sent));
                actions.extend(stop(new, sent));
                actions
            }
            // A stop during a restart wins. The old child has been under the stop signal since
            // the restart began, so its grace period keeps running rather than starting over.
            State::Stopping { child, deadline, killed, then: Then::Respawn } => {
                self.state = State::Stopping { child, deadline, killed, then: Then::Drain };
                let mut actions = vec![
                    self.info(format_args!("{name} received during a restart: shutting down"))
                ];
                actions.extend(stop(child, sent));
                actions
            }
            // A second stop signal is forwarded too: the child may use it to hurry up.
            State::Stopping { child, then: Then::Drain, .. } => stop(child, sent).to_vec(),
            State::Draining { .. } => {
                vec![Action::StopDescendants { signo: sent, spared: Vec::new() }]
            }
            State::Delaying { code, .. } | State::Idle { code } => {
                let mut actions =
                    vec![self.info(format_args!(
                        "{name} received with no child running: shutting down"
                    ))];
                actions.extend(self.drain(code, now + self.settings.grace, now));
                actions
            }
            // Unreachable in practice: the loop answers `Spawn` before reading any other input.
            State::Spawning { .. } | State::StartingNew { .. } | State::Exited => Vec::new(),
        }
    }

    fn restart(&mut self, now: Instant, why: &dyn fmt::Display) -> Vec<Action> {
        self.debounce_deadline = None;
        match self.state {
            State::Running { child } => match self.settings.restart_order {
                RestartOrder::StopFirst => {
                    self.state = State::Stopping {
                        child,
                        deadline: now + self.settings.grace,
                        killed: false,
                        then: Then::Respawn,
                    };
                    let mut actions =
                        vec![self.info(format_args!("{why}: restarting child {child}"))];
                    actions.extend(stop(child, self.settings.stop_signal));
                    actions
                }
                RestartOrder::StartFirst => {
                    self.state = State::StartingNew { old: child };
                    vec![
                        self.info(format_args!("{why}: starting a new child beside child {child}")),
                        Action::Spawn,
                    ]
                }
            },
            State::Idle { code } => {
                self.state = State::Spawning { previous: Some(code) };
                vec![self.info(format_args!("{why}: starting the child again")), Action::Spawn]
            }
            // The new child may already run what has changed since: one more restart follows.
            State::StartingNew { .. } | State::Overlap { .. } => {
                self.restart_pending = true;
                vec![self
                    .debug(format_args!("{why}: one more restart will follow the one in progress"))]
            }
            // No new child runs yet: the one about to start is the restart asked for.
            State::Stopping { then: Then::Respawn, .. }
            | State::Delaying { .. }
            | State::Spawning { .. } => {
                vec![self.debug(format_args!("{why}: a restart is already in progress"))]
            }
            State::Stopping { then: Then::Drain, .. } | State::Draining { .. } | State::Exited => {
                vec![self.debug(format_args!("{why}: ignored, shutting down"))]
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
            if let Some(index) = self.retiring.iter().position(|r| r.pid == pid) {
                self.retiring.remove(index);
                actions
                    .push(self.info(format_args!("retired child {pid} exited (exit code {code})")));
                continue;
            }
            match self.state {
                State::Running { child } if child == pid => {
                    actions.push(self.info(format_args!("child {pid} exited (exit code {code})")));
                    actions.extend(self.drain(code, now + self.settings.grace, now));
                }
                State::Stopping { child, then: Then::Respawn, .. } if child == pid => {
                    actions
                        .push(self.info(format_args!("old child {pid} exited (exit code {code})")));
                    if self.settings.restart_delay.is_zero() {
                        self.state = State::Spawning { previous: Some(code) };
                        actions.push(Action::Spawn);
                    } else {
                        self.state =
                            State::Delaying { until: now + self.settings.restart_delay, code };
                    }
                }
                State::Stopping { child, deadline, then: Then::Drain, .. } if child == pid => {
                    actions.push(self.info(format_args!("child {pid} exited (exit code {code})")));
                    actions.extend(self.drain(code, deadline, now));
                }
                State::Overlap { old, new, .. } if pid == new => {
                    self.state = State::Running { child: old };
                    actions.push(self.warn(format_args!(
                        "restart abandoned: the new child {new} exited (exit code {code}) before \
                         it was ready; child {old} keeps serving"
                    )));
                }
                State::Overlap { old, new, .. } if pid == old => {
                    self.state = State::Running { child: new };
                    actions.push(self.info(format_args!(
                        "child {old} exited (exit code {code}) during the restart: the new child \
                         {new} takes over"
                    )));
                }
                // Not even an empty line unless it is logged: a burst of orphans would queue
                // as many.
                _ if self.settings.log_level >= Level::Debug => actions
                    .push(self.debug(format_args!("reaped process {pid} (exit code {code})"))),
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

    /// The main child is gone: stop everything left (or KILL it, if the grace period is already
    /// over) and reap, so that an empty process table ends scinit at once.
    fn drain(&mut self, code: i32, deadline: Instant, now: Instant) -> Vec<Action> {
        // Retiring children have had the stop signal already. Those whose own SIGKILL would
        // come no earlier than the drain's are left to the drain.
        let spared = self.retiring.iter().map(|r| r.pid).collect();
        self.retiring.retain(|r| r.deadline < deadline);
        if deadline <= now {
            let deadline = now + KILL_REAP_TIMEOUT;
            self.state = State::Draining { code, deadline, killed: true, recheck: None };
            return vec![Action::SignalDescendants(libc::SIGKILL), Action::Reap];
        }
        self.state = State::Draining { code, deadline, killed: false, recheck: None };
        vec![Action::StopDescendants { signo: self.settings.stop_signal, spared }, Action::Reap]
    }

    fn on_ready(&mut self, sender: i32, ancestors: &[i32], now: Instant) -> Vec<Action> {
        match self.state {
            State::Overlap { old, new, .. } if sender == new || ancestors.contains(&new) => {
                self.promote(old, new, now, &format_args!("READY=1 from pid {sender}"))
            }
            State::Overlap { new, .. } => vec![self.debug(format_args!(
                "READY=1 from pid {sender} ignored: not the new child {new} or below it"
            ))],
            _ => vec![self
                .debug(format_args!("READY=1 from pid {sender} ignored: no restart waits for it"))],
        }
    }

    /// The new child is ready: it becomes the main child, the old one retires.
    fn promote(&mut self, old: i32, new: i32, now: Instant, why: &dyn fmt::Display) -> Vec<Action> {
        let stop_signal = self.settings.stop_signal;
        self.state = State::Running { child: new };
        self.retiring.push(Retiring {
            pid: old,
            deadline: now + self.settings.grace,
            killed: false,
        });
        let mut actions = vec![self.info(format_args!(
            "{why}: the new child {new} is ready and replaces child {old}, which gets {}",
            signals::name(stop_signal)
        ))];
        actions.extend(stop(old, stop_signal));
        actions
    }

    fn on_spawned(&mut self, pid: i32, now: Instant) -> Vec<Action> {
        match self.state {
            State::Spawning { .. } => self.state = State::Running { child: pid },
            State::StartingNew { old } => {
                self.state = State::Overlap { old, new: pid, started: now };
            }
            _ => {}
        }
        vec![self.info(format_args!("started child {pid}"))]
    }

    fn on_spawn_failed(&mut self, code: i32, message: String) -> Vec<Action> {
        match self.state {
            State::Spawning { previous: None } => {
                self.state = State::Exited;
                vec![Action::Log(Level::Error, message), Action::Exit(code)]
            }
            // After a restart the listening sockets must survive: stay up and let the next
            // restart trigger (a fixed file, a SIGHUP) try again.
            State::Spawning { previous: Some(_) } => {
                self.state = State::Idle { code };
                vec![
                    Action::Log(Level::Error, message),
                    self.warn(format_args!(
                        "the new child could not be started; keeping the sockets and waiting for \
                         the next restart"
                    )),
                ]
            }
            // One line says it all: the old child goes on as if nothing had happened.
            State::StartingNew { old } => {
                self.state = State::Running { child: old };
                vec![self
                    .warn(format_args!("restart abandoned: {message}; child {old} keeps serving"))]
            }
            _ => Vec::new(),
        }
    }

    fn on_timeout(&mut self, now: Instant) -> Vec<Action> {
        let mut actions = Vec::new();
        let stop_name = signals::name(self.settings.stop_signal);
        match self.state {
            State::Stopping { child, deadline, killed: false, then } if deadline <= now => {
                self.state = State::Stopping { child, deadline, killed: true, then };
                actions.push(match then {
                    Then::Respawn => self.warn(format_args!(
                        "old child {child} ignored {stop_name} for the grace period: SIGKILL"
                    )),
                    Then::Drain => self.warn(format_args!(
                        "child {child} still running after the grace period: SIGKILL"
                    )),
                });
                actions.push(Action::SignalChild { pid: child, signo: libc::SIGKILL });
            }
            State::Delaying { until, code } if until <= now => {
                self.state = State::Spawning { previous: Some(code) };
                actions.push(Action::Spawn);
            }
            State::Overlap { old, new, started } => match self.settings.readiness {
                Readiness::Delay(delay) if started + delay <= now => {
                    let why = format_args!("{delay:?} after its start");
                    actions.extend(self.promote(old, new, now, &why));
                }
                _ if started + self.settings.ready_timeout <= now => {
                    self.state = State::Running { child: old };
                    self.retiring.push(Retiring {
                        pid: new,
                        deadline: now + self.settings.grace,
                        killed: false,
                    });
                    actions.push(self.warn(format_args!(
                        "restart abandoned: the new child {new} was not ready within {:?}; it \
                         gets {stop_name}, child {old} keeps serving",
                        self.settings.ready_timeout
                    )));
                    actions.extend(stop(new, self.settings.stop_signal));
                }
                _ => {}
            },
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
                actions.push(self.warn(format_args!(
                    "some processes could not be reaped after SIGKILL; exiting anyway"
                )));
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
        let logged = self.settings.log_level;
        for retiring in self.retiring.iter_mut().filter(|r| !r.killed && r.deadline <= now) {
            retiring.killed = true;
            actions.push(line(
                logged,
                Level::Warn,
                format_args!(
                    "retired child {} still running after the grace period: SIGKILL",
                    retiring.pid
                ),
            ));
            actions.push(Action::SignalChild { pid: retiring.pid, signo: libc::SIGKILL });
        }
        if self.debounce_deadline.is_some_and(|d| d <= now) && !self.shutting_down() {
            actions.extend(self.restart(now, &"watched files changed"));
        }
        actions
    }
}

/// The stop signal to a child's group, then SIGCONT to the same group: a stopped child wakes up
/// and acts on it (a stopped process keeps a caught or blocked signal pending until continued).
fn stop(pid: i32, signo: i32) -> [Action; 2] {
    [Action::SignalChild { pid, signo }, Action::SignalChild { pid, signo: libc::SIGCONT }]
}

/// The earlier of two optional deadlines.
fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

/// A log action, its message formatted only if `level` is logged at all (`logged` is the most
/// verbose level that is): the loop would drop it anyway, and formatting lines nobody sees would
/// cost a busy scinit more than its work (a line per reaped orphan, per restart).
fn line(logged: Level, level: Level, message: fmt::Arguments<'_>) -> Action {
    Action::Log(level, if level <= logged { message.to_string() } else { String::new() })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TERM: i32 = libc::SIGTERM;
    const KILL: i32 = libc::SIGKILL;
    const HUP: i32 = libc::SIGHUP;
    const CONT: i32 = libc::SIGCONT;
    const USR1: i32 = libc::SIGUSR1;

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
            Harness::with(Settings { restart_delay: ms(restart_delay), ..settings() })
        }

        fn with(settings: Settings) -> Harness {
            Harness { sup: Supervisor::new(settings), t0: Instant::now() }
        }

        /// Started, with the child running as `pid`.
        fn running(pid: i32) -> Harness {
            let mut h = Harness::new(0);
            assert_eq!(h.sup.start(), vec![Action::Spawn]);
            h.at(0, Event::Spawned(pid));
            h
        }

        /// Every action `event` at `t` leads to, log lines included.
        fn all(&mut self, t: u64, event: Event) -> Vec<Action> {
            let mut actions = VecDeque::new();
            self.sup.on_event(event, self.t0 + ms(t), &mut actions);
            actions.into()
        }

        fn at(&mut self, t: u64, event: Event) -> Vec<Action> {
            self.all(t, event).into_iter().filter(|a| !matches!(a, Action::Log(..))).collect()
        }

        /// Like `at`, but returns only the log lines at `level` or above.
        fn logs(&mut self, t: u64, event: Event, level: Level) -> Vec<String> {
            self.all(t, event)
                .into_iter()
                .filter_map(|a| match a {
                    Action::Log(l, message) if l <= level => Some(message),
                    _ => None,
                })
                .collect()
        }

        fn deadline(&self) -> Option<u64> {
            self.sup.next_deadline().map(|d| (d - self.t0).as_millis() as u64)
        }
    }

    fn settings() -> Settings {
        Settings {
            grace: ms(5000),
            restart_delay: ms(0),
            debounce: ms(500),
            restart_signal: Some(HUP),
            stop_signal: TERM,
            restart_order: RestartOrder::StopFirst,
            readiness: Readiness::Delay(ms(1000)),
            ready_timeout: ms(30_000),
            log_level: Level::Debug,
        }
    }

    /// The fast path (`forward_to`) and the event path agree for every signal in every state:
    /// `Some(pid)` exactly when the event would only pass the signal on to `pid`.
    #[test]
    fn the_fast_path_forwards_exactly_when_the_event_would_only_forward() {
        let t0 = Instant::now();
        let later = t0 + ms(5000);
        let states = [
            State::Spawning { previous: None },
            State::Running { child: 10 },
            State::Stopping { child: 10, deadline: later, killed: false, then: Then::Respawn },
            State::Stopping { child: 10, deadline: later, killed: true, then: Then::Drain },
            State::Delaying { until: later, code: 0 },
            State::Idle { code: 1 },
            State::StartingNew { old: 10 },
            State::Overlap { old: 10, new: 11, started: t0 },
            State::Draining { code: 0, deadline: later, killed: false, recheck: None },
            State::Exited,
        ];
        for state in states {
            for restart_signal in [Some(HUP), None] {
                for pending in [false, true] {
                    // A pending restart in `Running` cannot outlive the event that set it.
                    if pending && matches!(state, State::Running { .. }) {
                        continue;
                    }
                    for signo in (1..=libc::SIGRTMAX()).filter(|&s| s != KILL && s != libc::SIGSTOP)
                    {
                        let mut sup = Supervisor::new(Settings { restart_signal, ..settings() });
                        sup.state = state.clone();
                        sup.restart_pending = pending;
                        let fast = sup.forward_to(signo);
                        let mut actions = VecDeque::new();
                        sup.on_event(Event::Signal(signo), t0, &mut actions);
                        let only_forwarded = match Vec::from(actions)[..] {
                            [Action::SignalChild { pid, signo: sent }] if sent == signo => {
                                Some(pid)
                            }
                            _ => None,
                        }
                        .filter(|_| sup.state == state && sup.retiring.is_empty());
                        assert_eq!(fast, only_forwarded, "{state:?} {}", signals::name(signo));
                    }
                }
            }
        }
    }

    /// The stop signal, then SIGCONT, to a child's group.
    fn stopped(pid: i32, signo: i32) -> Vec<Action> {
        vec![Action::SignalChild { pid, signo }, Action::SignalChild { pid, signo: CONT }]
    }

    /// The drain's first step: the stop signal (then SIGCONT) to everything left, and a reap.
    fn drained(signo: i32, spared: &[i32]) -> Vec<Action> {
        vec![Action::StopDescendants { signo, spared: spared.to_vec() }, Action::Reap]
    }

    fn spawn_failed(code: i32) -> Event {
        Event::SpawnFailed {
            code,
            message: "cannot execute 'app': No such file or directory".into(),
        }
    }

    fn ready(sender: i32, ancestors: &[i32]) -> Event {
        Event::Ready { sender, ancestors: ancestors.to_vec() }
    }

    fn exited(pid: i32, code: i32, no_children_left: bool) -> Event {
        Event::Reaped { exits: vec![(pid, code)], no_children_left, others_left: false }
    }

    #[test]
    fn only_a_reaper_run_that_can_end_in_a_drain_asks_for_the_proc_scan() {
        let mut h = Harness::running(10);
        assert!(h.sup.drains_on_reap());
        // A stop-first restart waits for the old child: its exit starts the next one.
        h.at(0, Event::Signal(HUP));
        assert!(!h.sup.drains_on_reap());
        let mut h = Harness::new(100);
        h.sup.start();
        h.at(0, Event::Spawned(10));
        h.at(0, Event::Signal(HUP));
        h.at(10, exited(10, 143, true));
        assert!(!h.sup.drains_on_reap(), "restart delay");
        // A shutdown drains.
        h.at(20, Event::Signal(TERM));
        assert!(h.sup.drains_on_reap());
    }

    #[test]
    fn debug_lines_are_not_formatted_unless_logged() {
        let mut h = Harness::with(Settings { log_level: Level::Info, ..settings() });
        h.sup.start();
        h.at(0, Event::Spawned(10));
        // An orphan's exit queues nothing at all; an info line is still written.
        assert_eq!(h.all(10, exited(77, 0, false)), vec![]);
        assert_eq!(h.logs(20, Event::Signal(TERM), Level::Info).len(), 1);
        let mut h = Harness::with(Settings { log_level: Level::Warn, ..settings() });
        h.sup.start();
        assert_eq!(h.all(0, Event::Spawned(10)), vec![Action::Log(Level::Info, String::new())]);
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
        assert_eq!(h.at(1000, exited(10, 0, false)), drained(TERM, &[]));
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
        assert_eq!(h.at(1000, Event::Signal(TERM)), stopped(10, TERM));
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
        assert_eq!(h.at(2000, exited(10, 130, false)), drained(TERM, &[]));
        assert_eq!(h.deadline(), Some(6000));
    }

    #[test]
    fn every_stop_signal_starts_a_shutdown_and_a_second_one_is_forwarded() {
        for signo in [TERM, libc::SIGINT, libc::SIGQUIT] {
            let mut h = Harness::running(10);
            assert_eq!(h.at(0, Event::Signal(signo)), stopped(10, signo));
            assert_eq!(h.at(10, Event::Signal(libc::SIGINT)), stopped(10, libc::SIGINT));
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
        assert_eq!(h.at(0, spawn_failed(127)), vec![Action::Exit(127)]);
    }

    #[test]
    fn restart_signal_stops_the_old_child_then_spawns_a_new_one() {
        let mut h = Harness::running(10);
        assert_eq!(h.at(0, Event::Signal(HUP)), stopped(10, TERM));
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
        assert_eq!(h.at(1000, Event::Signal(TERM)), stopped(10, TERM));
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
        assert_eq!(h.at(200, Event::Signal(TERM)), drained(TERM, &[]));
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
        assert_eq!(h.at(10, spawn_failed(127)), vec![]);
        assert_eq!(h.deadline(), None);
        assert_eq!(h.at(20, Event::Signal(libc::SIGUSR1)), vec![]);
        assert_eq!(h.at(30, Event::Signal(HUP)), vec![Action::Spawn]);
        assert_eq!(h.at(30, Event::Spawned(11)), vec![]);
        assert_eq!(h.at(40, Event::Signal(TERM)), stopped(11, TERM));
    }

    #[test]
    fn stop_signal_after_a_failed_restart_exits_with_the_exec_failure_code() {
        let mut h = Harness::running(10);
        h.at(0, Event::Signal(HUP));
        h.at(10, exited(10, 143, false));
        h.at(10, spawn_failed(126));
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
        assert_eq!(h.at(800, Event::Timeout), stopped(10, TERM));
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

    #[test]
    fn first_exec_failure_logs_its_message_as_an_error() {
        let mut h = Harness::new(0);
        assert_eq!(
            h.all(0, spawn_failed(127)),
            vec![
                Action::Log(Level::Error, "cannot execute 'app': No such file or directory".into()),
                Action::Exit(127)
            ]
        );
    }

    // --stop-signal and SIGCONT.

    fn stop_signal(signo: i32) -> Harness {
        let mut h = Harness::with(Settings { stop_signal: signo, ..settings() });
        h.sup.start();
        h.at(0, Event::Spawned(10));
        h
    }

    #[test]
    fn the_stop_signal_stops_the_old_child_for_a_restart_followed_by_sigcont() {
        let mut h = stop_signal(libc::SIGUSR2);
        assert_eq!(h.at(0, Event::Signal(HUP)), stopped(10, libc::SIGUSR2));
        assert_eq!(h.at(5000, Event::Timeout), vec![Action::SignalChild { pid: 10, signo: KILL }]);
    }

    #[test]
    fn a_received_sigterm_is_passed_on_as_the_stop_signal_and_sigint_as_it_is() {
        let mut h = stop_signal(libc::SIGUSR2);
        assert_eq!(h.at(0, Event::Signal(TERM)), stopped(10, libc::SIGUSR2));
        assert_eq!(h.at(10, Event::Signal(libc::SIGINT)), stopped(10, libc::SIGINT));
        let mut h = stop_signal(libc::SIGUSR2);
        assert_eq!(h.at(0, Event::Signal(libc::SIGQUIT)), stopped(10, libc::SIGQUIT));
    }

    #[test]
    fn leftovers_get_the_stop_signal_then_sigcont_while_draining() {
        let mut h = stop_signal(libc::SIGUSR2);
        assert_eq!(h.at(0, exited(10, 0, false)), drained(libc::SIGUSR2, &[]));
        // A stop signal while draining goes to everything left, SIGTERM as the stop signal.
        assert_eq!(
            h.at(10, Event::Signal(TERM)),
            vec![Action::StopDescendants { signo: libc::SIGUSR2, spared: vec![] }]
        );
    }

    // --restart-order start-first.

    /// Start-first, first child running as 10.
    fn start_first(readiness: Readiness) -> Harness {
        let mut h = Harness::with(Settings {
            restart_order: RestartOrder::StartFirst,
            readiness,
            ..settings()
        });
        h.sup.start();
        h.at(0, Event::Spawned(10));
        h
    }

    /// Start-first with `--notify`, restarted at 0: the new child 11 runs beside 10.
    fn overlapping() -> Harness {
        let mut h = start_first(Readiness::Notify);
        assert_eq!(h.at(0, Event::Signal(HUP)), vec![Action::Spawn]);
        assert_eq!(h.at(0, Event::Spawned(11)), vec![]);
        h
    }

    fn forwarded_to(h: &mut Harness, t: u64) -> Option<i32> {
        match h.at(t, Event::Signal(USR1))[..] {
            [Action::SignalChild { pid, signo: USR1 }] => Some(pid),
            _ => None,
        }
    }

    #[test]
    fn start_first_starts_the_new_child_beside_the_old_one_which_keeps_the_signals() {
        let mut h = overlapping();
        assert_eq!(forwarded_to(&mut h, 100), Some(10));
        // Only the ready timeout is pending: nothing happens to the old child meanwhile.
        assert_eq!(h.deadline(), Some(30_000));
        assert_eq!(h.at(29_999, Event::Timeout), vec![]);
    }

    #[test]
    fn ready_from_the_new_child_makes_it_the_main_child_and_stops_the_old_one() {
        let mut h = overlapping();
        assert_eq!(h.at(200, ready(11, &[])), stopped(10, TERM));
        assert_eq!(forwarded_to(&mut h, 300), Some(11));
        // The old child retires: SIGKILL when its grace period ends, and its exit ends nothing.
        assert_eq!(h.deadline(), Some(5200));
        assert_eq!(h.at(5200, Event::Timeout), vec![Action::SignalChild { pid: 10, signo: KILL }]);
        assert_eq!(h.deadline(), None);
        assert_eq!(h.at(5201, exited(10, 137, false)), vec![]);
        assert_eq!(h.at(6000, exited(11, 4, true)), vec![Action::Exit(4)]);
    }

    #[test]
    fn promotion_logs_one_info_line() {
        let mut h = overlapping();
        let lines = h.logs(200, ready(11, &[]), Level::Info);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].contains("11") && lines[0].contains("10"), "{lines:?}");
    }

    #[test]
    fn ready_from_a_process_below_the_new_child_counts() {
        let mut h = overlapping();
        assert_eq!(h.at(200, ready(30, &[20, 11])), stopped(10, TERM));
    }

    #[test]
    fn ready_from_anyone_else_is_ignored_with_a_debug_line() {
        let mut h = overlapping();
        // A stranger, the old child, and a process below the old child.
        for (t, event) in [(100, ready(99, &[])), (110, ready(10, &[])), (120, ready(12, &[10]))] {
            let lines = h.logs(t, event.clone(), Level::Debug);
            assert!(lines.len() == 1 && lines[0].contains("ignored"), "{lines:?}");
            assert_eq!(h.at(t, event), vec![]);
        }
        assert_eq!(forwarded_to(&mut h, 200), Some(10));
    }

    #[test]
    fn ready_outside_a_restart_is_accepted_and_ignored() {
        let mut h = start_first(Readiness::Notify);
        assert_eq!(h.at(10, ready(10, &[])), vec![]);
        assert_eq!(h.deadline(), None);
        let mut h = overlapping();
        h.at(10, ready(11, &[]));
        assert_eq!(h.at(20, ready(11, &[])), vec![]);
        assert_eq!(forwarded_to(&mut h, 30), Some(11));
    }

    #[test]
    fn without_notify_the_new_child_is_ready_after_the_ready_delay() {
        let mut h = start_first(Readiness::Delay(ms(1000)));
        h.at(100, Event::Signal(HUP));
        h.at(150, Event::Spawned(11));
        assert_eq!(h.deadline(), Some(1150));
        assert_eq!(h.at(1149, Event::Timeout), vec![]);
        assert_eq!(forwarded_to(&mut h, 1149), Some(10));
        assert_eq!(h.at(1150, Event::Timeout), stopped(10, TERM));
        assert_eq!(forwarded_to(&mut h, 1151), Some(11));
        // READY=1 means nothing without --notify's readiness... and nothing after it either.
        assert_eq!(h.at(1200, ready(11, &[])), vec![]);
    }

    #[test]
    fn a_new_child_exiting_before_it_is_ready_abandons_the_restart_in_one_warn_line() {
        let mut h = overlapping();
        let lines = h.logs(100, exited(11, 1, false), Level::Warn);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].contains("abandoned") && lines[0].contains("exit code 1"), "{lines:?}");
        assert_eq!(h.deadline(), None);
        assert_eq!(forwarded_to(&mut h, 200), Some(10));
        // The old child is the main child again: its exit ends the container.
        assert_eq!(h.at(300, exited(10, 3, true)), vec![Action::Exit(3)]);
    }

    #[test]
    fn a_new_child_that_cannot_be_executed_abandons_the_restart_in_one_warn_line() {
        let mut h = start_first(Readiness::Notify);
        h.at(0, Event::Signal(HUP));
        let lines = h.logs(0, spawn_failed(127), Level::Debug);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].contains("abandoned") && lines[0].contains("cannot execute 'app'"),
            "{lines:?}"
        );
        assert_eq!(
            h.all(0, Event::Signal(USR1)),
            vec![Action::SignalChild { pid: 10, signo: USR1 }]
        );
        assert_eq!(h.deadline(), None);
    }

    #[test]
    fn a_new_child_not_ready_in_time_is_stopped_and_the_old_one_keeps_serving() {
        let mut h = overlapping();
        assert_eq!(h.deadline(), Some(30_000));
        let lines = h.logs(30_000, Event::Timeout, Level::Warn);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].contains("abandoned") && lines[0].contains("30s"), "{lines:?}");
        assert_eq!(forwarded_to(&mut h, 30_001), Some(10));
        // The new child got the stop signal (checked below) and is SIGKILLed after the grace.
        assert_eq!(h.deadline(), Some(35_000));
        assert_eq!(
            h.at(35_000, Event::Timeout),
            vec![Action::SignalChild { pid: 11, signo: KILL }]
        );
        assert_eq!(h.at(35_001, exited(11, 137, false)), vec![]);
        // READY=1 from it comes too late.
        assert_eq!(h.at(35_002, ready(11, &[])), vec![]);

        let mut h = overlapping();
        assert_eq!(h.at(30_000, Event::Timeout), stopped(11, TERM));
    }

    #[test]
    fn without_notify_a_ready_delay_beyond_the_timeout_abandons() {
        let mut h = Harness::with(Settings {
            restart_order: RestartOrder::StartFirst,
            readiness: Readiness::Delay(ms(2000)),
            ready_timeout: ms(1000),
            ..settings()
        });
        h.sup.start();
        h.at(0, Event::Spawned(10));
        h.at(0, Event::Signal(HUP));
        h.at(0, Event::Spawned(11));
        assert_eq!(h.deadline(), Some(1000));
        assert_eq!(h.at(1000, Event::Timeout), stopped(11, TERM));
    }

    #[test]
    fn triggers_during_a_start_first_restart_lead_to_exactly_one_more() {
        let mut h = overlapping();
        assert_eq!(h.at(10, Event::Signal(HUP)), vec![]);
        assert_eq!(h.at(20, Event::Signal(HUP)), vec![]);
        h.at(30, Event::FilesChanged);
        assert_eq!(h.at(530, Event::Timeout), vec![]);
        // Ready: the old child retires and the next restart starts at once, beside 11.
        let mut expected = stopped(10, TERM);
        expected.push(Action::Spawn);
        assert_eq!(h.at(600, ready(11, &[])), expected);
        assert_eq!(h.at(600, Event::Spawned(12)), vec![]);
        assert_eq!(forwarded_to(&mut h, 700), Some(11));
        assert_eq!(h.at(800, ready(12, &[])), stopped(11, TERM));
        // Nothing more was pending.
        assert_eq!(h.at(900, ready(12, &[])), vec![]);
        assert_eq!(forwarded_to(&mut h, 1000), Some(12));
    }

    #[test]
    fn a_pending_restart_also_follows_an_abandoned_one() {
        let mut h = overlapping();
        h.at(10, Event::Signal(HUP));
        assert_eq!(h.at(20, exited(11, 1, false)), vec![Action::Spawn]);
        assert_eq!(h.at(20, Event::Spawned(12)), vec![]);
        assert_eq!(h.at(30, ready(12, &[])), stopped(10, TERM));
    }

    #[test]
    fn a_stop_signal_during_the_overlap_stops_both_with_one_grace_period() {
        let mut h = overlapping();
        let mut expected = stopped(10, TERM);
        expected.extend(stopped(11, TERM));
        assert_eq!(h.at(1000, Event::Signal(TERM)), expected);
        assert_eq!(h.deadline(), Some(6000));
        // A pending restart or READY=1 changes nothing now.
        assert_eq!(h.at(1100, Event::Signal(HUP)), vec![]);
        assert_eq!(h.at(1200, ready(11, &[])), vec![]);
        assert_eq!(
            h.at(6000, Event::Timeout),
            vec![
                Action::SignalChild { pid: 10, signo: KILL },
                Action::SignalChild { pid: 11, signo: KILL }
            ]
        );
        // The old child is the main child: its status is the exit code.
        assert_eq!(
            h.at(
                6001,
                Event::Reaped {
                    exits: vec![(11, 137), (10, 143)],
                    no_children_left: true,
                    others_left: false
                }
            ),
            vec![Action::Exit(143)]
        );
    }

    #[test]
    fn after_a_stop_during_the_overlap_the_drain_spares_the_new_child_it_already_stopped() {
        let mut h = overlapping();
        h.at(1000, Event::Signal(TERM));
        // The old child exits first: the usual drain, which leaves the new child (already
        // stopped, same deadline) out of its stop signal but not out of its SIGKILL.
        assert_eq!(h.at(1100, exited(10, 0, false)), drained(TERM, &[11]));
        assert_eq!(h.deadline(), Some(6000));
        assert_eq!(h.at(6000, Event::Timeout), vec![Action::SignalDescendants(KILL), Action::Reap]);
        assert_eq!(
            h.at(
                6001,
                Event::Reaped {
                    exits: vec![(11, 137)],
                    no_children_left: true,
                    others_left: false
                }
            ),
            vec![Action::Exit(0)]
        );
    }

    #[test]
    fn a_stop_signal_after_the_new_child_was_ready_exits_with_the_new_childs_status() {
        let mut h = overlapping();
        h.at(100, ready(11, &[]));
        assert_eq!(h.at(200, Event::Signal(TERM)), stopped(11, TERM));
        // The retiring old child keeps its own, earlier, grace period.
        assert_eq!(h.deadline(), Some(5100));
        assert_eq!(h.at(5100, Event::Timeout), vec![Action::SignalChild { pid: 10, signo: KILL }]);
        assert_eq!(h.at(5101, exited(10, 137, false)), vec![]);
        assert_eq!(h.at(5200, exited(11, 143, true)), vec![Action::Exit(143)]);
    }

    #[test]
    fn the_old_child_exiting_during_the_overlap_hands_over_to_the_new_one_at_once() {
        let mut h = overlapping();
        assert_eq!(h.at(100, exited(10, 2, false)), vec![]);
        assert_eq!(h.deadline(), None);
        assert_eq!(forwarded_to(&mut h, 200), Some(11));
        assert_eq!(h.at(300, exited(11, 5, true)), vec![Action::Exit(5)]);
    }

    #[test]
    fn both_children_exiting_in_one_batch_end_with_the_last_main_childs_status() {
        let batch = |exits: Vec<(i32, i32)>| Event::Reaped {
            exits,
            no_children_left: true,
            others_left: false,
        };
        // The old one first: the new one took over, then exited.
        let mut h = overlapping();
        assert_eq!(h.at(100, batch(vec![(10, 2), (11, 5)])), vec![Action::Exit(5)]);
        // The new one first: abandoned, then the old one exited.
        let mut h = overlapping();
        assert_eq!(h.at(100, batch(vec![(11, 5), (10, 2)])), vec![Action::Exit(2)]);
    }

    #[test]
    fn a_file_change_restarts_start_first_too() {
        let mut h = start_first(Readiness::Notify);
        h.at(0, Event::FilesChanged);
        assert_eq!(h.at(500, Event::Timeout), vec![Action::Spawn]);
    }
}
