//! A running node: the library, the iroh endpoint, the libp2p network and the player, with the
//! node's identity and its listener's. `9ten node run` keeps one alive behind the control API
//! ([`crate::control`]); testnets start many in one process.
//!
//! Playing a track: find it in the catalog; if its blobs are not here, find providers in the
//! DHT, fetch the seek index and stream the track from all of them at once ([`crate::fetch`]),
//! playing while fetching. When the listen ends (at the track's end, or on stop, skip or seek)
//! [`crate::receipts`] turns it into a signed receipt, stored durably before the node returns or
//! gossips it. A fetched track joins the cache ([`crate::cache`]) and, once complete, is
//! provided to others. Time comes from the node's [`Clock`]; [`Node::shutdown`] ends every
//! listen under way (each with its receipt) before the network stops.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use libp2p::Multiaddr;
use nineten_protocol::identity::{Keypair, ListenerSecret, Secret};
use nineten_protocol::key::{ContentHash, PublicKey};
use nineten_protocol::manifest::SignedManifest;
use nineten_protocol::month::Month;
use nineten_protocol::receipt::{NO_HOME_NODE, SignedReceipt};
use nineten_storage::Store;
use nineten_storage::renewal::StandingOrder;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::audio::sink::{DeviceSink, NullSink, Sink, WavSink};
use crate::audio::{AudioError, OPUS_RATE, ogg, playback};
use crate::clock::Clock;
use crate::config::DataDir;
use crate::fetch::{self, Fetch, Outcome};
use crate::import::PreparedRelease;
use crate::library::{Library, TrackRef};
use crate::receipts::{Heard, ReceiptError, Receipts};
use crate::transfer::Transfer;
use crate::{Error, cache, net};

/// How a node starts.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where it keeps its data.
    pub data_dir: DataDir,
    /// libp2p listen address.
    pub listen: Multiaddr,
    /// iroh endpoint address.
    pub iroh: SocketAddr,
    /// Peers to dial at start (`/ip4/…/tcp/…/p2p/<peer id>`).
    pub peers: Vec<Multiaddr>,
    /// Most bytes of fetched tracks to keep.
    pub cache_limit: u64,
    /// How tracks are fetched.
    pub fetch: fetch::Options,
    /// How often receipts are reconciled with a random peer.
    pub sync_interval: Duration,
    /// Seed of the node's and listener's identities on first start (random if `None`);
    /// afterwards the stored identities are used.
    pub seed: Option<[u8; 32]>,
    /// Where the node reads the time.
    pub clock: Clock,
    /// When the node is a home node: its cluster, name and payment policy.
    pub operator: Option<crate::home::Operator>,
    /// How the node takes part in the month's review.
    pub review: crate::review::Options,
}

impl Config {
    /// Loopback-only defaults: ephemeral ports on 127.0.0.1, a 2 GiB cache, no peers.
    pub fn new(data_dir: DataDir) -> Self {
        Self {
            data_dir,
            listen: "/ip4/127.0.0.1/tcp/0".parse().expect("valid multiaddr"),
            iroh: SocketAddr::from(([127, 0, 0, 1], 0)),
            peers: Vec::new(),
            cache_limit: 2 << 30,
            fetch: fetch::Options::default(),
            sync_interval: Duration::from_secs(1),
            seed: None,
            clock: Clock::system(),
            operator: None,
            review: crate::review::Options::default(),
        }
    }
}

/// Where playback goes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SinkSpec {
    /// Discarded, as fast as it decodes (so its receipt signs only the time the node's
    /// clock measured, not the audio decoded).
    Null,
    /// The default sound device.
    Device,
    /// A WAV file.
    Wav(PathBuf),
    /// Discarded, but paced by the node's clock at `speed` times its pace (a listener
    /// simulated without sound; above 1 the receipt still signs only the clock's measure).
    Clocked {
        /// How many times faster than real time.
        speed: u32,
    },
}

impl SinkSpec {
    fn open(&self, channels: u16) -> Result<Box<dyn Sink>, AudioError> {
        Ok(match self {
            Self::Null => Box::new(NullSink::default()),
            Self::Device => Box::new(DeviceSink::open(channels)?),
            Self::Wav(path) => Box::new(WavSink::create(path, channels)?),
            Self::Clocked { .. } => Box::new(NullSink::default()),
        })
    }

    /// How many times the clock's pace the sink is paced at, if it is paced by the clock.
    fn pace(&self) -> Option<u32> {
        match self {
            Self::Clocked { speed } => Some((*speed).max(1)),
            _ => None,
        }
    }
}

/// How a listen ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ending {
    /// The track played to its end.
    End,
    /// Stopped, skipped or seeked.
    Stopped,
    /// Playback failed.
    Failed(String),
}

/// One provider's share of a streamed track.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Share {
    /// The provider's node key.
    pub node: PublicKey,
    /// Verified bytes it delivered.
    pub bytes: u64,
    /// What became of it: `serving`, `corrupt`, `stalled` or `failed: …`.
    pub outcome: String,
}

