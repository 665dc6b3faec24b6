//! Releases: gossip of signed release manifests on the catalog topic, their admission (size,
//! form, bounds, signature, a per-peer rate), durable storage off the event loop, and catalog
//! catch-up over `/9ten/catalog/1.0.0`: a node that connects pages through the peer's release
//! ids (each page strictly increasing and after the last, or the peer is lying) and fetches the
//! manifests it lacks, one page at a time.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use libp2p::gossipsub::{MessageAcceptance, MessageId};
use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};
use libp2p::{PeerId, Swarm};
use nineten_protocol::key::ContentHash;
use nineten_protocol::manifest::SignedManifest;
use nineten_protocol::signature::verify_record;
use nineten_storage::Store;
use serde::{Deserialize, Serialize};
use tracing::warn;

use super::limits::{Budget, Fault};
use super::{Behaviour, Event, Shared};

/// Largest manifest accepted (gossip or catch-up).
pub const MAX_MANIFEST: usize = 64 * 1024;
/// Most release ids in one page.
pub const MAX_IDS: usize = 1024;
/// Most manifests asked for in one request.
pub const MAX_MANIFESTS: usize = 16;
/// New manifests a peer may relay per second (bursts of ten times as many).
const MANIFESTS_PER_SEC: f64 = 5.0;
/// Requests a peer may make per second (bursts of twice as many).
const REQUESTS_PER_SEC: f64 = 20.0;

/// A request of the catalog protocol.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Request {
    /// Your release ids after this one, in byte order.
    Ids(Option<ContentHash>),
    /// These release manifests.
    Manifests(Vec<ContentHash>),
}

/// A response of the catalog protocol.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Response {
    /// Release ids, in byte order.
    Ids(Vec<ContentHash>),
    /// Release manifests (binary forms).
    Manifests(Vec<serde_bytes::ByteBuf>),
    /// Too many requests.
    Refused,
}

/// Results of blocking work, back on the event loop.
#[derive(Debug)]
pub(super) enum Done {
    /// A manifest was stored (or failed to be).
    Stored {
        id: ContentHash,
        result: Result<(), nineten_storage::Error>,
    },
    /// An answer to a peer's request is ready.
    Answer {
        channel: ResponseChannel<Response>,
        response: Response,
    },
}

/// What an outgoing request was.
enum Outbound {
    Ids { after: Option<ContentHash> },
    Manifests(HashSet<ContentHash>),
}

/// A catch-up with one peer: the page being fetched.
struct Paging {
    last: Option<ContentHash>,
    full: bool,
    outstanding: usize,
}

/// The catalog concern.
pub(super) struct Catalog {
    /// Releases stored (or being stored).
    known: HashSet<ContentHash>,
    outbound: HashMap<OutboundRequestId, (PeerId, Outbound)>,
    paging: HashMap<PeerId, Paging>,
    gossip: Budget,
    requests: Budget,
}

impl Catalog {
    /// The catalog concern, knowing the releases already stored.
    pub(super) fn new(store: &Store) -> Result<Self, nineten_storage::Error> {
        let mut known = HashSet::new();
        let mut after = None;
        loop {
            let page = store.manifest_ids(after.as_ref(), MAX_IDS)?;
            known.extend(page.iter().copied());
            match page.last() {
                Some(last) if page.len() == MAX_IDS => after = Some(*last),
                _ => break,
            }
        }
        Ok(Self {
            known,
            outbound: HashMap::new(),
            paging: HashMap::new(),
            gossip: Budget::new(MANIFESTS_PER_SEC, 10.0 * MANIFESTS_PER_SEC),
            requests: Budget::new(REQUESTS_PER_SEC, 2.0 * REQUESTS_PER_SEC),
        })
    }

    /// Marks a release stored here (published by this node).
    pub(super) fn know(&mut self, id: ContentHash) {
        self.known.insert(id);
    }

