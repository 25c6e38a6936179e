//! Starting the main child: fork, set-up in the child, exec, and exec-failure detection.
//!
//! Exec failure is detected in the parent through a `CLOEXEC` pipe: a successful exec closes
//! the pipe (the parent reads EOF); a failed one writes its errno (and which file) first. So
//! scinit knows synchronously whether the child is running, and reports 127/126 itself, like a
//! shell. When the pipe or the fork fails, or the child's own set-up before exec (placing its
//! fds, resetting its signals), nothing was executed: that is a set-up error (1), not a 126.
//!
//! File descriptors: while it starts a child with N sockets, scinit holds stdin, stdout, stderr,
//! its signalfd, the N sockets and both ends of the report pipe, so it needs an `RLIMIT_NOFILE`
//! of N+6, one more each for its inotify fd (`--live-reload`), its notify socket (`--notify`)
//! and any fd it inherited; short of that, opening one of them fails: a set-up error. The child
//! needs no more: it ends up with 3+N fds plus the report pipe until exec, and placing them
//! creates no fd but its targets 3..3+N-1 (see [`place_fds`]), all below fds scinit already
//! holds.
//!
//! COMMAND is looked up in the child's `PATH` by scinit itself, with `execvp`'s rules, and each
//! candidate is run with `execve`: glibc's `execvp` hands a file the kernel cannot execute
//! (`ENOEXEC`: random bytes, an ELF for another architecture) to `/bin/sh`, which would run it
//! as a script. Here that is a 126 naming the file.

use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::libc;
use nix::unistd::{
    fork, getpgrp, getpid, isatty, pipe2, setpgid, tcgetpgrp, tcsetpgrp, ForkResult, Pid,
};

use crate::exit_status::Fatal;
use crate::signals;
use crate::sockets::{self, Listener, FIRST_FD};

/// Why the child could not be started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    /// scinit could not create the report pipe or fork.
    Fork(Errno),
    /// The child's set-up before exec failed (placing its fds, resetting its signals, entering
    /// the working directory).
    Prepare(Errno),
    /// The child's exec failed.
    Exec(Errno),
}

/// The failure as scinit reports it, with its code from the exit-code table.
fn fatal(failure: Failure, command: &str) -> Fatal {
    match failure {
        Failure::Fork(errno) | Failure::Prepare(errno) => {
            Fatal::setup(format!("cannot start '{command}': {}", errno.desc()))
        }
        Failure::Exec(errno) => {
            Fatal::exec(errno, format!("cannot execute '{command}': {}", errno.desc()))
        }
    }
}

/// The search path when the child's environment has no `PATH`: Docker's default.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The files to try for `command`, in order, as `execvp` searches them: the command itself if it
/// contains a `/`; otherwise the command in each directory of `path_var` ([`DEFAULT_PATH`] when
/// unset; an empty entry is the current directory). None for an empty command.
pub fn candidates(command: &OsStr, path_var: Option<&OsStr>) -> Vec<PathBuf> {
    if command.is_empty() {
        return Vec::new();
    }
    if command.as_bytes().contains(&b'/') {
        return vec![PathBuf::from(command)];
    }
    path_var
        .unwrap_or(OsStr::new(DEFAULT_PATH))
        .as_bytes()
        .split(|b| *b == b':')
        .map(|dir| if dir.is_empty() { Path::new(".") } else { Path::new(OsStr::from_bytes(dir)) })
        .map(|dir| dir.join(command))
        .collect()
}

/// COMMAND does not exist: the same 127 and line as when its exec fails with `ENOENT`.
pub fn not_found(command: &str) -> Fatal {
    fatal(Failure::Exec(Errno::ENOENT), command)
}

/// The children's environment with `--notify`: `NOTIFY_SOCKET` set to scinit's own socket,
/// replacing one scinit inherited (the children report to scinit, not to whatever supervises
/// scinit). Without `--notify` an inherited `NOTIFY_SOCKET` passes through like any variable.
pub fn with_notify_socket(
    mut env: Vec<(OsString, OsString)>,
    notify_socket: Option<&OsStr>,
) -> Vec<(OsString, OsString)> {
    if let Some(address) = notify_socket {
        env.retain(|(name, _)| name != "NOTIFY_SOCKET");
        env.push(("NOTIFY_SOCKET".into(), address.to_owned()));
    }
    env
}