/// A listen, as it ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Listen {
    /// The play session.
    pub session: u64,
    /// The track.
    pub track: ContentHash,
    /// The release it was played from (whose artist its receipt pays).
    pub release: ContentHash,
    /// Its title.
    pub title: String,
    /// Its artist's name.
    pub artist_name: String,
    /// Where playback started, in the track.
    pub from_ms: u64,
    /// From the play request to the first decoded sample handed to the sink.
    pub first_sample_ms: Option<f64>,
    /// Audio heard: handed to the sink, and no more than the node's clock measured.
    pub listened_ms: u32,
    /// How it ended.
    pub ending: Ending,
    /// The receipt signed for it (JSON line), if anything was heard.
    pub receipt: Option<String>,
    /// Whether the track was already here (no fetching).
    pub local: bool,
    /// Who served it, when fetched.
    pub shares: Vec<Share>,
    /// Times playback, reading straight on, had to wait for data.
    pub underruns: u32,
}

/// A release as the catalog lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogEntry {
    /// The release id.
    pub release: ContentHash,
    /// The artist's key.
    pub artist: PublicKey,
    /// The artist's name.
    pub artist_name: String,
    /// The release's title.
    pub title: String,
    /// Its tracks: number, title, hash, length.
    pub tracks: Vec<CatalogTrack>,
}

/// A track as the catalog lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogTrack {
    /// Position on the release.
    pub number: u16,
    /// Title.
    pub title: String,
    /// Content id.
    pub hash: ContentHash,
    /// Playing time.
    pub duration_ms: u32,
    /// Releases of other artists that list the same content (a dispute kept as evidence for
    /// the month's review): play this track as `RELEASE/NUMBER`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also_listed_by: Vec<ContentHash>,
}

impl From<&SignedManifest> for CatalogEntry {
    fn from(m: &SignedManifest) -> Self {
        Self {
            release: m.id(),
            artist: m.manifest.artist,
            artist_name: m.manifest.artist_name.clone(),
            title: m.manifest.title.clone(),
            tracks: m
                .manifest
                .tracks
                .iter()
                .map(|t| CatalogTrack {
                    number: t.number,
                    title: t.title.clone(),
                    hash: t.hash,
                    duration_ms: t.duration_ms,
                    also_listed_by: Vec::new(),
                })
                .collect(),
        }
    }
}

/// What a node is and holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// The node's key (also its libp2p PeerId and iroh EndpointId).
    pub node: PublicKey,
    /// libp2p addresses, with `/p2p/<peer id>`: give one to another node's `--peer`.
    pub addrs: Vec<String>,
    /// The iroh endpoint's socket addresses.
    pub iroh: Vec<SocketAddr>,
    /// Connected peers.
    pub peers: usize,
    /// Releases in the catalog.
    pub releases: usize,
    /// Receipts held for the months served.
    pub receipts: usize,
    /// Tracks in the cache, and their bytes.
    pub cached_tracks: usize,
    /// Bytes of cached tracks.
    pub cached_bytes: u64,
}

struct Session {
    stop: Arc<AtomicBool>,
    /// What was asked for, as `RELEASE/NUMBER` (a seek plays the same release's track).
    query: String,
    sink: SinkSpec,
    done: watch::Receiver<Option<Listen>>,
}

#[derive(Default)]
struct Player {
    next: u64,
    current: Option<u64>,
    sessions: BTreeMap<u64, Session>,
}

/// Sessions kept for their results.
const KEEP_SESSIONS: usize = 64;
/// How often a fetch under way looks for providers again: a crowd that starts a new release
/// at once finds only its artist's node, and each listener that has the track announces it.
const PROVIDERS_AGAIN: Duration = Duration::from_secs(5);
/// Provider announcements under way at once when publishing or re-announcing.
const ANNOUNCING: usize = 32;

/// A running node; share it as `Arc<Node>`.
pub struct Node {
    library: Library,
    transfer: Transfer,
    net: net::Client,
    key: Keypair,
    receipts: Receipts,
    clock: Clock,
    closing: AtomicBool,
    months: Mutex<Vec<Month>>,
    cache_limit: u64,
    fetch: fetch::Options,
    player: Mutex<Player>,
    review: Arc<crate::review::Review>,
    /// Months whose renewal the home node kept for its operator or turned down.
    renewals_asked: Mutex<BTreeSet<Month>>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Node({})", self.key.public())
    }
}

/// How long before a month ends a standing order asks for the next.
const RENEW_BEFORE_MS: u64 = 2 * 86_400_000;

/// The stored identity `name`, or a new one made by `make` and stored.
fn identity(store: &Store, name: &str, make: impl FnOnce() -> Secret) -> Result<Secret, Error> {
    if let Some(secret) = store.secret(name)? {
        return Ok(secret);
    }
    let secret = make();
    store.put_secret(name, &secret)?;
    Ok(secret)
}

