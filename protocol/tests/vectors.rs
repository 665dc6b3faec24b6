//! The vectors of `protocol/vectors/vectors.json`, written by `generate.py`, a separate Python
//! implementation of `records.md` and `settlement.md`: our bytes, ids, keys, verdicts and
//! tallies must match it exactly.

use std::collections::BTreeMap;

use nineten_protocol::identity::{Keypair, ListenerSecret};
use nineten_protocol::key::{ContentHash, PublicKey, Signature, decode_hex};
use nineten_protocol::money::MicroUsdp;
use nineten_protocol::receipt::SignedReceipt;
use nineten_protocol::settlement::{Input, settle};
use nineten_protocol::signature::{Signed, verify, verify_all};
use nineten_protocol::subscription::SignedSubscription;
use nineten_protocol::tally::{Flag, Tally};
use serde_json::{Value, json};

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
        assert_eq!(r.id().to_string(), case["id"].as_str().unwrap());
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
        assert_eq!(s.id().to_string(), case["id"].as_str().unwrap());
        let key = Keypair::from_seed(decode_hex(case["seed"].as_str().unwrap()).unwrap());
        assert_eq!(s.subscription.clone().sign(&key), s);
        assert!(nineten_protocol::signature::verify_record(&s));
        assert_eq!(s.to_json(), json);
    }
}

#[test]
fn blake3_matches() {
    // The Python BLAKE3 that the ids and digests of the vectors rest on, across chunk and
    // tree boundaries.
    let v = vectors();
    let cases = v["blake3"].as_array().unwrap();
    assert!(cases.len() >= 8);
    for case in cases {
        let len = case["input_len"].as_u64().unwrap() as usize;
        let input: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let hash = ContentHash::of(&input).to_string();
        assert_eq!(hash, case["hash"].as_str().unwrap(), "length {len}");
    }
}

/// The expected fields of a settlement case, from our tally, in the vectors' JSON shape.
fn expected_of(t: &Tally) -> Value {
    let entries = |m: &BTreeMap<PublicKey, MicroUsdp>| -> Value {
        m.iter().map(|(k, u)| (k.to_string(), json!(u.0))).collect()
    };
    let flags: Vec<Value> = t
        .flags
        .iter()
        .map(|f| match f {
            Flag::Equivocation {
                listener,
                seq,
                copies,
            } => json!({"kind": "equivocation", "listener": listener.to_string(), "seq": seq,
                        "copies": copies}),
            Flag::Overlap { listener, seq } => {
                json!({"kind": "overlap", "listener": listener.to_string(), "seq": seq})
            }
        })
        .collect();
    json!({
        "distinct_receipts": t.stats.receipts,
        "void": {"signature": t.void.signature, "length": t.void.length,
                 "equivocation": t.void.equivocation, "overlap": t.void.overlap},
        "flags": flags,
        "artists": entries(&t.artists),
        "operators": entries(&t.operators),
        "carry_out": entries(&t.carry_out),
        "canonical": hex::encode(t.canonical_bytes()),
        "digest": t.digest().to_string(),
    })
}

#[test]
fn settlement_cases_match() {
    let v = vectors();
    let cases = v["settlement"].as_array().unwrap();
    assert!(cases.len() >= 6);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let lines = |field: &str| -> Vec<String> {
            case[field]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l.as_str().unwrap().to_string())
                .collect()
        };
        let receipts: Vec<SignedReceipt> = lines("receipts")
            .iter()
            .map(|l| SignedReceipt::from_json(l).unwrap())
            .collect();
        let subscriptions: Vec<SignedSubscription> = lines("subscriptions")
            .iter()
            .map(|l| SignedSubscription::from_json(l).unwrap())
            .collect();
        let receipt_ids: Vec<String> = receipts.iter().map(|r| r.id().to_string()).collect();
        assert_eq!(receipt_ids, lines("receipt_ids"), "{name}");
        let subscription_ids: Vec<String> =
            subscriptions.iter().map(|s| s.id().to_string()).collect();
        assert_eq!(subscription_ids, lines("subscription_ids"), "{name}");
        let carry_in: BTreeMap<PublicKey, MicroUsdp> = case["carry_in"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, u)| (k.parse().unwrap(), MicroUsdp(u.as_u64().unwrap())))
            .collect();
        let t = settle(Input {
            month: case["month"].as_str().unwrap().parse().unwrap(),
            receipts: &receipts,
            subscriptions: &subscriptions,
            carry_in: &carry_in,
        })
        .unwrap();
        assert_eq!(expected_of(&t), case["expected"], "{name}");
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

mod review {
    //! review.md's records, roots, directory and reviewers, against the Python implementation.

    use std::collections::BTreeMap;

