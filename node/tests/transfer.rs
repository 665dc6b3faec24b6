//! Tracks move between real nodes over iroh on 127.0.0.1, every byte verified against its
//! hash: A to B to C with A gone; several providers at once, one of them sending corrupted
//! data (detected and avoided) or killed with SIGKILL mid-stream (playback goes on from the
//! other without a gap); the only provider, down at first or slow by fits, still serves.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nineten_node::audio::encode::Settings;
use nineten_node::audio::sink::{NullSink, Sink};
use nineten_node::audio::{AudioError, playback};
use nineten_node::config::DataDir;
use nineten_node::fetch::{self, Fetch, Outcome, SEGMENT};
use nineten_node::import::{self, PreparedRelease, Release};
use nineten_node::library::Library;
use nineten_node::transfer::Transfer;
use nineten_protocol::identity::Keypair;
use nineten_protocol::key::ContentHash;

use crate::signal::*;

/// A cap no test blob reaches.
const WHOLE: u64 = 1 << 30;
/// Time enough for any provider here.
const DEADLINE: Duration = Duration::from_secs(20);

const LOOPBACK: &str = "127.0.0.1:0";
/// Set in the child process that serves a track until it is killed.
const CHILD_PROVIDER: &str = "NINETEN_TEST_PROVIDER_DIR";

async fn node(dir: &Path, name: &str, seed: u8) -> (Library, Transfer) {
    let library = Library::open(&DataDir::new(Some(dir.join(name))))
        .await
        .unwrap();
    let bind: SocketAddr = LOOPBACK.parse().unwrap();
    let transfer = Transfer::start(&[seed; 32], bind, &library).await.unwrap();
    (library, transfer)
}