impl Node {
    /// Opens the data directory, loads (or creates) the identities, and starts the endpoint
    /// and the network.
    pub async fn start(config: Config) -> Result<Arc<Self>, Error> {
        let library = Library::open(&config.data_dir).await?;
        let store = library.store().clone();
        let seed = config.seed;
        let derived = |label: &str| {
            seed.map(|s| *blake3::keyed_hash(&s, label.as_bytes()).as_bytes())
                .unwrap_or_else(rand::random)
        };
        let key = match identity(&store, "node", || {
            Secret::Node(Keypair::from_seed(derived("9ten/node")))
        })? {
            Secret::Node(k) => k,
            other => {
                return Err(Error::Identity(format!(
                    "the stored node secret is a {} key",
                    other.kind()
                )));
            }
        };
        let listener = match identity(&store, "listener", || {
            Secret::Listener(ListenerSecret::from_bytes(derived("9ten/listener")))
        })? {
            Secret::Listener(l) => l,
            other => {
                return Err(Error::Identity(format!(
                    "the stored listener secret is a {} key",
                    other.kind()
                )));
            }
        };
        let clock = config.clock.clone();
        let now =
            Month::containing(clock.now_ms()).ok_or(ReceiptError::OutOfTime(clock.now_ms()))?;
        let previous = Month::containing(now.bounds_ms().0.saturating_sub(1)).unwrap_or(now);
        let months = if previous == now {
            vec![now]
        } else {
            vec![previous, now]
        };

        let transfer = Transfer::start(key.seed(), config.iroh, &library).await?;
        let net_config = net::Config {
            listen: config.listen,
            peers: config.peers,
            months: months.clone(),
            sync_interval: config.sync_interval,
            iroh: transfer.addr().ip_addrs().next().copied(),
            clock: clock.clone(),
            home: config.operator.as_ref().map(|o| o.policy),
        };
        let record = config
            .operator
            .as_ref()
            .map(|o| crate::home::node_record(&store, &key, o, now))
            .transpose()?;
        let (net, network) = net::new(key.seed(), net_config, store)?;
        tokio::spawn(network.run());
        // Ready once the swarm listens (its address is what peers are given).
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let addrs = net.listen_addrs().await?;
            if !addrs.is_empty() {
                break;
            }
            if Instant::now() > deadline {
                return Err(Error::Net(net::Error::Start(
                    "the network found no address to listen on".into(),
                )));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        if let Some(record) = record {
            net.publish_node_record(record).await?;
        }
        let receipts = Receipts::new(library.store().clone(), listener.clone(), clock.clone());
        let review = Arc::new(crate::review::Review::new(
            library.store().clone(),
            net.clone(),
            clock.clone(),
            key.clone(),
            config.review,
        ));
        let node = Arc::new(Self {
            library,
            transfer,
            net,
            key,
            receipts,
            clock,
            closing: AtomicBool::new(false),
            months: Mutex::new(months),
            cache_limit: config.cache_limit,
            fetch: config.fetch,
            player: Mutex::new(Player::default()),
            review: review.clone(),
            renewals_asked: Mutex::new(BTreeSet::new()),
        });
        // The node's turn on the calendar, one at a time until the node goes: into a new
        // month, serve its receipts' topic; renew a standing order; the month's review.
        let weak = Arc::downgrade(&node);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(review.interval());
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(node) = weak.upgrade() else { break };
                if node.closing.load(Ordering::Relaxed) {
                    break;
                }
                if let Some(month) = Month::containing(node.clock.now_ms())
                    && let Err(e) = node.serve_month(month).await
                {
                    warn!("cannot serve {month}'s receipts: {e}");
                }
                if let Err(e) = node.renew().await {
                    warn!("the standing order could not renew: {e}");
                }
                if let Err(e) = review.step().await {
                    warn!("the month's review stopped a turn: {e}");
                }
            }
        });
        // In the background: each announcement waits for its DHT query, and a node holding
        // thousands of tracks must not wait for them all before it starts.
        let announcing = node.clone();
        tokio::spawn(async move { announcing.announce().await });
        info!(node = %node.key.public(), "node started");
        Ok(node)
    }

    /// Re-announces what this node holds: every complete track (own releases and cache).
    async fn announce(&self) {
        let releases = self.library.releases().unwrap_or_default();
        let blobs = releases
            .iter()
            .flat_map(|r| &r.manifest.tracks)
            .flat_map(|t| [t.hash, t.index]);
        futures::stream::iter(blobs)
            .for_each_concurrent(ANNOUNCING, |blob| async move {
                if self.library.has_blob(&blob).await.unwrap_or(false) {
                    let _ = self.net.provide(blob).await;
                }
            })
            .await;
    }

    /// The node's key.
    pub fn key(&self) -> PublicKey {
        self.key.public()
    }

    /// The listener's key for `month`.
    pub fn listener_key(&self, month: Month) -> PublicKey {
        self.receipts.listener_key(month)
    }

    /// The clock the node reads.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The network client.
    pub fn net(&self) -> &net::Client {
        &self.net
    }

    /// The library.
    pub fn library(&self) -> &Library {
        &self.library
    }

    /// The months whose receipts this node gossips and reconciles.
    pub fn months(&self) -> Vec<Month> {
        self.months
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// What the node is and holds.
    pub async fn status(&self) -> Result<Status, Error> {
        let mut receipts = 0;
        for m in &self.months() {
            receipts += self.net.held(*m).await?;
        }
        let cached = self.library.store().cached()?;
        Ok(Status {
            node: self.key.public(),
            addrs: self
                .net
                .listen_addrs()
                .await?
                .iter()
                .map(|a| a.to_string())
                .collect(),
            iroh: self.transfer.addr().ip_addrs().copied().collect(),
            peers: self.net.peers().await?.len(),
            releases: self.library.releases()?.len(),
            receipts,
            cached_tracks: cached.len(),
            cached_bytes: cached.iter().map(|e| e.size).sum(),
        })
    }

    /// Stores a release prepared elsewhere (after checking the artist's signature).
    pub async fn add_release(&self, release: &PreparedRelease) -> Result<ContentHash, Error> {
        if !nineten_protocol::signature::verify_record(&release.manifest) {
            return Err(Error::Manifest(nineten_protocol::FieldError::new(
                "sig",
                "the artist's signature does not verify",
            )));
        }
        self.library.add_release(release).await
    }

    /// Publishes a release stored here (by id or the start of it): provides every track and
    /// seek index in the DHT and gossips the manifest on the catalog topic.
    pub async fn publish(&self, release: &str) -> Result<CatalogEntry, Error> {
        let manifest = self.library.find_release(release)?;
        let blobs: Vec<ContentHash> = manifest
            .manifest
            .tracks
            .iter()
            .flat_map(|t| [t.hash, t.index])
            .collect();
        for blob in &blobs {
            if !self.library.has_blob(blob).await? {
                return Err(Error::UnknownTrack(format!(
                    "{blob} (the release's blobs are not all here)"
                )));
            }
        }
        // Announced before the release is gossiped, so whoever hears of it can find it.
        futures::stream::iter(blobs)
            .map(|blob| self.net.provide(blob))
            .buffer_unordered(ANNOUNCING)
            .try_collect::<()>()
            .await?;
        self.net.publish_release(manifest.clone()).await?;
        Ok(CatalogEntry::from(&manifest))
    }

    /// Every release the node knows, by artist then title; a track that releases of other
    /// artists list too names them (`also_listed_by`).
    pub fn catalog(&self) -> Result<Vec<CatalogEntry>, Error> {
        let releases = self.library.releases()?;
        let mut listed: BTreeMap<ContentHash, Vec<(ContentHash, PublicKey)>> = BTreeMap::new();
        for r in &releases {
            for t in &r.manifest.tracks {
                listed
                    .entry(t.hash)
                    .or_default()
                    .push((r.id(), r.manifest.artist));
            }
        }
        let mut entries: Vec<CatalogEntry> = releases.iter().map(CatalogEntry::from).collect();
        for e in &mut entries {
            for t in &mut e.tracks {
                t.also_listed_by = listed[&t.hash]
                    .iter()
                    .filter(|(_, artist)| *artist != e.artist)
                    .map(|(release, _)| *release)
                    .collect();
            }
        }
        entries.sort_by(|a, b| {
            (a.artist_name.to_lowercase(), a.title.to_lowercase())
                .cmp(&(b.artist_name.to_lowercase(), b.title.to_lowercase()))
        });
        Ok(entries)
    }

    /// Releases whose artist, title or a track title contains every word of `text` (case
    /// ignored); a matching release lists only its matching tracks unless the release itself
    /// matched.
    pub fn search(&self, text: &str) -> Result<Vec<CatalogEntry>, Error> {
        let words: Vec<String> = text.split_whitespace().map(str::to_lowercase).collect();
        let matches = |hay: &str| {
            let hay = hay.to_lowercase();
            words.iter().all(|w| hay.contains(w.as_str()))
        };
        Ok(self
            .catalog()?
            .into_iter()
            .filter_map(|mut e| {
                let release = format!("{} {}", e.artist_name, e.title);
                if matches(&release) {
                    return Some(e);
                }
                e.tracks
                    .retain(|t| matches(&format!("{release} {}", t.title)));
                (!e.tracks.is_empty()).then_some(e)
            })
            .collect())
    }

    fn lock_player(&self) -> MutexGuard<'_, Player> {
        self.player.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts playing a track from `from_ms`, stopping what is playing (a skip). `query` is
    /// `RELEASE/NUMBER` or a track's hash (or the start of it; see [`Library::find_track`]):
    /// the release it is played from names the artist its receipt pays. Returns the session
    /// once playback is under way; its [`Listen`] comes from [`Node::wait`].
    pub async fn play(
        self: &Arc<Self>,
        query: &str,
        from_ms: u64,
        sink: SinkSpec,
    ) -> Result<u64, Error> {
        if self.closing.load(Ordering::Relaxed) {
            return Err(Error::ShuttingDown);
        }
        let started = Instant::now();
        let found = self.library.find_track(query)?;
        let current = self.lock_player().current;
        if let Some(current) = current {
            self.stop_session(current).await;
        }
        let track = found.track.clone();
        let local = self.library.has_blob(&track.hash).await?
            && self.library.has_blob(&track.index).await?;
        let fetch = if local {
            None
        } else {
            let providers = self.net.providers(track.hash).await?;
            let providers = self.transfer.rank(providers);
            debug!(track = %track.hash, providers = providers.len(), after = ?started.elapsed(), "providers found");
            if providers.is_empty() {
                return Err(Error::NoProviders(track.hash.to_string()));
            }
            cache::admit(&self.library, &track).await?;
            let stream = Fetch::start(
                &self.transfer,
                iroh_blobs::Hash::from(track.hash.0),
                track.size,
                providers.clone(),
                self.fetch,
            )
            .await;
            let stream = Arc::new(stream);
            // The first answer of the DHT may name one provider; the whole lookup adds the
            // others while the track streams, and is made again every few seconds until the
            // track is in, for the listeners that got it meanwhile.
            let (net, transfer) = (self.net.clone(), self.transfer.clone());
            let more = Arc::downgrade(&stream);
            tokio::spawn(async move {
                loop {
                    let all = net.all_providers(track.hash).await.unwrap_or_default();
                    // Only while the listen (and so its fetch) goes on.
                    let Some(fetch) = more.upgrade() else { break };
                    for p in transfer.rank(all) {
                        fetch.add_provider(p);
                    }
                    if fetch.report().complete {
                        break;
                    }
                    drop(fetch);
                    tokio::time::sleep(PROVIDERS_AGAIN).await;
                }
            });
            self.transfer
                .fetch(&providers, &track.index, MAX_INDEX_BYTES, INDEX_DEADLINE)
                .await?;
            debug!(track = %track.hash, after = ?started.elapsed(), "seek index fetched");
            Some(stream)
        };
        let index = self.library.seek_index(&track).await?;
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, done) = watch::channel(None);
        let session = {
            let mut player = self.lock_player();
            let session = player.next;
            player.next += 1;
            player.current = Some(session);
            player.sessions.insert(
                session,
                Session {
                    stop: stop.clone(),
                    query: format!("{}/{}", found.release.id(), track.number),
                    sink: sink.clone(),
                    done,
                },
            );
            while player.sessions.len() > KEEP_SESSIONS {
                player.sessions.pop_first();
            }
            session
        };
        // A shutdown that began meanwhile has looked at the sessions already: end this one.
        if self.closing.load(Ordering::Relaxed) {
            stop.store(true, Ordering::Relaxed);
        }
        let node = self.clone();
        tokio::spawn(async move {
            let listen = node
                .run_session(session, found, from_ms, sink, index, fetch, stop, started)
                .await;
            {
                let mut player = node.lock_player();
                if player.current == Some(session) {
                    player.current = None;
                }
            }
            let _ = tx.send(Some(listen));
        });
        Ok(session)
    }

    #[allow(clippy::too_many_arguments)]
    async fn run_session(
        &self,
        session: u64,
        found: TrackRef,
        from_ms: u64,
        sink: SinkSpec,
        index: crate::audio::seek::SeekIndex,
        fetch: Option<Arc<Fetch>>,
        stop: Arc<AtomicBool>,
        started: Instant,
    ) -> Listen {
        let track = found.track.clone();
        let mut reader: Box<dyn ReadSeek> = match &fetch {
            Some(f) => Box::new(std::io::BufReader::with_capacity(
                16 * 1024,
                f.reader(self.library.blob_reader(&track.hash)),
            )),
            None => Box::new(self.library.reader(&track)),
        };
        let started_at_ms = self.clock.now_ms();
        let clock = self.clock.clone();
        let playing = tokio::task::spawn_blocking(move || {
            let mut out = Watched {
                inner: None,
                pace: sink.pace().map(|speed| Pace {
                    clock,
                    speed,
                    origin_ms: None,
                }),
                stop,
                started,
                first: None,
                samples: 0,
                channels: 1,
            };
            // The stream's own head says how many channels it has (the manifest may differ).
            let mut channels = 1u64;
            let result = ogg::read_head(&mut reader).and_then(|head| {
                channels = u64::from(head.channels.max(1));
                out.channels = channels;
                out.inner = Some(sink.open(u16::from(head.channels))?);
                playback::decode(reader, &head, &index, from_ms, &mut |s| out.write(s))
            });
            let finished = out.inner.take().map(|s| s.finish());
            let ending = match (result, finished) {
                (Err(AudioError::Stopped), _) => Ending::Stopped,
                (Err(e), _) | (Ok(_), Some(Err(e))) => Ending::Failed(e.to_string()),
                (Ok(_), _) => Ending::End,
            };
            (ending, out.first, out.samples / channels)
        })
        .await;
        let (ending, first, frames) =
            playing.unwrap_or_else(|e| (Ending::Failed(e.to_string()), None, 0));
        let decoded_ms = u32::try_from(frames * 1000 / u64::from(OPUS_RATE)).unwrap_or(u32::MAX);

        let heard = Heard {
            track: &found,
            started_at_ms,
            listened_ms: decoded_ms,
        };
        let (receipt, listened_ms) = match self.receipts.record(heard).await {
            Ok(r) => {
                self.gossip(r).await;
                (Some(r.to_json()), r.receipt.listened_ms)
            }
            Err(ReceiptError::NothingHeard) => (None, 0),
            Err(e) => {
                warn!("could not sign the receipt of a listen: {e}");
                (None, 0)
            }
        };

        // A listen that reached the end lets the fetch complete the track.
        let report = match &fetch {
            Some(f) if ending == Ending::End => Some(
                tokio::time::timeout(Duration::from_secs(10), f.finished())
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .unwrap_or_else(|| f.report()),
            ),
            Some(f) => Some(f.report()),
            None => None,
        };
        // Fetched now, or earlier and played again from the cache.
        let in_cache = report.is_some()
            || self
                .library
                .store()
                .cached()
                .is_ok_and(|c| c.iter().any(|e| e.blob == track.hash));
        if in_cache {
            let complete = match &report {
                Some(r) => r.complete,
                None => true,
            };
            let kept = cache::played(
                &self.library,
                &self.net,
                &track,
                complete,
                self.cache_limit,
                self.clock.now_ms(),
            )
            .await;
            if let Err(e) = kept {
                warn!("cache bookkeeping failed: {e}");
            }
        }
        let (shares, underruns) = match report {
            Some(report) => {
                let shares = report
                    .providers
                    .iter()
                    .map(|p| Share {
                        node: PublicKey(*p.id.as_bytes()),
                        bytes: p.bytes,
                        outcome: match &p.outcome {
                            Outcome::Serving => "serving".to_string(),
                            Outcome::Corrupt => "corrupt".to_string(),
                            Outcome::Stalled => "stalled".to_string(),
                            Outcome::Failed(e) => format!("failed: {e}"),
                        },
                    })
                    .collect();
                (shares, report.underruns)
            }
            None => (Vec::new(), 0),
        };
        Listen {
            session,
            track: track.hash,
            release: found.release.id(),
            title: track.title.clone(),
            artist_name: found.release.manifest.artist_name.clone(),
            from_ms,
            first_sample_ms: first.map(|d| d.as_secs_f64() * 1000.0),
            listened_ms,
            ending,
            receipt,
            local: fetch.is_none(),
            shares,
            underruns,
        }
    }

    /// Gossips and reconciles `month`'s receipts from now on (a node running into a new
    /// month).
    async fn serve_month(&self, month: Month) -> Result<(), Error> {
        if self.months().contains(&month) {
            return Ok(());
        }
        self.net.serve_month(month).await?;
        let mut months = self.months.lock().unwrap_or_else(|p| p.into_inner());
        if !months.contains(&month) {
            months.push(month);
        }
        Ok(())
    }

    /// Gossips a receipt this node signed and stored. A failure loses nothing: the receipt
    /// is stored, and reconciliation hands it to peers later.
    async fn gossip(&self, receipt: SignedReceipt) {
        let Some(month) = Month::containing(receipt.receipt.started_at_ms) else {
            return;
        };
        let published = match self.serve_month(month).await {
            Ok(()) => self.net.publish(receipt).await.map_err(Error::from),
            Err(e) => Err(e),
        };
        if let Err(Error::Net(net::Error::Unsubscribed)) = published {
            // No subscription (or its home node is not in the directory yet): it counts for
            // nothing, and stays here.
            debug!(
                seq = receipt.receipt.seq,
                "a receipt kept here: {}",
                net::Error::Unsubscribed
            );
        } else if let Err(e) = published {
            warn!(
                seq = receipt.receipt.seq,
                "a stored receipt was not gossiped: {e}"
            );
        }
    }

    /// Asks the home node `home` to subscribe this listener's key for the current month; a
    /// subscription it signs is stored, then gossiped, before this returns. With
    /// `auto_renew` the node keeps a standing order and renews each month (see [`Self::renew`]).
    pub async fn subscribe(
        &self,
        home: PublicKey,
        payment_ref: &str,
        auto_renew: bool,
    ) -> Result<net::subscribe::Outcome, Error> {
        let month = Month::containing(self.clock.now_ms())
            .ok_or(ReceiptError::OutOfTime(self.clock.now_ms()))?;
        let checked = nineten_protocol::subscription::PaymentRef::new(payment_ref)?;
        if auto_renew {
            let order = StandingOrder {
                home,
                payment_ref: payment_ref.to_string(),
            };
            self.library.store().set_standing_order(Some(&order))?;
        }
        self.subscribe_for(home, month, checked).await
    }

    /// Asks `home` to subscribe this listener's key for `month`: a renewal, signed by the key
    /// of the month before too, when that key was subscribed through the same home node, so
    /// that its carry moves to the new key.
    async fn subscribe_for(
        &self,
        home: PublicKey,
        month: Month,
        payment_ref: nineten_protocol::subscription::PaymentRef,
    ) -> Result<net::subscribe::Outcome, Error> {
        let store = self.library.store();
        let key = self.receipts.month_keypair(month);
        let mut previous = None;
        if let Some(before) = month.previous()
            && crate::home::home_of(store, &self.listener_key(before), before)? == home
        {
            previous = Some(self.receipts.month_keypair(before));
        }
        let request =
            net::subscribe::Request::new(&home, &key, month, payment_ref, previous.as_ref());
        let outcome = self.net.subscribe(home, request).await?;
        if let net::subscribe::Outcome::Subscribed(s) = &outcome {
            // Durable first: the receipts signed from now on name this home node.
            let (store, stored) = (store.clone(), s.clone());
            tokio::task::spawn_blocking(move || store.put_subscriptions(&[stored]))
                .await
                .map_err(ReceiptError::Task)??;
            self.net.publish_subscription(s.clone()).await?;
        }
        Ok(outcome)
    }

    /// One turn of the standing order, if this listener has one: in the last two days of a
    /// month it asks for the next, and a month that began without a subscription asks for
    /// it. A request its home node keeps for the operator, or turns down, is not repeated
    /// until the node restarts.
    pub async fn renew(&self) -> Result<(), Error> {
        let Some(order) = self.library.store().standing_order()? else {
            return Ok(());
        };
        let now = self.clock.now_ms();
        let Some(month) = Month::containing(now) else {
            return Ok(());
        };
        let ending = now + RENEW_BEFORE_MS >= month.bounds_ms().1;
        let due = [Some(month), month.next().filter(|_| ending)];
        for m in due.into_iter().flatten() {
            let store = self.library.store();
            if crate::home::home_of(store, &self.listener_key(m), m)? != NO_HOME_NODE
                || self.asked_renewals().contains(&m)
            {
                continue;
            }
            let payment_ref = nineten_protocol::subscription::PaymentRef::new(&order.payment_ref)?;
            match self.subscribe_for(order.home, m, payment_ref).await? {
                net::subscribe::Outcome::Subscribed(_) => info!(month = %m, "renewed"),
                net::subscribe::Outcome::Pending => {
                    info!(month = %m, "renewal waits for the home node's operator");
                    self.asked_renewals().insert(m);
                }
                net::subscribe::Outcome::Rejected(why) => {
                    warn!(month = %m, "the home node turned the renewal down: {why}");
                    self.asked_renewals().insert(m);
                }
            }
        }
        Ok(())
    }

    fn asked_renewals(&self) -> MutexGuard<'_, BTreeSet<Month>> {
        self.renewals_asked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Ends the standing order; the subscriptions signed stay. False when there was none.
    pub fn cancel_renewal(&self) -> Result<Option<StandingOrder>, Error> {
        let store = self.library.store();
        let order = store.standing_order()?;
        store.set_standing_order(None)?;
        Ok(order)
    }

    /// This listener's standing order, if any.
    pub fn standing_order(&self) -> Result<Option<StandingOrder>, Error> {
        Ok(self.library.store().standing_order()?)
    }

    /// The node records held: the directory as this node knows it, newest record per node.
    pub fn nodes(&self) -> Result<Vec<nineten_protocol::node_record::SignedNodeRecord>, Error> {
        let month = Month::containing(self.clock.now_ms())
            .ok_or(ReceiptError::OutOfTime(self.clock.now_ms()))?;
        let records = self.library.store().node_records()?;
        let next = month.next().unwrap_or(month);
        let directory = nineten_protocol::directory::Directory::for_month(next, &records);
        Ok(directory.records().cloned().collect())
    }

    /// This listener's subscriptions of the current and the next month, and, on a home node,
    /// those it signed of those months.
    pub fn subscriptions(
        &self,
    ) -> Result<Vec<nineten_protocol::subscription::SignedSubscription>, Error> {
        let store = self.library.store();
        let month = Month::containing(self.clock.now_ms())
            .ok_or(ReceiptError::OutOfTime(self.clock.now_ms()))?;
        let mut out = Vec::new();
        for m in [Some(month), month.next()].into_iter().flatten() {
            out.extend(store.subscriptions_of_month(m)?.into_iter().filter(|s| {
                s.subscription.home_node == self.key.public()
                    || s.subscription.listener == self.listener_key(m)
            }));
        }
        Ok(out)
    }

    /// The subscription requests waiting for this home node's operator.
    pub fn pending(&self) -> Result<Vec<crate::home::Pending>, Error> {
        crate::home::pending(self.library.store())
    }

    /// Approves (signs, stores and gossips) or rejects a pending request.
    pub async fn decide(
        &self,
        id: &str,
        approve: bool,
    ) -> Result<Option<nineten_protocol::subscription::SignedSubscription>, Error> {
        let signed = crate::home::decide(self.library.store(), &self.key, id, approve)?;
        if let Some(s) = &signed {
            self.net.publish_subscription(s.clone()).await?;
        }
        Ok(signed)
    }

    /// The review status of every home node's `month` this node knows.
    pub fn month_status(&self, month: Month) -> Result<Vec<crate::review::Status>, Error> {
        self.review.status(month)
    }

    /// The export of `home`'s `month` (the folder of `review.md`, as files) and its tally.
    pub async fn month_export(
        &self,
        home: PublicKey,
        month: Month,
    ) -> Result<
        (
            nineten_protocol::audit::MonthRecords,
            nineten_protocol::tally::Tally,
        ),
        Error,
    > {
        self.review.export(home, month).await
    }

    /// This listener's `month`, checked against its home node's verified tally.
    pub async fn month_mine(&self, month: Month) -> Result<crate::review::mine::Mine, Error> {
        self.review.mine(month, &|m| self.listener_key(m)).await
    }

    /// An artist's earnings per month and home node: stated by payout statements, or
    /// estimated while the month is open or under review.
    pub async fn earnings(
        &self,
        artist: PublicKey,
    ) -> Result<Vec<crate::review::earnings::Earning>, Error> {
        self.review.earnings(artist).await
    }

    /// Every dispute of the months under review, newest month first.
    pub fn disputes(&self) -> Result<Vec<crate::review::DisputeEntry>, Error> {
        self.review.disputes()
    }

    /// One dispute, with its evidence and this node's findings.
    pub async fn dispute(&self, id: &str) -> Result<crate::review::DisputeDetail, Error> {
        self.review.show_dispute(id).await
    }

    /// The operator's verdict on a suspect dispute this node arbitrates.
    pub async fn decide_dispute(
        &self,
        id: &str,
        exclude: bool,
    ) -> Result<crate::review::DisputeEntry, Error> {
        self.review.decide_suspect(id, exclude).await
    }

    /// This home node's daily report of `day` and its detailed day, opened.
    pub fn day(
        &self,
        day: nineten_protocol::daily::Day,
    ) -> Result<
        (
            nineten_protocol::daily::SignedDailyReport,
            crate::review::daily::DayDetail,
        ),
        Error,
    > {
        self.review.day(day)
    }

    /// Waits for a session's listen to end.
    pub async fn wait(&self, session: u64) -> Result<Listen, Error> {
        let done = self
            .lock_player()
            .sessions
            .get(&session)
            .map(|s| s.done.clone());
        let mut done = done.ok_or(Error::UnknownSession(session))?;
        loop {
            if let Some(listen) = done.borrow_and_update().clone() {
                return Ok(listen);
            }
            if done.changed().await.is_err() {
                return Err(Error::UnknownSession(session));
            }
        }
    }

    async fn stop_session(&self, session: u64) -> Option<Listen> {
        if let Some(s) = self.lock_player().sessions.get(&session) {
            s.stop.store(true, Ordering::Relaxed);
        }
        self.wait(session).await.ok()
    }

    /// Stops what is playing; returns its listen (none if nothing was playing).
    pub async fn stop(&self) -> Option<Listen> {
        let current = self.lock_player().current?;
        self.stop_session(current).await
    }

    /// Seeks what is playing to `to_ms`: the listen so far ends (and gets its receipt) and a
    /// new one starts there, of the same release's track. Returns the new session.
    pub async fn seek(self: &Arc<Self>, to_ms: u64) -> Result<u64, Error> {
        let (query, sink) = {
            let player = self.lock_player();
            let current = player.current.and_then(|c| player.sessions.get(&c));
            let current = current.ok_or(Error::NothingPlaying)?;
            (current.query.clone(), current.sink.clone())
        };
        self.play(&query, to_ms, sink).await
    }

    /// Writes a track's Ogg Opus stream (held here) to `path`; returns its title and size.
    pub async fn export(
        &self,
        query: &str,
        path: &std::path::Path,
    ) -> Result<(String, u64), Error> {
        let found = self.library.find_track(query)?;
        let size = self.library.export(&found.track, path).await?;
        Ok((found.track.title, size))
    }

    /// A listener's receipts, found through the DHT (as a reviewer finds them).
    pub async fn listener_receipts(
        &self,
        listener: PublicKey,
    ) -> Result<Vec<SignedReceipt>, Error> {
        if let Ok(mine) = self.library.store().receipts_of_listener(&listener)
            && !mine.is_empty()
        {
            return Ok(mine);
        }
        Ok(self.net.listener_receipts(listener).await?)
    }

    /// Stops the node: refuses new plays, ends every listen under way and waits for each to
    /// end (so each gets its receipt, stored), then stops the network and the endpoint.
    pub async fn shutdown(&self) -> Result<(), Error> {
        self.closing.store(true, Ordering::Relaxed);
        let sessions: Vec<u64> = {
            let player = self.lock_player();
            for s in player.sessions.values() {
                s.stop.store(true, Ordering::Relaxed);
            }
            player.sessions.keys().copied().collect()
        };
        for session in sessions {
            let _ = self.wait(session).await;
        }
        self.net.shutdown().await;
        self.transfer.shutdown().await
    }
}

