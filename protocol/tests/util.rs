//! Builders for test worlds: listeners, artists, nodes, receipts and subscriptions.

use std::collections::BTreeMap;

use curve25519_dalek::{EdwardsPoint, Scalar};
use nineten_protocol::identity::{Keypair, ListenerSecret};
use nineten_protocol::key::{ContentHash, PublicKey, Signature};
use nineten_protocol::money::MicroUsdp;
use nineten_protocol::month::Month;
use nineten_protocol::receipt::{Receipt, SignedReceipt};
use nineten_protocol::settlement::{Input, settle};
use nineten_protocol::subscription::{PaymentRef, SignedSubscription, Subscription};
use nineten_protocol::tally::Tally;
use sha2::{Digest, Sha512};

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

/// Another valid signature of `message` by `key`: RFC 8032 with nonce `nonce + 1` in place of
/// the deterministic one, as a signer with a randomised nonce makes.
pub(crate) fn sign_with_nonce(key: &Keypair, message: &[u8], nonce: u64) -> Signature {
    let h = Sha512::digest(key.seed());
    let mut a: [u8; 32] = h[..32].try_into().unwrap();
    a[0] &= 248;
    a[31] &= 127;
    a[31] |= 64;
    let a = Scalar::from_bytes_mod_order(a);
    let r = Scalar::from(nonce) + Scalar::ONE;
    let big_r = EdwardsPoint::mul_base(&r).compress();
    let k = Sha512::new()
        .chain_update(big_r.as_bytes())
        .chain_update(key.public().0)
        .chain_update(message)
        .finalize();
    let k = Scalar::from_bytes_mod_order_wide(&k[..].try_into().unwrap());
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(big_r.as_bytes());
    sig[32..].copy_from_slice((r + k * a).as_bytes());
    Signature(sig)
}

/// A copy of `r` with another valid signature by `who`.
pub(crate) fn resigned(who: &Keypair, r: &SignedReceipt, nonce: u64) -> SignedReceipt {
    SignedReceipt {
        receipt: r.receipt,
        sig: sign_with_nonce(who, &r.receipt.message(), nonce),
    }
}

/// A copy of `r` whose signature fails: one bit of it flipped (`bit` from 0 to 511).
pub(crate) fn corrupted(r: &SignedReceipt, bit: usize) -> SignedReceipt {
    let mut copy = *r;
    copy.sig.0[bit / 8 % 64] ^= 1 << (bit % 8);
    copy
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
