//! The reviewers' records (`review.md`): an attestation (a reviewer signs a bundle), a
//! dispute (it objects, with the kind of objection and a root over the evidence) and a
//! verdict (the arbiter decides a dispute).

use serde::{Deserialize, Serialize};

use crate::error::FieldError;
use crate::key::{ContentHash, PublicKey, Signature};
use crate::record::{Body, Fields, Record, check_version};

/// A signed attestation.
pub type SignedAttestation = Record<Attestation>;
/// A signed dispute.
pub type SignedDispute = Record<Dispute>;
/// A signed verdict.
pub type SignedVerdict = Record<Verdict>;

/// Domain tag of attestations.
pub const ATTESTATION_TAG: &[u8; 20] = b"9ten/attestation/v1\0";
/// Domain tag of disputes.
pub const DISPUTE_TAG: &[u8; 16] = b"9ten/dispute/v1\0";
/// Domain tag of verdicts.
pub const VERDICT_TAG: &[u8; 16] = b"9ten/verdict/v1\0";

/// Declares a one-byte enumeration of a record: its byte values and JSON names.
macro_rules! byte_enum {
    ($(#[$doc:meta])* $name:ident, $field:literal, { $($(#[$vdoc:meta])* $variant:ident = $byte:literal, $json:literal;)+ }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $json)] $variant,)+
        }

        impl $name {
            /// Its byte in the signed message.
            pub fn byte(self) -> u8 {
                match self { $(Self::$variant => $byte,)+ }
            }

            /// Reads its byte.
            pub fn from_byte(byte: u8) -> Result<Self, FieldError> {
                match byte {
                    $($byte => Ok(Self::$variant),)+
                    other => Err(FieldError::new($field, format!("unknown value {other}"))),
                }
            }
        }
    };
}

byte_enum!(
    /// Which eye signs.
    Role, "role", {
        /// The home node, over its own bundle.
        Home = 0, "home";
        /// The cluster peer.
        Cluster = 1, "cluster";
        /// The node of another cluster.
        External = 2, "external";
    }
);

byte_enum!(
    /// What a dispute objects to.
    Kind, "kind", {
        /// Valid receipts the bundle leaves out.
        Omitted = 0, "omitted";
        /// Receipts the bundle counts that should be excluded: fraud.
        Suspect = 1, "suspect";
        /// Same inputs, another digest.
        Computation = 2, "computation";
        /// The carry-in.
        Carry = 3, "carry";
    }
);

byte_enum!(
    /// How an arbiter decided.
    Outcome, "outcome", {
        /// The objection holds.
        Upheld = 0, "upheld";
        /// It does not: the bundle stands.
        Rejected = 1, "rejected";
        /// In part.
        Partly = 2, "partly";
    }
);

/// A reviewer's signature over a bundle.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Attestation {
    /// The bundle's id.
    pub bundle: ContentHash,
    /// The tally digest, repeated so a ledger can match it without the bundle.
    pub tally: ContentHash,
    /// Which eye.
    pub role: Role,
    /// 0 for the first choice, k for the k-th replacement.
    pub rank: u8,
    /// The reviewer, which signs.
    pub reviewer: PublicKey,
}

impl Body for Attestation {
    const TAG: &'static [u8] = ATTESTATION_TAG;
    type Json = AttestationJson;

    fn signer(&self) -> &PublicKey {
        &self.reviewer
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.bundle.0);
        out.extend_from_slice(&self.tally.0);
        out.push(self.role.byte());
        out.push(self.rank);
        out.extend_from_slice(&self.reviewer.0);
    }

    fn read(f: &mut Fields<'_>) -> Result<Self, FieldError> {
        Ok(Self {
            bundle: f.hash("bundle")?,
            tally: f.hash("tally")?,
            role: Role::from_byte(f.u8("role")?)?,
            rank: f.u8("rank")?,
            reviewer: f.key("reviewer")?,
        })
    }

    fn to_json(&self, sig: Signature) -> AttestationJson {
        AttestationJson {
            v: 1,
            bundle: self.bundle,
            tally: self.tally,
            role: self.role,
            rank: self.rank,
            reviewer: self.reviewer,
            sig,
        }
    }

    fn from_json(j: AttestationJson) -> Result<(Self, Signature), FieldError> {
        check_version(j.v)?;
        Ok((
            Self {
                bundle: j.bundle,
                tally: j.tally,
                role: j.role,
                rank: j.rank,
                reviewer: j.reviewer,
            },
            j.sig,
        ))
    }
}

