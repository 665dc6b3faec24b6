//! A home node's month through review (`review.md`): the directory, the choice of reviewers,
//! the bundle, the three attestations, a dispute and a verdict, and the auditor who checks it
//! all from the records alone, including when a record lies.

use std::collections::BTreeMap;

use nineten_protocol::audit::{MonthRecords, audit};
use nineten_protocol::bundle::{Bundle, Inputs};
use nineten_protocol::directory::Directory;
use nineten_protocol::identity::Keypair;
use nineten_protocol::key::{ContentHash, PublicKey};
use nineten_protocol::node_record::{NodeName, NodeRecord};
use nineten_protocol::record::{Record, root};
use nineten_protocol::review::{Attestation, Dispute, Kind, Outcome, Role, Verdict};
use nineten_protocol::reviewers::Reviewers;

use crate::util::{artist, listen, listener, month, node, signed, subscribe};

/// Six operators' nodes: 0 (the home node) to 2 in cluster 0, 3 and 4 in cluster 1, 5 in
/// cluster 2.
fn nodes() -> Vec<Keypair> {
    (0..6).map(node).collect()
}

fn cluster_of(i: usize) -> u16 {
    [0, 0, 0, 1, 1, 2][i]
}

fn month_records() -> (MonthRecords, Vec<Keypair>) {
    let keys = nodes();
    let node_records = keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            Record::sign(
                NodeRecord {
                    node: k.public(),
                    seq: 1,
                    cluster: cluster_of(i),
                    joined: month(),
                    name: NodeName::new(format!("operator {i}")).unwrap(),
                },
                k,
            )
        })
        .collect::<Vec<_>>();
    let home = &keys[0];
    let (a, b) = (listener(1), listener(2));
    let receipts = vec![
        signed(&a, listen(&a, 0, artist(1), 0)),
        signed(&a, listen(&a, 1, artist(2), 600)),
        signed(&b, listen(&b, 0, artist(1), 100)),
    ];
    let subscriptions = vec![subscribe(&a, home, "tx-a"), subscribe(&b, home, "tx-b")];
    let mut r = MonthRecords {
        nodes: node_records,
        receipts,
        subscriptions,
        ..MonthRecords::default()
    };
    issue(&mut r, &keys, 0);
    (r, keys)
}

/// The home node closes round `round` over `r`'s inputs, and the three eyes sign it.
fn issue(r: &mut MonthRecords, keys: &[Keypair], round: u8) {
    let home = &keys[0];
    let directory = Directory::for_month(month(), &r.nodes);
    let (bundle, _) = Bundle::close(
        home.public(),
        month(),
        Inputs {
            receipts: &r.receipts,
            excluded: &r.excluded,
            subscriptions: &r.subscriptions,
            carry: &r.carry,
        },
        &directory,
        round,
    )
    .unwrap();
    let bundle = Record::sign(bundle, home);
    let reviewers = Reviewers::choose(&directory, &home.public()).unwrap();
    for (role, who) in [
        (Role::Home, home.public()),
        (Role::Cluster, reviewers.cluster_peer(0).unwrap()),
        (Role::External, reviewers.external(0).unwrap()),
    ] {
        r.attestations.push(attest(keys, &bundle, role, 0, who));
    }
    r.bundles.push(bundle);
}

fn key_of(keys: &[Keypair], who: PublicKey) -> &Keypair {
    keys.iter().find(|k| k.public() == who).unwrap()
}

fn attest(
    keys: &[Keypair],
    bundle: &Record<Bundle>,
    role: Role,
    rank: u8,
    who: PublicKey,
) -> Record<Attestation> {
    Record::sign(
        Attestation {
            bundle: bundle.id(),
            tally: bundle.body.tally,
            role,
            rank,
            reviewer: who,
        },
        key_of(keys, who),
    )
}

fn failed(r: &MonthRecords) -> Vec<&'static str> {
    audit(r)
        .unwrap()
        .checks
        .into_iter()
        .filter(|c| !c.passed)
        .map(|c| c.name)
        .collect()
}

#[test]
fn an_honest_month_verifies_with_the_three_eyes_the_directory_names() {
    let (r, keys) = month_records();
    let a = audit(&r).unwrap();
    assert!(a.verified(), "{:#?}", a.checks);
    assert_eq!(a.home, keys[0].public());
    assert_eq!(a.tally.digest(), r.bundles[0].body.tally);
    // The reviewers come from the right clusters.
    let directory = Directory::for_month(month(), &r.nodes);
    let rv = Reviewers::choose(&directory, &keys[0].public()).unwrap();
    assert_eq!(directory.get(&rv.cluster_peers[0]).unwrap().cluster, 0);
    assert_ne!(directory.get(&rv.externals[0]).unwrap().cluster, 0);
}

