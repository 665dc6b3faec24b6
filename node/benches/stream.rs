//! Streaming figures, with real nodes on 127.0.0.1 in one process:
//!
//! - time to first audio: from `Node::play` (what the control API calls for `9ten play`) to
//!   the first decoded sample, for tracks held by one remote node and found through the DHT
//!   (6 nodes), p50 and p95 over 40 plays; reference: the same plays again once the tracks are
//!   in the listener's own cache;
//! - throughput of one 64 MiB blob: our multi-provider fetch with one and with two providers,
//!   against a plain single-provider iroh-blobs fetch of the same blob (the reference), with a
//!   raw iroh QUIC stream of the same bytes as the ceiling; median of 5 runs each, every run
//!   into a fresh store.
//!
//! Run: `cargo bench -p nineten-node --bench stream`.

#![allow(missing_docs, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use nineten_node::audio::encode::Settings;
use nineten_node::config::DataDir;
use nineten_node::daemon::{Config, Node, SinkSpec};
use nineten_node::fetch::{self, Fetch};
use nineten_node::import::{self, PreparedRelease, PreparedTrack, Release};
use nineten_node::library::Library;
use nineten_node::transfer::Transfer;
use nineten_protocol::identity::Keypair;
use nineten_protocol::key::ContentHash;
use nineten_protocol::manifest::{Manifest, Track};

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    let rank = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

fn median(v: &mut [f64]) -> f64 {
    percentile(v, 0.5)
}

/// `n` distinct 20 s tracks (tones a semitone apart), imported as one release.
fn album(dir: &std::path::Path, n: usize) -> PreparedRelease {
    let files: Vec<_> = (0..n)
        .map(|i| {
            let hz = 110.0 * 2f32.powf(i as f32 / 12.0);
            let rate = 48_000u32;
            let samples: Vec<f32> = (0..rate as usize * 20)
                .flat_map(|k| {
                    let t = k as f32 / rate as f32;
                    let s = 0.3 * (2.0 * std::f32::consts::PI * hz * t).sin();
                    [s, 0.5 * s]
                })
                .collect();
            let path = dir.join(format!("{i:02}.wav"));
            let mut w = nineten_node::audio::wav::WavWriter::create(&path, 2, rate).unwrap();
            w.write(&samples).unwrap();
            w.finish().unwrap();
            path
        })
        .collect();
    let artist = Keypair::from_seed([5; 32]);
    let release = Release {
        artist: &artist,
        artist_name: Some("Bench".into()),
        title: "Tones".into(),
        settings: Settings::default(),
        published_at_ms: 0,
    };
    import::prepare(&files, &release, &|_, _| {}).unwrap()
}

async fn ttfa() {
    let dir = tempfile::tempdir().unwrap();
    let plays = 40;
    let prepared = album(dir.path(), plays);
    let mut nodes: Vec<Arc<Node>> = Vec::new();
    for i in 0..6 {
        let mut config = Config::new(DataDir::new(Some(dir.path().join(format!("n{i}")))));
        config.seed = Some([i as u8 + 1; 32]);
        if let Some(first) = nodes.first() {
            config.peers = vec![first.status().await.unwrap().addrs[0].parse().unwrap()];
        }
        nodes.push(Node::start(config).await.unwrap());
    }
    let (artist, listener) = (&nodes[1], &nodes[5]);
    let id = artist.add_release(&prepared).await.unwrap();
    artist.publish(&id.to_string()).await.unwrap();
    while listener.catalog().unwrap().is_empty() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut remote = Vec::new();
    let mut local = Vec::new();
    for round in [&mut remote, &mut local] {
        for t in &prepared.tracks {
            let session = listener
                .play(&t.track.hash.to_string(), 0, SinkSpec::Null)
                .await
                .unwrap();
            let heard = listener.wait(session).await.unwrap();
            round.push(heard.first_sample_ms.unwrap());
        }
    }
    let (r50, r95) = (percentile(&mut remote, 0.5), percentile(&mut remote, 0.95));
    let (l50, l95) = (percentile(&mut local, 0.5), percentile(&mut local, 0.95));
    println!(
        "time to first audio, {plays} plays of 20 s tracks on one remote node of 6, found through the DHT:"
    );
    println!("  remote  p50 {r50:.2} ms  p95 {r95:.2} ms");
    println!(
        "  local (reference: the same tracks from the listener's cache)  p50 {l50:.2} ms  p95 {l95:.2} ms"
    );
    println!("  remote/local p50 {:.1}x", r50 / l50);
    for n in nodes {
        n.shutdown().await.unwrap();
    }
}

/// A release whose one "track" is `bytes` (the manifest only carries its hash and size).
fn blob_release(bytes: Vec<u8>) -> PreparedRelease {
    let index = vec![0u8; 16];
    let track = Track {
        number: 1,
        title: "blob".into(),
        hash: ContentHash::of(&bytes),
        size: bytes.len() as u64,
        duration_ms: 1000,
        channels: 2,
        input_sample_rate: 48_000,
        bitrate: 128_000,
        index: ContentHash::of(&index),
    };
    let manifest = Manifest {
        artist: Keypair::from_seed([6; 32]).public(),
        artist_name: "Bench".into(),
        title: "Blob".into(),
        published_at_ms: 0,
        tracks: vec![track.clone()],
    }
    .sign(&Keypair::from_seed([6; 32]))
    .unwrap();
    PreparedRelease {
        manifest,
        tracks: vec![PreparedTrack {
            track,
            stream: bytes,
            index,
        }],
    }
}

