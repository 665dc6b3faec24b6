//! A reconciliation response as the node reads it off the wire (libp2p's CBOR codec,
//! `SyncResponse`), then what the node does with it that needs no store: `reconcile::follow`
//! on replies, the batch check of receipts, the manifest check. A response that decodes
//! re-encodes to bytes that decode and re-encode to the same bytes; a step fetches only keys
//! it lacks, pushes only keys it holds, and asks next with its own true summaries.
#![no_main]

use futures::executor::block_on;
use libfuzzer_sys::fuzz_target;
use libp2p::request_response::Codec as _;
use libp2p::request_response::cbor::codec::Codec;
use nineten_fuzz::{check_manifest, check_receipt_batch, key_set};
use nineten_node::net::reconcile::{MAX_RANGES, follow};
use nineten_node::net::{MAX_GOSSIP, SYNC_PROTOCOL, SyncRequest, SyncResponse};
use nineten_protocol::manifest::SignedManifest;
use nineten_protocol::receipt::RECORD_LEN;

type Sync = Codec<SyncRequest, SyncResponse>;

fn read(bytes: &[u8]) -> std::io::Result<SyncResponse> {
    block_on(Sync::default().read_response(&SYNC_PROTOCOL, &mut futures::io::Cursor::new(bytes)))
}

fn write(response: SyncResponse) -> Vec<u8> {
    let mut out = Vec::new();
    block_on(Sync::default().write_response(&SYNC_PROTOCOL, &mut out, response))
        .expect("a response encodes");
    out
}

fuzz_target!(|data: &[u8]| {
    let Ok(response) = read(data) else {
        return;
    };
    let bytes = write(response.clone());
    let again = read(&bytes).expect("an encoded response decodes");
    assert_eq!(write(again), bytes);
    match response {
        SyncResponse::Ranges(replies) => {
            let ours = key_set();
            let step = follow(ours, &replies);
            assert!(step.fetch.iter().all(|k| !ours.contains(k)));
            assert!(step.push.iter().all(|k| ours.contains(k)));
            assert!(step.next.len() <= MAX_RANGES);
            for s in &step.next {
                assert_eq!(*s, ours.summarize(s.lower, s.upper));
            }
        }
        SyncResponse::Receipts(bytes) => {
            if bytes.len().is_multiple_of(RECORD_LEN) {
                check_receipt_batch(&bytes);
            }
        }
        SyncResponse::Manifests(manifests) => {
            for m in manifests.iter().filter(|m| m.len() <= MAX_GOSSIP) {
                if let Ok(m) = SignedManifest::from_bytes(m) {
                    check_manifest(&m);
                }
            }
        }
        SyncResponse::Ack | SyncResponse::CatalogIds(_) => {}
    }
});
