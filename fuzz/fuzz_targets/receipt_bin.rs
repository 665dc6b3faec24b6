//! A listen receipt's binary form (`SignedReceipt::from_bytes`): what decodes re-encodes to
//! exactly the input, and its JSON form reads back to the same receipt.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nineten_fuzz::check_receipt;
use nineten_protocol::receipt::SignedReceipt;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = SignedReceipt::from_bytes(data) {
        assert_eq!(r.to_bytes()[..], *data);
        check_receipt(&r);
    }
});
