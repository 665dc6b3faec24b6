//! A subscription's JSON line (`SignedSubscription::from_json`): what decodes reads back to
//! itself from its canonical JSON and from its binary form.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nineten_fuzz::check_subscription;
use nineten_protocol::subscription::SignedSubscription;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(s) = SignedSubscription::from_json(text)
    {
        check_subscription(&s);
    }
});
