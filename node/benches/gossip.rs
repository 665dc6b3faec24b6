//! Receipt gossip and reconciliation figures, with 10 real nodes on 127.0.0.1 in one process:
//!
//! - latency from `publish` until all 10 nodes hold a receipt, at 200 receipts/s in total
//!   (p50, p95), then at rising rates to find the highest one the nodes sustain (p95 under 1 s);
//! - time and payload bytes for two halves of 10 nodes holding 10,000 receipts (5,000 each) to
//!   converge after the partition heals through one link;
//! - resident memory of one idle node (network and store), read from /proc.
//!
//! Run: `cargo bench -p nineten-node --bench gossip`.

#![allow(missing_docs, clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nineten_node::net::{self, Client, Config, Event, key_of};
use nineten_protocol::identity::ListenerSecret;
use nineten_protocol::key::{ContentHash, PublicKey};
use nineten_protocol::month::Month;
use nineten_protocol::receipt::{Receipt, SignedReceipt};
use nineten_storage::Store;

fn october() -> Month {
    "2026-10".parse().unwrap()
}

fn receipts(listener: u8, from: u64, n: u64) -> Vec<SignedReceipt> {
    let key = ListenerSecret::from_bytes([listener; 32]).month_key(october());
    (from..from + n)
        .map(|seq| {
            Receipt {
                listener: key.public(),
                seq,
                track: ContentHash::of(&seq.to_be_bytes()),
                artist: PublicKey([7; 32]),
                started_at_ms: october().bounds_ms().0 + seq * 200,
                listened_ms: 180,
                track_ms: 210_000,
                home_node: PublicKey([9; 32]),
            }
            .sign(&key)
        })
        .collect()
}

struct Node {
    client: Client,
    addr: libp2p::Multiaddr,
    _dir: tempfile::TempDir,
}

