//! A 9ten node.
//!
//! | module | holds |
//! |---|---|
//! | [`audio`] | decoding artists' files, resampling, Opus encoding, Ogg Opus streams and seek indexes, playback and sinks |
//! | [`import`] | an album of files to a signed release: tracks encoded in parallel, numbered, tagged, hashed |
//! | [`library`] | the node's content: the iroh-blobs file store (streams, seek indexes) and the sled store (manifests, receipts) |
//! | [`config`] | where a node keeps its data |
//! | [`error`] | [`Error`] |
//!
//! Data flow of an import: files → [`import::prepare`] (decode, resample, encode on all cores,
//! write Ogg Opus and a seek index per track, sign the manifest) → [`library::Library::add_release`]
//! (blobs with named tags, then the manifest; all or nothing). Playback:
//! [`library::Library::find_track`] → stream bytes and seek index → [`audio::playback::play`].
//! Networking (DHT, gossip, blob transfer between nodes) comes next.

pub mod audio;
mod cache;
pub mod config;
pub mod control;
pub mod daemon;
pub mod error;
pub mod fetch;
pub mod import;
pub mod library;
pub mod net;
pub mod transfer;

pub use error::Error;
