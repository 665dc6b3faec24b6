//! A listen receipt's JSON line (`SignedReceipt::from_json`): what decodes reads back to
//! itself from its canonical JSON and from its binary form.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nineten_fuzz::check_receipt;
use nineten_protocol::receipt::SignedReceipt;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(r) = SignedReceipt::from_json(text)
    {
        check_receipt(&r);
    }
});
