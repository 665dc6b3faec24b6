//! A listen becomes a durable signed receipt: [`Receipts::record`] takes what was heard (the
//! track as the listener chose it, with its release and so its artist; when the listen started;
//! how long it lasted) and returns the receipt, signed by the listener's key for the month the
//! listen started in and already flushed to the store. The player calls it when a listen ends;
//! anything else that learns of a listen (a scrobble) calls it the same way. Gossip comes
//! after, and only of what is stored: a receipt handed out is never lost.
//!
//! Honest by construction: `listened_ms` is cut to the time the node's [`Clock`] says passed
//! since the listen started, and the seq comes from [`Store::next_seq`], which never repeats a
//! seq the store holds (a folder restored from an old backup does not equivocate).

use nineten_protocol::identity::ListenerSecret;
use nineten_protocol::key::PublicKey;
use nineten_protocol::month::Month;
use nineten_protocol::receipt::{NO_HOME_NODE, Receipt, SignedReceipt};
use nineten_storage::Store;
use thiserror::Error;

use crate::clock::Clock;
use crate::library::TrackRef;

/// Why a listen got no receipt.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ReceiptError {
    /// Nothing was heard (or the clock says no time passed).
    #[error("nothing was heard: no receipt")]
    NothingHeard,
    /// The listen starts in no month 9ten can name.
    #[error("the listen starts at {0} ms, after 9999-12")]
    OutOfTime(u64),
    /// The store failed.
    #[error("storing the receipt")]
    Storage(#[from] nineten_storage::Error),
    /// The blocking task that stores it failed.
    #[error("the task storing the receipt failed")]
    Task(#[from] tokio::task::JoinError),
}

/// A listen, as heard.
#[derive(Clone, Debug)]
pub struct Heard<'a> {
    /// The track, with the release the listener chose (whose artist the receipt pays).
    pub track: &'a TrackRef,
    /// When the listen started, Unix milliseconds by the node's clock.
    pub started_at_ms: u64,
    /// Audio heard, in milliseconds (cut to the clock's measure).
    pub listened_ms: u32,
}

/// Signs and stores the receipts of one listener. Each names the home node of the month key's
/// subscription that counts ([`crate::home::home_of`]), or none: never this node, which would
/// link the listener's month keys to it (docs/privacy.md).
#[derive(Clone, Debug)]
pub struct Receipts {
    store: Store,
    listener: ListenerSecret,
    clock: Clock,
}

impl Receipts {
    /// Receipts of `listener`'s listens, kept in `store`, timed by `clock`.
    pub fn new(store: Store, listener: ListenerSecret, clock: Clock) -> Self {
        Self {
            store,
            listener,
            clock,
        }
    }

    /// The listener's key pair for `month`.
    pub fn month_keypair(&self, month: Month) -> nineten_protocol::identity::Keypair {
        self.listener.month_key(month)
    }

    /// The listener's key for `month`.
    pub fn listener_key(&self, month: Month) -> PublicKey {
        self.listener.month_key(month).public()
    }

    /// The signed receipt of a listen, durable when it returns.
    pub async fn record(&self, heard: Heard<'_>) -> Result<SignedReceipt, ReceiptError> {
        let now = self.clock.now_ms();
        let took = now.saturating_sub(heard.started_at_ms);
        let listened_ms = heard
            .listened_ms
            .min(u32::try_from(took).unwrap_or(u32::MAX));
        if listened_ms == 0 {
            return Err(ReceiptError::NothingHeard);
        }
        let month = Month::containing(heard.started_at_ms)
            .ok_or(ReceiptError::OutOfTime(heard.started_at_ms))?;
        let key = self.listener.month_key(month);
        let store = self.store.clone();
        let unsigned = Receipt {
            listener: key.public(),
            seq: 0,
            track: heard.track.track.hash,
            artist: heard.track.release.manifest.artist,
            started_at_ms: heard.started_at_ms,
            listened_ms,
            track_ms: heard.track.track.duration_ms,
            home_node: NO_HOME_NODE,
        };
        tokio::task::spawn_blocking(move || -> Result<SignedReceipt, ReceiptError> {
            let home_node = crate::home::home_of(&store, &key.public(), month)?;
            let seq = store.next_seq(&key.public())?;
            let receipt = Receipt {
                seq,
                home_node,
                ..unsigned
            }
            .sign(&key);
            store.put_receipts(&[receipt], now)?;
            Ok(receipt)
        })
        .await?
    }
}
