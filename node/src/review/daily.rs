//! Daily reports (`review.md`, "Daily report"). After each UTC day ends, a home node signs its
//! commitment to the receipts of its listeners whose listen started that day and that it holds,
//! keeps the ids the report names (so that anyone holding the report can later ask for them
//! and prove an omission), and gossips it. The detailed day (per listener, per track) stays on
//! the node: listener keys are replaced by pseudonyms keyed by the node key, and the detail is
//! sealed at rest with XChaCha20-Poly1305 (the `chacha20poly1305` crate, RustCrypto) under a
//! key derived from the node key, so only this node reads it back (`9ten report day DATE`).

use std::collections::BTreeMap;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use nineten_protocol::daily::{DailyReport, Day, DayFigures, SignedDailyReport};
use nineten_protocol::identity::Keypair;
use nineten_protocol::key::{ContentHash, PublicKey};
use nineten_protocol::receipt::SignedReceipt;
use serde::{Deserialize, Serialize};

use crate::Error;

/// The first byte of a sealed day: the format.
const SEALED_V1: u8 = 1;

/// One listener's listening to one track in a day.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayRow {
    /// The listener's pseudonym: BLAKE3 keyed by the node's pseudonym key.
    pub listener: ContentHash,
    /// The track.
    pub track: ContentHash,
    /// The artist its receipts name.
    pub artist: PublicKey,
    /// Receipts.
    pub plays: u32,
    /// Those with `listened_ms >= min(30_000, track_ms / 2)`.
    pub qualified: u32,
    /// Sum of `listened_ms`.
    pub listened_ms: u64,
}

/// The detailed day: its rows, by pseudonym then track.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayDetail {
    /// The day.
    pub day: Day,
    /// The rows.
    pub rows: Vec<DayRow>,
}

/// Derives a 32-byte key for `purpose` from the node key.
fn derived(key: &Keypair, purpose: &str) -> [u8; 32] {
    blake3::derive_key(purpose, key.seed())
}

/// The signed report of `day` over `receipts` (those of the day this home node holds) and
/// the detail behind it.
pub fn report(
    key: &Keypair,
    day: Day,
    receipts: &[SignedReceipt],
) -> (SignedDailyReport, DayDetail) {
    let figures = DayFigures::of(receipts);
    let report =
        nineten_protocol::record::Record::sign(DailyReport::new(key.public(), day, &figures), key);
    let pseudonyms = derived(key, "9ten 2026 day detail pseudonyms v1");
    let mut rows: BTreeMap<(ContentHash, ContentHash), DayRow> = BTreeMap::new();
    let mut seen = std::collections::BTreeSet::new();
    for r in receipts {
        if !seen.insert(r.id()) {
            continue;
        }
        let r = &r.receipt;
        let listener = ContentHash(*blake3::keyed_hash(&pseudonyms, &r.listener.0).as_bytes());
        let row = rows.entry((listener, r.track)).or_insert(DayRow {
            listener,
            track: r.track,
            artist: r.artist,
            plays: 0,
            qualified: 0,
            listened_ms: 0,
        });
        row.plays += 1;
        if r.listened_ms >= 30_000.min(r.track_ms / 2) {
            row.qualified += 1;
        }
        row.listened_ms += u64::from(r.listened_ms);
    }
    let detail = DayDetail {
        day,
        rows: rows.into_values().collect(),
    };
    (report, detail)
}

fn cipher(key: &Keypair) -> XChaCha20Poly1305 {
    let k = derived(key, "9ten 2026 day detail sealing v1");
    XChaCha20Poly1305::new((&k).into())
}

/// The detail sealed: format byte, 24-byte random nonce, ciphertext over its JSON; the day is
/// bound in as associated data, so a sealed day cannot pass for another.
pub fn seal(key: &Keypair, detail: &DayDetail) -> Vec<u8> {
    let nonce: [u8; 24] = rand::random();
    let text = serde_json::to_vec(detail).expect("a detail serializes");
    let aad = detail.day.to_string();
    let sealed = cipher(key)
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: &text,
                aad: aad.as_bytes(),
            },
        )
        .expect("encryption of a bounded message cannot fail");
    [&[SEALED_V1][..], &nonce, &sealed].concat()
}

/// Opens a sealed day of `day`; fails on another key, another day, or damage.
pub fn open(key: &Keypair, day: Day, sealed: &[u8]) -> Result<DayDetail, Error> {
    let damaged = |why: &str| Error::Review(format!("the detailed day {day} does not open: {why}"));
    let (format, rest) = sealed.split_first().ok_or_else(|| damaged("empty"))?;
    if *format != SEALED_V1 || rest.len() < 24 {
        return Err(damaged("unknown format"));
    }
    let (nonce, text) = rest.split_at(24);
    let aad = day.to_string();
    let plain = cipher(key)
        .decrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: text,
                aad: aad.as_bytes(),
            },
        )
        .map_err(|_| damaged("wrong key, wrong day or damaged"))?;
    serde_json::from_slice(&plain).map_err(|e| damaged(&e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use nineten_protocol::identity::ListenerSecret;
    use nineten_protocol::receipt::Receipt;

    #[test]
    fn a_sealed_day_opens_only_with_its_key_and_day_and_hides_listeners() {
        let key = Keypair::from_seed([4; 32]);
        let day: Day = "2026-10-05".parse().unwrap();
        let listener = ListenerSecret::from_bytes([1; 32]).month_key(day.month());
        let receipts: Vec<SignedReceipt> = (0..3)
            .map(|seq| {
                Receipt {
                    listener: listener.public(),
                    seq,
                    track: ContentHash([seq as u8 % 2; 32]),
                    artist: PublicKey([7; 32]),
                    started_at_ms: day.bounds_ms().0 + seq * 300_000,
                    listened_ms: 40_000,
                    track_ms: 200_000,
                    home_node: key.public(),
                }
                .sign(&listener)
            })
            .collect();
        let (report, detail) = report(&key, day, &receipts);
        assert_eq!(report.body.count, 3);
        assert!(report.verifies());
        assert_eq!(detail.rows.len(), 2, "two tracks");
        assert_eq!(detail.rows.iter().map(|r| r.plays).sum::<u32>(), 3);
        assert!(
            detail
                .rows
                .iter()
                .all(|r| r.listener.0 != listener.public().0)
        );
        let sealed = seal(&key, &detail);
        assert!(
            !sealed.windows(32).any(|w| w == detail.rows[0].track.0),
            "nothing in clear"
        );
        assert_eq!(open(&key, day, &sealed).unwrap(), detail);
        assert!(open(&Keypair::from_seed([5; 32]), day, &sealed).is_err());
        assert!(open(&key, "2026-10-06".parse().unwrap(), &sealed).is_err());
        let mut damaged = sealed.clone();
        *damaged.last_mut().unwrap() ^= 1;
        assert!(open(&key, day, &damaged).is_err());
    }
}
