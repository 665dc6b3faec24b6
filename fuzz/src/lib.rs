//! What the fuzz targets in `fuzz_targets/` assert, shared where several parsers yield the same
//! records: a record that decoded, from whichever form, reads back to itself from its binary
//! form and from its JSON form. The targets panic (the finding) when an assertion fails. The
//! node's part (the key set the sync targets answer from) needs the `node` feature.

#[cfg(feature = "node")]
use std::sync::OnceLock;

#[cfg(feature = "node")]
use nineten_node::net::reconcile::{Key, KeySet};
use nineten_protocol::key::ContentHash;
use nineten_protocol::manifest::SignedManifest;
use nineten_protocol::receipt::SignedReceipt;
use nineten_protocol::signature::{verify_all, verify_record};
use nineten_protocol::subscription::SignedSubscription;

/// A decoded receipt: binary and JSON forms read back to it; its id is BLAKE3 of its bytes.
pub fn check_receipt(r: &SignedReceipt) {
    let bytes = r.to_bytes();
    assert_eq!(SignedReceipt::from_bytes(&bytes).as_ref(), Ok(r));
    assert_eq!(SignedReceipt::from_json(&r.to_json()).as_ref(), Ok(r));
    assert_eq!(r.id(), ContentHash::of(&bytes));
}

/// A decoded subscription: binary and JSON forms read back to it.
pub fn check_subscription(s: &SignedSubscription) {
    assert_eq!(
        SignedSubscription::from_bytes(&s.to_bytes()).as_ref(),
        Ok(s)
    );
    assert_eq!(SignedSubscription::from_json(&s.to_json()).as_ref(), Ok(s));
}

/// A decoded manifest: binary and JSON forms read back to it; its id is BLAKE3 of its bytes.
pub fn check_manifest(m: &SignedManifest) {
    let bytes = m.to_bytes();
    assert_eq!(SignedManifest::from_bytes(&bytes).as_ref(), Ok(m));
    assert_eq!(SignedManifest::from_json(&m.to_json()).as_ref(), Ok(m));
    assert_eq!(m.id(), ContentHash::of(&bytes));
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

/// A reconciliation key made from a number, spread like real ones (the id part is a hash).
#[cfg(feature = "node")]
fn key(n: u32) -> Key {
    let mut k = [0u8; 72];
    k[..4].copy_from_slice(&n.to_be_bytes());
    k[40..].copy_from_slice(ContentHash::of(&n.to_be_bytes()).as_bytes());
    k
}

/// Keys in the fuzzed side's set: more than a leaf holds, so summaries can split.
#[cfg(feature = "node")]
pub const SET_SIZE: u32 = 600;

/// The fuzzed side's month of receipt keys: `key(0)` to `key(SET_SIZE - 1)`.
#[cfg(feature = "node")]
pub fn key_set() -> &'static KeySet {
    static SET: OnceLock<KeySet> = OnceLock::new();
    SET.get_or_init(|| {
        let mut set = KeySet::default();
        for n in 0..SET_SIZE {
            set.insert(key(n));
        }
        set
    })
}
