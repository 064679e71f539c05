//! Secrets: resolving their sources, and redacting their values from everything we emit.
