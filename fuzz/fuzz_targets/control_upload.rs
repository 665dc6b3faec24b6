//! A release upload (`control::decode_upload`, the body of `POST /v1/releases`): what decodes
//! re-encodes (`encode_upload`) to exactly the input, and its manifest checks out.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nineten_fuzz::check_manifest;
use nineten_node::control::{decode_upload, encode_upload};

fuzz_target!(|data: &[u8]| {
    if let Ok(release) = decode_upload(data) {
        assert_eq!(encode_upload(&release), data);
        check_manifest(&release.manifest);
        assert_eq!(release.tracks.len(), release.manifest.manifest.tracks.len());
    }
});
