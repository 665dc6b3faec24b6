//! Reading files of records: one JSON object per line (`.jsonl`), and the carry file.
//!
//! Errors carry the line number (from 1) and the field, so a person can find and fix the
//! line. Blank lines are skipped. Lines parse in parallel: record files can hold millions.

use std::collections::BTreeMap;
use std::fmt;

use rayon::prelude::*;
use serde::Deserializer;
use serde::de::{MapAccess, Visitor};
use thiserror::Error;

use crate::error::FieldError;
use crate::key::PublicKey;
use crate::money::MicroUsdp;

/// A line that did not parse.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("line {line}: {error}")]
pub struct LineError {
    /// Line number, from 1.
    pub line: usize,
    /// What is wrong, naming the field.
    pub error: FieldError,
}

/// Parses every non-blank line with `parse`, in parallel; results keep the file's order and
/// carry their line numbers (from 1).
pub fn parse_lines<T, F>(text: &str, parse: F) -> Vec<(usize, Result<T, FieldError>)>
where
    T: Send,
    F: Fn(&str) -> Result<T, FieldError> + Sync,
{
    let lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .collect();
    lines
        .par_iter()
        .map(|&(i, line)| (i + 1, parse(line)))
        .collect()
}

/// Parses every non-blank line and stops at the first bad one.
pub fn parse_all<T, F>(text: &str, parse: F) -> Result<Vec<T>, LineError>
where
    T: Send,
    F: Fn(&str) -> Result<T, FieldError> + Sync,
{
    parse_lines(text, parse)
        .into_iter()
        .map(|(line, result)| result.map_err(|error| LineError { line, error }))
        .collect()
}

/// Parses a carry file: one JSON object `{listener_hex: units}`. A key that appears twice, a
/// bad key or a value that is not a non-negative integer is an error naming that key.
pub fn parse_carry(text: &str) -> Result<BTreeMap<PublicKey, MicroUsdp>, FieldError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let carry = de
        .deserialize_map(CarryVisitor)
        .map_err(|e| FieldError::new("(carry)", e))?;
    de.end()
        .map_err(|e| FieldError::new("(carry)", format!("trailing characters: {e}")))?;
    carry
}

struct CarryVisitor;

impl<'de> Visitor<'de> for CarryVisitor {
    type Value = Result<BTreeMap<PublicKey, MicroUsdp>, FieldError>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object mapping listener keys (hex) to micro-USDP")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut carry = BTreeMap::new();
        while let Some(key) = map.next_key::<String>()? {
            let value: serde_json::Value = map.next_value()?;
            let listener = match key.parse::<PublicKey>() {
                Ok(k) => k,
                Err(e) => return Ok(Err(FieldError::new(key, e))),
            };
            let Some(units) = value.as_u64() else {
                return Ok(Err(FieldError::new(
                    key,
                    format!("{value} is not a whole number of micro-USDP (0 to 2^64-1)"),
                )));
            };
            if carry.insert(listener, MicroUsdp(units)).is_some() {
                return Ok(Err(FieldError::new(key, "listener appears twice")));
            }
        }
        Ok(Ok(carry))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_numbers_count_blank_lines() {
        let parsed = parse_lines("1\n\nx\n3\n", |l| {
            l.parse::<u8>().map_err(|e| FieldError::new("n", e))
        });
        assert_eq!(parsed.len(), 3);
        assert_eq!(parsed[1].0, 3);
        assert!(parsed[1].1.is_err());
        assert_eq!(parsed[2], (4, Ok(3)));
    }

    #[test]
    fn carry_is_strict() {
        let k = "ab".repeat(32);
        let carry = parse_carry(&format!("{{\"{k}\": 5}}")).unwrap();
        assert_eq!(carry.values().next(), Some(&MicroUsdp(5)));
        assert!(parse_carry("{}").unwrap().is_empty());
        for bad in [
            format!("{{\"{k}\": -5}}"),
            format!("{{\"{k}\": 1.5}}"),
            format!("{{\"{k}\": \"5\"}}"),
            format!("{{\"{k}\": 1, \"{k}\": 2}}"),
            "{\"zz\": 1}".to_string(),
            "[]".to_string(),
        ] {
            assert!(parse_carry(&bad).is_err(), "{bad}");
        }
        let err = parse_carry(&format!("{{\"{k}\": -5}}")).unwrap_err();
        assert_eq!(err.field, k);
    }
}
