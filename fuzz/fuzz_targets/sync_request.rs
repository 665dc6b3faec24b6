//! A receipt-sync request as the node reads it off the wire (libp2p's CBOR codec), then what
//! the node does with it that needs no store: a negentropy frame is answered from a month of
//! items. A request that decodes re-encodes to bytes that decode and re-encode to the same
//! bytes; an answer never exceeds the frame limit (no amplification), whatever the frame.
#![no_main]

use futures::executor::block_on;
use libfuzzer_sys::fuzz_target;
use libp2p::StreamProtocol;
use libp2p::request_response::Codec as _;
use libp2p::request_response::cbor::codec::Codec;
use negentropy::Negentropy;
use nineten_fuzz::item_set;
use nineten_node::net::receipts::{MAX_FRAME, Request, Response};
use nineten_protocol::month::Month;
use nineten_protocol::wire::RECEIPT_SYNC_PROTOCOL;

type Sync = Codec<Request, Response>;
const PROTOCOL: StreamProtocol = StreamProtocol::new(RECEIPT_SYNC_PROTOCOL);

fn read(bytes: &[u8]) -> std::io::Result<Request> {
    block_on(Sync::default().read_request(&PROTOCOL, &mut futures::io::Cursor::new(bytes)))
}

fn write(request: Request) -> Vec<u8> {
    let mut out = Vec::new();
    block_on(Sync::default().write_request(&PROTOCOL, &mut out, request))
        .expect("a request encodes");
    out
}

fuzz_target!(|data: &[u8]| {
    let Ok(request) = read(data) else {
        return;
    };
    let bytes = write(request.clone());
    let again = read(&bytes).expect("an encoded request decodes");
    assert_eq!(write(again), bytes);
    if let Request::Reconcile { month, frame } = request
        && month.parse::<Month>().is_ok()
        && frame.len() as u64 <= MAX_FRAME
    {
        let mut neg = Negentropy::owned(item_set(), MAX_FRAME).expect("a valid frame limit");
        if let Ok(answer) = neg.reconcile(&frame) {
            assert!(answer.len() as u64 <= MAX_FRAME, "{} bytes", answer.len());
        }
    }
});
