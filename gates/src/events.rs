//! The `--events` stream: one JSON object per line, each a job's or a gate's event stamped with
//! the time it happened. The runner tells an [`Observer`] the caller passes in when each gate
//! starts and ends; the caller adds the jobs' events (from the runtime) and the Verdict.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use sandbox_runtime::events::JobEvent;

use crate::verdict::{GateResult, GateStatus, Summary, Verdict, VerdictStatus};

/// Everything `--events` reports; `event` names the kind.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A gate's job is starting (a cached gate starts and finishes at once).
    GateStarted { name: String },
    GateFinished {
        name: String,
        status: GateStatus,
        /// Taken from the gate cache.
        cached: bool,
        /// How many findings it reports.
        findings: usize,
        duration_ms: f64,
    },
    /// The last line of a run of the gates: the Verdict's status and counts.
    Verdict {
        status: VerdictStatus,
        summary: Summary,
    },
    /// What happened to a job (`sandbox exec`, the job of `sandbox check`).
    #[serde(untagged)]
    Job(JobEvent),
}

impl Event {
    pub fn gate_finished(result: &GateResult) -> Event {
        Event::GateFinished {
            name: result.name.clone(),
            status: result.status,
            cached: result.cached,
            findings: result.findings.len(),
            duration_ms: result.duration_ms,
        }
    }

    pub fn verdict(verdict: &Verdict) -> Event {
        Event::Verdict {
            status: verdict.status,
            summary: verdict.summary.clone(),
        }
    }
}

/// One line of the stream (`schemas/events.schema.json`).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[schemars(title = "sandbox --events line")]
pub struct EventLine {
    /// When it happened: RFC 3339 in UTC with milliseconds, e.g. `2024-02-29T13:05:09.042Z`
    /// (the audit log's format).
    #[schemars(extend("format" = "date-time"))]
    pub time: String,
    #[serde(flatten)]
    pub event: Event,
}

impl EventLine {
    /// `event`, stamped now.
    pub fn now(event: Event) -> EventLine {
        EventLine {
            time: sandbox_runtime::audit::rfc3339(std::time::SystemTime::now()),
            event,
        }
    }
}

/// Receives the runner's events; called from the thread that runs `Runner::run`.
pub trait Observer {
    fn event(&self, event: Event);
}

/// Nobody watching: the runs `--fix` makes to check a fix are not reported.
pub struct Unobserved;

impl Observer for Unobserved {
    fn event(&self, _: Event) {}
}

/// The JSON Schema of one `--events` line, as committed in `schemas/events.schema.json`.
pub fn events_json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(EventLine)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A job's event and a gate's event read back as what was written: the untagged job
    /// variant does not swallow the gates' kinds, nor they its.
    #[test]
    fn lines_round_trip() {
        let lines = [
            EventLine::now(Event::GateStarted {
                name: "lint".into(),
            }),
            EventLine::now(Event::Job(JobEvent::JobFinished {
                status: sandbox_runtime::Status::Exited,
                exit_code: 3,
            })),
        ];
        for line in lines {
            let text = serde_json::to_string(&line).unwrap();
            assert!(text.contains(r#""time":"#), "{text}");
            let back: EventLine = serde_json::from_str(&text).unwrap();
            assert_eq!(serde_json::to_string(&back).unwrap(), text);
        }
        let value = serde_json::to_value(EventLine::now(Event::GateStarted {
            name: "lint".into(),
        }))
        .unwrap();
        assert_eq!(value["event"], "gate_started");
    }
}
