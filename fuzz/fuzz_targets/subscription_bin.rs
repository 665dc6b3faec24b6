//! A subscription's binary form (`SignedSubscription::from_bytes`): what decodes re-encodes to
//! exactly the input, and its JSON form reads back to the same subscription.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nineten_fuzz::check_subscription;
use nineten_protocol::subscription::SignedSubscription;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = SignedSubscription::from_bytes(data) {
        assert_eq!(s.to_bytes(), data);
        check_subscription(&s);
    }
});
