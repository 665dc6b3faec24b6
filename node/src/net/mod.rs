//! The node's libp2p network: one swarm, owned by one task (the [`Network`] event loop), driven
//! through a cloneable [`Client`].
//!
//! Protocols, all named under `/9ten/` so a node never joins another network's DHT:
//! Kademlia (`/9ten/kad/1.0.0`, server mode), gossipsub (every message validated by the
//! application before it is stored or forwarded; anonymous, since each record carries its own
//! signature and a second, per-copy gossip signature would only cost CPU), identify (`/9ten/id/1.0.0`), and request-response
//! (`/9ten/sync/1.0.0`, CBOR) for receipt set reconciliation ([`reconcile`]).
//!
//! Receipts: a node publishes its listeners' receipts on the month's topic
//! (`9ten/receipts/v1/YYYY-MM`) in their 232-byte binary form. Every node checks what it
//! receives (length, form, month, signature), counts and drops the bad, stores the good in
//! batches (a writer task), and keeps each month's receipt keys in memory for reconciliation.
//! Gossip does not replay what a node missed, so nodes reconcile on every new connection and
//! every [`Config::sync_interval`] with a random connected peer.
//!
//! Nothing reaches beyond the addresses given: no mDNS, no relays, no public bootstrap nodes.

pub mod reconcile;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::time::Duration;

use futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance, MessageAuthenticity};
use libp2p::kad::{self, store::MemoryStore};
use libp2p::request_response::{self, OutboundRequestId, ProtocolSupport};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{Multiaddr, PeerId, StreamProtocol, Swarm, identify, noise, tcp, yamux};
use nineten_protocol::key::{ContentHash, PublicKey};
use nineten_protocol::manifest::SignedManifest;
use nineten_protocol::month::Month;
use nineten_protocol::receipt::{RECORD_LEN, SignedReceipt};
use nineten_protocol::signature::{verify_all, verify_record};
use nineten_storage::Store;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc, oneshot};
use tracing::{debug, warn};

use self::reconcile::{Key, KeySet, Reply, Summary};

/// Kademlia protocol name.
pub const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/9ten/kad/1.0.0");
/// Identify protocol name.
pub const IDENTIFY_PROTOCOL: &str = "/9ten/id/1.0.0";
/// Receipt reconciliation protocol name.
pub const SYNC_PROTOCOL: StreamProtocol = StreamProtocol::new("/9ten/sync/1.0.0");
/// Identify's agent string; ` iroh=<socket address>` follows when the node runs an endpoint.
const AGENT: &str = concat!("9ten/", env!("CARGO_PKG_VERSION"));
/// Largest gossip message accepted (a release manifest; receipts are exactly
/// [`RECORD_LEN`] bytes).
pub const MAX_GOSSIP: usize = 64 * 1024;
/// The catalog topic: signed release manifests in their binary form.
pub const CATALOG_TOPIC: &str = "9ten/catalog/v1";
/// Most release ids in one catalog listing.
const MAX_IDS: usize = 1024;
/// Most manifests asked for in one request.
const MAX_MANIFESTS: usize = 16;
/// Most receipts in one reconciliation message.
pub const MAX_RECEIPTS: usize = 2048;
/// Most rounds of one reconciliation.
const MAX_ROUNDS: u32 = 12;

/// Network settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where to listen, e.g. `/ip4/127.0.0.1/tcp/0`.
    pub listen: Multiaddr,
    /// Peers to dial at start (with `/p2p/<peer id>`).
    pub peers: Vec<Multiaddr>,
    /// Months whose receipts this node gossips and reconciles.
    pub months: Vec<Month>,
    /// How often to reconcile with a random connected peer.
    pub sync_interval: Duration,
    /// This node's iroh endpoint address, told to peers (in identify) so that providers
    /// found in the DHT can be fetched from.
    pub iroh: Option<SocketAddr>,
}

/// The topic of release manifests.
pub fn catalog_topic() -> IdentTopic {
    IdentTopic::new(CATALOG_TOPIC)
}

/// The topic of a month's receipts.
pub fn receipt_topic(month: Month) -> IdentTopic {
    IdentTopic::new(format!("9ten/receipts/v1/{month}"))
}

/// What a node learnt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A new valid receipt was taken in.
    Receipt {
        /// Its reconciliation key (listener, seq, id).
        key: Key,
        /// How it arrived.
        via: Via,
    },
    /// A release manifest new to this node was checked and stored.
    Release(ContentHash),
}

/// The DHT key under which a listener's home node announces that it holds the listener's
/// receipts (a listener key signs one month only).
fn listener_key(listener: &PublicKey) -> kad::RecordKey {
    let mut k = b"9ten/listener/v1\0".to_vec();
    k.extend_from_slice(&listener.0);
    kad::RecordKey::new(&blake3::hash(&k).as_bytes())
}

/// How a receipt arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// Signed here and published.
    Local,
    /// By gossip.
    Gossip,
    /// By reconciliation with a peer.
    Reconciliation,
}

/// Counters of what the network did with receipts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Gossip messages received on receipt topics.
    pub gossip_received: u64,
    /// New valid receipts taken in (gossip or reconciliation).
    pub accepted: u64,
    /// Messages or receipts refused: wrong size, malformed, wrong month or bad signature.
    pub rejected: u64,
    /// Receipts received again.
    pub duplicates: u64,
    /// Receipts learnt through reconciliation.
    pub reconciled: u64,
    /// Release manifests taken in (gossip or catalog catch-up).
    pub releases: u64,
    /// Release manifests refused (malformed or a bad signature).
    pub releases_rejected: u64,
    /// Reconciliation payload bytes this node sent (summaries, keys and receipts; CBOR
    /// framing and transport overhead not counted).
    pub sync_bytes: u64,
}

