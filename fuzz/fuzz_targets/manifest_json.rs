//! A release manifest's JSON form (`SignedManifest::from_json`): what decodes reads back to
//! itself from its canonical JSON and from its binary form.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nineten_fuzz::check_manifest;
use nineten_protocol::manifest::SignedManifest;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(m) = SignedManifest::from_json(text)
    {
        check_manifest(&m);
    }
});
