//! Tracks move between real nodes over iroh on 127.0.0.1: A publishes, B fetches a copy from
//! A, A goes away, C fetches from B and plays it; every byte verified against its hash.

use std::net::SocketAddr;

use nineten_node::audio::encode::Settings;
use nineten_node::audio::playback;
use nineten_node::audio::sink::NullSink;
use nineten_node::config::DataDir;
use nineten_node::import::{self, Release};
use nineten_node::library::Library;
use nineten_node::transfer::Transfer;
use nineten_protocol::identity::Keypair;
use nineten_protocol::key::ContentHash;

use crate::signal::*;

const LOOPBACK: &str = "127.0.0.1:0";

async fn node(dir: &std::path::Path, name: &str, seed: u8) -> (Library, Transfer) {
    let library = Library::open(&DataDir::new(Some(dir.join(name))))
        .await
        .unwrap();
    let bind: SocketAddr = LOOPBACK.parse().unwrap();
    let transfer = Transfer::start(&[seed; 32], bind, &library).await.unwrap();
    (library, transfer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_track_travels_from_a_through_b_to_c() {
    let dir = tempfile::tempdir().unwrap();
    let wav = write_wav(dir.path(), "song.wav", &sweep(48_000, 2, 2.5));
    let artist = Keypair::from_seed([9; 32]);
    let release = Release {
        artist: &artist,
        artist_name: Some("Ada Sine".into()),
        title: "Travels".into(),
        settings: Settings::default(),
        published_at_ms: 0,
    };
    let prepared = import::prepare(&[wav], &release, &|_, _| {}).unwrap();
    let track = prepared.tracks[0].track.clone();

    let (a_lib, a) = node(dir.path(), "a", 1).await;
    a_lib.add_release(&prepared).await.unwrap();
    let (b_lib, b) = node(dir.path(), "b", 2).await;
    let (c_lib, c) = node(dir.path(), "c", 3).await;

    // B takes a copy from A.
    b_lib.add_manifest(&prepared.manifest).unwrap();
    for blob in [&track.hash, &track.index] {
        b.fetch(&b_lib, a.addr(), blob).await.unwrap();
        assert!(b_lib.has_blob(blob).await.unwrap());
    }
    // A goes away; C can only get the track from B.
    a.shutdown(a_lib).await.unwrap();
    c_lib.add_manifest(&prepared.manifest).unwrap();
    assert!(
        c.fetch(&c_lib, b.addr(), &ContentHash::of(b"a blob nobody has"))
            .await
            .is_err(),
        "B does not have it"
    );
    let read = c.fetch(&c_lib, b.addr(), &track.hash).await.unwrap();
    assert_eq!(read, track.size);
    c.fetch(&c_lib, b.addr(), &track.index).await.unwrap();

    let found = c_lib.find_track(&track.hash.to_string()).unwrap();
    let index = c_lib.seek_index(&found.track).await.unwrap();
    let reader = c_lib.reader(&found.track);
    let played = tokio::task::spawn_blocking(move || {
        playback::play(reader, &index, 0, &mut NullSink::default()).unwrap()
    })
    .await
    .unwrap();
    assert_eq!(played.frames, 120_000, "2.5 s at 48 kHz");

    // A manifest whose signature fails is refused.
    let mut forged = prepared.manifest.clone();
    forged.manifest.title = "Stolen".into();
    assert!(c_lib.add_manifest(&forged).is_err());

    b.shutdown(b_lib).await.unwrap();
    c.shutdown(c_lib).await.unwrap();
}