/// The composed behaviour: one field per protocol.
#[derive(NetworkBehaviour)]
struct Behaviour {
    kad: kad::Behaviour<MemoryStore>,
    gossipsub: gossipsub::Behaviour,
    identify: identify::Behaviour,
    sync: request_response::cbor::Behaviour<SyncRequest, SyncResponse>,
}

/// A reconciliation request.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum SyncRequest {
    /// Compare these summaries with yours.
    Ranges {
        /// `YYYY-MM`.
        month: String,
        /// The summaries.
        ranges: Vec<Summary>,
    },
    /// Send me these receipts.
    Fetch(#[serde(with = "serde_bytes")] Vec<u8>),
    /// Here are receipts you lack (binary forms, concatenated).
    Push(#[serde(with = "serde_bytes")] Vec<u8>),
    /// List your release ids after this one.
    CatalogIds(Option<ContentHash>),
    /// Send me these release manifests.
    Manifests(Vec<ContentHash>),
    /// Send me a listener's receipts with a seq above this one.
    ListenerReceipts {
        /// The listener's (month) key.
        listener: PublicKey,
        /// Receipts after this seq (all if none).
        after: Option<u64>,
    },
}

/// A reconciliation response.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum SyncResponse {
    /// Answers to the summaries.
    Ranges(Vec<Reply>),
    /// Receipts (binary forms, concatenated).
    Receipts(#[serde(with = "serde_bytes")] Vec<u8>),
    /// Received.
    Ack,
    /// Release ids, in byte order.
    CatalogIds(Vec<ContentHash>),
    /// Release manifests (binary forms).
    Manifests(Vec<serde_bytes::ByteBuf>),
}

/// Bytes of one range summary on the wire, as counted in [`Stats::sync_bytes`].
const SUMMARY_BYTES: usize = 72 + 72 + 8 + 32;

impl SyncResponse {
    fn payload_len(&self) -> u64 {
        match self {
            Self::Ranges(replies) => replies
                .iter()
                .map(|r| match r {
                    Reply::Keys { keys, .. } => 144 + keys.len() * 72,
                    Reply::Split(parts) => parts.len() * SUMMARY_BYTES,
                })
                .sum::<usize>() as u64,
            Self::Receipts(b) => b.len() as u64,
            Self::Ack | Self::CatalogIds(_) | Self::Manifests(_) => 0,
        }
    }
}

enum Command {
    Dial(Multiaddr, oneshot::Sender<Result<(), String>>),
    Publish(SignedReceipt, oneshot::Sender<Result<(), String>>),
    PublishRaw(IdentTopic, Vec<u8>, oneshot::Sender<Result<(), String>>),
    Stats(oneshot::Sender<Stats>),
    Held(Month, oneshot::Sender<usize>),
    ServeMonth(Month, oneshot::Sender<Result<(), String>>),
    ListenAddrs(oneshot::Sender<Vec<Multiaddr>>),
    Peers(oneshot::Sender<Vec<PeerId>>),
    Disconnect(PeerId, oneshot::Sender<()>),
    Provide(ContentHash, oneshot::Sender<Result<(), String>>),
    StopProviding(ContentHash, oneshot::Sender<()>),
    Providers(ContentHash, Wait, oneshot::Sender<Vec<iroh::EndpointAddr>>),
    PublishRelease(Box<SignedManifest>, oneshot::Sender<Result<(), String>>),
    ProvideListener(PublicKey, oneshot::Sender<Result<(), String>>),
    ListenerReceipts(PublicKey, oneshot::Sender<Vec<SignedReceipt>>),
    Shutdown,
}

/// A handle to the network task; cheap to clone.
#[derive(Clone, Debug)]
pub struct Client {
    commands: mpsc::Sender<Command>,
    events: broadcast::Sender<Event>,
}

/// The network task stopped.
#[derive(Debug, thiserror::Error)]
#[error("the network task has stopped")]
pub struct Stopped;

impl Client {
    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, Stopped> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(make(tx)).await.map_err(|_| Stopped)?;
        rx.await.map_err(|_| Stopped)
    }

    /// Connects to a peer.
    pub async fn dial(&self, addr: Multiaddr) -> Result<Result<(), String>, Stopped> {
        self.ask(|tx| Command::Dial(addr, tx)).await
    }

    /// Stores a receipt this node signed and gossips it on its month's topic.
    pub async fn publish(&self, receipt: SignedReceipt) -> Result<Result<(), String>, Stopped> {
        self.ask(|tx| Command::Publish(receipt, tx)).await
    }

    /// Publishes bytes on a topic ([`receipt_topic`], [`catalog_topic`]) as they are,
    /// unchecked: for testnets that simulate misbehaving nodes.
    pub async fn publish_raw(
        &self,
        topic: IdentTopic,
        bytes: Vec<u8>,
    ) -> Result<Result<(), String>, Stopped> {
        self.ask(|tx| Command::PublishRaw(topic, bytes, tx)).await
    }

    /// The receipt counters.
    pub async fn stats(&self) -> Result<Stats, Stopped> {
        self.ask(Command::Stats).await
    }

    /// Starts gossiping and reconciling `month`'s receipts too (a node running into a new
    /// month); nothing happens if it already does.
    pub async fn serve_month(&self, month: Month) -> Result<Result<(), String>, Stopped> {
        self.ask(|tx| Command::ServeMonth(month, tx)).await
    }

    /// How many receipts of `month` this node holds.
    pub async fn held(&self, month: Month) -> Result<usize, Stopped> {
        self.ask(|tx| Command::Held(month, tx)).await
    }

    /// The addresses the node listens on, with its peer id.
    pub async fn listen_addrs(&self) -> Result<Vec<Multiaddr>, Stopped> {
        self.ask(Command::ListenAddrs).await
    }

    /// Connected peers.
    pub async fn peers(&self) -> Result<Vec<PeerId>, Stopped> {
        self.ask(Command::Peers).await
    }

    /// Closes every connection to `peer` (it may reconnect later).
    pub async fn disconnect(&self, peer: PeerId) -> Result<(), Stopped> {
        self.ask(|tx| Command::Disconnect(peer, tx)).await
    }

    /// Announces in the DHT that this node provides `blob` (a track or a seek index).
    pub async fn provide(&self, blob: ContentHash) -> Result<Result<(), String>, Stopped> {
        self.ask(|tx| Command::Provide(blob, tx)).await
    }

    /// Withdraws this node's provider record for `blob` (it no longer holds it).
    pub async fn stop_providing(&self, blob: ContentHash) -> Result<(), Stopped> {
        self.ask(|tx| Command::StopProviding(blob, tx)).await
    }

    /// Gossips a release manifest (already stored) on the catalog topic. Peers not reached
    /// now get it when they next connect (catalog catch-up).
    pub async fn publish_release(
        &self,
        manifest: SignedManifest,
    ) -> Result<Result<(), String>, Stopped> {
        self.ask(|tx| Command::PublishRelease(Box::new(manifest), tx))
            .await
    }

    /// Announces in the DHT that this node holds `listener`'s receipts (it is their home node).
    pub async fn provide_listener(
        &self,
        listener: PublicKey,
    ) -> Result<Result<(), String>, Stopped> {
        self.ask(|tx| Command::ProvideListener(listener, tx)).await
    }

    /// A listener's receipts as a reviewer finds them: the holders announced in the DHT are
    /// asked, and what they send is checked (signature, listener); sorted by seq. Empty when
    /// no holder is found.
    pub async fn listener_receipts(
        &self,
        listener: PublicKey,
    ) -> Result<Vec<SignedReceipt>, Stopped> {
        self.ask(|tx| Command::ListenerReceipts(listener, tx)).await
    }

    /// Providers of `blob` found in the DHT, as iroh addresses (those whose endpoint address
    /// this node has learnt), this node excluded: the first ones found, or none when the
    /// lookup ends without any.
    pub async fn providers(&self, blob: ContentHash) -> Result<Vec<iroh::EndpointAddr>, Stopped> {
        self.ask(|tx| Command::Providers(blob, Wait::First, tx))
            .await
    }

    /// Every provider of `blob` the whole DHT lookup finds (slower than
    /// [`Client::providers`]: for adding providers to a fetch under way).
    pub async fn all_providers(
        &self,
        blob: ContentHash,
    ) -> Result<Vec<iroh::EndpointAddr>, Stopped> {
        self.ask(|tx| Command::Providers(blob, Wait::All, tx)).await
    }

    /// Events from now on. A receiver that falls more than 4096 events behind loses the
    /// oldest.
    pub fn events(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// Stops the network task.
    pub async fn shutdown(&self) {
        let _ = self.commands.send(Command::Shutdown).await;
    }
}

/// The libp2p identity of a node seed: the same key as the node's signing key.
pub fn keypair(seed: &[u8; 32]) -> libp2p::identity::Keypair {
    libp2p::identity::Keypair::ed25519_from_bytes(*seed).expect("any 32 bytes are an ed25519 seed")
}

/// Why the network could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The swarm could not be built or could not listen.
    #[error("cannot start the network: {0}")]
    Swarm(String),
    /// The store failed while loading receipts.
    #[error(transparent)]
    Storage(#[from] nineten_storage::Error),
}

/// The event loop: owns the swarm and the receipt key sets.
pub struct Network {
    swarm: Swarm<Behaviour>,
    commands: mpsc::Receiver<Command>,
    store: Store,
    writer: mpsc::Sender<Vec<SignedReceipt>>,
    /// Valid receipts taken in but not yet handed to the writer.
    unstored: Vec<SignedReceipt>,
    sets: BTreeMap<Month, KeySet>,
    syncs: HashMap<OutboundRequestId, Pending>,
    stats: Stats,
    events: broadcast::Sender<Event>,
    sync_interval: Duration,
    /// Peers' iroh endpoints (key and address), learnt from identify.
    endpoints: HashMap<PeerId, iroh::EndpointAddr>,
    /// Provider lookups under way: providers found so far, and who asked.
    lookups: HashMap<kad::QueryId, ProviderQuery>,
    /// Lookups of listeners' receipts: the DHT query, then the holders' answers.
    listener_lookups: HashMap<kad::QueryId, ListenerQuery>,
    listener_queries: HashMap<u64, ListenerQuery>,
    next_query: u64,
}

/// How long a provider lookup goes on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wait {
    /// Until some reachable provider is known.
    First,
    /// Until the lookup ends.
    All,
}