    use nineten_protocol::bundle::{Bundle, Inputs, SignedBundle};
    use nineten_protocol::daily::{DailyReport, DayFigures, SignedDailyReport};
    use nineten_protocol::directory::Directory;
    use nineten_protocol::key::{ContentHash, PublicKey};
    use nineten_protocol::money::MicroUsdp;
    use nineten_protocol::node_record::SignedNodeRecord;
    use nineten_protocol::receipt::SignedReceipt;
    use nineten_protocol::record::{Body, Record, root};
    use nineten_protocol::review::{SignedAttestation, SignedDispute, SignedVerdict};
    use nineten_protocol::reviewers::Reviewers;
    use nineten_protocol::subscription::SignedSubscription;
    use serde_json::Value;

    use super::{bytes, vectors};

    fn review() -> Value {
        vectors()["review"].clone()
    }

    fn hash(v: &Value) -> ContentHash {
        v.as_str().unwrap().parse().unwrap()
    }

    fn key(v: &Value) -> PublicKey {
        v.as_str().unwrap().parse().unwrap()
    }

    fn keys(v: &Value) -> Vec<PublicKey> {
        v.as_array().unwrap().iter().map(key).collect()
    }

    /// A record's JSON reads, gives the vector's signed message and id, verifies, and writes
    /// back byte for byte.
    fn check<T: Body + Sync + Clone + PartialEq + std::fmt::Debug>(case: &Value) -> Record<T> {
        let json = case["json"].as_str().unwrap();
        let r = Record::<T>::from_json(json).unwrap();
        assert_eq!(r.message(), bytes(&case["message"]));
        assert_eq!(r.id().to_string(), case["id"].as_str().unwrap());
        assert!(r.verifies());
        assert_eq!(r.to_json(), json);
        assert_eq!(Record::<T>::from_bytes(&r.to_bytes()).unwrap(), r);
        r
    }

    #[test]
    fn roots_match() {
        for case in review()["roots"].as_array().unwrap() {
            let ids = case["ids"].as_array().unwrap().iter().map(hash);
            assert_eq!(root(ids), hash(&case["root"]));
        }
    }

    #[test]
    fn records_match() {
        let v = review();
        for case in v["nodes"].as_array().unwrap() {
            check::<nineten_protocol::node_record::NodeRecord>(case);
        }
        let _: SignedAttestation = check(&v["attestation"]);
        let _: SignedDispute = check(&v["dispute"]);
        let _: SignedVerdict = check(&v["verdict"]);
    }

    #[test]
    fn the_directory_and_the_reviewers_match() {
        let d = &review()["directory"];
        let records: Vec<SignedNodeRecord> = d["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| SignedNodeRecord::from_json(r.as_str().unwrap()).unwrap())
            .collect();
        let month = d["month"].as_str().unwrap().parse().unwrap();
        let directory = Directory::for_month(month, &records);
        let listed: Vec<PublicKey> = directory.records().map(|r| r.body.node).collect();
        let mut expected = keys(&d["in_directory"]);
        expected.sort();
        assert_eq!(
            listed, expected,
            "the late, the equivocating and the forged are left out"
        );
        assert_eq!(directory.root(), hash(&d["directory_root"]));
        let rv = Reviewers::choose(&directory, &key(&d["home"])).unwrap();
        assert_eq!(rv.cluster_peers, keys(&d["cluster_peers"]));
        assert_eq!(rv.externals, keys(&d["externals"]));
        assert_eq!(
            rv.arbiters(&rv.externals[0]),
            keys(&d["arbiters_for_first_external"])
        );
    }

    fn receipts(v: &Value) -> Vec<SignedReceipt> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|r| SignedReceipt::from_json(r.as_str().unwrap()).unwrap())
            .collect()
    }

    #[test]
    fn the_daily_report_matches_from_its_receipts() {
        let case = &review()["daily"];
        let report: SignedDailyReport = check(case);
        let figures = DayFigures::of(&receipts(&case["receipts"]));
        let ours = DailyReport::new(report.body.home, report.body.day, &figures);
        assert_eq!(ours, report.body);
    }

    #[test]
    fn the_bundle_matches_from_its_inputs() {
        let v = review();
        let case = &v["bundle"];
        let bundle: SignedBundle = check(case);
        let subscriptions: Vec<SignedSubscription> = case["subscriptions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| SignedSubscription::from_json(s.as_str().unwrap()).unwrap())
            .collect();
        let carry: BTreeMap<PublicKey, MicroUsdp> = case["carry"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, u)| (k.parse().unwrap(), MicroUsdp(u.as_u64().unwrap())))
            .collect();
        let records: Vec<SignedNodeRecord> = v["directory"]["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| SignedNodeRecord::from_json(r.as_str().unwrap()).unwrap())
            .collect();
        let directory = Directory::for_month(bundle.body.month, &records);
        let (ours, _) = Bundle::close(
            bundle.body.home,
            bundle.body.month,
            Inputs {
                receipts: &receipts(&case["receipts"]),
                excluded: &[],
                subscriptions: &subscriptions,
                carry: &carry,
            },
            &directory,
            0,
        )
        .unwrap();
        assert_eq!(ours, bundle.body);
    }
}
