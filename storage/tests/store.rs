//! The store's contract: round trips, indexes, atomic batches, secrets and key files.

use std::os::unix::fs::PermissionsExt;

use nineten_protocol::identity::{Keypair, Secret};
use nineten_protocol::key::PublicKey;
use nineten_protocol::month::Month;
use nineten_protocol::receipt::Receipt;
use nineten_storage::{Error, Store, keyfile};

use crate::util::*;

#[test]
fn receipts_round_trip_through_every_index() -> Result<(), Error> {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (listener(1), listener(2));
    {
        let store = Store::open(dir.path())?;
        let receipts: Vec<_> = (0..50)
            .map(|s| receipt(&a, s))
            .chain((0..5).map(|s| receipt(&b, s)))
            .collect();
        store.put_receipts(&receipts, 0)?;
        store.put_receipts(&receipts[..10], 0)?; // again: no duplicates
    }
    let store = Store::open(dir.path())?;
    assert_eq!(store.receipt_count(), 55);
    let october: Month = "2026-10".parse().unwrap();
    let month = store.receipts_of_month(october)?;
    assert_eq!(month.len(), 55);
    assert!(
        month
            .windows(2)
            .all(|w| (w[0].receipt.listener, w[0].receipt.seq)
                < (w[1].receipt.listener, w[1].receipt.seq))
    );
    assert_eq!(store.receipts_of_listener(&b.public())?.len(), 5);
    assert_eq!(
        store
            .receipts_of_listener_in_month(october, &a.public())?
            .len(),
        50
    );
    assert!(store.receipts_of_month(october.next().unwrap())?.is_empty());
    let r = receipt(&a, 3);
    assert!(store.has_receipt(&r)?);
    // A receipt of the same key that started in November is indexed under November only.
    let late = Receipt {
        started_at_ms: START + 31 * 86_400_000,
        ..receipt(&a, 500).receipt
    }
    .sign(&a);
    store.put_receipts(&[late], 0)?;
    assert_eq!(store.receipts_of_month(october)?.len(), 55);
    assert_eq!(
        store.receipts_of_month(october.next().unwrap())?,
        vec![late]
    );
    assert!(!store.has_receipt(&receipt(&a, 999))?);
    Ok(())
}

#[test]
fn equivocating_receipts_are_both_kept() -> Result<(), Error> {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path())?;
    let a = listener(1);
    let first = receipt(&a, 4);
    let mut other = first.receipt;
    other.artist = PublicKey([1; 32]);
    store.put_receipts(&[first, other.sign(&a)], 0)?;
    assert_eq!(store.receipts_of_listener(&a.public())?.len(), 2);
    Ok(())
}

#[test]
fn copies_differing_only_in_signature_are_one_record() -> Result<(), Error> {
    use nineten_protocol::subscription::{PaymentRef, Subscription};
    let dir = tempfile::tempdir().unwrap();
    let a = listener(1);
    let first = receipt(&a, 4);
    let mut second = first;
    second.sig.0[9] ^= 1;
    assert_eq!(first.id(), second.id());
    let node = Keypair::from_seed([8; 32]);
    let sub = Subscription {
        listener: a.public(),
        month: "2026-10".parse().unwrap(),
        home_node: node.public(),
        payment_ref: PaymentRef::new("tx").unwrap(),
    }
    .sign(&node);
    let mut sub_copy = sub.clone();
    sub_copy.sig.0[9] ^= 1;
    {
        let store = Store::open(dir.path())?;
        store.put_receipts(&[first, second], 0)?; // in one batch
        store.put_receipts(&[first], 0)?; // and later: the last copy written is kept
        store.put_subscriptions(&[sub.clone(), sub_copy.clone()])?;
        store.put_subscriptions(&[sub_copy])?;
    }
    let store = Store::open(dir.path())?;
    assert_eq!(store.receipt_count(), 1);
    assert_eq!(store.receipts_of_listener(&a.public())?, vec![first]);
    assert!(
        store.has_receipt(&second)?,
        "a copy of the message is stored"
    );
    let october: Month = "2026-10".parse().unwrap();
    let subs = store.subscriptions_of_month(october)?;
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0].subscription, sub.subscription);
    Ok(())
}