/// A provider lookup under way: providers found so far, and who asked.
#[derive(Debug)]
struct ProviderQuery {
    found: HashSet<PeerId>,
    wait: Wait,
    tx: oneshot::Sender<Vec<iroh::EndpointAddr>>,
}

/// What an outgoing sync request was for.
#[derive(Clone, Copy, Debug)]
enum Pending {
    Reconcile { month: Month, round: u32 },
    Catalog,
    Listener(u64),
}

/// A reviewer's lookup of a listener's receipts.
#[derive(Debug)]
struct ListenerQuery {
    listener: PublicKey,
    found: BTreeMap<Key, SignedReceipt>,
    outstanding: usize,
    tx: oneshot::Sender<Vec<SignedReceipt>>,
}

/// Starts the network for the node with identity `seed`; returns the client and the event
/// loop to spawn (`tokio::spawn(network.run())`).
pub fn new(seed: &[u8; 32], config: Config, store: Store) -> Result<(Client, Network), StartError> {
    let key = keypair(seed);
    let err = |e: &dyn std::fmt::Display| StartError::Swarm(e.to_string());
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| err(&e))?
        .with_behaviour(|key| {
            let peer = key.public().to_peer_id();
            let mut kad_config = kad::Config::new(KAD_PROTOCOL);
            kad_config.set_query_timeout(Duration::from_secs(10));
            let mut kad = kad::Behaviour::with_config(peer, MemoryStore::new(peer), kad_config);
            kad.set_mode(Some(kad::Mode::Server));
            let gossip_config = gossipsub::ConfigBuilder::default()
                .validate_messages()
                .validation_mode(gossipsub::ValidationMode::Anonymous)
                .message_id_fn(|m| {
                    gossipsub::MessageId::from(blake3::hash(&m.data).as_bytes().to_vec())
                })
                .max_transmit_size(MAX_GOSSIP)
                .heartbeat_initial_delay(Duration::from_millis(100))
                .heartbeat_interval(Duration::from_millis(500))
                .mesh_n(4)
                .mesh_n_low(3)
                .mesh_n_high(8)
                .mesh_outbound_min(1)
                .build()
                .map_err(|e| e.to_string())?;
            let gossipsub =
                gossipsub::Behaviour::new(MessageAuthenticity::Anonymous, gossip_config)?;
            let agent = match config.iroh {
                Some(addr) => format!("{AGENT} iroh={addr}"),
                None => AGENT.to_string(),
            };
            let identify = identify::Behaviour::new(
                identify::Config::new(IDENTIFY_PROTOCOL.to_string(), key.public())
                    .with_agent_version(agent),
            );
            let sync = request_response::cbor::Behaviour::new(
                [(SYNC_PROTOCOL, ProtocolSupport::Full)],
                request_response::Config::default().with_request_timeout(Duration::from_secs(10)),
            );
            Ok(Behaviour {
                kad,
                gossipsub,
                identify,
                sync,
            })
        })
        .map_err(|e| err(&e))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(3600)))
        .build();

    let mut sets = BTreeMap::new();
    for month in &config.months {
        swarm
            .behaviour_mut()
            .gossipsub
            .subscribe(&receipt_topic(*month))
            .map_err(|e| err(&e))?;
        let mut set = KeySet::default();
        for r in store.receipts_of_month(*month)? {
            set.insert(key_of(&r));
        }
        sets.insert(*month, set);
    }
    swarm
        .behaviour_mut()
        .gossipsub
        .subscribe(&catalog_topic())
        .map_err(|e| err(&e))?;
    swarm.listen_on(config.listen).map_err(|e| err(&e))?;
    for peer in config.peers {
        swarm
            .dial(peer.clone())
            .map_err(|e| err(&format!("{peer}: {e}")))?;
    }
    let (tx, commands) = mpsc::channel(256);
    let writer = spawn_writer(store.clone());
    let (events, _) = broadcast::channel(4096);
    Ok((
        Client {
            commands: tx,
            events: events.clone(),
        },
        Network {
            swarm,
            commands,
            store,
            writer,
            unstored: Vec::new(),
            sets,
            syncs: HashMap::new(),
            stats: Stats::default(),
            events,
            sync_interval: config.sync_interval,
            endpoints: HashMap::new(),
            lookups: HashMap::new(),
            listener_lookups: HashMap::new(),
            listener_queries: HashMap::new(),
            next_query: 0,
        },
    ))
}

