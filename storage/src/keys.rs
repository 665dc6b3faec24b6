//! The byte layout of database keys. Every key starts with a one-byte kind and the schema
//! version, so a later schema can live beside this one; integers are big-endian so that
//! sled's byte order is the natural order (by listener then seq, by month).

use nineten_protocol::key::{ContentHash, PublicKey};
use nineten_protocol::month::Month;

/// The schema these keys belong to.
pub const SCHEMA: u8 = 1;

/// The kinds of key, each a distinct first byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// Store metadata (the schema version).
    Meta = b'M',
    /// A receipt by id: value is its binary form.
    Receipt = b'r',
    /// Index: listener, seq, id.
    ReceiptByListener = b'l',
    /// Index: year, month, listener, seq, id.
    ReceiptByMonth = b'm',
    /// A subscription by id: value is its binary form.
    Subscription = b's',
    /// Index: year, month, listener, id.
    SubscriptionByMonth = b'n',
    /// A release manifest by release id: value is its binary form.
    Manifest = b'a',
    /// A tally by month: value is its canonical encoding.
    Tally = b't',
    /// A named secret: value is the key file text.
    Secret = b'k',
}

/// Builds a key of `kind` from parts.
fn key(kind: Kind, parts: &[&[u8]]) -> Vec<u8> {
    let len = 2 + parts.iter().map(|p| p.len()).sum::<usize>();
    let mut k = Vec::with_capacity(len);
    k.push(kind as u8);
    k.push(SCHEMA);
    for p in parts {
        k.extend_from_slice(p);
    }
    k
}

fn month_bytes(month: Month) -> [u8; 3] {
    let [y0, y1] = month.year().to_be_bytes();
    [y0, y1, month.month()]
}

/// The schema version key.
pub fn schema() -> Vec<u8> {
    key(Kind::Meta, &[b"schema"])
}

/// A receipt by id.
pub fn receipt(id: &ContentHash) -> Vec<u8> {
    key(Kind::Receipt, &[&id.0])
}

/// The prefix of all receipts by id.
pub fn receipts() -> Vec<u8> {
    key(Kind::Receipt, &[])
}

/// A receipt in the listener index.
pub fn receipt_by_listener(listener: &PublicKey, seq: u64, id: &ContentHash) -> Vec<u8> {
    key(
        Kind::ReceiptByListener,
        &[&listener.0, &seq.to_be_bytes(), &id.0],
    )
}

/// The prefix of one listener's receipts.
pub fn receipts_of_listener(listener: &PublicKey) -> Vec<u8> {
    key(Kind::ReceiptByListener, &[&listener.0])
}

/// A receipt in the month index.
pub fn receipt_by_month(month: Month, listener: &PublicKey, seq: u64, id: &ContentHash) -> Vec<u8> {
    key(
        Kind::ReceiptByMonth,
        &[&month_bytes(month), &listener.0, &seq.to_be_bytes(), &id.0],
    )
}

/// The prefix of one month's receipts.
pub fn receipts_of_month(month: Month) -> Vec<u8> {
    key(Kind::ReceiptByMonth, &[&month_bytes(month)])
}

/// The prefix of one listener's receipts in one month.
pub fn receipts_of_listener_in_month(month: Month, listener: &PublicKey) -> Vec<u8> {
    key(Kind::ReceiptByMonth, &[&month_bytes(month), &listener.0])
}

/// A subscription by id.
pub fn subscription(id: &ContentHash) -> Vec<u8> {
    key(Kind::Subscription, &[&id.0])
}

/// A subscription in the month index.
pub fn subscription_by_month(month: Month, listener: &PublicKey, id: &ContentHash) -> Vec<u8> {
    key(
        Kind::SubscriptionByMonth,
        &[&month_bytes(month), &listener.0, &id.0],
    )
}

/// The prefix of one month's subscriptions.
pub fn subscriptions_of_month(month: Month) -> Vec<u8> {
    key(Kind::SubscriptionByMonth, &[&month_bytes(month)])
}

/// A release manifest by release id.
pub fn manifest(id: &ContentHash) -> Vec<u8> {
    key(Kind::Manifest, &[&id.0])
}

/// The prefix of all manifests.
pub fn manifests() -> Vec<u8> {
    key(Kind::Manifest, &[])
}

/// A month's tally.
pub fn tally(month: Month) -> Vec<u8> {
    key(Kind::Tally, &[&month_bytes(month)])
}

/// A named secret.
pub fn secret(name: &str) -> Vec<u8> {
    key(Kind::Secret, &[name.as_bytes()])
}

/// The id at the end of an index key (its last 32 bytes).
pub fn id_at_end(index_key: &[u8]) -> Option<ContentHash> {
    let start = index_key.len().checked_sub(32)?;
    Some(ContentHash(index_key[start..].try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn month_index_sorts_by_month_then_listener_then_seq() {
        let m1: Month = "2026-09".parse().unwrap();
        let m2: Month = "2026-10".parse().unwrap();
        let (a, b) = (PublicKey([1; 32]), PublicKey([2; 32]));
        let id = ContentHash([0; 32]);
        let keys = [
            receipt_by_month(m1, &b, 9, &id),
            receipt_by_month(m2, &a, 1, &id),
            receipt_by_month(m2, &a, 256, &id),
            receipt_by_month(m2, &b, 0, &id),
        ];
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
        assert!(keys[1].starts_with(&receipts_of_month(m2)));
        assert!(!keys[0].starts_with(&receipts_of_month(m2)));
        assert_eq!(id_at_end(&keys[2]), Some(id));
    }
}
