//! `9ten import`, `play` and `export` end to end, on a real data folder.

use std::path::Path;

use nineten_node::audio::Pcm;
use nineten_node::audio::wav::WavWriter;

use crate::{nineten, path, stderr, stdout};

pub(crate) fn tone(dir: &Path, name: &str, hz: f32, seconds: f32) {
    let rate = 44_100;
    let samples = (0..(rate as f32 * seconds) as usize)
        .flat_map(|i| {
            let s = 0.3 * (2.0 * std::f32::consts::PI * hz * i as f32 / rate as f32).sin();
            [s, s * 0.5]
        })
        .collect();
    let pcm = Pcm {
        rate,
        channels: 2,
        samples,
    };
    let mut w = WavWriter::create(&dir.join(name), 2, rate).unwrap();
    w.write(&pcm.samples).unwrap();
    w.finish().unwrap();
}

#[test]
fn import_play_and_export() {
    let dir = tempfile::tempdir().unwrap();
    let album = dir.path().join("album");
    std::fs::create_dir(&album).unwrap();
    tone(&album, "01 low.wav", 220.0, 2.0);
    tone(&album, "02 high.wav", 880.0, 1.5);
    let key = dir.path().join("artist.key");
    assert!(
        nineten(&["key", "new", "--out", path(&key), "--kind", "artist"])
            .status
            .success()
    );
    let data = dir.path().join("node");
    let o = nineten(&[
        "--data-dir",
        path(&data),
        "import",
        path(&album),
        "--artist-key",
        path(&key),
        "--release",
        "Two Tones",
        "--artist-name",
        "Ada Sine",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let tracks: Vec<(String, String)> = out
        .lines()
        .filter_map(|l| {
            let (hash, rest) = l.split_once("  ")?;
            (hash.len() == 64 && hash.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')))
                .then(|| (hash.to_string(), rest.to_string()))
        })
        .collect();
    assert_eq!(tracks.len(), 2, "{out}");
    assert!(tracks[0].1.contains("1. 01 low"), "{out}");
    assert!(tracks[1].1.contains("2. 02 high"), "{out}");

    let wav = dir.path().join("out.wav");
    let o = nineten(&[
        "--data-dir",
        path(&data),
        "play",
        &tracks[1].0[..10],
        "--from",
        "0.5",
        "--out",
        path(&wav),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("first sample"), "{}", stderr(&o));
    let played = nineten_node::audio::decode::decode_file(&wav).unwrap().pcm;
    assert_eq!(
        (played.rate, played.channels, played.frames()),
        (48_000, 2, 48_000)
    );

    let o = nineten(&[
        "--data-dir",
        path(&data),
        "play",
        &tracks[0].0,
        "--sink",
        "null",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Without a sound card the default device fails with advice; with one, it plays.
    let o = nineten(&["--data-dir", path(&data), "play", &tracks[0].0]);
    assert!(
        o.status.success() || stderr(&o).contains("--sink null"),
        "{}",
        stderr(&o)
    );

    let opus = dir.path().join("low.opus");
    let o = nineten(&[
        "--data-dir",
        path(&data),
        "export",
        &tracks[0].0,
        path(&opus),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let bytes = std::fs::read(&opus).unwrap();
    assert_eq!(
        blake3::hash(&bytes).to_hex().as_str(),
        tracks[0].0,
        "the file is the content id"
    );
    assert_eq!(&bytes[..4], b"OggS");

    let o = nineten(&[
        "--data-dir",
        path(&data),
        "play",
        "ffffffff",
        "--sink",
        "null",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no track ffffffff"), "{}", stderr(&o));
}

#[test]
fn a_bad_file_fails_the_import_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    tone(dir.path(), "good.wav", 440.0, 1.0);
    std::fs::write(dir.path().join("broken.flac"), b"fLaC but not really").unwrap();
    let key = dir.path().join("artist.key");
    assert!(
        nineten(&["key", "new", "--out", path(&key), "--kind", "artist"])
            .status
            .success()
    );
    let data = dir.path().join("node");
    let o = nineten(&[
        "--data-dir",
        path(&data),
        "import",
        path(dir.path()),
        "--artist-key",
        path(&key),
        "--release",
        "R",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("broken.flac"), "{}", stderr(&o));
    assert!(stderr(&o).contains("nothing was stored"), "{}", stderr(&o));
    // A node key cannot sign releases.
    let node_key = dir.path().join("node.key");
    assert!(
        nineten(&["key", "new", "--out", path(&node_key)])
            .status
            .success()
    );
    let o = nineten(&[
        "--data-dir",
        path(&data),
        "import",
        path(dir.path()),
        "--artist-key",
        path(&node_key),
        "--release",
        "R",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("not an artist key"), "{}", stderr(&o));
}

#[test]
fn an_absurd_wav_header_gives_a_clear_error_and_no_panic_trace() {
    let dir = tempfile::tempdir().unwrap();
    // 65,535 channels at 4 GHz, 16 bits: symphonia's arithmetic overflows on it.
    let (channels, rate, bits, data) = (65_535u16, 4_000_000_000u32, 16u16, 4000u32);
    let block = channels.wrapping_mul(bits / 8);
    let mut wav = Vec::new();
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + data).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes());
    wav.extend_from_slice(&channels.to_le_bytes());
    wav.extend_from_slice(&rate.to_le_bytes());
    wav.extend_from_slice(&rate.wrapping_mul(u32::from(block)).to_le_bytes());
    wav.extend_from_slice(&block.to_le_bytes());
    wav.extend_from_slice(&bits.to_le_bytes());
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&data.to_le_bytes());
    wav.resize(wav.len() + data as usize, 0);
    let file = dir.path().join("absurd.wav");
    std::fs::write(&file, wav).unwrap();
    let key = dir.path().join("artist.key");
    assert!(
        nineten(&["key", "new", "--out", path(&key), "--kind", "artist"])
            .status
            .success()
    );
    let o = nineten(&[
        "--data-dir",
        path(&dir.path().join("node")),
        "import",
        path(&file),
        "--artist-key",
        path(&key),
        "--release",
        "R",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("absurd.wav"), "{err}");
    assert!(err.contains("65535 channels"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(!err.contains("overflow"), "{err}");
}
