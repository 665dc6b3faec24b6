//! Range-based set reconciliation of a month's receipts between two nodes.
//!
//! Gossip is best effort: a node that was offline or partitioned misses receipts. Two nodes
//! reconcile by comparing summaries (count and XOR fingerprint) of ranges of their sorted
//! receipt keys; where a range differs, the answering side lists its keys when it has few in
//! that range, or splits the range into [`FANOUT`] parts by its own keys. Equal sets cost one
//! round trip with one summary. Pure logic: the network layer carries the messages.
//!
//! Keys are the store's receipt keys (listener, seq, id), so a key found missing can be read
//! straight from the store. Every message is bounded ([`MAX_RANGES`], [`MAX_KEYS`]).

use std::collections::BTreeSet;
use std::ops::Bound;

use serde::{Deserialize, Serialize};

/// A receipt's key: listener (32), seq (8, big-endian), id (32).
pub type Key = [u8; 72];
/// Parts a differing range is split into.
pub const FANOUT: usize = 16;
/// A side lists its keys instead of splitting when it has at most this many in a range.
pub const LEAF: usize = 256;
/// Most summaries in one message.
pub const MAX_RANGES: usize = 1024;
/// Most keys in one message.
pub const MAX_KEYS: usize = 4096;

/// One side's view of a range of keys `[lower, upper)`; `upper = None` is the end.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Inclusive lower bound.
    #[serde(with = "serde_big_array")]
    pub lower: Key,
    /// Exclusive upper bound, or the end.
    #[serde(with = "serde_opt_big_array")]
    pub upper: Option<Key>,
    /// Keys in the range.
    pub count: u64,
    /// XOR of the keys' last 32 bytes (their receipt ids).
    pub fingerprint: [u8; 32],
}

/// An answer to one differing summary.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    /// The answering side's keys in the range (few enough to list).
    Keys {
        /// The range's lower bound.
        #[serde(with = "serde_big_array")]
        lower: Key,
        /// The range's upper bound.
        #[serde(with = "serde_opt_big_array")]
        upper: Option<Key>,
        /// The keys.
        #[serde(with = "serde_key_vec")]
        keys: Vec<Key>,
    },
    /// The answering side's summaries of the parts of the range.
    Split(Vec<Summary>),
}

/// The smallest key: the lower bound of the whole set.
pub const MIN: Key = [0; 72];

/// A month's receipt keys.
#[derive(Clone, Debug, Default)]
pub struct KeySet(BTreeSet<Key>);

impl KeySet {
    /// Adds a key; returns whether it was new.
    pub fn insert(&mut self, key: Key) -> bool {
        self.0.insert(key)
    }

    /// Whether the key is present.
    pub fn contains(&self, key: &Key) -> bool {
        self.0.contains(key)
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn range(&self, lower: &Key, upper: &Option<Key>) -> impl Iterator<Item = &Key> {
        let upper = match upper {
            Some(u) => Bound::Excluded(*u),
            None => Bound::Unbounded,
        };
        self.0.range((Bound::Included(*lower), upper))
    }

    /// This side's summary of `[lower, upper)`.
    pub fn summarize(&self, lower: Key, upper: Option<Key>) -> Summary {
        let mut fingerprint = [0u8; 32];
        let mut count = 0;
        for k in self.range(&lower, &upper) {
            for (f, b) in fingerprint.iter_mut().zip(&k[40..]) {
                *f ^= b;
            }
            count += 1;
        }
        Summary {
            lower,
            upper,
            count,
            fingerprint,
        }
    }

    /// The summary of the whole set: how a reconciliation starts.
    pub fn summarize_all(&self) -> Summary {
        self.summarize(MIN, None)
    }

    /// Answers the other side's summaries: nothing where ours agree, our keys where we have
    /// few (or they have few and we not too many), else our range split in [`FANOUT`] parts.
    pub fn answer(&self, theirs: &[Summary]) -> Vec<Reply> {
        let mut replies = Vec::new();
        for s in theirs.iter().take(MAX_RANGES) {
            let ours = self.summarize(s.lower, s.upper);
            if ours.count == s.count && ours.fingerprint == s.fingerprint {
                continue;
            }
            let keys: Vec<Key> = self.range(&s.lower, &s.upper).copied().collect();
            if keys.len() <= LEAF || (s.count as usize <= LEAF && keys.len() <= MAX_KEYS) {
                replies.push(Reply::Keys {
                    lower: s.lower,
                    upper: s.upper,
                    keys,
                });
            } else {
                let mut parts = Vec::with_capacity(FANOUT);
                let mut lower = s.lower;
                for j in 1..FANOUT {
                    let upper = keys[keys.len() * j / FANOUT];
                    if upper > lower {
                        parts.push(self.summarize(lower, Some(upper)));
                        lower = upper;
                    }
                }
                parts.push(self.summarize(lower, s.upper));
                replies.push(Reply::Split(parts));
            }
        }
        replies
    }

    /// Our keys in `[lower, upper)` that are not in `theirs`.
    pub fn missing_from(&self, lower: &Key, upper: &Option<Key>, theirs: &[Key]) -> Vec<Key> {
        let theirs: BTreeSet<&Key> = theirs.iter().collect();
        self.range(lower, upper)
            .filter(|k| !theirs.contains(k))
            .copied()
            .collect()
    }
}

/// What one round leaves the initiating side to do.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Step {
    /// Summaries to send in the next round.
    pub next: Vec<Summary>,
    /// Keys the other side has and we lack: fetch them.
    pub fetch: Vec<Key>,
    /// Keys we have and the other side lacks: push them.
    pub push: Vec<Key>,
}

