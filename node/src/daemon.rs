//! A running node: the library, the iroh endpoint, the libp2p network and the player, with the
//! node's identity and its listener's. `9ten node run` keeps one alive behind the control API
//! ([`crate::control`]); testnets start many in one process.
//!
//! Playing a track: find it in the catalog; if its blobs are not here, find providers in the
//! DHT, fetch the seek index and stream the track from all of them at once ([`crate::fetch`]),
//! playing while fetching. When the listen ends (at the track's end, or on stop, skip or seek)
//! the node signs a receipt with the listener's key for the month, stores it and gossips it.
//! A fetched track joins the cache ([`crate::cache`]) and, once complete, is provided to others.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use libp2p::Multiaddr;
use nineten_protocol::identity::{Keypair, ListenerSecret, Secret};
use nineten_protocol::key::{ContentHash, PublicKey};
use nineten_protocol::manifest::SignedManifest;
use nineten_protocol::month::Month;
use nineten_protocol::receipt::{NO_HOME_NODE, Receipt, SignedReceipt};
use nineten_storage::Store;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::audio::sink::{ClockedSink, DeviceSink, NullSink, Sink, WavSink};
use crate::audio::{AudioError, playback};
use crate::config::DataDir;
use crate::fetch::{self, Fetch, Outcome};
use crate::import::PreparedRelease;
use crate::library::{Library, TrackRef};
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
        }
    }
}

/// Where playback goes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SinkSpec {
    /// Discarded (no clock: plays as fast as it decodes).
    Null,
    /// The default sound device.
    Device,
    /// A WAV file.
    Wav(PathBuf),
    /// Discarded, but at `speed` times real time (a listener simulated without sound).
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
            Self::Clocked { speed } => Box::new(ClockedSink::new(channels, *speed)),
        })
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
    /// Its title.
    pub title: String,
    /// Its artist's name.
    pub artist_name: String,
    /// Where playback started, in the track.
    pub from_ms: u64,
    /// From the play request to the first decoded sample handed to the sink.
    pub first_sample_ms: Option<f64>,
    /// Audio handed to the sink.
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
    track: ContentHash,
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

