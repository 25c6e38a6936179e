//! `cargo test --test repro -- --self-test` (part of `make unit-test`): the checks of the repro's
//! pure parts, the command line, SIGNALS, DOCKER_ARGS, TIMEOUT, `testkit ps` lines and Docker's
//! times. This target has no test harness (it is a program, like `make bench`'s), so `#[test]`
//! functions would never run here; the checks run as the program's own mode instead, which keeps
//! them beside the code they check without compiling the repro into the suite's binary. One line
//! per failed check, then a count; exit 1 if any failed.

use std::fmt::Debug;
use std::process::ExitCode;
use std::time::Duration;

use crate::args::{self, Action, Command, DockerArgs, Event, Input};
use crate::report::{self, Proc};

#[derive(Default)]
struct Checks {
    run: usize,
    failed: usize,
}

impl Checks {
    fn eq<T: PartialEq + Debug>(&mut self, what: &str, got: T, want: T) {
        self.run += 1;
        if got != want {
            self.failed += 1;
            println!("FAILED {what}: got {got:?}, expected {want:?}");
        }
    }

    /// `got` is an error whose message contains every one of `words`.
    fn err<T: Debug>(&mut self, what: &str, got: Result<T, String>, words: &[&str]) {
        self.run += 1;
        let missing = match &got {
            Ok(_) => true,
            Err(e) => words.iter().any(|w| !e.contains(w)) || e.contains('\n'),
        };
        if missing {
            self.failed += 1;
            println!("FAILED {what}: got {got:?}, expected one line naming {words:?}");
        }
    }
}

