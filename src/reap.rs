//! The reaper: the only place scinit calls `waitpid`.
//!
//! One drain collects every exited process, the main child included, so its status can never be
//! taken by anybody else, and a burst of exits that the kernel coalesced into a single SIGCHLD
//! (catatonit#4) is still reaped completely: the drain runs until `waitpid` reports that nothing
//! more has exited (0) or that no children are left (`ECHILD`).

use std::ffi::CStr;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::libc;
use nix::sys::stat::Mode;

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
    let proc = Proc::open()?;
    if proc.self_pid()? != own {
        return None;
    }
    let mut parents: Vec<(i32, i32)> = Vec::new();
    proc.each_pid(|pid| {
        if let Some((state, ppid)) = proc.stat(pid) {
            if !exited(state) {
                parents.push((pid, ppid));
            }
        }
    });
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
    let Some(proc) = Proc::open() else {
        return chain;
    };
    let mut current = pid;
    while let Some(parent) = proc
        .stat(current)
        .map(|(_, ppid)| ppid)
        .filter(|&ppid| ppid > 0 && ppid != own && ppid != pid && !chain.contains(&ppid))
    {
        chain.push(parent);
        current = parent;
    }
    chain
}

/// A process that has exited (state `Z`, or `X` while it is being removed): it only waits to be
/// reaped, so it is not "still running" and signalling it does nothing.
fn exited(state: u8) -> bool {
    matches!(state, b'Z' | b'X')
}

/// `/proc`, read with plain system calls into buffers on the stack: scinit scans it at every
/// shutdown, and `std::fs` would allocate a path, a name and a string for each of its entries
/// (most of them not processes at all).
struct Proc(OwnedFd);

impl Proc {
    fn open() -> Option<Proc> {
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        nix::fcntl::open("/proc", flags, Mode::empty()).ok().map(Proc)
    }

    /// The pid that `/proc/self` names: scinit's own if `/proc` is its PID namespace's.
    fn self_pid(&self) -> Option<i32> {
        let mut link = [0u8; 16];
        // SAFETY: the kernel writes at most `link.len()` bytes into `link`; the path is a
        // NUL-terminated literal.
        let length = unsafe {
            libc::readlinkat(
                self.0.as_raw_fd(),
                c"self".as_ptr(),
                link.as_mut_ptr().cast(),
                link.len(),
            )
        };
        parse_pid(link.get(..usize::try_from(length).ok()?)?)
    }

    /// Calls `each` with every pid `/proc` lists. A failed read ends the listing.
    fn each_pid(&self, mut each: impl FnMut(i32)) {
        // Left uninitialised: zeroing it would cost more than parsing what the kernel writes.
        let mut records = [MaybeUninit::<u8>::uninit(); 4096];
        loop {
            // SAFETY: the kernel writes at most `records.len()` bytes of whole records into it.
            let filled = unsafe {
                libc::syscall(
                    libc::SYS_getdents64,
                    self.0.as_raw_fd(),
                    records.as_mut_ptr(),
                    records.len(),
                )
            };
            let filled = match usize::try_from(filled) {
                Ok(filled) if filled > 0 => filled.min(records.len()),
                _ => return,
            };
            // SAFETY: the kernel has just written the first `filled` bytes.
            let filled =
                unsafe { std::slice::from_raw_parts(records.as_ptr().cast::<u8>(), filled) };
            dirent_names(filled).filter_map(parse_pid).for_each(&mut each);
        }
    }

    /// The state and ppid of `pid`, from `/proc/<pid>/stat`.
    fn stat(&self, pid: i32) -> Option<(u8, i32)> {
        let mut path = [0u8; 24];
        let length = stat_path(pid, &mut path)?;
        let path = CStr::from_bytes_with_nul(path.get(..length)?).ok()?;
        let file =
            nix::fcntl::openat(&self.0, path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
                .ok()?;
        // The fields scinit reads end within 90 bytes: the pid (7 digits at most), the command
        // name (16 bytes, 64 for a kernel thread), the state, the ppid. Reading more would only
        // make the search for the name's end longer.
        let mut stat = [0u8; 128];
        let read = nix::unistd::read(&file, &mut stat).ok()?;
        parse_stat(stat.get(..read)?)
    }
}

/// Writes `<pid>/stat` and a NUL into `path`; returns the length including the NUL.
fn stat_path(pid: i32, path: &mut [u8; 24]) -> Option<usize> {
    let mut digits = [0u8; 10];
    let mut rest = u32::try_from(pid).ok()?;
    let mut count = 0;
    loop {
        *digits.get_mut(count)? = b'0' + (rest % 10) as u8;
        count += 1;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    let digits = digits.get(..count)?.iter().rev();
    let mut length = 0;
    for (slot, byte) in path.iter_mut().zip(digits.chain(b"/stat\0")) {
        *slot = *byte;
        length += 1;
    }
    Some(length)
}

/// The names in a buffer of `linux_dirent64` records, as `getdents64` fills it: each record is
/// an inode (8 bytes), an offset (8), the record's length (2), a type (1), then the name,
/// NUL-terminated and padded with more NULs.
fn dirent_names(mut records: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        let length = u16::from_ne_bytes([*records.get(16)?, *records.get(17)?]) as usize;
        let record = records.get(..length)?;
        records = records.get(length..)?;
        record.get(19..)
    })
}