#[test]
fn a_node_that_is_not_the_chosen_reviewer_is_not_counted() {
    let (mut r, keys) = month_records();
    let directory = Directory::for_month(month(), &r.nodes);
    let rv = Reviewers::choose(&directory, &keys[0].public()).unwrap();
    // Replace the external attestation with one by the second-nearest external at rank 0.
    r.attestations.retain(|a| a.body.role != Role::External);
    let wrong = rv.external(1).unwrap();
    let bundle = r.bundles[0].clone();
    r.attestations
        .push(attest(&keys, &bundle, Role::External, 0, wrong));
    assert_eq!(failed(&r), vec!["external attestation"]);
    // At its true rank (a replacement), it counts.
    r.attestations
        .push(attest(&keys, &bundle, Role::External, 1, wrong));
    assert!(audit(&r).unwrap().verified());
}

#[test]
fn an_altered_number_a_dropped_receipt_and_a_forgery_are_caught() {
    // The home node says another tally digest than its inputs give.
    let (mut r, keys) = month_records();
    r.bundles[0].body.tally = ContentHash([7; 32]);
    r.bundles[0] = Record::sign(r.bundles[0].body.clone(), &keys[0]);
    let failures = failed(&r);
    assert!(failures.contains(&"tally"), "{failures:?}");
    // The export leaves out a receipt its bundle names.
    let (mut r, _) = month_records();
    r.receipts.pop();
    let failures = failed(&r);
    assert!(
        failures.contains(&"receipts") && failures.contains(&"tally"),
        "{failures:?}"
    );
    // A forged attestation.
    let (mut r, _) = month_records();
    r.attestations[1].sig.0[3] ^= 1;
    assert_eq!(failed(&r), vec!["cluster attestation"]);
}

#[test]
fn a_suspect_dispute_decided_by_the_arbiter_leads_to_a_new_round() {
    let (mut r, keys) = month_records();
    let directory = Directory::for_month(month(), &r.nodes);
    let rv = Reviewers::choose(&directory, &keys[0].public()).unwrap();
    let external = rv.external(0).unwrap();
    let suspect = r.receipts[2];
    // The external objects instead of attesting round 0.
    r.attestations.retain(|a| a.body.role != Role::External);
    let dispute = Record::sign(
        Dispute {
            bundle: r.bundles[0].id(),
            kind: Kind::Suspect,
            evidence: root([suspect.id()]),
            claimed: ContentHash([0; 32]),
            by: external,
        },
        key_of(&keys, external),
    );
    let arbiter = rv.arbiters(&external)[0];
    // The arbiter is of neither the home node's cluster nor the external's.
    let cluster = |k: &PublicKey| directory.get(k).unwrap().cluster;
    assert!(cluster(&arbiter) != 0 && cluster(&arbiter) != cluster(&external));
    let verdict = Record::sign(
        Verdict {
            dispute: dispute.id(),
            outcome: Outcome::Upheld,
            excluded: root([suspect.id()]),
            added: root([]),
            rank: 0,
            arbiter,
        },
        key_of(&keys, arbiter),
    );
    r.disputes.push(dispute);
    r.verdicts.push(verdict.clone());
    // Round 0 lacks its external attestation.
    assert_eq!(failed(&r), vec!["external attestation"]);
    // The home node re-issues with the verdict applied, and the three sign round 1.
    r.receipts.retain(|x| x.id() != suspect.id());
    r.excluded.push(suspect);
    issue(&mut r, &keys, 1);
    let a = audit(&r).unwrap();
    assert!(a.verified(), "{:#?}", a.checks);
    assert_eq!(a.round, 1);
    // A verdict signed by a node that is not the arbiter of its rank is caught.
    let impostor = rv.arbiters(&external)[1];
    r.verdicts[0] = Record::sign(
        Verdict {
            arbiter: impostor,
            ..verdict.body.clone()
        },
        key_of(&keys, impostor),
    );
    assert_eq!(failed(&r), vec!["verdicts"]);
}

#[test]
fn carry_and_subscriptions_are_bound_by_the_bundle() {
    let (mut r, _) = month_records();
    let mut carry = BTreeMap::new();
    carry.insert(listener(1).public(), nineten_protocol::money::MicroUsdp(5));
    r.carry = carry;
    let failures = failed(&r);
    assert!(failures.contains(&"carry"), "{failures:?}");
    let (mut r, _) = month_records();
    r.subscriptions.pop();
    let failures = failed(&r);
    assert!(failures.contains(&"subscriptions"), "{failures:?}");
}