    /// A gossip message on the catalog topic.
    pub(super) fn on_gossip(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        shared: &mut Shared,
        source: PeerId,
        id: MessageId,
        data: &[u8],
    ) {
        let verdict = match self.take(shared, source, data, true) {
            Taken::New => MessageAcceptance::Accept,
            Taken::Known => MessageAcceptance::Ignore,
            Taken::OverBudget => {
                shared.stats.rate_limited += 1;
                MessageAcceptance::Ignore
            }
            Taken::Bad => MessageAcceptance::Reject,
        };
        let _ = swarm
            .behaviour_mut()
            .gossipsub
            .report_message_validation_result(&id, &source, verdict);
    }

    /// Checks a manifest and sends a new one to the store; gossip (`budgeted`) counts against
    /// the relaying peer's budget, a manifest this node asked for does not.
    fn take(&mut self, shared: &mut Shared, source: PeerId, bytes: &[u8], budgeted: bool) -> Taken {
        let manifest = (bytes.len() <= MAX_MANIFEST)
            .then(|| SignedManifest::from_bytes(bytes).ok())
            .flatten();
        let Some(manifest) = manifest else {
            shared.stats.releases_rejected += 1;
            return Taken::Bad;
        };
        let id = manifest.id();
        if self.known.contains(&id) {
            return Taken::Known;
        }
        if budgeted && !self.gossip.take(source, 1.0, Instant::now()) {
            return Taken::OverBudget;
        }
        if !verify_record(&manifest) {
            shared.stats.releases_rejected += 1;
            return Taken::Bad;
        }
        self.known.insert(id);
        let (store, done) = (shared.store.clone(), shared.done.clone());
        tokio::task::spawn_blocking(move || {
            let result = store.put_manifest(&manifest).map(|_| ());
            let _ = done.send(super::Done::Catalog(Done::Stored { id, result }));
        });
        Taken::New
    }

    /// Starts catching up with a peer's catalog.
    pub(super) fn catch_up(&mut self, swarm: &mut Swarm<Behaviour>, peer: PeerId) {
        if self.paging.contains_key(&peer) {
            return;
        }
        self.paging.insert(
            peer,
            Paging {
                last: None,
                full: false,
                outstanding: 0,
            },
        );
        self.ask_ids(swarm, peer, None);
    }

    fn ask_ids(&mut self, swarm: &mut Swarm<Behaviour>, peer: PeerId, after: Option<ContentHash>) {
        let rid = swarm
            .behaviour_mut()
            .catalog
            .send_request(&peer, Request::Ids(after));
        self.outbound.insert(rid, (peer, Outbound::Ids { after }));
    }

    /// A peer left.
    pub(super) fn on_disconnected(&mut self, peer: &PeerId) {
        self.paging.remove(peer);
        self.gossip.forget(peer);
        self.requests.forget(peer);
    }

    /// Blocking work finished.
    pub(super) fn on_done(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        shared: &mut Shared,
        done: Done,
    ) {
        match done {
            Done::Stored { id, result: Ok(()) } => {
                shared.stats.releases += 1;
                let _ = shared.events.send(Event::Release(id));
            }
            Done::Stored { id, result: Err(e) } => {
                warn!("storing release {id} failed: {e}");
                self.known.remove(&id);
            }
            Done::Answer { channel, response } => {
                let _ = swarm
                    .behaviour_mut()
                    .catalog
                    .send_response(channel, response);
            }
        }
    }

    /// A request-response event of the catalog protocol.
    pub(super) fn on_event(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        shared: &mut Shared,
        event: request_response::Event<Request, Response>,
    ) {
        use request_response::{Event as E, Message};
        match event {
            E::Message {
                peer,
                message:
                    Message::Request {
                        request, channel, ..
                    },
                ..
            } => self.answer(swarm, shared, peer, request, channel),
            E::Message {
                peer,
                message:
                    Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                if let Some((_, outbound)) = self.outbound.remove(&request_id) {
                    self.on_response(swarm, shared, peer, outbound, response);
                }
            }
            E::OutboundFailure { request_id, .. } => {
                if let Some((peer, _)) = self.outbound.remove(&request_id) {
                    self.paging.remove(&peer);
                }
            }
            _ => {}
        }
    }

