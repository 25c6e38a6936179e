//! Live reload (`--live-reload --watch-path P --debounce-ms D`, README "Live reload"): a change in
//! the watched path restarts the child on the same sockets, once per quiet period (trailing
//! debounce), and the restarted child sees the *last* write. The file is watched through its
//! directory, so an atomic replace (write a temporary, rename it over the file) is seen, and so
//! is every later change to the new file.
//!
//! The child prints the watched file before it becomes the echo server
//! (`sh -c 'cat conf; exec testkit echo'`), so each restart says which content it started
//! with; a host-side load runs throughout and must see no failed request. scinit-only: `n/a`
//! for the other inits (no file watcher, no restart).

use std::time::Duration;

use anyhow::Result;

use crate::figures::restart;
use crate::infrastructure::probe::published;
use crate::infrastructure::{scenario, Container, ContainerSpec, Follower, Run};
use crate::performance::load::{bounded_load, record_restarts};
use crate::utils::wait::secs;

const WATCHED: &str = "/tmp/watched/conf";
const DEBOUNCE: Duration = Duration::from_millis(400);
/// How long a restarted child may take to print its handshake (generous: 2 shared cores).
const RESTART_WITHIN: Duration = Duration::from_secs(10);

/// One change to the watched file, made inside the container, and the content the restarted
/// child must print.
struct Change {
    what: &'static str,
    script: &'static str,
    version: &'static str,
}

/// Atomic replace first, then a touch of the replacing file (a watch left on the old inode
/// would miss it), then twelve writes 80 ms apart: the burst lasts longer than one debounce
/// period, so a debounce counted from the *first* change restarts in its middle, while no gap
/// comes near it (a trailing debounce restarts once, after the last write, even if the writing
/// shell is delayed by up to 300 ms).
const CHANGES: [Change; 3] = [
    Change {
        what: "an atomic replace",
        script: "printf 'conf version=1\\n' > /tmp/watched/conf.tmp \
            && mv /tmp/watched/conf.tmp /tmp/watched/conf",
        version: "1",
    },
    Change { what: "a touch", script: "touch /tmp/watched/conf", version: "1" },
    Change {
        what: "a burst of 12 writes",
        script: "for i in 2 3 4 5 6 7 8 9 10 11 12 13; do \
            printf 'conf version=%s\\n' $i > /tmp/watched/conf; usleep 80000; done",
        version: "13",
    },
];

/// Each change restarts the child exactly once, after the quiet period, with the last
/// content; the sockets stay, so the load sees no failed request.
#[scenario(needs(Ports, LiveReload))]
async fn file_changes_restart_the_child_once_per_quiet_period_with_the_last_write_and_no_failed_request(
    run: Run,
) -> Result<()> {
    let c = ContainerSpec::new(&run)
        .with_ports([8080])
        .with_file(WATCHED, "conf version=0\n")
        .live_reload(WATCHED, DEBOUNCE)
        .child(["sh", "-c", "cat /tmp/watched/conf; exec testkit echo"])
        .start()
        .await?;
    let mut follower = c.follow();
    let first = c.next_ready(&mut follower, RESTART_WITHIN, "start").await?;
    let load = bounded_load(published(c.host_port(8080).await?)?).start();
    let serving = load.wait_for_pid(first.pid, secs(10)).await;
    check_ok!(c, serving, "the first child never answered the load");

    let started = std::time::Instant::now();
    let mut pids = vec![first.pid];
    for step in &CHANGES {
        c.sh(step.script).await?;
        let printed = follower.next_fact("conf", secs(10), |_| true).await;
        let printed = check_ok!(c, printed, "no restart after {}", step.what);
        check_in!(
            c,
            printed.get("version") == Some(step.version),
            "the first restart after {} started with `{printed}`, expected version={} \
             (the last write)",
            step.what,
            step.version
        );
        let pid = c.next_ready(&mut follower, RESTART_WITHIN, step.what).await?.pid;
        pids.push(pid);
        let answered = load.wait_for_pid(pid, secs(10)).await;
        check_ok!(c, answered, "the child restarted after {} never answered", step.what);
    }
    let elapsed = started.elapsed();
    // The quiet period after the last change: two debounce periods without a restart.
    let extra = follower.next_fact("ready", 2 * DEBOUNCE, |_| true).await;
    let timeline = load.stop().await?;
    // A file change restarts the child the default way: the old one stops first.
    record_restarts(&run, restart::kind::STOP_FIRST, CHANGES.len(), &timeline, elapsed);

    let extra = extra.ok().map(|f| f.to_string());
    check_in!(c, extra.is_none(), "an extra restart after the last change had settled: {extra:?}");
    let readies = c.report().await?.readies()?.len();
    let changes = CHANGES.len();
    check_in!(
        c,
        readies == changes + 1,
        "{readies} children started for {changes} changes, expected one each"
    );
    check_in!(
        c,
        timeline.failures().is_empty(),
        "requests failed during live reloads: {}",
        timeline.summary()
    );
    let answered: Vec<i32> = timeline.pids();
    check_in!(
        c,
        answered.iter().all(|p| pids.contains(p)),
        "replies from {answered:?}, children were {pids:?}"
    );
    check_in!(c, c.state().await?.running, "the container stopped during live reloads");
    Ok(())
}

