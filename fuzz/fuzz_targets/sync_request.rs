//! A reconciliation request as the node reads it off the wire (libp2p's CBOR codec,
//! `SyncRequest`), then what the node does with it that needs no store: `KeySet::answer` on
//! summaries, the batch check of pushed receipts. A request that decodes re-encodes to bytes
//! that decode and re-encode to the same bytes; an answer is bounded as `reconcile` says and
//! is a response the asking side can read back.
#![no_main]

use futures::executor::block_on;
use libfuzzer_sys::fuzz_target;
use libp2p::request_response::Codec as _;
use libp2p::request_response::cbor::codec::Codec;
use nineten_fuzz::{check_receipt_batch, key_set};
use nineten_node::net::reconcile::{FANOUT, MAX_KEYS, MAX_RANGES, Reply};
use nineten_node::net::{MAX_RECEIPTS, SYNC_PROTOCOL, SyncRequest, SyncResponse};
use nineten_protocol::month::Month;
use nineten_protocol::receipt::RECORD_LEN;

type Sync = Codec<SyncRequest, SyncResponse>;

fn read(bytes: &[u8]) -> std::io::Result<SyncRequest> {
    block_on(Sync::default().read_request(&SYNC_PROTOCOL, &mut futures::io::Cursor::new(bytes)))
}

fn write(request: SyncRequest) -> Vec<u8> {
    let mut out = Vec::new();
    block_on(Sync::default().write_request(&SYNC_PROTOCOL, &mut out, request))
        .expect("a request encodes");
    out
}

/// The answer to `ranges` read back by the asking side.
fn answer_read_back(replies: Vec<Reply>) -> Vec<Reply> {
    let mut out = Vec::new();
    block_on(Sync::default().write_response(
        &SYNC_PROTOCOL,
        &mut out,
        SyncResponse::Ranges(replies),
    ))
    .expect("an answer encodes");
    match block_on(
        Sync::default().read_response(&SYNC_PROTOCOL, &mut futures::io::Cursor::new(out)),
    ) {
        Ok(SyncResponse::Ranges(replies)) => replies,
        other => panic!("the answer does not read back: {other:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(request) = read(data) else {
        return;
    };
    let bytes = write(request.clone());
    let again = read(&bytes).expect("an encoded request decodes");
    assert_eq!(write(again), bytes);
    match request {
        SyncRequest::Ranges { month, ranges } => {
            if month.parse::<Month>().is_err() {
                return;
            }
            let replies = key_set().answer(&ranges);
            assert!(replies.len() <= ranges.len().min(MAX_RANGES));
            for reply in &replies {
                match reply {
                    Reply::Keys { keys, .. } => assert!(keys.len() <= MAX_KEYS),
                    Reply::Split(parts) => assert!(parts.len() <= FANOUT),
                }
            }
            assert_eq!(answer_read_back(replies.clone()), replies);
        }
        SyncRequest::Push(bytes) => {
            if bytes.len().is_multiple_of(RECORD_LEN) && bytes.len() / RECORD_LEN <= MAX_RECEIPTS {
                check_receipt_batch(&bytes);
            }
        }
        SyncRequest::Fetch(_)
        | SyncRequest::CatalogIds(_)
        | SyncRequest::Manifests(_)
        | SyncRequest::ListenerReceipts { .. } => {}
    }
});
