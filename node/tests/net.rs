//! Real libp2p nodes on 127.0.0.1, each with its own store on disk: receipts reach every node
//! by gossip, a healed partition converges by reconciliation, and bad gossip is refused
//! without harming anyone.

use std::time::{Duration, Instant};

use nineten_node::net::{self, Client, Config};
use nineten_protocol::identity::ListenerSecret;
use nineten_protocol::key::{ContentHash, PublicKey};
use nineten_protocol::month::Month;
use nineten_protocol::receipt::{Receipt, SignedReceipt};
use nineten_storage::Store;

fn october() -> Month {
    "2026-10".parse().unwrap()
}

fn receipt(listener: u8, seq: u64) -> SignedReceipt {
    let key = ListenerSecret::from_bytes([listener; 32]).month_key(october());
    Receipt {
        listener: key.public(),
        seq,
        track: ContentHash::of(&seq.to_be_bytes()),
        artist: PublicKey([7; 32]),
        started_at_ms: october().bounds_ms().0 + seq * 300_000,
        listened_ms: 200_000,
        track_ms: 210_000,
        home_node: PublicKey([9; 32]),
    }
    .sign(&key)
}

struct TestNode {
    client: Client,
    addr: libp2p::Multiaddr,
    store: Store,
    _dir: tempfile::TempDir,
}

async fn start(n: usize) -> Vec<TestNode> {
    let mut nodes = Vec::new();
    for i in 0..n {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let config = Config {
            listen: "/ip4/127.0.0.1/tcp/0".parse().unwrap(),
            peers: Vec::new(),
            months: vec![october()],
            sync_interval: Duration::from_millis(500),
            iroh: None,
        };
        let (client, network) = net::new(&[i as u8 + 1; 32], config, store.clone()).unwrap();
        tokio::spawn(network.run());
        let addr = loop {
            if let Some(a) = client.listen_addrs().await.unwrap().into_iter().next() {
                break a;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        nodes.push(TestNode {
            client,
            addr,
            store,
            _dir: dir,
        });
    }
    nodes
}

async fn connect(nodes: &[TestNode], a: usize, b: usize) {
    nodes[a]
        .client
        .dial(nodes[b].addr.clone())
        .await
        .unwrap()
        .unwrap();
}

/// Waits until every node in `nodes` holds `want` receipts of October; panics at the deadline.
async fn converge(nodes: &[&TestNode], want: usize, deadline: Duration) -> Duration {
    let began = Instant::now();
    loop {
        let mut held = Vec::new();
        for n in nodes {
            held.push(n.client.held(october()).await.unwrap());
        }
        if held.iter().all(|h| *h == want) {
            return began.elapsed();
        }
        assert!(
            began.elapsed() < deadline,
            "not converged after {deadline:?}: {held:?}, want {want}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receipt_reaches_all_ten_nodes() {
    let nodes = start(10).await;
    for i in 1..10 {
        connect(&nodes, i, 0).await;
        connect(&nodes, i, i - 1).await;
    }
    tokio::time::sleep(Duration::from_millis(800)).await; // gossip meshes form on heartbeats
    for (i, node) in nodes.iter().enumerate() {
        node.client
            .publish(receipt(i as u8, 1))
            .await
            .unwrap()
            .unwrap();
        node.client
            .publish(receipt(i as u8, 2))
            .await
            .unwrap()
            .unwrap();
    }
    let all: Vec<&TestNode> = nodes.iter().collect();
    converge(&all, 20, Duration::from_secs(15)).await;
    // Stored on disk too, not only known.
    tokio::time::sleep(Duration::from_millis(300)).await;
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
    tokio::time::sleep(Duration::from_millis(800)).await;
    for seq in 0..30 {
        nodes[(seq % 5) as usize]
            .client
            .publish(receipt(1, seq))
            .await
            .unwrap()
            .unwrap();
        nodes[5 + (seq % 5) as usize]
            .client
            .publish(receipt(2, seq))
            .await
            .unwrap()
            .unwrap();
    }
    let a: Vec<&TestNode> = nodes[..5].iter().collect();
    let b: Vec<&TestNode> = nodes[5..].iter().collect();
    converge(&a, 30, Duration::from_secs(15)).await;
    converge(&b, 30, Duration::from_secs(15)).await;

    connect(&nodes, 4, 5).await; // the partition heals through one link
    let all: Vec<&TestNode> = nodes.iter().collect();
    let took = converge(&all, 60, Duration::from_secs(15)).await;
    eprintln!("converged {took:?} after the partition healed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_gossip_is_refused_and_harms_no_one() {
    let nodes = start(3).await;
    connect(&nodes, 1, 0).await;
    connect(&nodes, 2, 1).await;
    connect(&nodes, 2, 0).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
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
            .unwrap()
            .unwrap();
    }
    // Too large to send at all: refused before it leaves the node.
    assert!(
        nodes[0]
            .client
            .publish_raw(net::receipt_topic(october()), vec![0; 2 * net::MAX_GOSSIP])
            .await
            .unwrap()
            .is_err()
    );
    // The network still works: a good receipt arrives everywhere, and only it is held.
    nodes[2]
        .client
        .publish(receipt(4, 1))
        .await
        .unwrap()
        .unwrap();
    let all: Vec<&TestNode> = nodes.iter().collect();
    converge(&all, 1, Duration::from_secs(10)).await;
    let mut rejected = 0;
    for n in &nodes[1..] {
        rejected += n.client.stats().await.unwrap().rejected;
    }
    assert!(
        rejected >= 7,
        "the bad messages are counted as rejected: {rejected}"
    );
    assert_eq!(
        nodes[1].client.peers().await.unwrap().len(),
        2,
        "still connected"
    );
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
    assert!(nodes[0].client.publish(late).await.unwrap().is_err());
    for n in &nodes {
        n.client.serve_month(november).await.unwrap().unwrap();
        n.client.serve_month(november).await.unwrap().unwrap(); // again: no change
    }
    tokio::time::sleep(Duration::from_millis(800)).await; // the new topic's mesh forms
    nodes[0].client.publish(late).await.unwrap().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    for n in &nodes {
        while n.client.held(november).await.unwrap() != 1 {
            assert!(
                Instant::now() < deadline,
                "the November receipt did not spread"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(n.client.held(october()).await.unwrap() == 0);
    }
}
