//! The node's libp2p network: one swarm, owned by one task (the [`Network`] event loop, which
//! only dispatches), driven through a cloneable [`Client`].
//!
//! One module per concern, each with its own state and its own request-response protocol
//! (names in `nineten_protocol::wire`):
//! - [`receipts`]: the month topics' gossip, admission, durable storage and negentropy
//!   reconciliation (`/9ten/receipt-sync/2.0.0`), over the sets of [`set`];
//! - [`catalog`]: records every node holds all of ([`records`]: release manifests, node
//!   subscriptions, review records), each with its gossip topic and catch-up protocol
//!   (`/9ten/catalog/2.0.0`, `/9ten/nodes/1.0.0`, `/9ten/subscriptions/1.0.0`,
//!   `/9ten/review/1.0.0`);
//! - [`inputs`]: a bundle's inputs, page by page, for its reviewers (`/9ten/month-inputs/1.0.0`);
//! - [`admission`]: whose receipts are carried (subscribers of a home node of the directory);
//! - [`providers`]: DHT provider lookups answered with peers' iroh endpoints;
//! - [`subscribe`]: a listener asks a home node for a subscription (`/9ten/subscribe/1.0.0`);
//! - [`holders`]: a listener's receipts gathered from peers (`/9ten/listener-receipts/1.0.0`);
//! - [`dht`]: Kademlia's store, with separate room for our records and others';
//! - [`limits`]: per-peer budgets and the faults that get a peer banned;
//! - [`peers`]: which connections the node keeps;
//! - [`behaviour`]: the composed behaviour and the swarm's configuration.
//!
//! Kademlia runs on `/9ten/kad/1.0.0` in server mode; identify on libp2p's `/ipfs/id/1.0.0`
//! with `/9ten/id/1.0.0` as its protocol version; gossipsub is anonymous (each record carries
//! its own signature) with peer scoring that makes invalid messages cost their sender. Slow
//! work (signature batches, the store, reconciliation) runs in blocking tasks that report
//! back to the loop as [`Done`]. Nothing reaches beyond the addresses given: no mDNS, no
//! relays, no public bootstrap nodes.

mod admission;
mod behaviour;
pub mod catalog;
pub mod dht;
pub mod holders;
pub mod inputs;
pub mod limits;
mod peers;
pub mod providers;
pub mod receipts;
pub mod records;
mod set;
pub mod subscribe;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic};
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, Swarm, identify, kad};
use nineten_protocol::key::{ContentHash, PublicKey};
use nineten_protocol::manifest::SignedManifest;
use nineten_protocol::month::Month;
use nineten_protocol::node_record::SignedNodeRecord;
use nineten_protocol::receipt::SignedReceipt;
use nineten_protocol::review_record::ReviewRecord;
use nineten_protocol::subscription::SignedSubscription;
use nineten_protocol::wire;
use nineten_storage::Store;
use tokio::sync::{broadcast, mpsc, oneshot};
use tracing::{debug, info};

use self::behaviour::{Behaviour, BehaviourEvent};
use self::catalog::Kind;
use self::limits::{Conduct, Fault};
use self::providers::Wait;
use self::records::{
    NodeCatalog, Nodes, ReleaseCatalog, Releases, ReviewCatalog, Reviews, SubscriptionCatalog,
    Subscriptions,
};
use crate::clock::Clock;

pub use self::behaviour::MAX_GOSSIP;

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
    /// The node's clock (a receipt may not start far ahead of it).
    pub clock: Clock,
    /// How this node takes subscription requests, when it is a home node.
    pub home: Option<subscribe::Policy>,
}

/// The topic of release manifests.
pub fn catalog_topic() -> IdentTopic {
    IdentTopic::new(wire::CATALOG_TOPIC)
}

/// The topic of a month's receipts.
pub fn receipt_topic(month: Month) -> IdentTopic {
    IdentTopic::new(wire::receipt_topic(month))
}

/// What a node learnt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A valid receipt new to this node was stored.
    Receipt {
        /// Its record id.
        id: ContentHash,
        /// How it arrived.
        via: Via,
    },
    /// A release manifest new to this node was checked and stored.
    Release(ContentHash),
    /// A node record new to this node was checked and stored.
    NodeRecord(ContentHash),
    /// A subscription new to this node was checked and stored.
    Subscription(ContentHash),
    /// A review record new to this node was checked and stored.
    Review(ContentHash),
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

