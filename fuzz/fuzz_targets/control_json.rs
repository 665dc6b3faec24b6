//! The control API's JSON that is public: a play request (the body of `POST /v1/play`) and
//! `control.json`. What decodes re-encodes to JSON that decodes to the same value. (The other
//! bodies, `{"release"}`, `{"to_ms"}` and `{"track","path"}`, are private derived structs of
//! a string, a number and a path; axum's `Json` runs the same serde_json on them.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use nineten_node::control::{ControlFile, PlayRequest};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Whatever decodes as `T` encodes to JSON that decodes and encodes to the same JSON.
fn round_trip<T: Serialize + DeserializeOwned>(data: &[u8]) {
    if let Ok(value) = serde_json::from_slice::<T>(data) {
        let json = serde_json::to_string(&value).expect("encodes");
        let again: T = serde_json::from_str(&json).expect("its own JSON decodes");
        assert_eq!(serde_json::to_string(&again).expect("encodes"), json);
    }
}

fuzz_target!(|data: &[u8]| {
    round_trip::<PlayRequest>(data);
    round_trip::<ControlFile>(data);
});
