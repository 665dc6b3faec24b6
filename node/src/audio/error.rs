//! Audio errors: each names the file or stream and what is wrong with it.

use std::path::PathBuf;

use thiserror::Error;

/// Why audio could not be imported, decoded or played.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum AudioError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not audio in a format we read.
    #[error("{path}: not a WAV, FLAC, MP3 or Ogg Vorbis file we can read ({reason})")]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// What the decoder said.
        reason: String,
    },
    /// The file's audio is damaged or cut short.
    #[error("{path}: damaged audio: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The file holds no audio.
    #[error("{path}: no audio in the file")]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// The file's header states something we refuse (channels, sample rate, length).
    #[error("{path}: {reason}")]
    Unacceptable {
        /// The file.
        path: PathBuf,
        /// What is refused and why.
        reason: String,
    },
    /// libopus refused.
    #[error("opus: {0}")]
    Opus(#[from] opus::Error),
    /// The resampler refused.
    #[error("resampling: {0}")]
    Resample(String),
    /// An Ogg Opus stream is not valid.
    #[error("Ogg Opus stream: {0}")]
    Stream(String),
    /// Playback was stopped by the listener (stop, skip or seek).
    #[error("playback was stopped")]
    Stopped,
    /// The sound device failed.
    #[error("sound output: {0}")]
    Device(String),
}