/// A peer's iroh endpoint from identify: its ed25519 key (the same as its PeerId's) and the
/// ` iroh=<address>` its agent string carries. Unsigned, but iroh authenticates the key, so a
/// wrong address only fails to connect.
fn iroh_endpoint(info: &identify::Info) -> Option<iroh::EndpointAddr> {
    let addr: SocketAddr = info.agent_version.split(" iroh=").nth(1)?.parse().ok()?;
    let key = info.public_key.clone().try_into_ed25519().ok()?.to_bytes();
    let id = iroh::PublicKey::from_bytes(&key).ok()?;
    Some(iroh::EndpointAddr::new(id).with_ip_addr(addr))
}

/// A receipt's reconciliation key: listener, seq, id.
pub fn key_of(r: &SignedReceipt) -> Key {
    let mut k = [0u8; 72];
    k[..32].copy_from_slice(&r.receipt.listener.0);
    k[32..40].copy_from_slice(&r.receipt.seq.to_be_bytes());
    k[40..].copy_from_slice(&r.id().0);
    k
}

/// Stores receipts in batches, off the event loop: whatever has queued up is written in one
/// flushed batch.
fn spawn_writer(store: Store) -> mpsc::Sender<Vec<SignedReceipt>> {
    let (tx, mut rx) = mpsc::channel::<Vec<SignedReceipt>>(1024);
    tokio::spawn(async move {
        while let Some(mut batch) = rx.recv().await {
            while let Ok(more) = rx.try_recv() {
                batch.extend(more);
                if batch.len() >= 4096 {
                    break;
                }
            }
            let store = store.clone();
            let n = batch.len();
            match tokio::task::spawn_blocking(move || store.put_receipts(&batch)).await {
                Ok(Ok(())) => debug!(n, "receipts stored"),
                Ok(Err(e)) => warn!("storing {n} receipts failed: {e}"),
                Err(e) => warn!("the storage task failed: {e}"),
            }
        }
    });
    tx
}

