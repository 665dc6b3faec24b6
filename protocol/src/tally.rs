//! A month's tally: who gets paid what, what was void and why, and the canonical encoding
//! whose BLAKE3 digest the three reviewers sign (`settlement.md`, "Canonical encoding and
//! digest").

use std::collections::BTreeMap;

use serde::Serialize;

use crate::key::{ContentHash, PublicKey};
use crate::money::MicroUsdp;
use crate::month::Month;

/// Domain tag that starts the canonical encoding of a tally.
pub const TALLY_TAG: &[u8; 14] = b"9ten/tally/v1\0";

/// How many receipts each rule of `settlement.md` voided; a receipt counts under the first
/// rule that voids it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct VoidCounts {
    /// Rule 1: no signature of the receipt verifies against the listener's key (copies of one
    /// signed message are one receipt, counted once).
    pub signature: u64,
    /// Rule 2: `track_ms` is 0, or `listened_ms > track_ms + 2_000`.
    pub length: u64,
    /// Rule 3: the listener signed different receipts with the same sequence number.
    pub equivocation: u64,
    /// Rule 4: the listen started more than a second before the previous kept one ended.
    pub overlap: u64,
}

impl VoidCounts {
    /// All void receipts.
    pub fn total(&self) -> u64 {
        self.signature + self.length + self.equivocation + self.overlap
    }

    pub(crate) fn add(&mut self, other: &Self) {
        self.signature += other.signature;
        self.length += other.length;
        self.equivocation += other.equivocation;
        self.overlap += other.overlap;
    }
}

/// An anomaly settlement flags for the fraud checks.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Flag {
    /// `listener` signed `copies` different receipts with sequence number `seq`.
    Equivocation {
        /// The listener's month key.
        listener: PublicKey,
        /// The sequence number used more than once.
        seq: u64,
        /// How many different receipts carry it.
        copies: u64,
    },
    /// The receipt `seq` of `listener` overlaps the listen before it.
    Overlap {
        /// The listener's month key.
        listener: PublicKey,
        /// The voided receipt's sequence number.
        seq: u64,
    },
}

/// Counts that explain a tally; not part of what reviewers sign.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Receipts given that started outside the month (ignored).
    pub outside_month: u64,
    /// Distinct receipts of the month: copies of one signed message count once, whatever their
    /// signatures.
    pub receipts: u64,
    /// Receipts kept after the four rules.
    pub kept: u64,
    /// Kept receipts that are qualified listens.
    pub qualified: u64,
    /// Listeners with a counting subscription for the month.
    pub subscribers: u64,
    /// Distinct subscriptions of the month none of whose copies has a valid signature.
    pub subscriptions_invalid: u64,
    /// Valid distinct subscriptions of the month that another one for the same listener
    /// outranks.
    pub subscriptions_superseded: u64,
}

/// The result of settling a month.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tally {
    /// The month settled.
    pub month: Month,
    /// Per artist: the sum of its shares over all subscribers (artists in some top 9).
    pub artists: BTreeMap<PublicKey, MicroUsdp>,
    /// Per home node: operator income, 1 USDP per subscriber homed there.
    pub operators: BTreeMap<PublicKey, MicroUsdp>,
    /// Per listener (every subscriber and every listener with a carry-in): carry to next month.
    pub carry_out: BTreeMap<PublicKey, MicroUsdp>,
    /// Void receipts per rule.
    pub void: VoidCounts,
    /// Anomalies found, sorted.
    pub flags: Vec<Flag>,
    /// Counts that explain the result.
    pub stats: Stats,
}

impl Tally {
    /// The canonical encoding reviewers sign (`settlement.md`, "Canonical encoding and
    /// digest"): the tag, year (u16) and month (u8), then artists, operators and carry-out,
    /// each as a u32 count followed by (key, u64 units) in ascending key order, then the four
    /// void counts as u64, all big-endian.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let entries = self.artists.len() + self.operators.len() + self.carry_out.len();
        let mut b = Vec::with_capacity(TALLY_TAG.len() + 3 + 12 + entries * 40 + 32);
        b.extend_from_slice(TALLY_TAG);
        b.extend_from_slice(&self.month.year().to_be_bytes());
        b.push(self.month.month());
        for map in [&self.artists, &self.operators, &self.carry_out] {
            let count = u32::try_from(map.len()).expect("fewer than 2^32 entries");
            b.extend_from_slice(&count.to_be_bytes());
            for (key, units) in map {
                b.extend_from_slice(&key.0);
                b.extend_from_slice(&units.0.to_be_bytes());
            }
        }
        let v = &self.void;
        for count in [v.signature, v.length, v.equivocation, v.overlap] {
            b.extend_from_slice(&count.to_be_bytes());
        }
        b
    }

    /// BLAKE3 of [`Tally::canonical_bytes`].
    pub fn digest(&self) -> ContentHash {
        ContentHash::of(&self.canonical_bytes())
    }

    /// The JSON object of `9ten tally --json`:
    /// `{"month","artists","operators","carry_out","void","digest"}`.
    pub fn to_json(&self) -> String {
        serde_json::to_string(&TallyJson {
            month: self.month,
            artists: &self.artists,
            operators: &self.operators,
            carry_out: &self.carry_out,
            void: self.void,
            digest: self.digest(),
        })
        .expect("a tally always serializes")
    }

    /// Sum of all artist payouts.
    pub fn artist_total(&self) -> u128 {
        self.artists.values().map(|u| u128::from(u.0)).sum()
    }
}

#[derive(Serialize)]
struct TallyJson<'a> {
    month: Month,
    artists: &'a BTreeMap<PublicKey, MicroUsdp>,
    operators: &'a BTreeMap<PublicKey, MicroUsdp>,
    carry_out: &'a BTreeMap<PublicKey, MicroUsdp>,
    void: VoidCounts,
    digest: ContentHash,
}
