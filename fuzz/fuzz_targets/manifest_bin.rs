//! A release manifest's binary form (`SignedManifest::from_bytes`, also what gossip and sync
//! carry): what decodes re-encodes to exactly the input, and its JSON form reads back to the
//! same manifest.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nineten_fuzz::check_manifest;
use nineten_protocol::manifest::SignedManifest;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = SignedManifest::from_bytes(data) {
        assert_eq!(m.to_bytes(), data);
        check_manifest(&m);
    }
});
