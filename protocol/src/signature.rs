//! The one signature rule every 9ten verifier applies (`records.md`, "Signatures"), single
//! and batched.
//!
//! ZIP-215 (ed25519-zebra): canonical `S`, any decodable `A` and `R`, the cofactored equation
//! `[8][S]B = [8]R + [8][k]A`; and a key of small order is rejected, since anyone can sign for
//! it. Under ZIP-215 a batch accepts exactly when every signature in it would be accepted
//! alone, so batching never changes a tally.
//!
//! [`verify_all`] checks many records on all cores: records should come grouped by signer,
//! so that a key's terms combine in the batch equation; a batch that fails is split in
//! halves until the bad signatures are found, so a few bad ones cost little.
//!
//! [`verify_any`] checks records that come as copies of one signed message each
//! (`records.md`: such a record is valid when at least one of its signatures verifies): first
//! one copy of every record in one batched pass, then, in a second pass, the other copies of
//! the records whose first copy failed. Honest input costs one signature per record.

use curve25519_dalek::edwards::CompressedEdwardsY;
use ed25519_zebra::batch;
use rayon::prelude::*;

use crate::key::{PublicKey, Signature};

/// A record that carries a signature over a message that it can write out.
pub trait Signed: Sync {
    /// The key the signature must verify under.
    fn signer(&self) -> &PublicKey;
    /// The signature.
    fn signature(&self) -> &Signature;
    /// Appends the exact signed message to `out`.
    fn write_message(&self, out: &mut Vec<u8>);
}

impl<T: Signed + ?Sized> Signed for &T {
    fn signer(&self) -> &PublicKey {
        (**self).signer()
    }
    fn signature(&self) -> &Signature {
        (**self).signature()
    }
    fn write_message(&self, out: &mut Vec<u8>) {
        (**self).write_message(out)
    }
}

/// Whether `key` may sign at all: it decodes to a curve point that is not of small order.
pub fn key_is_acceptable(key: &PublicKey) -> bool {
    CompressedEdwardsY(key.0)
        .decompress()
        .is_some_and(|point| !point.is_small_order())
}

/// Verifies one signature under the 9ten rule.
pub fn verify(key: &PublicKey, message: &[u8], signature: &Signature) -> bool {
    key_is_acceptable(key)
        && ed25519_zebra::VerificationKey::try_from(key.0)
            .and_then(|vk| vk.verify(&zebra_signature(signature), message))
            .is_ok()
}

/// Verifies one record's signature under the 9ten rule.
pub fn verify_record<T: Signed>(record: &T) -> bool {
    let mut message = Vec::with_capacity(256);
    record.write_message(&mut message);
    verify(record.signer(), &message, record.signature())
}

/// Verifies every record, batched and on all cores; `result[i]` tells whether `records[i]`'s
/// signature is valid. Gives exactly what [`verify_record`] gives on each record.
pub fn verify_all<T: Signed>(records: &[T]) -> Vec<bool> {
    let mut valid = vec![false; records.len()];
    let chunk = chunk_len(records.len());
    if records.len() <= chunk {
        // One batch: on this thread, without a trip through the pool.
        verify_chunk(records, &mut valid);
        return valid;
    }
    valid
        .par_chunks_mut(chunk)
        .zip(records.par_chunks(chunk))
        .for_each(|(out, records)| verify_chunk(records, out));
    valid
}

/// Verifies records given as groups of copies (the same signed message, signatures that may
/// differ), batched and on all cores; `result[g]` tells whether at least one copy in
/// `groups[g]` has a valid signature. Gives exactly `groups[g].iter().any(verify_record)`.
/// Keep groups of one signer together, as for [`verify_all`].
pub fn verify_any<T: Signed>(groups: &[&[T]]) -> Vec<bool> {
    let firsts: Vec<&T> = groups.iter().filter_map(|copies| copies.first()).collect();
    let mut first_verdicts = verify_all(&firsts).into_iter();
    let mut valid = Vec::with_capacity(groups.len());
    // The other copies of the records whose first copy failed, and their group.
    let (mut retry, mut retry_group): (Vec<&T>, Vec<usize>) = (Vec::new(), Vec::new());
    for (g, copies) in groups.iter().enumerate() {
        let ok = !copies.is_empty()
            && first_verdicts
                .next()
                .expect("one verdict per non-empty group");
        if !ok {
            retry.extend(copies.iter().skip(1));
            retry_group.extend(std::iter::repeat_n(g, copies.len().saturating_sub(1)));
        }
        valid.push(ok);
    }
    for (g, ok) in retry_group.into_iter().zip(verify_all(&retry)) {
        valid[g] |= ok;
    }
    valid
}

/// Records per batch: big batches make the multiscalar multiplication cheaper per signature,
/// but every core needs several batches so that none sits idle at the end.
pub fn chunk_len(records: usize) -> usize {
    let per_core = records.div_ceil(rayon::current_num_threads() * 4);
    per_core.clamp(64, 8192)
}

/// Below this many signatures a failed batch is checked one by one.
const SINGLE_BELOW: usize = 8;

fn verify_chunk<T: Signed>(records: &[T], out: &mut [bool]) {
    let mut message = Vec::with_capacity(256);
    let mut items = Vec::with_capacity(records.len());
    let mut last_key: Option<(PublicKey, bool)> = None;
    for (i, record) in records.iter().enumerate() {
        let key = *record.signer();
        let acceptable = match last_key {
            Some((k, ok)) if k == key => ok,
            _ => {
                let ok = key_is_acceptable(&key);
                last_key = Some((key, ok));
                ok
            }
        };
        if !acceptable {
            continue;
        }
        message.clear();
        record.write_message(&mut message);
        let vk = ed25519_zebra::VerificationKeyBytes::from(key.0);
        items.push((
            i,
            batch::Item::from((vk, zebra_signature(record.signature()), &message)),
        ));
    }
    // Bisect failed batches with an explicit stack of index ranges into `items`. A failed
    // batch says only that something in it is bad; bisection finds a few bad signatures in
    // few checks, but with many bad ones it would check every signature about log2(n) times.
    // So batch checks may cover at most as many signatures as the chunk holds (a batch costs
    // less per signature than a single check); past that budget, what is left is checked one
    // by one, and a chunk never costs more than about twice checking it one by one.
    let mut budget = items.len();
    let mut pending = Vec::new();
    pending.push(0..items.len());
    while let Some(range) = pending.pop() {
        let part = &items[range.clone()];
        if part.is_empty() {
            continue;
        }
        if part.len() < SINGLE_BELOW || budget < part.len() {
            for (i, item) in part {
                out[*i] = item.clone().verify_single().is_ok();
            }
            continue;
        }
        budget -= part.len();
        let mut verifier = batch::Verifier::new();
        for (_, item) in part {
            verifier.queue(item.clone());
        }
        if verifier.verify(rand::rng()).is_ok() {
            for (i, _) in part {
                out[*i] = true;
            }
        } else {
            let mid = range.start + part.len() / 2;
            pending.push(range.start..mid);
            pending.push(mid..range.end);
        }
    }
}

fn zebra_signature(signature: &Signature) -> ed25519_zebra::Signature {
    ed25519_zebra::Signature::from_bytes(&signature.0)
}
