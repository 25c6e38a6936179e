//! Typed views of the lines the `testkit` helpers print (protocol: `images/README.md`).
//!
//! Scenarios assert on these types, never on raw regexes: a change in the protocol breaks here,
//! once, with a clear message.

use std::collections::BTreeMap;
use std::fmt;

use anyhow::{anyhow, Context, Result};

/// `key=value` pairs of one fact line, after its kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fact {
    pub kind: String,
    fields: BTreeMap<String, String>,
}

impl Fact {
    /// Parses `kind key=value ...`; `None` for lines that are not facts (e.g. the init's logs).
    pub fn parse(line: &str) -> Option<Fact> {
        let mut words = line.split_whitespace();
        let kind = words.next()?;
        if !kind.chars().all(|c| c.is_ascii_lowercase() || c == '-') {
            return None;
        }
        let mut fields = BTreeMap::new();
        for word in words {
            let (key, value) = word.split_once('=')?;
            fields.insert(key.to_string(), value.to_string());
        }
        Some(Fact { kind: kind.to_string(), fields })
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields.get(key).map(String::as_str)
    }

    pub fn num<T: std::str::FromStr>(&self, key: &str) -> Result<T> {
        let raw = self.get(key).ok_or_else(|| anyhow!("`{key}` missing in {self}"))?;
        raw.parse().map_err(|_| anyhow!("`{key}={raw}` is not a number in {self}"))
    }
}

impl fmt::Display for Fact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind)?;
        for (k, v) in &self.fields {
            write!(f, " {k}={v}")?;
        }
        Ok(())
    }
}

/// The handshake every helper prints first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ready {
    pub pid: i32,
    pub ppid: i32,
    pub pgid: i32,
    pub sid: i32,
}

impl Ready {
    pub fn from_fact(fact: &Fact) -> Result<Ready> {
        Ok(Ready {
            pid: fact.num("pid")?,
            ppid: fact.num("ppid")?,
            pgid: fact.num("pgid")?,
            sid: fact.num("sid")?,
        })
    }
}

/// One `signal name=SIGUSR1 num=10 pid=.. sender=.. mono_ns=..` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignalSeen {
    pub name: String,
    pub pid: i32,
    pub mono_ns: u64,
}

/// One `proc pid=.. ppid=.. state=..` line of `testkit ps`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proc {
    pub pid: i32,
    pub ppid: i32,
    pub pgid: i32,
    pub state: String,
    pub comm: String,
}

impl Proc {
    pub fn is_zombie(&self) -> bool {
        self.state == "Z"
    }
}

/// The signals an init sends to stop its child (README "Signals").
const STOP_SIGNALS: [&str; 3] = ["SIGTERM", "SIGINT", "SIGQUIT"];

/// Everything one stream of helper output said, in order.
#[derive(Debug, Clone, Default)]
pub struct ChildReport {
    pub facts: Vec<Fact>,
}

impl ChildReport {
    pub fn parse(lines: &[String]) -> ChildReport {
        ChildReport { facts: lines.iter().filter_map(|l| Fact::parse(l)).collect() }
    }

    pub fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Fact> + 'a {
        self.facts.iter().filter(move |f| f.kind == kind)
    }

    /// Every handshake, in order: one per (re)started child.
    pub fn readies(&self) -> Result<Vec<Ready>> {
        self.of_kind("ready").map(Ready::from_fact).collect()
    }

    /// Every signal line, in order.
    pub fn signals(&self) -> Result<Vec<SignalSeen>> {
        self.of_kind("signal")
            .map(|f| {
                Ok(SignalSeen {
                    name: f.get("name").context("signal line without name")?.to_string(),
                    pid: f.num("pid")?,
                    mono_ns: f.num("mono_ns")?,
                })
            })
            .collect()
    }

    /// Names of the signals seen by process `pid` (or by anyone, for `None`), in order, without
    /// a SIGCONT that comes right after a stop signal to the same process: an init may send it
    /// so that a stopped child can act on the stop signal at all (systemd does; scinit does,
    /// README "Signals"), and it is no signal the init forwarded. [`ChildReport::signals`]
    /// keeps every line.
    pub fn signal_names(&self, pid: Option<i32>) -> Result<Vec<String>> {
        let mut last: BTreeMap<i32, String> = BTreeMap::new();
        let mut names = Vec::new();
        for s in self.signals()?.into_iter().filter(|s| pid.is_none_or(|p| p == s.pid)) {
            let after_stop = last.get(&s.pid).is_some_and(|l| STOP_SIGNALS.contains(&l.as_str()));
            last.insert(s.pid, s.name.clone());
            if !(s.name == "SIGCONT" && after_stop) {
                names.push(s.name);
            }
        }
        Ok(names)
    }

    pub fn processes(&self) -> Result<Vec<Proc>> {
        self.of_kind("proc")
            .map(|f| {
                Ok(Proc {
                    pid: f.num("pid")?,
                    ppid: f.num("ppid")?,
                    pgid: f.num("pgid")?,
                    state: f.get("state").unwrap_or("?").to_string(),
                    comm: f.get("comm").unwrap_or("?").to_string(),
                })
            })
            .collect()
    }
}

