//! The listen receipt (`records.md`, "Listen receipt"): its exact signed bytes, its id, its
//! binary storage form and its JSON line.

use serde::{Deserialize, Serialize};

use crate::error::FieldError;
use crate::identity::Keypair;
use crate::key::{ContentHash, PublicKey, Signature};
use crate::record::Fields;
use crate::signature::Signed;

/// Domain tag that starts every receipt's signed message: `9ten/receipt/v1` and a zero byte.
pub const RECEIPT_TAG: &[u8; 16] = b"9ten/receipt/v1\0";
/// Length of a receipt's signed message.
pub const MESSAGE_LEN: usize = 168;
/// Length of a receipt's binary form: signed message, then signature.
pub const RECORD_LEN: usize = MESSAGE_LEN + Signature::LEN;

/// What a listener states about one listen. Field order is the signed order, so the derived
/// ordering sorts like the signed bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Receipt {
    /// The listener's key for the month the listen started in.
    pub listener: PublicKey,
    /// The listener's own counter: every receipt it signs gets a new one.
    pub seq: u64,
    /// The track's content id.
    pub track: ContentHash,
    /// The artist's key.
    pub artist: PublicKey,
    /// Start of the listen, Unix time in milliseconds, UTC.
    pub started_at_ms: u64,
    /// How long the listener listened.
    pub listened_ms: u32,
    /// The track's length.
    pub track_ms: u32,
    /// Key of the node the listener belongs to.
    pub home_node: PublicKey,
}

/// A receipt and one signature over it: one *copy* of a record. Copies with the same
/// [`Receipt`] are the same record, whatever their signatures (`records.md`, "Rules for
/// readers"), and share one [`SignedReceipt::id`]; `==` compares the signature too.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SignedReceipt {
    /// What is signed.
    pub receipt: Receipt,
    /// The listener's signature over [`Receipt::message`].
    pub sig: Signature,
}

impl Receipt {
    /// The exact signed message.
    pub fn message(&self) -> [u8; MESSAGE_LEN] {
        let mut m = [0u8; MESSAGE_LEN];
        let mut w = Writer(&mut m[..]);
        w.put(RECEIPT_TAG);
        w.put(&self.listener.0);
        w.put(&self.seq.to_be_bytes());
        w.put(&self.track.0);
        w.put(&self.artist.0);
        w.put(&self.started_at_ms.to_be_bytes());
        w.put(&self.listened_ms.to_be_bytes());
        w.put(&self.track_ms.to_be_bytes());
        w.put(&self.home_node.0);
        debug_assert!(w.0.is_empty());
        m
    }

    /// Signs the receipt with `key`, which must be the listener's month key: the result
    /// verifies only if `key.public() == self.listener`.
    pub fn sign(self, key: &Keypair) -> SignedReceipt {
        SignedReceipt {
            sig: key.sign(&self.message()),
            receipt: self,
        }
    }

    /// End of the listen: `started_at_ms + listened_ms`.
    pub fn ended_at_ms(&self) -> u64 {
        self.started_at_ms
            .saturating_add(u64::from(self.listened_ms))
    }
}

impl SignedReceipt {
    /// The binary form: signed message then signature.
    pub fn to_bytes(&self) -> [u8; RECORD_LEN] {
        let mut b = [0u8; RECORD_LEN];
        b[..MESSAGE_LEN].copy_from_slice(&self.receipt.message());
        b[MESSAGE_LEN..].copy_from_slice(&self.sig.0);
        b
    }

    /// Reads the binary form written by [`SignedReceipt::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, FieldError> {
        if bytes.len() != RECORD_LEN {
            return Err(FieldError::new(
                "(record)",
                format!("expected {RECORD_LEN} bytes, found {}", bytes.len()),
            ));
        }
        let mut r = Fields::new(bytes);
        if r.take::<16>("tag")? != *RECEIPT_TAG {
            return Err(FieldError::new("tag", "not a 9ten/receipt/v1 record"));
        }
        let receipt = Receipt {
            listener: r.key("listener")?,
            seq: r.u64("seq")?,
            track: r.hash("track")?,
            artist: r.key("artist")?,
            started_at_ms: r.u64("started_at_ms")?,
            listened_ms: r.u32("listened_ms")?,
            track_ms: r.u32("track_ms")?,
            home_node: r.key("home_node")?,
        };
        Ok(Self {
            receipt,
            sig: Signature(r.take("sig")?),
        })
    }

    /// The record's id: BLAKE3 of its signed message alone, so every copy of one receipt has
    /// the same id whatever its signature.
    pub fn id(&self) -> ContentHash {
        ContentHash::of(&self.receipt.message())
    }

    /// The JSON line (without newline), fields in the order of `records.md`.
    pub fn to_json(&self) -> String {
        let r = &self.receipt;
        serde_json::to_string(&ReceiptJson {
            v: 1,
            listener: r.listener,
            seq: r.seq,
            track: r.track,
            artist: r.artist,
            started_at_ms: r.started_at_ms,
            listened_ms: r.listened_ms,
            track_ms: r.track_ms,
            home_node: r.home_node,
            sig: self.sig,
        })
        .expect("a receipt always serializes")
    }

    /// Reads one JSON object. Every field is required, unknown fields are refused, and the
    /// error names the field that is wrong. The signature is not checked here.
    pub fn from_json(text: &str) -> Result<Self, FieldError> {
        let mut de = serde_json::Deserializer::from_str(text);
        let j: ReceiptJson =
            serde_path_to_error::deserialize(&mut de).map_err(FieldError::from_json)?;
        de.end()
            .map_err(|e| FieldError::new("(record)", format!("trailing characters: {e}")))?;
        if j.v != 1 {
            return Err(FieldError::new("v", format!("unknown version {}", j.v)));
        }
        Ok(Self {
            receipt: Receipt {
                listener: j.listener,
                seq: j.seq,
                track: j.track,
                artist: j.artist,
                started_at_ms: j.started_at_ms,
                listened_ms: j.listened_ms,
                track_ms: j.track_ms,
                home_node: j.home_node,
            },
            sig: j.sig,
        })
    }
}