/// Largest seek index fetched: 86,400 entries (one a second for a day, the most
/// [`crate::audio::seek::SeekIndex`] reads) and its header.
pub const MAX_INDEX_BYTES: u64 = 27 + 86_400 * 16;

/// How long one provider may take to deliver a seek index before the next is asked.
pub const INDEX_DEADLINE: Duration = Duration::from_secs(5);

/// What the decoder reads.
trait ReadSeek: std::io::Read + std::io::Seek + Send {}
impl<T: std::io::Read + std::io::Seek + Send> ReadSeek for T {}

/// A clocked sink's pace: samples go out no faster than the clock moves.
struct Pace {
    clock: Clock,
    speed: u32,
    /// The clock when the first sample went out.
    origin_ms: Option<u64>,
}

/// A sink that notes the first sample's time, counts samples, keeps a clocked sink's pace and
/// answers a stop.
struct Watched {
    inner: Option<Box<dyn Sink>>,
    pace: Option<Pace>,
    stop: Arc<AtomicBool>,
    started: Instant,
    first: Option<Duration>,
    samples: u64,
    channels: u64,
}

impl Watched {
    fn write(&mut self, samples: &[f32]) -> Result<(), AudioError> {
        if self.stop.load(Ordering::Relaxed) {
            return Err(AudioError::Stopped);
        }
        if let Some(pace) = &mut self.pace {
            // Due once the clock has moved as far as the audio that went out before.
            let origin = *pace.origin_ms.get_or_insert_with(|| pace.clock.now_ms());
            let played_ms = self.samples / self.channels * 1000 / u64::from(OPUS_RATE);
            let due = origin + played_ms / u64::from(pace.speed);
            if !pace.clock.wait_until(due, &self.stop) {
                return Err(AudioError::Stopped);
            }
        }
        self.first.get_or_insert_with(|| self.started.elapsed());
        self.samples += samples.len() as u64;
        match &mut self.inner {
            Some(s) => s.write(samples),
            None => Ok(()),
        }
    }
}
