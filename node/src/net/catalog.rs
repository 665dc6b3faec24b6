//! Signed records that every node holds all of, each kind on its own gossip topic with its own
//! catch-up protocol: gossip with admission (size, form, rules, signature, a per-peer rate),
//! durable storage off the event loop, and catch-up: a node that connects pages through the
//! peer's record ids (each page strictly increasing and after the last, or the peer is lying)
//! and fetches the records it lacks, one page at a time. The kinds ([`Kind`]) are in
//! [`super::records`]: release manifests, node records and subscriptions.

use std::collections::{HashMap, HashSet};
use std::marker::PhantomData;
use std::time::{Duration, Instant};

use libp2p::gossipsub::{IdentTopic, MessageAcceptance, MessageId};
use libp2p::request_response::{self, OutboundRequestId, ResponseChannel, cbor};
use libp2p::{PeerId, Swarm};
use nineten_protocol::key::ContentHash;
use nineten_protocol::month::Month;
use nineten_protocol::signature::{Signed, verify_record};
use nineten_storage::Store;
use serde::{Deserialize, Serialize};
use tracing::warn;

use super::limits::{Budget, Fault};
use super::{Behaviour, Shared, Stats};
use crate::clock::Clock;

/// Most record ids in one page.
pub const MAX_IDS: usize = 1024;
/// Most records asked for in one request.
pub const MAX_RECORDS: usize = 16;
/// Requests a peer may make per second on one kind's protocol (bursts of twice as many).
const REQUESTS_PER_SEC: f64 = 20.0;
/// How long after a catch-up with a peer began another one may start when asked for
/// ([`Catalog::catch_up_again`]): soon enough that a record gossip missed comes within
/// seconds, rarely enough that a peer cannot keep this node paging through its ids.
const CATCH_UP_AGAIN: Duration = Duration::from_secs(5);

/// One kind of record a [`Catalog`] carries.
pub(super) trait Kind: 'static {
    /// The record, checked.
    type Record: Signed + Clone + Send + 'static;
    /// Largest binary form accepted.
    const MAX_BYTES: usize;
    /// New records a peer may relay by gossip per second (bursts of ten times as many).
    const PER_SEC: f64;
    /// The gossip topic.
    fn topic() -> IdentTopic;
    /// The kind's catch-up protocol in the behaviour.
    fn protocol(behaviour: &mut Behaviour) -> &mut cbor::Behaviour<Request, Response>;
    /// Reads a binary form and checks the record's own rules (the signature is checked by
    /// [`Kind::verifies`]): a record that fails is a lie.
    fn read(bytes: &[u8]) -> Option<Self::Record>;
    /// Whether this node keeps a valid record in `now` (by its clock): one it does not is
    /// ignored, neither stored nor held against the peer that sent it.
    fn wanted(record: &Self::Record, now: Month) -> bool;
    /// Stores the record durably.
    fn put(store: &Store, record: &Self::Record) -> Result<(), nineten_storage::Error>;
    /// A stored record's binary form.
    fn get(store: &Store, id: &ContentHash) -> Result<Option<Vec<u8>>, nineten_storage::Error>;
    /// Stored ids after `after`, in byte order.
    fn ids(
        store: &Store,
        after: Option<&ContentHash>,
        limit: usize,
    ) -> Result<Vec<ContentHash>, nineten_storage::Error>;
    /// Its counters: taken in, refused.
    fn counters(stats: &mut Stats) -> (&mut u64, &mut u64);
    /// Wraps this kind's blocking work for the event loop.
    fn done(done: Done<Self::Record>) -> super::Done;
}

/// A request of a catch-up protocol.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Request {
    /// Your record ids after this one, in byte order.
    Ids(Option<ContentHash>),
    /// These records.
    Records(Vec<ContentHash>),
}

/// A response of a catch-up protocol.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Response {
    /// Record ids, in byte order.
    Ids(Vec<ContentHash>),
    /// Records (binary forms).
    Records(Vec<serde_bytes::ByteBuf>),
    /// Too many requests.
    Refused,
}

