//! Test records.

use nineten_protocol::identity::{Keypair, ListenerSecret};
use nineten_protocol::key::{ContentHash, PublicKey};
use nineten_protocol::receipt::{Receipt, SignedReceipt};

/// 2026-10-01T00:00:00Z.
pub(crate) const START: u64 = 1_790_812_800_000;

pub(crate) fn listener(n: u8) -> Keypair {
    ListenerSecret::from_bytes([n; 32]).month_key("2026-10".parse().unwrap())
}

/// Receipt `seq` of listener `n`, a minute after the previous one.
pub(crate) fn receipt(key: &Keypair, seq: u64) -> SignedReceipt {
    Receipt {
        listener: key.public(),
        seq,
        track: ContentHash::of(&seq.to_be_bytes()),
        artist: PublicKey([7; 32]),
        started_at_ms: START + seq * 60_000,
        listened_ms: 60_000,
        track_ms: 200_000,
        home_node: PublicKey([9; 32]),
    }
    .sign(key)
}
