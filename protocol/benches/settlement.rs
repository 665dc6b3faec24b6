//! Benchmarks of receipt verification and of settling a large month.
//!
//! - `verify/raw-zebra-batch` is the reference: ed25519-zebra batch verification of the same
//!   signatures, split over the cores in the same chunks, with nothing else done.
//! - `verify/verify_all` is what settlement runs: the same plus building each message and the
//!   small-order key check.
//! - `settle/1M` settles 1,000,000 receipts of 10,000 subscribed listeners over 2,000
//!   artists, signature verification included.
//! - `settle/100k-and-10k-broken-copies` settles the first 100,000 of those receipts with a
//!   copy, its signature broken, of every tenth: the copies change nothing, but they make
//!   batches fail (bisection) and, where the broken copy sorts first, need a second pass.
//!
//! Run: `cargo bench -p nineten-protocol --bench settlement`.

#![allow(missing_docs, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ed25519_zebra::batch;
use nineten_protocol::identity::{Keypair, ListenerSecret};
use nineten_protocol::key::{ContentHash, PublicKey};
use nineten_protocol::month::Month;
use nineten_protocol::receipt::{Receipt, SignedReceipt};
use nineten_protocol::settlement::{Input, settle};
use nineten_protocol::signature::{chunk_len, verify_all};
use nineten_protocol::subscription::{PaymentRef, SignedSubscription, Subscription};
use rayon::prelude::*;

fn month() -> Month {
    "2026-10".parse().unwrap()
}

/// `listeners` × `per_listener` honest receipts, sorted by listener as settlement sorts them.
fn receipts(listeners: u32, per_listener: u32, artists: u32) -> Vec<SignedReceipt> {
    let (start, _) = month().bounds_ms();
    let mut all: Vec<SignedReceipt> = (0..listeners)
        .into_par_iter()
        .flat_map_iter(|l| {
            let mut seed = [0u8; 32];
            seed[..4].copy_from_slice(&l.to_be_bytes());
            let key = ListenerSecret::from_bytes(seed).month_key(month());
            (0..per_listener).map(move |i| {
                let artist = (l * 7 + i * 13) % artists;
                let mut a = [0u8; 32];
                a[..4].copy_from_slice(&artist.to_be_bytes());
                Receipt {
                    listener: key.public(),
                    seq: u64::from(i),
                    track: ContentHash::of(&a),
                    artist: PublicKey(a),
                    started_at_ms: start + u64::from(i) * 400_000,
                    listened_ms: 200_000,
                    track_ms: 210_000,
                    home_node: PublicKey([1; 32]),
                }
                .sign(&key)
            })
        })
        .collect();
    all.par_sort_unstable();
    all
}

fn raw_zebra_batch(receipts: &[SignedReceipt]) -> bool {
    receipts.par_chunks(chunk_len(receipts.len())).all(|chunk| {
        let mut verifier = batch::Verifier::new();
        for r in chunk {
            let vk = ed25519_zebra::VerificationKeyBytes::from(r.receipt.listener.0);
            let sig = ed25519_zebra::Signature::from_bytes(&r.sig.0);
            verifier.queue((vk, sig, &r.receipt.message()));
        }
        verifier.verify(rand::rng()).is_ok()
    })
}

fn verification(c: &mut Criterion) {
    let mut group = c.benchmark_group("verify");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    for per_key in [200u32, 100] {
        let receipts = receipts(200_000 / per_key, per_key, 2_000);
        group.throughput(Throughput::Elements(receipts.len() as u64));
        group.bench_function(format!("raw-zebra-batch/{per_key}-per-key"), |b| {
            b.iter(|| assert!(raw_zebra_batch(&receipts)))
        });
        group.bench_function(format!("verify_all/{per_key}-per-key"), |b| {
            b.iter(|| assert!(verify_all(&receipts).iter().all(|v| *v)))
        });
    }
    group.finish();
}

fn settlement(c: &mut Criterion) {
    let listeners = 10_000u32;
    let receipts = receipts(listeners, 100, 2_000);
    let node = Keypair::from_seed([1; 32]);
    let subscriptions: Vec<SignedSubscription> = receipts
        .chunk_by(|a, b| a.receipt.listener == b.receipt.listener)
        .map(|run| {
            Subscription {
                listener: run[0].receipt.listener,
                month: month(),
                home_node: node.public(),
                payment_ref: PaymentRef::new(run[0].receipt.listener.to_string()).unwrap(),
            }
            .sign(&node)
        })
        .collect();
    let carry_in = BTreeMap::new();
    let mut group = c.benchmark_group("settle");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(40));
    group.throughput(Throughput::Elements(receipts.len() as u64));
    group.bench_function("1M-receipts-10k-listeners-2k-artists", |b| {
        b.iter(|| {
            let t = settle(Input {
                month: month(),
                receipts: &receipts,
                subscriptions: &subscriptions,
                carry_in: &carry_in,
            })
            .unwrap();
            assert_eq!(t.stats.qualified, 1_000_000);
            t
        })
    });
    let mut with_copies = receipts[..100_000].to_vec();
    with_copies.extend(receipts[..100_000].iter().step_by(10).map(|r| {
        let mut copy = *r;
        copy.sig.0[3] ^= 1;
        copy
    }));
    group.throughput(Throughput::Elements(with_copies.len() as u64));
    group.bench_function("100k-and-10k-broken-copies", |b| {
        b.iter(|| {
            let t = settle(Input {
                month: month(),
                receipts: &with_copies,
                subscriptions: &subscriptions,
                carry_in: &carry_in,
            })
            .unwrap();
            assert_eq!(t.stats.qualified, 100_000);
            t
        })
    });
    group.finish();
}

criterion_group!(benches, verification, settlement);
criterion_main!(benches);
