//! The library: releases are stored whole, found by hash prefix, and survive a restart.

use nineten_node::audio::encode::Settings;
use nineten_node::audio::playback;
use nineten_node::audio::sink::NullSink;
use nineten_node::config::DataDir;
use nineten_node::import::{self, Release};
use nineten_node::library::Library;
use nineten_protocol::identity::Keypair;

use crate::signal::*;

#[test]
fn an_album_imports_in_order_and_plays_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<_> = (1..=4)
        .map(|i| {
            write_wav(
                dir.path(),
                &format!("{i:02} track.wav"),
                &sweep(44_100, 2, 1.0 + i as f32 * 0.25),
            )
        })
        .collect();
    let artist = Keypair::from_seed([4; 32]);
    let release = Release {
        artist: &artist,
        artist_name: Some("Formant".into()),
        title: "Album".into(),
        settings: Settings { bitrate: 96_000 },
        published_at_ms: 1,
    };
    let folder = vec![dir.path().to_path_buf()];
    let files_found = import::collect_files(&folder).unwrap();
    assert_eq!(files_found, files);
    let prepared = import::prepare(&files_found, &release, &|_, _| {}).unwrap();
    let titles: Vec<_> = prepared
        .manifest
        .manifest
        .tracks
        .iter()
        .map(|t| (t.number, t.title.clone()))
        .collect();
    assert_eq!(titles[0], (1, "01 track".to_string()));
    assert_eq!(titles[3], (4, "04 track".to_string()));
    assert!(nineten_protocol::signature::verify_record(
        &prepared.manifest
    ));

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let data = DataDir::new(Some(dir.path().join("node")));
    runtime.block_on(async {
        let library = Library::open(&data).await.unwrap();
        library.add_release(&prepared).await.unwrap();
        library.shutdown().await.unwrap();
        let library = Library::open(&data).await.unwrap();
        let third = &prepared.manifest.manifest.tracks[2];
        let found = library.find_track(&third.hash.to_string()[..10]).unwrap();
        assert_eq!(found.track, *third);
        let index = library.seek_index(&found.track).await.unwrap();
        // Streamed from the blob store through the blocking reader, on a thread of its own.
        let reader = library.reader(&found.track);
        let played = tokio::task::spawn_blocking(move || {
            let mut sink = NullSink::default();
            playback::play(reader, &index, 500, &mut sink).unwrap()
        })
        .await
        .unwrap();
        // 1.75 s track from 0.5 s: 1.25 s of stereo at 48 kHz.
        assert_eq!(played.frames, 60_000);
        assert!(played.first_sample.is_some());
        assert!(library.find_track("zzzz").is_err());
        assert!(library.find_track(&"0".repeat(64)).is_err());
        library.shutdown().await.unwrap();
    });
}