fn release(dir: &Path, seconds: f32, bitrate: u32) -> PreparedRelease {
    let wav = write_wav(dir, "song.wav", &sweep(48_000, 2, seconds));
    let artist = Keypair::from_seed([9; 32]);
    let release = Release {
        artist: &artist,
        artist_name: Some("Ada Sine".into()),
        title: "Travels".into(),
        settings: Settings { bitrate },
        published_at_ms: 0,
    };
    import::prepare(&[wav], &release, &|_, _| {}).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_track_travels_from_a_through_b_to_c() {
    let dir = tempfile::tempdir().unwrap();
    let prepared = release(dir.path(), 2.5, 128_000);
    let track = prepared.tracks[0].track.clone();

    let (a_lib, a) = node(dir.path(), "a", 1).await;
    a_lib.add_release(&prepared).await.unwrap();
    let (b_lib, b) = node(dir.path(), "b", 2).await;
    let (c_lib, c) = node(dir.path(), "c", 3).await;

    // B takes a copy from A.
    b_lib.add_manifest(&prepared.manifest).unwrap();
    for blob in [&track.hash, &track.index] {
        b.fetch(&[a.addr()], blob, WHOLE, DEADLINE).await.unwrap();
        assert!(b_lib.has_blob(blob).await.unwrap());
    }
    // A goes away; C can only get the track from B.
    let gone = a.addr();
    a.shutdown().await.unwrap();
    drop(a_lib);
    c_lib.add_manifest(&prepared.manifest).unwrap();
    assert!(
        c.fetch(
            &[b.addr()],
            &ContentHash::of(b"a blob nobody has"),
            WHOLE,
            DEADLINE
        )
        .await
        .is_err(),
        "B does not have it"
    );
    let read = c
        .fetch(&[b.addr()], &track.hash, WHOLE, DEADLINE)
        .await
        .unwrap();
    assert_eq!(read, track.size);
    c.fetch(&[b.addr()], &track.index, WHOLE, DEADLINE)
        .await
        .unwrap();
    // D knows no provider's speed, so it asks in the order given: A, gone, fails or misses
    // its deadline, and B serves.
    let (d_lib, d) = node(dir.path(), "d", 4).await;
    d.fetch(
        &[gone, b.addr()],
        &track.index,
        WHOLE,
        Duration::from_secs(2),
    )
    .await
    .unwrap();
    assert!(d_lib.has_blob(&track.index).await.unwrap());
    // Only the first bytes up to a cap are asked for: a larger blob is refused.
    let err = d
        .fetch(&[b.addr()], &track.hash, 1024, DEADLINE)
        .await
        .unwrap_err();
    assert!(
        matches!(err, nineten_node::Error::TooLarge { cap: 1024, .. }),
        "{err}"
    );
    assert!(!d_lib.has_blob(&track.hash).await.unwrap());
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

    b.shutdown().await.unwrap();
    c.shutdown().await.unwrap();
}

/// Keeps every sample; optionally plays at `speed` times real time (0: no clock).
#[derive(Default)]
struct Collect {
    samples: Vec<f32>,
    speed: f64,
    started: Option<Instant>,
}

impl Sink for Collect {
    fn write(&mut self, samples: &[f32]) -> Result<(), AudioError> {
        self.samples.extend_from_slice(samples);
        if self.speed > 0.0 {
            let started = *self.started.get_or_insert_with(Instant::now);
            let due = self.samples.len() as f64 / 2.0 / 48_000.0 / self.speed;
            let ahead = due - started.elapsed().as_secs_f64();
            if ahead > 0.0 {
                std::thread::sleep(Duration::from_secs_f64(ahead));
            }
        }
        Ok(())
    }
    fn finish(self: Box<Self>) -> Result<(), AudioError> {
        Ok(())
    }
}

/// Decodes the whole track from a library that holds it.
async fn reference(library: &Library, prepared: &PreparedRelease) -> Vec<f32> {
    let track = &prepared.tracks[0].track;
    let index = library.seek_index(track).await.unwrap();
    let reader = library.reader(track);
    tokio::task::spawn_blocking(move || {
        let mut sink = Collect::default();
        playback::play(reader, &index, 0, &mut sink).unwrap();
        sink.samples
    })
    .await
    .unwrap()
}

/// Streams the track from `providers` into a [`Collect`] sink at `speed`; returns what was
/// played and the fetch's account.
async fn stream(
    library: &Library,
    transfer: &Transfer,
    prepared: &PreparedRelease,
    providers: Vec<iroh::EndpointAddr>,
    options: fetch::Options,
    speed: f64,
) -> (Vec<f32>, fetch::Report) {
    let track = prepared.tracks[0].track.clone();
    let hash = iroh_blobs::Hash::from(track.hash.0);
    let fetch = Fetch::start(transfer, hash, track.size, providers.clone(), options).await;
    transfer
        .fetch(&providers, &track.index, WHOLE, DEADLINE)
        .await
        .unwrap();
    let index = library.seek_index(&track).await.unwrap();
    let reader = fetch.reader(library.blob_reader(&track.hash));
    let played = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::task::spawn_blocking(move || {
            let mut sink = Collect {
                speed,
                ..Collect::default()
            };
            playback::play(reader, &index, 0, &mut sink).unwrap();
            sink.samples
        }),
    )
    .await
    .unwrap_or_else(|_| panic!("playback hung: {:?}", fetch.report()))
    .unwrap();
    let report = fetch.finished().await.unwrap();
    assert!(
        library.has_blob(&track.hash).await.unwrap(),
        "the whole track, verified"
    );
    (played, report)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_sending_corrupted_data_is_detected_and_avoided() {
    let dir = tempfile::tempdir().unwrap();
    let prepared = release(dir.path(), 40.0, 128_000);
    let track = prepared.tracks[0].track.clone();
    assert!(track.size > 8 * SEGMENT, "several segments to share");

    let bad = Liar::start(&dir.path().join("bad"), &prepared).await;
    let (good_lib, good) = node(dir.path(), "good", 22).await;
    good_lib.add_release(&prepared).await.unwrap();

    let (lib, me) = node(dir.path(), "listener", 23).await;
    lib.add_manifest(&prepared.manifest).unwrap();
    let providers = vec![bad.addr(), good.addr()];
    let options = fetch::Options {
        window: u64::MAX,
        ..fetch::Options::default()
    };
    let (played, report) = stream(&lib, &me, &prepared, providers.clone(), options, 0.0).await;

    assert_eq!(
        played,
        reference(&good_lib, &prepared).await,
        "every sample as the artist made it"
    );
    let of = |id| report.providers.iter().find(|p| p.id == id).unwrap();
    assert_eq!(of(bad.addr().id).outcome, Outcome::Corrupt);
    assert_eq!(of(bad.addr().id).segments, 0, "nothing of it was kept");
    assert_eq!(of(good.addr().id).outcome, Outcome::Serving);
    assert!(of(good.addr().id).bytes >= track.size);
    // Avoided from now on.
    assert!(me.is_corrupt(&bad.addr().id));
    let ranked: Vec<_> = me.rank(providers).into_iter().map(|p| p.id).collect();
    assert_eq!(ranked, vec![good.addr().id]);

    bad.router.shutdown().await.unwrap();
    for t in [good, me] {
        t.shutdown().await.unwrap();
    }
}

/// A provider that speaks the iroh-blobs protocol but flips a byte in every piece of data it
/// sends (its hash tree is honest, so only the data gives it away).
#[derive(Debug, Clone)]
struct Liar {
    store: iroh_blobs::store::fs::FsStore,
}

/// A provider written here, speaking the iroh-blobs protocol through a handler of its own.
struct HandMade {
    router: iroh::protocol::Router,
}

impl HandMade {
    /// Serves `handler` on 127.0.0.1 under the key of `seed`.
    async fn start(seed: u8, handler: impl iroh::protocol::ProtocolHandler) -> Self {
        let endpoint = iroh::Endpoint::builder(iroh::endpoint::presets::Minimal)
            .secret_key(iroh::SecretKey::from_bytes(&[seed; 32]))
            .relay_mode(iroh::endpoint::RelayMode::Disabled)
            .clear_ip_transports()
            .bind_addr(LOOPBACK.parse::<SocketAddr>().unwrap())
            .unwrap()
            .alpns(vec![iroh_blobs::ALPN.to_vec()])
            .bind()
            .await
            .unwrap();
        let router = iroh::protocol::Router::builder(endpoint)
            .accept(iroh_blobs::ALPN, handler)
            .spawn();
        Self { router }
    }

    fn addr(&self) -> iroh::EndpointAddr {
        self.router.endpoint().addr()
    }
}

/// A blob store in `dir` holding the release's tracks and seek indexes.
async fn store_of(dir: &Path, prepared: &PreparedRelease) -> iroh_blobs::store::fs::FsStore {
    let store = iroh_blobs::store::fs::FsStore::load(dir).await.unwrap();
    for t in &prepared.tracks {
        store.add_bytes(t.stream.clone()).await.unwrap();
        store.add_bytes(t.index.clone()).await.unwrap();
    }
    store
}

/// Answers one iroh-blobs get request on `send`, from `store`: the size, hash
/// tree and data, every data piece passed through `tamper`.
async fn answer_get(
    store: &iroh_blobs::store::fs::FsStore,
    get: iroh_blobs::protocol::GetRequest,
    send: &mut iroh::endpoint::SendStream,
    tamper: fn(&mut [u8]),
) -> Option<()> {
    use futures::StreamExt;
    use iroh_blobs::api::blobs::EncodedItem;
    let ranges = get.ranges.iter_infinite().next()?.clone();
    let items = store.export_bao(get.hash, ranges).stream();
    futures::pin_mut!(items);
    while let Some(item) = items.next().await {
        let bytes = match item {
            EncodedItem::Size(size) => size.to_le_bytes().to_vec(),
            EncodedItem::Parent(p) => [*p.pair.0.as_bytes(), *p.pair.1.as_bytes()].concat(),
            EncodedItem::Leaf(leaf) => {
                let mut data = leaf.data.to_vec();
                tamper(&mut data);
                data
            }
            EncodedItem::Done | EncodedItem::Error(_) => break,
        };
        send.write_all(&bytes).await.ok()?;
    }
    send.finish().ok()
}

/// Reads one request from `recv`: a get, or nothing.
async fn read_get(
    recv: &mut iroh::endpoint::RecvStream,
) -> Option<iroh_blobs::protocol::GetRequest> {
    match iroh_blobs::protocol::Request::read_async(recv).await.ok()? {
        (iroh_blobs::protocol::Request::Get(get), _) => Some(get),
        _ => None,
    }
}

impl Liar {
    async fn start(dir: &Path, prepared: &PreparedRelease) -> HandMade {
        let store = store_of(dir, prepared).await;
        HandMade::start(21, Liar { store }).await
    }

    async fn answer(&self, conn: &iroh::endpoint::Connection) -> Option<()> {
        let (mut send, mut recv) = conn.accept_bi().await.ok()?;
        let get = read_get(&mut recv).await?;
        answer_get(&self.store, get, &mut send, |data| data[0] ^= 0x55).await
    }
}

impl iroh::protocol::ProtocolHandler for Liar {
    async fn accept(
        &self,
        conn: iroh::endpoint::Connection,
    ) -> Result<(), iroh::protocol::AcceptError> {
        while self.answer(&conn).await.is_some() {}
        Ok(())
    }
}

/// The child process: serves the library in `dir` and prints its address until killed.
async fn serve_until_killed(dir: &str) {
    let library = Library::open(&DataDir::new(Some(dir.into())))
        .await
        .unwrap();
    let transfer = Transfer::start(&[31; 32], LOOPBACK.parse().unwrap(), &library)
        .await
        .unwrap();
    let addr = transfer.addr();
    println!(
        "{} {}",
        ContentHash(*addr.id.as_bytes()),
        addr.ip_addrs().next().unwrap()
    );
    std::future::pending::<()>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_killed_mid_stream_leaves_no_gap() {
    if let Ok(dir) = std::env::var(CHILD_PROVIDER) {
        serve_until_killed(&dir).await;
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let prepared = release(dir.path(), 24.0, 256_000);
    let track = prepared.tracks[0].track.clone();
    let doomed_dir = dir.path().join("doomed");
    {
        let library = Library::open(&DataDir::new(Some(doomed_dir.clone())))
            .await
            .unwrap();
        library.add_release(&prepared).await.unwrap();
        library.shutdown().await.unwrap();
    }
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "transfer::a_provider_killed_mid_stream_leaves_no_gap",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_PROVIDER, &doomed_dir)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let doomed = {
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        // The harness prints the test's name first, on the same line.
        let line = lines
            .find_map(|l| l.ok().filter(|l| l.contains(" 127.0.0.1:")))
            .unwrap();
        let mut words = line.split_whitespace().rev();
        let (addr, id) = (words.next().unwrap(), words.next().unwrap());
        let id: ContentHash = id.parse().unwrap();
        iroh::EndpointAddr::new(iroh::PublicKey::from_bytes(&id.0).unwrap())
            .with_ip_addr(addr.parse().unwrap())
    };
    let (good_lib, good) = node(dir.path(), "good", 32).await;
    good_lib.add_release(&prepared).await.unwrap();
    let (lib, me) = node(dir.path(), "listener", 33).await;
    lib.add_manifest(&prepared.manifest).unwrap();

    let providers = vec![doomed.clone(), good.addr()];
    let options = fetch::Options {
        window: 3 * SEGMENT,
        stall: Duration::from_millis(500),
    };
    // Play at 4x real time (6 s); kill the doomed provider 1.5 s in, a quarter of the way.
    let killer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        child.kill().unwrap();
        child.wait().unwrap();
    });
    let (played, report) = stream(&lib, &me, &prepared, providers, options, 4.0).await;
    killer.await.unwrap();

    assert_eq!(
        played,
        reference(&good_lib, &prepared).await,
        "nothing lost, nothing repeated"
    );
    assert_eq!(
        report.underruns, 0,
        "playback never waited for data: no gap"
    );
    let of = |id| report.providers.iter().find(|p| p.id == id).unwrap();
    let d = of(doomed.id);
    assert!(d.segments > 0, "the doomed provider served before it died");
    assert!(
        matches!(d.outcome, Outcome::Stalled | Outcome::Failed(_)),
        "{:?}",
        d.outcome
    );
    assert!(d.bytes < track.size, "it died mid-stream");
    assert!(of(good.addr().id).bytes > 0);
    for t in [good, me] {
        t.shutdown().await.unwrap();
    }
}