pub fn run() -> ExitCode {
    let mut c = Checks::default();
    command_line(&mut c);
    signals(&mut c);
    times_and_inits(&mut c);
    docker_args(&mut c);
    process_table(&mut c);
    docker_times(&mut c);
    println!("repro self-test: {} of {} checks passed", c.run - c.failed, c.run);
    if c.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn strings(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

fn command_line(c: &mut Checks) {
    c.eq("no arguments", args::command(&[]), Ok(Command::Nothing));
    c.eq("--self-test", args::command(&strings(&["--self-test"])), Ok(Command::SelfTest));
    c.eq("a runner's --list", args::command(&strings(&["--list", "--format"])), Ok(Command::List));
    let given = args::command(&strings(&[
        "--script",
        "x.sh",
        "--inits=tini scinit",
        "--signals",
        "TERM@1s",
        "--docker-args",
        "",
        "--timeout",
        "5",
    ]));
    let want = Input {
        script: "x.sh".into(),
        inits: "tini scinit".into(),
        signals: "TERM@1s".into(),
        docker_args: String::new(),
        timeout: "5".into(),
    };
    c.eq("every option, both forms", given, Ok(Command::Repro(want)));
    c.err("an unknown option", args::command(&strings(&["--scrpt", "x"])), &["--scrpt", "usage"]);
    c.err("an option without its value", args::command(&strings(&["--script"])), &["--script"]);
}

fn kill(signal: &str, at_ms: u64) -> Event {
    Event { at: Duration::from_millis(at_ms), action: Action::Kill(signal.into()) }
}

fn signals(c: &mut Checks) {
    c.eq(
        "the issue's example",
        args::signals("TERM@1s,KILL@12s"),
        Ok(vec![kill("SIGTERM", 1000), kill("SIGKILL", 12_000)]),
    );
    c.eq(
        "spellings, spaces and time order",
        args::signals(" sigint@1.5s , 15@250ms,RTMIN+3@0, SIGRTMAX-1@2"),
        Ok(vec![
            kill("SIGRTMIN+3", 0),
            kill("15", 250),
            kill("SIGINT", 1500),
            kill("SIGRTMAX-1", 2000),
        ]),
    );
    c.eq("none", args::signals(""), Ok(vec![]));
    let stop = |secs, at_ms| Event {
        at: Duration::from_millis(at_ms),
        action: Action::Stop(Duration::from_secs(secs)),
    };
    c.eq(
        "STOP is docker stop, SIGSTOP the signal",
        args::signals("STOP@2s,STOP:3@4s,SIGSTOP@5s,19@6s"),
        Ok(vec![stop(10, 2000), stop(3, 4000), kill("SIGSTOP", 5000), kill("19", 6000)]),
    );
    c.eq("labels", kill("SIGTERM", 1500).label(), "SIGTERM@1.5s".to_string());
    c.eq("a stop's label", stop(3, 0).label(), "STOP:3@0s".to_string());
    c.eq("a stop's command", stop(3, 0).action.docker(), "docker stop -t 3".to_string());
    c.err("no time", args::signals("TERM"), &["SIGNALS", "`TERM`", "@TIME"]);
    c.err("no signal", args::signals("@1s"), &["SIGNALS", "no signal"]);
    c.err("an unknown name", args::signals("TERM@1s,FOO@2s"), &["`FOO@2s`", "no signal"]);
    c.err("number 0", args::signals("0@1s"), &["1-64"]);
    c.err("number 65", args::signals("65@1s"), &["1-64"]);
    c.err("RTMIN+16", args::signals("RTMIN+16@1s"), &["RTMIN", "number"]);
    c.err("a negative time", args::signals("TERM@-1s"), &["`-1s`"]);
    c.err("an unknown unit", args::signals("TERM@1m"), &["`1m`"]);
    c.err("too late", args::signals("TERM@3601s"), &["hour"]);
    c.err("a stop's fraction", args::signals("STOP:1.5@1s"), &["whole seconds"]);
}

fn times_and_inits(c: &mut Checks) {
    c.eq("plain seconds", args::duration("2"), Ok(Duration::from_secs(2)));
    c.eq("milliseconds", args::duration("250ms"), Ok(Duration::from_millis(250)));
    c.eq("a fraction", args::duration("0.5s"), Ok(Duration::from_millis(500)));
    c.err("no number", args::duration("s"), &["no time"]);
    c.eq("TIMEOUT's default", args::timeout(" "), Ok(args::DEFAULT_TIMEOUT));
    c.err("a bad TIMEOUT", args::timeout("soon"), &["TIMEOUT", "`soon`"]);
    c.eq(
        "INITS: spaces, commas, each once",
        args::inits("tini scinit,tini  dumb-init"),
        strings(&["tini", "scinit", "dumb-init"]),
    );
}

fn docker_args(c: &mut Checks) {
    c.eq(
        "shell words",
        args::shell_words(r#"-e 'A=x y' --env="B=\"q\"" C\ D"#),
        Ok(strings(&["-e", "A=x y", "--env=B=\"q\"", "C D"])),
    );
    c.err("an open quote", args::shell_words("-e 'A=x"), &["not closed"]);
    let all = args::docker_args(
        "-e A=1 --env=B=x=y --memory 64m --pids-limit=32 -t --network host \
         --health-cmd 'testkit ps >/dev/null' --health-interval 500ms",
    );
    c.eq(
        "every supported option",
        all,
        Ok(DockerArgs {
            env: vec![("A".into(), "1".into()), ("B".into(), "x=y".into())],
            memory_bytes: Some(64 << 20),
            pids_limit: Some(32),
            tty: true,
            host_network: true,
            health_cmd: Some("testkit ps >/dev/null".into()),
            health_interval: Some(Duration::from_millis(500)),
        }),
    );
    c.eq("none", args::docker_args(""), Ok(DockerArgs::default()));
    c.eq("-m in g", args::docker_args("-m 1g").map(|d| d.memory_bytes), Ok(Some(1 << 30)));
    c.eq(
        "--memory in kb",
        args::docker_args("--memory=512kb").map(|d| d.memory_bytes),
        Ok(Some(512 << 10)),
    );
    let supported = args::SUPPORTED_DOCKER_ARGS;
    c.err(
        "an unsupported option",
        args::docker_args("--privileged"),
        &["`--privileged`", supported],
    );
    c.err("--user", args::docker_args("--user 1000"), &["`--user`", supported]);
    c.err("-e without a value", args::docker_args("-e"), &["`-e`", "K=V"]);
    c.err("-e without =", args::docker_args("-e A"), &["`A`", "K=V"]);
    c.err("a bad size", args::docker_args("--memory 12q"), &["`12q`"]);
    c.err("a bad pids limit", args::docker_args("--pids-limit 0"), &["`0`"]);
    c.err("another network", args::docker_args("--network none"), &["`none`", "host"]);
    c.err("an interval alone", args::docker_args("--health-interval 1s"), &["--health-cmd"]);
}

fn process_table(c: &mut Checks) {
    let lines = strings(&[
        "proc pid=1 ppid=0 pgid=1 sid=1 state=S comm=init",
        "proc pid=7 ppid=1 pgid=7 sid=7 state=Z comm=sh",
        "proc pid=9 ppid=0 pgid=9 sid=9 state=R comm=testkit",
        "not a proc line",
    ]);
    let procs = Proc::parse_all(&lines);
    let pids: Vec<i64> = procs.iter().map(|p| p.pid).collect();
    c.eq("ps lines without the ps itself", pids, vec![1, 7]);
    c.eq("a zombie's state", procs.get(1).map(|p| p.state.as_str()), Some("Z"));
}

fn docker_times(c: &mut Checks) {
    let start = "2026-05-07T21:09:36.123456789Z";
    c.eq("the epoch", report::epoch_nanos("1970-01-01T00:00:00Z"), Some(0));
    c.eq(
        "a leap day",
        report::epoch_nanos("2024-02-29T00:00:00Z"),
        Some(1_709_164_800 * 1_000_000_000),
    );
    c.eq(
        "a line 1.5 s after the start",
        report::since(start, "2026-05-07T21:09:37.623456789Z"),
        Some(Duration::from_millis(1500)),
    );
    c.eq(
        "an offset and a short fraction",
        report::since(start, "2026-05-07T23:09:37.2+02:00"),
        Some(Duration::from_nanos(1_076_543_211)),
    );
    c.eq("Docker's zero time is no time", report::since(start, "0001-01-01T00:00:00Z"), None);
    c.eq("garbage", report::epoch_nanos("yesterday"), None);
    c.eq("a file stamp", report::file_stamp(1_709_164_800 + 3723), "20240229-010203".to_string());
    c.eq("a time", report::rfc3339(1_709_164_800 + 3723), "2024-02-29T01:02:03Z".to_string());
}
