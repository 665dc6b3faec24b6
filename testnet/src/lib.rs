//! A whole 9ten network in one process, for seeing it work and for simulating: real nodes
//! ([`nineten_node::daemon::Node`]), each with its own stores in a folder of its own, libp2p and
//! iroh on 127.0.0.1. Artist nodes import generated music through the real import path and
//! publish it; the other nodes play tracks (popular ones more often) to the null sink, so
//! tracks spread through the caches; at the end the run reports time to first audio, who
//! served the bytes, and how far the receipts travelled.
//!
//! | module | holds |
//! |---|---|
//! | [`music`] | generated pieces: a style per artist, a melody per track |
//! | [`rng`] | the seeded generator behind every choice a run makes |
//!
//! A run is a sequence of phases ([`Phase`]), each reported to a progress callback; later
//! work (a month of listening, faults, plots) adds phases and report fields.

pub mod music;
pub mod rng;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nineten_node::audio::encode::Settings;
use nineten_node::config::DataDir;
use nineten_node::daemon::{Config, Ending, Listen, Node, SinkSpec};
use nineten_node::home::Operator;
use nineten_node::import::{self, Release};
use nineten_node::net::subscribe::{Outcome, Policy};
use nineten_protocol::identity::Keypair;
use nineten_protocol::key::{ContentHash, PublicKey};
use nineten_protocol::node_record::NodeName;
use nineten_protocol::receipt::SignedReceipt;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::rng::Rng;

/// What a run does.
#[derive(Clone, Debug)]
pub struct Options {
    /// Nodes in the network (at least 2).
    pub nodes: usize,
    /// How many of them are artists' nodes (at least 1, fewer than `nodes`).
    pub artists: usize,
    /// Tracks each artist publishes.
    pub tracks_per_artist: usize,
    /// Track length in seconds, drawn between these.
    pub track_seconds: (f32, f32),
    /// Plays in total, spread over the listeners' nodes.
    pub plays: usize,
    /// Seeds every choice (identities, music, who plays what).
    pub seed: u64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            nodes: 8,
            artists: 2,
            tracks_per_artist: 4,
            track_seconds: (12.0, 24.0),
            plays: 40,
            seed: 9,
        }
    }
}

/// Where a run is.
#[derive(Clone, Debug, PartialEq)]
pub enum Phase {
    /// Nodes started: how many so far.
    Started(usize),
    /// An artist's release is published: how many so far.
    Published(usize),
    /// Every node's catalog lists every release.
    CatalogsComplete,
    /// Plays done so far.
    Played(usize),
    /// Receipts spread (or the wait for them ended).
    ReceiptsSettled,
}

/// Median and 95th percentile.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
}

impl Percentiles {
    /// Nearest-rank percentiles of `values` (zeros when empty).
    pub fn of(values: &[f64]) -> Self {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        v.sort_by(f64::total_cmp);
        let at = |p: f64| {
            if v.is_empty() {
                return 0.0;
            }
            let rank = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len());
            v[rank - 1]
        };
        Self {
            p50: at(0.50),
            p95: at(0.95),
        }
    }
}

/// Bytes of streamed tracks, by who served them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bytes {
    /// Served by the artists' own nodes.
    pub artist_nodes: u64,
    /// Served by other peers (listeners' caches).
    pub other_peers: u64,
}

/// What became of the receipts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipts {
    /// Receipts signed (one per listen that played anything).
    pub signed: usize,
    /// How many of them every node holds at the end.
    pub held_by_all_nodes: usize,
}

/// A run's report (also written as `report.json`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Nodes in the network.
    pub nodes: usize,
    /// Plays attempted.
    pub plays: usize,
    /// Plays that failed (no provider, playback error).
    pub failed_plays: usize,
    /// Plays served from the listener's own cache.
    pub local_plays: usize,
    /// From each play request to its first decoded sample, in milliseconds (plays that
    /// streamed from peers).
    pub ttfa_ms: Percentiles,
    /// Who served the streamed bytes.
    pub bytes: Bytes,
    /// Receipts signed and spread.
    pub receipts: Receipts,
    /// Artists' nodes.
    pub artists: usize,
    /// Tracks published.
    pub tracks: usize,
    /// The seed.
    pub seed: u64,
    /// Wall time of the run, in seconds.
    pub elapsed_s: f64,
    /// Wall time of each phase, in seconds.
    pub phases_s: Phases,
}

