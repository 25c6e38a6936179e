//! Starting the main child: fork, set-up in the child, exec, and exec-failure detection.
//!
//! Exec failure is detected in the parent through a `CLOEXEC` pipe: a successful exec closes
//! the pipe (the parent reads EOF); a failed one writes its errno first. So scinit knows
//! synchronously whether the child is running, and reports 127/126 itself, like a shell.

use std::ffi::{CString, OsString};
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::libc;
use nix::unistd::{
    fork, getpgrp, getpid, isatty, pipe2, setpgid, tcgetpgrp, tcsetpgrp, ForkResult, Pid,
};

use crate::exit_status;
use crate::signals;
use crate::sockets::{self, Listener, FIRST_FD};

/// Why the child could not be started, with the exit code that failure maps to.
#[derive(Debug)]
pub struct SpawnError {
    pub code: i32,
    pub message: String,
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
    ) -> Result<Spawner<'a>, String> {
        let argv = command
            .iter()
            .map(|arg| CString::new(arg.as_bytes()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| "an argument of COMMAND contains a NUL byte".to_string())?;
        let ports = listeners.iter().map(|l| l.port).collect();
        Ok(Spawner {
            argv,
            env,
            listeners,
            ports,
            foreground,
        })
    }

    fn command_name(&self) -> String {
        self.argv
            .first()
            .map(|a| a.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// Forks and execs the child; returns its pid once the exec has succeeded.
    pub fn spawn(&self) -> Result<i32, SpawnError> {
        let fork_failed = |errno: Errno| SpawnError {
            code: exit_status::NOT_EXECUTABLE,
            message: format!("cannot start '{}': {}", self.command_name(), errno.desc()),
        };
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
                match read_errno(report_read) {
                    None => Ok(child.as_raw()),
                    Some(errno) => {
                        crate::reap::wait_for(child.as_raw());
                        Err(SpawnError {
                            code: exit_status::from_exec_errno(errno),
                            message: format!(
                                "cannot execute '{}': {}",
                                self.command_name(),
                                errno.desc()
                            ),
                        })
                    }
                }
            }
        }
    }

    /// The child side: never returns. On any failure it reports the errno and exits.
    fn exec_child(&self, report: OwnedFd) -> ! {
        let mut report_fd = report.as_raw_fd();
        let errno = self.prepare_and_exec(&mut report_fd);
        let bytes = (errno as i32).to_ne_bytes();
        // SAFETY: writing a local buffer to our own pipe, then exiting without running any
        // of the parent's atexit handlers or destructors (they belong to scinit).
        unsafe {
            libc::write(report_fd, bytes.as_ptr().cast(), bytes.len());
            libc::_exit(exit_status::from_exec_errno(errno))
        }
    }

    /// Sets up the child and execs; returns only the errno of what failed. `report` follows
    /// the report pipe when the fd shuffle moves it.
    fn prepare_and_exec(&self, report: &mut RawFd) -> Errno {
        let _ = setpgid(Pid::from_raw(0), Pid::from_raw(0));
        if self.foreground.0.is_some() {
            // Signals are still blocked here, so SIGTTOU cannot stop us while we take over.
            let _ = tcsetpgrp(std::io::stdin(), getpid());
        }
        match self.place_fds(*report) {
            Ok(moved) => *report = moved,
            Err(errno) => return errno,
        }
        if let Err(errno) = signals::reset_for_child() {
            return errno;
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
        match self.argv.first() {
            // execvpe resolves the program through PATH like a shell (execvp semantics).
            Some(program) => match nix::unistd::execvpe(program, &self.argv, &env) {
                Err(errno) => errno,
                Ok(never) => match never {},
            },
            None => Errno::ENOENT,
        }
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

/// Reads the child's errno report: `None` on EOF (the exec succeeded).
fn read_errno(pipe: OwnedFd) -> Option<Errno> {
    let mut bytes = [0u8; 4];
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
    (filled == bytes.len()).then(|| Errno::from_raw(i32::from_ne_bytes(bytes)))
}
