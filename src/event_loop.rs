//! The event loop: the only place scinit waits.
//!
//! Error policy. Before the loop (in `main`), any failure is fatal: an `exit_status::Fatal`, one
//! line on stderr and a documented exit code (2 usage, 1 set-up; then 127/126 when the first exec
//! fails, 1 when its fork does). Once the loop runs, scinit must not die on an error, because as
//! PID 1 its death kills the whole container: every failure here is logged and the loop
//! continues. The loop ends only through the supervisor's `Action::Exit`.
//!
//! One `poll` covers the signalfd, the inotify fd and the notify socket; its timeout is the
//! supervisor's next deadline (grace period, restart delay, debounce, readiness), or infinite when
//! there is none, so an idle scinit is never woken for nothing.

use std::collections::VecDeque;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::time::Instant;

use nix::errno::Errno;
use nix::libc;
use nix::sys::signalfd::SignalFd;

use crate::log;
use crate::notify::NotifySocket;
use crate::reap;
use crate::signals;
use crate::spawn::Spawner;
use crate::supervisor::{Action, Event, Supervisor};
use crate::watch::Watcher;

/// The resources the loop reads from and acts on.
pub struct Context<'a> {
    pub signals: SignalFd,
    pub watcher: Option<Watcher>,
    pub notify: Option<NotifySocket>,
    pub spawner: Spawner<'a>,
}

/// Runs until the supervisor decides to exit; returns the exit code.
pub fn run(mut supervisor: Supervisor, mut ctx: Context<'_>) -> i32 {
    let mut events: VecDeque<Event> = VecDeque::new();
    let mut actions: VecDeque<Action> = supervisor.start().into();
    let mut polled = PollSet::new(&ctx);
    loop {
        // Perform every decision, feeding results (spawn outcome, reaper output) straight
        // back, before reading any new input: the supervisor always sees a consistent world.
        while let Some(action) = actions.pop_front() {
            if let Action::Exit(code) = action {
                // scinit exits right after: freeing the child's prepared command line and
                // environment would only cost time (2,100 instructions for a small environment,
                // more for a large one). The rest of the context is dropped: the notify socket
                // removes its file.
                std::mem::forget(ctx.spawner);
                return code;
            }
            if let Some(event) = perform(action, &mut ctx) {
                events.push_back(event);
            }
            while let Some(event) = events.pop_front() {
                supervisor.on_event(event, Instant::now(), &mut actions);
            }
        }

        // Asked once: nothing changes the supervisor while the loop waits, and wake-ups whose
        // signals all took the fast path change nothing it decides. With no deadline, such
        // wake-ups need no clock reading either.
        let deadline = supervisor.next_deadline();
        loop {
            wait(deadline, &supervisor, &mut polled, &mut ctx, &mut events);
            if deadline.is_some() || !events.is_empty() {
                break;
            }
        }
        // Everything one wake-up collected has happened by then.
        let now = Instant::now();
        if deadline.is_some_and(|deadline| deadline <= now) {
            events.push_back(Event::Timeout);
        }
        while let Some(event) = events.pop_front() {
            supervisor.on_event(event, now, &mut actions);
        }
    }
}

/// Blocks until a signal, a file change, a notification or `deadline`, and collects the
/// events; signals that are only to be passed on to the child are passed on at once.
fn wait(
    deadline: Option<Instant>,
    supervisor: &Supervisor,
    polled: &mut PollSet,
    ctx: &mut Context<'_>,
    events: &mut VecDeque<Event>,
) {
    let timeout = match deadline {
        None => -1,
        Some(deadline) => {
            // Round up: waking a millisecond early would just spin once more.
            let left = deadline.saturating_duration_since(Instant::now());
            let millis = left.as_micros().div_ceil(1000);
            libc::c_int::try_from(millis).unwrap_or(libc::c_int::MAX)
        }
    };
    match polled.poll(timeout) {
        Ok(()) => {}
        Err(Errno::EINTR) => return,
        Err(errno) => {
            error!("poll failed: {}", errno.desc());
            return;
        }
    }
    let signals_ready = polled.ready(Some(PollSet::SIGNALS));
    let files_ready = polled.ready(polled.watcher);
    let notified = polled.ready(polled.notify);
    // Notifications first, and also whenever signals are read (a datagram may have come after
    // poll looked): what a process sent before it exited is then always seen before its exit is
    // reaped, while its ancestry is still in /proc.
    if let Some(notify) = ctx.notify.as_ref().filter(|_| notified || signals_ready) {
        for (sender, ancestors) in notify.receive() {
            events.push_back(Event::Ready { sender, ancestors });
        }
    }
    if signals_ready {
        read_signals(&ctx.signals, supervisor, events);
    }
    if files_ready && ctx.watcher.as_mut().is_some_and(Watcher::changed) {
        events.push_back(Event::FilesChanged);
    }
}

