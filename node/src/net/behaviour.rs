//! The composed libp2p behaviour and the swarm that runs it: one field per protocol, each
//! configured with its limits (message sizes, gossipsub peer scoring, request timeouts, the
//! bounded DHT store, a block list for banned peers).

use std::time::Duration;

use libp2p::gossipsub::{self, MessageAuthenticity, PeerScoreParams, PeerScoreThresholds};
use libp2p::request_response::{self, ProtocolSupport, cbor};
use libp2p::swarm::NetworkBehaviour;
use libp2p::{StreamProtocol, Swarm, allow_block_list, identify, kad, noise, tcp, yamux};
use nineten_protocol::wire;

use super::{Config, Error, catalog, dht, holders, inputs, receipts, records, subscribe};

/// Largest gossip message (a release manifest; receipts are 232 bytes).
pub const MAX_GOSSIP: usize = records::MAX_MANIFEST;
/// Gossipsub thresholds: below `GRAYLIST` a peer's messages are dropped unread, and the
/// network task bans it.
pub(super) const GRAYLIST: f64 = -80.0;

/// A connection with no stream open closes after this long. Gossipsub's streams keep most
/// connections open past it: `peers` closes those the node does not need.
const IDLE_CONNECTION: Duration = Duration::from_secs(30);

/// Identify's agent string; ` iroh=<socket address>` follows when the node runs an endpoint.
const AGENT: &str = concat!("9ten/", env!("CARGO_PKG_VERSION"));

/// The composed behaviour.
#[derive(NetworkBehaviour)]
pub(super) struct Behaviour {
    /// Banned peers.
    pub blocked: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    /// The DHT.
    pub kad: kad::Behaviour<dht::Store>,
    /// Receipt and catalog gossip.
    pub gossipsub: gossipsub::Behaviour,
    /// Addresses, protocols and iroh endpoints of peers.
    pub identify: identify::Behaviour,
    /// Receipt reconciliation and fetches.
    pub receipts: cbor::Behaviour<receipts::Request, receipts::Response>,
    /// Catalog catch-up.
    pub catalog: cbor::Behaviour<catalog::Request, catalog::Response>,
    /// Node record catch-up.
    pub nodes: cbor::Behaviour<catalog::Request, catalog::Response>,
    /// Subscription catch-up.
    pub subscriptions: cbor::Behaviour<catalog::Request, catalog::Response>,
    /// Subscription requests.
    pub subscribe: cbor::Behaviour<subscribe::Request, subscribe::Response>,
    /// A listener's receipts.
    pub holders: cbor::Behaviour<holders::Request, holders::Response>,
    /// Review record catch-up.
    pub reviews: cbor::Behaviour<catalog::Request, catalog::Response>,
    /// A bundle's inputs.
    pub inputs: cbor::Behaviour<inputs::Request, inputs::Response>,
}

/// Scoring that makes invalid gossip cost its sender: a few rejected messages take a peer
/// below the graylist. Nodes of a testnet share 127.0.0.1, so the same-IP penalty is off.
fn peer_score() -> (PeerScoreParams, PeerScoreThresholds) {
    let params = PeerScoreParams {
        ip_colocation_factor_weight: 0.0,
        ..PeerScoreParams::default()
    };
    let thresholds = PeerScoreThresholds {
        gossip_threshold: -10.0,
        publish_threshold: -50.0,
        graylist_threshold: GRAYLIST,
        accept_px_threshold: 10.0,
        opportunistic_graft_threshold: 5.0,
    };
    (params, thresholds)
}

/// Score parameters of one topic: only invalid messages count (a quiet topic costs no one).
pub(super) fn topic_score() -> gossipsub::TopicScoreParams {
    gossipsub::TopicScoreParams {
        topic_weight: 1.0,
        time_in_mesh_weight: 0.0,
        first_message_deliveries_weight: 0.0,
        mesh_message_deliveries_weight: 0.0,
        mesh_failure_penalty_weight: 0.0,
        invalid_message_deliveries_weight: -10.0,
        invalid_message_deliveries_decay: 0.99,
        ..gossipsub::TopicScoreParams::default()
    }
}

