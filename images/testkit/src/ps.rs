//! `testkit ps`: one `proc` line per process in `/proc`, from `/proc/<pid>/stat` (busybox `ps`
//! does not show the pgid and sid that reaping and group-forwarding tests need).

use crate::args::{unknown, Args};
use crate::procfs::{self, Process};
use crate::protocol::{fact, Failure};

/// The protocol allows no spaces in values: whitespace in a comm becomes `_`.
pub fn comm_for_line(comm: &str) -> String {
    comm.chars().map(|c| if c.is_whitespace() { '_' } else { c }).collect()
}

pub fn run(mut args: Args) -> Result<(), Failure> {
    if let Some(extra) = args.next_str()? {
        return Err(unknown(&extra));
    }
    for pid in procfs::pids()? {
        // A process may be gone between the listing and the read: it is simply not shown.
        let Ok(Some(stat)) = procfs::stat(Process::Pid(pid)) else {
            continue;
        };
        fact(format_args!(
            "proc pid={} ppid={} pgid={} sid={} state={} comm={}",
            stat.pid,
            stat.ppid,
            stat.pgid,
            stat.sid,
            stat.state,
            comm_for_line(&stat.comm)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_in_a_comm_becomes_underscores() {
        assert_eq!(comm_for_line("a) b (c)"), "a)_b_(c)");
        assert_eq!(comm_for_line("kworker/0:1"), "kworker/0:1");
    }
}
