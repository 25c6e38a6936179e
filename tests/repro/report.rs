//! What the repro prints and writes: a compact table of the key facts of every init side by
//! side, then each init's timeline (its output lines with their times, the process table before
//! each signal, the signals, the end), then Docker's view; and the same as JSON. Pure: the runs
//! are plain values (`main.rs` fills them), so `self_test.rs` can check the parts that parse.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{json, Value};

use crate::args::Event;
use crate::infrastructure::engine::State;
use crate::utils::child_report::Fact;
use crate::Plan;

/// One init's run: its name, its container's command line, and what was seen (or why not).
pub struct InitRun {
    pub label: String,
    pub command: Vec<String>,
    /// Docker's own init (`docker run --init`) goes in front of `command`.
    pub docker_init: bool,
    pub outcome: Result<Observed, String>,
}

pub struct Observed {
    pub lines: Vec<Line>,
    pub sent: Vec<Sent>,
    /// The events after the container's exit: never sent.
    pub unsent: Vec<Event>,
    pub ended: Ended,
    /// The process table at the deadline; `None` when the container exited (when PID 1 exits,
    /// the kernel kills every other process of the container: nothing is left).
    pub at_end: Option<Snapshot>,
    pub docker: State,
}

/// One line the container wrote, `at` after its start on Docker's clock.
pub struct Line {
    pub at: Option<Duration>,
    pub stderr: bool,
    pub text: String,
}

/// One event of the schedule as it went: when it left, the process table just before, and how
/// Docker answered.
pub struct Sent {
    pub event: Event,
    pub at: Duration,
    pub before: Snapshot,
    pub outcome: String,
}

/// The container's process table (`testkit ps` through `docker exec`), `at` after its start.
pub struct Snapshot {
    pub at: Duration,
    pub procs: Result<Vec<Proc>, String>,
    /// Docker's health status then, with a health check.
    pub health: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proc {
    pub pid: i64,
    pub ppid: i64,
    pub pgid: i64,
    pub sid: i64,
    pub state: String,
    pub comm: String,
}

pub enum Ended {
    /// The container exited with `code`, `took` after its start (Docker's StartedAt to
    /// FinishedAt).
    Exited { code: i64, took: Duration },
    /// Still running at the deadline, `at` after its start; removed then.
    Deadline { at: Duration },
}

impl Proc {
    /// The `proc` lines of `testkit ps`, without the line of that `testkit ps` itself (entered by
    /// `docker exec`, so its parent is outside the container: ppid 0).
    pub fn parse_all(lines: &[String]) -> Vec<Proc> {
        lines
            .iter()
            .filter_map(|l| Fact::parse(l))
            .filter(|f| f.kind == "proc")
            .filter_map(|f| {
                Some(Proc {
                    pid: f.num("pid").ok()?,
                    ppid: f.num("ppid").ok()?,
                    pgid: f.num("pgid").ok()?,
                    sid: f.num("sid").ok()?,
                    state: f.get("state")?.to_string(),
                    comm: f.get("comm")?.to_string(),
                })
            })
            .filter(|p| !(p.ppid == 0 && p.comm == "testkit"))
            .collect()
    }

    fn json(&self) -> Value {
        json!({"pid": self.pid, "ppid": self.ppid, "pgid": self.pgid, "sid": self.sid,
               "state": self.state, "comm": self.comm})
    }
}

impl Snapshot {
    /// `3 processes, 1 zombie` (`, healthy` with a health check), or why there is no table.
    fn summary(&self) -> String {
        let health = self.health.as_ref().map_or(String::new(), |h| format!(", {h}"));
        let table = match &self.procs {
            Ok(procs) => {
                let zombies = procs.iter().filter(|p| p.state == "Z").count();
                let (procs, zombies) = (procs.len(), zombies);
                format!(
                    "{}, {}",
                    plural(procs, "process", "processes"),
                    plural(zombies, "zombie", "zombies")
                )
            }
            Err(_) => "no table (see below)".to_string(),
        };
        format!("{table}{health}")
    }