/// The terminal's foreground process group when scinit started, if scinit owned it.
///
/// The child only takes the foreground if scinit had it: a scinit started in the background
/// of an interactive shell must not steal the terminal from that shell.
#[derive(Debug, Clone, Copy)]
pub struct Foreground(Option<Pid>);

impl Foreground {
    pub fn detect() -> Foreground {
        let stdin = std::io::stdin();
        let ours = isatty(&stdin).unwrap_or(false) && tcgetpgrp(&stdin).ok() == Some(getpgrp());
        Foreground(ours.then(getpgrp))
    }

    /// Gives the terminal back to scinit's group. SIGTTOU is blocked in scinit, so this works
    /// even though scinit is then a background process of its terminal.
    pub fn restore(self) {
        if let Some(pgrp) = self.0 {
            let _ = tcsetpgrp(std::io::stdin(), pgrp);
        }
    }
}

/// Everything needed to start (and restart) the child, prepared once.
pub struct Spawner<'a> {
    argv: Vec<CString>,
    /// The files to exec, in order: [`candidates`] in the child's `PATH`, prepared before fork.
    files: Vec<CString>,
    env: Vec<(OsString, OsString)>,
    listeners: &'a [Listener],
    ports: Vec<u16>,
    foreground: Foreground,
    /// The directory every child starts in: scinit's own at start-up, the container's working
    /// directory. scinit itself then waits in `/` (see `main`), keeping no directory busy.
    /// `None` when it cannot be read (removed already): children then start where scinit is.
    cwd: Option<CString>,
}

impl<'a> Spawner<'a> {
    pub fn new(
        command: &[OsString],
        env: Vec<(OsString, OsString)>,
        listeners: &'a [Listener],
        foreground: Foreground,
    ) -> Result<Spawner<'a>, Fatal> {
        let argv = command
            .iter()
            .map(|arg| CString::new(arg.as_bytes()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| Fatal::setup("an argument of COMMAND contains a NUL byte"))?;
        let program = command.first().map(OsString::as_os_str).unwrap_or_default();
        let path_var = env.iter().find(|(name, _)| name == "PATH").map(|(_, v)| v.as_os_str());
        // Environment values and COMMAND (checked above) hold no NUL byte: nothing is dropped.
        let files = candidates(program, path_var)
            .into_iter()
            .filter_map(|file| CString::new(file.into_os_string().into_vec()).ok())
            .collect();
        let ports = listeners.iter().map(|l| l.port).collect();
        let cwd = std::env::current_dir()
            .ok()
            .and_then(|dir| CString::new(dir.into_os_string().into_vec()).ok());
        Ok(Spawner { argv, files, env, listeners, ports, foreground, cwd })
    }

    /// Whether children start in a directory of their own (scinit's at start-up), so that
    /// scinit may leave it.
    pub fn remembers_the_working_directory(&self) -> bool {
        self.cwd.is_some()
    }

    fn command_name(&self) -> String {
        self.argv.first().map(|a| a.to_string_lossy().into_owned()).unwrap_or_default()
    }

    /// Forks and execs the child; returns its pid once the exec has succeeded. The error ends
    /// scinit if this is the first child; after a restart, scinit only logs it.
    pub fn spawn(&self) -> Result<i32, Fatal> {
        let fork_failed = |errno| fatal(Failure::Fork(errno), &self.command_name());
        let (report_read, report_write) = pipe2(OFlag::O_CLOEXEC).map_err(fork_failed)?;
        // SAFETY: scinit is single-threaded, so the child may run arbitrary code (including
        // allocation) between fork and exec.
        match unsafe { fork() }.map_err(fork_failed)? {
            ForkResult::Child => {
                drop(report_read);
                self.exec_child(report_write)
            }
            ForkResult::Parent { child } => {
                drop(report_write);
                // The child does this too; doing it here as well closes the race where a
                // signal is forwarded to the group before the child has created it.
                let _ = setpgid(child, child);
                match read_report(report_read) {
                    None => Ok(child.as_raw()),
                    Some((failure, file)) => {
                        crate::reap::wait_for(child.as_raw());
                        let name = match file.and_then(|index| self.files.get(index)) {
                            Some(file) => file.to_string_lossy().into_owned(),
                            None => self.command_name(),
                        };
                        Err(fatal(failure, &name))
                    }
                }
            }
        }
    }

