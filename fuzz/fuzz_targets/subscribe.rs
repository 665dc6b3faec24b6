//! A subscription request or answer as a node reads it off the wire (libp2p's CBOR codec,
//! `/9ten/subscribe/1.0.0`): the first byte picks which. A request that decodes re-encodes
//! stably and is checked as a home node checks it (never a panic; a request that passes has a
//! proof that verifies); an answer is read as the asking node reads it (a subscription it
//! takes is the one asked for, and verifies).
#![no_main]

use futures::executor::block_on;
use libfuzzer_sys::fuzz_target;
use libp2p::StreamProtocol;
use libp2p::request_response::Codec as _;
use libp2p::request_response::cbor::codec::Codec;
use nineten_node::net::subscribe::{self, Outcome, Request, Response};
use nineten_protocol::identity::Keypair;
use nineten_protocol::month::Month;
use nineten_protocol::signature::{verify, verify_record};
use nineten_protocol::subscription::PaymentRef;
use nineten_protocol::wire::SUBSCRIBE_PROTOCOL;

type Subscribe = Codec<Request, Response>;
const PROTOCOL: StreamProtocol = StreamProtocol::new(SUBSCRIBE_PROTOCOL);

fn cursor(bytes: &[u8]) -> futures::io::Cursor<&[u8]> {
    futures::io::Cursor::new(bytes)
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, data)) = data.split_first() else {
        return;
    };
    let home = Keypair::from_seed([9; 32]).public();
    let october: Month = "2026-10".parse().unwrap();
    let codec = Subscribe::default();
    if which % 2 == 0 {
        let Ok(request) = block_on(codec.clone().read_request(&PROTOCOL, &mut cursor(data))) else {
            return;
        };
        let mut bytes = Vec::new();
        block_on(
            codec
                .clone()
                .write_request(&PROTOCOL, &mut bytes, request.clone()),
        )
        .unwrap();
        let again = block_on(codec.clone().read_request(&PROTOCOL, &mut cursor(&bytes))).unwrap();
        assert_eq!(again, request);
        if request.check(&home, october).is_ok() {
            assert!(verify(
                &request.listener,
                &request.message(&home),
                &request.proof
            ));
            assert!(request.subscription(&home).is_ok());
        }
    } else {
        let Ok(response) = block_on(codec.clone().read_response(&PROTOCOL, &mut cursor(data)))
        else {
            return;
        };
        // What a listener asked for: the answer must be that subscription, signed by `home`.
        let key = Keypair::from_seed([5; 32]);
        let asked = Request::new(&home, &key, october, PaymentRef::new("tx").unwrap(), None);
        if let Ok(Outcome::Subscribed(s)) = subscribe::outcome(&home, &asked, response) {
            assert!(verify_record(&s));
            assert_eq!(s.subscription, asked.subscription(&home).unwrap());
        }
    }
});
