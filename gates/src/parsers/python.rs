//! (being written: each function below is replaced by a real parser)

use super::{ParseError, Parsed, ToolRun};

pub fn ruff(_run: &ToolRun<'_>) -> Result<Parsed, ParseError> {
    Err(ParseError::unreadable("ruff", "not written yet"))
}

pub fn flake8(_run: &ToolRun<'_>) -> Result<Parsed, ParseError> {
    Err(ParseError::unreadable("flake8", "not written yet"))
}

pub fn mypy(_run: &ToolRun<'_>) -> Result<Parsed, ParseError> {
    Err(ParseError::unreadable("mypy", "not written yet"))
}

pub fn bandit(_run: &ToolRun<'_>) -> Result<Parsed, ParseError> {
    Err(ParseError::unreadable("bandit", "not written yet"))
}