async fn provider(
    dir: &std::path::Path,
    seed: u8,
    release: &PreparedRelease,
) -> (Library, Transfer) {
    let library = Library::open(&DataDir::new(Some(dir.join(format!("p{seed}")))))
        .await
        .unwrap();
    library.add_release(release).await.unwrap();
    let transfer = Transfer::start(&[seed; 32], "127.0.0.1:0".parse().unwrap(), &library)
        .await
        .unwrap();
    (library, transfer)
}

const RAW_ALPN: &[u8] = b"9ten/bench/raw";

#[derive(Debug, Clone)]
struct Raw(Arc<Vec<u8>>);

impl iroh::protocol::ProtocolHandler for Raw {
    async fn accept(
        &self,
        conn: iroh::endpoint::Connection,
    ) -> Result<(), iroh::protocol::AcceptError> {
        let (mut send, mut recv) = conn.accept_bi().await?;
        let mut ask = [0u8; 1];
        recv.read_exact(&mut ask).await.ok();
        send.write_all(&self.0).await.ok();
        send.finish().ok();
        conn.closed().await;
        Ok(())
    }
}

async fn endpoint(seed: u8, alpns: Vec<Vec<u8>>) -> iroh::Endpoint {
    iroh::Endpoint::builder(iroh::endpoint::presets::Minimal)
        .secret_key(iroh::SecretKey::from_bytes(&[seed; 32]))
        .relay_mode(iroh::endpoint::RelayMode::Disabled)
        .clear_ip_transports()
        .bind_addr("127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap())
        .unwrap()
        .alpns(alpns)
        .bind()
        .await
        .unwrap()
}

async fn throughput() {
    let dir = tempfile::tempdir().unwrap();
    let size = 64usize << 20;
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let bytes: Vec<u8> = (0..size / 8)
        .flat_map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()
        })
        .collect();
    let release = blob_release(bytes.clone());
    let track = release.tracks[0].track.clone();
    let hash = iroh_blobs::Hash::from(track.hash.0);
    let (_l1, p1) = provider(dir.path(), 11, &release).await;
    let (_l2, p2) = provider(dir.path(), 12, &release).await;
    let raw_server = iroh::protocol::Router::builder(endpoint(13, vec![RAW_ALPN.to_vec()]).await)
        .accept(RAW_ALPN, Raw(Arc::new(bytes)))
        .spawn();

    let mut run = 0u32;
    let mut fresh = async || {
        run += 1;
        let lib = Library::open(&DataDir::new(Some(dir.path().join(format!("l{run}")))))
            .await
            .unwrap();
        let t = Transfer::start(&[100 + run as u8; 32], "127.0.0.1:0".parse().unwrap(), &lib)
            .await
            .unwrap();
        (lib, t)
    };
    let mbps = |d: Duration| size as f64 / 1e6 / d.as_secs_f64();
    let options = fetch::Options {
        window: u64::MAX,
        ..fetch::Options::default()
    };
    let (mut plain, mut one, mut two, mut raw) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..5 {
        for (providers, out) in [
            (vec![p1.addr()], &mut one),
            (vec![p1.addr(), p2.addr()], &mut two),
        ] {
            let (lib, t) = fresh().await;
            let start = Instant::now();
            let f = Fetch::start(&t, hash, track.size, providers, options).await;
            let report = f.finished().await.unwrap();
            out.push(mbps(start.elapsed()));
            assert!(report.complete && lib.has_blob(&track.hash).await.unwrap());
            drop(f);
            t.shutdown().await.unwrap();
        }
        // The reference last in each round: runs write 64 MiB each, and the order matters
        // little once every variant follows another.
        let (lib, t) = fresh().await;
        let start = Instant::now();
        t.fetch(
            &[p1.addr()],
            &track.hash,
            u64::MAX,
            Duration::from_secs(600),
        )
        .await
        .unwrap();
        plain.push(mbps(start.elapsed()));
        assert!(lib.has_blob(&track.hash).await.unwrap());
        t.shutdown().await.unwrap();

        let client = endpoint(99, Vec::new()).await;
        let start = Instant::now();
        let conn = client
            .connect(raw_server.endpoint().addr(), RAW_ALPN)
            .await
            .unwrap();
        let (mut send, mut recv) = conn.open_bi().await.unwrap();
        send.write_all(&[1]).await.unwrap();
        let mut got = 0;
        while let Some(chunk) = recv.read_chunk(1 << 20).await.unwrap() {
            got += chunk.len();
        }
        raw.push(mbps(start.elapsed()));
        assert_eq!(got, size);
        conn.close(0u32.into(), b"done");
        client.close().await;
    }
    let (plain, one, two, raw) = (
        median(&mut plain),
        median(&mut one),
        median(&mut two),
        median(&mut raw),
    );
    println!("throughput of a 64 MiB blob into a fresh store, median of 5 (MB/s):");
    println!("  plain iroh-blobs fetch, one provider (reference)  {plain:.0}");
    println!(
        "  ours, one provider                                {one:.0}  ({:.2}x)",
        one / plain
    );
    println!(
        "  ours, two providers                               {two:.0}  ({:.2}x)",
        two / plain
    );
    println!(
        "  raw iroh QUIC stream, no hashing or storing (ceiling)  {raw:.0}  ({:.2}x)",
        raw / plain
    );
    raw_server.shutdown().await.unwrap();
    p1.shutdown().await.unwrap();
    p2.shutdown().await.unwrap();
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        ttfa().await;
        throughput().await;
    });
}