/// A directory name that is a pid: decimal digits only, up to the end or a NUL. Anything else
/// is rejected at its first byte, which is all most of `/proc`'s entries cost.
fn parse_pid(name: &[u8]) -> Option<i32> {
    let mut pid: i32 = 0;
    let mut digits = 0;
    for &byte in name.iter().take_while(|&&byte| byte != 0) {
        if !byte.is_ascii_digit() {
            return None;
        }
        pid = pid.checked_mul(10)?.checked_add(i32::from(byte - b'0'))?;
        digits += 1;
    }
    (digits > 0).then_some(pid)
}

/// The state and ppid fields of `/proc/<pid>/stat`. The command name may contain spaces and
/// parentheses (and need not be UTF-8), so fields are counted after the *last* `)`. `stat` may
/// be only the start of the file: the ppid counts only if the next field has begun.
fn parse_stat(stat: &[u8]) -> Option<(u8, i32)> {
    let after_comm = stat.get(stat.iter().rposition(|&b| b == b')')? + 1..)?;
    // Fields after the name: state, ppid, pgrp, ...
    let mut fields = std::str::from_utf8(after_comm).ok()?.split_ascii_whitespace();
    let state = fields.next()?.bytes().next()?;
    let ppid = fields.next()?.parse().ok()?;
    fields.next()?;
    Some((state, ppid))
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
        assert_eq!(parse_stat(b"42 (sleep) S 7 42 42 0 -1"), Some((b'S', 7)));
        assert_eq!(parse_stat(b"42 (a) b) (c) R 9 42 42 0"), Some((b'R', 9)));
        assert_eq!(parse_stat(b"42 (\xff\xfe)) S 3 42"), Some((b'S', 3)));
        assert_eq!(parse_stat(b"garbage"), None);
        assert_eq!(parse_stat(b"42 (sleep) S"), None);
        // Cut short within the ppid: it may be missing digits.
        assert_eq!(parse_stat(b"42 (sleep) S 71"), None);
    }

    #[test]
    fn processes_that_have_exited_but_are_not_reaped_yet_are_not_running() {
        assert_eq!(parse_stat(b"42 (a) Z) X 7 42 42 0 -1"), Some((b'X', 7)));
        assert!(exited(b'Z') && exited(b'X'));
        assert!(!exited(b'D') && !exited(b'S') && !exited(b'T'));
    }

    /// `linux_dirent64` records as `getdents64` writes them, padded to 8 bytes.
    fn records(names: &[&str]) -> Vec<u8> {
        let mut buffer = Vec::new();
        for name in names {
            let length = (19 + name.len() + 1).div_ceil(8) * 8;
            let mut record = vec![0u8; length];
            record[16..18].copy_from_slice(&(length as u16).to_ne_bytes());
            record[19..19 + name.len()].copy_from_slice(name.as_bytes());
            buffer.extend(record);
        }
        buffer
    }

    #[test]
    fn directory_records_give_their_names_and_pids_are_the_numeric_ones() {
        let buffer = records(&[".", "..", "1", "acpi", "self", "4194304", "12a"]);
        let names: Vec<&[u8]> =
            dirent_names(&buffer).map(|name| name.split(|&b| b == 0).next().unwrap()).collect();
        assert_eq!(names, [&b"."[..], b"..", b"1", b"acpi", b"self", b"4194304", b"12a"]);
        let pids: Vec<i32> = dirent_names(&buffer).filter_map(parse_pid).collect();
        assert_eq!(pids, [1, 4194304]);
        // A truncated record ends the list instead of being misread.
        assert_eq!(dirent_names(&buffer[..buffer.len() - 1]).count(), 6);
        assert_eq!(parse_pid(b""), None);
        assert_eq!(parse_pid(b"\0\0"), None);
        assert_eq!(parse_pid(b"17"), Some(17));
        assert_eq!(parse_pid(b"99999999999"), None);
    }

    #[test]
    fn stat_paths_are_written_with_their_nul() {
        let mut path = [0u8; 24];
        assert_eq!(stat_path(4194304, &mut path), Some(13));
        assert_eq!(&path[..13], b"4194304/stat\0");
        assert_eq!(stat_path(1, &mut path), Some(7));
        assert_eq!(&path[..7], b"1/stat\0");
        assert_eq!(stat_path(-1, &mut path), None);
    }

    #[test]
    fn proc_lists_this_process_with_its_parent() {
        let own = std::process::id() as i32;
        let proc = Proc::open().unwrap();
        assert_eq!(proc.self_pid(), Some(own));
        let mut pids = Vec::new();
        proc.each_pid(|pid| pids.push(pid));
        assert!(pids.contains(&own) && pids.contains(&1), "{pids:?}");
        let parent = nix::unistd::getppid().as_raw();
        assert!(matches!(proc.stat(own), Some((_, ppid)) if ppid == parent));
        assert_eq!(proc.stat(i32::MAX), None);
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
        assert_eq!(parse_stat(b"42 (notify) Z 7 42 42 0 -1"), Some((b'Z', 7)));
        assert_eq!(parse_stat(b"42 (a) b) S 9 42"), Some((b'S', 9)));
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
