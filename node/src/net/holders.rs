//! A listener's receipts, as a reviewer gathers them: from this node's store and from its
//! connected peers (which hold gossiped copies), page by page over
//! `/9ten/listener-receipts/1.0.0`. Every page is checked before it is kept: at most [`PAGE`]
//! receipts, all of that listener, (seq, id) strictly increasing and after the one asked
//! after (equivocating receipts share a seq and are evidence: both are kept), signatures valid; a peer whose page breaks a rule is dropped from the lookup and pays a
//! fault. Nothing is announced in the DHT for a listener key (docs/privacy.md): which node
//! holds a listener's receipts for review is the home node's job in month close.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};
use libp2p::{PeerId, Swarm};
use nineten_protocol::key::{ContentHash, PublicKey};
use nineten_protocol::receipt::{RECORD_LEN, SignedReceipt};
use nineten_protocol::signature::verify_all;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use super::limits::{Budget, Fault};
use super::{Behaviour, Shared};

/// Most receipts in one page.
pub const PAGE: usize = 512;
/// Most peers asked in one lookup.
const MAX_PEERS: usize = 16;
/// Most pages taken from one peer in one lookup (more than [`super::receipts::MAX_PER_LISTENER`]
/// receipts' worth).
const MAX_PAGES: u32 = 64;
/// Requests a peer may make per second (bursts of twice as many).
const REQUESTS_PER_SEC: f64 = 10.0;

/// A request: a listener's receipts after `after` (all when `None`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Request {
    /// The listener's month key.
    pub listener: PublicKey,
    /// The (seq, id) of the last receipt already received.
    pub after: Option<(u64, ContentHash)>,
}

/// A response: one page of receipts (binary forms concatenated), or a refusal.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Response {
    /// Up to [`PAGE`] receipts, by seq.
    Page(#[serde(with = "serde_bytes")] Vec<u8>),
    /// Too many requests.
    Refused,
}

/// Results of blocking work, back on the event loop.
#[derive(Debug)]
pub(super) enum Done {
    /// The local store's receipts of a lookup's listener.
    Local {
        query: u64,
        receipts: Vec<SignedReceipt>,
    },
    /// A peer's page, checked.
    Checked {
        query: u64,
        peer: PeerId,
        page: Result<Vec<SignedReceipt>, ()>,
        full: bool,
    },
    /// An answer to a peer's request is ready.
    Answer {
        channel: ResponseChannel<Response>,
        response: Response,
    },
}

/// A lookup under way.
struct Query {
    listener: PublicKey,
    found: BTreeMap<(u64, ContentHash), SignedReceipt>,
    outstanding: usize,
    pages: HashMap<PeerId, u32>,
    tx: oneshot::Sender<Vec<SignedReceipt>>,
}

/// The holders concern.
pub(super) struct Holders {
    queries: HashMap<u64, Query>,
    outbound: HashMap<OutboundRequestId, (u64, Option<(u64, ContentHash)>)>,
    next: u64,
    requests: Budget,
}

impl Default for Holders {
    fn default() -> Self {
        Self {
            queries: HashMap::new(),
            outbound: HashMap::new(),
            next: 0,
            requests: Budget::new(REQUESTS_PER_SEC, 2.0 * REQUESTS_PER_SEC),
        }
    }
}

impl Holders {
    /// Starts gathering `listener`'s receipts: the store first, then every connected peer.
    pub(super) fn look_up(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        shared: &Shared,
        listener: PublicKey,
        tx: oneshot::Sender<Vec<SignedReceipt>>,
    ) {
        let n = self.next;
        self.next += 1;
        let peers: Vec<PeerId> = swarm.connected_peers().take(MAX_PEERS).copied().collect();
        let mut query = Query {
            listener,
            found: BTreeMap::new(),
            outstanding: 1,
            pages: HashMap::new(),
            tx,
        };
        for peer in peers {
            self.ask(swarm, &mut query, n, peer, None);
        }
        self.queries.insert(n, query);
        let (store, done) = (shared.store.clone(), shared.done.clone());
        tokio::task::spawn_blocking(move || {
            let receipts = store.receipts_of_listener(&listener).unwrap_or_default();
            let _ = done.send(super::Done::Holders(Done::Local { query: n, receipts }));
        });
    }

    fn ask(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        query: &mut Query,
        n: u64,
        peer: PeerId,
        after: Option<(u64, ContentHash)>,
    ) {
        let pages = query.pages.entry(peer).or_default();
        if *pages >= MAX_PAGES {
            return;
        }
        *pages += 1;
        let rid = swarm.behaviour_mut().holders.send_request(
            &peer,
            Request {
                listener: query.listener,
                after,
            },
        );
        query.outstanding += 1;
        self.outbound.insert(rid, (n, after));
    }

