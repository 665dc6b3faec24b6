//! Whole nodes ([`Node`]) on 127.0.0.1: publish on A, play on C while only B holds a copy
//! (C joins late and catches up on the catalog); receipts signed when listens end (at the
//! end, on stop and on seek), gossiped to every node and found through the DHT by a reviewer;
//! the cache keeps to its size limit. Receipts are durable before they are returned or
//! gossiped, never reuse a seq after a restore from backup, sign no more than the node's clock
//! measured, follow the clock into a new month, and pay the artist of the release played.
//! A provider that appears while a track streams is found and used.

use std::sync::Arc;
use std::time::{Duration, Instant};

use nineten_node::Error;
use nineten_node::audio::encode::Settings;
use nineten_node::clock::{Clock, ManualClock};
use nineten_node::config::DataDir;
use nineten_node::daemon::{Config, Ending, Listen, Node, SinkSpec};
use nineten_node::home::Operator;
use nineten_node::import::{self, PreparedRelease, Release};
use nineten_node::net::subscribe::{Outcome, Policy};
use nineten_protocol::identity::Keypair;
use nineten_protocol::manifest::Manifest;
use nineten_protocol::month::Month;
use nineten_protocol::node_record::NodeName;
use nineten_protocol::receipt::{NO_HOME_NODE, SignedReceipt};
use nineten_protocol::signature::verify_record;
use nineten_storage::Store;

use crate::signal::*;

async fn start(
    dir: &std::path::Path,
    name: &str,
    peers: &[&Arc<Node>],
    cache_limit: u64,
) -> Arc<Node> {
    start_with(dir, name, peers, cache_limit, Clock::system()).await
}

async fn start_with(
    dir: &std::path::Path,
    name: &str,
    peers: &[&Arc<Node>],
    cache_limit: u64,
    clock: Clock,
) -> Arc<Node> {
    start_tuned(dir, name, peers, |config| {
        config.cache_limit = cache_limit;
        config.clock = clock;
    })
    .await
}

/// Starts a node whose configuration `tune` sets.
async fn start_tuned(
    dir: &std::path::Path,
    name: &str,
    peers: &[&Arc<Node>],
    tune: impl FnOnce(&mut Config),
) -> Arc<Node> {
    let mut config = Config::new(DataDir::new(Some(dir.join(name))));
    config.seed = Some(*blake3::hash(name.as_bytes()).as_bytes());
    tune(&mut config);
    for p in peers {
        let addr = p.status().await.unwrap().addrs[0].parse().unwrap();
        config.peers.push(addr);
    }
    // A node just shut down on this folder may still be letting go of its store.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match Node::start(config.clone()).await {
            Ok(node) => return node,
            Err(e) if Instant::now() < deadline => {
                eprintln!("starting {name} again: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("cannot start {name}: {e}"),
        }
    }
}

/// A manual clock standing at the system's time.
fn manual_now() -> ManualClock {
    ManualClock::new(Clock::system().now_ms())
}

/// Plays `query` to a sink paced by `clock` and moves the clock `ms` on once the sink waits
/// for it; returns the session.
async fn play_for(node: &Arc<Node>, clock: &ManualClock, query: &str, ms: u64) -> u64 {
    let t0 = clock.now_ms();
    let session = node
        .play(query, 0, SinkSpec::Clocked { speed: 1 })
        .await
        .unwrap();
    // The first packet went out at once; the sink waits for the clock.
    clock.waited_for(t0 + 1).await;
    clock.advance(ms);
    session
}

