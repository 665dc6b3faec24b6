//! Any record of `review.md` that travels between nodes after the directory: daily reports,
//! bundles, attestations, disputes and verdicts, and the payout statements signed after a
//! verified month, as one type. Each binary form starts with its
//! own domain tag, so a reader tells them apart by their first bytes and no extra framing is
//! needed; the id is the record's own.

use crate::FieldError;
use crate::bundle::{BUNDLE_TAG, SignedBundle};
use crate::daily::{DAILY_TAG, SignedDailyReport};
use crate::key::{ContentHash, PublicKey, Signature};
use crate::month::Month;
use crate::payout::{PAYOUT_TAG, SignedPayout};
use crate::review::{
    ATTESTATION_TAG, DISPUTE_TAG, SignedAttestation, SignedDispute, SignedVerdict, VERDICT_TAG,
};
use crate::signature::Signed;

/// One review record.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ReviewRecord {
    /// A home node's daily commitment.
    Daily(SignedDailyReport),
    /// A home node's bundle.
    Bundle(SignedBundle),
    /// A reviewer's (or the home node's) signature over a bundle.
    Attestation(SignedAttestation),
    /// An objection to a bundle.
    Dispute(SignedDispute),
    /// An arbiter's decision on a dispute.
    Verdict(SignedVerdict),
    /// What a home node owes an artist from its verified tally.
    Payout(SignedPayout),
}

/// What a review record is about: the way the records of one home node's month hang together.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Subject {
    /// Daily reports, bundles and payout statements: a home node's month.
    Month(PublicKey, Month),
    /// Attestations and disputes: a bundle, by id.
    Bundle(ContentHash),
    /// Verdicts: a dispute, by id.
    Dispute(ContentHash),
}

impl ReviewRecord {
    /// Reads a binary form, telling the kind by its tag; the signature is not checked here.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, FieldError> {
        if bytes.starts_with(DAILY_TAG) {
            SignedDailyReport::from_bytes(bytes).map(Self::Daily)
        } else if bytes.starts_with(BUNDLE_TAG) {
            SignedBundle::from_bytes(bytes).map(Self::Bundle)
        } else if bytes.starts_with(ATTESTATION_TAG) {
            SignedAttestation::from_bytes(bytes).map(Self::Attestation)
        } else if bytes.starts_with(DISPUTE_TAG) {
            SignedDispute::from_bytes(bytes).map(Self::Dispute)
        } else if bytes.starts_with(VERDICT_TAG) {
            SignedVerdict::from_bytes(bytes).map(Self::Verdict)
        } else if bytes.starts_with(PAYOUT_TAG) {
            SignedPayout::from_bytes(bytes).map(Self::Payout)
        } else {
            Err(FieldError::new("tag", "not a review record"))
        }
    }

    /// The binary form.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Self::Daily(r) => r.to_bytes(),
            Self::Bundle(r) => r.to_bytes(),
            Self::Attestation(r) => r.to_bytes(),
            Self::Dispute(r) => r.to_bytes(),
            Self::Verdict(r) => r.to_bytes(),
            Self::Payout(r) => r.to_bytes(),
        }
    }

    /// The id: BLAKE3 of the signed message.
    pub fn id(&self) -> ContentHash {
        match self {
            Self::Daily(r) => r.id(),
            Self::Bundle(r) => r.id(),
            Self::Attestation(r) => r.id(),
            Self::Dispute(r) => r.id(),
            Self::Verdict(r) => r.id(),
            Self::Payout(r) => r.id(),
        }
    }

    /// What it is about.
    pub fn subject(&self) -> Subject {
        match self {
            Self::Daily(r) => Subject::Month(r.body.home, r.body.day.month()),
            Self::Bundle(r) => Subject::Month(r.body.home, r.body.month),
            Self::Attestation(r) => Subject::Bundle(r.body.bundle),
            Self::Dispute(r) => Subject::Bundle(r.body.bundle),
            Self::Verdict(r) => Subject::Dispute(r.body.dispute),
            Self::Payout(r) => Subject::Month(r.body.home, r.body.month),
        }
    }

    /// Its name, for messages and counters.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Daily(_) => "daily report",
            Self::Bundle(_) => "bundle",
            Self::Attestation(_) => "attestation",
            Self::Dispute(_) => "dispute",
            Self::Verdict(_) => "verdict",
            Self::Payout(_) => "payout statement",
        }
    }

    fn signed(&self) -> &dyn Signed {
        match self {
            Self::Daily(r) => r,
            Self::Bundle(r) => r,
            Self::Attestation(r) => r,
            Self::Dispute(r) => r,
            Self::Verdict(r) => r,
            Self::Payout(r) => r,
        }
    }
}

impl Signed for ReviewRecord {
    fn signer(&self) -> &PublicKey {
        self.signed().signer()
    }
    fn signature(&self) -> &Signature {
        self.signed().signature()
    }
    fn write_message(&self, out: &mut Vec<u8>) {
        self.signed().write_message(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Keypair;
    use crate::record::Record;
    use crate::review::{Attestation, Role};
    use crate::signature::verify_record;

    #[test]
    fn a_record_reads_back_as_its_kind() {
        let key = Keypair::from_seed([3; 32]);
        let a = Record::sign(
            Attestation {
                bundle: ContentHash([1; 32]),
                tally: ContentHash([2; 32]),
                role: Role::Cluster,
                rank: 0,
                reviewer: key.public(),
            },
            &key,
        );
        let r = ReviewRecord::Attestation(a.clone());
        let back = ReviewRecord::from_bytes(&r.to_bytes()).unwrap();
        assert_eq!(back, r);
        assert_eq!(back.id(), a.id());
        assert_eq!(back.subject(), Subject::Bundle(ContentHash([1; 32])));
        assert!(verify_record(&back));
        assert_eq!(
            ReviewRecord::from_bytes(b"9ten/other/v1\0")
                .unwrap_err()
                .field,
            "tag"
        );
        let mut cut = r.to_bytes();
        cut.truncate(60);
        assert_eq!(ReviewRecord::from_bytes(&cut).unwrap_err().field, "tally");
    }
}