/// The only provider is down when the fetch starts: its first attempt fails, and the fetch
/// asks it again (after a pause) instead of giving up; it comes up and serves the whole track.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_only_provider_is_asked_again_after_it_failed() {
    let dir = tempfile::tempdir().unwrap();
    let prepared = release(dir.path(), 4.0, 128_000);
    let track = prepared.tracks[0].track.clone();
    let provider_lib = Library::open(&DataDir::new(Some(dir.path().join("late"))))
        .await
        .unwrap();
    provider_lib.add_release(&prepared).await.unwrap();
    // The provider's address, before anything listens there.
    let port = std::net::UdpSocket::bind(LOOPBACK)
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let bind: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let seed = [41u8; 32];
    let late =
        iroh::EndpointAddr::new(iroh::SecretKey::from_bytes(&seed).public()).with_ip_addr(bind);
    let (lib, me) = node(dir.path(), "listener", 42).await;
    lib.add_manifest(&prepared.manifest).unwrap();

    let hash = iroh_blobs::Hash::from(track.hash.0);
    let fetch = Fetch::start(&me, hash, track.size, vec![late], fetch::Options::default()).await;
    // Its first attempt fails (nothing answers there)...
    let deadline = Instant::now() + Duration::from_secs(10);
    while !matches!(fetch.report().providers[0].outcome, Outcome::Failed(_)) {
        assert!(Instant::now() < deadline, "{:?}", fetch.report());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // ...then it comes up, and the fetch still completes from it.
    let provider = Transfer::start(&seed, bind, &provider_lib).await.unwrap();
    let report = tokio::time::timeout(DEADLINE, fetch.finished())
        .await
        .expect("the fetch ends")
        .expect("the provider, asked again, served the track");
    assert!(report.complete);
    let served = &report.providers[0];
    assert_eq!(
        served.outcome,
        Outcome::Serving,
        "serving again after it failed"
    );
    assert!(served.bytes >= track.size, "{served:?}");
    assert!(lib.has_blob(&track.hash).await.unwrap());
    drop(fetch);
    for t in [provider, me] {
        t.shutdown().await.unwrap();
    }
}