async fn start(n: usize, preload: impl Fn(usize) -> Vec<SignedReceipt>) -> Vec<Node> {
    let mut nodes = Vec::new();
    for i in 0..n {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.put_receipts(&preload(i)).unwrap();
        let config = Config {
            listen: "/ip4/127.0.0.1/tcp/0".parse().unwrap(),
            peers: Vec::new(),
            months: vec![october()],
            sync_interval: Duration::from_millis(500),
            iroh: None,
        };
        let (client, network) = net::new(&[i as u8 + 1; 32], config, store).unwrap();
        tokio::spawn(network.run());
        let addr = loop {
            if let Some(a) = client.listen_addrs().await.unwrap().into_iter().next() {
                break a;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        nodes.push(Node {
            client,
            addr,
            _dir: dir,
        });
    }
    nodes
}

async fn connect(nodes: &[Node], a: usize, b: usize) {
    nodes[a]
        .client
        .dial(nodes[b].addr.clone())
        .await
        .unwrap()
        .unwrap();
}

type Arrivals = HashMap<[u8; 72], (Instant, usize)>;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

/// Publishes `count` receipts at `rate` per second spread over the nodes; returns the sorted
/// latencies until every node holds each receipt (missing ones count as the deadline).
async fn latencies(nodes: &[Node], rate: u64, count: u64, listener: u8) -> (Vec<Duration>, usize) {
    // Per receipt: when the last node got it, and how many nodes have.
    let arrivals: Arc<Mutex<Arrivals>> = Arc::default();
    let published: Arc<Mutex<HashMap<[u8; 72], Instant>>> = Arc::default();
    let mut watchers = Vec::new();
    for node in nodes {
        let mut events = node.client.events();
        let arrivals = arrivals.clone();
        watchers.push(tokio::spawn(async move {
            while let Ok(Event::Receipt { key, .. }) = events.recv().await {
                let mut a = arrivals.lock().unwrap();
                let e = a.entry(key).or_insert((Instant::now(), 0));
                e.0 = Instant::now();
                e.1 += 1;
            }
        }));
    }
    let all = receipts(listener, 0, count);
    let gap = Duration::from_secs_f64(1.0 / rate as f64);
    let began = Instant::now();
    for (i, r) in all.iter().enumerate() {
        let due = began + gap * i as u32;
        tokio::time::sleep_until(due.into()).await;
        published.lock().unwrap().insert(key_of(r), Instant::now());
        nodes[i % nodes.len()]
            .client
            .publish(*r)
            .await
            .unwrap()
            .unwrap();
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    for w in watchers {
        w.abort();
    }
    let arrivals = arrivals.lock().unwrap();
    let published = published.lock().unwrap();
    let mut out = Vec::new();
    let mut missing = 0;
    for (key, at) in published.iter() {
        match arrivals.get(key) {
            Some((last, n)) if *n == nodes.len() => out.push(last.duration_since(*at)),
            _ => {
                missing += 1;
                out.push(Duration::from_secs(3));
            }
        }
    }
    out.sort();
    (out, missing)
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
        .unwrap()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("gossip: bench");
        return;
    }
    // Idle memory first, while the process is small.
    let before = rss_kib();
    let idle = start(1, |_| Vec::new()).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = rss_kib();
    println!(
        "idle node: process RSS {} KiB ({} KiB before the node started)",
        after, before
    );
    idle[0].client.shutdown().await;

    let nodes = start(10, |_| Vec::new()).await;
    for i in 1..10 {
        connect(&nodes, i, 0).await;
        connect(&nodes, i, i - 1).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (l, missing) = latencies(&nodes, 200, 1000, 1).await;
    println!(
        "gossip to all 10 nodes at 200 receipts/s (1000 receipts): p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms, {missing} missing",
        percentile(&l, 0.5).as_secs_f64() * 1e3,
        percentile(&l, 0.95).as_secs_f64() * 1e3,
        l.last().unwrap().as_secs_f64() * 1e3
    );
    for (i, rate) in [400u64, 600, 800, 1000, 1500].into_iter().enumerate() {
        let (l, missing) = latencies(&nodes, rate, rate * 3, 10 + i as u8).await;
        let p95 = percentile(&l, 0.95);
        println!(
            "gossip at {rate} receipts/s ({} receipts): p50 {:.1} ms, p95 {:.1} ms, {missing} missing",
            rate * 3,
            percentile(&l, 0.5).as_secs_f64() * 1e3,
            p95.as_secs_f64() * 1e3
        );
        if p95 > Duration::from_secs(1) || missing > 0 {
            break;
        }
    }
    for n in &nodes {
        n.client.shutdown().await;
    }

    // Partition: halves preloaded with 5,000 different receipts each.
    let half_a = receipts(100, 0, 5000);
    let half_b = receipts(101, 0, 5000);
    let nodes = start(10, |i| {
        if i < 5 {
            half_a.clone()
        } else {
            half_b.clone()
        }
    })
    .await;
    for i in 1..5 {
        connect(&nodes, i, i - 1).await;
        connect(&nodes, i + 5, i + 4).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut before = 0;
    for n in &nodes {
        before += n.client.stats().await.unwrap().sync_bytes;
    }
    let began = Instant::now();
    connect(&nodes, 4, 5).await;
    loop {
        let mut done = true;
        for n in &nodes {
            done &= n.client.held(october()).await.unwrap() == 10_000;
        }
        if done {
            break;
        }
        assert!(began.elapsed() < Duration::from_secs(60), "no convergence");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let took = began.elapsed();
    let mut after = 0;
    for n in &nodes {
        after += n.client.stats().await.unwrap().sync_bytes;
    }
    println!(
        "partition of 10 nodes (5,000 + 5,000 receipts) healed through one link: converged in {:.0} ms, {:.0} KB of reconciliation payload",
        took.as_secs_f64() * 1e3,
        (after - before) as f64 / 1e3
    );
}
