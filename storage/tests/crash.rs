//! Durability under SIGKILL: a child process writes batches of receipts and prints an
//! acknowledgement after each `put_receipts` returns; the parent kills it at a moment of its
//! choosing, reopens the store and checks that every acknowledged receipt is there, that no
//! batch is half-written, and that everything stored decodes and verifies.
//!
//! The child is this same test binary, re-run with an environment variable set.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nineten_protocol::signature::verify_record;
use nineten_storage::Store;

use crate::util::*;

const CHILD_DIR: &str = "NINETEN_CRASH_CHILD_DIR";
const BATCH: u64 = 250;

#[test]
fn acknowledged_writes_survive_sigkill() {
    if let Ok(dir) = std::env::var(CHILD_DIR) {
        return write_until_killed(Path::new(&dir));
    }
    let dir = tempfile::tempdir().unwrap();
    let key = listener(1);
    let mut acked = 0u64;
    for round in 0..8u64 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "crash::acknowledged_writes_survive_sigkill",
                "--nocapture",
            ])
            .env(CHILD_DIR, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut parse_ack = |line: &str| {
            if let Some(n) = line.strip_prefix("ack ") {
                acked = acked.max(n.parse().unwrap());
                true
            } else {
                false
            }
        };
        // Let the child acknowledge a few batches, then kill it a little later, at a moment
        // that varies by round: mid-batch, mid-flush, or between batches.
        let mut seen = 0;
        for line in lines.by_ref() {
            if parse_ack(&line.unwrap()) {
                seen += 1;
                if seen == 2 + round {
                    break;
                }
            }
        }
        std::thread::sleep(Duration::from_micros(round * 700));
        child.kill().unwrap();
        // Acknowledgements printed before the kill still count.
        for line in lines {
            parse_ack(&line.unwrap());
        }
        child.wait().unwrap();

        let store = Store::open(dir.path()).unwrap();
        let stored = store.receipts_of_listener(&key.public()).unwrap();
        let n = stored.len() as u64;
        assert!(
            n >= acked,
            "round {round}: {acked} acknowledged, {n} stored"
        );
        assert_eq!(
            n % BATCH,
            0,
            "round {round}: a batch was half-written ({n} stored)"
        );
        assert!(
            stored
                .iter()
                .enumerate()
                .all(|(i, r)| r.receipt.seq == i as u64)
        );
        assert!(
            stored.iter().all(verify_record),
            "round {round}: a stored receipt is damaged"
        );
        let october = "2026-10".parse().unwrap();
        assert_eq!(store.receipts_of_month(october).unwrap().len() as u64, n);
        assert_eq!(store.receipt_count() as u64, n);
    }
    assert!(acked >= 8 * 2 * BATCH);
}

/// The child: continues the sequence where the store ends, one acknowledged batch at a time,
/// until killed (or after 60 s, should the parent be gone).
fn write_until_killed(dir: &Path) {
    let key = listener(1);
    let store = Store::open(dir).unwrap();
    let mut next = store.receipt_count() as u64;
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let batch: Vec<_> = (next..next + BATCH).map(|seq| receipt(&key, seq)).collect();
        store.put_receipts(&batch, 0).unwrap();
        next += BATCH;
        println!("ack {next}");
    }
}
