//! Rust and JavaScript tools as gates (being written).

use super::Preset;

pub static PRESETS: &[Preset] = &[];
