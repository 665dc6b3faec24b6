//! What the network tests and benches share: loopback nodes on real stores, one receipt
//! builder, and one way to wait for a condition (events and counters, never a fixed sleep).
//! Benches include this file with `#[path]`.

#![allow(dead_code, clippy::unwrap_used)] // each test binary or bench uses part of it

use std::future::Future;
use std::time::{Duration, Instant};

use nineten_node::net::{self, Client, Config};
use nineten_protocol::identity::{Keypair, ListenerSecret};
use nineten_protocol::key::{ContentHash, PublicKey};
use nineten_protocol::month::Month;
use nineten_protocol::node_record::{NodeName, NodeRecord, SignedNodeRecord};
use nineten_protocol::receipt::{Receipt, SignedReceipt};
use nineten_protocol::subscription::{PaymentRef, Subscription};
use nineten_storage::Store;

/// The month the tests' receipts belong to.
pub(crate) fn october() -> Month {
    "2026-10".parse().unwrap()
}

/// Receipt number `seq` of listener number `listener` (a month key of a fixed secret), a
/// minute after the previous one (the month holds 44,640 of them).
pub(crate) fn receipt(listener: u32, seq: u64) -> SignedReceipt {
    let mut secret = [0u8; 32];
    secret[..4].copy_from_slice(&listener.to_be_bytes());
    secret[31] = 1;
    let key = ListenerSecret::from_bytes(secret).month_key(october());
    Receipt {
        listener: key.public(),
        seq,
        track: ContentHash::of(&seq.to_be_bytes()),
        artist: PublicKey([7; 32]),
        started_at_ms: october().bounds_ms().0 + seq * 60_000,
        listened_ms: 50_000,
        track_ms: 210_000,
        home_node: home().public(),
    }
    .sign(&key)
}

/// The home node every test listener subscribes through.
pub(crate) fn home() -> Keypair {
    Keypair::from_seed([9; 32])
}

/// Listeners `0..SUBSCRIBED` (and those of the receipts a node starts with) are subscribed on
/// every test node; others are nobody's subscribers, and the network does not carry them.
pub(crate) const SUBSCRIBED: u32 = 200;

/// Subscribes `listener` for `month` on every node (which must serve `month`), through the
/// test home node.
pub(crate) async fn subscribe_everywhere(nodes: &[TestNode], listener: PublicKey, month: Month) {
    let s = Subscription {
        listener,
        month,
        home_node: home().public(),
        payment_ref: PaymentRef::new("test").unwrap(),
    }
    .sign(&home());
    for n in nodes {
        n.store.put_subscriptions(std::slice::from_ref(&s)).unwrap();
        n.client.publish_subscription(s.clone()).await.unwrap();
    }
}

/// Stores the home node's record and the October subscriptions of `listeners`.
pub(crate) fn subscribe(store: &Store, listeners: impl IntoIterator<Item = PublicKey>) {
    let home = home();
    let record = NodeRecord {
        node: home.public(),
        seq: 1,
        cluster: 1,
        joined: october(),
        name: NodeName::new("test home").unwrap(),
    };
    store
        .put_node_record(&SignedNodeRecord::sign(record, &home))
        .unwrap();
    let subscriptions: Vec<_> = listeners
        .into_iter()
        .map(|listener| {
            Subscription {
                listener,
                month: october(),
                home_node: home.public(),
                payment_ref: PaymentRef::new(format!("test {listener}")).unwrap(),
            }
            .sign(&home)
        })
        .collect();
    store.put_subscriptions(&subscriptions).unwrap();
}

/// A node's network on a store of its own.
pub(crate) struct TestNode {
    pub(crate) client: Client,
    pub(crate) addr: libp2p::Multiaddr,
    pub(crate) store: Store,
    pub(crate) dir: tempfile::TempDir,
}

/// The default test configuration: October served, a sync every 500 ms.
pub(crate) fn config() -> Config {
    Config {
        listen: "/ip4/127.0.0.1/tcp/0".parse().unwrap(),
        peers: Vec::new(),
        months: vec![october()],
        sync_interval: Duration::from_millis(500),
        iroh: None,
        clock: nineten_node::clock::Clock::system(),
        home: None,
    }
}

/// Starts node number `i` on a fresh store holding `receipts`.
pub(crate) async fn start_one(i: usize, receipts: &[SignedReceipt]) -> TestNode {
    start_configured(i, receipts, &[], config()).await
}

/// The key of node number `i` (its libp2p identity too).
pub(crate) fn node_key(i: usize) -> Keypair {
    Keypair::from_seed(node_seed(i))
}

fn node_seed(i: usize) -> [u8; 32] {
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&(i as u64 + 1).to_be_bytes());
    seed
}

/// Starts node number `i` on a fresh store holding `receipts` and the subscriptions of
/// listeners `listeners` too, configured so.
pub(crate) async fn start_configured(
    i: usize,
    receipts: &[SignedReceipt],
    listeners: &[u32],
    config: Config,
) -> TestNode {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    for chunk in receipts.chunks(10_000) {
        store.put_receipts(chunk, 0).unwrap();
    }
    let mut keys: std::collections::BTreeSet<PublicKey> = (0..SUBSCRIBED)
        .chain(listeners.iter().copied())
        .map(|l| receipt(l, 0).receipt.listener)
        .collect();
    keys.extend(receipts.iter().map(|r| r.receipt.listener));
    subscribe(&store, keys);
    let (client, network) = net::new(&node_seed(i), config, store.clone()).unwrap();
    tokio::spawn(network.run());
    eventually("the node listens", Duration::from_secs(5), || async {
        !client.listen_addrs().await.unwrap().is_empty()
    })
    .await;
    let addr = client.listen_addrs().await.unwrap()[0].clone();
    TestNode {
        client,
        addr,
        store,
        dir,
    }
}

/// Starts `n` empty nodes.
pub(crate) async fn start(n: usize) -> Vec<TestNode> {
    let mut nodes = Vec::new();
    for i in 0..n {
        nodes.push(start_one(i, &[]).await);
    }
    nodes
}

/// Connects node `a` to node `b`.
pub(crate) async fn connect(nodes: &[TestNode], a: usize, b: usize) {
    nodes[a].client.dial(nodes[b].addr.clone()).await.unwrap();
}

/// Waits until every node has a gossip mesh for October.
pub(crate) async fn meshed(nodes: &[&TestNode]) {
    eventually("gossip meshes form", Duration::from_secs(10), || async {
        for n in nodes {
            if n.client.mesh_peers(october()).await.unwrap() == 0 {
                return false;
            }
        }
        true
    })
    .await;
}

/// Polls `check` until it holds; panics naming `what` at the deadline. Returns how long it
/// took.
pub(crate) async fn eventually<F, Fut>(what: &str, deadline: Duration, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let began = Instant::now();
    loop {
        if check().await {
            return began.elapsed();
        }
        assert!(began.elapsed() < deadline, "{what}: not after {deadline:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until every node in `nodes` holds `want` receipts of October.
pub(crate) async fn converge(nodes: &[&TestNode], want: usize, deadline: Duration) -> Duration {
    eventually(
        &format!("every node holds {want} receipts"),
        deadline,
        || async {
            for n in nodes {
                if n.client.held(october()).await.unwrap() != want {
                    return false;
                }
            }
            true
        },
    )
    .await
}
