//! The child's stdin and terminal: what `docker run -i` pipes in reaches the child, end of file
//! included, and under `docker run -t` the child reads the terminal and writes to it (tini's and
//! dumb-init's own suites test both: an init sits between Docker's stdin and the program).
//!
//! The child is `testkit stdin`, which says whether its stdin and stdout are terminals, reports
//! every line it reads (`line n=.. len=.. text=..`) and then `eof` with the byte count and a
//! checksum of everything it read, and exits 0. The input goes in through Docker's attach API, as
//! the CLI's `-i` does. Whether the child is the terminal's foreground group, and that nothing
//! spurious reaches it under `-t`, is in `process_lifecycle.rs`.

use std::time::Duration;

use anyhow::Result;

use crate::infrastructure::{scenario, Container, ContainerSpec, Run};
use crate::utils::child_report::{ChildReport, Fact};
use crate::utils::wait::secs;

/// How long the child may take to read what was sent and exit (it takes milliseconds).
const READ_WITHIN: Duration = Duration::from_secs(10);

/// 64-bit FNV-1a, as `testkit stdin` reports it in its `eof` line.
fn fnv1a(bytes: &[u8]) -> String {
    let sum = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{sum:016x}")
}

/// The `(len, text)` of every `line` fact, in order.
fn lines_read(report: &ChildReport) -> Result<Vec<(usize, String)>> {
    report
        .of_kind("line")
        .map(|f| Ok((f.num("len")?, f.get("text").unwrap_or_default().to_string())))
        .collect()
}

/// The child's `stdin` line: whether its stdin and stdout are terminals.
async fn stdio_kind(c: &Container) -> Result<Fact> {
    c.wait_for_fact("stdin", 1, secs(5), |_| true).await
}

/// Data piped into `docker run -i` reaches the child byte for byte and its end is the child's
/// end of file: three short lines, one of 200 000 bytes (more than a pipe holds at once, so the
/// writer waits for the reader) and a last line without a newline. The child then exits 0,
/// and so does the container.
#[scenario]
async fn data_piped_into_the_containers_stdin_reaches_the_child_up_to_end_of_file(
    run: Run,
) -> Result<()> {
    let long = "0123456789".repeat(20_000);
    let input = format!("alpha\nbravo\ncharlie\n{long}\ntail");
    let c = ContainerSpec::new(&run).interactive().child(["testkit", "stdin"]).start().await?;
    let kind = stdio_kind(&c).await?;
    c.write_stdin(input.as_bytes()).await?;
    let exit = c.exit_within(READ_WITHIN, "the end of the piped input").await?;
    let report = c.report().await?;
    let eof = report.of_kind("eof").next().cloned();
    let eof = c.require(eof, "the child never saw the end of its stdin").await?;
    let lines = lines_read(&report)?;
    let expected: Vec<(usize, String)> =
        [(5, "alpha"), (5, "bravo"), (7, "charlie"), (long.len(), &long[..64]), (4, "tail")]
            .into_iter()
            .map(|(len, text)| (len, text.to_string()))
            .collect();
    check_in!(c, kind.get("tty") == Some("false"), "the child's stdin is a terminal: {kind}");
    check_in!(c, lines == expected, "the child read the lines {lines:?}, expected {expected:?}");
    check_in!(
        c,
        eof.get("bytes") == Some(input.len().to_string().as_str())
            && eof.get("fnv1a") == Some(fnv1a(input.as_bytes()).as_str()),
        "the child read `{eof}`, expected bytes={} fnv1a={}",
        input.len(),
        fnv1a(input.as_bytes())
    );
    check_in!(
        c,
        exit.code == 0,
        "exit code {}, expected the child's 0 after end of file",
        exit.code
    );
    Ok(())
}

/// Under `docker run -it` the child reads what is typed at the terminal and writes to it: it
/// reads the line `ping` and then the end of file a ^D at the start of a line means, and its
/// lines reach the terminal (the container's log). A child that is not the terminal's
/// foreground group is stopped by SIGTTIN at its first read instead (tini before 0.8.1,
/// docs/known-bugs.md#tini-19).
#[scenario]
async fn the_child_reads_and_writes_the_terminal_under_docker_run_t(run: Run) -> Result<()> {
    let c =
        ContainerSpec::new(&run).tty().interactive().child(["testkit", "stdin"]).start().await?;
    let kind = stdio_kind(&c).await?;
    c.write_stdin(b"ping\n\x04").await?;
    let exit = c.exited_within(READ_WITHIN).await?;
    let report = c.report().await?;
    let lines = lines_read(&report)?;
    let eof = report.of_kind("eof").next().cloned();
    check_in!(
        c,
        kind.get("tty") == Some("true") && kind.get("stdout_tty") == Some("true"),
        "the child's stdin and stdout are not both the terminal: {kind}"
    );
    check_in!(
        c,
        lines == [(4, "ping".to_string())],
        "the child read the lines {lines:?} from the terminal, expected [(4, \"ping\")]"
    );
    let eof = c.require(eof, "the child never saw the end of file typed at the terminal").await?;
    check_in!(
        c,
        eof.get("bytes") == Some("5"),
        "the child read `{eof}`, expected the 5 bytes of \"ping\\n\""
    );
    let exit = c.require(exit, format_args!("still running {READ_WITHIN:?} after ^D")).await?;
    check_in!(c, exit.code == 0, "exit code {}, expected the child's 0", exit.code);
    Ok(())
}