impl Signed for SignedReceipt {
    fn signer(&self) -> &PublicKey {
        &self.receipt.listener
    }
    fn signature(&self) -> &Signature {
        &self.sig
    }
    fn write_message(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.receipt.message());
    }
}

/// The wire form of `records.md`; never used outside this module.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReceiptJson {
    v: u64,
    listener: PublicKey,
    seq: u64,
    track: ContentHash,
    artist: PublicKey,
    started_at_ms: u64,
    listened_ms: u32,
    track_ms: u32,
    home_node: PublicKey,
    sig: Signature,
}

/// Writes fields into a fixed buffer in order.
pub(crate) struct Writer<'a>(pub(crate) &'a mut [u8]);

impl Writer<'_> {
    pub(crate) fn put(&mut self, bytes: &[u8]) {
        let (head, tail) = std::mem::take(&mut self.0).split_at_mut(bytes.len());
        head.copy_from_slice(bytes);
        self.0 = tail;
    }
}

/// The `home_node` of a receipt whose listener has no home node: 32 zero bytes, a key no node
/// can have (a small-order point), so such a receipt moves no money and names no node.
/// A listener's own node is never named there: that would link its month keys to the node.
pub const NO_HOME_NODE: PublicKey = PublicKey([0; 32]);

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SignedReceipt {
        let key = Keypair::from_seed([1; 32]);
        Receipt {
            listener: key.public(),
            seq: 7,
            track: ContentHash([2; 32]),
            artist: PublicKey([3; 32]),
            started_at_ms: 1_761_955_200_000,
            listened_ms: 183_000,
            track_ms: 200_000,
            home_node: PublicKey([4; 32]),
        }
        .sign(&key)
    }

    #[test]
    fn message_layout_matches_spec() {
        let r = sample();
        let m = r.receipt.message();
        assert_eq!(&m[..16], b"9ten/receipt/v1\0");
        assert_eq!(&m[16..48], &r.receipt.listener.0);
        assert_eq!(&m[48..56], &7u64.to_be_bytes());
        assert_eq!(&m[120..128], &1_761_955_200_000u64.to_be_bytes());
        assert_eq!(&m[128..132], &183_000u32.to_be_bytes());
        assert_eq!(&m[132..136], &200_000u32.to_be_bytes());
        assert_eq!(&m[136..], &[4; 32]);
    }

    #[test]
    fn binary_and_json_round_trip() {
        let r = sample();
        assert_eq!(SignedReceipt::from_bytes(&r.to_bytes()).unwrap(), r);
        assert_eq!(SignedReceipt::from_json(&r.to_json()).unwrap(), r);
        assert!(crate::signature::verify_record(&r));
    }

    #[test]
    fn id_is_blake3_of_the_signed_message_alone() {
        let r = sample();
        assert_eq!(r.id(), ContentHash::of(&r.receipt.message()));
        let mut resigned = r;
        resigned.sig.0[5] ^= 1;
        assert_eq!(resigned.id(), r.id());
        let mut other = r;
        other.receipt.seq += 1;
        assert_ne!(other.id(), r.id());
    }

    #[test]
    fn json_errors_name_the_field() {
        let good = sample().to_json();
        let cases = [
            (good.replace("\"seq\":7", "\"seq\":-7"), "seq"),
            (good.replace("\"seq\":7", "\"seq\":7.5"), "seq"),
            (good.replace("\"seq\":7,", ""), "seq"),
            (good.replace("\"v\":1", "\"v\":2"), "v"),
            (good.replace("183000", "4294967296"), "listened_ms"),
            (good.replace("\"track\":\"02", "\"track\":\"2"), "track"),
            (good.replace("\"track\":\"02", "\"track\":\"0X"), "track"),
            (good.replacen('{', "{\"extra\":1,", 1), "extra"),
            (good.replace("\"seq\":7", "\"seq\":7,\"seq\":8"), "seq"),
        ];
        for (text, field) in cases {
            let err = SignedReceipt::from_json(&text).unwrap_err();
            assert_eq!(err.field, field, "{text}: {err}");
        }
        assert!(SignedReceipt::from_json("{").is_err());
        assert!(SignedReceipt::from_json(&format!("{good} {{}}")).is_err());
    }
}
