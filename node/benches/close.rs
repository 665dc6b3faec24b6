//! The month close between three whole nodes on 127.0.0.1 (`review.md`, "three eyes"): a home
//! node with `NINETEN_CLOSE_SUBSCRIBERS` subscribers (default 10,000) and
//! `NINETEN_CLOSE_RECEIPTS` receipts of October (default 1,000,000), its cluster peer and an
//! external node, each holding every receipt (as gossip leaves them). The clock is moved past
//! the close; measured is the time until all three see the tally verified, with the time of
//! the home node's bundle, and the process's peak resident memory (the three nodes share one
//! process). Then the verification rate of review records (attestations) against that of
//! receipts, the named reference, on the same machine in the same run.
//!
//! Run: `cargo bench -p nineten-node --bench close`.

#![allow(missing_docs, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use nineten_node::clock::ManualClock;
use nineten_node::config::DataDir;
use nineten_node::daemon::{Config, Node};
use nineten_node::home::Operator;
use nineten_node::net::subscribe::Policy;
use nineten_node::review;
use nineten_protocol::identity::{Keypair, ListenerSecret};
use nineten_protocol::key::{ContentHash, PublicKey};
use nineten_protocol::month::Month;
use nineten_protocol::node_record::{NodeName, NodeRecord, SignedNodeRecord};
use nineten_protocol::receipt::{Receipt, SignedReceipt};
use nineten_protocol::record::Record;
use nineten_protocol::review::{Attestation, Role};
use nineten_protocol::schedule;
use nineten_protocol::signature::verify_all;
use nineten_protocol::subscription::{PaymentRef, Subscription};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn october() -> Month {
    "2026-10".parse().unwrap()
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

async fn operator(
    dir: &std::path::Path,
    i: u8,
    cluster: u16,
    clock: &ManualClock,
    peers: &[Arc<Node>],
) -> Arc<Node> {
    let mut config = Config::new(DataDir::new(Some(dir.join(format!("op{i}")))));
    config.seed = Some([i + 1; 32]);
    config.clock = clock.clock();
    config.operator = Some(Operator {
        cluster,
        name: NodeName::new(format!("operator {i}")).unwrap(),
        policy: Policy::Accept,
    });
    config.review = review::Options {
        interval: Duration::from_millis(200),
        ..review::Options::default()
    };
    for p in peers {
        config
            .peers
            .push(p.status().await.unwrap().addrs[0].parse().unwrap());
    }
    Node::start(config).await.unwrap()
}

/// Receipts of `subscribers` listeners, `receipts` in all, over October's 31 days, each of
/// 40 artists by Zipf-ish taste, signed on every core.
fn month(
    home: PublicKey,
    subscribers: usize,
    receipts: usize,
) -> (Vec<Subscription>, Vec<SignedReceipt>) {
    let per = receipts / subscribers;
    let chunks: Vec<Vec<SignedReceipt>> = std::thread::scope(|s| {
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                s.spawn(move || {
                    let mut out = Vec::new();
                    for l in (w..subscribers).step_by(workers) {
                        let mut seed = [0u8; 32];
                        seed[..8].copy_from_slice(&(l as u64).to_be_bytes());
                        let key = ListenerSecret::from_bytes(seed).month_key(october());
                        for seq in 0..per as u64 {
                            let x = (l as u64)
                                .wrapping_mul(2654435761)
                                .wrapping_add(seq * 40503);
                            let artist = (x % 40) * (x % 40) / 40;
                            out.push(
                                Receipt {
                                    listener: key.public(),
                                    seq,
                                    track: ContentHash::of(&[artist as u8, (x % 12) as u8]),
                                    artist: PublicKey(*blake3::hash(&[artist as u8]).as_bytes()),
                                    started_at_ms: october().bounds_ms().0
                                        + seq * (31 * 86_400_000 / per as u64)
                                        + (l as u64 % 1000) * 1000,
                                    listened_ms: 150_000,
                                    track_ms: 200_000,
                                    home_node: home,
                                }
                                .sign(&key),
                            );
                        }
                    }
                    out
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let receipts: Vec<SignedReceipt> = chunks.into_iter().flatten().collect();
    let subscriptions = (0..subscribers)
        .map(|l| {
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&(l as u64).to_be_bytes());
            Subscription {
                listener: ListenerSecret::from_bytes(seed)
                    .month_key(october())
                    .public(),
                month: october(),
                home_node: home,
                payment_ref: PaymentRef::new(format!("bench {l}")).unwrap(),
            }
        })
        .collect();
    (subscriptions, receipts)
}

fn main() {
    let subscribers = env("NINETEN_CLOSE_SUBSCRIBERS", 10_000);
    let receipts = env("NINETEN_CLOSE_RECEIPTS", 1_000_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        // October 31st, 23:00: the nodes join in October; the 31st ends an hour later.
        let clock = ManualClock::new(october().next().unwrap().bounds_ms().0 - 3_600_000);
        // The key node 0 derives from its seed (`daemon::Node::start`), to sign its
        // subscriptions here.
        let home_key = Keypair::from_seed(*blake3::keyed_hash(&[1; 32], b"9ten/node").as_bytes());
        let t = Instant::now();
        let (subscriptions, all) = month(home_key.public(), subscribers, receipts);
        let subscriptions: Vec<_> = subscriptions.into_iter().map(|s| s.sign(&home_key)).collect();
        println!("close: signed {} receipts of {} subscribers in {:.1} s", all.len(), subscriptions.len(), t.elapsed().as_secs_f64());
        // Every node record, subscription and receipt is on every node's store before it
        // starts, as gossip leaves them (each node finds its own record and keeps it).
        let records: Vec<_> = [(0u8, 0u16), (1, 0), (2, 1)]
            .iter()
            .map(|(i, cluster)| {
                let key = Keypair::from_seed(*blake3::keyed_hash(&[i + 1; 32], b"9ten/node").as_bytes());
                SignedNodeRecord::sign(
                    NodeRecord {
                        node: key.public(),
                        seq: 1,
                        cluster: *cluster,
                        joined: october(),
                        name: NodeName::new(format!("operator {i}")).unwrap(),
                    },
                    &key,
                )
            })
            .collect();
        let t = Instant::now();
        for i in 0..3u8 {
            let store = nineten_storage::Store::open(&DataDir::new(Some(dir.path().join(format!("op{i}")))).store()).unwrap();
            for r in &records {
                store.put_node_record(r).unwrap();
            }
            store.put_subscriptions(&subscriptions).unwrap();
            for chunk in all.chunks(20_000) {
                store.put_receipts(chunk, 0).unwrap();
            }
        }
        println!("close: stored them on 3 nodes in {:.1} s", t.elapsed().as_secs_f64());
        let mut nodes: Vec<Arc<Node>> = Vec::new();
        for (i, cluster) in [(0u8, 0u16), (1, 0), (2, 1)] {
            let node = operator(dir.path(), i, cluster, &clock, &nodes).await;
            nodes.push(node);
        }
        assert_eq!(nodes[0].key(), home_key.public());
        let wait = |what: &'static str, secs: u64, check: Box<dyn Fn() -> bool>| async move {
            let deadline = Instant::now() + Duration::from_secs(secs);
            while !check() {
                assert!(Instant::now() < deadline, "{what}: not within {secs} s");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        let t = Instant::now();
        for node in &nodes {
            let n = node.clone();
            wait("every node knows the directory", 600, Box::new(move || n.nodes().unwrap().len() == 3)).await;
        }
        println!("close: the three nodes started and know each other in {:.1} s", t.elapsed().as_secs_f64());
        let home = nodes[0].clone();
        // The 31st ends: its daily report, and those of the days before, are signed.
        clock.advance(2 * 3_600_000);
        let h = home.clone();
        let t = Instant::now();
        wait("the home node's 31 daily reports", 600, Box::new(move || {
            h.month_status(october()).unwrap().iter().any(|s| s.home == h.key() && s.daily_reports == 31)
        })).await;
        println!("close: 31 daily reports signed in {:.1} s", t.elapsed().as_secs_f64());

        let close = schedule::close_ms(october());
        clock.advance(close - clock.now_ms());
        let t = Instant::now();
        let h = home.clone();
        wait("the bundle", 600, Box::new(move || {
            h.month_status(october()).unwrap().iter().any(|s| s.home == h.key() && s.round.is_some())
        })).await;
        let bundled = t.elapsed();
        for node in &nodes {
            let (n, key) = (node.clone(), home.key());
            wait("verified", 600, Box::new(move || {
                n.month_status(october()).unwrap().iter().any(|s| s.home == key && s.verified)
            })).await;
        }
        let verified = t.elapsed();
        println!(
            "close: {} subscribers, {} receipts, 3 nodes: bundle after {:.1} s, verified on all three after {:.1} s (goal: under 30 s); peak RSS of the process {:.0} MB",
            subscribers,
            all.len(),
            bundled.as_secs_f64(),
            verified.as_secs_f64(),
            peak_rss_mb()
        );
        for node in nodes {
            node.shutdown().await.unwrap();
        }
    });

    // Verification rate: attestations against receipts (the reference), 100,000 of each.
    let n = 100_000;
    let reviewer = Keypair::from_seed([7; 32]);
    let attestations: Vec<_> = (0..n as u32)
        .map(|i| {
            Record::sign(
                Attestation {
                    bundle: ContentHash::of(&i.to_be_bytes()),
                    tally: ContentHash([1; 32]),
                    role: Role::Cluster,
                    rank: 0,
                    reviewer: reviewer.public(),
                },
                &reviewer,
            )
        })
        .collect();
    let (_, receipts) = month(PublicKey([9; 32]), 1000, n);
    let rate = |f: &dyn Fn() -> usize| {
        let t = Instant::now();
        let ok = f();
        (ok, ok as f64 / t.elapsed().as_secs_f64())
    };
    let (ok_r, receipts_per_s) = rate(&|| verify_all(&receipts).iter().filter(|v| **v).count());
    let (ok_a, attestations_per_s) =
        rate(&|| verify_all(&attestations).iter().filter(|v| **v).count());
    assert_eq!((ok_r, ok_a), (n, n));
    println!(
        "verify: attestations {:.0}/s, receipts (reference) {:.0}/s: ratio {:.2}",
        attestations_per_s,
        receipts_per_s,
        attestations_per_s / receipts_per_s
    );
}
