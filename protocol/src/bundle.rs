//! The bundle (`review.md`, "The bundle"): what a home node puts forward for its month, as
//! roots over the inputs it used and the digest of the tally they give; re-issued, one round
//! higher, after each verdict.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::directory::Directory;
use crate::error::FieldError;
use crate::key::{ContentHash, PublicKey, Signature};
use crate::money::MicroUsdp;
use crate::month::Month;
use crate::receipt::SignedReceipt;
use crate::record::{Body, Fields, Record, check_version, root, write_month};
use crate::settlement::{Input, SettlementError, settle};
use crate::subscription::SignedSubscription;
use crate::tally::Tally;

/// A signed bundle.
pub type SignedBundle = Record<Bundle>;

/// Domain tag of bundles.
pub const BUNDLE_TAG: &[u8; 15] = b"9ten/bundle/v1\0";

/// What a home node signs for its month.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Bundle {
    /// The home node.
    pub home: PublicKey,
    /// The month.
    pub month: Month,
    /// Root over the receipts used: all of the home node's month received before the close,
    /// void ones included, excluded ones not.
    pub receipts: ContentHash,
    /// Root over the subscriptions of the month naming the home node that it holds.
    pub subscriptions: ContentHash,
    /// [`carry_digest`] of the carry-in.
    pub carry: ContentHash,
    /// Root over the receipts excluded by verdicts.
    pub excluded: ContentHash,
    /// The directory root the home node chose its reviewers with.
    pub directory: ContentHash,
    /// The tally digest (`settlement.md`).
    pub tally: ContentHash,
    /// 0 for the first bundle, one more for each re-issue.
    pub round: u8,
}

/// What a home node closes its month over.
#[derive(Clone, Copy, Debug)]
pub struct Inputs<'a> {
    /// The receipts used: every receipt of the home node's month received before the close,
    /// void ones included, those excluded by verdicts left out.
    pub receipts: &'a [SignedReceipt],
    /// The receipts excluded by verdicts.
    pub excluded: &'a [SignedReceipt],
    /// The subscriptions of the month naming the home node.
    pub subscriptions: &'a [SignedSubscription],
    /// The carry-in of its subscribers.
    pub carry: &'a BTreeMap<PublicKey, MicroUsdp>,
}

impl Bundle {
    /// The bundle of `home`'s `month` over `inputs`, with reviewers chosen from `directory`,
    /// and the tally it commits to.
    pub fn close(
        home: PublicKey,
        month: Month,
        inputs: Inputs<'_>,
        directory: &Directory,
        round: u8,
    ) -> Result<(Self, Tally), SettlementError> {
        let tally = settle(Input {
            month,
            receipts: inputs.receipts,
            subscriptions: inputs.subscriptions,
            carry_in: inputs.carry,
        })?;
        let bundle = Self {
            home,
            month,
            receipts: root(inputs.receipts.iter().map(SignedReceipt::id)),
            subscriptions: root(inputs.subscriptions.iter().map(SignedSubscription::id)),
            carry: carry_digest(inputs.carry),
            excluded: root(inputs.excluded.iter().map(SignedReceipt::id)),
            directory: directory.root(),
            tally: tally.digest(),
            round,
        };
        Ok((bundle, tally))
    }
}

/// The `carry` field: BLAKE3 of a count u32, then (listener key, units u64) in ascending key
/// order, zero entries kept: the layout of the tally's `carry_out` list.
pub fn carry_digest(carry: &BTreeMap<PublicKey, MicroUsdp>) -> ContentHash {
    let mut h = blake3::Hasher::new();
    let count = u32::try_from(carry.len()).expect("fewer than 2^32 listeners");
    h.update(&count.to_be_bytes());
    for (listener, units) in carry {
        h.update(&listener.0);
        h.update(&units.0.to_be_bytes());
    }
    ContentHash(*h.finalize().as_bytes())
}

impl Body for Bundle {
    const TAG: &'static [u8] = BUNDLE_TAG;
    type Json = BundleJson;

