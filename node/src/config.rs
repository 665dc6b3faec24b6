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

/// Node settings from the config file (`$XDG_CONFIG_HOME/9ten/node.json`, usually
/// `~/.config/9ten/node.json`); every field optional, command-line flags win.
///
/// ```json
/// {"listen": "/ip4/127.0.0.1/tcp/4001", "iroh": "127.0.0.1:4002",
///  "peers": ["/ip4/127.0.0.1/tcp/4101/p2p/12D3KooW…"], "cache_mb": 2048}
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// libp2p listen address.
    pub listen: Option<String>,
    /// iroh socket address.
    pub iroh: Option<std::net::SocketAddr>,
    /// Peers to dial at start.
    #[serde(default)]
    pub peers: Vec<String>,
    /// Cache size limit in megabytes.
    pub cache_mb: Option<u64>,
}

impl Settings {
    /// The default config file's path.
    pub fn default_path() -> PathBuf {
        if let Some(dir) = std::env::var_os("XDG_CONFIG_HOME").filter(|d| !d.is_empty()) {
            return PathBuf::from(dir).join("9ten/node.json");
        }
        match std::env::var_os("HOME") {
            Some(home) => PathBuf::from(home).join(".config/9ten/node.json"),
            None => PathBuf::from(".9ten/node.json"),
        }
    }

    /// Reads the config file at `path`; a missing file means all defaults.
    pub fn load(path: &Path) -> Result<Self, crate::Error> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| crate::Error::Config {
                path: path.to_path_buf(),
                source: Box::new(e),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(crate::Error::Config {
                path: path.to_path_buf(),
                source: Box::new(e),
            }),
        }
    }
}