    /// The child side: never returns. On any failure it reports it (see [`encode_report`]) and
    /// exits with the code scinit gives that failure, which is what scinit would see, should
    /// the report be lost.
    fn exec_child(&self, report: OwnedFd) -> ! {
        let mut report_fd = report.as_raw_fd();
        let (failure, file) = self.prepare_and_exec(&mut report_fd);
        let bytes = encode_report(failure, file);
        let code = fatal(failure, "").code;
        // SAFETY: writing a local buffer to our own pipe, then exiting without running any
        // of the parent's atexit handlers or destructors (they belong to scinit).
        unsafe {
            libc::write(report_fd, bytes.as_ptr().cast(), bytes.len());
            libc::_exit(code)
        }
    }

    /// Sets up the child and execs; returns only what failed, and the file it concerns.
    /// `report` follows the report pipe when the fd shuffle moves it.
    fn prepare_and_exec(&self, report: &mut RawFd) -> (Failure, Option<usize>) {
        let _ = setpgid(Pid::from_raw(0), Pid::from_raw(0));
        if self.foreground.0.is_some() {
            // Signals are still blocked here, so SIGTTOU cannot stop us while we take over.
            let _ = tcsetpgrp(std::io::stdin(), getpid());
        }
        let sockets = self.listeners.iter().map(|l| l.fd.as_raw_fd()).collect();
        match place_fds(&mut Kernel, sockets, *report) {
            Ok(moved) => *report = moved,
            Err(errno) => return (Failure::Prepare(errno), None),
        }
        if let Err(errno) = signals::reset_for_child() {
            return (Failure::Prepare(errno), None);
        }
        // Before exec, so that a relative COMMAND is found where the user meant it. A directory
        // removed since start-up fails the start, as any other set-up step.
        if let Some(cwd) = &self.cwd {
            if let Err(errno) = nix::unistd::chdir(cwd.as_c_str()) {
                return (Failure::Prepare(errno), None);
            }
        }
        let env: Vec<CString> = sockets::child_env(&self.env, &self.ports, getpid().as_raw())
            .into_iter()
            .filter_map(|(name, value)| {
                let mut entry = name.into_vec();
                entry.push(b'=');
                entry.extend_from_slice(value.as_bytes());
                CString::new(entry).ok()
            })
            .collect();
        let (errno, file) = self.exec_first(&env);
        (Failure::Exec(errno), file)
    }

    /// Execs the first of `files` that the kernel accepts, going on to the next one as
    /// `execvp` does when the file is not there, or is there but not executable (reported only
    /// if no later directory has it, and then the first such file). Any other error ends the
    /// search with that file: `ENOEXEC` included, which `execvp` would hand to `/bin/sh`.
    fn exec_first(&self, env: &[CString]) -> (Errno, Option<usize>) {
        let mut failure = (Errno::ENOENT, None);
        for (index, file) in self.files.iter().enumerate() {
            let errno = match nix::unistd::execve(file, &self.argv, env) {
                Err(errno) => errno,
                Ok(never) => match never {},
            };
            let search_on = matches!(
                errno,
                Errno::ENOENT
                    | Errno::ENOTDIR
                    | Errno::ESTALE
                    | Errno::ENODEV
                    | Errno::ETIMEDOUT
                    | Errno::EACCES
            );
            if !search_on {
                return (errno, Some(index));
            }
            if failure.0 != Errno::EACCES {
                failure = (errno, (errno == Errno::EACCES).then_some(index));
            }
        }
        failure
    }
}

/// The fd system calls of [`place_fds`], behind a trait so that its tests can run it on a model
/// of the fd table: on the real one it would clobber the test process's own fds.
trait FdTable {
    /// A CLOEXEC copy of `fd` at the lowest free fd >= `min`.
    fn dup_at_least(&mut self, fd: RawFd, min: RawFd) -> Result<RawFd, Errno>;
    /// Makes `target` a copy of `fd` without CLOEXEC (`fd` may be `target` itself).
    fn place(&mut self, fd: RawFd, target: RawFd) -> Result<(), Errno>;
    /// Closes every fd >= `first` except `keep`.
    fn close_from(&mut self, first: RawFd, keep: RawFd) -> Result<(), Errno>;
}

/// The child's own fd table.
struct Kernel;

