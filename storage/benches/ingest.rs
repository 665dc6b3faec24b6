//! Benchmark of durable receipt ingest.
//!
//! - `ingest/raw-sled` is the reference: the same records as plain id → bytes inserts into
//!   sled, one atomic batch and one flush per 1,000, no indexes.
//! - `ingest/put_receipts` is the store: record plus two index entries, one atomic batch and
//!   one flush per 1,000.
//!
//! Each iteration writes 100,000 receipts into a fresh database in a temporary directory.
//! Run: `cargo bench -p nineten-storage --bench ingest`.

#![allow(missing_docs, clippy::unwrap_used)]

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use nineten_protocol::identity::ListenerSecret;
use nineten_protocol::key::{ContentHash, PublicKey};
use nineten_protocol::receipt::{Receipt, SignedReceipt};
use nineten_storage::Store;
use rayon::prelude::*;

const RECEIPTS: u64 = 100_000;
const BATCH: usize = 1_000;

fn receipts() -> Vec<SignedReceipt> {
    let month = "2026-10".parse().unwrap();
    let (start, _) = nineten_protocol::month::Month::bounds_ms(month);
    (0..RECEIPTS)
        .into_par_iter()
        .map(|i| {
            let key = ListenerSecret::from_bytes([(i % 1000 / 4) as u8; 32]).month_key(month);
            Receipt {
                listener: key.public(),
                seq: i,
                track: ContentHash::of(&i.to_be_bytes()),
                artist: PublicKey([(i % 200) as u8; 32]),
                started_at_ms: start + i * 1000,
                listened_ms: 180_000,
                track_ms: 200_000,
                home_node: PublicKey([1; 32]),
            }
            .sign(&key)
        })
        .collect()
}

fn ingest(c: &mut Criterion) {
    let receipts = receipts();
    let mut group = c.benchmark_group("ingest");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(RECEIPTS));
    group.bench_function("raw-sled", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let dir = tempfile::tempdir().unwrap();
                let db = sled::open(dir.path()).unwrap();
                let began = Instant::now();
                for chunk in receipts.chunks(BATCH) {
                    let mut batch = sled::Batch::default();
                    for r in chunk {
                        let bytes = r.to_bytes();
                        batch.insert(&blake3::hash(&bytes).as_bytes()[..], &bytes[..]);
                    }
                    db.apply_batch(batch).unwrap();
                    db.flush().unwrap();
                }
                total += began.elapsed();
            }
            total
        })
    });
    group.bench_function("put_receipts", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let dir = tempfile::tempdir().unwrap();
                let store = Store::open(dir.path()).unwrap();
                let began = Instant::now();
                for chunk in receipts.chunks(BATCH) {
                    store.put_receipts(chunk, 0).unwrap();
                }
                total += began.elapsed();
            }
            total
        })
    });
    group.finish();
}

criterion_group!(benches, ingest);
criterion_main!(benches);
