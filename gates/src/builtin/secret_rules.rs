//! What a secret looks like: one rule per kind of credential with a recognisable shape, and
//! a generic rule for high-entropy strings assigned to names like `password` or `api_key`.

use base64::Engine as _;
use regex::Regex;

/// A secret found in a text: its kind and where its value lies (byte offsets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hit {
    pub kind: &'static str,
    pub label: &'static str,
    pub start: usize,
    pub end: usize,
    /// The value as it is fingerprinted: for a private key, its base64 body without line
    /// breaks, so re-wrapping the key does not make it new.
    pub value: String,
}

struct Shape {
    kind: &'static str,
    label: &'static str,
    regex: Regex,
    /// A test the match must pass beyond its shape.
    check: fn(&str) -> bool,
}

pub(crate) struct Rules {
    shapes: Vec<Shape>,
    private_key_begin: Regex,
    private_key_end: Regex,
    assignment: Regex,
    entropy_threshold: f64,
    min_length: usize,
}

/// Each regex's first group is the secret; the text around it only anchors the match.
/// Private keys are not here: `private_keys` reads the body up to the END line.
const SHAPES: [(&str, &str, &str); 10] = [
    (
        "aws-access-key-id",
        "AWS access key id",
        r"\b((?:AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16})\b",
    ),
    (
        "aws-secret-access-key",
        "AWS secret access key",
        r#"(?i)\baws_?(?:secret_?(?:access_?)?key|secret)\b["']?\s*(?::=|=>|=|:)\s*["']?([A-Za-z0-9/+]{40})(?:[^A-Za-z0-9/+=]|$)"#,
    ),
    (
        "github-token",
        "GitHub token",
        r"\b((?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36,255})\b",
    ),
    (
        "github-token",
        "GitHub token",
        r"\b(github_pat_[A-Za-z0-9_]{22,255})\b",
    ),
    (
        "gitlab-token",
        "GitLab token",
        r"\b(glpat-[A-Za-z0-9_-]{20,})",
    ),
    (
        "slack-token",
        "Slack token",
        r"\b(xox[baprs]-[A-Za-z0-9-]{10,})",
    ),
    (
        "slack-webhook",
        "Slack webhook URL",
        r"(https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9+/_-]{20,})",
    ),
    (
        "stripe-key",
        "Stripe secret key",
        r"\b((?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,})\b",
    ),
    (
        "google-api-key",
        "Google API key",
        r"\b(AIza[0-9A-Za-z_-]{35})",
    ),
    (
        "jwt",
        "JSON web token",
        r"\b(eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,})",
    ),
];

fn any(_: &str) -> bool {
    true
}

/// A JWT's first part is a base64url JSON object naming its algorithm or type.
fn jwt_header_is_json(token: &str) -> bool {
    let header = token.split('.').next().unwrap_or_default();
    let Ok(bytes) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header) else {
        return false;
    };
    serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&bytes)
        .is_ok_and(|h| h.contains_key("alg") || h.contains_key("typ"))
}

impl Rules {
    pub(crate) fn new(entropy_threshold: f64, min_length: usize) -> Result<Rules, regex::Error> {
        let mut shapes = Vec::new();
        for (kind, label, pattern) in SHAPES {
            let check = if kind == "jwt" {
                jwt_header_is_json
            } else {
                any
            };
            shapes.push(Shape {
                kind,
                label,
                regex: Regex::new(pattern)?,
                check,
            });
        }
        Ok(Rules {
            shapes,
            private_key_begin: Regex::new(r"-----BEGIN ([A-Z0-9]+ )*PRIVATE KEY( BLOCK)?-----")?,
            private_key_end: Regex::new(r"-----END ([A-Z0-9]+ )*PRIVATE KEY( BLOCK)?-----")?,
            assignment: Regex::new(
                r#"(?i)\b[a-z0-9_.-]*(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|auth[_-]?key)[a-z0-9_.-]*["']?\s*(?::=|=>|=|:)\s*["'`]([^"'`\r\n]+)["'`]"#,
            )?,
            entropy_threshold,
            min_length,
        })
    }

    /// Every secret in `text`. A value a specific rule found is not found again by the
    /// generic one.
    pub(crate) fn scan(&self, text: &str) -> Vec<Hit> {
        let mut hits = Vec::new();
        for shape in &self.shapes {
            for captures in shape.regex.captures_iter(text) {
                let Some(value) = captures.get(1) else {
                    continue;
                };
                if (shape.check)(value.as_str()) {
                    hits.push(Hit {
                        kind: shape.kind,
                        label: shape.label,
                        start: value.start(),
                        end: value.end(),
                        value: value.as_str().to_owned(),
                    });
                }
            }
        }
        self.private_keys(text, &mut hits);
        let taken = Spans::new(&hits);
        for captures in self.assignment.captures_iter(text) {
            let Some(value) = captures.get(1) else {
                continue;
            };
            if !taken.overlaps(value.start(), value.end()) && self.looks_random(value.as_str()) {
                hits.push(Hit {
                    kind: "generic-high-entropy",
                    label: "high-entropy secret",
                    start: value.start(),
                    end: value.end(),
                    value: value.as_str().to_owned(),
                });
            }
        }
        hits.sort_by_key(|h| h.start);
        hits
    }

