//! Storage errors: each names the operation, path or database key involved.

use std::path::PathBuf;

use nineten_protocol::FieldError;
use thiserror::Error;

/// What went wrong in the store or with a key file.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// The database failed during `op`.
    #[error("database error while {op}: {source}")]
    Db {
        /// What the store was doing.
        op: &'static str,
        /// sled's error.
        source: sled::Error,
    },
    /// A stored value does not decode: the database is damaged or was written by other code.
    #[error("stored value under {key} is corrupt: {source}")]
    Corrupt {
        /// The database key, printed readably.
        key: String,
        /// What is wrong with the value.
        source: FieldError,
    },
    /// The database was written by a newer or unknown schema.
    #[error("database schema {found} is not supported (this build reads {supported})")]
    Schema {
        /// Schema version found.
        found: String,
        /// Schema version this build reads.
        supported: u8,
    },
    /// A record cannot be stored as given.
    #[error("cannot store this record: {0}")]
    Invalid(String),
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A key file's text is not a key.
    #[error("{path}: {source}")]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        source: nineten_protocol::identity::KeyFileError,
    },
    /// A key file can be read by other users.
    #[error("{path} is readable by other users (mode {mode:o}); run: chmod 600 {path}")]
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
}

impl Error {
    pub(crate) fn db(op: &'static str) -> impl FnOnce(sled::Error) -> Self {
        move |source| Self::Db { op, source }
    }
}