/// The initiating side's handling of the other side's replies.
pub fn follow(ours: &KeySet, replies: &[Reply]) -> Step {
    let mut step = Step::default();
    for reply in replies {
        match reply {
            Reply::Keys { lower, upper, keys } => {
                step.fetch
                    .extend(keys.iter().filter(|k| !ours.contains(k)).copied());
                step.push.extend(ours.missing_from(lower, upper, keys));
            }
            Reply::Split(parts) => {
                for part in parts.iter().take(MAX_RANGES) {
                    let mine = ours.summarize(part.lower, part.upper);
                    if mine.count != part.count || mine.fingerprint != part.fingerprint {
                        step.next.push(mine);
                    }
                }
            }
        }
    }
    step.next.truncate(MAX_RANGES);
    step
}

mod serde_big_array {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(k: &[u8; 72], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(k)
    }
    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 72], D::Error> {
        let v = serde_bytes::ByteBuf::deserialize(d)?;
        v.as_ref()
            .try_into()
            .map_err(|_| serde::de::Error::custom("a key is 72 bytes"))
    }
}

mod serde_opt_big_array {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(k: &Option<[u8; 72]>, s: S) -> Result<S::Ok, S::Error> {
        match k {
            Some(k) => s.serialize_some(&serde_bytes::Bytes::new(k)),
            None => s.serialize_none(),
        }
    }
    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<[u8; 72]>, D::Error> {
        let v = Option::<serde_bytes::ByteBuf>::deserialize(d)?;
        v.map(|b| {
            b.as_ref()
                .try_into()
                .map_err(|_| serde::de::Error::custom("a key is 72 bytes"))
        })
        .transpose()
    }
}

mod serde_key_vec {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(keys: &[[u8; 72]], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&keys.concat())
    }
    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<[u8; 72]>, D::Error> {
        let v = serde_bytes::ByteBuf::deserialize(d)?;
        if v.len() % 72 != 0 || v.len() / 72 > super::MAX_KEYS {
            return Err(serde::de::Error::custom(
                "keys are 72 bytes each, at most MAX_KEYS",
            ));
        }
        Ok(v.chunks_exact(72)
            .map(|c| c.try_into().expect("72 bytes"))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u32) -> Key {
        let mut k = [0u8; 72];
        k[..4].copy_from_slice(&n.to_be_bytes());
        let id = blake3::hash(&n.to_be_bytes());
        k[40..].copy_from_slice(id.as_bytes());
        k
    }

    /// Runs the protocol between two sets until done; returns (rounds, a's fetch, a's push).
    fn reconcile(a: &KeySet, b: &KeySet) -> (usize, BTreeSet<Key>, BTreeSet<Key>) {
        let mut pending = vec![a.summarize_all()];
        let (mut fetch, mut push) = (BTreeSet::new(), BTreeSet::new());
        let mut rounds = 0;
        while !pending.is_empty() {
            rounds += 1;
            assert!(rounds < 20, "reconciliation must terminate");
            let replies = b.answer(&pending);
            let step = follow(a, &replies);
            fetch.extend(step.fetch);
            push.extend(step.push);
            pending = step.next;
        }
        (rounds, fetch, push)
    }

    #[test]
    fn equal_sets_take_one_round() {
        let a = KeySet((0..5000).map(key).collect());
        let (rounds, fetch, push) = reconcile(&a, &a.clone());
        assert_eq!((rounds, fetch.len(), push.len()), (1, 0, 0));
    }

    #[test]
    fn differences_are_found_exactly() {
        for (na, nb, shared) in [
            (0, 3000, 0),
            (3000, 0, 0),
            (5000, 5000, 4900),
            (10, 20_000, 5),
            (40_000, 40_000, 39_600),
        ] {
            let a = KeySet((0..na).map(key).collect());
            let b = KeySet(((na - shared)..(na - shared + nb)).map(key).collect());
            let (rounds, fetch, push) = reconcile(&a, &b);
            let want_fetch: BTreeSet<Key> = b.0.difference(&a.0).copied().collect();
            let want_push: BTreeSet<Key> = a.0.difference(&b.0).copied().collect();
            assert_eq!(fetch, want_fetch, "{na} {nb} {shared}");
            assert_eq!(push, want_push, "{na} {nb} {shared}");
            assert!(rounds <= 6, "{rounds} rounds");
        }
    }

    #[test]
    fn messages_round_trip_through_cbor_and_reject_bad_keys() {
        let replies = vec![Reply::Keys {
            lower: MIN,
            upper: Some(key(9)),
            keys: vec![key(1), key(2)],
        }];
        let mut bytes = Vec::new();
        ciborium::into_writer(&replies, &mut bytes).unwrap();
        let back: Vec<Reply> = ciborium::from_reader(bytes.as_slice()).unwrap();
        assert_eq!(back, replies);
        let bad = Reply::Split(vec![]);
        let mut bytes = Vec::new();
        ciborium::into_writer(&bad, &mut bytes).unwrap();
        // Truncated input is an error, not a panic.
        assert!(ciborium::from_reader::<Vec<Reply>, _>(&bytes[..bytes.len() / 2]).is_err());
    }
}
