//! Human-readable sizes (`512M`, `1.5G`) and durations (`90s`, `10m`), as profiles and flags
//! write them. Both also accept a bare integer (bytes, seconds).

use std::fmt;
use std::time::Duration;

use schemars::JsonSchema;
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A number of bytes. Suffixes are binary (K = 1024), with an optional `i`/`B`: `64K`, `1.5GiB`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

/// A span of time: `500ms`, `90s`, `10m`, `1.5h`, or a bare number of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct HumanDuration(pub Duration);

fn split_number(text: &str) -> Option<(f64, &str)> {
    let text = text.trim();
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let number: f64 = text[..end].parse().ok()?;
    (number.is_finite() && number >= 0.0).then_some((number, text[end..].trim()))
}

impl std::str::FromStr for ByteSize {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || format!("`{text}` is not a size: write e.g. 4096, 512K, 256M, 1.5G");
        let (number, unit) = split_number(text).ok_or_else(bad)?;
        let unit = unit.trim_end_matches(['B', 'b']).trim_end_matches('i');
        let multiplier: u64 = match unit.to_ascii_uppercase().as_str() {
            "" => 1,
            "K" => 1 << 10,
            "M" => 1 << 20,
            "G" => 1 << 30,
            "T" => 1 << 40,
            _ => return Err(bad()),
        };
        let bytes = number * multiplier as f64;
        if bytes > u64::MAX as f64 {
            return Err(format!(
                "`{text}` is larger than any size this machine can hold"
            ));
        }
        Ok(ByteSize(bytes.round() as u64))
    }
}

impl std::str::FromStr for HumanDuration {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || format!("`{text}` is not a duration: write e.g. 500ms, 90s, 10m, 1.5h");
        let (number, unit) = split_number(text).ok_or_else(bad)?;
        let seconds = match unit {
            "ms" => number / 1000.0,
            "" | "s" => number,
            "m" | "min" => number * 60.0,
            "h" => number * 3600.0,
            "d" => number * 86400.0,
            _ => return Err(bad()),
        };
        Duration::try_from_secs_f64(seconds)
            .map(HumanDuration)
            .map_err(|_| bad())
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(u64, &str); 4] = [
            (1 << 40, "T"),
            (1 << 30, "G"),
            (1 << 20, "M"),
            (1 << 10, "K"),
        ];
        for (size, suffix) in UNITS {
            if self.0 >= size && self.0 % size == 0 {
                return write!(f, "{}{suffix}", self.0 / size);
            }
        }
        for (size, suffix) in UNITS {
            if self.0 >= size {
                return write!(f, "{:.2}{suffix}", self.0 as f64 / size as f64);
            }
        }
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let millis = self.0.as_millis();
        match millis {
            m if m % 3_600_000 == 0 && m > 0 => write!(f, "{}h", m / 3_600_000),
            m if m % 60_000 == 0 && m > 0 => write!(f, "{}m", m / 60_000),
            m if m % 1000 == 0 => write!(f, "{}s", m / 1000),
            m => write!(f, "{m}ms"),
        }
    }
}

/// Implements serde and JSON Schema for a type that reads from a string or a bare number and
/// writes back the human-readable form.
macro_rules! human_unit {
    ($ty:ty, $expecting:literal, $example:literal) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct UnitVisitor;
                impl Visitor<'_> for UnitVisitor {
                    type Value = $ty;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_str<E: de::Error>(self, text: &str) -> Result<$ty, E> {
                        text.parse().map_err(E::custom)
                    }
                    fn visit_i64<E: de::Error>(self, number: i64) -> Result<$ty, E> {
                        u64::try_from(number)
                            .map_err(|_| E::custom(concat!($expecting, " must not be negative")))
                            .and_then(|n| self.visit_u64(n))
                    }
                    fn visit_u64<E: de::Error>(self, number: u64) -> Result<$ty, E> {
                        number.to_string().parse().map_err(E::custom)
                    }
                    fn visit_f64<E: de::Error>(self, number: f64) -> Result<$ty, E> {
                        number.to_string().parse().map_err(E::custom)
                    }
                }
                deserializer.deserialize_any(UnitVisitor)
            }
        }

        impl JsonSchema for $ty {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($ty).into()
            }
            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({
                    "type": ["string", "integer"],
                    "description": $expecting,
                    "examples": [$example]
                })
            }
        }
    };
}

human_unit!(ByteSize, "a size such as 512M or 1.5G", "512M");
human_unit!(HumanDuration, "a duration such as 90s or 10m", "90s");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_suffixes() {
        let cases = [
            ("4096", 4096),
            ("512K", 512 << 10),
            ("256M", 256 << 20),
            ("1.5G", 3 << 29),
            ("2GiB", 2 << 30),
            ("1T", 1 << 40),
            ("64kb", 64 << 10),
        ];
        for (text, bytes) in cases {
            assert_eq!(text.parse::<ByteSize>(), Ok(ByteSize(bytes)), "{text}");
        }
    }

    #[test]
    fn bad_sizes_are_rejected_with_an_example() {
        for text in ["", "12Q", "-1M", "M", "1..2G", "1e3"] {
            let error = text.parse::<ByteSize>().expect_err(text);
            assert!(error.contains("512K"), "{error}");
        }
    }

    #[test]
    fn durations_parse() {
        let cases = [
            ("500ms", 500),
            ("90s", 90_000),
            ("90", 90_000),
            ("10m", 600_000),
            ("1.5h", 5_400_000),
        ];
        for (text, millis) in cases {
            let parsed: HumanDuration = text.parse().expect(text);
            assert_eq!(parsed.0.as_millis(), millis, "{text}");
        }
        assert!("10 parsecs".parse::<HumanDuration>().is_err());
    }

    #[test]
    fn display_round_trips() {
        for text in ["512M", "1G", "1.50G", "4096"] {
            let size: ByteSize = text.parse().expect(text);
            assert_eq!(size.to_string().parse::<ByteSize>(), Ok(size));
        }
        for text in ["90s", "10m", "2h", "250ms"] {
            let duration: HumanDuration = text.parse().expect(text);
            assert_eq!(duration.to_string(), text);
        }
    }
}
