//! A gossip message, checked the way `Network::check_gossip` does through public functions
//! (the method itself is private): the first byte picks the topic, even for the catalog (a
//! release manifest of at most `MAX_GOSSIP` bytes), odd for a month's receipts (one binary
//! receipt of a known month). What decodes checks out, its reconciliation item is
//! (start time, record id), and the single and batched signature verdicts agree.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nineten_fuzz::{check_manifest, check_receipt};
use nineten_node::net::MAX_GOSSIP;
use nineten_protocol::manifest::SignedManifest;
use nineten_protocol::month::Month;
use nineten_protocol::receipt::{RECORD_LEN, SignedReceipt};
use nineten_protocol::signature::{verify_all, verify_record};
use nineten_protocol::wire::reconciliation_item;

fuzz_target!(|data: &[u8]| {
    let Some((&topic, message)) = data.split_first() else {
        return;
    };
    if topic % 2 == 0 {
        if message.len() <= MAX_GOSSIP
            && let Ok(m) = SignedManifest::from_bytes(message)
        {
            check_manifest(&m);
            assert_eq!(verify_all(&[&m]), [verify_record(&m)]);
        }
    } else if message.len() == RECORD_LEN
        && let Ok(r) = SignedReceipt::from_bytes(message)
        && Month::containing(r.receipt.started_at_ms).is_some()
    {
        check_receipt(&r);
        let (time, id) = reconciliation_item(&r);
        assert_eq!((time, id), (r.receipt.started_at_ms, r.id().0));
        assert_eq!(verify_all(&[r]), [verify_record(&r)]);
    }
});