/// The JSON form of an attestation.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttestationJson {
    v: u64,
    bundle: ContentHash,
    tally: ContentHash,
    role: Role,
    rank: u8,
    reviewer: PublicKey,
    sig: Signature,
}

/// An objection to a bundle.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Dispute {
    /// The bundle's id.
    pub bundle: ContentHash,
    /// What it objects to.
    pub kind: Kind,
    /// Root over the receipt ids in question (for [`Kind::Carry`]: BLAKE3 of the evidence
    /// document).
    pub evidence: ContentHash,
    /// The tally digest the objector computes with its claim applied.
    pub claimed: ContentHash,
    /// The objector, which signs.
    pub by: PublicKey,
}

impl Body for Dispute {
    const TAG: &'static [u8] = DISPUTE_TAG;
    type Json = DisputeJson;

    fn signer(&self) -> &PublicKey {
        &self.by
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.bundle.0);
        out.push(self.kind.byte());
        out.extend_from_slice(&self.evidence.0);
        out.extend_from_slice(&self.claimed.0);
        out.extend_from_slice(&self.by.0);
    }

    fn read(f: &mut Fields<'_>) -> Result<Self, FieldError> {
        Ok(Self {
            bundle: f.hash("bundle")?,
            kind: Kind::from_byte(f.u8("kind")?)?,
            evidence: f.hash("evidence")?,
            claimed: f.hash("claimed")?,
            by: f.key("by")?,
        })
    }

    fn to_json(&self, sig: Signature) -> DisputeJson {
        DisputeJson {
            v: 1,
            bundle: self.bundle,
            kind: self.kind,
            evidence: self.evidence,
            claimed: self.claimed,
            by: self.by,
            sig,
        }
    }

    fn from_json(j: DisputeJson) -> Result<(Self, Signature), FieldError> {
        check_version(j.v)?;
        Ok((
            Self {
                bundle: j.bundle,
                kind: j.kind,
                evidence: j.evidence,
                claimed: j.claimed,
                by: j.by,
            },
            j.sig,
        ))
    }
}

/// The JSON form of a dispute.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisputeJson {
    v: u64,
    bundle: ContentHash,
    kind: Kind,
    evidence: ContentHash,
    claimed: ContentHash,
    by: PublicKey,
    sig: Signature,
}

/// An arbiter's decision on a dispute.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Verdict {
    /// The dispute's id.
    pub dispute: ContentHash,
    /// How it was decided.
    pub outcome: Outcome,
    /// Root over the receipt ids to exclude (suspect disputes).
    pub excluded: ContentHash,
    /// Root over the receipt ids to add (omission disputes).
    pub added: ContentHash,
    /// The arbiter's position in the arbiter list.
    pub rank: u8,
    /// The arbiter, which signs.
    pub arbiter: PublicKey,
}

impl Body for Verdict {
    const TAG: &'static [u8] = VERDICT_TAG;
    type Json = VerdictJson;

    fn signer(&self) -> &PublicKey {
        &self.arbiter
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.dispute.0);
        out.push(self.outcome.byte());
        out.extend_from_slice(&self.excluded.0);
        out.extend_from_slice(&self.added.0);
        out.push(self.rank);
        out.extend_from_slice(&self.arbiter.0);
    }

    fn read(f: &mut Fields<'_>) -> Result<Self, FieldError> {
        Ok(Self {
            dispute: f.hash("dispute")?,
            outcome: Outcome::from_byte(f.u8("outcome")?)?,
            excluded: f.hash("excluded")?,
            added: f.hash("added")?,
            rank: f.u8("rank")?,
            arbiter: f.key("arbiter")?,
        })
    }

    fn to_json(&self, sig: Signature) -> VerdictJson {
        VerdictJson {
            v: 1,
            dispute: self.dispute,
            outcome: self.outcome,
            excluded: self.excluded,
            added: self.added,
            rank: self.rank,
            arbiter: self.arbiter,
            sig,
        }
    }

    fn from_json(j: VerdictJson) -> Result<(Self, Signature), FieldError> {
        check_version(j.v)?;
        Ok((
            Self {
                dispute: j.dispute,
                outcome: j.outcome,
                excluded: j.excluded,
                added: j.added,
                rank: j.rank,
                arbiter: j.arbiter,
            },
            j.sig,
        ))
    }
}

