//! The reaper: the only place scinit calls `waitpid`.
//!
//! One drain collects every exited process, the main child included, so its status can never be
//! taken by anybody else, and a burst of exits that the kernel coalesced into a single SIGCHLD
//! (catatonit#4) is still reaped completely: the drain runs until `waitpid` reports that nothing
//! more has exited (0) or that no children are left (`ECHILD`).

use nix::errno::Errno;
use nix::libc;

use crate::exit_status;

/// What one drain found.
#[derive(Debug, Default)]
pub struct Drained {
    /// `(pid, exit code)` of every reaped process, in reaping order.
    pub exits: Vec<(i32, i32)>,
    /// `waitpid` answered `ECHILD`: scinit has no children at all any more.
    pub no_children_left: bool,
}

/// Reaps every process that has exited, without blocking.
pub fn drain() -> Drained {
    let mut drained = Drained::default();
    loop {
        let mut status: libc::c_int = 0;
        // SAFETY: `status` is a valid out-pointer for the duration of the call. Raw waitpid
        // because nix rejects statuses of deaths by real-time signals after reaping them.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        match pid {
            0 => break,
            -1 => match Errno::last() {
                Errno::EINTR => continue,
                Errno::ECHILD => {
                    drained.no_children_left = true;
                    break;
                }
                errno => {
                    warn!("waitpid failed: {}", errno.desc());
                    break;
                }
            },
            pid => {
                if let Some(code) = exit_status::from_wait_status(status) {
                    drained.exits.push((pid, code));
                }
            }
        }
    }
    drained
}

/// Reaps one specific process, blocking: used only for a child whose exec has just failed,
/// which is known to be exiting at once.
pub fn wait_for(pid: i32) {
    let mut status: libc::c_int = 0;
    loop {
        // SAFETY: as above.
        let result = unsafe { libc::waitpid(pid, &mut status, 0) };
        if result != -1 || Errno::last() != Errno::EINTR {
            return;
        }
    }
}

/// Every live descendant of scinit, found through `/proc`: children, grandchildren, and the
/// orphans reparented to scinit (as PID 1 or as subreaper), `setsid` escapees included. Zombies
/// are left out: they have exited already.
///
/// This is what shutdown signals instead of `kill(-1)`: outside a PID namespace (scinit as a
/// subreaper on a host) `kill(-1)` would hit every process of the user. When scinit is PID 1, the
/// processes `docker exec` entered into the container have parent 0 in the namespace: they
/// belong to the container too, so they are included.
///
/// `None` when `/proc` is not this PID namespace's (missing, or the host's mounted over it):
/// then a pid found there could be anybody's, and nothing is signalled.
pub fn descendants() -> Option<Vec<i32>> {
    let own = std::process::id() as i32;
    let proc_self: i32 = std::fs::read_link("/proc/self").ok()?.to_str()?.parse().ok()?;
    if proc_self != own {
        return None;
    }
    let parents: Vec<(i32, i32)> = std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .filter_map(|entry| {
            let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            Some((pid, parse_stat_ppid(&stat)?))
        })
        .collect();
    let mut roots = vec![own];
    if own == 1 {
        roots.push(0);
    }
    Some(descendants_of(&roots, &parents, own))
}

/// The parent, grandparent, ... of `pid` as `/proc` shows them, nearest first, up to (not
/// including) scinit itself: whom the sender of a `NOTIFY_SOCKET` datagram belongs to. Processes
/// that have exited but are not reaped yet count (a sender that exits right after sending is still
/// its parent's child until then). The chain ends at the first entry that cannot be read, at the
/// top of the PID namespace, or at a pid seen before (pids can be reused while it is read).
pub fn ancestors(pid: i32) -> Vec<i32> {
    let own = std::process::id() as i32;
    let mut chain = Vec::new();
    let mut current = pid;
    while let Some(parent) = std::fs::read_to_string(format!("/proc/{current}/stat"))
        .ok()
        .and_then(|stat| parse_stat(&stat).map(|(_, ppid)| ppid))
        .filter(|&ppid| ppid > 0 && ppid != own && ppid != pid && !chain.contains(&ppid))
    {
        chain.push(parent);
        current = parent;
    }
    chain
}

