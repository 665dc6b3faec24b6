//! Key files and the hex text forms (`Secret::from_key_file`, `PublicKey`, `ContentHash`,
//! `Signature` from text): a key file read writes back to a file that reads back to the same
//! secret; a hex value has one text form, so what parses displays as exactly the input.
#![no_main]

use std::fmt::Display;
use std::str::FromStr;

use libfuzzer_sys::fuzz_target;
use nineten_protocol::identity::Secret;
use nineten_protocol::key::{ContentHash, PublicKey, Signature};

/// The secret's kind and bytes.
fn parts(secret: &Secret) -> (&'static str, [u8; 32]) {
    let bytes = match secret {
        Secret::Node(k) | Secret::Artist(k) => *k.seed(),
        Secret::Listener(s) => *s.as_bytes(),
    };
    (secret.kind(), bytes)
}

/// Whatever parses as `T` displays as exactly `text`.
fn one_text_form<T: FromStr + Display>(text: &str) {
    if let Ok(value) = text.parse::<T>() {
        assert_eq!(value.to_string(), text);
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(secret) = Secret::from_key_file(text) {
        let file = secret.to_key_file();
        let again = Secret::from_key_file(&file).expect("a written key file reads back");
        assert_eq!(parts(&again), parts(&secret));
        assert_eq!(again.to_key_file(), file);
    }
    one_text_form::<PublicKey>(text);
    one_text_form::<ContentHash>(text);
    one_text_form::<Signature>(text);
});