/// A running node; share it as `Arc<Node>`.
pub struct Node {
    library: Library,
    transfer: Transfer,
    net: net::Client,
    key: Keypair,
    listener: ListenerSecret,
    months: Mutex<Vec<Month>>,
    cache_limit: u64,
    fetch: fetch::Options,
    player: Mutex<Player>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Node({})", self.key.public())
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

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
        let now = Month::containing(now_ms())
            .ok_or_else(|| Error::Identity("the system clock is past 9999-12".to_string()))?;
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
        };
        let (net, network) =
            net::new(key.seed(), net_config, store).map_err(|e| Error::Network(e.to_string()))?;
        tokio::spawn(network.run());
        // Ready once the swarm listens (its address is what peers are given).
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let addrs = net
                .listen_addrs()
                .await
                .map_err(|e| Error::Network(e.to_string()))?;
            if !addrs.is_empty() {
                break;
            }
            if Instant::now() > deadline {
                return Err(Error::Network(
                    "the network found no address to listen on".into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let node = Arc::new(Self {
            library,
            transfer,
            net,
            key,
            listener,
            months: Mutex::new(months),
            cache_limit: config.cache_limit,
            fetch: config.fetch,
            player: Mutex::new(Player::default()),
        });
        node.announce().await;
        // Into a new month: serve its receipts' topic as soon as it starts.
        let weak = Arc::downgrade(&node);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(30));
            loop {
                tick.tick().await;
                let Some(node) = weak.upgrade() else { break };
                if let Some(month) = Month::containing(now_ms())
                    && let Err(e) = node.serve_month(month).await
                {
                    warn!("cannot serve {month}'s receipts: {e}");
                }
            }
        });
        info!(node = %node.key.public(), "node started");
        Ok(node)
    }

    /// Re-announces what this node holds: every complete track (own releases and cache).
    async fn announce(&self) {
        let releases = self.library.releases().unwrap_or_default();
        for track in releases.iter().flat_map(|r| &r.manifest.tracks) {
            for blob in [track.hash, track.index] {
                if self.library.has_blob(&blob).await.unwrap_or(false) {
                    let _ = self.net.provide(blob).await;
                }
            }
        }
    }

    /// The node's key.
    pub fn key(&self) -> PublicKey {
        self.key.public()
    }

    /// The listener's key for `month`.
    pub fn listener_key(&self, month: Month) -> PublicKey {
        self.listener.month_key(month).public()
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
        let stopped = |_| Error::Network("the network task has stopped".to_string());
        let mut receipts = 0;
        for m in &self.months() {
            receipts += self.net.held(*m).await.map_err(stopped)?;
        }
        let cached = self.library.store().cached()?;
        Ok(Status {
            node: self.key.public(),
            addrs: self
                .net
                .listen_addrs()
                .await
                .map_err(stopped)?
                .iter()
                .map(|a| a.to_string())
                .collect(),
            iroh: self.transfer.addr().ip_addrs().copied().collect(),
            peers: self.net.peers().await.map_err(stopped)?.len(),
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
        let manifest = self.find_release(release)?;
        for t in &manifest.manifest.tracks {
            for blob in [t.hash, t.index] {
                if !self.library.has_blob(&blob).await? {
                    return Err(Error::UnknownTrack(format!(
                        "{blob} (the release's blobs are not all here)"
                    )));
                }
                self.net
                    .provide(blob)
                    .await
                    .map_err(|e| Error::Network(e.to_string()))?;
            }
        }
        self.net
            .publish_release(manifest.clone())
            .await
            .map_err(|e| Error::Network(e.to_string()))?;
        Ok(CatalogEntry::from(&manifest))
    }

    fn find_release(&self, query: &str) -> Result<SignedManifest, Error> {
        let query = query.to_ascii_lowercase();
        let mut found = self
            .library
            .releases()?
            .into_iter()
            .filter(|m| m.id().to_string().starts_with(&query));
        match (found.next(), found.next(), query.len() >= 4) {
            (Some(m), None, true) => Ok(m),
            (Some(_), Some(_), true) => Err(Error::AmbiguousTrack(query)),
            _ => Err(Error::UnknownRelease(query)),
        }
    }

    /// Every release the node knows, by artist then title.
    pub fn catalog(&self) -> Result<Vec<CatalogEntry>, Error> {
        let mut entries: Vec<CatalogEntry> = self
            .library
            .releases()?
            .iter()
            .map(CatalogEntry::from)
            .collect();
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

    /// Starts playing a track (its hash or the start of it) from `from_ms`, stopping what is
    /// playing (a skip). Returns the session once playback is under way; its [`Listen`] comes
    /// from [`Node::wait`].
    pub async fn play(
        self: &Arc<Self>,
        query: &str,
        from_ms: u64,
        sink: SinkSpec,
    ) -> Result<u64, Error> {
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
            let providers = self
                .net
                .providers(track.hash)
                .await
                .map_err(|e| Error::Network(e.to_string()))?;
            let providers = self.transfer.rank(providers);
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
            // others while the track streams.
            let (net, transfer) = (self.net.clone(), self.transfer.clone());
            let more = Arc::downgrade(&stream);
            tokio::spawn(async move {
                let all = net.all_providers(track.hash).await.unwrap_or_default();
                // Only while the listen (and so its fetch) goes on.
                if let Some(fetch) = more.upgrade() {
                    for p in transfer.rank(all) {
                        fetch.add_provider(p);
                    }
                }
            });
            self.transfer.fetch(&providers, &track.index).await?;
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
                    track: track.hash,
                    sink: sink.clone(),
                    done,
                },
            );
            while player.sessions.len() > KEEP_SESSIONS {
                player.sessions.pop_first();
            }
            session
        };
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
        let channels = u16::from(track.channels);
        let reader: Box<dyn ReadSeek> = match &fetch {
            Some(f) => Box::new(std::io::BufReader::with_capacity(
                16 * 1024,
                f.reader(self.library.blob_reader(&track.hash)),
            )),
            None => Box::new(self.library.reader(&track)),
        };
        let started_at_ms = now_ms();
        let playing = tokio::task::spawn_blocking(move || {
            let mut out = Watched {
                inner: None,
                stop,
                started,
                first: None,
                samples: 0,
            };
            let result = sink.open(channels).and_then(|s| {
                out.inner = Some(s);
                playback::play(reader, &index, from_ms, &mut out)
            });
            let finished = out.inner.take().map(|s| s.finish());
            let ending = match (result, finished) {
                (Err(AudioError::Stopped), _) => Ending::Stopped,
                (Err(e), _) | (Ok(_), Some(Err(e))) => Ending::Failed(e.to_string()),
                (Ok(_), _) => Ending::End,
            };
            (ending, out.first, out.samples / u64::from(channels))
        })
        .await;
        let (ending, first, frames) =
            playing.unwrap_or_else(|e| (Ending::Failed(e.to_string()), None, 0));
        let listened_ms = u32::try_from(frames * 1000 / 48_000).unwrap_or(u32::MAX);

        let receipt = if listened_ms > 0 {
            match self.sign_receipt(&found, started_at_ms, listened_ms).await {
                Ok(r) => Some(r.to_json()),
                Err(e) => {
                    warn!("could not sign the receipt of a listen: {e}");
                    None
                }
            }
        } else {
            None
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
                now_ms(),
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
        self.net
            .serve_month(month)
            .await
            .map_err(|e| Error::Network(e.to_string()))?;
        let mut months = self.months.lock().unwrap_or_else(|p| p.into_inner());
        if !months.contains(&month) {
            months.push(month);
        }
        Ok(())
    }

    /// Signs, stores and gossips the receipt of a listen.
    async fn sign_receipt(
        &self,
        found: &TrackRef,
        started_at_ms: u64,
        listened_ms: u32,
    ) -> Result<SignedReceipt, Error> {
        let month = Month::containing(started_at_ms)
            .ok_or_else(|| Error::Identity("the system clock is past 9999-12".to_string()))?;
        self.serve_month(month).await?;
        let key = self.listener.month_key(month);
        let seq = self.library.store().next_seq(&key.public())?;
        let receipt = Receipt {
            listener: key.public(),
            seq,
            track: found.track.hash,
            artist: found.release.manifest.artist,
            started_at_ms,
            listened_ms,
            track_ms: found.track.duration_ms,
            home_node: NO_HOME_NODE,
        }
        .sign(&key);
        self.net
            .publish(receipt)
            .await
            .map_err(|e| Error::Network(e.to_string()))?;
        Ok(receipt)
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
    /// new one starts there. Returns the new session.
    pub async fn seek(self: &Arc<Self>, to_ms: u64) -> Result<u64, Error> {
        let (track, sink) = {
            let player = self.lock_player();
            let current = player.current.and_then(|c| player.sessions.get(&c));
            let current = current.ok_or(Error::NothingPlaying)?;
            (current.track, current.sink.clone())
        };
        self.play(&track.to_string(), to_ms, sink).await
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
        self.net
            .listener_receipts(listener)
            .await
            .map_err(|e| Error::Network(e.to_string()))
    }

    /// Stops playback, the network and the endpoint, and closes the stores.
    pub async fn shutdown(&self) -> Result<(), Error> {
        self.stop().await;
        self.net.shutdown().await;
        self.transfer.shutdown().await
    }
}

/// What the decoder reads.
trait ReadSeek: std::io::Read + std::io::Seek + Send {}
impl<T: std::io::Read + std::io::Seek + Send> ReadSeek for T {}

/// A sink that notes the first sample's time, counts samples and answers a stop.
struct Watched {
    inner: Option<Box<dyn Sink>>,
    stop: Arc<AtomicBool>,
    started: Instant,
    first: Option<Duration>,
    samples: u64,
}

impl Sink for Watched {
    fn write(&mut self, samples: &[f32]) -> Result<(), AudioError> {
        if self.stop.load(Ordering::Relaxed) {
            return Err(AudioError::Stopped);
        }
        self.first.get_or_insert_with(|| self.started.elapsed());
        self.samples += samples.len() as u64;
        match &mut self.inner {
            Some(s) => s.write(samples),
            None => Ok(()),
        }
    }

    fn finish(self: Box<Self>) -> Result<(), AudioError> {
        match self.inner {
            Some(s) => s.finish(),
            None => Ok(()),
        }
    }
}
