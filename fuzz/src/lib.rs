//! What the fuzz targets in `fuzz_targets/` assert, shared where several parsers yield the same
//! records: a record that decoded, from whichever form, reads back to itself from its binary
//! form and from its JSON form. The targets panic (the finding) when an assertion fails. The
//! node's part (the item set the sync targets answer from) needs the `node` feature.

#[cfg(feature = "node")]
use std::sync::OnceLock;

#[cfg(feature = "node")]
use negentropy::{Id, NegentropyStorageVector};
use nineten_protocol::key::ContentHash;
use nineten_protocol::manifest::SignedManifest;
use nineten_protocol::receipt::SignedReceipt;
use nineten_protocol::signature::{verify_all, verify_record};
use nineten_protocol::subscription::SignedSubscription;

/// A decoded receipt: binary and JSON forms read back to it; its id is BLAKE3 of its signed
/// message alone.
pub fn check_receipt(r: &SignedReceipt) {
    let bytes = r.to_bytes();
    assert_eq!(SignedReceipt::from_bytes(&bytes).as_ref(), Ok(r));
    assert_eq!(SignedReceipt::from_json(&r.to_json()).as_ref(), Ok(r));
    assert_eq!(r.id(), ContentHash::of(&r.receipt.message()));
}

/// A decoded subscription: binary and JSON forms read back to it.
pub fn check_subscription(s: &SignedSubscription) {
    assert_eq!(
        SignedSubscription::from_bytes(&s.to_bytes()).as_ref(),
        Ok(s)
    );
    assert_eq!(SignedSubscription::from_json(&s.to_json()).as_ref(), Ok(s));
}

/// A review.md record from `input` (its JSON line when `json`, else its binary form): what
/// decodes reads back to itself from both forms, and its id is BLAKE3 of its signed message.
pub fn check_record<T>(input: &[u8], json: bool)
where
    T: nineten_protocol::record::Body + PartialEq + std::fmt::Debug,
{
    use nineten_protocol::record::Record;
    let decoded = if json {
        std::str::from_utf8(input)
            .ok()
            .and_then(|t| Record::<T>::from_json(t).ok())
    } else {
        Record::<T>::from_bytes(input).ok()
    };
    if let Some(r) = decoded {
        assert_eq!(Record::<T>::from_bytes(&r.to_bytes()).as_ref(), Ok(&r));
        assert_eq!(Record::<T>::from_json(&r.to_json()).as_ref(), Ok(&r));
        assert_eq!(r.id(), ContentHash::of(&r.message()));
    }
}

/// A decoded manifest: binary and JSON forms read back to it; its id is BLAKE3 of its signed
/// message alone.
pub fn check_manifest(m: &SignedManifest) {
    let bytes = m.to_bytes();
    assert_eq!(SignedManifest::from_bytes(&bytes).as_ref(), Ok(m));
    assert_eq!(SignedManifest::from_json(&m.to_json()).as_ref(), Ok(m));
    assert_eq!(m.id(), ContentHash::of(&m.manifest.message()));
}

/// Receipts from concatenated binary forms (how sync messages carry them), each checked; the
/// batched verdicts equal the single ones, as `verify_all` promises.
pub fn check_receipt_batch(bytes: &[u8]) {
    let parsed: Vec<SignedReceipt> = bytes
        .chunks_exact(nineten_protocol::receipt::RECORD_LEN)
        .filter_map(|c| SignedReceipt::from_bytes(c).ok())
        .collect();
    parsed.iter().for_each(check_receipt);
    let single: Vec<bool> = parsed.iter().map(verify_record).collect();
    assert_eq!(verify_all(&parsed), single);
}

/// Receipts in the fuzzed side's set: more than one negentropy bucket level, so frames split.
#[cfg(feature = "node")]
pub const SET_SIZE: u32 = 600;

/// The fuzzed side's month of reconciliation items (time, id), as a sealed negentropy store.
#[cfg(feature = "node")]
pub fn item_set() -> NegentropyStorageVector {
    static SET: OnceLock<NegentropyStorageVector> = OnceLock::new();
    SET.get_or_init(|| {
        let mut set = NegentropyStorageVector::with_capacity(SET_SIZE as usize);
        for n in 0..SET_SIZE {
            let id = ContentHash::of(&n.to_be_bytes());
            set.insert(
                1_790_000_000_000 + u64::from(n) * 60_000,
                Id::from_byte_array(id.0),
            )
            .expect("not sealed yet");
        }
        set.seal().expect("sealed once");
        set
    })
    .clone()
}
