//! Where a job's stdout and stderr go, for every backend: forwarded live, or captured up to a
//! budget shared by both streams with the rest dropped (the job is never blocked or killed for
//! printing, and our memory stays bounded).

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::spec::OutputMode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// What was kept of one stream.
#[derive(Debug, Default)]
pub struct Captured {
    pub bytes: Vec<u8>,
    pub truncated: bool,
}

pub struct OutputSink {
    mode: OutputMode,
    stream: Stream,
    budget: Arc<AtomicU64>,
    captured: Captured,
    forwarding: bool,
}

impl OutputSink {
    /// One sink per stream of a job, sharing `limit` bytes of capture between them.
    pub fn pair(mode: OutputMode, limit: u64) -> (OutputSink, OutputSink) {
        let budget = Arc::new(AtomicU64::new(limit));
        let sink = |stream| OutputSink {
            mode,
            stream,
            budget: Arc::clone(&budget),
            captured: Captured::default(),
            forwarding: true,
        };
        (sink(Stream::Stdout), sink(Stream::Stderr))
    }

    pub fn write(&mut self, chunk: &[u8]) {
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
                let granted = take_budget(&self.budget, chunk.len() as u64) as usize;
                self.captured.bytes.extend_from_slice(&chunk[..granted]);
                self.captured.truncated |= granted < chunk.len();
            }
        }
    }

    pub fn finish(self) -> Captured {
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

    #[test]
    fn capture_shares_one_budget_between_streams() {
        let (mut out, mut err) = OutputSink::pair(OutputMode::Capture, 10);
        out.write(b"123456");
        err.write(b"abcdef");
        out.write(b"xyz");
        let (out, err) = (out.finish(), err.finish());
        assert_eq!(out.bytes, b"123456");
        assert_eq!(err.bytes, b"abcd");
        assert!(err.truncated && out.truncated);
    }
}
