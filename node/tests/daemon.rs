//! Whole nodes ([`Node`]) on 127.0.0.1: publish on A, play on C while only B holds a copy
//! (C joins late and catches up on the catalog); receipts signed when listens end (at the
//! end, on stop and on seek), gossiped to every node and found through the DHT by a reviewer;
//! the cache keeps to its size limit.

use std::sync::Arc;
use std::time::{Duration, Instant};

use nineten_node::audio::encode::Settings;
use nineten_node::config::DataDir;
use nineten_node::daemon::{Config, Ending, Listen, Node, SinkSpec};
use nineten_node::import::{self, PreparedRelease, Release};
use nineten_protocol::identity::Keypair;
use nineten_protocol::month::Month;
use nineten_protocol::receipt::{NO_HOME_NODE, SignedReceipt};
use nineten_protocol::signature::verify_record;

use crate::signal::*;

async fn start(
    dir: &std::path::Path,
    name: &str,
    peers: &[&Arc<Node>],
    cache_limit: u64,
) -> Arc<Node> {
    let mut config = Config::new(DataDir::new(Some(dir.join(name))));
    config.seed = Some(*blake3::hash(name.as_bytes()).as_bytes());
    config.cache_limit = cache_limit;
    for p in peers {
        let addr = p.status().await.unwrap().addrs[0].parse().unwrap();
        config.peers.push(addr);
    }
    Node::start(config).await.unwrap()
}

fn album(dir: &std::path::Path, seconds: &[f32]) -> PreparedRelease {
    let files: Vec<_> = seconds
        .iter()
        .enumerate()
        .map(|(i, s)| write_wav(dir, &format!("{i:02}.wav"), &sweep(44_100, 2, *s)))
        .collect();
    let artist = Keypair::from_seed([8; 32]);
    let release = Release {
        artist: &artist,
        artist_name: Some("Formant".into()),
        title: "Found Sounds".into(),
        settings: Settings::default(),
        published_at_ms: 0,
    };
    import::prepare(&files, &release, &|_, _| {}).unwrap()
}

/// Polls `check` until it holds, for at most `secs` seconds.
async fn eventually<F: std::future::Future<Output = bool>>(
    secs: u64,
    what: &str,
    check: impl Fn() -> F,
) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn play(node: &Arc<Node>, track: &str, from_ms: u64, sink: SinkSpec) -> Listen {
    let session = node.play(track, from_ms, sink).await.unwrap();
    node.wait(session).await.unwrap()
}

