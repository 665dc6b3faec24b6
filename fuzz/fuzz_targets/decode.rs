//! Decoding an artist's file (`audio::decode::decode_file`, the first step of an import): the
//! first byte picks the file's extension (WAV, FLAC, MP3, Ogg), the rest is the file. Any
//! bytes give audio or an error; audio is mono or stereo at an accepted rate, whole frames of
//! finite samples. A decoder panic is a finding even though `decode_file` catches it.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use nineten_node::audio::decode::{MAX_RATE, decode_file};
use nineten_node::import::EXTENSIONS;

/// This process's scratch file for `extension` (decoding reads a path).
fn scratch(extension: &str) -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("nineten-fuzz-decode-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a scratch folder");
        dir
    })
    .join(format!("input.{extension}"))
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, file)) = data.split_first() else {
        return;
    };
    let path = scratch(EXTENSIONS[usize::from(pick) % EXTENSIONS.len()]);
    std::fs::write(&path, file).expect("writing the scratch file");
    if let Ok(decoded) = decode_file(&path) {
        let pcm = decoded.pcm;
        assert!(matches!(pcm.channels, 1 | 2));
        assert!((1..=MAX_RATE).contains(&pcm.rate));
        assert!(!pcm.samples.is_empty());
        assert_eq!(pcm.samples.len() % usize::from(pcm.channels), 0);
        assert!(pcm.samples.iter().all(|s| s.is_finite()));
    }
});