#[test]
fn a_bad_batch_stores_nothing() -> Result<(), Error> {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path())?;
    let a = listener(1);
    store.put_receipts(&[receipt(&a, 0)], 0)?;
    let absurd = Receipt {
        started_at_ms: u64::MAX,
        ..receipt(&a, 1).receipt
    }
    .sign(&a);
    let err = store
        .put_receipts(&[receipt(&a, 2), absurd], 0)
        .unwrap_err();
    assert!(err.to_string().contains("9999"), "{err}");
    assert_eq!(
        store.receipt_count(),
        1,
        "the earlier receipt stays, the batch adds nothing"
    );
    Ok(())
}

#[test]
fn secrets_are_never_overwritten() -> Result<(), Error> {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path())?;
    store.put_secret("node", &Secret::Node(Keypair::from_seed([1; 32])))?;
    assert!(
        store
            .put_secret("node", &Secret::Node(Keypair::from_seed([2; 32])))
            .is_err()
    );
    match store.secret("node")? {
        Some(Secret::Node(k)) => assert_eq!(k.seed(), &[1; 32]),
        other => panic!("{other:?}"),
    }
    let mode = std::fs::metadata(dir.path()).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
    Ok(())
}

#[test]
fn key_files_are_private() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("artist.key");
    keyfile::write(&path, &Secret::Artist(Keypair::from_seed([5; 32]))).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(matches!(keyfile::read(&path), Ok(Secret::Artist(_))));
    // Never overwritten.
    assert!(keyfile::write(&path, &Secret::Artist(Keypair::from_seed([6; 32]))).is_err());
    // Refused once others can read it.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = keyfile::read(&path).unwrap_err();
    assert!(
        matches!(err, Error::Permissions { mode: 0o644, .. }),
        "{err}"
    );
}

#[test]
fn tallies_and_manifests_round_trip() -> Result<(), Error> {
    use nineten_protocol::key::ContentHash;
    use nineten_protocol::manifest::{Manifest, Track};
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path())?;
    let artist = Keypair::from_seed([3; 32]);
    let manifest = Manifest {
        artist: artist.public(),
        artist_name: "A".into(),
        title: "R".into(),
        published_at_ms: START,
        tracks: vec![Track {
            number: 1,
            title: "T".into(),
            hash: ContentHash([1; 32]),
            size: 16_000,
            duration_ms: 1000,
            channels: 1,
            input_sample_rate: 48_000,
            bitrate: 128_000,
            index: ContentHash([2; 32]),
        }],
    }
    .sign(&artist)
    .unwrap();
    let id = store.put_manifest(&manifest)?;
    assert_eq!(id, manifest.id());
    assert_eq!(store.manifest(&id)?, Some(manifest.clone()));
    assert_eq!(store.manifests()?, vec![manifest.clone()]);
    // Another copy of the release (another signature) has the same release id: still one.
    let mut copy = manifest;
    copy.sig.0[9] ^= 1;
    assert_eq!(store.put_manifest(&copy)?, id);
    assert_eq!(store.manifests()?.len(), 1);

    let a = listener(1);
    let month: Month = "2026-10".parse().unwrap();
    let tally = nineten_protocol::settlement::settle(nineten_protocol::settlement::Input {
        month,
        receipts: &[receipt(&a, 1)],
        subscriptions: &[],
        carry_in: &Default::default(),
    })
    .unwrap();
    store.put_tally(&tally)?;
    assert_eq!(store.tally(month)?.unwrap().digest(), tally.digest());
    Ok(())
}