    /// Blocking work finished.
    pub(super) fn on_done(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        shared: &mut Shared,
        done: Done,
    ) {
        match done {
            Done::Local { query, receipts } => {
                if let Some(q) = self.queries.get_mut(&query) {
                    for r in receipts {
                        q.found.insert((r.receipt.seq, r.id()), r);
                    }
                }
                self.one_done(query);
            }
            Done::Checked {
                query,
                peer,
                page,
                full,
            } => {
                let Some(mut q) = self.queries.remove(&query) else {
                    return;
                };
                match page {
                    Ok(page) => {
                        let last = page.last().map(|r| (r.receipt.seq, r.id()));
                        for r in page {
                            q.found.insert((r.receipt.seq, r.id()), r);
                        }
                        if full && let Some(after) = last {
                            self.ask(swarm, &mut q, query, peer, Some(after));
                        }
                    }
                    Err(()) => shared.fault(peer, Fault::Lie),
                }
                self.queries.insert(query, q);
                self.one_done(query);
            }
            Done::Answer { channel, response } => {
                let _ = swarm
                    .behaviour_mut()
                    .holders
                    .send_response(channel, response);
            }
        }
    }

    /// One source of a lookup finished; answers the reviewer when all have.
    fn one_done(&mut self, n: u64) {
        let Some(q) = self.queries.get_mut(&n) else {
            return;
        };
        q.outstanding = q.outstanding.saturating_sub(1);
        if q.outstanding == 0 {
            let q = self.queries.remove(&n).expect("looked up above");
            let _ = q.tx.send(q.found.into_values().collect());
        }
    }

    /// A request-response event of the listener-receipts protocol.
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
            } => {
                if !self.requests.take(peer, 1.0, Instant::now()) {
                    shared.stats.rate_limited += 1;
                    shared.fault(peer, Fault::Flood);
                    let _ = swarm
                        .behaviour_mut()
                        .holders
                        .send_response(channel, Response::Refused);
                    return;
                }
                let (store, done) = (shared.store.clone(), shared.done.clone());
                tokio::task::spawn_blocking(move || {
                    let page = store
                        .receipts_of_listener_after(&request.listener, request.after, PAGE)
                        .unwrap_or_default();
                    let bytes = page.iter().flat_map(|r| r.to_bytes()).collect();
                    let _ = done.send(super::Done::Holders(Done::Answer {
                        channel,
                        response: Response::Page(bytes),
                    }));
                });
            }
            E::Message {
                peer,
                message:
                    Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                let Some((n, after)) = self.outbound.remove(&request_id) else {
                    return;
                };
                let Some(listener) = self.queries.get(&n).map(|q| q.listener) else {
                    return;
                };
                let Response::Page(bytes) = response else {
                    self.one_done(n);
                    return;
                };
                let done = shared.done.clone();
                tokio::task::spawn_blocking(move || {
                    let full = bytes.len() == PAGE * RECORD_LEN;
                    let page = check_page(&bytes, &listener, after);
                    let _ = done.send(super::Done::Holders(Done::Checked {
                        query: n,
                        peer,
                        page,
                        full,
                    }));
                });
            }
            E::OutboundFailure { request_id, .. } => {
                if let Some((n, _)) = self.outbound.remove(&request_id) {
                    self.one_done(n);
                }
            }
            _ => {}
        }
    }
}

/// A page's receipts if it keeps every rule of the module doc.
fn check_page(
    bytes: &[u8],
    listener: &PublicKey,
    after: Option<(u64, ContentHash)>,
) -> Result<Vec<SignedReceipt>, ()> {
    if !bytes.len().is_multiple_of(RECORD_LEN) || bytes.len() / RECORD_LEN > PAGE {
        return Err(());
    }
    let page: Vec<SignedReceipt> = bytes
        .chunks_exact(RECORD_LEN)
        .map(SignedReceipt::from_bytes)
        .collect::<Result<_, _>>()
        .map_err(|_| ())?;
    let mut last = after;
    for r in &page {
        let at = (r.receipt.seq, r.id());
        if r.receipt.listener != *listener || last.is_some_and(|l| at <= l) {
            return Err(());
        }
        last = Some(at);
    }
    if verify_all(&page).iter().all(|ok| *ok) {
        Ok(page)
    } else {
        Err(())
    }
}