/// The JSON form of a verdict.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerdictJson {
    v: u64,
    dispute: ContentHash,
    outcome: Outcome,
    excluded: ContentHash,
    added: ContentHash,
    rank: u8,
    arbiter: PublicKey,
    sig: Signature,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Keypair;
    use crate::record::root;

    #[test]
    fn attestations_disputes_and_verdicts_round_trip_with_their_layouts() {
        let key = Keypair::from_seed([6; 32]);
        let a = Record::sign(
            Attestation {
                bundle: ContentHash([1; 32]),
                tally: ContentHash([2; 32]),
                role: Role::External,
                rank: 1,
                reviewer: key.public(),
            },
            &key,
        );
        let d = Record::sign(
            Dispute {
                bundle: ContentHash([1; 32]),
                kind: Kind::Suspect,
                evidence: root([ContentHash([4; 32])]),
                claimed: ContentHash([5; 32]),
                by: key.public(),
            },
            &key,
        );
        let v = Record::sign(
            Verdict {
                dispute: d.id(),
                outcome: Outcome::Partly,
                excluded: root([ContentHash([4; 32])]),
                added: root([]),
                rank: 0,
                arbiter: key.public(),
            },
            &key,
        );
        assert_eq!(a.message().len(), 20 + 32 + 32 + 1 + 1 + 32);
        assert_eq!(&a.message()[84..86], &[2, 1]);
        assert_eq!(d.message().len(), 16 + 32 + 1 + 32 + 32 + 32);
        assert_eq!(d.message()[48], 1);
        assert_eq!(v.message().len(), 16 + 32 + 1 + 32 + 32 + 1 + 32);
        assert_eq!(v.message()[48], 2);
        assert!(a.verifies() && d.verifies() && v.verifies());
        assert_eq!(SignedAttestation::from_json(&a.to_json()).unwrap(), a);
        assert_eq!(SignedAttestation::from_bytes(&a.to_bytes()).unwrap(), a);
        assert_eq!(SignedDispute::from_json(&d.to_json()).unwrap(), d);
        assert_eq!(SignedDispute::from_bytes(&d.to_bytes()).unwrap(), d);
        assert_eq!(SignedVerdict::from_json(&v.to_json()).unwrap(), v);
        assert_eq!(SignedVerdict::from_bytes(&v.to_bytes()).unwrap(), v);
        assert!(a.to_json().contains("\"role\":\"external\",\"rank\":1"));
        assert!(d.to_json().contains("\"kind\":\"suspect\""));
        assert!(v.to_json().contains("\"outcome\":\"partly\""));
    }

    #[test]
    fn unknown_enumerations_name_their_field() {
        let key = Keypair::from_seed([6; 32]);
        let a = Record::sign(
            Attestation {
                bundle: ContentHash([1; 32]),
                tally: ContentHash([2; 32]),
                role: Role::Home,
                rank: 0,
                reviewer: key.public(),
            },
            &key,
        );
        let mut bytes = a.to_bytes();
        bytes[84] = 3;
        assert_eq!(
            SignedAttestation::from_bytes(&bytes).unwrap_err().field,
            "role"
        );
        let bad = a.to_json().replace("\"home\"", "\"owner\"");
        assert_eq!(
            SignedAttestation::from_json(&bad).unwrap_err().field,
            "role"
        );
        let bad = a.to_json().replace(",\"rank\":0", "");
        assert_eq!(
            SignedAttestation::from_json(&bad).unwrap_err().field,
            "rank"
        );
    }
}