#[test]
fn seqs_are_never_handed_out_twice_across_reopening() -> Result<(), Error> {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (listener(1).public(), listener(2).public());
    {
        let store = Store::open(dir.path())?;
        assert_eq!(store.next_seq(&a)?, 0);
        assert_eq!(store.next_seq(&a)?, 1);
        assert_eq!(
            store.next_seq(&b)?,
            0,
            "each listener key counts on its own"
        );
    }
    let store = Store::open(dir.path())?;
    assert_eq!(store.next_seq(&a)?, 2);
    Ok(())
}

#[test]
fn a_seq_is_never_one_the_store_holds_for_that_key() -> Result<(), Error> {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (listener(1), listener(2));
    let store = Store::open(dir.path())?;
    assert_eq!(store.last_seq(&a.public())?, None);
    assert_eq!(store.next_seq(&a.public())?, 0);
    // Receipts of a, signed before a backup's counter was restored, come back.
    store.put_receipts(&[receipt(&a, 7), receipt(&a, 3)], 0)?;
    assert_eq!(store.last_seq(&a.public())?, Some(7));
    assert_eq!(store.next_seq(&a.public())?, 8);
    assert_eq!(store.next_seq(&a.public())?, 9);
    // Another key's receipts change nothing for a's counter, nor a's for b's.
    store.put_receipts(&[receipt(&b, 100)], 0)?;
    assert_eq!(store.next_seq(&a.public())?, 10);
    assert_eq!(store.next_seq(&listener(3).public())?, 0);
    Ok(())
}

#[test]
fn cache_entries_come_back_least_recently_used_first() -> Result<(), Error> {
    use nineten_protocol::key::ContentHash;
    use nineten_storage::CacheEntry;
    let dir = tempfile::tempdir().unwrap();
    let entry = |name: &[u8], used_at_ms| CacheEntry {
        blob: ContentHash::of(name),
        size: 1000 + used_at_ms,
        used_at_ms,
    };
    {
        let store = Store::open(dir.path())?;
        store.put_cached(&entry(b"late", 30))?;
        store.put_cached(&entry(b"early", 10))?;
        store.put_cached(&entry(b"middle", 20))?;
        store.put_cached(&entry(b"early", 40))?; // played again: now the latest
        store.remove_cached(&ContentHash::of(b"middle"))?;
    }
    let store = Store::open(dir.path())?;
    assert_eq!(
        store.cached()?,
        vec![entry(b"late", 30), entry(b"early", 40)]
    );
    Ok(())
}