/// The fds the loop's one `poll` watches, laid out once: the signalfd first, then the watcher's
/// and the notify socket's when there are. Raw `pollfd`s, because nix's `PollFd` borrows its fd
/// per call and would be rebuilt at every wake-up; the `Context` that owns the fds outlives it.
struct PollSet {
    fds: [libc::pollfd; 3],
    len: usize,
    watcher: Option<usize>,
    notify: Option<usize>,
}

impl PollSet {
    const SIGNALS: usize = 0;

    fn new(ctx: &Context<'_>) -> PollSet {
        let entry = |fd: BorrowedFd<'_>| libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let mut set =
            PollSet { fds: [entry(ctx.signals.as_fd()); 3], len: 1, watcher: None, notify: None };
        let optional = [
            (ctx.watcher.as_ref().map(Watcher::fd), &mut set.watcher),
            (ctx.notify.as_ref().map(NotifySocket::fd), &mut set.notify),
        ];
        for (fd, slot) in optional {
            if let Some(fd) = fd {
                set.fds[set.len] = entry(fd);
                *slot = Some(set.len);
                set.len += 1;
            }
        }
        set
    }

    /// One `poll(2)`; `timeout` in milliseconds, -1 for none.
    fn poll(&mut self, timeout: libc::c_int) -> Result<(), Errno> {
        // SAFETY: `fds` holds `len` initialised entries, and their fds stay open as long as the
        // `Context` that owns them, which outlives the loop.
        let result =
            unsafe { libc::poll(self.fds.as_mut_ptr(), self.len as libc::nfds_t, timeout) };
        Errno::result(result).map(drop)
    }

    fn ready(&self, slot: Option<usize>) -> bool {
        slot.is_some_and(|i| self.fds[i].revents != 0)
    }
}

/// Drains the signalfd, a batch of signals per `read` (one `read` per wake-up, in practice).
/// SIGCHLD becomes one reaper run (however many were coalesced).
///
/// The fast path: a signal that the supervisor would only pass on to the child
/// ([`Supervisor::forward_to`], the same pure decision) is sent straight away, without an event,
/// an action or a clock reading. Only while no event is queued, so that signals still reach
/// the child in the order they came: once one signal needs the supervisor, the rest of the
/// batch queues behind it.
fn read_signals(fd: &SignalFd, supervisor: &Supervisor, events: &mut VecDeque<Event>) {
    let mut reap = false;
    let mut batch = signals::Batch::new();
    loop {
        match batch.read(fd) {
            Ok(received) => {
                for info in received {
                    let signo = info.ssi_signo as i32;
                    if signo == libc::SIGCHLD {
                        reap = true;
                        continue;
                    }
                    debug!("received {} from pid {}", signals::name(signo), info.ssi_pid);
                    match supervisor.forward_to(signo).filter(|_| events.is_empty()) {
                        Some(pid) => signal_child(pid, signo),
                        None => events.push_back(Event::Signal(signo)),
                    }
                }
                // A short read took everything pending; a full one may have left some.
                if received.len() < signals::Batch::LEN {
                    break;
                }
            }
            Err(Errno::EAGAIN) => break,
            Err(Errno::EINTR) => continue,
            Err(errno) => {
                error!("reading signals failed: {}", errno.desc());
                break;
            }
        }
    }
    if reap {
        events.push_back(reaped(reap::drain(), supervisor.drains_on_reap()));
    }
}

/// The reaper's findings as an event. `may_drain`: whether the supervisor can end up draining on
/// it ([`Supervisor::drains_on_reap`]); only then does it need to know whether processes that
/// are not scinit's children are left.
fn reaped(drained: reap::Drained, may_drain: bool) -> Event {
    // Only worth a /proc scan once no child is left: before that, a SIGCHLD will come.
    let others_left = drained.no_children_left
        && may_drain
        && reap::descendants().is_some_and(|pids| !pids.is_empty());
    Event::Reaped { exits: drained.exits, no_children_left: drained.no_children_left, others_left }
}