impl Network {
    /// Runs until [`Client::shutdown`] or until every client is dropped.
    pub async fn run(mut self) {
        let mut tick = tokio::time::interval(self.sync_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm(event),
                command = self.commands.recv() => match command {
                    Some(Command::Shutdown) | None => break,
                    Some(c) => self.on_command(c),
                },
                _ = tick.tick() => {
                    self.flush_to_writer();
                    self.sync_with_random_peer();
                }
            }
        }
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Dial(addr, tx) => {
                let _ = tx.send(self.swarm.dial(addr).map_err(|e| e.to_string()));
            }
            Command::Publish(receipt, tx) => {
                let month = Month::containing(receipt.receipt.started_at_ms);
                let result = match month {
                    Some(m) if self.sets.contains_key(&m) => {
                        self.take_in(vec![receipt], Via::Local);
                        self.swarm
                            .behaviour_mut()
                            .gossipsub
                            .publish(receipt_topic(m), receipt.to_bytes().to_vec())
                            .map(|_| ())
                            .or_else(|e| match e {
                                // Stored; peers will get it by reconciliation.
                                gossipsub::PublishError::NoPeersSubscribedToTopic => Ok(()),
                                e => Err(e.to_string()),
                            })
                    }
                    _ => Err("the receipt's month is not one this node serves".to_string()),
                };
                let _ = tx.send(result);
            }
            Command::PublishRaw(topic, bytes, tx) => {
                let result = self
                    .swarm
                    .behaviour_mut()
                    .gossipsub
                    .publish(topic, bytes)
                    .map(|_| ())
                    .map_err(|e| e.to_string());
                let _ = tx.send(result);
            }
            Command::Stats(tx) => {
                let _ = tx.send(self.stats);
            }
            Command::ServeMonth(month, tx) => {
                let _ = tx.send(self.serve_month(month));
            }
            Command::Held(month, tx) => {
                let _ = tx.send(self.sets.get(&month).map_or(0, KeySet::len));
            }
            Command::ListenAddrs(tx) => {
                let me = *self.swarm.local_peer_id();
                let addrs = self
                    .swarm
                    .listeners()
                    .map(|a| a.clone().with_p2p(me).unwrap_or_else(|a| a))
                    .collect();
                let _ = tx.send(addrs);
            }
            Command::Peers(tx) => {
                let _ = tx.send(self.swarm.connected_peers().copied().collect());
            }
            Command::Disconnect(peer, tx) => {
                let _ = self.swarm.disconnect_peer_id(peer);
                let _ = tx.send(());
            }
            Command::Provide(blob, tx) => {
                let result = self
                    .swarm
                    .behaviour_mut()
                    .kad
                    .start_providing(kad::RecordKey::new(&blob.0))
                    .map(|_| ())
                    .map_err(|e| e.to_string());
                let _ = tx.send(result);
            }
            Command::StopProviding(blob, tx) => {
                self.swarm
                    .behaviour_mut()
                    .kad
                    .stop_providing(&kad::RecordKey::new(&blob.0));
                let _ = tx.send(());
            }
            Command::PublishRelease(manifest, tx) => {
                let result = self
                    .swarm
                    .behaviour_mut()
                    .gossipsub
                    .publish(catalog_topic(), manifest.to_bytes())
                    .map(|_| ())
                    .or_else(|e| match e {
                        // Stored; peers get it by catalog catch-up when they connect.
                        gossipsub::PublishError::NoPeersSubscribedToTopic
                        | gossipsub::PublishError::Duplicate => Ok(()),
                        e => Err(e.to_string()),
                    });
                let _ = tx.send(result);
            }
            Command::ProvideListener(listener, tx) => {
                let result = self
                    .swarm
                    .behaviour_mut()
                    .kad
                    .start_providing(listener_key(&listener))
                    .map(|_| ())
                    .map_err(|e| e.to_string());
                let _ = tx.send(result);
            }
            Command::ListenerReceipts(listener, tx) => {
                let id = self
                    .swarm
                    .behaviour_mut()
                    .kad
                    .get_providers(listener_key(&listener));
                self.listener_lookups.insert(
                    id,
                    ListenerQuery {
                        listener,
                        found: BTreeMap::new(),
                        outstanding: 0,
                        tx,
                    },
                );
            }
            Command::Providers(blob, wait, tx) => {
                let id = self
                    .swarm
                    .behaviour_mut()
                    .kad
                    .get_providers(kad::RecordKey::new(&blob.0));
                self.lookups.insert(
                    id,
                    ProviderQuery {
                        found: HashSet::new(),
                        wait,
                        tx,
                    },
                );
            }
            Command::Shutdown => {}
        }
    }

    fn on_swarm(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => {
                self.stats.gossip_received += 1;
                let verdict = self.check_gossip(&message.topic, &message.data);
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .gossipsub
                    .report_message_validation_result(&message_id, &propagation_source, verdict);
            }
            // A dialing peer is reachable at its listen addresses only if it serves our DHT.
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) if info.protocols.contains(&KAD_PROTOCOL) => {
                if let Some(endpoint) = iroh_endpoint(&info) {
                    self.endpoints.insert(peer_id, endpoint);
                }
                for addr in info.listen_addrs {
                    self.swarm.behaviour_mut().kad.add_address(&peer_id, addr);
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Kad(kad::Event::OutboundQueryProgressed {
                id,
                result: kad::QueryResult::GetProviders(result),
                step,
                ..
            })) if self.listener_lookups.contains_key(&id) => {
                self.on_listener_holders(id, result, step.last)
            }
            SwarmEvent::Behaviour(BehaviourEvent::Kad(kad::Event::OutboundQueryProgressed {
                id,
                result: kad::QueryResult::GetProviders(result),
                step,
                ..
            })) => self.on_providers(id, result, step.last),
            SwarmEvent::Behaviour(BehaviourEvent::Sync(event)) => self.on_sync(event),
            SwarmEvent::ConnectionEstablished {
                peer_id,
                num_established,
                ..
            } if num_established.get() == 1 => {
                self.sync_with(peer_id);
                self.ask_catalog(peer_id, None);
            }
            _ => {}
        }
    }

    /// Answers a provider lookup as soon as it has found providers this node can reach (a
    /// player wants to start, not to wait for the whole query), or when the query ends.
    fn on_providers(&mut self, id: kad::QueryId, result: kad::GetProvidersResult, last: bool) {
        let Some(query) = self.lookups.get_mut(&id) else {
            return;
        };
        let ended = match result {
            Ok(kad::GetProvidersOk::FoundProviders { providers, .. }) => {
                query.found.extend(providers);
                last
            }
            Ok(kad::GetProvidersOk::FinishedWithNoAdditionalRecord { .. }) | Err(_) => true,
        };
        let me = *self.swarm.local_peer_id();
        let reachable: Vec<iroh::EndpointAddr> = query
            .found
            .iter()
            .filter(|p| **p != me)
            .filter_map(|p| self.endpoints.get(p).cloned())
            .collect();
        if ended || (query.wait == Wait::First && !reachable.is_empty()) {
            let query = self.lookups.remove(&id).expect("looked up above");
            let _ = query.tx.send(reachable);
        }
    }

    /// Checks one gossip message: a release manifest on the catalog topic, or a receipt of
    /// the topic's month, whose signature verifies.
    fn check_gossip(&mut self, topic: &gossipsub::TopicHash, data: &[u8]) -> MessageAcceptance {
        if *topic == catalog_topic().hash() {
            return match self.take_manifest(data) {
                Some(true) => MessageAcceptance::Accept,
                Some(false) => MessageAcceptance::Ignore,
                None => MessageAcceptance::Reject,
            };
        }
        let month = self
            .sets
            .keys()
            .copied()
            .find(|m| receipt_topic(*m).hash() == *topic);
        let receipt = match (month, data.len() == RECORD_LEN) {
            (Some(m), true) => SignedReceipt::from_bytes(data)
                .ok()
                .filter(|r| Month::containing(r.receipt.started_at_ms) == Some(m)),
            _ => None,
        };
        let Some(receipt) = receipt else {
            self.stats.rejected += 1;
            return MessageAcceptance::Reject;
        };
        // Known already (say, through reconciliation): no need to check the signature again.
        let known = Month::containing(receipt.receipt.started_at_ms)
            .and_then(|m| self.sets.get(&m))
            .is_some_and(|set| set.contains(&key_of(&receipt)));
        if known {
            self.stats.duplicates += 1;
            return MessageAcceptance::Ignore;
        }
        if !verify_record(&receipt) {
            self.stats.rejected += 1;
            return MessageAcceptance::Reject;
        }
        self.take_in(vec![receipt], Via::Gossip);
        MessageAcceptance::Accept
    }

    fn serve_month(&mut self, month: Month) -> Result<(), String> {
        if self.sets.contains_key(&month) {
            return Ok(());
        }
        let mut set = KeySet::default();
        for r in self
            .store
            .receipts_of_month(month)
            .map_err(|e| e.to_string())?
        {
            set.insert(key_of(&r));
        }
        self.swarm
            .behaviour_mut()
            .gossipsub
            .subscribe(&receipt_topic(month))
            .map_err(|e| e.to_string())?;
        self.sets.insert(month, set);
        Ok(())
    }

    /// Checks and stores a release manifest: `Some(true)` if new, `Some(false)` if known,
    /// `None` if refused (counted).
    fn take_manifest(&mut self, bytes: &[u8]) -> Option<bool> {
        let manifest = (bytes.len() <= MAX_GOSSIP)
            .then(|| SignedManifest::from_bytes(bytes).ok())
            .flatten()
            .filter(verify_record);
        let Some(manifest) = manifest else {
            self.stats.releases_rejected += 1;
            return None;
        };
        let id = manifest.id();
        match self.store.manifest(&id) {
            Ok(Some(_)) => return Some(false),
            Ok(None) => {}
            Err(e) => {
                warn!("reading the catalog failed: {e}");
                return Some(false);
            }
        }
        if let Err(e) = self.store.put_manifest(&manifest) {
            warn!("storing a release manifest failed: {e}");
            return Some(false);
        }
        self.stats.releases += 1;
        let _ = self.events.send(Event::Release(id));
        Some(true)
    }

    /// Asks a peer for its release ids (catalog catch-up).
    fn ask_catalog(&mut self, peer: PeerId, after: Option<ContentHash>) {
        let id = self
            .swarm
            .behaviour_mut()
            .sync
            .send_request(&peer, SyncRequest::CatalogIds(after));
        self.syncs.insert(id, Pending::Catalog);
    }

    /// Fetches the releases among `ids` this node lacks, and asks for the next page.
    fn follow_catalog(&mut self, peer: PeerId, ids: Vec<ContentHash>) {
        let missing: Vec<ContentHash> = ids
            .iter()
            .take(MAX_IDS)
            .filter(|id| matches!(self.store.manifest(id), Ok(None)))
            .copied()
            .collect();
        for chunk in missing.chunks(MAX_MANIFESTS) {
            let id = self
                .swarm
                .behaviour_mut()
                .sync
                .send_request(&peer, SyncRequest::Manifests(chunk.to_vec()));
            self.syncs.insert(id, Pending::Catalog);
        }
        if ids.len() == MAX_IDS {
            self.ask_catalog(peer, ids.last().copied());
        }
    }

    /// The DHT found (some) holders of a listener's receipts: ask them.
    fn on_listener_holders(
        &mut self,
        id: kad::QueryId,
        result: kad::GetProvidersResult,
        last: bool,
    ) {
        let (holders, ended) = match result {
            Ok(kad::GetProvidersOk::FoundProviders { providers, .. }) => (providers, last),
            Ok(kad::GetProvidersOk::FinishedWithNoAdditionalRecord { .. }) | Err(_) => {
                (HashSet::new(), true)
            }
        };
        let me = *self.swarm.local_peer_id();
        let holders: Vec<PeerId> = holders.into_iter().filter(|p| *p != me).collect();
        if holders.is_empty() && !ended {
            return;
        }
        let Some(mut query) = self.listener_lookups.remove(&id) else {
            return;
        };
        if ended && holders.is_empty() {
            let _ = query.tx.send(Vec::new());
            return;
        }
        let n = self.next_query;
        self.next_query += 1;
        for peer in &holders {
            let request = SyncRequest::ListenerReceipts {
                listener: query.listener,
                after: None,
            };
            let rid = self.swarm.behaviour_mut().sync.send_request(peer, request);
            self.syncs.insert(rid, Pending::Listener(n));
            query.outstanding += 1;
        }
        self.listener_queries.insert(n, query);
    }

    /// A holder answered (or failed to): keep its valid receipts of the listener, ask for the
    /// next page, answer the reviewer once every holder is done.
    fn on_listener_page(&mut self, n: u64, peer: Option<PeerId>, bytes: &[u8]) {
        let receipts = if bytes.is_empty() {
            Vec::new()
        } else {
            self.check_batch(bytes)
        };
        let Some(query) = self.listener_queries.get_mut(&n) else {
            return;
        };
        let full = bytes.len() / RECORD_LEN == MAX_RECEIPTS;
        let mut last = None;
        for r in receipts {
            if r.receipt.listener == query.listener {
                last = Some(r.receipt.seq);
                query.found.insert(key_of(&r), r);
            }
        }
        match (peer, full, last) {
            (Some(peer), true, Some(after)) => {
                let request = SyncRequest::ListenerReceipts {
                    listener: query.listener,
                    after: Some(after),
                };
                let rid = self.swarm.behaviour_mut().sync.send_request(&peer, request);
                self.syncs.insert(rid, Pending::Listener(n));
            }
            _ => query.outstanding -= 1,
        }
        if query.outstanding == 0 {
            let query = self.listener_queries.remove(&n).expect("looked up above");
            let _ = query.tx.send(query.found.into_values().collect());
        }
    }

    /// Adds receipts already checked to the key sets and queues the new ones for storage;
    /// returns how many were new.
    fn take_in(&mut self, receipts: Vec<SignedReceipt>, via: Via) -> usize {
        let mut new = Vec::new();
        for r in receipts {
            let Some(set) =
                Month::containing(r.receipt.started_at_ms).and_then(|m| self.sets.get_mut(&m))
            else {
                continue;
            };
            let key = key_of(&r);
            if set.insert(key) {
                let _ = self.events.send(Event::Receipt { key, via });
                new.push(r);
            } else {
                self.stats.duplicates += 1;
            }
        }
        let n = new.len();
        self.stats.accepted += n as u64;
        if via == Via::Reconciliation {
            self.stats.reconciled += n as u64;
        }
        self.unstored.extend(new);
        self.flush_to_writer();
        n
    }

    /// Hands receipts not yet queued to the writer; if its queue is full they wait here and
    /// go with the next call (at the latest on the next tick).
    fn flush_to_writer(&mut self) {
        if self.unstored.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.unstored);
        if let Err(
            mpsc::error::TrySendError::Full(batch) | mpsc::error::TrySendError::Closed(batch),
        ) = self.writer.try_send(batch)
        {
            debug!(n = batch.len(), "the storage queue is full; retrying");
            self.unstored = batch;
        }
    }

    fn sync_with_random_peer(&mut self) {
        let peers: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
        if peers.is_empty() {
            return;
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos() as usize);
        self.sync_with(peers[nanos % peers.len()]);
    }

    fn sync_with(&mut self, peer: PeerId) {
        let months: Vec<Month> = self.sets.keys().copied().collect();
        for month in months {
            let summary = self.sets[&month].summarize_all();
            self.send_ranges(peer, month, vec![summary], 0);
        }
    }

    fn send_ranges(&mut self, peer: PeerId, month: Month, ranges: Vec<Summary>, round: u32) {
        self.stats.sync_bytes += (ranges.len() * SUMMARY_BYTES) as u64;
        let request = SyncRequest::Ranges {
            month: month.to_string(),
            ranges,
        };
        let id = self.swarm.behaviour_mut().sync.send_request(&peer, request);
        self.syncs.insert(id, Pending::Reconcile { month, round });
    }

    fn on_sync(&mut self, event: request_response::Event<SyncRequest, SyncResponse>) {
        use request_response::{Event, Message};
        match event {
            Event::Message {
                message:
                    Message::Request {
                        request, channel, ..
                    },
                ..
            } => {
                let response = self.answer(request);
                self.stats.sync_bytes += response.payload_len();
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .sync
                    .send_response(channel, response);
            }
            Event::Message {
                peer,
                message:
                    Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                let Some(pending) = self.syncs.remove(&request_id) else {
                    return;
                };
                match (pending, response) {
                    (Pending::Reconcile { month, round }, SyncResponse::Ranges(replies)) => {
                        self.follow(peer, month, round, &replies)
                    }
                    (Pending::Reconcile { .. }, SyncResponse::Receipts(bytes)) => {
                        let receipts = self.check_batch(&bytes);
                        self.take_in(receipts, Via::Reconciliation);
                    }
                    (Pending::Catalog, SyncResponse::CatalogIds(ids)) => {
                        self.follow_catalog(peer, ids)
                    }
                    (Pending::Catalog, SyncResponse::Manifests(manifests)) => {
                        for m in manifests.iter().take(MAX_MANIFESTS) {
                            self.take_manifest(m);
                        }
                    }
                    (Pending::Listener(n), SyncResponse::Receipts(bytes)) => {
                        self.on_listener_page(n, Some(peer), &bytes)
                    }
                    (Pending::Listener(n), _) => self.on_listener_page(n, None, &[]),
                    _ => {}
                }
            }
            Event::OutboundFailure {
                request_id,
                error,
                peer,
                ..
            } => {
                if let Some(Pending::Listener(n)) = self.syncs.remove(&request_id) {
                    self.on_listener_page(n, None, &[]);
                }
                debug!(%peer, "sync request failed: {error}");
            }
            _ => {}
        }
    }

    fn answer(&mut self, request: SyncRequest) -> SyncResponse {
        match request {
            SyncRequest::Ranges { month, ranges } => {
                let replies = month
                    .parse::<Month>()
                    .ok()
                    .and_then(|m| self.sets.get(&m))
                    .map(|set| set.answer(&ranges))
                    .unwrap_or_default();
                SyncResponse::Ranges(replies)
            }
            SyncRequest::Fetch(keys) => {
                let mut out = Vec::new();
                for k in keys.chunks_exact(72).take(MAX_RECEIPTS) {
                    if let Some(r) = self.stored(k) {
                        out.extend_from_slice(&r.to_bytes());
                    }
                }
                SyncResponse::Receipts(out)
            }
            SyncRequest::Push(bytes) => {
                let receipts = self.check_batch(&bytes);
                self.take_in(receipts, Via::Reconciliation);
                SyncResponse::Ack
            }
            SyncRequest::CatalogIds(after) => SyncResponse::CatalogIds(
                self.store
                    .manifest_ids(after.as_ref(), MAX_IDS)
                    .unwrap_or_default(),
            ),
            SyncRequest::Manifests(ids) => SyncResponse::Manifests(
                ids.iter()
                    .take(MAX_MANIFESTS)
                    .filter_map(|id| self.store.manifest(id).ok().flatten())
                    .map(|m| serde_bytes::ByteBuf::from(m.to_bytes()))
                    .collect(),
            ),
            SyncRequest::ListenerReceipts { listener, after } => {
                let mut out = Vec::new();
                let receipts = self
                    .store
                    .receipts_of_listener(&listener)
                    .unwrap_or_default();
                for r in receipts
                    .iter()
                    .filter(|r| after.is_none_or(|a| r.receipt.seq > a))
                    .take(MAX_RECEIPTS)
                {
                    out.extend_from_slice(&r.to_bytes());
                }
                SyncResponse::Receipts(out)
            }
        }
    }

    /// The stored receipt under a reconciliation key.
    fn stored(&self, key: &[u8]) -> Option<SignedReceipt> {
        let listener = PublicKey(key.get(..32)?.try_into().ok()?);
        let seq = u64::from_be_bytes(key.get(32..40)?.try_into().ok()?);
        let id = ContentHash(key.get(40..72)?.try_into().ok()?);
        self.store
            .receipt_by_key(&listener, seq, &id)
            .ok()
            .flatten()
    }

    /// The valid receipts among concatenated binary forms, batch-verified; the rest counted.
    fn check_batch(&mut self, bytes: &[u8]) -> Vec<SignedReceipt> {
        if !bytes.len().is_multiple_of(RECORD_LEN) || bytes.len() / RECORD_LEN > MAX_RECEIPTS {
            self.stats.rejected += 1;
            return Vec::new();
        }
        let parsed: Vec<SignedReceipt> = bytes
            .chunks_exact(RECORD_LEN)
            .filter_map(|c| SignedReceipt::from_bytes(c).ok())
            .collect();
        let valid = verify_all(&parsed);
        let good: Vec<SignedReceipt> = parsed
            .into_iter()
            .zip(valid)
            .filter_map(|(r, ok)| ok.then_some(r))
            .collect();
        self.stats.rejected += (bytes.len() / RECORD_LEN - good.len()) as u64;
        good
    }

    fn follow(&mut self, peer: PeerId, month: Month, round: u32, replies: &[Reply]) {
        let Some(set) = self.sets.get(&month) else {
            return;
        };
        let step = reconcile::follow(set, replies);
        for keys in step.fetch.chunks(MAX_RECEIPTS) {
            self.stats.sync_bytes += (keys.len() * 72) as u64;
            let id = self
                .swarm
                .behaviour_mut()
                .sync
                .send_request(&peer, SyncRequest::Fetch(keys.concat()));
            self.syncs.insert(id, Pending::Reconcile { month, round });
        }
        for keys in step.push.chunks(MAX_RECEIPTS) {
            let mut bytes = Vec::with_capacity(keys.len() * RECORD_LEN);
            // A key not written yet is skipped: the next reconciliation carries it.
            for r in keys.iter().filter_map(|k| self.stored(k)) {
                bytes.extend_from_slice(&r.to_bytes());
            }
            if !bytes.is_empty() {
                self.stats.sync_bytes += bytes.len() as u64;
                let id = self
                    .swarm
                    .behaviour_mut()
                    .sync
                    .send_request(&peer, SyncRequest::Push(bytes));
                self.syncs.insert(id, Pending::Reconcile { month, round });
            }
        }
        if !step.next.is_empty() && round + 1 < MAX_ROUNDS {
            self.send_ranges(peer, month, step.next, round + 1);
        }
    }
}
