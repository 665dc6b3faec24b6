//! 9ten's durable store: what a node must never lose.
//!
//! | module | holds |
//! |---|---|
//! | [`store`] | [`Store`]: receipts (by id, by listener and seq, by month), subscriptions, release manifests, tallies and secrets in one sled database |
//! | [`review`] | the month's review records (`review.md`) and each bundle's inputs, in pages |
//! | [`renewal`] | a home node's private links between a listener's month keys, a listener's standing order |
//! | [`keys`] | the byte layout of every database key, with its version prefix |
//! | [`keyfile`] | key files on disk: created with mode 0600, refused when others can read them |
//! | [`error`] | [`Error`], with the operation or path that failed |
//!
//! Durability: every write method returns only after sled has flushed the write to disk, so
//! whatever a caller was told is stored survives a crash (tested by killing a writer with
//! SIGKILL). A write of many records is one atomic batch: all of it or none.

pub mod error;
pub mod keyfile;
pub mod keys;
pub mod renewal;
pub mod review;
pub mod store;

pub use error::Error;
pub use store::{CacheEntry, Store, StoredTally};