/// An honest provider that leaves the requests `slow` picks (by their number, from 0)
/// unanswered for `delay` before it serves them: a node too busy to keep up.
#[derive(Debug, Clone)]
struct Sloth {
    store: iroh_blobs::store::fs::FsStore,
    requests: std::sync::Arc<std::sync::atomic::AtomicU32>,
    slow: fn(u32) -> bool,
    delay: Duration,
}

impl Sloth {
    async fn start(
        dir: &Path,
        prepared: &PreparedRelease,
        slow: fn(u32) -> bool,
        delay: Duration,
    ) -> (HandMade, Self) {
        let sloth = Sloth {
            store: store_of(dir, prepared).await,
            requests: Default::default(),
            slow,
            delay,
        };
        (HandMade::start(22, sloth.clone()).await, sloth)
    }

    /// Requests it left waiting.
    fn stalls(&self) -> u32 {
        let asked = self.requests.load(std::sync::atomic::Ordering::SeqCst);
        (0..asked).filter(|n| (self.slow)(*n)).count() as u32
    }

    async fn answer(
        self,
        mut send: iroh::endpoint::SendStream,
        mut recv: iroh::endpoint::RecvStream,
    ) -> Option<()> {
        let get = read_get(&mut recv).await?;
        let n = self
            .requests
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if (self.slow)(n) {
            tokio::time::sleep(self.delay).await;
        }
        answer_get(&self.store, get, &mut send, |_| {}).await
    }
}

