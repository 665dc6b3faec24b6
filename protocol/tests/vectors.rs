//! The vectors of `protocol/vectors/vectors.json`, written by `generate.py`, a separate Python
//! implementation of `records.md`: our bytes, keys and verdicts must match it exactly.

use nineten_protocol::identity::{Keypair, ListenerSecret};
use nineten_protocol::key::{PublicKey, Signature, decode_hex};
use nineten_protocol::receipt::SignedReceipt;
use nineten_protocol::signature::{Signed, verify, verify_all};
use nineten_protocol::subscription::SignedSubscription;
use serde_json::Value;

fn vectors() -> Value {
    let text = include_str!("../vectors/vectors.json");
    serde_json::from_str(text).unwrap()
}

fn bytes(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

#[test]
fn month_keys_match() {
    let v = vectors();
    for case in v["month_keys"].as_array().unwrap() {
        let secret =
            ListenerSecret::from_bytes(decode_hex(case["secret"].as_str().unwrap()).unwrap());
        let key = secret.month_key(case["month"].as_str().unwrap().parse().unwrap());
        assert_eq!(hex::encode(key.seed()), case["seed"].as_str().unwrap());
        assert_eq!(key.public().to_string(), case["public"].as_str().unwrap());
    }
}

#[test]
fn receipts_match() {
    let v = vectors();
    for case in v["receipts"].as_array().unwrap() {
        let json = case["json"].as_str().unwrap();
        let r = SignedReceipt::from_json(json).unwrap();
        assert_eq!(r.receipt.message().to_vec(), bytes(&case["message"]));
        let key = Keypair::from_seed(decode_hex(case["seed"].as_str().unwrap()).unwrap());
        assert_eq!(r.receipt.sign(&key), r, "same signature from the same seed");
        assert!(nineten_protocol::signature::verify_record(&r));
        assert_eq!(r.to_json(), json, "our JSON line is byte-identical");
    }
}

#[test]
fn subscriptions_match() {
    let v = vectors();
    for case in v["subscriptions"].as_array().unwrap() {
        let json = case["json"].as_str().unwrap();
        let s = SignedSubscription::from_json(json).unwrap();
        assert_eq!(s.subscription.message(), bytes(&case["message"]));
        let key = Keypair::from_seed(decode_hex(case["seed"].as_str().unwrap()).unwrap());
        assert_eq!(s.subscription.clone().sign(&key), s);
        assert!(nineten_protocol::signature::verify_record(&s));
        assert_eq!(s.to_json(), json);
    }
}

/// A signature case as a record, so it can go through the batch verifier.
struct Case {
    key: PublicKey,
    message: Vec<u8>,
    sig: Signature,
}

impl Signed for Case {
    fn signer(&self) -> &PublicKey {
        &self.key
    }
    fn signature(&self) -> &Signature {
        &self.sig
    }
    fn write_message(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.message);
    }
}

fn signature_cases() -> Vec<(String, Case, bool)> {
    let v = vectors();
    v["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let case = Case {
                key: PublicKey(bytes(&c["key"]).try_into().unwrap()),
                message: bytes(&c["message"]),
                sig: Signature(bytes(&c["sig"]).try_into().unwrap()),
            };
            (
                c["name"].as_str().unwrap().to_string(),
                case,
                c["valid"].as_bool().unwrap(),
            )
        })
        .collect()
}

#[test]
fn every_signature_rule_single() {
    let cases = signature_cases();
    assert!(cases.len() >= 10);
    for (name, c, valid) in &cases {
        assert_eq!(verify(&c.key, &c.message, &c.sig), *valid, "{name}");
    }
}

#[test]
fn batches_agree_with_single_checks_in_any_company() {
    // Each edge case hidden among honest signatures of one key and of many keys: the batch
    // verdict for every item must equal its single verdict.
    let cases = signature_cases();
    for (name, edge, valid) in &cases {
        let mut batch: Vec<Case> = (0..300u32)
            .map(|i| {
                let key = Keypair::from_seed([(i % 3) as u8 + 1; 32]);
                let message = i.to_be_bytes().to_vec();
                Case {
                    key: key.public(),
                    sig: key.sign(&message),
                    message,
                }
            })
            .collect();
        batch.insert(
            150,
            Case {
                key: edge.key,
                message: edge.message.clone(),
                sig: edge.sig,
            },
        );
        let verdicts = verify_all(&batch);
        assert_eq!(verdicts[150], *valid, "{name}");
        assert_eq!(
            verdicts.iter().filter(|v| !**v).count(),
            usize::from(!valid),
            "{name}"
        );
    }
    // All edge cases in one batch.
    let all: Vec<Case> = cases
        .iter()
        .map(|(_, c, _)| Case {
            key: c.key,
            message: c.message.clone(),
            sig: c.sig,
        })
        .collect();
    let expected: Vec<bool> = cases.iter().map(|c| c.2).collect();
    assert_eq!(verify_all(&all), expected);
}