fn receipt_of(listen: &Listen) -> SignedReceipt {
    SignedReceipt::from_json(listen.receipt.as_ref().expect("a receipt")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_on_a_played_on_c_while_only_b_holds_a_copy() {
    let dir = tempfile::tempdir().unwrap();
    let prepared = album(dir.path(), &[3.0, 2.0]);
    let track = prepared.tracks[0].track.clone();
    let hash = track.hash.to_string();

    let a = start(dir.path(), "a", &[], 1 << 30).await;
    let b = start(dir.path(), "b", &[&a], 1 << 30).await;
    let release = a.add_release(&prepared).await.unwrap();
    let published = a.publish(&release.to_string()[..8]).await.unwrap();
    assert_eq!(published.tracks.len(), 2);
    eventually(10, "B has the release in its catalog", || async {
        b.catalog().unwrap().len() == 1
    })
    .await;

    // B streams it from A, the only provider, and then holds a copy.
    let heard = play(&b, &hash[..10], 0, SinkSpec::Null).await;
    assert_eq!(heard.ending, Ending::End);
    assert!(!heard.local);
    assert_eq!(heard.listened_ms, 3000);
    assert_eq!(heard.shares.len(), 1);
    assert_eq!(heard.shares[0].node, a.key());
    assert!(heard.shares[0].bytes >= track.size);
    assert!(b.library().has_blob(&track.hash).await.unwrap());
    let receipt = receipt_of(&heard);
    assert!(verify_record(&receipt));
    assert_eq!(receipt.receipt.track, track.hash);
    assert_eq!(receipt.receipt.artist, prepared.manifest.manifest.artist);
    assert_eq!(receipt.receipt.listened_ms, 3000);
    assert_eq!(receipt.receipt.track_ms, track.duration_ms);
    assert_eq!(
        receipt.receipt.home_node, NO_HOME_NODE,
        "no home node yet: none named"
    );
    let month = Month::containing(receipt.receipt.started_at_ms).unwrap();
    assert_eq!(receipt.receipt.listener, b.listener_key(month));

    // A goes away. C joins later, through B only: it catches up on the catalog, finds B as
    // the provider and plays the track from B.
    a.shutdown().await.unwrap();
    drop(a);
    let c = start(dir.path(), "c", &[&b], 1 << 30).await;
    eventually(10, "C caught up on the catalog", || async {
        c.catalog().unwrap().len() == 1
    })
    .await;
    let hits = c.search("formant found").unwrap();
    assert_eq!(hits.len(), 1, "artist and title words");
    assert_eq!(
        c.search("sounds 02").unwrap().len(),
        0,
        "no track is called that"
    );
    assert!(c.search("nothing like it").unwrap().is_empty());
    let heard = play(&c, &hash, 0, SinkSpec::Null).await;
    assert_eq!(heard.ending, Ending::End);
    assert_eq!(heard.listened_ms, 3000);
    let from: Vec<_> = heard
        .shares
        .iter()
        .filter(|s| s.bytes > 0)
        .map(|s| s.node)
        .collect();
    assert_eq!(from, vec![b.key()], "only B holds a copy");

    // Both receipts reach both nodes; a reviewer on C finds B's listener's receipts through
    // the DHT.
    for n in [&b, &c] {
        eventually(10, "both receipts are everywhere", || async {
            n.net().held(month).await.unwrap() == 2
        })
        .await;
    }
    let found = c.listener_receipts(b.listener_key(month)).await.unwrap();
    assert_eq!(found, vec![receipt]);

    for n in [b, c] {
        n.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_and_seek_end_a_listen_with_its_receipt() {
    let dir = tempfile::tempdir().unwrap();
    let prepared = album(dir.path(), &[20.0]);
    let track = prepared.tracks[0].track.clone();
    let node = start(dir.path(), "solo", &[], 1 << 30).await;
    node.add_release(&prepared).await.unwrap();
    let hash = track.hash.to_string();

    // At 10x real time, 20 s take 2 s; seek 0.5 s in, stop 0.5 s later.
    let first = node
        .play(&hash, 0, SinkSpec::Clocked { speed: 10 })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let second = node.seek(15_000).await.unwrap();
    let seeked = node.wait(first).await.unwrap();
    assert_eq!(seeked.ending, Ending::Stopped);
    assert!(
        seeked.listened_ms > 0 && seeked.listened_ms < 15_000,
        "{}",
        seeked.listened_ms
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stopped = node.stop().await.expect("something was playing");
    assert_eq!(stopped.session, second);
    assert_eq!(stopped.from_ms, 15_000);
    assert_eq!(stopped.ending, Ending::Stopped);
    assert!(
        stopped.listened_ms > 0 && stopped.listened_ms < 5_000,
        "{}",
        stopped.listened_ms
    );
    assert!(node.stop().await.is_none(), "nothing playing any more");

    let (r1, r2) = (receipt_of(&seeked), receipt_of(&stopped));
    assert_eq!(r1.receipt.listened_ms, seeked.listened_ms);
    assert_eq!(r2.receipt.listened_ms, stopped.listened_ms);
    assert_eq!(
        (r1.receipt.seq, r2.receipt.seq),
        (0, 1),
        "each listen gets its own seq"
    );
    assert_eq!(r1.receipt.listener, r2.receipt.listener);
    let month = Month::containing(r1.receipt.started_at_ms).unwrap();
    let stored = node
        .library()
        .store()
        .receipts_of_listener(&node.listener_key(month))
        .unwrap();
    eventually(5, "both receipts are stored", || async {
        node.library()
            .store()
            .receipts_of_listener(&node.listener_key(month))
            .unwrap()
            .len()
            == 2
    })
    .await;
    drop(stored);
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_drops_the_least_recently_played_track() {
    let dir = tempfile::tempdir().unwrap();
    let prepared = album(dir.path(), &[4.0, 4.0, 4.0]);
    let sizes: Vec<u64> = prepared.tracks.iter().map(|t| t.track.size).collect();
    let artist = start(dir.path(), "artist", &[], 1 << 30).await;
    let release = artist.add_release(&prepared).await.unwrap();
    artist.publish(&release.to_string()).await.unwrap();
    // Room for two tracks, not three.
    let limit = sizes[0] + sizes[1] + sizes[2] / 2;
    let fan = start(dir.path(), "fan", &[&artist], limit).await;
    eventually(10, "the fan sees the release", || async {
        fan.catalog().unwrap().len() == 1
    })
    .await;
    let hashes: Vec<_> = prepared.tracks.iter().map(|t| t.track.hash).collect();
    for h in [hashes[0], hashes[1], hashes[0], hashes[2]] {
        let heard = play(&fan, &h.to_string(), 0, SinkSpec::Null).await;
        assert_eq!(heard.ending, Ending::End);
    }
    // Track 1 was played again after track 2, so track 2 is the least recently played.
    let cached: Vec<_> = fan
        .library()
        .store()
        .cached()
        .unwrap()
        .iter()
        .map(|e| e.blob)
        .collect();
    assert_eq!(cached, vec![hashes[0], hashes[2]]);
    let status = fan.status().await.unwrap();
    assert_eq!(status.cached_tracks, 2);
    assert!(status.cached_bytes <= limit);
    eventually(15, "garbage collection frees the dropped track", || async {
        !fan.library().has_blob(&hashes[1]).await.unwrap()
    })
    .await;
    assert!(fan.library().has_blob(&hashes[0]).await.unwrap());
    for n in [artist, fan] {
        n.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_catalog_gossip_costs_the_liar_and_the_good_release_arrives() {
    let dir = tempfile::tempdir().unwrap();
    let prepared = album(dir.path(), &[1.0]);
    let artist = start(dir.path(), "artist", &[], 1 << 30).await;
    let liar = start(dir.path(), "liar", &[], 1 << 30).await;
    let b = start(dir.path(), "b", &[&artist, &liar], 1 << 30).await;
    eventually(10, "the nodes are connected", || async {
        b.net().peers().await.unwrap().len() == 2
    })
    .await;
    let topic = nineten_node::net::catalog_topic;
    eventually(10, "the liar's gossip reaches b", || async {
        let mut forged = prepared.manifest.clone();
        forged.manifest.title = "Stolen".into();
        for bytes in [b"not a manifest".to_vec(), forged.to_bytes(), vec![0; 1000]] {
            let _ = liar.net().publish_raw(topic(), bytes).await;
        }
        b.net().stats().await.unwrap().releases_rejected >= 3
    })
    .await;
    let oversized = vec![0; 2 * nineten_node::net::MAX_GOSSIP];
    assert!(liar.net().publish_raw(topic(), oversized).await.is_err());

    let release = artist.add_release(&prepared).await.unwrap();
    artist.publish(&release.to_string()).await.unwrap();
    eventually(10, "the good release arrives", || async {
        b.catalog().unwrap().len() == 1
    })
    .await;
    assert_eq!(b.catalog().unwrap()[0].title, "Found Sounds");
    let stats = b.net().stats().await.unwrap();
    assert_eq!(stats.releases, 1);
    // The liar is banned (gossipsub scores it below the graylist); the artist stays.
    eventually(10, "the liar is banned", || async {
        b.net().stats().await.unwrap().banned >= 1
    })
    .await;
    let peers = b.net().peers().await.unwrap();
    assert_eq!(
        peers.len(),
        1,
        "only the artist is still connected: {peers:?}"
    );
    for n in [artist, liar, b] {
        n.shutdown().await.unwrap();
    }
}
