//! Where a job's stdout and stderr go, for every backend: forwarded live, or captured up to a
//! budget shared by both streams with the rest dropped (the job is never blocked or killed for
//! printing, and our memory stays bounded). Either way every byte passes the secrets' redactor
//! first, so a value split across two writes is caught too.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::events::{JobEvent, Observer};
use crate::secrets::{Redactor, StreamRedactor};
use crate::spec::OutputMode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

/// What was kept of one stream.
#[derive(Debug, Default)]
pub struct Captured {
    pub bytes: Vec<u8>,
    pub truncated: bool,
    /// Secret values replaced in this stream.
    pub redactions: u64,
}

pub struct OutputSink {
    mode: OutputMode,
    stream: Stream,
    shared: Arc<Shared>,
    captured: Captured,
    forwarding: bool,
    redactor: StreamRedactor,
}

/// What both sinks of a job share: the capture budget, and who is told when it runs out.
struct Shared {
    left: AtomicU64,
    limit: u64,
    observer: Observer,
}

impl OutputSink {
    /// One sink per stream of a job, sharing `limit` bytes of capture between them.
    pub fn pair(
        mode: OutputMode,
        limit: u64,
        redactor: &Redactor,
        observer: &Observer,
    ) -> (OutputSink, OutputSink) {
        let shared = Arc::new(Shared {
            left: AtomicU64::new(limit),
            limit,
            observer: observer.clone(),
        });
        let sink = |stream| OutputSink {
            mode,
            stream,
            shared: Arc::clone(&shared),
            captured: Captured::default(),
            forwarding: true,
            redactor: redactor.stream(),
        };
        (sink(Stream::Stdout), sink(Stream::Stderr))
    }

    pub fn write(&mut self, chunk: &[u8]) {
        let safe = self.redactor.push(chunk);
        self.emit(&safe);
    }

    fn emit(&mut self, chunk: &[u8]) {
        if chunk.is_empty() {
            return;
        }
        match self.mode {
            OutputMode::Stream if self.forwarding => {
                let written = match self.stream {
                    Stream::Stdout => std::io::stdout().lock().write_all(chunk),
                    Stream::Stderr => std::io::stderr().lock().write_all(chunk),
                };
                // A closed stdout (`| head`) must not stall the job: keep draining.
                self.forwarding = written.is_ok();
            }
            OutputMode::Stream => {}
            OutputMode::Capture => {
                let granted = take_budget(&self.shared.left, chunk.len() as u64) as usize;
                self.captured.bytes.extend_from_slice(&chunk[..granted]);
                if granted < chunk.len() && !self.captured.truncated {
                    self.captured.truncated = true;
                    self.shared.observer.emit(JobEvent::OutputTruncated {
                        stream: self.stream,
                        limit: self.shared.limit,
                    });
                }
            }
        }
    }

    pub fn finish(mut self) -> Captured {
        let rest = self.redactor.finish();
        self.emit(&rest);
        self.captured.redactions = self.redactor.redactions();
        self.captured
    }
}

fn take_budget(budget: &AtomicU64, wanted: u64) -> u64 {
    let mut granted = 0;
    let _ = budget.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
        granted = left.min(wanted);
        Some(left - granted)
    });
    granted
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::Secret;

    #[test]
    fn capture_shares_one_budget_between_streams() {
        let (mut out, mut err) = OutputSink::pair(
            OutputMode::Capture,
            10,
            &Redactor::new(&[]),
            &Observer::default(),
        );
        out.write(b"123456");
        err.write(b"abcdef");
        out.write(b"xyz");
        let (out, err) = (out.finish(), err.finish());
        assert_eq!(out.bytes, b"123456");
        assert_eq!(err.bytes, b"abcd");
        assert!(err.truncated && out.truncated);
    }

    #[test]
    fn a_cut_capture_is_told_once_per_stream() {
        #[derive(Default)]
        struct Seen(std::sync::Mutex<Vec<JobEvent>>);
        impl crate::events::JobObserver for Seen {
            fn job_event(&self, event: JobEvent) {
                self.0.lock().unwrap().push(event);
            }
        }
        let seen = Arc::new(Seen::default());
        let observer = Observer::new(seen.clone(), Redactor::new(&[]));
        let (mut out, mut err) =
            OutputSink::pair(OutputMode::Capture, 4, &Redactor::new(&[]), &observer);
        out.write(b"123");
        assert!(seen.0.lock().unwrap().is_empty());
        out.write(b"456");
        out.write(b"789");
        err.write(b"abc");
        let _ = (out.finish(), err.finish());
        let told = seen.0.lock().unwrap().clone();
        let cut = |stream| JobEvent::OutputTruncated { stream, limit: 4 };
        assert_eq!(told, [cut(Stream::Stdout), cut(Stream::Stderr)]);
    }

    #[test]
    fn a_secret_split_across_writes_is_redacted_before_capture() {
        std::env::set_var("SANDBOX_OUTPUT_TEST_TOKEN", "hunter2-very-secret");
        let secret = Secret::resolve("TOKEN", "env:SANDBOX_OUTPUT_TEST_TOKEN", "env").unwrap();
        let (mut out, _err) = OutputSink::pair(
            OutputMode::Capture,
            1 << 20,
            &Redactor::new(&[secret]),
            &Observer::default(),
        );
        out.write(b"token=hunter2-ve");
        out.write(b"ry-secret done");
        let out = out.finish();
        assert_eq!(out.bytes, b"token=[REDACTED:TOKEN] done");
        assert_eq!(out.redactions, 1);
    }
}
