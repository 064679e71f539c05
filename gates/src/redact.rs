//! Secret values out of what the gates report (issue 15): a finding quotes the line it found, a
//! tool's output lands in the result, and the job under judgment can write its secret into
//! either. Nothing here knows a format: it works on the values before any escaping.

use sandbox_runtime::secrets::Redactor;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum RedactError {
    #[error("reading it as JSON")]
    Json(#[source] serde_json::Error),
    #[error(
        "redacting a secret left it unreadable: the secret's value is so short that it matches \
         the words of the format itself; give the secret a longer value"
    )]
    Unreadable(#[source] serde_json::Error),
}

/// `value` with every string in it redacted, or `None` when it holds no secret. Walked as JSON,
/// so that a field added later is covered too. Keys are left alone: they are field names and the
/// tools' metric names.
pub fn redacted<T: Serialize + DeserializeOwned>(
    value: &T,
    redactor: &Redactor,
) -> Result<Option<T>, RedactError> {
    if redactor.is_empty() {
        return Ok(None);
    }
    let mut json = serde_json::to_value(value).map_err(RedactError::Json)?;
    if redact_strings(&mut json, redactor) == 0 {
        return Ok(None);
    }
    serde_json::from_value(json)
        .map(Some)
        .map_err(RedactError::Unreadable)
}

/// Returns how many replacements were made.
fn redact_strings(value: &mut Value, redactor: &Redactor) -> u64 {
    match value {
        Value::String(text) => {
            let (clean, count) = redactor.redact_str(text);
            if count > 0 {
                *text = clean;
            }
            count
        }
        Value::Array(items) => items
            .iter_mut()
            .map(|item| redact_strings(item, redactor))
            .sum(),
        Value::Object(fields) => fields
            .values_mut()
            .map(|field| redact_strings(field, redactor))
            .sum(),
        Value::Null | Value::Bool(_) | Value::Number(_) => 0,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use sandbox_runtime::secrets::Secret;

    use super::*;
    use crate::report::tests::verdict;
    use crate::verdict::Verdict;

    /// A redactor for `value`, read from a file as `--secret NAME=file:PATH` does.
    pub(crate) fn redactor(value: &str) -> Redactor {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("value");
        std::fs::write(&path, value).unwrap();
        let from = format!("file:{}", path.display());
        Redactor::new(&[Secret::resolve("PW", &from, "env").unwrap()])
    }

    #[test]
    fn every_string_is_redacted_and_the_rest_kept() {
        let mut verdict = verdict();
        verdict.gates[0].findings[0].message = "password = hunter2-xyz".into();
        verdict.gates[0].findings[1].path = Some("hunter2-xyz/a.py".into());
        verdict.job = Some(serde_json::json!({"notes": ["x", {"deep": "hunter2-xyz!"}]}));
        let clean: Verdict = redacted(&verdict, &redactor("hunter2-xyz"))
            .unwrap()
            .unwrap();
        let text = serde_json::to_string(&clean).unwrap();
        assert!(!text.contains("hunter2"), "{text}");
        assert_eq!(text.matches("[REDACTED:PW]").count(), 3, "{text}");
        assert_eq!(
            clean.gates[0].findings[0].message,
            "password = [REDACTED:PW]"
        );
        assert_eq!(clean.job.unwrap()["notes"][1]["deep"], "[REDACTED:PW]!");
        let untouched = serde_json::to_value(&verdict.gates[2]).unwrap();
        assert_eq!(serde_json::to_value(&clean.gates[2]).unwrap(), untouched);
    }

    #[test]
    fn nothing_to_redact_is_none() {
        assert!(redacted(&verdict(), &redactor("hunter2-xyz"))
            .unwrap()
            .is_none());
        assert!(redacted(&verdict(), &Redactor::default())
            .unwrap()
            .is_none());
    }

    #[test]
    fn a_value_that_breaks_the_format_is_an_error_not_a_leak() {
        // `ai` is inside the status `fail`: the redacted status is no status.
        let error = redacted(&verdict(), &redactor("ai")).unwrap_err();
        assert!(matches!(error, RedactError::Unreadable(_)), "{error}");
        assert!(error.to_string().contains("longer value"), "{error}");
    }
}