    fn answer(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        shared: &mut Shared,
        peer: PeerId,
        request: Request,
        channel: ResponseChannel<Response>,
    ) {
        if !self.requests.take(peer, 1.0, Instant::now()) {
            shared.stats.rate_limited += 1;
            shared.fault(peer, Fault::Flood);
            let _ = swarm
                .behaviour_mut()
                .catalog
                .send_response(channel, Response::Refused);
            return;
        }
        let (store, done) = (shared.store.clone(), shared.done.clone());
        tokio::task::spawn_blocking(move || {
            let response = match request {
                Request::Ids(after) => Response::Ids(
                    store
                        .manifest_ids(after.as_ref(), MAX_IDS)
                        .unwrap_or_default(),
                ),
                Request::Manifests(ids) => Response::Manifests(
                    ids.iter()
                        .take(MAX_MANIFESTS)
                        .filter_map(|id| store.manifest(id).ok().flatten())
                        .map(|m| serde_bytes::ByteBuf::from(m.to_bytes()))
                        .collect(),
                ),
            };
            let _ = done.send(super::Done::Catalog(Done::Answer { channel, response }));
        });
    }

    fn on_response(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        shared: &mut Shared,
        peer: PeerId,
        outbound: Outbound,
        response: Response,
    ) {
        match (outbound, response) {
            (Outbound::Ids { after }, Response::Ids(ids)) => {
                let increasing = ids.len() <= MAX_IDS
                    && ids.windows(2).all(|w| w[0] < w[1])
                    && after.is_none_or(|a| ids.first().is_none_or(|f| *f > a));
                if !increasing {
                    shared.fault(peer, Fault::Lie);
                    self.paging.remove(&peer);
                    return;
                }
                let missing: Vec<ContentHash> = ids
                    .iter()
                    .filter(|id| !self.known.contains(id))
                    .copied()
                    .collect();
                let Some(paging) = self.paging.get_mut(&peer) else {
                    return;
                };
                paging.last = ids.last().copied();
                paging.full = ids.len() == MAX_IDS;
                for chunk in missing.chunks(MAX_MANIFESTS) {
                    let rid = swarm
                        .behaviour_mut()
                        .catalog
                        .send_request(&peer, Request::Manifests(chunk.to_vec()));
                    paging.outstanding += 1;
                    self.outbound.insert(
                        rid,
                        (peer, Outbound::Manifests(chunk.iter().copied().collect())),
                    );
                }
                self.next_page(swarm, peer);
            }
            (Outbound::Manifests(asked), Response::Manifests(manifests)) => {
                if manifests.len() > asked.len() {
                    shared.fault(peer, Fault::Lie);
                }
                for m in manifests.iter().take(asked.len()) {
                    let is_asked = SignedManifest::from_bytes(m)
                        .is_ok_and(|parsed| asked.contains(&parsed.id()));
                    if !is_asked || matches!(self.take(shared, peer, m, false), Taken::Bad) {
                        shared.fault(peer, Fault::Lie);
                    }
                }
                if let Some(paging) = self.paging.get_mut(&peer) {
                    paging.outstanding = paging.outstanding.saturating_sub(1);
                }
                self.next_page(swarm, peer);
            }
            (_, Response::Refused) => {
                self.paging.remove(&peer);
            }
            _ => {
                shared.fault(peer, Fault::Lie);
                self.paging.remove(&peer);
            }
        }
    }

    /// Asks for the next page once this one's manifests are in, or ends the catch-up.
    fn next_page(&mut self, swarm: &mut Swarm<Behaviour>, peer: PeerId) {
        let Some(paging) = self.paging.get(&peer) else {
            return;
        };
        if paging.outstanding > 0 {
            return;
        }
        if paging.full {
            let after = paging.last;
            self.ask_ids(swarm, peer, after);
        } else {
            self.paging.remove(&peer);
        }
    }
}

/// What became of a manifest.
enum Taken {
    New,
    Known,
    OverBudget,
    Bad,
}
