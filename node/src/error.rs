//! Node errors, each naming what failed.

use thiserror::Error;

use crate::audio::AudioError;

/// What went wrong in a node operation.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// Audio could not be decoded, encoded or played.
    #[error(transparent)]
    Audio(#[from] AudioError),
    /// The record store failed.
    #[error(transparent)]
    Storage(#[from] nineten_storage::Error),
    /// The blob store failed during `op`.
    #[error("blob store error while {op}: {reason}")]
    Blobs {
        /// What the node was doing.
        op: &'static str,
        /// What the store said.
        reason: String,
    },
    /// A release manifest would be invalid.
    #[error("release manifest: {0}")]
    Manifest(#[from] nineten_protocol::FieldError),
    /// An import was given nothing to import.
    #[error("no audio files found in {0}")]
    NoFiles(String),
    /// No track matches.
    #[error("no track {0} in this node's library (see the hashes `9ten import` printed)")]
    UnknownTrack(String),
    /// Several tracks match a short hash.
    #[error("{0} matches several tracks: give more of the hash")]
    AmbiguousTrack(String),
    /// Several releases match a short id.
    #[error("{0} matches several releases: give more of the id")]
    AmbiguousRelease(String),
    /// Releases of different artists list the same track: which one is played decides whom
    /// its receipts pay.
    #[error(
        "track {track} is listed by releases of different artists; play one of them as RELEASE/NUMBER: {}",
        choices.join(", ")
    )]
    ContestedTrack {
        /// The track's hash.
        track: String,
        /// Each release listing it, as `RELEASE/NUMBER (artist name, artist key)`.
        choices: Vec<String>,
    },
    /// No release matches.
    #[error("no release {0} in this node's catalog (see `9ten catalog`)")]
    UnknownRelease(String),
    /// Nobody was found to serve a track.
    #[error("no provider of track {0} was found in the network")]
    NoProviders(String),
    /// No play session with this number.
    #[error("no play session {0} (sessions are kept for the last 64 plays)")]
    UnknownSession(u64),
    /// Seek or stop with nothing playing.
    #[error("nothing is playing")]
    NothingPlaying,
    /// No pending subscription request has that id.
    #[error("no pending subscription request {0} (see `9ten subscription list`)")]
    UnknownRequest(String),
    /// Several pending requests start so.
    #[error("{0} matches several pending requests: give more of the id")]
    AmbiguousRequest(String),
    /// The node's identity could not be loaded.
    #[error("node identity: {0}")]
    Identity(String),
    /// The control API failed, or the node answered with an error.
    #[error(transparent)]
    Control(#[from] crate::control::ControlError),
    /// The config file does not parse or cannot be read.
    #[error("the config file {}", path.display())]
    Config {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong with it.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The network failed (the task stopped, a peer could not be dialled, ...).
    #[error(transparent)]
    Net(#[from] crate::net::Error),
    /// A listen got no receipt.
    #[error(transparent)]
    Receipt(#[from] crate::receipts::ReceiptError),
    /// The node is shutting down: it starts nothing new.
    #[error("the node is shutting down")]
    ShuttingDown,
    /// A blob (a seek index) is larger than a peer may make this node fetch.
    #[error("blob {blob} is larger than {cap} bytes: not fetched")]
    TooLarge {
        /// The blob's hash.
        blob: String,
        /// The most bytes fetched.
        cap: u64,
    },
    /// Settlement refused a month's inputs.
    #[error("cannot settle the month")]
    Settlement(#[from] nineten_protocol::settlement::SettlementError),
    /// The month's review could not go on.
    #[error("review: {0}")]
    Review(String),
    /// A stored blob or index is damaged.
    #[error("stored data for track {track} is damaged: {reason}")]
    Damaged {
        /// The track's hash.
        track: String,
        /// What is wrong.
        reason: String,
    },
}

impl Error {
    pub(crate) fn blobs(op: &'static str) -> impl FnOnce(&dyn std::fmt::Display) -> Self {
        move |e| Self::Blobs {
            op,
            reason: e.to_string(),
        }
    }
}
