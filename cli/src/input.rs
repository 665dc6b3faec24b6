//! Reading record files, with errors that name the file, the line and the field.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use anyhow::{Context, Result, bail};
use nineten_protocol::FieldError;
use nineten_protocol::jsonl::{parse_carry, parse_lines};
use nineten_protocol::key::PublicKey;
use nineten_protocol::money::MicroUsdp;

/// At most this many bad lines are listed before giving up on a file.
const ERRORS_SHOWN: usize = 20;

pub(crate) fn read_text(path: &Path) -> Result<String> {
    fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Reads a JSON-lines file of records; fails listing the bad lines (file:line: field: why).
pub(crate) fn read_records<T: Send>(
    path: &Path,
    parse: impl Fn(&str) -> Result<T, FieldError> + Sync,
) -> Result<Vec<T>> {
    let text = read_text(path)?;
    let mut records = Vec::new();
    let mut errors = Vec::new();
    for (line, result) in parse_lines(&text, parse) {
        match result {
            Ok(r) => records.push(r),
            Err(e) => errors.push(format!("{}:{line}: {e}", path.display())),
        }
    }
    if !errors.is_empty() {
        let more = errors.len().saturating_sub(ERRORS_SHOWN);
        errors.truncate(ERRORS_SHOWN);
        if more > 0 {
            errors.push(format!("… and {more} more bad lines"));
        }
        bail!("{} is malformed:\n{}", path.display(), errors.join("\n"));
    }
    Ok(records)
}

/// Reads a carry file.
pub(crate) fn read_carry(path: &Path) -> Result<BTreeMap<PublicKey, MicroUsdp>> {
    let text = read_text(path)?;
    parse_carry(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// An artist's public key given as 64 hex, or read from its key file (kind artist).
pub(crate) fn artist_key(given: &str) -> Result<PublicKey> {
    if let Ok(key) = given.parse::<PublicKey>() {
        return Ok(key);
    }
    let path = Path::new(given);
    if !path.exists() {
        bail!("--artist-key {given:?}: neither a public key (64 hex) nor a key file");
    }
    match nineten_storage::keyfile::read(path)? {
        nineten_protocol::identity::Secret::Artist(key) => Ok(key.public()),
        other => bail!(
            "{}: a {} key, not an artist key",
            path.display(),
            other.kind()
        ),
    }
}
