//! review.md's records (node record, daily report, bundle, attestation, dispute, verdict) and
//! payout statements in both forms: the first byte picks the record and the form, the rest is
//! the input. What decodes reads back to itself from its canonical JSON and binary forms, and
//! its id is BLAKE3 of its signed message alone.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nineten_fuzz::check_record;
use nineten_protocol::bundle::Bundle;
use nineten_protocol::daily::DailyReport;
use nineten_protocol::node_record::NodeRecord;
use nineten_protocol::payout::Payout;
use nineten_protocol::review::{Attestation, Dispute, Verdict};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, input)) = data.split_first() else {
        return;
    };
    let json = pick & 1 == 1;
    match (pick >> 1) % 7 {
        0 => check_record::<NodeRecord>(input, json),
        1 => check_record::<DailyReport>(input, json),
        2 => check_record::<Bundle>(input, json),
        3 => check_record::<Attestation>(input, json),
        4 => check_record::<Dispute>(input, json),
        5 => check_record::<Verdict>(input, json),
        _ => check_record::<Payout>(input, json),
    }
});