/// Plays `query` to its end, the manual clock moving as far as the track lasts.
async fn listen_through(node: &Arc<Node>, clock: &ManualClock, query: &str, ms: u64) -> Listen {
    let session = play_for(node, clock, query, ms).await;
    node.wait(session).await.unwrap()
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
    let clock = manual_now();

    // A is an artist's node and a home node that signs every request at once.
    let a = start_tuned(dir.path(), "a", &[], |config| {
        config.clock = clock.clock();
        config.operator = Some(Operator {
            cluster: 1,
            name: NodeName::new("a's home").unwrap(),
            policy: Policy::Accept,
        });
    })
    .await;
    let b = start_with(dir.path(), "b", &[&a], 1 << 30, clock.clock()).await;
    eventually(10, "B knows A's node record", || async {
        b.nodes().unwrap().iter().any(|r| r.body.node == a.key())
    })
    .await;
    let subscribed = b.subscribe(a.key(), "tx-b", false).await.unwrap();
    let Outcome::Subscribed(subscription) = subscribed else {
        panic!("not signed: {subscribed:?}")
    };
    assert_eq!(subscription.subscription.home_node, a.key());
    assert!(verify_record(&subscription));
    // Stored when `subscribe` returns, whatever gossip does: B's next receipt names A.
    let now = Month::containing(clock.clock().now_ms()).unwrap();
    assert_eq!(
        b.library()
            .store()
            .subscriptions_of_listener(now, &b.listener_key(now))
            .unwrap(),
        vec![subscription.clone()]
    );
    let release = a.add_release(&prepared).await.unwrap();
    let published = a.publish(&release.to_string()[..8]).await.unwrap();
    assert_eq!(published.tracks.len(), 2);
    eventually(10, "B has the release in its catalog", || async {
        b.catalog().unwrap().len() == 1
    })
    .await;

    // B streams it from A, the only provider, and then holds a copy.
    let heard = listen_through(&b, &clock, &hash[..10], 3000).await;
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
        receipt.receipt.home_node,
        a.key(),
        "the home node of B's subscription is named"
    );
    let month = Month::containing(receipt.receipt.started_at_ms).unwrap();
    assert_eq!(receipt.receipt.listener, b.listener_key(month));

    // A goes away. C joins later, through B only: it catches up on the catalog, finds B as
    // the provider and plays the track from B.
    a.shutdown().await.unwrap();
    drop(a);
    let c = start_with(dir.path(), "c", &[&b], 1 << 30, clock.clock()).await;
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
    let heard = listen_through(&c, &clock, &hash, 3000).await;
    assert_eq!(heard.ending, Ending::End);
    assert_eq!(heard.listened_ms, 3000);
    let from: Vec<_> = heard
        .shares
        .iter()
        .filter(|s| s.bytes > 0)
        .map(|s| s.node)
        .collect();
    assert_eq!(from, vec![b.key()], "only B holds a copy");

    // B's receipt (its listener subscribed through A) reaches C; C's listener has no
    // subscription, so its receipt names no home node and stays on C. A reviewer on C finds
    // B's listener's receipts through the DHT.
    let own = receipt_of(&heard);
    assert_eq!(own.receipt.home_node, NO_HOME_NODE);
    assert!(c.library().store().has_receipt(&own).unwrap());
    for n in [&b, &c] {
        eventually(10, "B's receipt is everywhere", || async {
            n.net().held(month).await.unwrap() == 1
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
    // Stored before they were returned.
    let stored = node
        .library()
        .store()
        .receipts_of_listener(&node.listener_key(month))
        .unwrap();
    assert_eq!(stored, vec![r1, r2]);
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
    // Counted once the store's answer is back on the event loop, just after it is readable.
    eventually(10, "the release is counted", || async {
        b.net().stats().await.unwrap().releases == 1
    })
    .await;
    // The liar is banned (gossipsub scores it below the graylist); the artist stays.
    eventually(10, "the liar is banned", || async {
        b.net().stats().await.unwrap().banned >= 1
    })
    .await;
    // The ban closes the liar's connection a moment later.
    eventually(10, "only the artist is still connected", || async {
        b.net().peers().await.unwrap().len() == 1
    })
    .await;
    assert_eq!(b.catalog().unwrap().len(), 1, "the good release stays");
    for n in [artist, liar, b] {
        n.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receipt_is_stored_before_it_is_returned_even_when_gossip_fails() {
    let dir = tempfile::tempdir().unwrap();
    let prepared = album(dir.path(), &[2.0]);
    let clock = manual_now();
    let node = start_with(dir.path(), "solo", &[], 1 << 30, clock.clock()).await;
    node.add_release(&prepared).await.unwrap();
    // The network goes away: the receipt cannot be gossiped, but it is not lost.
    node.net().shutdown().await;
    let heard = listen_through(
        &node,
        &clock,
        &prepared.tracks[0].track.hash.to_string(),
        2000,
    )
    .await;
    assert_eq!(heard.ending, Ending::End);
    let receipt = receipt_of(&heard);
    assert_eq!(receipt.receipt.listened_ms, 2000);
    assert!(node.library().store().has_receipt(&receipt).unwrap());
    node.shutdown().await.unwrap();
}

/// The store of a node's folder, once the node stopped has let go of it.
async fn closed_store(folder: &std::path::Path) -> Store {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match Store::open(&DataDir::new(Some(folder.to_path_buf())).store()) {
            Ok(s) => return s,
            Err(e) => {
                assert!(Instant::now() < deadline, "the store stays locked: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_restored_from_an_old_backup_never_signs_a_used_seq() {
    let dir = tempfile::tempdir().unwrap();
    let prepared = album(dir.path(), &[1.0]);
    let hash = prepared.tracks[0].track.hash.to_string();
    let clock = manual_now();
    let node = start_with(dir.path(), "n", &[], 1 << 30, clock.clock()).await;
    node.add_release(&prepared).await.unwrap();
    let first = receipt_of(&listen_through(&node, &clock, &hash, 1000).await);
    assert_eq!(first.receipt.seq, 0);
    node.shutdown().await.unwrap();
    drop(node);
    // The backup, taken while the node is stopped: the counter stands at 1.
    let backup = dir.path().join("backup");
    let folder = dir.path().join("n");
    drop(closed_store(&folder).await);
    copy_dir(&folder, &backup);
    let node = start_with(dir.path(), "n", &[], 1 << 30, clock.clock()).await;
    let mut later = Vec::new();
    for _ in 0..2 {
        later.push(receipt_of(
            &listen_through(&node, &clock, &hash, 1000).await,
        ));
    }
    assert_eq!(
        later.iter().map(|r| r.receipt.seq).collect::<Vec<_>>(),
        vec![1, 2]
    );
    node.shutdown().await.unwrap();
    drop(node);

    // The disk dies; the backup comes back, and the later receipts with it (as peers hand
    // them back).
    drop(closed_store(&folder).await);
    std::fs::remove_dir_all(&folder).unwrap();
    copy_dir(&backup, &folder);
    closed_store(&folder).await.put_receipts(&later, 0).unwrap();
    let node = start_with(dir.path(), "n", &[], 1 << 30, clock.clock()).await;
    let next = receipt_of(&listen_through(&node, &clock, &hash, 1000).await);
    assert_eq!(next.receipt.listener, first.receipt.listener);
    assert_eq!(next.receipt.seq, 3, "above every stored seq");
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_the_listen_and_its_receipt_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let prepared = album(dir.path(), &[20.0]);
    let clock = manual_now();
    let t0 = clock.now_ms();
    let node = start_with(dir.path(), "n", &[], 1 << 30, clock.clock()).await;
    node.add_release(&prepared).await.unwrap();
    let hash = prepared.tracks[0].track.hash.to_string();
    play_for(&node, &clock, &hash, 5000).await;
    // The sink has played the 5 s the clock moved and waits for more.
    clock.waited_for(t0 + 5001).await;
    node.shutdown().await.unwrap();
    assert!(matches!(
        node.play(&hash, 0, SinkSpec::Null).await,
        Err(Error::ShuttingDown)
    ));
    let listener = node.listener_key(Month::containing(t0).unwrap());
    drop(node);
    let store = closed_store(&dir.path().join("n")).await;
    let kept = store.receipts_of_listener(&listener).unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].receipt.listened_ms, 5000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listen_signs_no_more_than_the_clock_measured() {
    let dir = tempfile::tempdir().unwrap();
    let prepared = album(dir.path(), &[3.0, 20.0]);
    let clock = manual_now();
    let node = start_with(dir.path(), "n", &[], 1 << 30, clock.clock()).await;
    node.add_release(&prepared).await.unwrap();
    let short = prepared.tracks[0].track.hash.to_string();
    let long = prepared.tracks[1].track.hash.to_string();

    // The null sink takes 3 s of audio at once, but the clock did not move: nothing was heard.
    let heard = play(&node, &short, 0, SinkSpec::Null).await;
    assert_eq!(heard.ending, Ending::End);
    assert_eq!(heard.listened_ms, 0);
    assert!(heard.receipt.is_none());

    // A clocked sink runs one packet (20 ms) ahead of the clock; the receipt signs the 5 s
    // the clock moved, not the 5.02 s or so decoded.
    let t0 = clock.now_ms();
    let session = play_for(&node, &clock, &long, 5000).await;
    clock.waited_for(t0 + 5001).await;
    let stopped = node.stop().await.unwrap();
    assert_eq!(stopped.session, session);
    assert_eq!(stopped.ending, Ending::Stopped);
    assert_eq!(stopped.listened_ms, 5000);
    assert_eq!(receipt_of(&stopped).receipt.listened_ms, 5000);
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listened_ms_counts_the_streams_channels_not_the_manifests() {
    let dir = tempfile::tempdir().unwrap();
    let mut prepared = album(dir.path(), &[3.0]);
    // The artist's manifest says mono; the stream (OpusHead) is stereo.
    let artist = Keypair::from_seed([8; 32]);
    let mut manifest: Manifest = prepared.manifest.manifest.clone();
    assert_eq!(manifest.tracks[0].channels, 2);
    manifest.tracks[0].channels = 1;
    prepared.manifest = manifest.sign(&artist).unwrap();
    prepared.tracks[0].track.channels = 1;
    let clock = manual_now();
    let node = start_with(dir.path(), "n", &[], 1 << 30, clock.clock()).await;
    node.add_release(&prepared).await.unwrap();
    // The clock moves an hour: only the audio limits the listen.
    let heard = listen_through(
        &node,
        &clock,
        &prepared.tracks[0].track.hash.to_string(),
        3_600_000,
    )
    .await;
    assert_eq!(heard.ending, Ending::End);
    assert_eq!(heard.listened_ms, 3000);
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_follow_the_clock_into_a_new_month() {
    let dir = tempfile::tempdir().unwrap();
    let prepared = album(dir.path(), &[3.0]);
    let hash = prepared.tracks[0].track.hash.to_string();
    let (october, november) = (
        "2026-10".parse::<Month>().unwrap(),
        "2026-11".parse::<Month>().unwrap(),
    );
    let clock = ManualClock::new(october.bounds_ms().1 - 10_000);
    let node = start_with(dir.path(), "n", &[], 1 << 30, clock.clock()).await;
    assert_eq!(node.months(), vec!["2026-09".parse().unwrap(), october]);
    node.add_release(&prepared).await.unwrap();

    let first = receipt_of(&listen_through(&node, &clock, &hash, 3000).await);
    assert_eq!(first.receipt.started_at_ms, october.bounds_ms().1 - 10_000);
    assert_eq!(first.receipt.listener, node.listener_key(october));
    assert_eq!(first.receipt.seq, 0);

    clock.advance(20_000);
    let second = receipt_of(&listen_through(&node, &clock, &hash, 3000).await);
    assert!(november.contains(second.receipt.started_at_ms));
    assert_eq!(second.receipt.listener, node.listener_key(november));
    assert_ne!(node.listener_key(november), node.listener_key(october));
    assert_eq!(second.receipt.seq, 0, "a new month's key counts from 0");
    assert!(node.months().contains(&november), "{:?}", node.months());
    // No subscription: the receipt is kept here, and the network does not carry it.
    assert!(node.library().store().has_receipt(&second).unwrap());
    assert_eq!(node.net().held(november).await.unwrap(), 0);
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_release_played_names_the_artist_paid() {
    let dir = tempfile::tempdir().unwrap();
    let prepared = album(dir.path(), &[2.0]);
    let track = prepared.tracks[0].track.clone();
    // Another key signs a release listing the same stream.
    let thief = Keypair::from_seed([9; 32]);
    let stolen = Manifest {
        artist: thief.public(),
        artist_name: "Not Formant".into(),
        title: "Stolen Sounds".into(),
        ..prepared.manifest.manifest.clone()
    }
    .sign(&thief)
    .unwrap();
    let clock = manual_now();
    let node = start_with(dir.path(), "n", &[], 1 << 30, clock.clock()).await;
    let honest = node.add_release(&prepared).await.unwrap();
    let forged = node.library().add_manifest(&stolen).unwrap();

    // By bare hash the listener must choose.
    let err = node
        .play(&track.hash.to_string(), 0, SinkSpec::Null)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ContestedTrack { .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains(&format!("{honest}/1")), "{message}");
    assert!(message.contains(&format!("{forged}/1")), "{message}");

    // The catalog flags both and keeps both.
    let catalog = node.catalog().unwrap();
    assert_eq!(catalog.len(), 2);
    for entry in &catalog {
        let other = if entry.release == honest {
            forged
        } else {
            honest
        };
        assert_eq!(entry.tracks[0].also_listed_by, vec![other]);
    }

    // Played from the artist's release, the receipt pays the artist.
    let heard = listen_through(
        &node,
        &clock,
        &format!("{}/1", &honest.to_string()[..12]),
        2000,
    )
    .await;
    assert_eq!(heard.release, honest);
    assert_eq!(
        receipt_of(&heard).receipt.artist,
        prepared.manifest.manifest.artist
    );
    let heard = listen_through(&node, &clock, &format!("{forged}/1"), 2000).await;
    assert_eq!(receipt_of(&heard).receipt.artist, thief.public());
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_seek_index_is_not_fetched() {
    let dir = tempfile::tempdir().unwrap();
    let mut prepared = album(dir.path(), &[1.0]);
    // The artist's node serves a 3 MB "seek index".
    let index = vec![7u8; 3 << 20];
    let artist = Keypair::from_seed([8; 32]);
    let mut manifest = prepared.manifest.manifest.clone();
    manifest.tracks[0].index = nineten_protocol::key::ContentHash::of(&index);
    prepared.manifest = manifest.sign(&artist).unwrap();
    prepared.tracks[0].track = prepared.manifest.manifest.tracks[0].clone();
    prepared.tracks[0].index = index;
    let a = start(dir.path(), "a", &[], 1 << 30).await;
    let b = start(dir.path(), "b", &[&a], 1 << 30).await;
    let release = a.add_release(&prepared).await.unwrap();
    a.publish(&release.to_string()).await.unwrap();
    eventually(10, "B has the release in its catalog", || async {
        b.catalog().unwrap().len() == 1
    })
    .await;
    let track = &prepared.tracks[0].track;
    let err = b
        .play(&track.hash.to_string(), 0, SinkSpec::Null)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("larger than 1382427 bytes"), "{err}");
    assert!(!b.library().has_blob(&track.index).await.unwrap());
    for n in [a, b] {
        n.shutdown().await.unwrap();
    }
}

/// The only provider known when a play starts goes away with most of the track still to come;
/// another node gets the track meanwhile, and the fetch, looking for providers again, finds it
/// and plays to the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_that_appears_while_a_track_streams_is_found_and_used() {
    let dir = tempfile::tempdir().unwrap();
    let prepared = album(dir.path(), &[40.0]);
    let track = prepared.tracks[0].track.clone();
    let hash = track.hash.to_string();
    let clock = manual_now();
    let a = start_with(dir.path(), "a", &[], 1 << 30, clock.clock()).await;
    // B fetches one segment ahead of where it plays, so most of the track is still to come.
    let b = start_tuned(dir.path(), "b", &[&a], |config| {
        config.clock = clock.clock();
        config.fetch = nineten_node::fetch::Options {
            window: nineten_node::fetch::SEGMENT,
            stall: Duration::from_millis(500),
        };
    })
    .await;
    let c = start_with(dir.path(), "c", &[&b], 1 << 30, clock.clock()).await;
    let release = a.add_release(&prepared).await.unwrap();
    a.publish(&release.to_string()[..8]).await.unwrap();
    eventually(10, "B has the release in its catalog", || async {
        b.catalog().unwrap().len() == 1
    })
    .await;
    let t0 = clock.now_ms();
    let session = b
        .play(&hash[..10], 0, SinkSpec::Clocked { speed: 1 })
        .await
        .unwrap();
    clock.waited_for(t0 + 1).await;
    a.shutdown().await.unwrap();
    drop(a);
    let copy = c.add_release(&prepared).await.unwrap();
    c.publish(&copy.to_string()[..8]).await.unwrap();
    clock.advance(u64::from(track.duration_ms));
    let heard = b.wait(session).await.unwrap();
    assert_eq!(heard.ending, Ending::End, "{heard:?}");
    let from_c = heard
        .shares
        .iter()
        .find(|s| s.node == c.key())
        .map_or(0, |s| s.bytes);
    assert!(
        from_c > track.size / 2,
        "C served the rest: {:?}",
        heard.shares
    );
    for n in [b, c] {
        n.shutdown().await.unwrap();
    }
}