/// Results of blocking work, back on the event loop.
#[derive(Debug)]
pub(super) enum Done<R> {
    /// A record was stored (or failed to be).
    Stored {
        record: R,
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
    Records(HashSet<ContentHash>),
}

/// A catch-up with one peer: the page being fetched.
struct Paging {
    last: Option<ContentHash>,
    full: bool,
    outstanding: usize,
}

/// One kind's records: what is held, the catch-ups under way, the peers' budgets.
pub(super) struct Catalog<K: Kind> {
    /// Records stored (or being stored).
    known: HashSet<ContentHash>,
    outbound: HashMap<OutboundRequestId, (PeerId, Outbound)>,
    paging: HashMap<PeerId, Paging>,
    /// When each connected peer's last catch-up began.
    caught_up: HashMap<PeerId, Instant>,
    gossip: Budget,
    requests: Budget,
    clock: Clock,
    kind: PhantomData<K>,
}

impl<K: Kind> Catalog<K> {
    /// The kind's records, knowing those already stored.
    pub(super) fn new(store: &Store, clock: Clock) -> Result<Self, nineten_storage::Error> {
        let mut known = HashSet::new();
        let mut after = None;
        loop {
            let page = K::ids(store, after.as_ref(), MAX_IDS)?;
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
            caught_up: HashMap::new(),
            gossip: Budget::new(K::PER_SEC, 10.0 * K::PER_SEC),
            requests: Budget::new(REQUESTS_PER_SEC, 2.0 * REQUESTS_PER_SEC),
            clock,
            kind: PhantomData,
        })
    }

    /// Marks a record stored here (made by this node) and gossips it. Peers not reached now
    /// get it by catch-up when they next connect.
    pub(super) fn publish(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        record: &K::Record,
    ) -> Result<(), super::Error> {
        self.known.insert(record_id(record));
        swarm
            .behaviour_mut()
            .gossipsub
            .publish(K::topic(), binary(record))
            .map(|_| ())
            .or_else(|e| match e {
                libp2p::gossipsub::PublishError::NoPeersSubscribedToTopic
                | libp2p::gossipsub::PublishError::Duplicate => Ok(()),
                e => Err(super::Error::Publish(e)),
            })
    }

    /// A gossip message on the kind's topic.
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

    /// Checks a record and sends a new one to the store; gossip (`budgeted`) counts against
    /// the relaying peer's budget, a record this node asked for does not.
    fn take(&mut self, shared: &mut Shared, source: PeerId, bytes: &[u8], budgeted: bool) -> Taken {
        let record = (bytes.len() <= K::MAX_BYTES)
            .then(|| K::read(bytes))
            .flatten();
        let Some(record) = record else {
            *K::counters(&mut shared.stats).1 += 1;
            return Taken::Bad;
        };
        let id = record_id(&record);
        let wanted = Month::containing(self.clock.now_ms()).is_some_and(|m| K::wanted(&record, m));
        if self.known.contains(&id) || !wanted {
            return Taken::Known;
        }
        if budgeted && !self.gossip.take(source, 1.0, Instant::now()) {
            return Taken::OverBudget;
        }
        if !verify_record(&record) {
            *K::counters(&mut shared.stats).1 += 1;
            return Taken::Bad;
        }
        self.known.insert(id);
        let (store, done) = (shared.store.clone(), shared.done.clone());
        tokio::task::spawn_blocking(move || {
            let result = K::put(&store, &record);
            let _ = done.send(K::done(Done::Stored { record, result }));
        });
        Taken::New
    }

    /// Starts catching up with a peer's records.
    pub(super) fn catch_up(&mut self, swarm: &mut Swarm<Behaviour>, peer: PeerId) {
        if self.paging.contains_key(&peer) {
            return;
        }
        self.caught_up.insert(peer, Instant::now());
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
        let rid = K::protocol(swarm.behaviour_mut()).send_request(&peer, Request::Ids(after));
        self.outbound.insert(rid, (peer, Outbound::Ids { after }));
    }

