//! Corrupt, truncated, empty, wrong-format and absurd-header inputs: a clear error naming the
//! file, and the library exactly as it was.

use std::path::PathBuf;

use nineten_node::audio::encode::Settings;
use nineten_node::config::DataDir;
use nineten_node::import::{self, Release};
use nineten_node::library::Library;
use nineten_protocol::identity::Keypair;

use crate::signal::*;

fn wav_header(channels: u16, rate: u32, bits: u16, data_len: u32) -> Vec<u8> {
    let block = channels.wrapping_mul(bits / 8);
    let mut h = Vec::new();
    h.extend_from_slice(b"RIFF");
    h.extend_from_slice(&(36 + data_len).to_le_bytes());
    h.extend_from_slice(b"WAVEfmt ");
    h.extend_from_slice(&16u32.to_le_bytes());
    h.extend_from_slice(&1u16.to_le_bytes());
    h.extend_from_slice(&channels.to_le_bytes());
    h.extend_from_slice(&rate.to_le_bytes());
    h.extend_from_slice(&rate.wrapping_mul(u32::from(block)).to_le_bytes());
    h.extend_from_slice(&block.to_le_bytes());
    h.extend_from_slice(&bits.to_le_bytes());
    h.extend_from_slice(b"data");
    h.extend_from_slice(&data_len.to_le_bytes());
    h
}

fn bad_files(dir: &std::path::Path) -> Vec<(&'static str, PathBuf)> {
    let good = write_wav(dir, "good.wav", &sweep(48_000, 2, 1.0));
    let bytes = std::fs::read(&good).unwrap();
    let mut files = Vec::new();
    let mut put = |name: &'static str, content: Vec<u8>| {
        let path = dir.join(name);
        std::fs::write(&path, content).unwrap();
        files.push((name, path));
    };
    put("empty.wav", Vec::new());
    put("text.wav", b"this is not audio, just words\n".repeat(40));
    put("truncated.wav", bytes[..bytes.len() / 2].to_vec());
    let mut garbage = bytes[..44].to_vec();
    garbage.extend((0..20_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    put("noise-for-a-header.mp3", garbage.clone());
    put(
        "zero-rate.wav",
        [wav_header(2, 0, 16, 4000), vec![0; 4000]].concat(),
    );
    put(
        "zero-channels.wav",
        [wav_header(0, 48_000, 16, 4000), vec![0; 4000]].concat(),
    );
    put(
        "eight-channels.wav",
        [wav_header(8, 48_000, 16, 16_000), vec![0; 16_000]].concat(),
    );
    put(
        "huge-rate.wav",
        [wav_header(2, 4_000_000_000, 16, 4000), vec![0; 4000]].concat(),
    );
    put("no-samples.wav", wav_header(2, 48_000, 16, 0));
    // Symphonia's own arithmetic overflows on this header: it must never see it.
    put(
        "absurd-header.wav",
        [wav_header(65_535, 4_000_000_000, 16, 4000), vec![0; 4000]].concat(),
    );
    files
}

#[test]
fn bad_inputs_fail_clearly_and_store_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let artist = Keypair::from_seed([3; 32]);
    let release = Release {
        artist: &artist,
        artist_name: None,
        title: "Bad".into(),
        settings: Settings::default(),
        published_at_ms: 0,
    };
    let good = write_wav(dir.path(), "fine.wav", &sweep(48_000, 1, 1.0));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let data = DataDir::new(Some(dir.path().join("node")));
    let library = runtime.block_on(Library::open(&data)).unwrap();
    let first = import::prepare(std::slice::from_ref(&good), &release, &|_, _| {}).unwrap();
    runtime.block_on(library.add_release(&first)).unwrap();

    for (name, path) in bad_files(dir.path()) {
        // Alone and beside a good file: the whole release fails.
        for files in [vec![path.clone()], vec![good.clone(), path.clone()]] {
            let err = import::prepare(&files, &release, &|_, _| {})
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(name),
                "{name}: the error names the file: {err}"
            );
        }
    }
    let releases = library.releases().unwrap();
    assert_eq!(
        releases,
        vec![first.manifest.clone()],
        "the library is as it was"
    );
    assert!(
        runtime
            .block_on(library.has_blob(&first.tracks[0].track.hash))
            .unwrap()
    );
    runtime.block_on(library.shutdown()).unwrap();
}
