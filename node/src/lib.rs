//! A 9ten node.
//!
//! | module | holds |
//! |---|---|
//! | [`audio`] | decoding artists' files, resampling, Opus encoding, Ogg Opus streams and seek indexes, playback and sinks |
//! | [`import`] | an album of files to a signed release: tracks encoded in parallel, numbered, tagged, hashed |
//! | [`library`] | the node's content: the iroh-blobs file store (streams, seek indexes) and the sled store (manifests, receipts) |
//! | [`net`] | the libp2p network: Kademlia, gossip of receipts and releases, reconciliation, catalog catch-up |
//! | [`transfer`] | the iroh endpoint serving the library's blobs; provider connections and scores |
//! | [`fetch`] | streaming one blob from several providers at once, verified, in the order playback needs |
//! | `cache` | fetched tracks kept under a size limit, least recently played first out |
//! | [`clock`] | the time as the node reads it: the system clock, or a manual one tests move |
//! | [`receipts`] | a listen becomes a durable signed receipt |
//! | [`review`] | the month's review: bundles, attestations, disputes, verdicts, on the node's clock |
//! | [`daemon`] | a running node ([`daemon::Node`]): publish, catalog, search, play, receipts when a listen ends |
//! | [`control`] | the control API other commands use to talk to a running node |
//! | [`config`] | where a node keeps its data; the config file |
//! | [`error`] | [`Error`] |
//!
//! Data flow of an import: files → [`import::prepare`] (decode, resample, encode on all cores,
//! write Ogg Opus and a seek index per track, sign the manifest) → [`library::Library::add_release`]
//! (blobs with named tags, then the manifest; all or nothing). Playback of a track held
//! elsewhere: [`daemon::Node::play`] → providers from the DHT ([`net::Client::providers`]) →
//! [`fetch::Fetch`] (verified ranges from all of them) → [`audio::playback::play`] reading
//! through [`fetch::FetchReader`] → a signed receipt, gossiped.

pub mod audio;
mod cache;
pub mod clock;
pub mod config;
pub mod control;
pub mod daemon;
pub mod error;
pub mod fetch;
pub mod home;
pub mod import;
pub mod library;
pub mod net;
pub mod receipts;
pub mod review;
pub mod transfer;

pub use error::Error;