#[test]
fn node_records_subscriptions_and_pending_requests_round_trip() -> Result<(), Error> {
    use nineten_protocol::node_record::{NodeName, NodeRecord, SignedNodeRecord};
    use nineten_protocol::subscription::{PaymentRef, Subscription};

    let dir = tempfile::tempdir().unwrap();
    let october: Month = "2026-10".parse().unwrap();
    let nodes: Vec<Keypair> = (0..5).map(|i| Keypair::from_seed([100 + i; 32])).collect();
    let records: Vec<SignedNodeRecord> = nodes
        .iter()
        .map(|k| {
            let body = NodeRecord {
                node: k.public(),
                seq: 1,
                cluster: 7,
                joined: october,
                name: NodeName::new("home").unwrap(),
            };
            SignedNodeRecord::sign(body, k)
        })
        .collect();
    let (a, b) = (listener(1), listener(2));
    let sub = |l: &Keypair, r: &str| {
        Subscription {
            listener: l.public(),
            month: october,
            home_node: nodes[0].public(),
            payment_ref: PaymentRef::new(r).unwrap(),
        }
        .sign(&nodes[0])
    };
    {
        let store = Store::open(dir.path())?;
        for r in &records {
            store.put_node_record(r)?;
        }
        store.put_subscriptions(&[sub(&a, "tx-1"), sub(&a, "tx-2")])?;
        store.put_pending(&sub(&b, "tx-3").id(), b"request of b")?;
        store.put_pending(&sub(&b, "tx-4").id(), b"another request")?;
    }
    let store = Store::open(dir.path())?;
    // Node records page in id order, with none lost or repeated.
    let mut ids: Vec<_> = records.iter().map(|r| r.id()).collect();
    ids.sort();
    let first = store.node_record_ids(None, 3)?;
    let rest = store.node_record_ids(first.last(), 3)?;
    assert_eq!([first, rest].concat(), ids);
    assert_eq!(store.node_records()?.len(), 5);
    assert_eq!(store.node_record(&ids[2])?.map(|r| r.id()), Some(ids[2]));
    // Subscriptions: by id, by listener key, and paged.
    assert_eq!(
        store.subscriptions_of_listener(october, &a.public())?.len(),
        2
    );
    assert!(
        store
            .subscriptions_of_listener(october, &b.public())?
            .is_empty()
    );
    let subs = store.subscription_ids(None, 10)?;
    assert_eq!(subs.len(), 2);
    assert_eq!(store.subscription_ids(Some(&subs[0]), 10)?, vec![subs[1]]);
    assert!(store.subscription(&subs[1])?.is_some());
    // A pending request settles once: approved, its subscription is stored with it.
    assert_eq!(store.pending()?.len(), 2);
    let approved = sub(&b, "tx-3");
    assert!(store.settle_pending(&approved.id(), Some(&approved))?);
    assert!(!store.settle_pending(&approved.id(), None)?);
    assert!(store.settle_pending(&sub(&b, "tx-4").id(), None)?);
    assert!(store.pending()?.is_empty());
    assert_eq!(
        store.subscriptions_of_listener(october, &b.public())?,
        vec![approved]
    );
    Ok(())
}

#[test]
fn a_receipt_keeps_the_time_it_first_arrived() -> Result<(), Error> {
    let dir = tempfile::tempdir().unwrap();
    let october: Month = "2026-10".parse().unwrap();
    let home = PublicKey([9; 32]);
    let (a, b) = (listener(1), listener(2));
    let (early, late) = (receipt(&a, 0), receipt(&b, 0));
    {
        let store = Store::open(dir.path())?;
        store.put_receipts(&[early], 100)?;
        store.put_receipts(&[late], 500)?;
        // A copy arriving again later does not move its first arrival.
        store.put_receipts(&[early], 900)?;
    }
    let store = Store::open(dir.path())?;
    assert_eq!(store.received_ms(&early.id())?, Some(100));
    assert_eq!(store.received_ms(&late.id())?, Some(500));
    assert_eq!(store.received_ms(&receipt(&a, 1).id())?, None);
    // The home node's month counts what arrived before the close only.
    let before = |t| -> Result<Vec<_>, Error> {
        Ok(store
            .receipts_of_home(october, &home, t)?
            .iter()
            .map(|r| r.id())
            .collect())
    };
    assert_eq!(before(500)?, vec![early.id()]);
    assert_eq!(before(501)?.len(), 2);
    assert!(
        store
            .receipts_of_home(october, &PublicKey([8; 32]), u64::MAX)?
            .is_empty()
    );
    Ok(())
}

