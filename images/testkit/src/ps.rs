//! `testkit ps`: one `proc` line per process in `/proc`, from `/proc/<pid>/stat` (busybox `ps`
//! does not show the pgid and sid that reaping and group-forwarding tests need).

use crate::report::{fact, unknown, Args, Context, Failure};

/// The fields of `/proc/<pid>/stat` the suite uses.
#[derive(Debug, PartialEq, Eq)]
pub struct Stat {
    pub pid: i32,
    pub comm: String,
    pub state: char,
    pub ppid: i32,
    pub pgid: i32,
    pub sid: i32,
    pub tpgid: i32,
}

/// Parses a `/proc/<pid>/stat` line. `comm` may hold spaces and parentheses, so it runs from
/// the first `(` to the *last* `)`.
pub fn parse_stat(line: &str) -> Option<Stat> {
    let open = line.find('(')?;
    let close = line.rfind(')')?;
    let pid = line.get(..open)?.trim().parse().ok()?;
    let comm = line.get(open + 1..close)?.to_string();
    let mut rest = line.get(close + 1..)?.split_whitespace();
    let state = rest.next()?.chars().next()?;
    let mut num = || rest.next()?.parse::<i32>().ok();
    let ppid = num()?;
    let pgid = num()?;
    let sid = num()?;
    let _tty_nr = num()?;
    let tpgid = num()?;
    Some(Stat {
        pid,
        comm,
        state,
        ppid,
        pgid,
        sid,
        tpgid,
    })
}

/// The protocol allows no spaces in values: whitespace in a comm becomes `_`.
pub fn comm_for_line(comm: &str) -> String {
    comm.chars()
        .map(|c| if c.is_whitespace() { '_' } else { c })
        .collect()
}

pub fn run(mut args: Args) -> Result<(), Failure> {
    if let Some(extra) = args.next_str()? {
        return Err(unknown(&extra));
    }
    let mut pids: Vec<i32> = std::fs::read_dir("/proc")
        .context("read /proc")?
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    for pid in pids {
        // A process may be gone between the listing and the read: it is simply not shown.
        let Ok(bytes) = std::fs::read(format!("/proc/{pid}/stat")) else {
            continue;
        };
        if let Some(stat) = parse_stat(&String::from_utf8_lossy(&bytes)) {
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
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_plain_stat_line() {
        let line = "42 (sleep) S 1 42 42 0 -1 4194560 104 0 0 0 0 0 0 0 20 0 1 0 123 2342912 128";
        assert_eq!(
            parse_stat(line),
            Some(Stat {
                pid: 42,
                comm: "sleep".into(),
                state: 'S',
                ppid: 1,
                pgid: 42,
                sid: 42,
                tpgid: -1
            })
        );
    }

    #[test]
    fn comm_may_hold_spaces_and_parentheses() {
        let line = "7 (a) b (c)) Z 1 5 5 34816 9 0 0";
        let stat = parse_stat(line).unwrap();
        assert_eq!(stat.comm, "a) b (c)");
        assert_eq!(
            (stat.state, stat.ppid, stat.pgid, stat.sid, stat.tpgid),
            ('Z', 1, 5, 5, 9)
        );
        assert_eq!(comm_for_line(&stat.comm), "a)_b_(c)");
    }

    #[test]
    fn rejects_truncated_lines() {
        assert_eq!(parse_stat(""), None);
        assert_eq!(parse_stat("1 (init"), None);
        assert_eq!(parse_stat("1 (init) S 0"), None);
        assert_eq!(parse_stat("x (init) S 0 1 1 0 -1"), None);
    }
}
