//! Built-in gates that need no external tool: policy and secret-scan (being written).