/// A request-response protocol with bounded messages and a timeout.
fn request_response<Req, Resp>(
    name: &'static str,
    max_request: u64,
    max_response: u64,
) -> cbor::Behaviour<Req, Resp>
where
    Req: Send + Clone + serde::Serialize + serde::de::DeserializeOwned + 'static,
    Resp: Send + Clone + serde::Serialize + serde::de::DeserializeOwned + 'static,
{
    let codec = cbor::codec::Codec::<Req, Resp>::default()
        .set_request_size_maximum(max_request)
        .set_response_size_maximum(max_response);
    request_response::Behaviour::with_codec(
        codec,
        [(StreamProtocol::new(name), ProtocolSupport::Full)],
        request_response::Config::default()
            .with_request_timeout(Duration::from_secs(10))
            .with_max_concurrent_streams(32),
    )
}

/// A catch-up protocol of records of at most `max_record` bytes: a page of ids or a batch of
/// records fits its responses.
fn catch_up(
    name: &'static str,
    max_record: usize,
) -> cbor::Behaviour<catalog::Request, catalog::Response> {
    let ids = catalog::MAX_IDS * 40;
    let records = catalog::MAX_RECORDS * (max_record + 64);
    request_response(name, 64 * 1024, (ids.max(records) + 4096) as u64)
}

/// Builds the swarm of the node with identity `key`.
pub(super) fn swarm(
    key: libp2p::identity::Keypair,
    config: &Config,
) -> Result<Swarm<Behaviour>, Error> {
    let err = |e: &dyn std::fmt::Display| Error::Start(e.to_string());
    let iroh = config.iroh;
    let swarm = libp2p::SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| err(&e))?
        .with_behaviour(|key| {
            let peer = key.public().to_peer_id();
            let mut kad_config = kad::Config::new(StreamProtocol::new(wire::KAD_PROTOCOL));
            kad_config.set_query_timeout(Duration::from_secs(10));
            let mut kad = kad::Behaviour::with_config(peer, dht::Store::new(peer), kad_config);
            kad.set_mode(Some(kad::Mode::Server));
            let gossip_config = gossipsub::ConfigBuilder::default()
                .validate_messages()
                .validation_mode(gossipsub::ValidationMode::Anonymous)
                .message_id_fn(|m| {
                    gossipsub::MessageId::from(blake3::hash(&m.data).as_bytes().to_vec())
                })
                .max_transmit_size(MAX_GOSSIP + 1024)
                .heartbeat_initial_delay(Duration::from_millis(100))
                .heartbeat_interval(Duration::from_millis(500))
                .mesh_n(4)
                .mesh_n_low(3)
                .mesh_n_high(8)
                .mesh_outbound_min(1)
                .build()
                .map_err(|e| e.to_string())?;
            let mut gossipsub =
                gossipsub::Behaviour::new(MessageAuthenticity::Anonymous, gossip_config)?;
            let (params, thresholds) = peer_score();
            gossipsub.with_peer_score(params, thresholds)?;
            let agent = match iroh {
                Some(addr) => format!("{AGENT} iroh={addr}"),
                None => AGENT.to_string(),
            };
            let identify = identify::Behaviour::new(
                identify::Config::new(wire::IDENTIFY_VERSION.to_string(), key.public())
                    .with_agent_version(agent),
            );
            let frame = receipts::MAX_FRAME + 4096;
            let fetched = (receipts::MAX_FETCH * 240) as u64 + 4096;
            Ok(Behaviour {
                blocked: allow_block_list::Behaviour::default(),
                kad,
                gossipsub,
                identify,
                receipts: request_response(wire::RECEIPT_SYNC_PROTOCOL, frame, frame.max(fetched)),
                catalog: catch_up(wire::CATALOG_PROTOCOL, records::MAX_MANIFEST),
                nodes: catch_up(wire::NODES_PROTOCOL, 256),
                subscriptions: catch_up(wire::SUBSCRIPTIONS_PROTOCOL, 2048),
                subscribe: request_response(wire::SUBSCRIBE_PROTOCOL, 4096, 4096),
                holders: request_response(
                    wire::HOLDERS_PROTOCOL,
                    4096,
                    (holders::PAGE * 240) as u64 + 4096,
                ),
                reviews: catch_up(wire::REVIEW_PROTOCOL, records::MAX_REVIEW_RECORD),
                inputs: request_response(
                    wire::INPUTS_PROTOCOL,
                    (inputs::MAX_BY_ID * 32 + 4096) as u64,
                    (inputs::MAX_BY_ID * (records::MAX_SUBSCRIPTION + 16) + 4096) as u64,
                ),
            })
        })
        .map_err(|e| err(&e))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(IDLE_CONNECTION))
        .build();
    Ok(swarm)
}
