//! Record files (`protocol::jsonl`): a `.jsonl` text read as receipts and as subscriptions,
//! and as a carry file. Lines are numbered from 1 in order, skipping blank ones; `parse_all`
//! fails at exactly the first bad line; every record read checks out; a carry map written
//! back as JSON reads back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nineten_fuzz::{check_receipt, check_subscription};
use nineten_protocol::FieldError;
use nineten_protocol::jsonl::{parse_all, parse_carry, parse_lines};
use nineten_protocol::receipt::SignedReceipt;
use nineten_protocol::subscription::SignedSubscription;

/// Checks line numbers and `parse_all` against `parse_lines`; returns the records read.
fn read<T: Send + PartialEq + std::fmt::Debug>(
    text: &str,
    parse: fn(&str) -> Result<T, FieldError>,
) -> Vec<T> {
    let lines = text.lines().count();
    let parsed = parse_lines(text, parse);
    assert!(parsed.windows(2).all(|w| w[0].0 < w[1].0));
    assert!(parsed.iter().all(|(n, _)| (1..=lines).contains(n)));
    let first_bad = parsed.iter().find(|(_, r)| r.is_err()).map(|(n, _)| *n);
    let all = parse_all(text, parse);
    assert_eq!(all.as_ref().err().map(|e| e.line), first_bad);
    let good: Vec<T> = parsed.into_iter().filter_map(|(_, r)| r.ok()).collect();
    if let Ok(all) = all {
        assert_eq!(all, good);
    }
    good
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    read(text, SignedReceipt::from_json)
        .iter()
        .for_each(check_receipt);
    read(text, SignedSubscription::from_json)
        .iter()
        .for_each(check_subscription);
    if let Ok(carry) = parse_carry(text) {
        let json = serde_json::to_string(&carry).expect("a carry map serializes");
        assert_eq!(parse_carry(&json), Ok(carry));
    }
});