impl FdTable for Kernel {
    fn dup_at_least(&mut self, fd: RawFd, min: RawFd) -> Result<RawFd, Errno> {
        // SAFETY: plain fd syscall.
        Errno::result(unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, min) })
    }

    fn place(&mut self, fd: RawFd, target: RawFd) -> Result<(), Errno> {
        // SAFETY: plain fd syscalls. dup2 leaves the new fd without CLOEXEC, as wanted; onto
        // itself it would do nothing, so an fd already in place has its CLOEXEC cleared instead.
        let result = if fd == target {
            unsafe { libc::fcntl(target, libc::F_SETFD, 0) }
        } else {
            unsafe { libc::dup2(fd, target) }
        };
        Errno::result(result).map(drop)
    }

    fn close_from(&mut self, first: RawFd, keep: RawFd) -> Result<(), Errno> {
        close_from(first, keep)
    }
}

/// Leaves exactly fds 0, 1, 2, the `sockets` at 3, 4, ... in this order, and the report pipe
/// (CLOEXEC, for exec to close), whose fd is returned.
///
/// Each socket goes straight to its target, so the only fds this creates are the targets. That
/// is safe because scinit binds its sockets in `--ports` order after stdio (so socket i's fd is at
/// or above 3+i and below socket i+1's) and creates the pipe after them: placing socket i can
/// never overwrite a socket still to be placed, or the pipe. If it would (fds in another order),
/// that fd is first copied above the range, the one case that costs a spare fd.
fn place_fds(
    fds: &mut impl FdTable,
    mut sockets: Vec<RawFd>,
    mut report: RawFd,
) -> Result<RawFd, Errno> {
    let end = FIRST_FD + sockets.len() as RawFd;
    let mut rest = sockets.as_mut_slice();
    let mut target = FIRST_FD;
    while let Some((fd, later)) = std::mem::take(&mut rest).split_first_mut() {
        if report == target || later.contains(&target) {
            let moved = fds.dup_at_least(target, end)?;
            later.iter_mut().filter(|other| **other == target).for_each(|other| *other = moved);
            if report == target {
                report = moved;
            }
        }
        fds.place(*fd, target)?;
        rest = later;
        target += 1;
    }
    fds.close_from(end, report)?;
    Ok(report)
}

/// Closes every fd >= `first` except `keep`.
fn close_from(first: RawFd, keep: RawFd) -> Result<(), Errno> {
    let close_range = |low: RawFd, high: u32| {
        // SAFETY: close_range(2) only closes fds; no pointers involved.
        Errno::result(unsafe { libc::syscall(libc::SYS_close_range, low as u32, high, 0u32) })
    };
    let ranges = [(first, keep - 1), (keep + 1, RawFd::MAX)];
    let mut result = Ok(());
    for (low, high) in ranges.into_iter().filter(|(low, high)| low <= high) {
        result = result.and(close_range(low, high as u32).map(drop));
    }
    match result {
        // Kernels before 5.9 lack close_range: close what /proc lists instead. Listing it takes
        // one more fd, the lowest free one: in the child, the slot of the pipe's read end.
        Err(Errno::ENOSYS) => {
            let open: Vec<RawFd> = std::fs::read_dir("/proc/self/fd")
                .map_err(|_| Errno::EMFILE)?
                .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
                .collect();
            for fd in open.into_iter().filter(|&fd| fd >= first && fd != keep) {
                // SAFETY: closing an fd of our own; the directory's fd is already closed.
                unsafe { libc::close(fd) };
            }
            Ok(())
        }
        other => other,
    }
}

/// The child's report on the pipe, three native-endian `i32`s: what failed (0: its set-up
/// before exec, 1: the exec), the errno, and the index in `files` of the file concerned (-1:
/// none in particular).
type Report = [u8; 12];

fn encode_report(failure: Failure, file: Option<usize>) -> Report {
    let (stage, errno) = match failure {
        Failure::Fork(errno) | Failure::Prepare(errno) => (0i32, errno),
        Failure::Exec(errno) => (1, errno),
    };
    let index = file.and_then(|index| i32::try_from(index).ok()).unwrap_or(-1);
    let [a, b, c, d] = stage.to_ne_bytes();
    let [e, f, g, h] = (errno as i32).to_ne_bytes();
    let [i, j, k, l] = index.to_ne_bytes();
    [a, b, c, d, e, f, g, h, i, j, k, l]
}

