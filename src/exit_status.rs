//! The exit-code table: the one place where wait statuses and failures become scinit's exit code.
//!
//! | code    | meaning                                                         |
//! |---------|-----------------------------------------------------------------|
//! | 0..=255 | the main child's own exit code                                  |
//! | 128+N   | the main child died of signal N                                 |
//! | 127     | COMMAND not found                                               |
//! | 126     | COMMAND found but not executable (or exec failed otherwise)     |
//! | 2       | usage error                                                     |
//! | 1       | fatal set-up error (bind, address, watch path, fork, pipe, ...) |
//!
//! Every failure that ends scinit is a [`Fatal`], so no code outside this table can be produced.

use nix::errno::Errno;
use nix::libc;

/// Fatal set-up error before the child could be started.
const SETUP_ERROR: i32 = 1;
/// Bad command line or `SCINIT_LOG`.
const USAGE_ERROR: i32 = 2;
/// The command exists but cannot be executed (shell convention).
const NOT_EXECUTABLE: i32 = 126;
/// The command does not exist (shell convention).
const NOT_FOUND: i32 = 127;

/// A failure that ends scinit: one line for stderr and its code from the table above.
#[derive(Debug, PartialEq, Eq)]
pub struct Fatal {
    pub code: i32,
    pub message: String,
}

impl Fatal {
    /// A bad command line or `SCINIT_LOG`.
    pub fn usage(message: impl Into<String>) -> Fatal {
        Fatal { code: USAGE_ERROR, message: message.into() }
    }

    /// Anything else that keeps scinit from starting the child: nothing was executed.
    pub fn setup(message: impl Into<String>) -> Fatal {
        Fatal { code: SETUP_ERROR, message: message.into() }
    }

    /// The child's exec failed with `errno`.
    pub fn exec(errno: Errno, message: impl Into<String>) -> Fatal {
        Fatal { code: from_exec_errno(errno), message: message.into() }
    }
}

/// Maps a raw `waitpid` status to an exit code: the child's code, or 128+N for a death by
/// signal N. `None` for stop/continue reports, which are not terminations.
///
/// The raw status is decoded here rather than through `nix::sys::wait::WaitStatus` because nix
/// refuses statuses whose signal it has no enum variant for (real-time signals), and by then the
/// child has already been reaped: its status would be lost.
pub fn from_wait_status(status: i32) -> Option<i32> {
    if libc::WIFEXITED(status) {
        Some(libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        Some((128 + libc::WTERMSIG(status)).min(255))
    } else {
        None
    }
}

/// Maps the errno of a failed `exec` to 127 (not found) or 126 (anything else), as shells do.
pub fn from_exec_errno(errno: Errno) -> i32 {
    match errno {
        Errno::ENOENT | Errno::ENOTDIR => NOT_FOUND,
        _ => NOT_EXECUTABLE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Raw statuses as the kernel encodes them: exit code in bits 8..16, signal in bits 0..7.
    fn exited(code: i32) -> i32 {
        code << 8
    }

    #[test]
    fn exit_codes_pass_through_unchanged() {
        for code in [0, 1, 3, 126, 127, 255] {
            assert_eq!(from_wait_status(exited(code)), Some(code), "exit {code}");
        }
    }

    #[test]
    fn death_by_signal_becomes_128_plus_n() {
        for (signal, expected) in
            [(15, 143), (9, 137), (10, 138), (2, 130), (11, 139), (34, 162), (64, 192)]
        {
            assert_eq!(from_wait_status(signal), Some(expected), "signal {signal}");
        }
    }

    #[test]
    fn core_dump_flag_does_not_change_the_code() {
        assert_eq!(from_wait_status(11 | 0x80), Some(139));
    }

    #[test]
    fn stopped_child_is_not_a_termination() {
        assert_eq!(from_wait_status((19 << 8) | 0x7f), None);
        assert_eq!(from_wait_status(0xffff), None);
    }

    #[test]
    fn exec_errors_map_to_127_and_126() {
        assert_eq!(from_exec_errno(Errno::ENOENT), 127);
        assert_eq!(from_exec_errno(Errno::ENOTDIR), 127);
        assert_eq!(from_exec_errno(Errno::EACCES), 126);
        assert_eq!(from_exec_errno(Errno::ENOEXEC), 126);
        assert_eq!(from_exec_errno(Errno::EISDIR), 126);
    }

    #[test]
    fn fixed_codes_match_the_documented_table() {
        assert_eq!((SETUP_ERROR, USAGE_ERROR, NOT_EXECUTABLE, NOT_FOUND), (1, 2, 126, 127));
    }

    #[test]
    fn fatal_errors_carry_their_code_from_the_table() {
        assert_eq!(Fatal::usage("u"), Fatal { code: 2, message: "u".to_string() });
        assert_eq!(Fatal::setup("s").code, 1);
        assert_eq!(Fatal::exec(Errno::ENOENT, "x").code, 127);
        assert_eq!(Fatal::exec(Errno::EACCES, "x").code, 126);
    }
}
