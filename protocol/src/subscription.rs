//! The subscription (`records.md`, "Subscription"): the home node's signed statement that a
//! listener paid the month's fee; its exact signed bytes, its id, binary and JSON forms.

use serde::{Deserialize, Serialize};

use crate::error::FieldError;
use crate::identity::Keypair;
use crate::key::{ContentHash, PublicKey, Signature};
use crate::money::FEE;
use crate::month::Month;
use crate::record::Fields;
use crate::signature::Signed;

/// Domain tag that starts every subscription's signed message.
pub const SUBSCRIPTION_TAG: &[u8; 21] = b"9ten/subscription/v1\0";

/// A payment reference: UTF-8 of at most 65,535 bytes (its length is a u16 in the message).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PaymentRef(String);

impl PaymentRef {
    /// Checks the length.
    pub fn new(text: impl Into<String>) -> Result<Self, FieldError> {
        let text = text.into();
        if text.len() > usize::from(u16::MAX) {
            return Err(FieldError::new(
                "payment_ref",
                format!("{} bytes, at most 65535 allowed", text.len()),
            ));
        }
        Ok(Self(text))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a home node states: `listener` paid the fee for `month`. The amount is not a field:
/// version 1 accepts only [`FEE`].
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Subscription {
    /// The listener's key for `month`.
    pub listener: PublicKey,
    /// The month paid for.
    pub month: Month,
    /// The node that received the fee and signs this record.
    pub home_node: PublicKey,
    /// The wallet's or gateway's transaction id.
    pub payment_ref: PaymentRef,
}

/// A subscription and one signature over it: one copy of a record. Copies with the same
/// [`Subscription`] are one subscription whatever their signatures, and share one
/// [`SignedSubscription::id`]; `==` compares the signature too.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SignedSubscription {
    /// What is signed.
    pub subscription: Subscription,
    /// The home node's signature over [`Subscription::message`].
    pub sig: Signature,
}

impl Subscription {
    /// The exact signed message.
    pub fn message(&self) -> Vec<u8> {
        let mut m = Vec::with_capacity(98 + self.payment_ref.0.len());
        self.write_message(&mut m);
        m
    }

    fn write_message(&self, m: &mut Vec<u8>) {
        let reference = self.payment_ref.0.as_bytes();
        let len = u16::try_from(reference.len()).expect("PaymentRef::new bounds the length");
        m.extend_from_slice(SUBSCRIPTION_TAG);
        m.extend_from_slice(&self.listener.0);
        m.extend_from_slice(&self.month.year().to_be_bytes());
        m.push(self.month.month());
        m.extend_from_slice(&self.home_node.0);
        m.extend_from_slice(&FEE.0.to_be_bytes());
        m.extend_from_slice(&len.to_be_bytes());
        m.extend_from_slice(reference);
    }

    /// Signs with the home node's key; verifies only if `node.public() == self.home_node`.
    pub fn sign(self, node: &Keypair) -> SignedSubscription {
        SignedSubscription {
            sig: node.sign(&self.message()),
            subscription: self,
        }
    }
}

impl SignedSubscription {
    /// The record's id: BLAKE3 of its signed message alone (the signature excluded).
    pub fn id(&self) -> ContentHash {
        ContentHash::of(&self.subscription.message())
    }

    /// The binary form: signed message then signature.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = self.subscription.message();
        b.extend_from_slice(&self.sig.0);
        b
    }

