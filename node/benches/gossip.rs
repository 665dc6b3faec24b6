//! Receipt gossip and reconciliation figures, with real nodes on 127.0.0.1 in one process:
//!
//! - latency from `publish` until all 10 nodes hold a receipt, at 200 receipts/s in total
//!   (p50, p95), each from a listener already active this month;
//! - the same 200/s latency while a hostile peer (in its own process, at the lowest priority)
//!   floods one node with receipts of fresh keys (as fast as it can, or
//!   `NINETEN_BENCH_FLOOD_RATE` a second), and the CPU the nodes used in each case;
//! - then rising rates, to find the highest one the nodes sustain (p95 under 1 s);
//! - time and payload bytes for two halves of 10 nodes holding 10,000 receipts (5,000 each) to
//!   converge after the partition heals through one link;
//! - catch-up: an empty node joining one that holds N receipts (`NINETEN_CATCHUP`, default
//!   1,000,000), and two nodes of N receipts each with 1% different: time, bytes, peak RSS;
//! - resident memory of one idle node (network and store), read from /proc.
//!
//! Run: `cargo bench -p nineten-node --bench gossip`.

#![allow(missing_docs, clippy::unwrap_used)]

#[path = "../tests/support.rs"]
mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nineten_node::net::Event;
use nineten_protocol::key::ContentHash;
use nineten_protocol::receipt::SignedReceipt;

use support::{TestNode as Node, connect, converge, meshed, receipt, start_one};

fn receipts(listener: u32, from: u64, n: u64) -> Vec<SignedReceipt> {
    (from..from + n).map(|seq| receipt(listener, seq)).collect()
}

async fn start(n: usize, preload: impl Fn(usize) -> Vec<SignedReceipt>) -> Vec<Node> {
    let mut nodes = Vec::new();
    for i in 0..n {
        nodes.push(start_one(i, &preload(i)).await);
    }
    nodes
}

type Arrivals = HashMap<ContentHash, (Instant, usize)>;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

/// Listener keys of the honest traffic at each rate: mid-month traffic, every receipt from a
/// different listener that already has one receipt of the month (seq 0) on every node.
fn pool(rate: u64) -> std::ops::Range<u32> {
    let first = 1_000 * rate as u32;
    first..first + (rate * 3) as u32
}

/// The quiet and flooded runs at 200/s use the same number of keys, from different pools.
const FLOODED: u64 = 201;
/// The rates measured, each with its pool of keys.
const RATES: [u64; 7] = [200, FLOODED, 400, 600, 800, 1000, 1500];

/// The listener keys of every pool, each active on every node (subscribed, one receipt held).
fn warm_keys() -> impl Iterator<Item = u32> {
    RATES.into_iter().flat_map(pool)
}

