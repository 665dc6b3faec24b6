//! Errors shared by the record readers: a value that is wrong names the field it came from.

use thiserror::Error;

/// A record field that could not be read: names the field and says what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("field `{field}`: {problem}")]
pub struct FieldError {
    /// The JSON field (or binary field) that is wrong, e.g. `listened_ms`.
    pub field: String,
    /// What is wrong with it.
    pub problem: String,
}

impl FieldError {
    /// A field error from anything printable.
    pub fn new(field: impl Into<String>, problem: impl ToString) -> Self {
        Self {
            field: field.into(),
            problem: problem.to_string(),
        }
    }

    /// Turns a `serde_path_to_error` failure into a field error. serde reports a missing or
    /// unknown field at the record's top level (path `.`); its message names the field then.
    pub(crate) fn from_json(err: serde_path_to_error::Error<serde_json::Error>) -> Self {
        let path = err.path().to_string();
        let inner = err.into_inner();
        let message = strip_position(&inner.to_string());
        match path.as_str() {
            "." => match field_named_in(&message) {
                Some(field) => Self::new(field, message),
                None => Self::new("(record)", message),
            },
            _ => Self::new(path, message),
        }
    }
}

/// serde_json appends "at line 1 column 57"; the reader reports its own line numbers.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// serde names missing, unknown and duplicate fields in backquotes: "missing field `seq`".
fn field_named_in(message: &str) -> Option<String> {
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(message[start..start + len].to_string())
}