/// Wall time of each phase of a run, in seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Phases {
    /// Starting the nodes.
    pub start: f64,
    /// Making the artists' music, importing and publishing it.
    pub publish: f64,
    /// Until every catalog lists every release.
    pub catalogs: f64,
    /// The plays.
    pub plays: f64,
    /// Until every node holds every receipt (or the wait ends).
    pub receipts: f64,
    /// Stopping the nodes.
    pub shutdown: f64,
}

impl Report {
    /// Share of streamed bytes served by other peers than the artists' nodes, 0 to 1.
    pub fn peer_share(&self) -> f64 {
        let total = self.bytes.artist_nodes + self.bytes.other_peers;
        if total == 0 {
            0.0
        } else {
            self.bytes.other_peers as f64 / total as f64
        }
    }
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The options cannot make a network.
    #[error("{0}")]
    Options(String),
    /// A node failed.
    #[error(transparent)]
    Node(#[from] nineten_node::Error),
    /// Generated audio could not be written.
    #[error(transparent)]
    Audio(#[from] nineten_node::audio::AudioError),
    /// The run was cancelled.
    #[error("cancelled")]
    Cancelled,
    /// Something did not happen in time.
    #[error("timed out: {0}")]
    Timeout(String),
}

const ARTIST_NAMES: [&str; 8] = [
    "Ada Sine",
    "Formant",
    "Drone Choir",
    "Low Pass",
    "The Overtones",
    "Comb Filter",
    "Vera Vibrato",
    "Sub Bass Society",
];
const TRACK_NAMES: [&str; 10] = [
    "Morning", "Tide", "Lanterns", "Glass", "Orbit", "Moss", "Static", "Harbour", "Ember", "Drift",
];

/// A running network.
pub struct Testnet {
    nodes: Vec<Arc<Node>>,
    artists: usize,
}

impl std::fmt::Debug for Testnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Testnet({} nodes)", self.nodes.len())
    }
}

impl Testnet {
    /// Starts `options.nodes` nodes with data folders in `dir`: node 0 first, then each node
    /// dialling node 0 and one earlier node picked at random.
    pub async fn start(
        options: &Options,
        dir: &Path,
        progress: &(dyn Fn(Phase) + Sync),
    ) -> Result<Self, Error> {
        if options.nodes < 2 || options.artists == 0 || options.artists >= options.nodes {
            return Err(Error::Options(format!(
                "a testnet needs at least 2 nodes and from 1 to nodes - 1 artists (got {} nodes, {} artists)",
                options.nodes, options.artists
            )));
        }
        let mut net = Self {
            nodes: Vec::new(),
            artists: options.artists,
        };
        match net.grow(options, dir, progress).await {
            Ok(()) => Ok(net),
            Err(e) => {
                net.shutdown().await;
                Err(e)
            }
        }
    }

    async fn grow(
        &mut self,
        options: &Options,
        dir: &Path,
        progress: &(dyn Fn(Phase) + Sync),
    ) -> Result<(), Error> {
        let mut rng = Rng::new(options.seed);
        let nodes = &mut self.nodes;
        let mut addrs: Vec<String> = Vec::new();
        for i in 0..options.nodes {
            let mut config = Config::new(DataDir::new(Some(dir.join(format!("node-{i:02}")))));
            config.seed = Some(rng.seed32());
            config.sync_interval = Duration::from_millis(500);
            if i == 0 {
                // The home node every listener subscribes through, signing at once.
                config.operator = Some(Operator {
                    cluster: 1,
                    name: NodeName::new("testnet home").expect("a short name"),
                    policy: Policy::Accept,
                });
            }
            if i > 0 {
                let mut peers = vec![addrs[0].clone()];
                let other = rng.below(i);
                if other != 0 {
                    peers.push(addrs[other].clone());
                }
                for p in peers {
                    config.peers.push(
                        p.parse()
                            .map_err(|e| Error::Options(format!("node address {p}: {e}")))?,
                    );
                }
            }
            let node = Node::start(config).await?;
            let status = node.status().await?;
            addrs.push(
                status
                    .addrs
                    .first()
                    .cloned()
                    .ok_or_else(|| Error::Timeout(format!("node {i} has no listen address")))?,
            );
            nodes.push(node);
            progress(Phase::Started(i + 1));
        }
        // Every listener subscribes through node 0 (an artist's node, and the home node),
        // over the subscribe protocol.
        let home = nodes[0].key();
        for (i, node) in nodes.iter().enumerate().skip(options.artists) {
            let outcome = node.subscribe(home, &format!("testnet-{i}"), false).await?;
            if !matches!(outcome, Outcome::Subscribed(_)) {
                return Err(Error::Timeout(format!(
                    "node {i}'s subscription was not signed: {outcome:?}"
                )));
            }
        }
        Ok(())
    }

