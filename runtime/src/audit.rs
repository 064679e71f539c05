//! The tamper-evident audit log: one hash-chained JSON line per job.