#[test]
fn review_records_and_their_sets_round_trip() -> Result<(), Error> {
    use std::collections::BTreeMap;

    use nineten_protocol::bundle::Bundle;
    use nineten_protocol::key::ContentHash;
    use nineten_protocol::money::MicroUsdp;
    use nineten_protocol::record::Record;
    use nineten_protocol::review::{Attestation, Role};
    use nineten_protocol::review_record::{ReviewRecord, Subject};
    use nineten_storage::review::{INPUT_PAGE, Part, Sets};

    let dir = tempfile::tempdir().unwrap();
    let october: Month = "2026-10".parse().unwrap();
    let home = Keypair::from_seed([50; 32]);
    let reviewer = Keypair::from_seed([51; 32]);
    let bundle = Record::sign(
        Bundle {
            home: home.public(),
            month: october,
            receipts: ContentHash([1; 32]),
            subscriptions: ContentHash([2; 32]),
            carry: ContentHash([3; 32]),
            excluded: ContentHash([4; 32]),
            directory: ContentHash([5; 32]),
            tally: ContentHash([6; 32]),
            round: 0,
        },
        &home,
    );
    let attestation = Record::sign(
        Attestation {
            bundle: bundle.id(),
            tally: bundle.body.tally,
            role: Role::Cluster,
            rank: 0,
            reviewer: reviewer.public(),
        },
        &reviewer,
    );
    let inputs = Sets {
        receipts: (0..INPUT_PAGE as u32 + 5)
            .map(|i| ContentHash::of(&i.to_be_bytes()))
            .collect(),
        excluded: vec![],
        subscriptions: vec![ContentHash([8; 32])],
        carry: BTreeMap::from([(PublicKey([7; 32]), MicroUsdp(42))]),
    };
    {
        let store = Store::open(dir.path())?;
        store.put_review(&ReviewRecord::Bundle(bundle.clone()))?;
        store.put_review(&ReviewRecord::Attestation(attestation.clone()))?;
        store.put_sets(&bundle.id(), &inputs)?;
    }
    let store = Store::open(dir.path())?;
    let month = store.reviews_of(&Subject::Month(home.public(), october))?;
    assert_eq!(month, vec![ReviewRecord::Bundle(bundle.clone())]);
    assert_eq!(
        store.reviews_of(&Subject::Bundle(bundle.id()))?,
        vec![ReviewRecord::Attestation(attestation.clone())]
    );
    assert!(
        store
            .reviews_of(&Subject::Month(home.public(), october.next().unwrap()))?
            .is_empty()
    );
    assert_eq!(store.review_ids(None, 10)?.len(), 2);
    assert_eq!(store.sets(&bundle.id())?, Some(inputs.clone()));
    assert_eq!(store.sets(&attestation.id())?, None);
    // Pages: the second page of receipts holds the last 5 ids; the empty part has page 0.
    let page = store.set_page(&bundle.id(), Part::Receipts, 1)?.unwrap();
    assert_eq!(page.len(), 5 * 32);
    assert_eq!(
        store.set_page(&bundle.id(), Part::Excluded, 0)?,
        Some(vec![])
    );
    assert_eq!(store.set_page(&bundle.id(), Part::Receipts, 2)?, None);
    Ok(())
}

#[test]
fn a_sets_membership_is_found_across_pages() -> Result<(), Error> {
    use nineten_protocol::key::ContentHash;
    use nineten_storage::review::{INPUT_PAGE, Part, Sets};

    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path())?;
    let all: Vec<ContentHash> = (0..3 * INPUT_PAGE as u32 + 7)
        .map(|i| ContentHash::of(&i.to_be_bytes()))
        .collect();
    // Every other id is in the set, in ascending order as roots name them.
    let mut named: Vec<ContentHash> = all.iter().step_by(2).copied().collect();
    named.sort();
    let record = ContentHash([9; 32]);
    store.put_sets(
        &record,
        &Sets {
            receipts: named,
            ..Sets::default()
        },
    )?;
    let asked: Vec<ContentHash> = all.iter().take(600).copied().collect();
    let found = store.set_names(&record, Part::Receipts, &asked)?.unwrap();
    let want: Vec<bool> = (0..600).map(|i| i % 2 == 0).collect();
    assert_eq!(found, want);
    let last = *all.iter().step_by(2).max().unwrap();
    assert_eq!(
        store.set_names(
            &record,
            Part::Receipts,
            &[last, ContentHash([0; 32]), ContentHash([0xff; 32])]
        )?,
        Some(vec![true, false, false])
    );
    assert_eq!(
        store.set_names(&ContentHash([8; 32]), Part::Receipts, &asked)?,
        None
    );
    Ok(())
}
