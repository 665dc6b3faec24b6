//! A receipt-sync response as the initiating node reads it off the wire (libp2p's CBOR codec),
//! then what it does with it that needs no store: a negentropy frame continues a session
//! started from a month of items, and fetched receipts are checked in a batch. A response that
//! decodes re-encodes to the same bytes; a session's next frame stays within the frame limit,
//! and the ids it says it lacks are ids the answering side named.
#![no_main]

use futures::executor::block_on;
use libfuzzer_sys::fuzz_target;
use libp2p::StreamProtocol;
use libp2p::request_response::Codec as _;
use libp2p::request_response::cbor::codec::Codec;
use negentropy::Negentropy;
use nineten_fuzz::{check_receipt_batch, item_set};
use nineten_node::net::receipts::{MAX_FETCH, MAX_FRAME, Request, Response};
use nineten_protocol::receipt::RECORD_LEN;
use nineten_protocol::wire::RECEIPT_SYNC_PROTOCOL;

type Sync = Codec<Request, Response>;
const PROTOCOL: StreamProtocol = StreamProtocol::new(RECEIPT_SYNC_PROTOCOL);

fn read(bytes: &[u8]) -> std::io::Result<Response> {
    block_on(Sync::default().read_response(&PROTOCOL, &mut futures::io::Cursor::new(bytes)))
}

fn write(response: Response) -> Vec<u8> {
    let mut out = Vec::new();
    block_on(Sync::default().write_response(&PROTOCOL, &mut out, response))
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
        Response::Reconcile(frame) if frame.len() as u64 <= MAX_FRAME => {
            let mut neg = Negentropy::owned(item_set(), MAX_FRAME).expect("a valid frame limit");
            neg.initiate().expect("a first frame");
            let (mut have, mut need) = (Vec::new(), Vec::new());
            if let Ok(next) = neg.reconcile_with_ids(&frame, &mut have, &mut need) {
                assert!(next.is_none_or(|f| f.len() as u64 <= MAX_FRAME));
                // What the other side named, it named in this frame.
                assert!(need.len() * 32 <= frame.len());
            }
        }
        Response::Receipts(bytes) => {
            if bytes.len().is_multiple_of(RECORD_LEN) && bytes.len() / RECORD_LEN <= MAX_FETCH {
                check_receipt_batch(&bytes);
            }
        }
        Response::Reconcile(_) | Response::Refused => {}
    }
});