/// The ppid field of `/proc/<pid>/stat`, or `None` for a process that has already exited (state
/// `Z`, or `X` while it is being removed): it only waits to be reaped, so it is not "still
/// running" and signalling it does nothing.
fn parse_stat_ppid(stat: &str) -> Option<i32> {
    parse_stat(stat).filter(|(state, _)| !matches!(*state, "Z" | "X")).map(|(_, ppid)| ppid)
}

/// The state and ppid fields of `/proc/<pid>/stat`. The command name may contain spaces and
/// parentheses, so fields are counted after the *last* `)`.
fn parse_stat(stat: &str) -> Option<(&str, i32)> {
    let after_comm = &stat[stat.rfind(')')? + 1..];
    // Fields after the name: state, ppid, ...
    let mut fields = after_comm.split_whitespace();
    let state = fields.next()?;
    Some((state, fields.next()?.parse().ok()?))
}

/// Transitive descendants of `roots` in a (pid, ppid) table, `exclude` left out.
fn descendants_of(roots: &[i32], parents: &[(i32, i32)], exclude: i32) -> Vec<i32> {
    let mut found: Vec<i32> = Vec::new();
    let mut frontier: Vec<i32> = roots.to_vec();
    while let Some(parent) = frontier.pop() {
        for &(pid, ppid) in parents {
            if ppid == parent && pid != exclude && !found.contains(&pid) {
                found.push(pid);
                frontier.push(pid);
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ppid_is_read_after_the_last_parenthesis_of_the_name() {
        assert_eq!(parse_stat_ppid("42 (sleep) S 7 42 42 0 -1"), Some(7));
        assert_eq!(parse_stat_ppid("42 (a) b) (c) R 9 42 42 0"), Some(9));
        assert_eq!(parse_stat_ppid("garbage"), None);
    }

    #[test]
    fn processes_that_have_exited_but_are_not_reaped_yet_are_not_running() {
        assert_eq!(parse_stat_ppid("42 (sleep) Z 7 42 42 0 -1"), None);
        assert_eq!(parse_stat_ppid("42 (a) Z) X 7 42 42 0 -1"), None);
        assert_eq!(parse_stat_ppid("42 (sleep) D 7 42 42 0 -1"), Some(7));
    }

    #[test]
    fn ancestors_are_climbed_up_to_this_process_and_stop_there() {
        use std::io::BufRead;
        let mut shell = std::process::Command::new("sh")
            .args(["-c", "sleep 10 & echo $!; wait"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(shell.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let sleep: i32 = line.trim().parse().unwrap();
        let shell_pid = shell.id() as i32;
        assert_eq!(ancestors(sleep), vec![shell_pid]);
        assert_eq!(ancestors(shell_pid), Vec::<i32>::new());
        shell.kill().unwrap();
        shell.wait().unwrap();
        // The sleep now belongs to somebody else (reparented above this process).
        assert!(!ancestors(sleep).contains(&shell_pid));
        crate::signals::send(sleep, libc::SIGKILL).unwrap();
        // Gone: nothing to climb.
        assert_eq!(ancestors(i32::MAX), Vec::<i32>::new());
    }

    #[test]
    fn a_process_that_exited_but_is_not_reaped_still_has_its_parent() {
        assert_eq!(parse_stat("42 (notify) Z 7 42 42 0 -1"), Some(("Z", 7)));
        assert_eq!(parse_stat("42 (a) b) S 9 42"), Some(("S", 9)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn descendants_are_found_transitively_and_strangers_are_not() {
        // 100 is scinit; 101 its child; 102 a grandchild; 103 an escapee reparented to 100;
        // 200 and 201 belong to somebody else.
        let table = [(101, 100), (102, 101), (103, 100), (200, 1), (201, 200), (100, 50)];
        let mut found = descendants_of(&[100], &table, 100);
        found.sort();
        assert_eq!(found, vec![101, 102, 103]);
    }

    #[test]
    fn as_pid_1_processes_entered_from_outside_the_namespace_are_included() {
        let table = [(1, 0), (5, 1), (9, 0), (10, 9)];
        let mut found = descendants_of(&[1, 0], &table, 1);
        found.sort();
        assert_eq!(found, vec![5, 9, 10]);
    }

    #[test]
    fn this_process_is_never_its_own_descendant() {
        assert_eq!(descendants().map(|d| d.contains(&(std::process::id() as i32))), Some(false));
    }
}
