//! What happens to a job while it runs, told to whoever the caller asked to watch (`--events`):
//! the backend that was chosen, output dropped at the capture limit, each decision of the
//! egress proxy, how the job ended. The observer travels in the `JobSpec`, so nothing is global
//! and a job nobody watches pays nothing.

use std::fmt;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::outcome::{Outcome, Status};
use crate::output::Stream;
use crate::secrets::Redactor;
use crate::SandboxError;

/// One thing that happened to a job; `event` names the kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum JobEvent {
    /// The backend is chosen and the job is about to start.
    JobStarted {
        /// `native` or `docker`.
        backend: String,
        profile: String,
        command: Vec<String>,
    },
    /// The captured output reached `limits.output` (shared by both streams) on this stream:
    /// the rest of it is dropped, the job runs on. At most once per stream.
    OutputTruncated {
        stream: Stream,
        /// `limits.output`, in bytes.
        limit: u64,
    },
    /// The egress proxy decided on a connection attempt (allowlist mode), before connecting.
    NetworkDecision {
        host: String,
        port: u16,
        allowed: bool,
        /// The rule that decided, when one did.
        rule: Option<String>,
    },
    /// The job is over: its Outcome's status and exit code, or `sandbox_error` with what
    /// `sandbox exec` exits with when the sandbox itself failed.
    JobFinished { status: Status, exit_code: i32 },
}

/// Receives a job's events as they happen, from whichever thread sees them (the output
/// readers, the proxy, the caller's).
pub trait JobObserver: Send + Sync {
    fn job_event(&self, event: JobEvent);
}

/// The observer a job reports to, if any, with the job's redactor in front of it: an event
/// never carries a secret's value, like everything else we print.
#[derive(Clone, Default)]
pub struct Observer(Option<Watching>);

#[derive(Clone)]
struct Watching {
    sink: Arc<dyn JobObserver>,
    redactor: Redactor,
}

impl Observer {
    pub fn new(sink: Arc<dyn JobObserver>, redactor: Redactor) -> Observer {
        Observer(Some(Watching { sink, redactor }))
    }

    pub fn emit(&self, event: JobEvent) {
        if let Some(watching) = &self.0 {
            watching.sink.job_event(event.redacted(&watching.redactor));
        }
    }

    pub(crate) fn finished(&self, outcome: &Outcome) {
        self.emit(JobEvent::JobFinished {
            status: outcome.status,
            exit_code: outcome.exit_code,
        });
    }

    pub(crate) fn failed(&self, error: &SandboxError) {
        self.emit(JobEvent::JobFinished {
            status: Status::SandboxError,
            exit_code: error.exit_code(),
        });
    }
}

impl fmt::Debug for Observer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.0 {
            Some(_) => "Observer(watching)",
            None => "Observer(none)",
        })
    }
}

impl JobEvent {
    /// The event with every text a job could have put a secret into redacted.
    fn redacted(self, redactor: &Redactor) -> JobEvent {
        if redactor.is_empty() {
            return self;
        }
        let clean = |text: String| redactor.redact_str(&text).0;
        match self {
            JobEvent::JobStarted {
                backend,
                profile,
                command,
            } => JobEvent::JobStarted {
                backend,
                profile: clean(profile),
                command: command.into_iter().map(clean).collect(),
            },
            JobEvent::NetworkDecision {
                host,
                port,
                allowed,
                rule,
            } => JobEvent::NetworkDecision {
                host: clean(host),
                port,
                allowed,
                rule: rule.map(clean),
            },
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::secrets::Secret;

    #[derive(Default)]
    struct Seen(Mutex<Vec<JobEvent>>);

    impl JobObserver for Seen {
        fn job_event(&self, event: JobEvent) {
            self.0.lock().unwrap().push(event);
        }
    }

    #[test]
    fn events_never_carry_a_secrets_value() {
        std::env::set_var("SANDBOX_EVENTS_TEST_TOKEN", "hunter2-events-secret");
        let secret = Secret::resolve("TOKEN", "env:SANDBOX_EVENTS_TEST_TOKEN", "env").unwrap();
        let seen = Arc::new(Seen::default());
        let observer = Observer::new(seen.clone(), Redactor::new(&[secret]));
        observer.emit(JobEvent::JobStarted {
            backend: "native".into(),
            profile: "strict".into(),
            command: vec![
                "curl".into(),
                "-H".into(),
                "auth: hunter2-events-secret".into(),
            ],
        });
        observer.emit(JobEvent::NetworkDecision {
            host: "hunter2-events-secret.example.com".into(),
            port: 443,
            allowed: false,
            rule: None,
        });
        let text = serde_json::to_string(&*seen.0.lock().unwrap()).unwrap();
        assert!(!text.contains("hunter2"), "{text}");
        assert_eq!(text.matches("[REDACTED:TOKEN]").count(), 2, "{text}");
    }

    #[test]
    fn events_name_their_kind_in_snake_case() {
        let event = JobEvent::OutputTruncated {
            stream: Stream::Stderr,
            limit: 1024,
        };
        assert_eq!(
            serde_json::to_value(&event).unwrap(),
            serde_json::json!({"event": "output_truncated", "stream": "stderr", "limit": 1024})
        );
    }
}
