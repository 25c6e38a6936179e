//! The suite's one reader of `/proc` text: the host's (the test process's own identity, the
//! machine's load) and the container's (read through `docker exec` by the container guard).
//! Parsers take text, so they are unit-tested on literal samples.

use std::collections::BTreeMap;

use anyhow::{anyhow, Context, Result};

/// `/proc/<pid>/status`: `Name:\tvalue` lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Status {
    fields: BTreeMap<String, String>,
}

impl Status {
    pub fn parse(text: &str) -> Status {
        let fields = text
            .lines()
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.to_string(), v.trim().to_string()))
            .collect();
        Status { fields }
    }

    /// A field as text (`""` when absent).
    pub fn text(&self, name: &str) -> &str {
        self.fields.get(name).map_or("", String::as_str)
    }

    /// The leading number of a field (`VmRSS:  1234 kB` gives 1234, `Threads: 1` gives 1).
    pub fn number(&self, name: &str) -> Result<u64> {
        self.text(name)
            .split_whitespace()
            .next()
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| anyhow!("{name} missing in /proc status"))
    }
}

/// How many tasks on the host are runnable right now, the caller included (the `R` of the `R/T`
/// field of `/proc/loadavg`): unlike the load averages, it does not remember the last minutes.
pub fn runnable_tasks() -> Result<u32> {
    let text = std::fs::read_to_string("/proc/loadavg").context("reading /proc/loadavg")?;
    runnable_in_loadavg(&text).ok_or_else(|| anyhow!("no R/T field in /proc/loadavg: {text:?}"))
}

fn runnable_in_loadavg(text: &str) -> Option<u32> {
    text.split_whitespace().nth(3)?.split_once('/')?.0.parse().ok()
}

/// Field 22 of the host's `/proc/<pid>/stat` (start time in clock ticks): with the pid it
/// identifies a process across pid reuse.
pub fn start_time(pid: u32) -> Option<u64> {
    stat_start_time(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// The start time in a `stat` line. The command name may hold spaces and parentheses, so the
/// fields are counted from its last `)`.
fn stat_start_time(stat: &str) -> Option<u64> {
    let after_comm = stat.get(stat.rfind(')')? + 2..)?;
    after_comm.split_whitespace().nth(19)?.parse().ok()
}

/// The TCP sockets on one port, from the text of `/proc/net/tcp` and `/proc/net/tcp6`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortView {
    /// The accept queue of the listening socket (`rx_queue` of its LISTEN line): connections the
    /// kernel completed that no process has accepted yet. `None` when nothing listens.
    pub queued: Option<u64>,
    /// Established connections whose local end is the port (the server side).
    pub established: usize,
}

impl PortView {
    pub fn listening(&self) -> bool {
        self.queued.is_some()
    }

    pub fn parse(net_tcp: &[String], port: u16) -> PortView {
        let suffix = format!(":{port:04X}");
        let mut view = PortView { queued: None, established: 0 };
        for line in net_tcp {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(state), Some(queues)) =
                (fields.get(1), fields.get(3), fields.get(4))
            else {
                continue;
            };
            if !local.ends_with(&suffix) {
                continue;
            }
            match *state {
                "0A" => {
                    view.queued =
                        queues.split_once(':').and_then(|(_, rx)| u64::from_str_radix(rx, 16).ok())
                }
                "01" => view.established += 1,
                _ => {}
            }
        }
        view
    }
}

/// The socket inodes in an `ls -l /proc/<pid>/fd` listing, in fd order.
pub fn socket_inodes(ls_fd: &[String]) -> Vec<u64> {
    let mut fds: Vec<(u32, u64)> = ls_fd
        .iter()
        .filter_map(|line| {
            let (left, target) = line.split_once(" -> ")?;
            let fd = left.split_whitespace().last()?.parse().ok()?;
            let inode = target.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()?;
            Some((fd, inode))
        })
        .collect();
    fds.sort_unstable();
    fds.into_iter().map(|(_, inode)| inode).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_string).collect()
    }

    #[test]
    fn status_fields_and_numbers_are_read() {
        let s = Status::parse("Name:\tscinit\nVmRSS:\t    1024 kB\nThreads:\t1\n");
        assert_eq!(s.text("Name"), "scinit");
        assert_eq!(s.number("VmRSS").unwrap(), 1024);
        assert_eq!(s.number("Threads").unwrap(), 1);
        assert!(s.number("VmSwap").is_err());
    }

    #[test]
    fn runnable_tasks_are_counted() {
        assert!(runnable_tasks().unwrap() >= 1, "the reader itself runs");
        assert_eq!(runnable_in_loadavg("0.52 0.61 0.70 3/412 9124\n"), Some(3));
        assert_eq!(runnable_in_loadavg("0.52 0.61"), None);
    }

    #[test]
    fn the_start_time_is_counted_after_the_last_parenthesis() {
        let fields: Vec<String> = (3..=22).map(|n| n.to_string()).collect();
        let stat = format!("42 (a (weird) name) {}", fields.join(" "));
        assert_eq!(stat_start_time(&stat), Some(22));
        assert_eq!(stat_start_time("42 (x) S"), None);
    }

    #[test]
    fn a_port_view_counts_the_accept_queue_and_established_connections() {
        let tcp = lines(
            "  sl  local_address rem_address   st tx_queue:rx_queue\n\
             0: 00000000:1F90 00000000:0000 0A 00000000:00000002 00:00000000\n\
             1: 0100007F:1F90 0100007F:9C40 01 00000000:00000000 00:00000000\n\
             2: 0100007F:9C40 0100007F:1F90 01 00000000:00000000 00:00000000\n",
        );
        assert_eq!(PortView::parse(&tcp, 8080), PortView { queued: Some(2), established: 1 });
        assert!(!PortView::parse(&tcp, 9090).listening());
    }

    #[test]
    fn socket_inodes_come_in_fd_order() {
        let ls = lines(
            "lrwx------ 1 root root 64 Jan 1 00:00 4 -> socket:[200]\n\
             lrwx------ 1 root root 64 Jan 1 00:00 3 -> socket:[100]\n\
             lrwx------ 1 root root 64 Jan 1 00:00 0 -> /dev/null\n",
        );
        assert_eq!(socket_inodes(&ls), [100, 200]);
    }
}