/// A watched directory (not a file): every change anywhere below it counts.
const TREE: &str = "/tmp/tree";

/// Starts `testkit signals` watched through the whole [`TREE`] directory, which holds `files`
/// from the start; returns the container and a follower past the first child's handshake.
async fn watching_tree(run: &Run, files: &[&str]) -> Result<(Container, Follower)> {
    let mut scenario =
        ContainerSpec::new(run).live_reload(TREE, DEBOUNCE).child(["testkit", "signals"]);
    for file in files {
        scenario = scenario.with_file(file, "version=0\n");
    }
    let c = scenario.start().await?;
    let mut follower = c.follow();
    c.next_ready(&mut follower, RESTART_WITHIN, "start").await?;
    Ok((c, follower))
}

/// Makes `what` happen inside the container and requires exactly one restart for it: a new
/// child, then no other one for two debounce periods.
async fn restarts_once(
    c: &Container,
    follower: &mut Follower,
    what: &str,
    script: &str,
) -> Result<()> {
    c.sh(script).await?;
    c.next_ready(follower, RESTART_WITHIN, what).await?;
    let extra =
        follower.next_fact("ready", 2 * DEBOUNCE, |_| true).await.ok().map(|f| f.to_string());
    check_in!(c, extra.is_none(), "a second restart after {what}: {extra:?}");
    Ok(())
}

/// Where a change under the watched directory happens.
struct TreeCase {
    /// Files present in [`TREE`] from the start.
    files: &'static [&'static str],
    /// Changes made in order, each of which must restart the child exactly once.
    steps: &'static [(&'static str, &'static str)],
}

async fn tree_case(run: Run, case: TreeCase) -> Result<()> {
    let (c, mut follower) = watching_tree(&run, case.files).await?;
    for (what, script) in case.steps {
        restarts_once(&c, &mut follower, what, script).await?;
    }
    let readies = c.report().await?.readies()?.len();
    let expected = case.steps.len() + 1;
    check_in!(
        c,
        readies == expected,
        "{readies} children started, expected {expected} (the first and one per change)"
    );
    check_in!(c, c.state().await?.running, "the container stopped during live reloads");
    Ok(())
}

scenario_table! {
    tree_case needs(LiveReload);
    /// A watched directory is watched with its subdirectories: a write two levels down
    /// restarts the child once. An init that watches only the top directory misses it.
    a_write_in_a_subdirectory_of_a_watched_directory_restarts_the_child_once => TreeCase {
        files: &["/tmp/tree/sub/deeper/conf"],
        steps: &[(
            "a write in a subdirectory",
            "printf 'version=1\\n' > /tmp/tree/sub/deeper/conf",
        )],
    },
    /// A directory created after start is watched too: its creation is a change (one restart),
    /// and so is, later, a write inside it. An init that watches only the directories that
    /// existed at start misses the write.
    a_write_in_a_directory_created_after_start_restarts_the_child_once => TreeCase {
        files: &["/tmp/tree/conf"],
        steps: &[
            ("the creation of a directory", "mkdir /tmp/tree/later"),
            ("a write in the new directory", "printf 'version=1\\n' > /tmp/tree/later/conf"),
        ],
    },
}

/// Writes to `.git` and to editor temporaries, the names scinit ignores (README "Live reload").
const IGNORED_WRITES: &str = "cd /tmp/tree && printf x > .git/HEAD && mkdir .git/refs \
    && printf x > .git/refs/main && printf x > conf.swp && printf x > .conf.swx \
    && printf x > conf~ && printf x > .#conf && printf x > 4913 && rm 4913";

/// Writes to `.git/` (present from the start), `*.swp`, `*.swx`, `*~`, `.#*` and vim's
/// `4913` probe restart nothing, even after the debounce period and a second more; a real
/// write afterwards restarts the child exactly once. An init that does not filter these
/// names restarts the child on every `git commit` or editor save.
#[scenario(needs(LiveReload))]
async fn writes_to_git_metadata_and_editor_temporaries_do_not_restart_the_child(
    run: Run,
) -> Result<()> {
    let (c, mut follower) = watching_tree(&run, &["/tmp/tree/conf", "/tmp/tree/.git/HEAD"]).await?;
    c.sh(IGNORED_WRITES).await?;
    let spurious =
        follower.next_fact("ready", DEBOUNCE + secs(1), |_| true).await.ok().map(|f| f.to_string());
    check_in!(c, spurious.is_none(), "writes to ignored names restarted the child: {spurious:?}");
    restarts_once(
        &c,
        &mut follower,
        "a write to the watched file",
        "printf 'version=1\\n' > /tmp/tree/conf",
    )
    .await?;
    let readies = c.report().await?.readies()?.len();
    check_in!(
        c,
        readies == 2,
        "{readies} children started, expected 2 (the first and one for the real write)"
    );
    Ok(())
}
