//! A bundle's inputs between nodes (`/9ten/month-inputs/1.0.0`): a reviewer or an arbiter asks
//! the home node (or any node that holds them) for the pages of what a bundle's roots name,
//! and for receipts and subscriptions by id; a listener's node asks which of its receipts a
//! bundle names. Answers come from the store, off the event loop;
//! every request draws on the asking peer's budget, and a request beyond the bounds is a lie.
//! What comes back is checked by the asker (`crate::review`): pages against the bundle's
//! roots, records against their signatures.

use std::collections::HashMap;
use std::time::Instant;

use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};
use libp2p::{PeerId, Swarm};
use nineten_protocol::key::{ContentHash, PublicKey};
use nineten_storage::Store;
use nineten_storage::review::Part;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use super::limits::{Budget, Fault};
use super::{Behaviour, Error, Shared};

/// Most receipts or subscriptions asked for by id in one request.
pub const MAX_BY_ID: usize = 256;
/// Requests a peer may make per second (bursts of twice as many): a reviewer pages through
/// a million receipt ids in about a thousand requests.
const REQUESTS_PER_SEC: f64 = 400.0;

/// A request.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Request {
    /// One page of one part of a review record's sets (`part` as [`Part::byte`]): a
    /// bundle's inputs, a dispute's evidence, a verdict's receipts.
    Page {
        /// The record's id.
        bundle: ContentHash,
        /// Which part.
        part: u8,
        /// Which page, from 0.
        page: u32,
    },
    /// Receipts by id.
    Receipts(Vec<ContentHash>),
    /// Subscriptions by id.
    Subscriptions(Vec<ContentHash>),
    /// Which of these receipt ids a bundle's sets name.
    Named {
        /// The bundle's id.
        bundle: ContentHash,
        /// The receipt ids.
        ids: Vec<ContentHash>,
    },
}

/// In a [`Response::Named`]: the id is named by neither set.
pub const NAMED_NOT: u8 = 0;
/// Named by the bundle's `receipts` root: it counts.
pub const NAMED_RECEIPTS: u8 = 1;
/// Named by its `excluded` root: excluded by a verdict.
pub const NAMED_EXCLUDED: u8 = 2;

/// A response.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Response {
    /// The page's items, as stored (32-byte ids, or 40-byte carry entries).
    Page(serde_bytes::ByteBuf),
    /// The page, or the bundle's inputs, are not held here.
    Missing,
    /// The records held of those asked for (binary forms).
    Records(Vec<serde_bytes::ByteBuf>),
    /// Per id asked, in order: [`NAMED_NOT`], [`NAMED_RECEIPTS`] or [`NAMED_EXCLUDED`].
    Named(serde_bytes::ByteBuf),
    /// Too many requests.
    Refused,
}

/// Results of blocking work, back on the event loop.
#[derive(Debug)]
pub(super) enum Done {
    /// An answer is ready.
    Answer {
        channel: ResponseChannel<Response>,
        response: Response,
    },
}

type Reply = oneshot::Sender<Result<Response, Error>>;

/// The inputs concern: this node's requests in flight and the peers' budgets.
pub(super) struct Inputs {
    asked: HashMap<OutboundRequestId, (PublicKey, Reply)>,
    requests: Budget,
}

impl Default for Inputs {
    fn default() -> Self {
        Self {
            asked: HashMap::new(),
            requests: Budget::new(REQUESTS_PER_SEC, 2.0 * REQUESTS_PER_SEC),
        }
    }
}

impl Inputs {
    /// Sends `request` to `node`.
    pub(super) fn ask(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        node: PublicKey,
        request: Request,
        tx: Reply,
    ) {
        let Some(peer) = super::peer_id(&node) else {
            let _ = tx.send(Err(Error::NoSuchNode(node)));
            return;
        };
        let rid = swarm.behaviour_mut().inputs.send_request(&peer, request);
        self.asked.insert(rid, (node, tx));
    }

    /// A request-response event of the protocol.
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
                message:
                    Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                if let Some((_, tx)) = self.asked.remove(&request_id) {
                    let _ = tx.send(Ok(response));
                }
            }
            E::OutboundFailure {
                request_id, error, ..
            } => {
                if let Some((node, tx)) = self.asked.remove(&request_id) {
                    let _ = tx.send(Err(Error::Unreachable {
                        node,
                        why: error.to_string(),
                    }));
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
        let refuse = |swarm: &mut Swarm<Behaviour>, channel| {
            let _ = swarm
                .behaviour_mut()
                .inputs
                .send_response(channel, Response::Refused);
        };
        // A membership request searches pages per id: it costs more than a page.
        let cost = match &request {
            Request::Named { ids, .. } => 1.0 + ids.len() as f64 / 4.0,
            _ => 1.0,
        };
        if !self.requests.take(peer, cost, Instant::now()) {
            shared.stats.rate_limited += 1;
            shared.fault(peer, Fault::Flood);
            return refuse(swarm, channel);
        }
        let too_many = match &request {
            Request::Receipts(ids) | Request::Subscriptions(ids) | Request::Named { ids, .. } => {
                ids.len() > MAX_BY_ID
            }
            Request::Page { part, .. } => Part::from_byte(*part).is_none(),
        };
        if too_many {
            shared.fault(peer, Fault::Lie);
            return refuse(swarm, channel);
        }
        let (store, done) = (shared.store.clone(), shared.done.clone());
        tokio::task::spawn_blocking(move || {
            let response = read(&store, request).unwrap_or(Response::Refused);
            let _ = done.send(super::Done::Inputs(Done::Answer { channel, response }));
        });
    }

    /// Blocking work finished.
    pub(super) fn on_done(&mut self, swarm: &mut Swarm<Behaviour>, done: Done) {
        let Done::Answer { channel, response } = done;
        let _ = swarm
            .behaviour_mut()
            .inputs
            .send_response(channel, response);
    }
}

/// The answer to a request, from the store.
fn read(store: &Store, request: Request) -> Result<Response, nineten_storage::Error> {
    let bytes = serde_bytes::ByteBuf::from;
    Ok(match request {
        Request::Page { bundle, part, page } => {
            let part = Part::from_byte(part).expect("checked before");
            match store.set_page(&bundle, part, page)? {
                Some(items) => Response::Page(bytes(items)),
                None => Response::Missing,
            }
        }
        Request::Receipts(ids) => Response::Records(
            store
                .receipts_by_ids(&ids)?
                .iter()
                .map(|r| bytes(r.to_bytes().to_vec()))
                .collect(),
        ),
        Request::Subscriptions(ids) => {
            let mut out = Vec::new();
            for id in &ids {
                out.extend(store.subscription(id)?.map(|s| bytes(s.to_bytes())));
            }
            Response::Records(out)
        }
        Request::Named { bundle, ids } => {
            let named = store.set_names(&bundle, Part::Receipts, &ids)?;
            let excluded = store.set_names(&bundle, Part::Excluded, &ids)?;
            match named {
                None => Response::Missing,
                Some(named) => {
                    let excluded = excluded.unwrap_or_else(|| vec![false; ids.len()]);
                    let marks: Vec<u8> = named
                        .iter()
                        .zip(&excluded)
                        .map(|(n, x)| match (n, x) {
                            (true, _) => NAMED_RECEIPTS,
                            (false, true) => NAMED_EXCLUDED,
                            _ => NAMED_NOT,
                        })
                        .collect();
                    Response::Named(serde_bytes::ByteBuf::from(marks))
                }
            }
        }
    })
}