/// The inspector's JSON line (`inspect {...}`).
#[derive(Debug, Clone)]
pub struct Inspection {
    pub pid: i64,
    pub pgid: i64,
    /// The terminal's foreground process group (-1 without a controlling terminal).
    pub tpgid: i64,
    pub sigblk: String,
    pub sigign: String,
    pub fds: Vec<i64>,
    pub sockets: Vec<SocketFd>,
    pub cwd: String,
    pub env: serde_json::Map<String, serde_json::Value>,
    pub raw: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketFd {
    pub fd: i64,
    pub inode: u64,
    pub addr: String,
    pub listening: bool,
}

impl Inspection {
    /// Finds the last `inspect {...}` line among `lines`.
    pub fn from_lines(lines: &[String]) -> Result<Inspection> {
        let json = lines
            .iter()
            .rev()
            .find_map(|l| l.strip_prefix("inspect "))
            .context("the inspector printed no `inspect {..}` line")?;
        Inspection::parse(json)
    }

    pub fn parse(json: &str) -> Result<Inspection> {
        let raw: serde_json::Value =
            serde_json::from_str(json).with_context(|| format!("inspector JSON: {json}"))?;
        let int = |k: &str| raw[k].as_i64().with_context(|| format!("`{k}` missing in {json}"));
        let text = |k: &str| {
            raw[k].as_str().map(str::to_string).with_context(|| format!("`{k}` missing in {json}"))
        };
        let fds = raw["fds"]
            .as_array()
            .context("`fds` missing")?
            .iter()
            .filter_map(|f| f["fd"].as_i64())
            .collect();
        let sockets = raw["sockets"]
            .as_array()
            .context("`sockets` missing")?
            .iter()
            .map(|s| SocketFd {
                fd: s["fd"].as_i64().unwrap_or(-1),
                inode: s["inode"].as_u64().unwrap_or(0),
                addr: s["addr"].as_str().unwrap_or("").to_string(),
                listening: s["listening"].as_bool().unwrap_or(false),
            })
            .collect();
        Ok(Inspection {
            pid: int("pid")?,
            pgid: int("pgid")?,
            tpgid: int("tpgid")?,
            sigblk: text("sigblk")?,
            sigign: text("sigign")?,
            fds,
            sockets,
            cwd: text("cwd")?,
            env: raw["env"].as_object().cloned().unwrap_or_default(),
            raw,
        })
    }

    pub fn env(&self, name: &str) -> Option<&str> {
        self.env.get(name).and_then(|v| v.as_str())
    }
}

/// `true` when a `/proc/<pid>/status` signal mask (hex) has no bit set.
pub fn mask_is_empty(hex: &str) -> bool {
    hex.chars().all(|c| c == '0')
}

/// The signal numbers set in a `/proc/<pid>/status` signal mask (hex), for messages.
pub fn signals_in(hex: &str) -> Vec<u32> {
    let bits = u64::from_str_radix(hex, 16).unwrap_or_default();
    (0..64).filter(|bit| bits & (1 << bit) != 0).map(|bit| bit + 1).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_string).collect()
    }

    #[test]
    fn facts_are_parsed_and_foreign_lines_skipped() {
        let report = ChildReport::parse(&lines(
            "ready pid=7 ppid=1 pgid=7 sid=1 cmd=signals\nscinit: warn: x\nsignal name=SIGUSR1 num=10 pid=7 sender=0 mono_ns=42",
        ));
        assert_eq!(report.readies().unwrap(), vec![Ready { pid: 7, ppid: 1, pgid: 7, sid: 1 }]);
        assert_eq!(report.signal_names(Some(7)).unwrap(), vec!["SIGUSR1"]);
        assert!(report.signal_names(Some(8)).unwrap().is_empty());
    }

    #[test]
    fn a_sigcont_right_after_a_stop_signal_is_no_forwarded_signal() {
        let line =
            |name: &str, pid: i32| format!("signal name={name} num=0 pid={pid} sender=1 mono_ns=1");
        let report = ChildReport::parse(&[
            line("SIGCONT", 7),
            line("SIGTERM", 7),
            line("SIGUSR1", 8),
            line("SIGCONT", 7),
            line("SIGCONT", 7),
            line("SIGCONT", 8),
        ]);
        assert_eq!(report.signal_names(Some(7)).unwrap(), ["SIGCONT", "SIGTERM", "SIGCONT"]);
        assert_eq!(report.signal_names(Some(8)).unwrap(), ["SIGUSR1", "SIGCONT"]);
        assert_eq!(report.signals().unwrap().len(), 6);
    }

    #[test]
    fn inspector_json_is_read() {
        let json = r#"{"pid":7,"ppid":1,"pgid":7,"sid":1,"tpgid":-1,"sigblk":"0000000000000000","sigign":"0000000000000000","sigcgt":"0","fds":[{"fd":0,"target":"/dev/null"},{"fd":3,"target":"socket:[99]"}],"sockets":[{"fd":3,"inode":99,"addr":"0.0.0.0:8080","listening":true}],"cwd":"/","uid":0,"env":{"LISTEN_FDS":"1"}}"#;
        let i = Inspection::from_lines(&lines(&format!("ready pid=7\ninspect {json}"))).unwrap();
        assert_eq!(i.fds, vec![0, 3]);
        assert_eq!(i.sockets[0].inode, 99);
        assert_eq!(i.env("LISTEN_FDS"), Some("1"));
        assert!(mask_is_empty(&i.sigblk));
        assert!(!mask_is_empty("0000000000001000"));
        assert_eq!(signals_in("0000000000001000"), [13]);
    }
}