    /// The nodes; the first [`Options::artists`] are the artists'.
    pub fn nodes(&self) -> &[Arc<Node>] {
        &self.nodes
    }

    /// Stops every node.
    pub async fn shutdown(self) {
        for node in self.nodes {
            if let Err(e) = node.shutdown().await {
                warn!("a node did not stop cleanly: {e}");
            }
        }
    }
}

/// Runs a testnet in `dir` (which it fills with node folders and generated music) and
/// reports; the nodes are stopped before it returns, whatever happened, also when `cancel`
/// completes first (say, on Ctrl-C).
pub async fn run(
    options: &Options,
    dir: &Path,
    progress: &(dyn Fn(Phase) + Sync),
    cancel: impl std::future::Future<Output = ()>,
) -> Result<Report, Error> {
    let started = Instant::now();
    let net = Testnet::start(options, dir, progress).await?;
    let start = started.elapsed().as_secs_f64();
    let result = tokio::select! {
        r = exercise(&net, options, dir, progress) => r,
        () = cancel => Err(Error::Cancelled),
    };
    let stopping = Instant::now();
    net.shutdown().await;
    let mut report = result?;
    report.phases_s.start = start;
    report.phases_s.shutdown = stopping.elapsed().as_secs_f64();
    report.elapsed_s = started.elapsed().as_secs_f64();
    Ok(report)
}

