//! Progress on the terminal: a benchmark takes minutes, so every step says where it is. On a
//! terminal one line is redrawn as samples come in (at most ten times a second); otherwise (a CI
//! log, a pipe) each step prints one line when it ends.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often the live line is redrawn at most.
const REDRAW: Duration = Duration::from_millis(100);

pub struct Progress {
    terminal: bool,
    began: Instant,
    steps: usize,
    state: Mutex<Step>,
}

#[derive(Default)]
struct Step {
    number: usize,
    label: String,
    of: usize,
    unit: &'static str,
    began: Option<Instant>,
    drawn: Option<Instant>,
}

impl Progress {
    pub fn new(steps: usize) -> Progress {
        Progress {
            terminal: std::io::stderr().is_terminal(),
            began: Instant::now(),
            steps,
            state: Mutex::default(),
        }
    }

    /// A new step, `label`, that will take `of` samples counted in `unit`.
    pub fn begin(&self, label: String, of: usize, unit: &'static str) {
        if let Ok(mut step) = self.state.lock() {
            let number = step.number + 1;
            *step = Step { number, label, of, unit, began: Some(Instant::now()), drawn: None };
            self.draw(&mut step, 0);
        }
    }

    /// `done` samples of the current step are taken.
    pub fn tick(&self, done: usize) {
        if let Ok(mut step) = self.state.lock() {
            if step.drawn.is_none_or(|at| at.elapsed() >= REDRAW) {
                self.draw(&mut step, done);
            }
        }
    }

    /// The current step ended, well or with `error`.
    pub fn end(&self, error: Option<&str>) {
        let Ok(step) = self.state.lock() else { return };
        let took = step.began.map_or(0.0, |b| b.elapsed().as_secs_f64());
        let outcome = match error {
            None => format!("{} {} in {took:.1} s", step.of, step.unit),
            Some(e) => format!("FAILED after {took:.1} s: {}", e.lines().next().unwrap_or("")),
        };
        clear_line(self.terminal);
        eprintln!("{}  {outcome}  [{}]", self.prefix(&step), clock(self.began.elapsed()));
    }

    fn prefix(&self, step: &Step) -> String {
        format!("bench [{:>2}/{}] {:<34}", step.number, self.steps, step.label)
    }

    fn draw(&self, step: &mut Step, done: usize) {
        if !self.terminal {
            return;
        }
        step.drawn = Some(Instant::now());
        let line = format!(
            "{}  {done}/{} {}  [{}]",
            self.prefix(step),
            step.of,
            step.unit,
            clock(self.began.elapsed())
        );
        clear_line(true);
        eprint!("{line}");
        let _ = std::io::stderr().flush();
    }
}

/// Wipes the live line, so that whatever is printed next starts on a clean line.
pub fn clear_line(terminal: bool) {
    if terminal {
        eprint!("\r\x1b[2K");
    }
}

/// `m:ss` since the benchmark began.
fn clock(elapsed: Duration) -> String {
    let s = elapsed.as_secs();
    format!("{}:{:02}", s / 60, s % 60)
}
