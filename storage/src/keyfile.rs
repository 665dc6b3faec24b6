//! Key files: one secret per file, in the text form of `protocol::identity::Secret`.
//!
//! Written with mode 0600 and never over an existing file; a key file that other users can
//! read is refused, as ssh does, because it is no longer a secret.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use nineten_protocol::identity::Secret;

use crate::Error;

/// Writes `secret` to a new file at `path` (mode 0600, flushed to disk). Fails if the file
/// exists: a key is never overwritten.
pub fn write(path: &Path, secret: &Secret) -> Result<(), Error> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    file.write_all(secret.to_key_file().as_bytes())
        .map_err(io)?;
    file.sync_all().map_err(io)
}

/// Reads a key file, refusing one that group or others can read.
pub fn read(path: &Path) -> Result<Secret, Error> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let mode = fs::metadata(path).map_err(io)?.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(Error::Permissions {
            path: path.to_path_buf(),
            mode: mode & 0o777,
        });
    }
    let text = fs::read_to_string(path).map_err(io)?;
    Secret::from_key_file(&text).map_err(|source| Error::KeyFile {
        path: path.to_path_buf(),
        source,
    })
}