/// Counters of what the network did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Gossip messages received on receipt topics.
    pub gossip_received: u64,
    /// New valid receipts stored (gossip, reconciliation or local).
    pub accepted: u64,
    /// Messages or receipts refused: wrong size, malformed, wrong month or bad signature.
    pub rejected: u64,
    /// Valid receipts not taken: from the future or over the listener's monthly cap.
    pub refused: u64,
    /// Receipts received again.
    pub duplicates: u64,
    /// Receipts learnt through reconciliation.
    pub reconciled: u64,
    /// Messages and requests over a peer's budget (ignored or refused).
    pub rate_limited: u64,
    /// Peers banned for their faults.
    pub banned: u64,
    /// Release manifests taken in (gossip or catalog catch-up).
    pub releases: u64,
    /// Release manifests refused (malformed or a bad signature).
    pub releases_rejected: u64,
    /// Node records taken in (gossip or catch-up).
    pub node_records: u64,
    /// Node records refused (malformed or a bad signature).
    pub node_records_rejected: u64,
    /// Subscriptions taken in (gossip or catch-up).
    pub subscriptions: u64,
    /// Subscriptions refused (malformed, too long or a bad signature).
    pub subscriptions_rejected: u64,
    /// Review records taken in (new, valid, stored).
    pub reviews: u64,
    /// Review records refused: malformed, forged or over the sender's rate.
    pub reviews_rejected: u64,
    /// Valid receipts not carried: no subscription of the month by a home node of the
    /// directory names their key and the home node they name.
    pub unsubscribed: u64,
    /// Reconciliation payload bytes this node sent (frames, ids and receipts; CBOR framing
    /// and transport overhead not counted).
    pub sync_bytes: u64,
}