/// Performs one action; returns the event it produces, if any.
fn perform(action: Action, ctx: &mut Context<'_>) -> Option<Event> {
    match action {
        Action::Spawn => Some(match ctx.spawner.spawn() {
            Ok(pid) => Event::Spawned(pid),
            // The supervisor logs it: how depends on whether anything else still runs.
            Err(failure) => Event::SpawnFailed { code: failure.code, message: failure.message },
        }),
        Action::SignalChild { pid, signo } => {
            signal_child(pid, signo);
            None
        }
        Action::SignalDescendants(signo) => {
            signal_descendants(signo, &[], false);
            None
        }
        Action::StopDescendants { signo, spared } => {
            signal_descendants(signo, &spared, true);
            None
        }
        // Only draining asks for a reaper run.
        Action::Reap => Some(reaped(reap::drain(), true)),
        Action::Log(level, message) => {
            log::at(level, format_args!("{message}"));
            None
        }
        // Handled by the caller, which ends the loop.
        Action::Exit(_) => None,
    }
}

/// Sends `signo` to the child's whole group: the child's own children (a shell's pipeline,
/// workers) get it too. If the child left its group (setsid), to the child itself.
fn signal_child(pid: i32, signo: i32) {
    #[cfg(feature = "regress-forward-cpu")]
    crate::regress::forward_cpu();
    #[cfg(feature = "regress-forward-sleep")]
    crate::regress::forward_sleep();
    let result = match signals::send(-pid, signo) {
        Err(Errno::ESRCH) => signals::send(pid, signo),
        other => other,
    };
    match result {
        Ok(()) => debug!("sent {} to child {pid}", signals::name(signo)),
        // Already exited: its SIGCHLD is on its way.
        Err(Errno::ESRCH) => debug!("child {pid} is already gone"),
        Err(errno) => {
            warn!("cannot send {} to child {pid}: {}", signals::name(signo), errno.desc())
        }
    }
}

/// Sends `signo` to each remaining descendant but `spared`, followed by SIGCONT if `wake` (so that
/// a stopped process acts on it).
fn signal_descendants(signo: i32, spared: &[i32], wake: bool) {
    match reap::descendants() {
        Some(mut pids) => {
            pids.retain(|pid| !spared.contains(pid));
            if pids.is_empty() {
                return;
            }
            let (count, listed) = (pids.len(), pid_list(&pids));
            // SIGKILL is only ever sent to them once the grace period is over.
            if signo == libc::SIGKILL {
                let what = "still running after the grace period: SIGKILL";
                warn!("{count} process(es) {what}: {listed}");
            } else {
                let name = signals::name(signo);
                info!("sending {name} to {count} remaining process(es): {listed}");
            }
            for pid in pids {
                // ESRCH just means it exited in the meantime.
                let _ = signals::send(pid, signo);
                if wake {
                    let _ = signals::send(pid, libc::SIGCONT);
                }
            }
        }
        None => {
            warn!("/proc is not this PID namespace's: remaining processes are not signalled")
        }
    }
}

/// How many pids a shutdown log line lists: thousands of them would make one line longer than
/// log drivers take (Docker's json-file splits lines over 16 KB).
const LISTED_PIDS: usize = 10;

/// The first few pids, then how many more there are: `7, 8, 9` or `1, ..., 10 and 1990 more`.
fn pid_list(pids: &[i32]) -> String {
    let mut listed =
        pids.iter().take(LISTED_PIDS).map(i32::to_string).collect::<Vec<_>>().join(", ");
    let more = pids.len().saturating_sub(LISTED_PIDS);
    if more > 0 {
        listed.push_str(&format!(" and {more} more"));
    }
    listed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_few_pids_are_all_listed() {
        assert_eq!(pid_list(&[7, 8, 9]), "7, 8, 9");
        assert_eq!(pid_list(&(1..=10).collect::<Vec<_>>()), "1, 2, 3, 4, 5, 6, 7, 8, 9, 10");
    }

    #[test]
    fn thousands_of_pids_make_a_short_list_with_a_count_of_the_rest() {
        let pids: Vec<i32> = (100..2100).collect();
        assert_eq!(
            pid_list(&pids),
            "100, 101, 102, 103, 104, 105, 106, 107, 108, 109 and 1990 more"
        );
        assert_eq!(
            pid_list(&pids[..11]),
            "100, 101, 102, 103, 104, 105, 106, 107, 108, 109 and 1 more"
        );
    }
}
