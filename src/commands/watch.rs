//! Who watches a run: one observer per run hears the job's events from the runtime and the
//! gates' from the runner, and writes them on stderr as JSON lines (`--events`), draws a
//! progress display (stderr is a terminal), or stays silent (anything else: a caller that
//! reads our stderr gets what it got before).

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use sandbox_gates::config::ProjectConfig;
use sandbox_gates::events::{Event, EventLine, Observer};
use sandbox_gates::runner::Selection;
use sandbox_gates::Verdict;
use sandbox_runtime::events::{JobEvent, JobObserver};

pub enum Watcher {
    Quiet,
    /// `--events`: every event as one line of JSON.
    Events,
    /// A terminal: a bar over the gates with the running ones named, a line per finished gate.
    Progress {
        bar: ProgressBar,
        running: Mutex<Vec<String>>,
    },
}

impl Watcher {
    /// For the gates `selection` picks from `config`.
    pub fn for_gates(events: bool, config: &ProjectConfig, selection: &Selection) -> Watcher {
        if events {
            return Watcher::Events;
        }
        if !std::io::stderr().is_terminal() {
            return Watcher::Quiet;
        }
        let gates = config
            .gates
            .iter()
            .filter(|gate| selection.picks(&gate.name))
            .count();
        let bar = ProgressBar::new(gates as u64);
        let style = ProgressStyle::with_template(
            "{spinner} gates {pos}/{len} [{elapsed_precise}] {wide_msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
        bar.set_style(style);
        Watcher::Progress {
            bar,
            running: Mutex::new(Vec::new()),
        }
    }

    /// The run is over: the last event, or the display cleared.
    pub fn verdict(&self, verdict: &Verdict) {
        self.event(Event::verdict(verdict));
    }
}

impl Observer for Watcher {
    fn event(&self, event: Event) {
        match self {
            Watcher::Quiet => {}
            Watcher::Events => write_line(&EventLine::now(event)),
            Watcher::Progress { bar, running } => {
                if let Ok(mut running) = running.lock() {
                    show(bar, &mut running, event);
                }
            }
        }
    }
}

impl JobObserver for Watcher {
    fn job_event(&self, event: JobEvent) {
        Observer::event(self, Event::Job(event));
    }
}

impl Drop for Watcher {
    /// A run that ends without a Verdict (an error) leaves no half-drawn display behind.
    fn drop(&mut self) {
        if let Watcher::Progress { bar, .. } = self {
            bar.finish_and_clear();
        }
    }
}

/// One write per line, so that no other writer to our stderr can split it; a closed stderr is
/// not the job's problem.
fn write_line(line: &EventLine) {
    if let Ok(mut text) = serde_json::to_string(line) {
        text.push('\n');
        let _ = std::io::stderr().lock().write_all(text.as_bytes());
    }
}

fn show(bar: &ProgressBar, running: &mut Vec<String>, event: Event) {
    match event {
        Event::GateStarted { name } => {
            // The ticking thread starts with the first gate, never earlier: `check` runs its job
            // in this process before, and the native backend forks, which a process with a
            // second thread must not do (and that thread would not have the job's signals
            // blocked).
            if running.is_empty() && bar.position() == 0 {
                bar.enable_steady_tick(Duration::from_millis(120));
            }
            running.push(name);
        }
        Event::GateFinished {
            name,
            status,
            cached,
            findings,
            duration_ms,
        } => {
            running.retain(|gate| *gate != name);
            bar.println(format!(
                "{:>7} {name} ({findings} finding(s), {:.1}s{})",
                word(status),
                duration_ms / 1000.0,
                if cached { ", cached" } else { "" }
            ));
            bar.inc(1);
        }
        Event::Verdict { .. } => {
            bar.finish_and_clear();
            return;
        }
        Event::Job(JobEvent::JobStarted { command, .. }) => {
            bar.set_message(format!("job: {}", command.join(" ")));
            return;
        }
        Event::Job(JobEvent::JobFinished { status, exit_code }) => {
            bar.println(format!("    job {} (exit {exit_code})", word(status)));
        }
        Event::Job(_) => return,
    }
    bar.set_message(running.join(", "));
}

/// A status as the JSON names it.
fn word(status: impl serde::Serialize) -> String {
    serde_json::to_value(status)
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_default()
}