/// What went wrong in the network.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The network task has stopped.
    #[error("the network task has stopped")]
    Stopped,
    /// The swarm could not be built or could not listen.
    #[error("cannot start the network: {0}")]
    Start(String),
    /// A dial failed at once.
    #[error("cannot dial {addr}")]
    Dial {
        /// The address.
        addr: Multiaddr,
        /// Why.
        #[source]
        source: Box<libp2p::swarm::DialError>,
    },
    /// A receipt of a month this node does not serve.
    #[error("the receipt's month{} is not one this node serves", .0.map(|m| format!(" ({m})")).unwrap_or_default())]
    MonthNotServed(Option<Month>),
    /// Gossip refused a message.
    #[error("gossiping failed")]
    Publish(#[source] gossipsub::PublishError),
    /// A topic could not be joined.
    #[error("cannot join topic {topic}")]
    Subscribe {
        /// The topic.
        topic: String,
        /// Why.
        #[source]
        source: gossipsub::SubscriptionError,
    },
    /// The DHT store refused a provider record.
    #[error("cannot announce a provider record")]
    Provide(#[source] kad::store::Error),
    /// The store failed.
    #[error(transparent)]
    Storage(#[from] nineten_storage::Error),
    /// The receipt writer is behind: try again.
    #[error("the receipt writer is busy")]
    Busy,
    /// A key that is no node's.
    #[error("{0} is not a node key")]
    NoSuchNode(PublicKey),
    /// A request to a node failed.
    #[error("cannot reach node {node}: {why}")]
    Unreachable {
        /// The node.
        node: PublicKey,
        /// What failed.
        why: String,
    },
    /// A node's answer does not hold.
    #[error("the node's answer does not hold: {0}")]
    BadAnswer(String),
    /// A receipt this node signed that the network does not carry: its key has no
    /// subscription of the month from the home node it names, or that node is not in the
    /// month's directory. It stays in this node's store.
    #[error("the receipt's listener key has no subscription known from the home node it names")]
    Unsubscribed,
}

/// Joins a topic, with its score parameters.
fn subscribe(swarm: &mut Swarm<Behaviour>, topic: &IdentTopic) -> Result<(), Error> {
    let g = &mut swarm.behaviour_mut().gossipsub;
    g.subscribe(topic).map_err(|source| Error::Subscribe {
        topic: topic.to_string(),
        source,
    })?;
    // Only fails when scoring is off, and it is on.
    let _ = g.set_topic_params(topic.clone(), behaviour::topic_score());
    Ok(())
}

enum Command {
    Dial(Multiaddr, oneshot::Sender<Result<(), Error>>),
    Publish(SignedReceipt, oneshot::Sender<Result<(), Error>>),
    PublishRaw(IdentTopic, Vec<u8>, oneshot::Sender<Result<(), Error>>),
    Stats(oneshot::Sender<Stats>),
    Held(Month, oneshot::Sender<usize>),
    ServeMonth(Month, oneshot::Sender<Result<(), Error>>),
    ListenAddrs(oneshot::Sender<Vec<Multiaddr>>),
    Peers(oneshot::Sender<Vec<PeerId>>),
    MeshPeers(Month, oneshot::Sender<usize>),
    Disconnect(PeerId, oneshot::Sender<()>),
    Provide(ContentHash, oneshot::Sender<Result<(), Error>>),
    StopProviding(ContentHash, oneshot::Sender<()>),
    Providers(ContentHash, Wait, oneshot::Sender<Vec<iroh::EndpointAddr>>),
    PublishRelease(Box<SignedManifest>, oneshot::Sender<Result<(), Error>>),
    PublishNodeRecord(Box<SignedNodeRecord>, oneshot::Sender<Result<(), Error>>),
    PublishSubscription(Box<SignedSubscription>, oneshot::Sender<Result<(), Error>>),
    PublishReview(Box<ReviewRecord>, oneshot::Sender<Result<(), Error>>),
    Inputs(
        PublicKey,
        inputs::Request,
        oneshot::Sender<Result<inputs::Response, Error>>,
    ),
    ListenerReceipts(PublicKey, oneshot::Sender<Vec<SignedReceipt>>),
    Subscribe(
        PublicKey,
        Box<subscribe::Request>,
        oneshot::Sender<Result<subscribe::Response, Error>>,
    ),
    Shutdown(oneshot::Sender<()>),
}

/// A handle to the network task; cheap to clone.
#[derive(Clone, Debug)]
pub struct Client {
    commands: mpsc::Sender<Command>,
    events: broadcast::Sender<Event>,
}

impl Client {
    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, Error> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(make(tx))
            .await
            .map_err(|_| Error::Stopped)?;
        rx.await.map_err(|_| Error::Stopped)
    }

    /// Connects to a peer.
    pub async fn dial(&self, addr: Multiaddr) -> Result<(), Error> {
        self.ask(|tx| Command::Dial(addr, tx)).await?
    }

    /// Stores a receipt this node signed (durably), then takes it in and gossips it on its
    /// month's topic; returns once both are done.
    pub async fn publish(&self, receipt: SignedReceipt) -> Result<(), Error> {
        self.ask(|tx| Command::Publish(receipt, tx)).await?
    }

    /// Publishes bytes on a topic ([`receipt_topic`], [`catalog_topic`]) as they are,
    /// unchecked: for testnets that simulate misbehaving nodes.
    pub async fn publish_raw(&self, topic: IdentTopic, bytes: Vec<u8>) -> Result<(), Error> {
        self.ask(|tx| Command::PublishRaw(topic, bytes, tx)).await?
    }

    /// The counters.
    pub async fn stats(&self) -> Result<Stats, Error> {
        self.ask(Command::Stats).await
    }

    /// Starts gossiping and reconciling `month`'s receipts too (a node running into a new
    /// month), and stops serving months before the previous one; nothing happens if it
    /// already serves `month`.
    pub async fn serve_month(&self, month: Month) -> Result<(), Error> {
        self.ask(|tx| Command::ServeMonth(month, tx)).await?
    }

    /// How many receipts of `month` this node holds.
    pub async fn held(&self, month: Month) -> Result<usize, Error> {
        self.ask(|tx| Command::Held(month, tx)).await
    }

    /// The addresses the node listens on, with its peer id.
    pub async fn listen_addrs(&self) -> Result<Vec<Multiaddr>, Error> {
        self.ask(Command::ListenAddrs).await
    }

    /// Connected peers.
    pub async fn peers(&self) -> Result<Vec<PeerId>, Error> {
        self.ask(Command::Peers).await
    }

    /// Peers in this node's gossip mesh for `month`'s receipts (0 until the mesh forms).
    pub async fn mesh_peers(&self, month: Month) -> Result<usize, Error> {
        self.ask(|tx| Command::MeshPeers(month, tx)).await
    }

    /// Closes every connection to `peer` (it may reconnect later).
    pub async fn disconnect(&self, peer: PeerId) -> Result<(), Error> {
        self.ask(|tx| Command::Disconnect(peer, tx)).await
    }

    /// Announces in the DHT that this node provides `blob` (a track or a seek index), and
    /// answers once the announcement has been offered to the peers closest to its key (or
    /// the query gave up; the record is kept and republished either way), so that a release
    /// published is a release listeners can find.
    pub async fn provide(&self, blob: ContentHash) -> Result<(), Error> {
        self.ask(|tx| Command::Provide(blob, tx)).await?
    }

    /// Withdraws this node's provider record for `blob` (it no longer holds it).
    pub async fn stop_providing(&self, blob: ContentHash) -> Result<(), Error> {
        self.ask(|tx| Command::StopProviding(blob, tx)).await
    }

    /// Gossips a release manifest (already stored) on the catalog topic. Peers not reached
    /// now get it when they next connect (catalog catch-up).
    pub async fn publish_release(&self, manifest: SignedManifest) -> Result<(), Error> {
        self.ask(|tx| Command::PublishRelease(Box::new(manifest), tx))
            .await?
    }

    /// Takes in a node record this node signed (stored already) and gossips it; peers not
    /// reached now get it by catch-up.
    pub async fn publish_node_record(&self, record: SignedNodeRecord) -> Result<(), Error> {
        self.ask(|tx| Command::PublishNodeRecord(Box::new(record), tx))
            .await?
    }

    /// Takes in a subscription (verified and stored already: signed here, or received from a
    /// home node) and gossips it; peers not reached now get it by catch-up.
    pub async fn publish_subscription(
        &self,
        subscription: SignedSubscription,
    ) -> Result<(), Error> {
        self.ask(|tx| Command::PublishSubscription(Box::new(subscription), tx))
            .await?
    }

    /// Gossips a review record (verified and stored already); peers not reached now get it
    /// by catch-up.
    pub async fn publish_review(&self, record: ReviewRecord) -> Result<(), Error> {
        self.ask(|tx| Command::PublishReview(Box::new(record), tx))
            .await?
    }

    /// Asks `node` for a bundle's inputs or the records they name; the caller checks the
    /// answer.
    pub async fn inputs(
        &self,
        node: PublicKey,
        request: inputs::Request,
    ) -> Result<inputs::Response, Error> {
        self.ask(|tx| Command::Inputs(node, request, tx)).await?
    }

    /// Asks the home node `home` for a subscription; a subscription it signs is checked (the
    /// one asked for, signed by `home`). The caller stores it, then
    /// [`Client::publish_subscription`].
    pub async fn subscribe(
        &self,
        home: PublicKey,
        request: subscribe::Request,
    ) -> Result<subscribe::Outcome, Error> {
        let response = self
            .ask(|tx| Command::Subscribe(home, Box::new(request.clone()), tx))
            .await??;
        subscribe::outcome(&home, &request, response)
    }

    /// A listener's receipts as a reviewer finds them: this node's and those its connected
    /// peers send, checked (signature, listener, order); sorted by seq.
    pub async fn listener_receipts(
        &self,
        listener: PublicKey,
    ) -> Result<Vec<SignedReceipt>, Error> {
        self.ask(|tx| Command::ListenerReceipts(listener, tx)).await
    }

    /// Providers of `blob` found in the DHT, as iroh addresses, this node excluded: the first
    /// reachable ones found, or none when the lookup ends without any.
    pub async fn providers(&self, blob: ContentHash) -> Result<Vec<iroh::EndpointAddr>, Error> {
        self.ask(|tx| Command::Providers(blob, Wait::First, tx))
            .await
    }

    /// Every provider of `blob` the whole DHT lookup finds (slower than
    /// [`Client::providers`]: for adding providers to a fetch under way).
    pub async fn all_providers(&self, blob: ContentHash) -> Result<Vec<iroh::EndpointAddr>, Error> {
        self.ask(|tx| Command::Providers(blob, Wait::All, tx)).await
    }

    /// Events from now on. A receiver that falls more than 4096 events behind loses the
    /// oldest.
    pub fn events(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// Stops the network task once the receipts it took in are stored.
    pub async fn shutdown(&self) {
        let _ = self.ask(Command::Shutdown).await;
    }
}

/// The libp2p identity of a node seed: the same key as the node's signing key.
pub fn keypair(seed: &[u8; 32]) -> libp2p::identity::Keypair {
    libp2p::identity::Keypair::ed25519_from_bytes(*seed).expect("any 32 bytes are an ed25519 seed")
}

/// Results of blocking work, per concern.
#[derive(Debug)]
enum Done {
    /// Of [`receipts`].
    Receipts(receipts::Done),
    /// Of the release catalog.
    Releases(catalog::Done<SignedManifest>),
    /// Of the node records.
    Nodes(catalog::Done<SignedNodeRecord>),
    /// Of the subscriptions.
    Subscriptions(catalog::Done<SignedSubscription>),
    /// Of [`holders`].
    Holders(holders::Done),
    /// Of [`subscribe`].
    Subscribe(subscribe::Done),
    /// Of the review records.
    Reviews(catalog::Done<ReviewRecord>),
    /// Of [`inputs`].
    Inputs(inputs::Done),
}

/// What every concern uses: the store, counters, events, the way back from blocking work, and
/// the peers' conduct.
struct Shared {
    store: Store,
    stats: Stats,
    events: broadcast::Sender<Event>,
    done: mpsc::UnboundedSender<Done>,
    conduct: Conduct,
    /// Peers to ban at the end of this turn of the loop.
    to_ban: Vec<PeerId>,
}

impl Shared {
    /// Records a peer's fault; a peer at its limit is banned.
    fn fault(&mut self, peer: PeerId, fault: Fault) {
        if self.conduct.fault(peer, fault, Instant::now()) {
            self.to_ban.push(peer);
        }
    }
}

/// The event loop: owns the swarm and each concern's state.
pub struct Network {
    swarm: Swarm<Behaviour>,
    commands: mpsc::Receiver<Command>,
    done_rx: mpsc::UnboundedReceiver<Done>,
    shared: Shared,
    receipts: receipts::Receipts,
    releases: ReleaseCatalog,
    nodes: NodeCatalog,
    subscriptions: SubscriptionCatalog,
    providers: providers::Providers,
    holders: holders::Holders,
    subscribe: subscribe::Subscribe,
    reviews: ReviewCatalog,
    inputs: inputs::Inputs,
    peers: peers::Peers,
    sync_interval: Duration,
    /// A pseudo-random peer picker for periodic syncs.
    turn: usize,
}

/// Starts the network for the node with identity `seed`; returns the client and the event
/// loop to spawn (`tokio::spawn(network.run())`).
pub fn new(seed: &[u8; 32], config: Config, store: Store) -> Result<(Client, Network), Error> {
    let mut swarm = behaviour::swarm(keypair(seed), &config)?;
    for month in &config.months {
        subscribe(&mut swarm, &receipt_topic(*month))?;
    }
    subscribe(&mut swarm, &Releases::topic())?;
    subscribe(&mut swarm, &Nodes::topic())?;
    subscribe(&mut swarm, &Subscriptions::topic())?;
    subscribe(&mut swarm, &Reviews::topic())?;
    swarm
        .listen_on(config.listen.clone())
        .map_err(|e| Error::Start(format!("listening on {}: {e}", config.listen)))?;
    for peer in config.peers {
        swarm.dial(peer.clone()).map_err(|source| Error::Dial {
            addr: peer,
            source: Box::new(source),
        })?;
    }
    let (tx, commands) = mpsc::channel(256);
    let (done, done_rx) = mpsc::unbounded_channel();
    let (events, _) = broadcast::channel(4096);
    let shared = Shared {
        store: store.clone(),
        stats: Stats::default(),
        events: events.clone(),
        done,
        conduct: Conduct::default(),
        to_ban: Vec::new(),
    };
    let receipts = receipts::Receipts::new(&store, &config.months, &shared, config.clock.clone())?;
    let releases = ReleaseCatalog::new(&store, config.clock.clone())?;
    let nodes = NodeCatalog::new(&store, config.clock.clone())?;
    let subscriptions = SubscriptionCatalog::new(&store, config.clock.clone())?;
    let reviews = ReviewCatalog::new(&store, config.clock.clone())?;
    Ok((
        Client {
            commands: tx,
            events: events.clone(),
        },
        Network {
            swarm,
            commands,
            done_rx,
            shared,
            receipts,
            releases,
            nodes,
            subscriptions,
            providers: providers::Providers::default(),
            holders: holders::Holders::default(),
            subscribe: subscribe::Subscribe::new(
                config
                    .home
                    .map(|p| (nineten_protocol::identity::Keypair::from_seed(*seed), p)),
                config.clock.clone(),
            ),
            reviews,
            inputs: inputs::Inputs::default(),
            peers: peers::Peers::default(),
            sync_interval: config.sync_interval,
            turn: 0,
        },
    ))
}

impl Network {
    /// Runs until [`Client::shutdown`] or until every client is dropped.
    pub async fn run(mut self) {
        let mut tick = tokio::time::interval(self.sync_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut second = tokio::time::interval(Duration::from_secs(1));
        let stopped = loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm(event),
                done = self.done_rx.recv() => {
                    if let Some(done) = done {
                        self.on_done(done);
                    }
                }
                command = self.commands.recv() => match command {
                    Some(Command::Shutdown(tx)) => break Some(tx),
                    None => break None,
                    Some(c) => self.on_command(c),
                },
                _ = tick.tick() => self.sync_with_next_peer(),
                _ = second.tick() => self.every_second(),
            }
            self.apply_bans();
        };
        self.drain().await;
        if let Some(tx) = stopped {
            let _ = tx.send(());
        }
    }

    /// Waits until the receipts taken in are stored (or refused by the store).
    async fn drain(&mut self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while self.receipts.writing() {
            match tokio::time::timeout_at(deadline, self.done_rx.recv()).await {
                Ok(Some(done)) => self.on_done(done),
                _ => break,
            }
        }
    }

    fn on_done(&mut self, done: Done) {
        let (swarm, shared) = (&mut self.swarm, &mut self.shared);
        match done {
            Done::Receipts(d) => self.receipts.on_done(swarm, shared, d),
            Done::Releases(d) => {
                if let Some(m) = self.releases.on_done(swarm, shared, d) {
                    let _ = shared.events.send(Event::Release(m.id()));
                }
            }
            Done::Nodes(d) => {
                if let Some(r) = self.nodes.on_done(swarm, shared, d) {
                    let _ = shared.events.send(Event::NodeRecord(r.id()));
                    self.receipts.on_node_record(r);
                }
            }
            Done::Subscriptions(d) => {
                if let Some(s) = self.subscriptions.on_done(swarm, shared, d) {
                    let _ = shared.events.send(Event::Subscription(s.id()));
                    self.receipts.on_subscription(&s);
                }
            }
            Done::Holders(d) => self.holders.on_done(swarm, shared, d),
            Done::Reviews(d) => {
                if let Some(r) = self.reviews.on_done(swarm, shared, d) {
                    let _ = shared.events.send(Event::Review(r.id()));
                }
            }
            Done::Inputs(d) => self.inputs.on_done(swarm, d),
            Done::Subscribe(d) => {
                if let Some(s) = self.subscribe.on_done(&mut self.swarm, d)
                    && let Err(e) = self.spread_subscription(&s)
                {
                    debug!("gossiping a subscription signed here failed: {e}");
                }
            }
        }
        for peer in self.receipts.take_lacking() {
            self.subscriptions.catch_up_again(&mut self.swarm, peer);
        }
    }

    /// Disconnects and blocks the peers whose faults reached the limit.
    fn apply_bans(&mut self) {
        for peer in std::mem::take(&mut self.shared.to_ban) {
            info!(%peer, "peer banned for its faults");
            self.shared.stats.banned += 1;
            self.swarm.behaviour_mut().blocked.block_peer(peer);
        }
    }

    fn every_second(&mut self) {
        let now = Instant::now();
        self.providers.tick(now);
        self.receipts.tick(now);
        for peer in self.shared.conduct.expire(now) {
            self.swarm.behaviour_mut().blocked.unblock_peer(peer);
        }
        let mesh = self
            .swarm
            .behaviour()
            .gossipsub
            .all_mesh_peers()
            .copied()
            .collect();
        let idle = self
            .peers
            .to_close(self.swarm.connected_peers().copied(), &mesh, now);
        for peer in idle {
            debug!(%peer, "closing an idle connection");
            let _ = self.swarm.disconnect_peer_id(peer);
        }
        // Peers that gossip invalid messages fall below the graylist: ban them.
        let graylisted: Vec<PeerId> = self
            .swarm
            .connected_peers()
            .filter(|p| {
                self.swarm
                    .behaviour()
                    .gossipsub
                    .peer_score(p)
                    .is_some_and(|s| s < behaviour::GRAYLIST)
            })
            .copied()
            .collect();
        for peer in graylisted {
            if self.shared.conduct.ban(peer, now) {
                self.shared.to_ban.push(peer);
            }
        }
    }

    fn on_command(&mut self, command: Command) {
        let (swarm, shared) = (&mut self.swarm, &mut self.shared);
        match command {
            Command::Dial(addr, tx) => {
                let result = swarm.dial(addr.clone()).map_err(|source| Error::Dial {
                    addr,
                    source: Box::new(source),
                });
                let _ = tx.send(result);
            }
            Command::Publish(receipt, tx) => self.receipts.publish(receipt, tx),
            Command::PublishRaw(topic, bytes, tx) => {
                let result = swarm
                    .behaviour_mut()
                    .gossipsub
                    .publish(topic, bytes)
                    .map(|_| ())
                    .map_err(Error::Publish);
                let _ = tx.send(result);
            }
            Command::Stats(tx) => {
                let _ = tx.send(shared.stats);
            }
            Command::ServeMonth(month, tx) => self.receipts.serve(swarm, shared, month, tx),
            Command::Held(month, tx) => {
                let _ = tx.send(self.receipts.held(month));
            }
            Command::ListenAddrs(tx) => {
                let me = *swarm.local_peer_id();
                let addrs = swarm
                    .listeners()
                    .map(|a| a.clone().with_p2p(me).unwrap_or_else(|a| a))
                    .collect();
                let _ = tx.send(addrs);
            }
            Command::Peers(tx) => {
                let _ = tx.send(swarm.connected_peers().copied().collect());
            }
            Command::MeshPeers(month, tx) => {
                let topic = receipt_topic(month).hash();
                let _ = tx.send(swarm.behaviour().gossipsub.mesh_peers(&topic).count());
            }
            Command::Disconnect(peer, tx) => {
                let _ = swarm.disconnect_peer_id(peer);
                let _ = tx.send(());
            }
            Command::Provide(blob, tx) => {
                self.providers
                    .announce(swarm, kad::RecordKey::new(&wire::provider_key(&blob)), tx)
            }
            Command::StopProviding(blob, tx) => {
                swarm
                    .behaviour_mut()
                    .kad
                    .stop_providing(&kad::RecordKey::new(&wire::provider_key(&blob)));
                let _ = tx.send(());
            }
            Command::PublishRelease(manifest, tx) => {
                let _ = tx.send(self.releases.publish(swarm, &manifest));
            }
            Command::PublishNodeRecord(record, tx) => {
                let result = self.nodes.publish(swarm, &record);
                self.receipts.on_node_record(*record);
                let _ = tx.send(result);
            }
            Command::PublishSubscription(subscription, tx) => {
                let _ = tx.send(self.spread_subscription(&subscription));
            }
            Command::PublishReview(record, tx) => {
                let _ = tx.send(self.reviews.publish(swarm, &record));
            }
            Command::Inputs(node, request, tx) => self.inputs.ask(swarm, node, request, tx),
            Command::Subscribe(home, request, tx) => self.subscribe.ask(swarm, home, *request, tx),
            Command::ListenerReceipts(listener, tx) => {
                self.holders.look_up(swarm, shared, listener, tx)
            }
            Command::Providers(blob, wait, tx) => self.providers.look_up(
                swarm,
                kad::RecordKey::new(&wire::provider_key(&blob)),
                wait,
                tx,
            ),
            Command::Shutdown(_) => {}
        }
    }

    fn on_swarm(&mut self, event: SwarmEvent<BehaviourEvent>) {
        let (swarm, shared) = (&mut self.swarm, &mut self.shared);
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => {
                let (source, data) = (propagation_source, &message.data);
                if message.topic == Releases::topic().hash() {
                    return self
                        .releases
                        .on_gossip(swarm, shared, source, message_id, data);
                }
                if message.topic == Nodes::topic().hash() {
                    return self
                        .nodes
                        .on_gossip(swarm, shared, source, message_id, data);
                }
                if message.topic == Subscriptions::topic().hash() {
                    return self
                        .subscriptions
                        .on_gossip(swarm, shared, source, message_id, data);
                }
                if message.topic == Reviews::topic().hash() {
                    return self
                        .reviews
                        .on_gossip(swarm, shared, source, message_id, data);
                }
                let month = self
                    .receipts
                    .months()
                    .find(|m| receipt_topic(*m).hash() == message.topic);
                match month {
                    Some(month) => self.receipts.on_gossip(
                        swarm,
                        shared,
                        propagation_source,
                        message_id,
                        month,
                        &message.data,
                    ),
                    None => {
                        let _ = swarm
                            .behaviour_mut()
                            .gossipsub
                            .report_message_validation_result(
                                &message_id,
                                &propagation_source,
                                gossipsub::MessageAcceptance::Ignore,
                            );
                    }
                }
            }
            // A dialing peer is reachable at its listen addresses only if it serves our DHT.
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) => {
                let kad_protocol = libp2p::StreamProtocol::new(wire::KAD_PROTOCOL);
                if info.protocols.contains(&kad_protocol) {
                    for addr in info.listen_addrs.iter().take(8) {
                        swarm
                            .behaviour_mut()
                            .kad
                            .add_address(&peer_id, addr.clone());
                    }
                }
                self.providers.on_identify(peer_id, &info);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Kad(kad::Event::OutboundQueryProgressed {
                id,
                result: kad::QueryResult::GetProviders(result),
                step,
                ..
            })) if self.providers.owns(&id) => {
                self.providers.on_progress(swarm, id, result, step.last)
            }
            SwarmEvent::Behaviour(BehaviourEvent::Kad(kad::Event::OutboundQueryProgressed {
                id,
                result: kad::QueryResult::StartProviding(result),
                ..
            })) => self.providers.on_announced(id, result),
            SwarmEvent::Behaviour(BehaviourEvent::Receipts(event)) => {
                self.receipts.on_sync(swarm, shared, event)
            }
            SwarmEvent::Behaviour(BehaviourEvent::Catalog(event)) => {
                self.peers.used(peer_of(&event), Instant::now());
                self.releases.on_event(swarm, shared, event)
            }
            SwarmEvent::Behaviour(BehaviourEvent::Nodes(event)) => {
                self.peers.used(peer_of(&event), Instant::now());
                self.nodes.on_event(swarm, shared, event)
            }
            SwarmEvent::Behaviour(BehaviourEvent::Subscriptions(event)) => {
                self.peers.used(peer_of(&event), Instant::now());
                self.subscriptions.on_event(swarm, shared, event)
            }
            SwarmEvent::Behaviour(BehaviourEvent::Subscribe(event)) => {
                self.peers.used(peer_of(&event), Instant::now());
                self.subscribe.on_event(swarm, shared, event)
            }
            SwarmEvent::Behaviour(BehaviourEvent::Holders(event)) => {
                self.peers.used(peer_of(&event), Instant::now());
                self.holders.on_event(swarm, shared, event)
            }
            SwarmEvent::Behaviour(BehaviourEvent::Reviews(event)) => {
                self.peers.used(peer_of(&event), Instant::now());
                self.reviews.on_event(swarm, shared, event)
            }
            SwarmEvent::Behaviour(BehaviourEvent::Inputs(event)) => {
                self.peers.used(peer_of(&event), Instant::now());
                self.inputs.on_event(swarm, shared, event)
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                num_established,
                ..
            } if num_established.get() == 1 => {
                self.peers.connected(peer_id, Instant::now());
                self.receipts.sync_with(shared, peer_id);
                self.releases.catch_up(swarm, peer_id);
                self.nodes.catch_up(swarm, peer_id);
                self.subscriptions.catch_up(swarm, peer_id);
                self.reviews.catch_up(swarm, peer_id);
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => {
                self.receipts.on_disconnected(&peer_id);
                self.releases.on_disconnected(&peer_id);
                self.nodes.on_disconnected(&peer_id);
                self.subscriptions.on_disconnected(&peer_id);
                self.reviews.on_disconnected(&peer_id);
                self.providers.on_disconnected(&peer_id);
                self.peers.on_disconnected(&peer_id);
                debug!(%peer_id, "peer left");
            }
            _ => {}
        }
    }

    /// A subscription stored here (signed here, or received from its home node): admission
    /// takes it in, and it is gossiped.
    fn spread_subscription(&mut self, s: &SignedSubscription) -> Result<(), Error> {
        self.receipts.on_subscription(s);
        self.subscriptions.publish(&mut self.swarm, s)
    }

    /// Reconciles with the next connected peer in turn.
    fn sync_with_next_peer(&mut self) {
        let peers: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
        if peers.is_empty() {
            return;
        }
        self.turn = self.turn.wrapping_add(1);
        let peer = peers[self.turn.wrapping_mul(7919) % peers.len()];
        self.receipts.sync_with(&self.shared, peer);
    }
}

/// The libp2p peer id of a node key (the same Ed25519 key), if it is one.
pub fn peer_id(node: &PublicKey) -> Option<PeerId> {
    let key = libp2p::identity::ed25519::PublicKey::try_from_bytes(&node.0).ok()?;
    Some(libp2p::identity::PublicKey::from(key).to_peer_id())
}

/// The peer a request-response event is about.
fn peer_of<Req, Resp>(event: &libp2p::request_response::Event<Req, Resp>) -> PeerId {
    use libp2p::request_response::Event as E;
    match event {
        E::Message { peer, .. }
        | E::OutboundFailure { peer, .. }
        | E::InboundFailure { peer, .. }
        | E::ResponseSent { peer, .. } => *peer,
    }
}