    /// Reads the binary form written by [`SignedSubscription::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, FieldError> {
        const FIXED: usize = 21 + 32 + 2 + 1 + 32 + 8 + 2;
        if bytes.len() < FIXED + Signature::LEN {
            return Err(FieldError::new("(record)", "too short for a subscription"));
        }
        let (head, rest) = bytes.split_at(FIXED);
        let mut r = Fields::new(head);
        if r.take::<21>("tag")? != *SUBSCRIPTION_TAG {
            return Err(FieldError::new("tag", "not a 9ten/subscription/v1 record"));
        }
        let listener = r.key("listener")?;
        let month = r.month("month")?;
        let home_node = r.key("home_node")?;
        let amount = r.u64("amount")?;
        check_amount(amount)?;
        let len = usize::from(r.u16("payment_ref")?);
        if rest.len() != len + Signature::LEN {
            return Err(FieldError::new(
                "payment_ref",
                "length does not match the record",
            ));
        }
        let (reference, sig) = rest.split_at(len);
        let reference = std::str::from_utf8(reference)
            .map_err(|e| FieldError::new("payment_ref", format!("not UTF-8: {e}")))?;
        Ok(Self {
            subscription: Subscription {
                listener,
                month,
                home_node,
                payment_ref: PaymentRef(reference.to_string()),
            },
            sig: Signature(sig.try_into().expect("split left 64 bytes")),
        })
    }

    /// The JSON line (without newline), fields in the order of `records.md`.
    pub fn to_json(&self) -> String {
        let s = &self.subscription;
        serde_json::to_string(&SubscriptionJson {
            v: 1,
            listener: s.listener,
            month: s.month,
            home_node: s.home_node,
            amount: FEE.0,
            payment_ref: s.payment_ref.0.clone(),
            sig: self.sig,
        })
        .expect("a subscription always serializes")
    }

    /// Reads one JSON object; errors name the field. The signature is not checked here.
    pub fn from_json(text: &str) -> Result<Self, FieldError> {
        let mut de = serde_json::Deserializer::from_str(text);
        let j: SubscriptionJson =
            serde_path_to_error::deserialize(&mut de).map_err(FieldError::from_json)?;
        de.end()
            .map_err(|e| FieldError::new("(record)", format!("trailing characters: {e}")))?;
        if j.v != 1 {
            return Err(FieldError::new("v", format!("unknown version {}", j.v)));
        }
        check_amount(j.amount)?;
        Ok(Self {
            subscription: Subscription {
                listener: j.listener,
                month: j.month,
                home_node: j.home_node,
                payment_ref: PaymentRef::new(j.payment_ref)?,
            },
            sig: j.sig,
        })
    }
}

fn check_amount(amount: u64) -> Result<(), FieldError> {
    if amount == FEE.0 {
        Ok(())
    } else {
        Err(FieldError::new(
            "amount",
            format!("{amount} is out of range: version 1 accepts only {}", FEE.0),
        ))
    }
}

impl Signed for SignedSubscription {
    fn signer(&self) -> &PublicKey {
        &self.subscription.home_node
    }
    fn signature(&self) -> &Signature {
        &self.sig
    }
    fn write_message(&self, out: &mut Vec<u8>) {
        self.subscription.write_message(out);
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SubscriptionJson {
    v: u64,
    listener: PublicKey,
    month: Month,
    home_node: PublicKey,
    amount: u64,
    payment_ref: String,
    sig: Signature,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(reference: &str) -> SignedSubscription {
        let node = Keypair::from_seed([9; 32]);
        Subscription {
            listener: PublicKey([1; 32]),
            month: "2026-10".parse().unwrap(),
            home_node: node.public(),
            payment_ref: PaymentRef::new(reference).unwrap(),
        }
        .sign(&node)
    }

    #[test]
    fn message_layout_matches_spec() {
        let s = sample("tx-1");
        let m = s.subscription.message();
        assert_eq!(&m[..21], b"9ten/subscription/v1\0");
        assert_eq!(&m[53..56], &[0x07, 0xea, 10]);
        assert_eq!(&m[88..96], &10_000_000u64.to_be_bytes());
        assert_eq!(&m[96..98], &4u16.to_be_bytes());
        assert_eq!(&m[98..], b"tx-1");
    }

    #[test]
    fn round_trips_and_verifies() {
        for reference in ["", "tx-1", "ünïcødé ✓"] {
            let s = sample(reference);
            assert_eq!(SignedSubscription::from_json(&s.to_json()).unwrap(), s);
            assert_eq!(SignedSubscription::from_bytes(&s.to_bytes()).unwrap(), s);
            assert!(crate::signature::verify_record(&s));
        }
    }

    #[test]
    fn id_is_blake3_of_the_signed_message_alone() {
        let s = sample("tx-1");
        assert_eq!(s.id(), ContentHash::of(&s.subscription.message()));
        let mut resigned = s.clone();
        resigned.sig.0[5] ^= 1;
        assert_eq!(resigned.id(), s.id());
        assert_ne!(sample("tx-2").id(), s.id());
    }

    #[test]
    fn json_errors_name_the_field() {
        let good = sample("tx").to_json();
        let cases = [
            (good.replace("10000000", "5000000"), "amount"),
            (good.replace("2026-10", "2026-13"), "month"),
            (
                good.replace("\"payment_ref\":\"tx\"", "\"payment_ref\":7"),
                "payment_ref",
            ),
            (good.replace("\"v\":1,", ""), "v"),
        ];
        for (text, field) in cases {
            let err = SignedSubscription::from_json(&text).unwrap_err();
            assert_eq!(err.field, field, "{text}: {err}");
        }
        assert!(PaymentRef::new("x".repeat(70_000)).is_err());
    }
}
