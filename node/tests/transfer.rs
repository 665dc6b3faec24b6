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

/// A whole node for this test: library, iroh endpoint and libp2p network.
struct Peer {
    library: Library,
    transfer: Transfer,
    net: nineten_node::net::Client,
    addr: libp2p::Multiaddr,
}

async fn peer(dir: &std::path::Path, name: &str, seed: u8) -> Peer {
    let (library, transfer) = node(dir, name, seed).await;
    let config = nineten_node::net::Config {
        listen: "/ip4/127.0.0.1/tcp/0".parse().unwrap(),
        peers: Vec::new(),
        months: vec!["2026-10".parse().unwrap()],
        sync_interval: std::time::Duration::from_secs(1),
        iroh: transfer.addr().ip_addrs().next().copied(),
    };
    let (net, network) =
        nineten_node::net::new(&[seed; 32], config, library.store().clone()).unwrap();
    tokio::spawn(network.run());
    let addr = loop {
        if let Some(a) = net.listen_addrs().await.unwrap().into_iter().next() {
            break a;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    };
    Peer {
        library,
        transfer,
        net,
        addr,
    }
}

/// Providers of `blob` in the DHT, waiting until at least `want` are known.
async fn providers(p: &Peer, blob: ContentHash, want: usize) -> Vec<iroh::EndpointAddr> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let found = p.net.providers(blob).await.unwrap();
        if found.len() >= want {
            return found;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "only {} providers found",
            found.len()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_on_a_played_on_c_while_only_b_holds_a_copy() {
    let dir = tempfile::tempdir().unwrap();
    let wav = write_wav(dir.path(), "song.wav", &sweep(44_100, 2, 2.0));
    let artist = Keypair::from_seed([8; 32]);
    let release = Release {
        artist: &artist,
        artist_name: Some("Formant".into()),
        title: "Found".into(),
        settings: Settings::default(),
        published_at_ms: 0,
    };
    let prepared = import::prepare(&[wav], &release, &|_, _| {}).unwrap();
    let track = prepared.tracks[0].track.clone();

    let a = peer(dir.path(), "a", 11).await;
    let b = peer(dir.path(), "b", 12).await;
    let c = peer(dir.path(), "c", 13).await;
    for (from, to) in [(&b, &a), (&c, &a), (&c, &b)] {
        from.net.dial(to.addr.clone()).await.unwrap().unwrap();
    }
    // A publishes: stores the release and announces both blobs in the DHT.
    a.library.add_release(&prepared).await.unwrap();
    for blob in [track.hash, track.index] {
        a.net.provide(blob).await.unwrap().unwrap();
    }
    // B finds A through the DHT, takes a copy and provides it too.
    let found = providers(&b, track.hash, 1).await;
    assert_eq!(found[0].id, a.transfer.addr().id);
    b.library.add_manifest(&prepared.manifest).unwrap();
    for blob in [track.hash, track.index] {
        b.transfer
            .fetch(&b.library, found[0].clone(), &blob)
            .await
            .unwrap();
        b.net.provide(blob).await.unwrap().unwrap();
    }

    // A goes away. C looks providers up until one serves: only B can.
    a.net.shutdown().await;
    let a_id = a.transfer.addr().id;
    a.transfer.shutdown(a.library).await.unwrap();
    c.library.add_manifest(&prepared.manifest).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    for blob in [track.hash, track.index] {
        'fetch: loop {
            for provider in providers(&c, blob, 1).await {
                let id = provider.id;
                if c.transfer.fetch(&c.library, provider, &blob).await.is_ok() {
                    assert_ne!(id, a_id, "A is gone");
                    break 'fetch;
                }
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no provider served {blob}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
    let found = c.library.find_track(&track.hash.to_string()).unwrap();
    let index = c.library.seek_index(&found.track).await.unwrap();
    let reader = c.library.reader(&found.track);
    let played = tokio::task::spawn_blocking(move || {
        playback::play(reader, &index, 0, &mut NullSink::default()).unwrap()
    })
    .await
    .unwrap();
    assert_eq!(played.frames, 96_000, "2 s at 48 kHz");
    for p in [b, c] {
        p.net.shutdown().await;
        p.transfer.shutdown(p.library).await.unwrap();
    }
}
