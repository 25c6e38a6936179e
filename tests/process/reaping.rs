//! Orphans reparented to scinit are reaped at once, and the main child's status is not lost
//! among them (catatonit#4: several exits coalesced into one SIGCHLD).

use nix::sys::signal::Signal;

use crate::harness::{field, processes, start, testkit, wait_until};

fn zombie_children_of(pid: i32) -> Vec<i32> {
    processes().into_iter().filter(|p| p.ppid == pid && p.state == 'Z').map(|p| p.pid).collect()
}

#[test]
fn orphans_are_reaped_while_the_child_runs() {
    let mut scinit = start(&[], &["tree", "orphans", "20", "--", &testkit(), "signals"], &[]);
    let line = scinit.line_starting("orphans count=20");
    let orphans: Vec<i32> =
        field(&line, "pids").unwrap().split(',').map(|p| p.parse().unwrap()).collect();
    scinit.ready("signals");
    let pid = scinit.pid();
    wait_until("no zombie is left below scinit", || zombie_children_of(pid).is_empty());
    let table = processes();
    let left: Vec<i32> = orphans
        .iter()
        .copied()
        .filter(|o| table.iter().any(|p| p.pid == *o && p.ppid == pid))
        .collect();
    assert!(left.is_empty(), "orphans still there: {left:?}");
    assert!(scinit.running());
    scinit.signal(Signal::SIGTERM);
    assert_eq!(scinit.exit_code(), 143);
}

#[test]
fn main_child_status_survives_a_sibling_exiting_at_the_same_moment() {
    let mut scinit =
        start(&[], &["tree", "sibling-exit", "200", "--", &testkit(), "exit-with", "7"], &[]);
    assert_eq!(scinit.exit_code(), 7, "{}", scinit.report());
}