/// Publishes a receipt (seq 1) of each key of `keys` at `rate` per second spread over the
/// nodes; returns the sorted latencies until every node holds each receipt (missing ones count
/// as the deadline).
async fn latencies(
    nodes: &[Node],
    rate: u64,
    keys: std::ops::Range<u32>,
) -> (Vec<Duration>, usize) {
    // Per receipt: when the last node got it, and how many nodes have.
    let arrivals: Arc<Mutex<Arrivals>> = Arc::default();
    let published: Arc<Mutex<HashMap<ContentHash, Instant>>> = Arc::default();
    let mut watchers = Vec::new();
    for node in nodes {
        let mut events = node.client.events();
        let arrivals = arrivals.clone();
        watchers.push(tokio::spawn(async move {
            while let Ok(Event::Receipt { id: key, .. }) = events.recv().await {
                let mut a = arrivals.lock().unwrap();
                let e = a.entry(key).or_insert((Instant::now(), 0));
                e.0 = Instant::now();
                e.1 += 1;
            }
        }));
    }
    let all: Vec<SignedReceipt> = keys.map(|k| receipt(k, 1)).collect();
    let gap = Duration::from_secs_f64(1.0 / rate as f64);
    let began = Instant::now();
    for (i, r) in all.iter().enumerate() {
        let due = began + gap * i as u32;
        tokio::time::sleep_until(due.into()).await;
        published.lock().unwrap().insert(r.id(), Instant::now());
        // Publishing waits for the store; concurrent publishes share its batches.
        let (client, r) = (nodes[i % nodes.len()].client.clone(), *r);
        tokio::spawn(async move { client.publish(r).await.unwrap() });
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

/// Set in the flooder's process: the address of the node it floods.
const FLOOD_TO: &str = "NINETEN_BENCH_FLOOD_TO";
/// Receipts a second the flooder gossips (`NINETEN_BENCH_FLOOD_RATE`, passed on to its
/// process); unset, as fast as it can. Just under the peers' allowance for gossip over budget
/// (500 a second more than the budgets) is the flood no peer is banned for.
const FLOOD_RATE: &str = "NINETEN_BENCH_FLOOD_RATE";
/// Set in the flooder's process: how many receipts the victims hold.
const FLOOD_HOLD: &str = "NINETEN_BENCH_FLOOD_HOLD";

/// The flooder's process: joins the victim's mesh and catches up, says "caught up" on stdout,
/// waits for a line on stdin, then gossips receipts of fresh keys, each signed as it goes,
/// until it is killed.
async fn flood(to: libp2p::Multiaddr) {
    let hold: usize = std::env::var(FLOOD_HOLD).unwrap().parse().unwrap();
    // A full node: it holds the subscriptions the victims hold, so it catches up on their
    // receipts before it floods.
    let warm: Vec<u32> = warm_keys().collect();
    let flooder = support::start_configured(10, &[], &warm, support::config()).await;
    flooder.client.dial(to).await.unwrap();
    meshed(&[&flooder]).await;
    support::eventually(
        "the flooder catches up",
        Duration::from_secs(120),
        || async { flooder.client.held(support::october()).await.unwrap() >= hold },
    )
    .await;
    println!("caught up");
    tokio::task::spawn_blocking(|| std::io::stdin().read_line(&mut String::new()))
        .await
        .unwrap()
        .unwrap();
    let topic = nineten_node::net::receipt_topic(support::october());
    let gap = std::env::var(FLOOD_RATE)
        .ok()
        .map(|r| Duration::from_secs_f64(1.0 / r.parse::<f64>().unwrap()));
    let began = Instant::now();
    for (i, key) in (5_000_000u32..).enumerate() {
        if let Some(gap) = gap {
            tokio::time::sleep_until((began + gap * i as u32).into()).await;
        }
        let bytes = receipt(key, 0).to_bytes().to_vec();
        let _ = flooder.client.publish_raw(topic.clone(), bytes).await;
    }
}

/// CPU time this process has used, user and system, in seconds.
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // Fields after the command name, which is in parentheses: utime and stime are 14 and 15.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
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
    if let Ok(to) = std::env::var(FLOOD_TO) {
        return flood(to.parse().unwrap()).await;
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

    let warm: Vec<SignedReceipt> = warm_keys().map(|k| receipt(k, 0)).collect();
    let nodes = start(10, |_| warm.clone()).await;
    for i in 1..10 {
        connect(&nodes, i, 0).await;
        connect(&nodes, i, i - 1).await;
    }
    meshed(&nodes.iter().collect::<Vec<_>>()).await;
    // The flooder is this bench run again in its own process at the lowest priority: on the
    // network it has its own machine, and here it takes what the victims leave of the two
    // cores instead of competing with them for the ones they would need anyway. It joins
    // before the quiet run and catches up first, so that the two runs differ by the flood
    // alone (not by a new node fetching every receipt).
    let mut flooder = std::process::Command::new("nice")
        .args(["-n", "19"])
        .arg(std::env::current_exe().unwrap())
        .env(FLOOD_TO, nodes[0].addr.to_string())
        .env(FLOOD_HOLD, warm.len().to_string())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(flooder.stdout.take().unwrap()),
        &mut ready,
    )
    .unwrap();
    assert_eq!(ready.trim(), "caught up");
    let (cpu, began) = (cpu_secs(), Instant::now());
    let (l, missing) = latencies(&nodes, 200, pool(200)).await;
    println!(
        "gossip to all 10 nodes at 200 receipts/s (600 receipts of active listeners): p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms, {missing} missing; the nodes used {:.0}% of a core",
        percentile(&l, 0.5).as_secs_f64() * 1e3,
        percentile(&l, 0.95).as_secs_f64() * 1e3,
        l.last().unwrap().as_secs_f64() * 1e3,
        100.0 * (cpu_secs() - cpu) / began.elapsed().as_secs_f64()
    );
    // The same 200/s, right after the quiet run (before the sweep loads the nodes), while the
    // flooder gossips valid receipts of fresh keys to node 0 as fast as it can (each a
    // different listener: no cap applies, only budgets).
    std::io::Write::write_all(flooder.stdin.as_mut().unwrap(), b"go\n").unwrap();
    let mut before = Vec::new();
    for n in &nodes {
        before.push(n.client.stats().await.unwrap());
    }
    let (cpu, began) = (cpu_secs(), Instant::now());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (l, missing) = latencies(&nodes, 200, pool(FLOODED)).await;
    for (i, n) in nodes.iter().enumerate() {
        let (a, b) = (n.client.stats().await.unwrap(), &before[i]);
        eprintln!(
            "node {i}: gossip {} accepted {} reconciled {} limited {} dup {} sync bytes {}",
            a.gossip_received - b.gossip_received,
            a.accepted - b.accepted,
            a.reconciled - b.reconciled,
            a.rate_limited - b.rate_limited,
            a.duplicates - b.duplicates,
            a.sync_bytes - b.sync_bytes
        );
    }
    let before = before.swap_remove(0);
    let victim = nodes[0].client.stats().await.unwrap();
    let secs = began.elapsed().as_secs_f64();
    let cpu = 100.0 * (cpu_secs() - cpu) / secs;
    flooder.kill().unwrap();
    flooder.wait().unwrap();
    println!(
        "gossip to all 10 nodes at 200 receipts/s while node 0 is flooded: p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms, {missing} missing; node 0 got {:.0} gossip messages a second and rate-limited {:.0} a second; the nodes used {cpu:.0}% of a core",
        percentile(&l, 0.5).as_secs_f64() * 1e3,
        percentile(&l, 0.95).as_secs_f64() * 1e3,
        l.last().unwrap().as_secs_f64() * 1e3,
        (victim.gossip_received - before.gossip_received) as f64 / secs,
        (victim.rate_limited - before.rate_limited) as f64 / secs,
    );
    for rate in RATES.into_iter().skip(2) {
        let (l, missing) = latencies(&nodes, rate, pool(rate)).await;
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
    meshed(&nodes.iter().collect::<Vec<_>>()).await;
    let mut before = 0;
    for n in &nodes {
        before += n.client.stats().await.unwrap().sync_bytes;
    }
    connect(&nodes, 4, 5).await;
    let took = converge(
        &nodes.iter().collect::<Vec<_>>(),
        10_000,
        Duration::from_secs(60),
    )
    .await;
    let mut after = 0;
    for n in &nodes {
        after += n.client.stats().await.unwrap().sync_bytes;
    }
    println!(
        "partition of 10 nodes (5,000 + 5,000 receipts) healed through one link: converged in {:.0} ms, {:.0} KB of reconciliation payload",
        took.as_secs_f64() * 1e3,
        (after - before) as f64 / 1e3
    );
    for n in &nodes {
        n.client.shutdown().await;
    }
    drop(nodes);

    let n: u64 = std::env::var("NINETEN_CATCHUP")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    catch_up(n).await;
}

/// Catch-up figures: an empty node joins one holding `n` receipts; then two nodes of `n`
/// receipts each, 1% of them different, reconcile.
async fn catch_up(n: u64) {
    // Listeners of 10,000 receipts each (under the monthly cap), signed on all cores.
    let sign = |from: u64, count: u64| -> Vec<SignedReceipt> {
        use rayon::prelude::*;
        (from..from + count)
            .into_par_iter()
            .map(|i| receipt(2_000 + (i / 10_000) as u32, i % 10_000))
            .collect()
    };
    let all = sign(0, n);
    let full = start_one(0, &all).await;
    let empty = start_one(1, &[]).await;
    let nodes = [full, empty];
    let rss0 = rss_kib();
    connect(&nodes, 1, 0).await;
    let peak = Arc::new(Mutex::new(rss0));
    let sampler = {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                let r = rss_kib();
                {
                    let mut p = peak.lock().unwrap();
                    *p = (*p).max(r);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let took = converge(
        &[&nodes[0], &nodes[1]],
        n as usize,
        Duration::from_secs(1800),
    )
    .await;
    let bytes = nodes[0].client.stats().await.unwrap().sync_bytes
        + nodes[1].client.stats().await.unwrap().sync_bytes;
    println!(
        "catch-up: an empty node took {n} receipts in {:.1} s, {:.1} MB of payload ({:.0} receipts/s), process RSS {} MiB before, peak {} MiB",
        took.as_secs_f64(),
        bytes as f64 / 1e6,
        n as f64 / took.as_secs_f64(),
        rss0 / 1024,
        *peak.lock().unwrap() / 1024
    );
    for node in &nodes {
        node.client.shutdown().await;
    }
    drop(nodes);

    // Two nodes of n receipts each, 1% (n / 100) on each side the other lacks.
    let diff = n / 100;
    let extra_a = sign(n, diff);
    let extra_b = sign(n + diff, diff);
    let common = &all[..(n - diff) as usize];
    let a: Vec<SignedReceipt> = common.iter().chain(&extra_a).copied().collect();
    let b: Vec<SignedReceipt> = common.iter().chain(&extra_b).copied().collect();
    drop(all);
    let nodes = [start_one(2, &a).await, start_one(3, &b).await];
    drop((a, b));
    let rss0 = rss_kib();
    *peak.lock().unwrap() = rss0;
    connect(&nodes, 1, 0).await;
    let want = (n - diff + 2 * diff) as usize;
    let took = converge(&[&nodes[0], &nodes[1]], want, Duration::from_secs(1800)).await;
    let bytes = nodes[0].client.stats().await.unwrap().sync_bytes
        + nodes[1].client.stats().await.unwrap().sync_bytes;
    println!(
        "reconcile: two nodes of {n} receipts, {diff} different on each side, agreed in {:.1} s, {:.1} MB of payload, process RSS {} MiB before, peak {} MiB",
        took.as_secs_f64(),
        bytes as f64 / 1e6,
        rss0 / 1024,
        *peak.lock().unwrap() / 1024
    );
    sampler.abort();
}