impl iroh::protocol::ProtocolHandler for Sloth {
    async fn accept(
        &self,
        conn: iroh::endpoint::Connection,
    ) -> Result<(), iroh::protocol::AcceptError> {
        while let Ok((send, recv)) = conn.accept_bi().await {
            tokio::spawn(self.clone().answer(send, recv));
        }
        Ok(())
    }
}

/// The only provider stalls again and again, more often than a provider may fail in a row:
/// every other request (it serves something between its stalls), or its first 15 (it is
/// swamped, then recovers). The fetch waits for it and completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_only_provider_slow_by_fits_serves_the_whole_track() {
    for slow in [(|n| n % 2 == 1) as fn(u32) -> bool, |n| n < 15] {
        slow_provider_serves(slow).await;
    }
}

async fn slow_provider_serves(slow: fn(u32) -> bool) {
    let dir = tempfile::tempdir().unwrap();
    let prepared = release(dir.path(), 60.0, 128_000);
    let track = prepared.tracks[0].track.clone();
    let options = fetch::Options {
        window: 16 * SEGMENT,
        stall: Duration::from_millis(100),
    };
    // Longer than the most patience a lone provider gets (8 times the stall limit).
    let (node_slow, sloth) = Sloth::start(
        &dir.path().join("sloth"),
        &prepared,
        slow,
        Duration::from_millis(1500),
    )
    .await;
    let (lib, me) = node(dir.path(), "listener", 43).await;
    lib.add_manifest(&prepared.manifest).unwrap();
    let hash = iroh_blobs::Hash::from(track.hash.0);
    let fetch = Fetch::start(&me, hash, track.size, vec![node_slow.addr()], options).await;
    let report = tokio::time::timeout(Duration::from_secs(60), fetch.finished())
        .await
        .expect("the fetch ends")
        .expect("the slow provider served the track");
    assert!(report.complete);
    assert!(report.providers[0].bytes >= track.size, "{report:?}");
    assert!(
        sloth.stalls() > 4,
        "it stalled {} times: more than the 4 failed attempts in a row a provider may have",
        sloth.stalls()
    );
    assert!(lib.has_blob(&track.hash).await.unwrap());
    drop(fetch);
    me.shutdown().await.unwrap();
    node_slow.router.shutdown().await.unwrap();
}
