//! Where a node keeps its data: the platform's data directory (`$XDG_DATA_HOME/9ten`, usually
//! `~/.local/share/9ten`), or the folder given with `--data-dir`.

use std::path::{Path, PathBuf};

/// A node's data directory and the stores inside it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataDir(PathBuf);

impl DataDir {
    /// `dir`, or the platform default if `None`.
    pub fn new(dir: Option<PathBuf>) -> Self {
        Self(dir.unwrap_or_else(default_dir))
    }

    /// The directory itself.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// The sled store: records, manifests, secrets.
    pub fn store(&self) -> PathBuf {
        self.0.join("store")
    }

    /// The iroh-blobs file store: Ogg Opus streams and seek indexes.
    pub fn blobs(&self) -> PathBuf {
        self.0.join("blobs")
    }
}

fn default_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("9ten");
    }
    match std::env::var_os("HOME") {
        Some(home) => PathBuf::from(home).join(".local/share/9ten"),
        None => PathBuf::from(".9ten"),
    }
}