    fn json(&self) -> Value {
        match &self.procs {
            Ok(procs) => json!({"t": secs(self.at), "health": self.health,
                                "processes": procs.iter().map(Proc::json).collect::<Vec<_>>()}),
            Err(e) => json!({"t": secs(self.at), "health": self.health, "error": e}),
        }
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Seconds with millisecond precision, for JSON.
fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

/// The container's command line as `docker run` would show it.
pub fn command_line(run: &InitRun) -> String {
    let init = if run.docker_init { "(docker run --init) " } else { "" };
    format!("{init}{}", run.command.join(" "))
}

/// The whole text report: the header, the table, then each init's detail.
pub fn text(plan: &Plan, runs: &[InitRun]) -> String {
    let mut out = String::new();
    let schedule: Vec<String> = plan.events.iter().map(Event::label).collect();
    let _ = writeln!(out, "\nrepro: {} as the child of each init", plan.script_path);
    let _ = writeln!(
        out,
        "signals: {} · DOCKER_ARGS: {} · a run ends when its container exits, or {:.1} s after \
         its start",
        if schedule.is_empty() { "none".to_string() } else { schedule.join(", ") },
        if plan.docker_args.trim().is_empty() { "none" } else { plan.docker_args.trim() },
        plan.deadline().as_secs_f64()
    );
    out.push('\n');
    out.push_str(&table(plan, runs));
    for run in runs {
        out.push('\n');
        out.push_str(&detail(run));
    }
    out
}

/// The key facts, one column per init.
fn table(plan: &Plan, runs: &[InitRun]) -> String {
    let mut rows: Vec<(String, Vec<String>)> = Vec::new();
    let mut row = |name: &str, cell: &dyn Fn(&Observed) -> String| {
        let cells = runs
            .iter()
            .map(|r| match &r.outcome {
                Ok(o) => cell(o),
                Err(_) => "error".to_string(),
            })
            .collect();
        rows.push((name.to_string(), cells));
    };
    row("exit code", &|o| match o.ended {
        Ended::Exited { code, .. } => code.to_string(),
        Ended::Deadline { .. } => "- (still running)".to_string(),
    });
    row("container ran", &|o| match o.ended {
        Ended::Exited { took, .. } => format!("{:.3} s", took.as_secs_f64()),
        Ended::Deadline { at } => format!("{:.1} s, removed", at.as_secs_f64()),
    });
    for (i, event) in plan.events.iter().enumerate() {
        row(&format!("before {}", event.label()), &|o| match o.sent.get(i) {
            Some(sent) => sent.before.summary(),
            None => "not sent: exited".to_string(),
        });
    }
    row("left at the end", &|o| match &o.at_end {
        Some(snapshot) => snapshot.summary(),
        None => "nothing: exited".to_string(),
    });
    row("output lines", &|o| {
        let stderr = o.lines.iter().filter(|l| l.stderr).count();
        format!("{} ({stderr} stderr)", o.lines.len())
    });
    row("OOMKilled", &|o| o.docker.oom_killed.to_string());
    row("restart count", &|o| o.docker.restart_count.to_string());
    if plan.docker.health_cmd.is_some() {
        // Docker calls every exited container unhealthy: the status that says something is the
        // one read while it ran, in the process-table rows above.
        row("health at the end", &|o| o.docker.health.clone().unwrap_or_else(|| "-".into()));
    }

    let first = rows.iter().map(|(name, _)| name.chars().count()).max().unwrap_or(0);
    let widths: Vec<usize> = runs
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let cells = rows.iter().map(|(_, cells)| cells[i].chars().count());
            cells.chain([r.label.chars().count()]).max().unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    let line = |out: &mut String, name: &str, cells: &[&str]| {
        let _ = write!(out, "{name:first$}");
        for (cell, width) in cells.iter().zip(&widths) {
            let _ = write!(out, "  {cell:width$}");
        }
        out.truncate(out.trim_end().len());
        out.push('\n');
    };
    let labels: Vec<&str> = runs.iter().map(|r| r.label.as_str()).collect();
    line(&mut out, "", &labels);
    for (name, cells) in &rows {
        line(&mut out, name, &cells.iter().map(String::as_str).collect::<Vec<_>>());
    }
    out
}

/// One entry of an init's timeline.
enum Entry<'a> {
    Line(&'a Line),
    Snapshot(&'a Snapshot, String),
    Sent(&'a Sent),
    End(&'a Ended),
}

/// One init's timeline, then Docker's view.
fn detail(run: &InitRun) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "--- {}: {}", run.label, command_line(run));
    let observed = match &run.outcome {
        Ok(o) => o,
        Err(e) => {
            let _ = writeln!(out, "    error: {e}");
            return out;
        }
    };
    let mut entries: Vec<(Duration, Entry)> = Vec::new();
    for line in &observed.lines {
        entries.push((line.at.unwrap_or_default(), Entry::Line(line)));
    }
    for sent in &observed.sent {
        let what = format!("before {}", sent.event.label());
        entries.push((sent.before.at, Entry::Snapshot(&sent.before, what)));
        entries.push((sent.at, Entry::Sent(sent)));
    }
    let end = match observed.ended {
        Ended::Exited { took, .. } => took,
        Ended::Deadline { at } => at,
    };
    entries.push((end, Entry::End(&observed.ended)));
    if let Some(snapshot) = &observed.at_end {
        entries.push((snapshot.at, Entry::Snapshot(snapshot, "at the deadline".into())));
    }
    // Stable: a line and the signal it answers, at the same millisecond, keep their order.
    entries.sort_by_key(|(at, _)| *at);
    for (at, entry) in entries {
        let t = format!("{:9.3}", at.as_secs_f64());
        match entry {
            Entry::Line(line) => {
                let stream = if line.stderr { "err" } else { "out" };
                let _ = writeln!(out, "{t}  {stream}  {}", line.text);
            }
            Entry::Snapshot(snapshot, what) => {
                let _ = writeln!(out, "{t}  ps   {what}: {}", snapshot.summary());
                match &snapshot.procs {
                    Ok(procs) => {
                        let _ = writeln!(
                            out,
                            "{:16}{:>6} {:>6} {:>6} {:>6}  S  COMM",
                            "", "PID", "PPID", "PGID", "SID"
                        );
                        for p in procs {
                            let _ = writeln!(
                                out,
                                "{:16}{:>6} {:>6} {:>6} {:>6}  {}  {}",
                                "", p.pid, p.ppid, p.pgid, p.sid, p.state, p.comm
                            );
                        }
                    }
                    Err(e) => {
                        let _ = writeln!(out, "{:16}{e}", "");
                    }
                }
            }
            Entry::Sent(sent) => {
                let late = sent.at.saturating_sub(sent.event.at).as_secs_f64() * 1000.0;
                let _ = writeln!(
                    out,
                    "{t}  >>   {} ({}, {late:.0} ms late): {}",
                    sent.event.action.docker(),
                    sent.event.label(),
                    sent.outcome
                );
            }
            Entry::End(Ended::Exited { code, .. }) => {
                let _ = writeln!(out, "{t}  ==   exited {code}");
            }
            Entry::End(Ended::Deadline { .. }) => {
                let _ = writeln!(out, "{t}  ==   still running at the deadline: removed");
            }
        }
    }
    for event in &observed.unsent {
        let _ =
            writeln!(out, "{:9}  --   {}: not sent, the container had exited", "", event.label());
    }
    let d = &observed.docker;
    let _ = writeln!(
        out,
        "{:9}  Docker: status {}, exit code {}, OOMKilled {}, restart count {}{}",
        "",
        d.status,
        exit_code(d).map_or("-".to_string(), |c| c.to_string()),
        d.oom_killed,
        d.restart_count,
        d.health.as_ref().map_or(String::new(), |h| format!(", health {h}"))
    );
    out
}

/// Docker's exit code, once there is one (a running container's reads 0).
fn exit_code(state: &State) -> Option<i64> {
    state.exit_code.filter(|_| !state.running)
}

/// The report as JSON.
pub fn json(plan: &Plan, runs: &[InitRun], epoch_secs: u64) -> Value {
    let runs: Vec<Value> = runs
        .iter()
        .map(|run| {
            let mut value = json!({
                "init": run.label,
                "command": run.command,
                "docker_init": run.docker_init,
            });
            match &run.outcome {
                Ok(o) => {
                    let (code, ended, seconds) = match o.ended {
                        Ended::Exited { code, took } => (Some(code), "exited", took),
                        Ended::Deadline { at } => (None, "deadline", at),
                    };
                    let d = &o.docker;
                    value["exit_code"] = json!(code);
                    value["ended"] = json!(ended);
                    value["seconds"] = json!(secs(seconds));
                    value["output"] = o
                        .lines
                        .iter()
                        .map(|l| {
                            json!({"t": l.at.map(secs), "stream": if l.stderr { "stderr" } else { "stdout" }, "text": l.text})
                        })
                        .collect();
                    value["signals"] = o
                        .sent
                        .iter()
                        .map(|s| {
                            json!({
                                "signal": s.event.action.label(),
                                "docker": s.event.action.docker(),
                                "scheduled_s": secs(s.event.at),
                                "sent_s": secs(s.at),
                                "outcome": s.outcome,
                                "processes_before": s.before.json(),
                            })
                        })
                        .collect();
                    value["not_sent"] = o.unsent.iter().map(Event::label).collect();
                    value["processes_at_end"] = o.at_end.as_ref().map_or(Value::Null, Snapshot::json);
                    value["docker"] = json!({
                        "status": d.status,
                        "exit_code": exit_code(d),
                        "oom_killed": d.oom_killed,
                        "restart_count": d.restart_count,
                        "health": d.health,
                        "started_at": d.started_at,
                        "finished_at": d.finished_at.as_ref().filter(|_| !d.running),
                    });
                }
                Err(e) => value["error"] = json!(e),
            }
            value
        })
        .collect();
    json!({
        "time": rfc3339(epoch_secs),
        "script": plan.script_path,
        "inits": plan.init_names,
        "signals": plan.events.iter().map(Event::label).collect::<Vec<_>>(),
        "docker_args": plan.docker_args,
        "timeout_s": secs(plan.timeout),
        "deadline_s": secs(plan.deadline()),
        "runs": runs,
    })
}

/// Nanoseconds since the Unix epoch of an RFC 3339 time as Docker writes them
/// (`2026-05-07T21:09:36.123456789Z`, or with an offset `+02:00`).
pub fn epoch_nanos(text: &str) -> Option<i128> {
    let (date, time) = text.split_once('T')?;
    let mut ymd = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, d) = (ymd.next()??, ymd.next()??, ymd.next()??);
    let zone_at = time.find(['Z', '+', '-'])?;
    let (clock, zone) = time.split_at(zone_at);
    let offset = match zone {
        "Z" => 0,
        _ => {
            let (sign, hm) = zone.split_at(1);
            let (h, min) = hm.split_once(':')?;
            let minutes = h.parse::<i64>().ok()? * 60 + min.parse::<i64>().ok()?;
            if sign == "-" {
                -minutes * 60
            } else {
                minutes * 60
            }
        }
    };
    let (hms, fraction) = clock.split_once('.').unwrap_or((clock, ""));
    let mut parts = hms.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (hh, mm, ss) = (parts.next()??, parts.next()??, parts.next()??);
    if !fraction.bytes().all(|b| b.is_ascii_digit()) || fraction.len() > 9 {
        return None;
    }
    let nanos = format!("{fraction:0<9}").parse::<i128>().ok()?;
    let secs = days_from_civil(y, m, d) * 86_400 + hh * 3600 + mm * 60 + ss - offset;
    Some(i128::from(secs) * 1_000_000_000 + nanos)
}

/// How long after `start` `time` is (both RFC 3339); `None` if either does not parse or `time`
/// is earlier (Docker's zero time for "not yet").
pub fn since(start: &str, time: &str) -> Option<Duration> {
    let nanos = epoch_nanos(time)? - epoch_nanos(start)?;
    u64::try_from(nanos).ok().map(Duration::from_nanos)
}

/// `20261202-111700`: a UTC time for a file name, from seconds since the epoch.
pub fn file_stamp(epoch_secs: u64) -> String {
    let (y, m, d, hh, mm, ss) = utc(epoch_secs);
    format!("{y:04}{m:02}{d:02}-{hh:02}{mm:02}{ss:02}")
}

/// `2026-12-02T11:17:00Z`, from seconds since the epoch.
pub fn rfc3339(epoch_secs: u64) -> String {
    let (y, m, d, hh, mm, ss) = utc(epoch_secs);
    format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z")
}

/// The UTC date and time of seconds since the epoch.
fn utc(epoch_secs: u64) -> (i64, i64, i64, u64, u64, u64) {
    let (days, rest) = (epoch_secs / 86_400, epoch_secs % 86_400);
    let (y, m, d) = civil_from_days(i64::try_from(days).unwrap_or(0));
    (y, m, d, rest / 3600, rest % 3600 / 60, rest % 60)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day since 1970-01-01 (H. Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}