async fn exercise(
    net: &Testnet,
    options: &Options,
    dir: &Path,
    progress: &(dyn Fn(Phase) + Sync),
) -> Result<Report, Error> {
    let mut phases = Phases::default();
    let mut phase = Instant::now();
    let mut lap = || {
        std::mem::replace(&mut phase, Instant::now())
            .elapsed()
            .as_secs_f64()
    };
    let mut rng = Rng::new(options.seed ^ 0x006d_7573_6963);
    let artist_keys: Vec<PublicKey> = net.nodes[..net.artists].iter().map(|n| n.key()).collect();

    // Artists import generated music and publish it.
    let mut tracks: Vec<ContentHash> = Vec::new();
    for (i, node) in net.nodes[..net.artists].iter().enumerate() {
        let music = dir.join(format!("music-{i:02}"));
        std::fs::create_dir_all(&music).map_err(|source| nineten_node::audio::AudioError::Io {
            path: music.clone(),
            source,
        })?;
        let style = music::Style::new(&mut rng);
        let mut files = Vec::new();
        for t in 0..options.tracks_per_artist {
            let (lo, hi) = options.track_seconds;
            let seconds = lo + (hi - lo).max(0.0) * rng.unit() as f32;
            let name = TRACK_NAMES[rng.below(TRACK_NAMES.len())];
            let samples = style.piece(&mut rng, seconds.max(1.0));
            files.push(music::write(
                &music,
                &format!("{:02} {name}.wav", t + 1),
                &samples,
            )?);
        }
        let artist = Keypair::from_seed(rng.seed32());
        let name = ARTIST_NAMES[i % ARTIST_NAMES.len()].to_string();
        let title = format!("{} Studies", capitalize(style.scale_name));
        let prepared = tokio::task::spawn_blocking(move || {
            let release = Release {
                artist: &artist,
                artist_name: Some(name),
                title,
                settings: Settings::default(),
                published_at_ms: now_ms(),
            };
            import::prepare(&files, &release, &|_, _| {})
        })
        .await
        .map_err(|e| Error::Timeout(format!("an import task failed: {e}")))??;
        tracks.extend(prepared.manifest.manifest.tracks.iter().map(|t| t.hash));
        let id = node.add_release(&prepared).await?;
        node.publish(&id.to_string()).await?;
        progress(Phase::Published(i + 1));
    }

    phases.publish = lap();

    // Every node hears of every release (gossip, or catch-up on connecting).
    let releases = net.artists;
    wait_until(
        Duration::from_secs(30),
        "every catalog lists every release",
        || async {
            net.nodes
                .iter()
                .all(|n| n.catalog().is_ok_and(|c| c.len() >= releases))
        },
    )
    .await?;
    progress(Phase::CatalogsComplete);
    phases.catalogs = lap();

    // Listeners play in waves: in each, every listener plays the next track of its queue, all
    // at once; popular tracks come up more often, so later waves find them in earlier
    // listeners' caches.
    let listeners = &net.nodes[net.artists..];
    let mut popularity = tracks.clone();
    for i in (1..popularity.len()).rev() {
        popularity.swap(i, rng.below(i + 1));
    }
    let mut queues: Vec<Vec<ContentHash>> = vec![Vec::new(); listeners.len()];
    for k in 0..options.plays {
        queues[k % listeners.len()].push(popularity[rng.zipf(popularity.len())]);
    }
    let mut listens: Vec<Option<Listen>> = Vec::new();
    let waves = queues.iter().map(Vec::len).max().unwrap_or(0);
    for wave in 0..waves {
        let plays = listeners
            .iter()
            .zip(&queues)
            .filter_map(|(node, queue)| queue.get(wave).map(|track| play(node, track)));
        listens.extend(futures::future::join_all(plays).await);
        progress(Phase::Played(listens.len()));
    }

    phases.plays = lap();

    // The receipts spread to every node (gossip, then reconciliation).
    let receipts: Vec<SignedReceipt> = listens
        .iter()
        .flatten()
        .filter_map(|l| l.receipt.as_deref())
        .filter_map(|r| SignedReceipt::from_json(r).ok())
        .collect();
    let held_by_all = |receipts: &[SignedReceipt]| {
        receipts
            .iter()
            .filter(|r| {
                net.nodes
                    .iter()
                    .all(|n| n.library().store().has_receipt(r).unwrap_or(false))
            })
            .count()
    };
    let everywhere = wait_until(
        Duration::from_secs(20),
        "every node holds every receipt",
        || async { held_by_all(&receipts) == receipts.len() },
    )
    .await;
    if let Err(e) = everywhere {
        warn!("{e}");
    }
    progress(Phase::ReceiptsSettled);
    phases.receipts = lap();

    let streamed: Vec<&Listen> = listens.iter().flatten().filter(|l| !l.local).collect();
    let mut bytes = Bytes::default();
    for share in streamed.iter().flat_map(|l| &l.shares) {
        if artist_keys.contains(&share.node) {
            bytes.artist_nodes += share.bytes;
        } else {
            bytes.other_peers += share.bytes;
        }
    }
    let ttfa: Vec<f64> = streamed.iter().filter_map(|l| l.first_sample_ms).collect();
    let report = Report {
        nodes: net.nodes.len(),
        plays: options.plays,
        failed_plays: listens
            .iter()
            .filter(|l| {
                l.as_ref()
                    .is_none_or(|l| matches!(l.ending, Ending::Failed(_)))
            })
            .count(),
        local_plays: listens.iter().flatten().filter(|l| l.local).count(),
        ttfa_ms: Percentiles::of(&ttfa),
        bytes,
        receipts: Receipts {
            signed: receipts.len(),
            held_by_all_nodes: held_by_all(&receipts),
        },
        artists: net.artists,
        tracks: tracks.len(),
        seed: options.seed,
        elapsed_s: 0.0,
        phases_s: phases,
    };
    info!(?report, "testnet run done");
    Ok(report)
}

/// One play to the null sink; `None` if it could not start.
async fn play(node: &Arc<Node>, track: &ContentHash) -> Option<Listen> {
    let session = match node.play(&track.to_string(), 0, SinkSpec::Null).await {
        Ok(s) => s,
        Err(e) => {
            warn!(%track, "a play failed: {e}");
            return None;
        }
    };
    let listen = node.wait(session).await.ok()?;
    if let Ending::Failed(e) = &listen.ending {
        warn!(%track, "a play failed: {e}");
    }
    Some(listen)
}

async fn wait_until<F: std::future::Future<Output = bool>>(
    limit: Duration,
    what: &str,
    check: impl Fn() -> F,
) -> Result<(), Error> {
    let deadline = Instant::now() + limit;
    while !check().await {
        if Instant::now() > deadline {
            return Err(Error::Timeout(format!("{what} (waited {limit:?})")));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
