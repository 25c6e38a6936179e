//! Starting the main child: fork, set-up in the child, exec, and exec-failure detection.
//!
//! Exec failure is detected in the parent through a `CLOEXEC` pipe: a successful exec closes
//! the pipe (the parent reads EOF); a failed one writes its errno (and which file) first. So
//! scinit knows synchronously whether the child is running, and reports 127/126 itself, like a
//! shell. When the pipe or the fork fails, nothing was executed: that is a set-up error (1), not
//! a 126.
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

use crate::exit_status::{self, Fatal};
use crate::signals;
use crate::sockets::{self, Listener, FIRST_FD};

/// Why the child could not be started.
#[derive(Debug, Clone, Copy)]
enum Failure {
    /// scinit could not create the report pipe or fork.
    Fork(Errno),
    /// The child's set-up or its exec failed.
    Exec(Errno),
}

/// The failure as scinit reports it, with its code from the exit-code table.
fn fatal(failure: Failure, command: &str) -> Fatal {
    match failure {
        Failure::Fork(errno) => Fatal::setup(format!("cannot start '{command}': {}", errno.desc())),
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
        Ok(Spawner { argv, files, env, listeners, ports, foreground })
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
                    Some((errno, file)) => {
                        crate::reap::wait_for(child.as_raw());
                        let name = match file.and_then(|index| self.files.get(index)) {
                            Some(file) => file.to_string_lossy().into_owned(),
                            None => self.command_name(),
                        };
                        Err(fatal(Failure::Exec(errno), &name))
                    }
                }
            }
        }
    }

    /// The child side: never returns. On any failure it reports the errno, and the index in
    /// `files` of the file it concerns (-1: none in particular), and exits.
    fn exec_child(&self, report: OwnedFd) -> ! {
        let mut report_fd = report.as_raw_fd();
        let (errno, file) = self.prepare_and_exec(&mut report_fd);
        let index = file.and_then(|index| i32::try_from(index).ok()).unwrap_or(-1);
        let [a, b, c, d] = (errno as i32).to_ne_bytes();
        let [e, f, g, h] = index.to_ne_bytes();
        let bytes = [a, b, c, d, e, f, g, h];
        // SAFETY: writing a local buffer to our own pipe, then exiting without running any
        // of the parent's atexit handlers or destructors (they belong to scinit).
        unsafe {
            libc::write(report_fd, bytes.as_ptr().cast(), bytes.len());
            libc::_exit(exit_status::from_exec_errno(errno))
        }
    }

    /// Sets up the child and execs; returns only the errno of what failed, and the file it
    /// concerns. `report` follows the report pipe when the fd shuffle moves it.
    fn prepare_and_exec(&self, report: &mut RawFd) -> (Errno, Option<usize>) {
        let _ = setpgid(Pid::from_raw(0), Pid::from_raw(0));
        if self.foreground.0.is_some() {
            // Signals are still blocked here, so SIGTTOU cannot stop us while we take over.
            let _ = tcsetpgrp(std::io::stdin(), getpid());
        }
        match self.place_fds(*report) {
            Ok(moved) => *report = moved,
            Err(errno) => return (errno, None),
        }
        if let Err(errno) = signals::reset_for_child() {
            return (errno, None);
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
        self.exec_first(&env)
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

    /// Leaves the child with exactly fds 0, 1, 2, the listening sockets at 3, 4, ... in
    /// `--ports` order, and (until exec closes it) the report pipe, whose new fd is returned.
    ///
    /// The sockets are first copied above the target range, so that placing socket `i` at
    /// `3+i` can never overwrite a socket that still has to be placed (dup2 overlap).
    fn place_fds(&self, report: RawFd) -> Result<RawFd, Errno> {
        let first_free = FIRST_FD + self.listeners.len() as RawFd;
        let report = dup_at_least(report, first_free)?;
        let copies = self
            .listeners
            .iter()
            .map(|l| dup_at_least(l.fd.as_raw_fd(), first_free))
            .collect::<Result<Vec<_>, _>>()?;
        for (target, copy) in (FIRST_FD..).zip(copies) {
            // SAFETY: plain fd syscall; dup2 leaves the new fd without CLOEXEC, as wanted.
            Errno::result(unsafe { libc::dup2(copy, target) })?;
        }
        close_from(first_free, report)?;
        Ok(report)
    }
}

/// `fcntl(F_DUPFD_CLOEXEC)`: a CLOEXEC copy of `fd` at the lowest free fd >= `min`.
fn dup_at_least(fd: RawFd, min: RawFd) -> Result<RawFd, Errno> {
    // SAFETY: plain fd syscall.
    Errno::result(unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, min) })
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
        result = close_range(low, high as u32).map(drop);
    }
    match result {
        // Kernels before 5.9 lack close_range: close what /proc lists instead.
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

/// Reads the child's report, an errno and the index of the file it concerns (if any): `None` on
/// EOF (the exec succeeded).
fn read_report(pipe: OwnedFd) -> Option<(Errno, Option<usize>)> {
    let mut bytes = [0u8; 8];
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
    let [a, b, c, d, e, f, g, h] = bytes;
    let errno = Errno::from_raw(i32::from_ne_bytes([a, b, c, d]));
    let file = usize::try_from(i32::from_ne_bytes([e, f, g, h])).ok();
    (filled == bytes.len()).then_some((errno, file))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failing_to_fork_or_to_create_the_pipe_is_a_setup_error_not_126() {
        for errno in [Errno::EAGAIN, Errno::ENOMEM, Errno::EMFILE, Errno::ENFILE] {
            let error = fatal(Failure::Fork(errno), "app");
            assert_eq!(error.code, 1, "{errno}");
            assert_eq!(error.message, format!("cannot start 'app': {}", errno.desc()));
        }
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
