//! What a baseline records about when and where it was measured.

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

/// The date, the machine and the tools, as the baseline records them.
pub fn describe() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let field = |text: &str, name: &str| {
        text.lines()
            .find_map(|l| Some(l.strip_prefix(name)?.trim_start().strip_prefix(':')?.trim()))
            .unwrap_or("unknown")
            .to_string()
    };
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    json!({
        "date": utc_now(),
        "machine": {
            "hostname": read_trimmed("/proc/sys/kernel/hostname"),
            "kernel": read_trimmed("/proc/sys/kernel/osrelease"),
            "cpu": field(&cpuinfo, "model name"),
            "cores": cores,
            "memory": field(&meminfo, "MemTotal"),
        },
        "tools": {
            "valgrind": first_line("valgrind", &["--version"]),
            "tini": first_line(crate::static_build::TINI, &["--version"]),
            "scinit_commit": first_line("git", &["describe", "--always", "--dirty"]),
        },
    })
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path).map(|s| s.trim().to_string()).unwrap_or_else(|_| "unknown".into())
}

fn first_line(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .current_dir(crate::static_build::root())
        .output()
        .ok()
        .and_then(|out| String::from_utf8_lossy(&out.stdout).lines().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".into())
}

/// Now, as `2026-12-02T10:41:07Z`.
fn utc_now() -> String {
    let seconds = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    iso8601(seconds)
}

/// Seconds since the epoch as an ISO 8601 UTC time (the civil calendar from days, after Howard
/// Hinnant's `civil_from_days`).
fn iso8601(seconds: u64) -> String {
    let (days, rest) = ((seconds / 86_400) as i64, seconds % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 { shifted_month + 3 } else { shifted_month - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    let (hour, minute, second) = (rest / 3600, rest % 3600 / 60, rest % 60);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_iso_8601_in_utc() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(iso8601(1_796_208_067), "2026-12-02T10:41:07Z");
    }

    #[test]
    fn the_description_names_the_machine() {
        let description = describe();
        assert!(description["machine"]["cores"].as_u64().unwrap() > 0);
        assert!(description["date"].as_str().unwrap().ends_with('Z'));
    }
}