    /// Catches up with a peer again, unless one began less than 5 s ago: for when the peer
    /// showed it holds something that needs a record this node lacks.
    pub(super) fn catch_up_again(&mut self, swarm: &mut Swarm<Behaviour>, peer: PeerId) {
        let recent = self
            .caught_up
            .get(&peer)
            .is_some_and(|at| at.elapsed() < CATCH_UP_AGAIN);
        if !recent {
            self.catch_up(swarm, peer);
        }
    }

    /// A peer left.
    pub(super) fn on_disconnected(&mut self, peer: &PeerId) {
        self.paging.remove(peer);
        self.caught_up.remove(peer);
        self.gossip.forget(peer);
        self.requests.forget(peer);
    }

    /// Blocking work finished; returns a record just stored.
    pub(super) fn on_done(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        shared: &mut Shared,
        done: Done<K::Record>,
    ) -> Option<K::Record> {
        match done {
            Done::Stored {
                record,
                result: Ok(()),
            } => {
                *K::counters(&mut shared.stats).0 += 1;
                Some(record)
            }
            Done::Stored {
                record,
                result: Err(e),
            } => {
                let id = record_id(&record);
                warn!("storing record {id} failed: {e}");
                self.known.remove(&id);
                None
            }
            Done::Answer { channel, response } => {
                let _ = K::protocol(swarm.behaviour_mut()).send_response(channel, response);
                None
            }
        }
    }

    /// A request-response event of the kind's protocol.
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
            let _ = K::protocol(swarm.behaviour_mut()).send_response(channel, Response::Refused);
            return;
        }
        let (store, done) = (shared.store.clone(), shared.done.clone());
        tokio::task::spawn_blocking(move || {
            let response = match request {
                Request::Ids(after) => {
                    Response::Ids(K::ids(&store, after.as_ref(), MAX_IDS).unwrap_or_default())
                }
                Request::Records(ids) => Response::Records(
                    ids.iter()
                        .take(MAX_RECORDS)
                        .filter_map(|id| K::get(&store, id).ok().flatten())
                        .map(serde_bytes::ByteBuf::from)
                        .collect(),
                ),
            };
            let _ = done.send(K::done(Done::Answer { channel, response }));
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
                for chunk in missing.chunks(MAX_RECORDS) {
                    let rid = K::protocol(swarm.behaviour_mut())
                        .send_request(&peer, Request::Records(chunk.to_vec()));
                    paging.outstanding += 1;
                    self.outbound.insert(
                        rid,
                        (peer, Outbound::Records(chunk.iter().copied().collect())),
                    );
                }
                self.next_page(swarm, peer);
            }
            (Outbound::Records(asked), Response::Records(records)) => {
                if records.len() > asked.len() {
                    shared.fault(peer, Fault::Lie);
                }
                for r in records.iter().take(asked.len()) {
                    let is_asked = (r.len() <= K::MAX_BYTES)
                        .then(|| K::read(r))
                        .flatten()
                        .is_some_and(|parsed| asked.contains(&record_id(&parsed)));
                    if !is_asked || matches!(self.take(shared, peer, r, false), Taken::Bad) {
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

    /// Asks for the next page once this one's records are in, or ends the catch-up.
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

/// A record's id: BLAKE3 of its signed message alone (`records.md`).
fn record_id(record: &impl Signed) -> ContentHash {
    let mut message = Vec::new();
    record.write_message(&mut message);
    ContentHash::of(&message)
}

/// A record's binary form: its signed message, then its signature.
fn binary(record: &impl Signed) -> Vec<u8> {
    let mut bytes = Vec::new();
    record.write_message(&mut bytes);
    bytes.extend_from_slice(&record.signature().0);
    bytes
}

/// What became of a record.
enum Taken {
    New,
    /// Held already, or not wanted.
    Known,
    OverBudget,
    Bad,
}
