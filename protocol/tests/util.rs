//! Builders for test worlds: listeners, artists, nodes, receipts and subscriptions.

use std::collections::BTreeMap;

use nineten_protocol::identity::{Keypair, ListenerSecret};
use nineten_protocol::key::{ContentHash, PublicKey};
use nineten_protocol::money::MicroUsdp;
use nineten_protocol::month::Month;
use nineten_protocol::receipt::{Receipt, SignedReceipt};
use nineten_protocol::settlement::{Input, settle};
use nineten_protocol::subscription::{PaymentRef, SignedSubscription, Subscription};
use nineten_protocol::tally::Tally;

pub(crate) const MONTH: &str = "2026-10";
/// 2026-10-01T00:00:00Z.
pub(crate) const START: u64 = 1_790_812_800_000;

pub(crate) fn month() -> Month {
    MONTH.parse().unwrap()
}

pub(crate) fn listener(n: u8) -> Keypair {
    ListenerSecret::from_bytes([n; 32]).month_key(month())
}

pub(crate) fn artist(n: u8) -> PublicKey {
    Keypair::from_seed([100u8.wrapping_add(n); 32]).public()
}

pub(crate) fn node(n: u8) -> Keypair {
    Keypair::from_seed([200u8.wrapping_add(n); 32])
}

/// A fully listened 3-minute track by `artist`, starting `at_s` seconds into the month.
pub(crate) fn listen(who: &Keypair, seq: u64, artist: PublicKey, at_s: u64) -> Receipt {
    Receipt {
        listener: who.public(),
        seq,
        track: ContentHash::of(&artist.0),
        artist,
        started_at_ms: START + at_s * 1000,
        listened_ms: 180_000,
        track_ms: 180_000,
        home_node: node(0).public(),
    }
}

pub(crate) fn signed(who: &Keypair, r: Receipt) -> SignedReceipt {
    r.sign(who)
}

pub(crate) fn subscribe(who: &Keypair, home: &Keypair, reference: &str) -> SignedSubscription {
    Subscription {
        listener: who.public(),
        month: month(),
        home_node: home.public(),
        payment_ref: PaymentRef::new(reference).unwrap(),
    }
    .sign(home)
}

pub(crate) fn tally(
    receipts: &[SignedReceipt],
    subscriptions: &[SignedSubscription],
    carry: &[(PublicKey, u64)],
) -> Tally {
    let carry_in: BTreeMap<PublicKey, MicroUsdp> =
        carry.iter().map(|(k, u)| (*k, MicroUsdp(*u))).collect();
    settle(Input {
        month: month(),
        receipts,
        subscriptions,
        carry_in: &carry_in,
    })
    .unwrap()
}

pub(crate) fn units(t: &Tally, artist: PublicKey) -> u64 {
    t.artists.get(&artist).map_or(0, |u| u.0)
}
