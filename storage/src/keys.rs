//! The byte layout of database keys. Every key starts with a one-byte kind and the schema
//! version, so a later schema can live beside this one; integers are big-endian so that
//! sled's byte order is the natural order (by listener then seq, by month).

use nineten_protocol::key::{ContentHash, PublicKey};
use nineten_protocol::month::Month;
use nineten_protocol::review_record::Subject;

/// The schema these keys belong to.
pub const SCHEMA: u8 = 1;

/// The kinds of key, each a distinct first byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// Store metadata (the schema version).
    Meta = b'M',
    /// A receipt: listener, seq, id; value is its binary form.
    Receipt = b'r',
    /// Index: year, month, listener; one entry per listener with receipts that month.
    ListenerInMonth = b'm',
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
    /// A cached blob (a track fetched from peers): value is its size and last use.
    Cached = b'c',
    /// A listener key's receipt counter: value is the next seq.
    Seq = b'q',
    /// Index: a receipt's id; value is its listener and seq (the rest of its key).
    ReceiptById = b'i',
    /// A node record by id: value is its binary form.
    NodeRecord = b'o',
    /// A subscription request waiting for the operator, by request id: value is the request
    /// as the node encodes it.
    Pending = b'p',
    /// A review record (`review.md`: daily report, bundle, attestation, dispute, verdict) by
    /// id: value is its binary form.
    Review = b'v',
    /// Index: a review record's subject (see [`review_subject`]), then its id.
    ReviewBySubject = b'w',
    /// The sets a review record's roots name (a bundle's inputs, a dispute's evidence, a
    /// verdict's receipts): record id, part, page; value is the page's items.
    RecordSet = b'b',
    /// A home node's detailed day (per listener pseudonym, per track), sealed: year, month,
    /// day; value is the sealed bytes.
    DayDetail = b'd',
    /// A home node's private carry link: the month renewed into, the listener's key of the
    /// month before; value is its key of the month renewed into.
    Renewal = b'l',
    /// A listener's standing order to renew its subscription each month: value is the home
    /// node's key and the payment reference.
    StandingOrder = b'u',
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

/// A receipt: a listener's receipts are neighbours, ordered by seq. Month keys make this
/// the month index too: a listener key signs one month's receipts.
pub fn receipt(listener: &PublicKey, seq: u64, id: &ContentHash) -> Vec<u8> {
    key(Kind::Receipt, &[&listener.0, &seq.to_be_bytes(), &id.0])
}

/// The prefix of all receipts.
pub fn receipts() -> Vec<u8> {
    key(Kind::Receipt, &[])
}

/// The prefix of one listener's receipts.
pub fn receipts_of_listener(listener: &PublicKey) -> Vec<u8> {
    key(Kind::Receipt, &[&listener.0])
}

/// A listener with receipts in `month`.
pub fn listener_in_month(month: Month, listener: &PublicKey) -> Vec<u8> {
    key(Kind::ListenerInMonth, &[&month_bytes(month), &listener.0])
}

/// The prefix of the listeners with receipts in `month`.
pub fn listeners_in_month(month: Month) -> Vec<u8> {
    key(Kind::ListenerInMonth, &[&month_bytes(month)])
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

/// The prefix of all subscriptions.
pub fn subscriptions() -> Vec<u8> {
    key(Kind::Subscription, &[])
}

/// The prefix of one listener key's subscriptions (a listener key belongs to one month).
pub fn subscriptions_of_listener(month: Month, listener: &PublicKey) -> Vec<u8> {
    key(
        Kind::SubscriptionByMonth,
        &[&month_bytes(month), &listener.0],
    )
}

/// A node record by id.
pub fn node_record(id: &ContentHash) -> Vec<u8> {
    key(Kind::NodeRecord, &[&id.0])
}

/// The prefix of all node records.
pub fn node_records() -> Vec<u8> {
    key(Kind::NodeRecord, &[])
}

/// A pending subscription request by id.
pub fn pending(id: &ContentHash) -> Vec<u8> {
    key(Kind::Pending, &[&id.0])
}

/// The prefix of all pending subscription requests.
pub fn pendings() -> Vec<u8> {
    key(Kind::Pending, &[])
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

/// A cached blob.
pub fn cached(blob: &ContentHash) -> Vec<u8> {
    key(Kind::Cached, &[&blob.0])
}

/// The prefix of all cached blobs.
pub fn cache() -> Vec<u8> {
    key(Kind::Cached, &[])
}

/// A listener key's receipt counter.
pub fn seq(listener: &PublicKey) -> Vec<u8> {
    key(Kind::Seq, &[&listener.0])
}

/// A receipt's entry in the id index.
pub fn receipt_by_id(id: &ContentHash) -> Vec<u8> {
    key(Kind::ReceiptById, &[&id.0])
}

/// The metadata key that says the receipt id index is complete (stores made before it
/// existed build it on open).
pub fn receipt_id_index_built() -> Vec<u8> {
    key(Kind::Meta, &[b"index:receipt-id"])
}

/// A review record by id.
pub fn review(id: &ContentHash) -> Vec<u8> {
    key(Kind::Review, &[&id.0])
}

/// The prefix of all review records.
pub fn reviews() -> Vec<u8> {
    key(Kind::Review, &[])
}

/// The prefix of the review records about one subject: a home node's month (0, home, year,
/// month), a bundle (1, id) or a dispute (2, id).
pub fn review_subject(subject: &Subject) -> Vec<u8> {
    match subject {
        Subject::Month(home, month) => key(
            Kind::ReviewBySubject,
            &[&[0], &home.0, &month_bytes(*month)],
        ),
        Subject::Bundle(id) => key(Kind::ReviewBySubject, &[&[1], &id.0]),
        Subject::Dispute(id) => key(Kind::ReviewBySubject, &[&[2], &id.0]),
    }
}

/// One page of one part of a review record's sets.
pub fn record_set(record: &ContentHash, part: u8, page: u32) -> Vec<u8> {
    key(Kind::RecordSet, &[&record.0, &[part], &page.to_be_bytes()])
}

/// The prefix of one part of a review record's sets.
pub fn record_sets(record: &ContentHash, part: u8) -> Vec<u8> {
    key(Kind::RecordSet, &[&record.0, &[part]])
}

/// A carry link: `previous` (the listener's key of the month before) renewed into `month`.
pub fn renewal(month: Month, previous: &PublicKey) -> Vec<u8> {
    key(Kind::Renewal, &[&month_bytes(month), &previous.0])
}

/// The listener's standing order.
pub fn standing_order() -> Vec<u8> {
    key(Kind::StandingOrder, &[])
}

/// A home node's detailed day.
pub fn day_detail(year: u16, month: u8, day: u8) -> Vec<u8> {
    key(Kind::DayDetail, &[&year.to_be_bytes(), &[month, day]])
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
    fn receipts_sort_by_listener_then_seq() {
        let (a, b) = (PublicKey([1; 32]), PublicKey([2; 32]));
        let id = ContentHash([0; 32]);
        let keys = [
            receipt(&a, 1, &id),
            receipt(&a, 256, &id),
            receipt(&b, 0, &id),
        ];
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
        assert!(keys[1].starts_with(&receipts_of_listener(&a)));
        assert!(!keys[2].starts_with(&receipts_of_listener(&a)));
        assert_eq!(id_at_end(&keys[1]), Some(id));
        let october: Month = "2026-10".parse().unwrap();
        assert!(listener_in_month(october, &a).starts_with(&listeners_in_month(october)));
        assert!(
            !listener_in_month(october.next().unwrap(), &a)
                .starts_with(&listeners_in_month(october))
        );
    }
}