    fn signer(&self) -> &PublicKey {
        &self.home
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.home.0);
        write_month(self.month, out);
        for h in [
            self.receipts,
            self.subscriptions,
            self.carry,
            self.excluded,
            self.directory,
            self.tally,
        ] {
            out.extend_from_slice(&h.0);
        }
        out.push(self.round);
    }

    fn read(f: &mut Fields<'_>) -> Result<Self, FieldError> {
        Ok(Self {
            home: f.key("home")?,
            month: f.month("month")?,
            receipts: f.hash("receipts")?,
            subscriptions: f.hash("subscriptions")?,
            carry: f.hash("carry")?,
            excluded: f.hash("excluded")?,
            directory: f.hash("directory")?,
            tally: f.hash("tally")?,
            round: f.u8("round")?,
        })
    }

    fn to_json(&self, sig: Signature) -> BundleJson {
        BundleJson {
            v: 1,
            home: self.home,
            month: self.month,
            receipts: self.receipts,
            subscriptions: self.subscriptions,
            carry: self.carry,
            excluded: self.excluded,
            directory: self.directory,
            tally: self.tally,
            round: self.round,
            sig,
        }
    }

    fn from_json(j: BundleJson) -> Result<(Self, Signature), FieldError> {
        check_version(j.v)?;
        Ok((
            Self {
                home: j.home,
                month: j.month,
                receipts: j.receipts,
                subscriptions: j.subscriptions,
                carry: j.carry,
                excluded: j.excluded,
                directory: j.directory,
                tally: j.tally,
                round: j.round,
            },
            j.sig,
        ))
    }
}

/// The JSON form of a bundle.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleJson {
    v: u64,
    home: PublicKey,
    month: Month,
    receipts: ContentHash,
    subscriptions: ContentHash,
    carry: ContentHash,
    excluded: ContentHash,
    directory: ContentHash,
    tally: ContentHash,
    round: u8,
    sig: Signature,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Keypair;

    #[test]
    fn layout_round_trip_and_errors() {
        let home = Keypair::from_seed([5; 32]);
        let b = Record::sign(
            Bundle {
                home: home.public(),
                month: "2026-10".parse().unwrap(),
                receipts: root([ContentHash([1; 32])]),
                subscriptions: root([]),
                carry: carry_digest(&BTreeMap::new()),
                excluded: root([]),
                directory: ContentHash([2; 32]),
                tally: ContentHash([3; 32]),
                round: 1,
            },
            &home,
        );
        let m = b.message();
        assert_eq!(&m[..15], b"9ten/bundle/v1\0");
        assert_eq!(m.len(), 15 + 32 + 3 + 6 * 32 + 1);
        assert_eq!(m[m.len() - 1], 1);
        assert!(b.verifies());
        assert_eq!(SignedBundle::from_json(&b.to_json()).unwrap(), b);
        assert_eq!(SignedBundle::from_bytes(&b.to_bytes()).unwrap(), b);
        let json = b.to_json();
        assert!(json.starts_with("{\"v\":1,\"home\":"));
        assert!(json.contains("\"month\":\"2026-10\",\"receipts\":"));
        let bad = json.replace("\"round\":1", "\"round\":256");
        assert_eq!(SignedBundle::from_json(&bad).unwrap_err().field, "round");
        let bad = json.replace("\"tally\":\"03", "\"tally\":\"0g");
        assert_eq!(SignedBundle::from_json(&bad).unwrap_err().field, "tally");
    }

    #[test]
    fn the_carry_digest_keeps_zero_entries() {
        let mut carry = BTreeMap::new();
        carry.insert(PublicKey([1; 32]), MicroUsdp(0));
        let mut expected = 1u32.to_be_bytes().to_vec();
        expected.extend_from_slice(&[1; 32]);
        expected.extend_from_slice(&0u64.to_be_bytes());
        assert_eq!(carry_digest(&carry), ContentHash::of(&expected));
        assert_ne!(carry_digest(&carry), carry_digest(&BTreeMap::new()));
    }
}
