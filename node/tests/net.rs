//! Real libp2p nodes on 127.0.0.1, each with its own store on disk: receipts reach every node
//! by gossip, a healed partition and a node far behind converge by reconciliation, a
//! listener's monthly cap holds, bad gossip is refused without harming anyone, and a node
//! closes the connections it does not need.

use std::time::Duration;

use nineten_node::net::{self, receipts::MAX_PER_LISTENER};
use nineten_protocol::identity::ListenerSecret;
use nineten_protocol::month::Month;

use crate::support::{
    TestNode, config, connect, converge, eventually, meshed, node_key, october, receipt, start,
    start_configured, start_one, subscribe_everywhere,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receipt_reaches_all_ten_nodes() {
    let nodes = start(10).await;
    for i in 1..10 {
        connect(&nodes, i, 0).await;
        connect(&nodes, i, i - 1).await;
    }
    let all: Vec<&TestNode> = nodes.iter().collect();
    meshed(&all).await;
    for (i, node) in nodes.iter().enumerate() {
        node.client.publish(receipt(i as u32, 1)).await.unwrap();
        node.client.publish(receipt(i as u32, 2)).await.unwrap();
        // Acknowledged means stored.
        assert!(node.store.has_receipt(&receipt(i as u32, 2)).unwrap());
    }
    converge(&all, 20, Duration::from_secs(15)).await;
    // Held means stored on disk, not only known.
    for node in &nodes {
        assert_eq!(node.store.receipts_of_month(october()).unwrap().len(), 20);
    }
    let stats = nodes[5].client.stats().await.unwrap();
    assert_eq!(stats.rejected, 0);
    assert!(stats.accepted >= 18, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_halves_converge_after_a_partition_heals() {
    let nodes = start(10).await;
    for i in 1..5 {
        connect(&nodes, i, i - 1).await;
        connect(&nodes, i + 5, i + 4).await;
    }
    let all: Vec<&TestNode> = nodes.iter().collect();
    meshed(&all).await;
    for seq in 0..30 {
        nodes[(seq % 5) as usize]
            .client
            .publish(receipt(1, seq))
            .await
            .unwrap();
        nodes[5 + (seq % 5) as usize]
            .client
            .publish(receipt(2, seq))
            .await
            .unwrap();
    }
    converge(&all[..5], 30, Duration::from_secs(15)).await;
    converge(&all[5..], 30, Duration::from_secs(15)).await;

    connect(&nodes, 4, 5).await; // the partition heals through one link
    let took = converge(&all, 60, Duration::from_secs(15)).await;
    eprintln!("converged {took:?} after the partition healed");
}

/// Far more than one reply could list (the old protocol failed beyond about 145,000): every
/// frame and fetch stays within its limit, and the newcomer gets everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_node_catches_up_on_many_receipts() {
    let receipts: Vec<_> = (0..30_000u32)
        .map(|i| receipt(i % 100, u64::from(i / 100)))
        .collect();
    let old = start_one(0, &receipts).await;
    let new = start_one(1, &[]).await;
    let nodes = [old, new];
    connect(&nodes, 1, 0).await;
    let took = converge(&[&nodes[0], &nodes[1]], 30_000, Duration::from_secs(120)).await;
    eprintln!("30,000 receipts caught up in {took:?}");
    assert_eq!(
        nodes[1].store.receipts_of_month(october()).unwrap().len(),
        30_000
    );
    let stats = nodes[1].client.stats().await.unwrap();
    assert_eq!((stats.reconciled, stats.rejected), (30_000, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_over_its_monthly_cap_gets_no_more_receipts_taken() {
    let over = MAX_PER_LISTENER as u64 + 300;
    let receipts: Vec<_> = (0..over).map(|seq| receipt(42, seq)).collect();
    let holder = start_one(0, &receipts).await;
    let taker = start_one(1, &[]).await;
    let nodes = [holder, taker];
    connect(&nodes, 1, 0).await;
    let cap = MAX_PER_LISTENER as usize;
    eventually(
        "the cap's worth arrives",
        Duration::from_secs(120),
        || async { nodes[1].client.held(october()).await.unwrap() == cap },
    )
    .await;
    eventually("the rest is refused", Duration::from_secs(30), || async {
        nodes[1].client.stats().await.unwrap().refused >= 300
    })
    .await;
    assert_eq!(nodes[1].client.held(october()).await.unwrap(), cap);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_gossip_is_refused_and_harms_no_one() {
    let nodes = start(3).await;
    connect(&nodes, 1, 0).await;
    connect(&nodes, 2, 1).await;
    connect(&nodes, 2, 0).await;
    let all: Vec<&TestNode> = nodes.iter().collect();
    meshed(&all).await;
    let mut forged = receipt(3, 1).to_bytes().to_vec();
    forged[100] ^= 1; // a field changed after signing
    let mut november = receipt(3, 2);
    november.receipt.started_at_ms += 40 * 86_400_000;
    let bad: Vec<Vec<u8>> = vec![
        vec![],
        b"not a receipt".to_vec(),
        vec![0u8; 232],
        forged,
        november.to_bytes().to_vec(),
        vec![0xff; 231],
        vec![7; 16 * 1024], // sendable (catalog manifests may be this big), not a receipt
    ];
    for bytes in bad {
        nodes[0]
            .client
            .publish_raw(net::receipt_topic(october()), bytes)
            .await
            .unwrap();
    }
    // Too large to send at all: refused before it leaves the node.
    assert!(
        nodes[0]
            .client
            .publish_raw(net::receipt_topic(october()), vec![0; 2 * net::MAX_GOSSIP])
            .await
            .is_err()
    );
    // The network still works: a good receipt arrives everywhere, and only it is held.
    nodes[2].client.publish(receipt(4, 1)).await.unwrap();
    converge(&all, 1, Duration::from_secs(10)).await;
    // Three rejected messages take the sender below gossipsub's graylist: what it sends
    // after that is dropped unread, and the node that scored it bans it.
    eventually(
        "the bad sender is refused and banned",
        Duration::from_secs(10),
        || async {
            let (mut rejected, mut banned) = (0, 0);
            for n in &nodes[1..] {
                let stats = n.client.stats().await.unwrap();
                rejected += stats.rejected;
                banned += stats.banned;
            }
            rejected >= 3 && banned >= 1
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_running_into_a_new_month_gossip_its_receipts() {
    let nodes = start(3).await;
    connect(&nodes, 1, 0).await;
    connect(&nodes, 2, 1).await;
    let november: Month = "2026-11".parse().unwrap();
    let mut late = receipt(5, 1);
    late.receipt.started_at_ms = november.bounds_ms().0 + 1000;
    let key = ListenerSecret::from_bytes([5; 32]).month_key(november);
    late.receipt.listener = key.public();
    let late = late.receipt.sign(&key);
    // Not served yet: refused with a reason.
    let err = nodes[0].client.publish(late).await.unwrap_err();
    assert!(err.to_string().contains("2026-11"), "{err}");
    for n in &nodes {
        n.client.serve_month(november).await.unwrap();
        n.client.serve_month(november).await.unwrap(); // again: no change
    }
    subscribe_everywhere(&nodes, key.public(), november).await;
    eventually("November's mesh forms", Duration::from_secs(10), || async {
        nodes[1].client.mesh_peers(november).await.unwrap() > 0
    })
    .await;
    nodes[0].client.publish(late).await.unwrap();
    for n in &nodes {
        eventually(
            "the November receipt spreads",
            Duration::from_secs(10),
            || async { n.client.held(november).await.unwrap() == 1 },
        )
        .await;
        assert_eq!(n.client.held(october()).await.unwrap(), 0);
    }
    // Running into January keeps only December and January in service.
    let january: Month = "2027-01".parse().unwrap();
    nodes[0].client.serve_month(january).await.unwrap();
    let err = nodes[0].client.publish(receipt(6, 1)).await.unwrap_err();
    assert!(err.to_string().contains("2026-10"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_from_the_future_are_refused() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let later = now + 86_400_000; // a day ahead: more than any clock is off
    let months: Vec<Month> = [now, later]
        .iter()
        .map(|t| Month::containing(*t).unwrap())
        .collect();
    let nodes = start(2).await;
    for n in &nodes {
        for m in &months {
            n.client.serve_month(*m).await.unwrap();
        }
    }
    connect(&nodes, 1, 0).await;
    let key = ListenerSecret::from_bytes([8; 32]).month_key(months[1]);
    let mut future = receipt(8, 0).receipt;
    future.listener = key.public();
    future.started_at_ms = later;
    let future = future.sign(&key);
    let mut present = future.receipt;
    present.seq = 1;
    present.started_at_ms = now - 60_000;
    let key_now = ListenerSecret::from_bytes([8; 32]).month_key(months[0]);
    present.listener = key_now.public();
    let present = present.sign(&key_now);
    subscribe_everywhere(&nodes, key.public(), months[1]).await;
    subscribe_everywhere(&nodes, key_now.public(), months[0]).await;
    eventually("the mesh forms", Duration::from_secs(10), || async {
        nodes[0].client.mesh_peers(months[1]).await.unwrap() > 0
            && nodes[0].client.mesh_peers(months[0]).await.unwrap() > 0
    })
    .await;
    nodes[0]
        .client
        .publish_raw(net::receipt_topic(months[1]), future.to_bytes().to_vec())
        .await
        .unwrap();
    nodes[0]
        .client
        .publish_raw(net::receipt_topic(months[0]), present.to_bytes().to_vec())
        .await
        .unwrap();
    eventually(
        "the present receipt arrives",
        Duration::from_secs(10),
        || async { nodes[1].store.has_receipt(&present).unwrap() },
    )
    .await;
    eventually(
        "the future one is refused",
        Duration::from_secs(10),
        || async { nodes[1].client.stats().await.unwrap().refused == 1 },
    )
    .await;
    assert!(!nodes[1].store.has_receipt(&future).unwrap());
}

/// Gossipsub's open streams keep every connection alive (rust-libp2p#5190): without the
/// node's own keeper, a node that 21 peers dialled stays connected to all 21 for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_closes_the_connections_it_does_not_need() {
    let nodes = start(22).await;
    for i in 1..22 {
        connect(&nodes, i, 0).await;
    }
    let hub = &nodes[0].client;
    eventually(
        "the hub has all 21 peers",
        Duration::from_secs(10),
        || async { hub.peers().await.unwrap().len() == 21 },
    )
    .await;
    // Beyond 16, connections that are no mesh link and carry no request close after 30 s.
    eventually(
        "the hub keeps at most 16 connections",
        Duration::from_secs(60),
        || async { hub.peers().await.unwrap().len() <= 16 },
    )
    .await;
    assert!(
        hub.mesh_peers(october()).await.unwrap() > 0,
        "mesh links are kept"
    );
    // Nobody is cut off: a receipt from the last node still reaches every node.
    nodes[21].client.publish(receipt(7, 1)).await.unwrap();
    let all: Vec<&TestNode> = nodes.iter().collect();
    converge(&all, 1, Duration::from_secs(20)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_home_node_keeps_requests_for_its_operator_and_forged_subscriptions_are_refused() {
    use nineten_node::net::subscribe::{Outcome, Policy, Request};
    use nineten_protocol::subscription::{PaymentRef, Subscription};

    let home = start_configured(
        0,
        &[],
        &[],
        net::Config {
            home: Some(Policy::Manual),
            ..config()
        },
    )
    .await;
    let listener = start_one(1, &[]).await;
    listener.client.dial(home.addr.clone()).await.unwrap();
    let home_key = node_key(0).public();
    let now = Month::containing(nineten_node::clock::Clock::system().now_ms()).unwrap();
    let month_key = ListenerSecret::from_bytes([3; 32]).month_key(now);
    let ask = || {
        Request::new(
            &home_key,
            &month_key,
            now,
            PaymentRef::new("tx-42").unwrap(),
            None,
        )
    };

    // A request whose proof does not cover what it asks is turned down, naming the proof.
    let mut forged = ask();
    forged.payment_ref = "tx-43".into();
    let outcome = listener.client.subscribe(home_key, forged).await.unwrap();
    assert!(
        matches!(&outcome, Outcome::Rejected(why) if why.0.contains("proof")),
        "{outcome:?}"
    );
    // A node that is not a home node says so.
    let other = start_one(2, &[]).await;
    listener.client.dial(other.addr.clone()).await.unwrap();
    let other_key = node_key(2).public();
    let request = Request::new(
        &other_key,
        &month_key,
        now,
        PaymentRef::new("tx-42").unwrap(),
        None,
    );
    let outcome = listener.client.subscribe(other_key, request).await.unwrap();
    assert!(
        matches!(&outcome, Outcome::Rejected(why) if why.0.contains("not a home node")),
        "{outcome:?}"
    );

    // A good one waits for the operator, durably; approving signs and gossips it.
    let outcome = listener.client.subscribe(home_key, ask()).await.unwrap();
    assert_eq!(outcome, Outcome::Pending);
    let pending = nineten_node::home::pending(&home.store).unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].request, ask());
    let id = pending[0].id.to_string();
    let signed = nineten_node::home::decide(&home.store, &node_key(0), &id[..8], true)
        .unwrap()
        .expect("approved");
    assert!(nineten_node::home::pending(&home.store).unwrap().is_empty());
    home.client
        .publish_subscription(signed.clone())
        .await
        .unwrap();
    eventually(
        "the subscription reaches the listener",
        Duration::from_secs(10),
        || async { listener.store.subscription(&signed.id()).unwrap().is_some() },
    )
    .await;
    assert_eq!(signed.subscription.listener, month_key.public());

    // A renewal into the next month proves that both keys are one listener's. A link the
    // key of the month before did not sign is turned down, naming it.
    let next = now.next().unwrap();
    let next_key = ListenerSecret::from_bytes([3; 32]).month_key(next);
    let stranger = ListenerSecret::from_bytes([5; 32]).month_key(now);
    let renew = |previous: &nineten_protocol::identity::Keypair| {
        Request::new(
            &home_key,
            &next_key,
            next,
            PaymentRef::new("standing-7").unwrap(),
            Some(previous),
        )
    };
    let mut forged = renew(&stranger);
    forged.renews.as_mut().unwrap().previous = month_key.public();
    forged.proof = next_key.sign(&forged.message(&home_key));
    let outcome = listener.client.subscribe(home_key, forged).await.unwrap();
    assert!(
        matches!(&outcome, Outcome::Rejected(why) if why.0.contains("renews")),
        "{outcome:?}"
    );
    assert_eq!(home.store.renewal(next, &month_key.public()).unwrap(), None);
    // A good one waits like any request; approved, the home node keeps the link.
    let outcome = listener
        .client
        .subscribe(home_key, renew(&month_key))
        .await
        .unwrap();
    assert_eq!(outcome, Outcome::Pending);
    let pending = nineten_node::home::pending(&home.store).unwrap();
    assert!(pending[0].request.renews.is_some());
    let id = pending[0].id.to_string();
    nineten_node::home::decide(&home.store, &node_key(0), &id, true).unwrap();
    assert_eq!(
        home.store.renewal(next, &month_key.public()).unwrap(),
        Some(next_key.public())
    );

    // A subscription signed by another key than its home node's is refused and counted.
    let impostor = Subscription {
        listener: ListenerSecret::from_bytes([4; 32]).month_key(now).public(),
        month: now,
        home_node: home_key,
        payment_ref: PaymentRef::new("tx-44").unwrap(),
    }
    .sign(&node_key(7));
    home.client
        .publish_raw(
            libp2p::gossipsub::IdentTopic::new(nineten_protocol::wire::SUBSCRIPTIONS_TOPIC),
            impostor.to_bytes(),
        )
        .await
        .unwrap();
    eventually(
        "the forged subscription is refused",
        Duration::from_secs(10),
        || async {
            listener
                .client
                .stats()
                .await
                .unwrap()
                .subscriptions_rejected
                == 1
        },
    )
    .await;
    assert!(
        listener
            .store
            .subscription(&impostor.id())
            .unwrap()
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receipt_refused_before_its_home_node_was_known_comes_once_it_is() {
    use nineten_protocol::identity::Keypair;
    use nineten_protocol::node_record::{NodeName, NodeRecord, SignedNodeRecord};
    use nineten_protocol::subscription::{PaymentRef, Subscription};

    let other_home = Keypair::from_seed([77; 32]);
    let record = SignedNodeRecord::sign(
        NodeRecord {
            node: other_home.public(),
            seq: 1,
            cluster: 2,
            joined: october(),
            name: NodeName::new("late home").unwrap(),
        },
        &other_home,
    );
    let mut r = receipt(500, 0).receipt;
    r.home_node = other_home.public();
    let key = {
        let mut secret = [0u8; 32];
        secret[..4].copy_from_slice(&500u32.to_be_bytes());
        secret[31] = 1;
        ListenerSecret::from_bytes(secret).month_key(october())
    };
    let r = r.sign(&key);
    let subscription = Subscription {
        listener: key.public(),
        month: october(),
        home_node: other_home.public(),
        payment_ref: PaymentRef::new("tx").unwrap(),
    }
    .sign(&other_home);
    let nodes = start(2).await;
    // Node 0 knows the home node and holds the receipt; node 1 knows the subscription only.
    nodes[0]
        .client
        .publish_node_record(record.clone())
        .await
        .unwrap();
    nodes[0]
        .client
        .publish_subscription(subscription.clone())
        .await
        .unwrap();
    nodes[0].client.publish(r).await.unwrap();
    nodes[1]
        .client
        .publish_subscription(subscription)
        .await
        .unwrap();
    connect(&nodes, 1, 0).await;
    eventually(
        "node 1 refuses the receipt",
        Duration::from_secs(10),
        || async { nodes[1].client.stats().await.unwrap().unsubscribed > 0 },
    )
    .await;
    assert_eq!(nodes[1].client.held(october()).await.unwrap(), 0);
    // Once node 1 learns the home node, reconciliation brings the receipt.
    nodes[1].client.publish_node_record(record).await.unwrap();
    converge(&[&nodes[1]], 1, Duration::from_secs(10)).await;
}