fn decode_report(report: Report) -> (Failure, Option<usize>) {
    let [a, b, c, d, e, f, g, h, i, j, k, l] = report;
    let errno = Errno::from_raw(i32::from_ne_bytes([e, f, g, h]));
    let failure = match i32::from_ne_bytes([a, b, c, d]) {
        0 => Failure::Prepare(errno),
        _ => Failure::Exec(errno),
    };
    (failure, usize::try_from(i32::from_ne_bytes([i, j, k, l])).ok())
}

/// Reads the child's report: `None` on EOF (the exec succeeded).
fn read_report(pipe: OwnedFd) -> Option<(Failure, Option<usize>)> {
    let mut bytes: Report = [0; 12];
    let mut file = File::from(pipe);
    let mut filled = 0;
    while filled < bytes.len() {
        match file.read(&mut bytes[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    (filled == bytes.len()).then(|| decode_report(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failing_to_fork_create_the_pipe_or_set_up_the_child_is_a_setup_error_not_126() {
        for errno in [Errno::EAGAIN, Errno::ENOMEM, Errno::EMFILE, Errno::ENFILE] {
            for failure in [Failure::Fork(errno), Failure::Prepare(errno)] {
                let error = fatal(failure, "app");
                assert_eq!(error.code, 1, "{failure:?}");
                assert_eq!(error.message, format!("cannot start 'app': {}", errno.desc()));
            }
        }
    }

    #[test]
    fn the_report_tells_a_failed_set_up_from_a_failed_exec() {
        for (failure, file) in [
            (Failure::Prepare(Errno::EMFILE), None),
            (Failure::Exec(Errno::EACCES), Some(2)),
            (Failure::Exec(Errno::ENOENT), None),
        ] {
            assert_eq!(decode_report(encode_report(failure, file)), (failure, file));
        }
    }

    /// A model of a process's fd table, fd -> (open file, CLOEXEC), where a file is named by
    /// the fd it was first opened at; and, in order, each fd [`place_fds`] made refer to a file.
    struct Model {
        open: std::collections::BTreeMap<RawFd, (RawFd, bool)>,
        created: Vec<RawFd>,
    }

    impl Model {
        /// Stdio, and `fds` open with CLOEXEC, as in scinit.
        fn with(fds: &[RawFd]) -> Model {
            let stdio = [0, 1, 2].map(|fd| (fd, (fd, false)));
            let open = stdio.into_iter().chain(fds.iter().map(|&fd| (fd, (fd, true)))).collect();
            Model { open, created: Vec::new() }
        }

        fn table(&self) -> Vec<(RawFd, RawFd, bool)> {
            self.open.iter().map(|(&fd, &(file, cloexec))| (fd, file, cloexec)).collect()
        }

        fn file(&self, fd: RawFd) -> Result<RawFd, Errno> {
            self.open.get(&fd).map(|&(file, _)| file).ok_or(Errno::EBADF)
        }
    }

    impl FdTable for Model {
        fn dup_at_least(&mut self, fd: RawFd, min: RawFd) -> Result<RawFd, Errno> {
            let file = self.file(fd)?;
            let new = (min..).find(|n| !self.open.contains_key(n)).unwrap();
            self.open.insert(new, (file, true));
            self.created.push(new);
            Ok(new)
        }

        fn place(&mut self, fd: RawFd, target: RawFd) -> Result<(), Errno> {
            let file = self.file(fd)?;
            self.open.insert(target, (file, false));
            self.created.push(target);
            Ok(())
        }

        fn close_from(&mut self, first: RawFd, keep: RawFd) -> Result<(), Errno> {
            self.open.retain(|&fd, _| fd < first || fd == keep);
            Ok(())
        }
    }

    const STDIO: [(RawFd, RawFd, bool); 3] = [(0, 0, false), (1, 1, false), (2, 2, false)];

    #[test]
    fn scinits_sockets_go_straight_to_3_and_up_and_no_other_fd_is_created() {
        // The signalfd at 3, sockets at 4, 5, 6, inotify at 7, the pipe's write end at 9 (its
        // read end, 8, is closed in the child).
        let mut fds = Model::with(&[3, 4, 5, 6, 7, 9]);
        assert_eq!(place_fds(&mut fds, vec![4, 5, 6], 9), Ok(9));
        let placed = [(3, 4, false), (4, 5, false), (5, 6, false), (9, 9, true)];
        assert_eq!(fds.table(), [&STDIO[..], &placed].concat());
        assert_eq!(fds.created, [3, 4, 5]);
    }

    #[test]
    fn sockets_already_in_place_lose_their_cloexec() {
        let mut fds = Model::with(&[3, 4, 6]);
        assert_eq!(place_fds(&mut fds, vec![3, 4], 6), Ok(6));
        assert_eq!(
            fds.table(),
            [&STDIO[..], &[(3, 3, false), (4, 4, false), (6, 6, true)]].concat()
        );
    }

    #[test]
    fn fds_in_the_way_are_moved_out_of_the_range_before_being_overwritten() {
        // Socket 0 at 5, socket 1 at 3 (its target 4 holds the pipe), and fd 7 to close.
        let mut fds = Model::with(&[3, 4, 5, 7]);
        let report = place_fds(&mut fds, vec![5, 3], 4).unwrap();
        assert_eq!(
            fds.table(),
            [&STDIO[..], &[(3, 5, false), (4, 3, false), (report, 4, true)]].concat()
        );
        assert!(report >= 5);
    }

    #[test]
    fn without_sockets_only_stdio_and_the_pipe_are_left() {
        let mut fds = Model::with(&[3, 5]);
        assert_eq!(place_fds(&mut fds, vec![], 5), Ok(5));
        assert_eq!(fds.table(), [&STDIO[..], &[(5, 5, true)]].concat());
        assert!(fds.created.is_empty());
    }

    fn paths(files: &[&str]) -> Vec<PathBuf> {
        files.iter().map(PathBuf::from).collect()
    }

    #[test]
    fn commands_are_searched_in_each_path_directory_in_order() {
        let found = |path: Option<&str>| candidates(OsStr::new("app"), path.map(OsStr::new));
        assert_eq!(found(Some("/opt/bin:/usr/bin/")), paths(&["/opt/bin/app", "/usr/bin/app"]));
        // An empty entry is the current directory.
        assert_eq!(found(Some(":/bin")), paths(&["./app", "/bin/app"]));
        assert_eq!(found(Some("")), paths(&["./app"]));
        assert_eq!(
            found(None),
            paths(&[
                "/usr/local/sbin/app",
                "/usr/local/bin/app",
                "/usr/sbin/app",
                "/usr/bin/app",
                "/sbin/app",
                "/bin/app"
            ])
        );
    }

    #[test]
    fn a_command_with_a_slash_is_not_searched_and_an_empty_one_is_nowhere() {
        let path = Some(OsStr::new("/bin"));
        assert_eq!(candidates(OsStr::new("./app"), path), paths(&["./app"]));
        assert_eq!(candidates(OsStr::new("/srv/app"), path), paths(&["/srv/app"]));
        assert_eq!(candidates(OsStr::new("bin/app"), path), paths(&["bin/app"]));
        assert_eq!(candidates(OsStr::new(""), path), paths(&[]));
    }

    #[test]
    fn the_search_uses_the_path_of_the_childs_environment() {
        let env = vec![("PATH".into(), "/opt/bin".into())];
        let spawner = Spawner::new(&["app".into()], env, &[], Foreground(None)).unwrap();
        assert_eq!(spawner.files, vec![CString::new("/opt/bin/app").unwrap()]);
    }

    #[test]
    fn notify_socket_is_set_or_replaced_with_notify_and_passed_through_without() {
        let inherited: Vec<(OsString, OsString)> =
            vec![("NOTIFY_SOCKET".into(), "/run/systemd/notify".into()), ("A".into(), "1".into())];
        let env = with_notify_socket(inherited.clone(), Some(OsStr::new("@abc")));
        assert_eq!(env, vec![("A".into(), "1".into()), ("NOTIFY_SOCKET".into(), "@abc".into())]);
        assert_eq!(with_notify_socket(inherited.clone(), None), inherited);
    }

    #[test]
    fn a_command_found_missing_before_exec_is_reported_like_a_failed_exec() {
        assert_eq!(not_found("app"), fatal(Failure::Exec(Errno::ENOENT), "app"));
        assert_eq!(not_found("app").code, 127);
    }

    #[test]
    fn exec_failures_are_127_when_not_found_and_126_otherwise() {
        let code = |errno| fatal(Failure::Exec(errno), "app").code;
        assert_eq!((code(Errno::ENOENT), code(Errno::ENOTDIR)), (127, 127));
        assert_eq!((code(Errno::EACCES), code(Errno::ENOEXEC)), (126, 126));
        assert_eq!(
            fatal(Failure::Exec(Errno::EACCES), "app").message,
            "cannot execute 'app': Permission denied"
        );
    }
}