    fn looks_random(&self, value: &str) -> bool {
        // Templates and URLs are configuration that names where a secret is, not the secret.
        let placeholder = value.contains("${") || value.contains("{{") || value.starts_with('<');
        let url =
            (value.starts_with("http://") || value.starts_with("https://")) && !value.contains('@');
        // Short English scores like a token ("base64 encoded random bytes" 3.74 bits/char,
        // "change-me-in-production" 3.76), so, as gitleaks' generic rule does, a value with
        // spaces is prose, and a generated token mixes at least two of lower case, upper case
        // and digits.
        let prose = value.chars().any(char::is_whitespace);
        let classes = [
            value.chars().any(|c| c.is_ascii_lowercase()),
            value.chars().any(|c| c.is_ascii_uppercase()),
            value.chars().any(|c| c.is_ascii_digit()),
        ];
        let mixed = classes.iter().filter(|has| **has).count() >= 2;
        value.chars().count() >= self.min_length
            && !placeholder
            && !url
            && !prose
            && mixed
            && shannon_entropy(value) >= self.entropy_threshold
    }

    /// A `BEGIN … PRIVATE KEY` line with a body: up to the END line, or without one, a first
    /// line that is all base64. A header alone (code that parses PEM files) is not a key.
    fn private_keys(&self, text: &str, hits: &mut Vec<Hit>) {
        for begin in self.private_key_begin.find_iter(text) {
            let rest = &text[begin.end()..];
            let window = &rest[..floor_char_boundary(rest, 64 * 1024)];
            let body = match self.private_key_end.find(window) {
                Some(end) => &window[..end.start()],
                None => {
                    let first = window
                        .split(['\n', '"', '\''])
                        .map(|l| l.trim().trim_start_matches("\\n"))
                        .find(|l| !l.is_empty())
                        .unwrap_or("");
                    let all_base64 = first.len() >= 40
                        && first
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b));
                    if !all_base64 {
                        continue;
                    }
                    first
                }
            };
            // Escaped line breaks in a string literal are layout, not key material.
            let value: String = body
                .replace("\\n", "\n")
                .replace("\\r", "\n")
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '='))
                .collect();
            if value.len() >= 32 {
                hits.push(Hit {
                    kind: "private-key",
                    label: "private key",
                    start: begin.start(),
                    end: begin.end() + body.len(),
                    value,
                });
            }
        }
    }
}

/// The byte ranges the specific rules claimed, merged and sorted, so the generic rule asks
/// about each of its matches in logarithmic time (a file can hold thousands of both).
struct Spans(Vec<(usize, usize)>);

impl Spans {
    fn new(hits: &[Hit]) -> Spans {
        let mut ranges: Vec<(usize, usize)> = hits.iter().map(|h| (h.start, h.end)).collect();
        ranges.sort_unstable();
        let mut merged: Vec<(usize, usize)> = Vec::with_capacity(ranges.len());
        for (start, end) in ranges {
            match merged.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => merged.push((start, end)),
            }
        }
        Spans(merged)
    }

    fn overlaps(&self, start: usize, end: usize) -> bool {
        // The first merged range ending after `start` is the only one that can overlap.
        let index = self.0.partition_point(|&(_, e)| e <= start);
        self.0.get(index).is_some_and(|&(s, _)| s < end)
    }
}

fn floor_char_boundary(text: &str, max: usize) -> usize {
    let mut at = max.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// Bits per character of the string's own character distribution.
pub(crate) fn shannon_entropy(value: &str) -> f64 {
    let mut counts = std::collections::HashMap::new();
    let mut total = 0usize;
    for c in value.chars() {
        *counts.entry(c).or_insert(0usize) += 1;
        total += 1;
    }
    if total == 0 {
        return 0.0;
    }
    counts
        .values()
        .map(|&n| {
            let p = n as f64 / total as f64;
            -p * p.log2()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_overlap_only_when_ranges_intersect() {
        let hit = |start, end| Hit {
            kind: "k",
            label: "l",
            start,
            end,
            value: String::new(),
        };
        let spans = Spans::new(&[hit(10, 20), hit(15, 30), hit(40, 50)]);
        assert_eq!(spans.0, [(10, 30), (40, 50)]);
        assert!(spans.overlaps(29, 35));
        assert!(!spans.overlaps(30, 40));
        assert!(spans.overlaps(0, 11));
        assert!(!spans.overlaps(0, 10));
        assert!(!spans.overlaps(50, 60));
    }

    #[test]
    fn entropy_of_known_strings() {
        assert_eq!(shannon_entropy(""), 0.0);
        assert_eq!(shannon_entropy("aaaa"), 0.0);
        assert!((shannon_entropy("abcd") - 2.0).abs() < 1e-9);
    }

    #[test]
    fn a_pem_header_in_code_is_not_a_key() {
        let rules = Rules::new(3.5, 16).unwrap();
        let header = ["-----BEGIN", " RSA ", "PRIVATE KEY-----"].concat();
        let code = format!("if line == \"{header}\":\n    return parse_rest_of_the_file(handle)\n");
        assert!(rules.scan(&code).is_empty());
    }

    #[test]
    fn english_is_not_a_secret_but_a_token_is() {
        let rules = Rules::new(3.5, 16).unwrap();
        for prose in [
            "export SECRET_KEY=\"base64 encoded random bytes\"",
            "secret_key = \"change-me-in-production\"",
            "password = \"this is my password here\"",
        ] {
            assert!(rules.scan(prose).is_empty(), "{prose}");
        }
        for token in [
            "api_key = \"q8Vt2LmZx9Rk4PwYc7Hs\"",
            "secret = \"8f14e45fceea167a5a36dedd4bea2543\"",
        ] {
            assert_eq!(rules.scan(token).len(), 1, "{token}");
        }
    }

    #[test]
    fn a_long_but_repetitive_value_is_not_random() {
        let rules = Rules::new(3.5, 16).unwrap();
        assert!(rules
            .scan("password = \"aaaaaaaaaaaaaaaaaaaaaaaa\"")
            .is_empty());
        assert!(rules
            .scan("token_url = \"https://example.com/oauth2/token/v1\"")
            .is_empty());
    }
}
