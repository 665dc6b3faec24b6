//! Subscribing over `/9ten/subscribe/1.0.0`: a listener's node asks a home node to subscribe
//! its month key, proving it holds that key (the key signs the request); the home node's
//! payment policy decides. `accept` signs the subscription (`records.md`) at once; `manual`
//! keeps the request, durably, for the operator (`9ten subscription approve|reject`). What is
//! signed is stored, gossiped and sent back. A node that is not a home node says so.
//!
//! A renewal also carries the listener's key of the month before and that key's signature
//! over the link (`RENEWAL_TAG`): both keys sign, so the home node alone learns that the two
//! are one listener and moves its carry (`docs/month.md`, "Renewals and carry").

use std::collections::HashMap;
use std::time::Instant;

use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};
use libp2p::{PeerId, Swarm};
use nineten_protocol::identity::Keypair;
use nineten_protocol::key::{ContentHash, PublicKey, Signature};
use nineten_protocol::month::Month;
use nineten_protocol::signature::{verify, verify_record};
use nineten_protocol::subscription::{PaymentRef, SignedSubscription, Subscription};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use super::limits::{Budget, Fault};
use super::records::MAX_PAYMENT_REF;
use super::{Behaviour, Error, Shared};
use crate::clock::Clock;

/// Domain tag of the message a listener's month key signs to ask for a subscription.
pub const REQUEST_TAG: &[u8] = b"9ten/subscribe-request/v1\0";
/// Domain tag of the message the month key of the month before signs to link itself to the
/// next one.
pub const RENEWAL_TAG: &[u8] = b"9ten/renewal/v1\0";
/// Requests a peer may make per second (bursts of ten).
const REQUESTS_PER_SEC: f64 = 1.0;
/// Most requests kept for the operator: beyond, new ones are turned down until it decides.
pub const MAX_PENDING: usize = 10_000;

/// How a home node takes subscription requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// Each request waits for the operator.
    Manual,
    /// Every well-formed request is signed at once (testnets, or a gateway that checks the
    /// payment before the request is sent).
    Accept,
}

/// A listener's request: subscribe `listener` for `month`, paid by `payment_ref`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// The listener's key for `month`.
    pub listener: PublicKey,
    /// The month, `YYYY-MM`.
    pub month: Month,
    /// The payment's reference.
    pub payment_ref: String,
    /// For a renewal: the listener's key of the month before, and its signature.
    pub renews: Option<Renewal>,
    /// The month key's signature over [`Request::message`].
    pub proof: Signature,
}

/// The proof that a month key follows the listener's key of the month before.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Renewal {
    /// The listener's key of the month before.
    pub previous: PublicKey,
    /// That key's signature over [`Renewal::message`].
    pub proof: Signature,
}

impl Renewal {
    /// What the key of the month before signs: the tag, the home node, both keys, the month
    /// renewed into.
    pub fn message(
        home: &PublicKey,
        previous: &PublicKey,
        next: &PublicKey,
        month: Month,
    ) -> Vec<u8> {
        let mut m = RENEWAL_TAG.to_vec();
        m.extend_from_slice(&home.0);
        m.extend_from_slice(&previous.0);
        m.extend_from_slice(&next.0);
        m.extend_from_slice(&month.year().to_be_bytes());
        m.push(month.month());
        m
    }
}

impl Request {
    /// A request signed by the month key; a renewal (`previous`: the listener's key of the
    /// month before) is signed by that key too.
    pub fn new(
        home: &PublicKey,
        month_key: &Keypair,
        month: Month,
        payment_ref: PaymentRef,
        previous: Option<&Keypair>,
    ) -> Self {
        let renews = previous.map(|p| Renewal {
            previous: p.public(),
            proof: p.sign(&Renewal::message(
                home,
                &p.public(),
                &month_key.public(),
                month,
            )),
        });
        let mut r = Self {
            listener: month_key.public(),
            month,
            payment_ref: payment_ref.as_str().to_string(),
            renews,
            proof: Signature([0; 64]),
        };
        r.proof = month_key.sign(&r.message(home));
        r
    }

    /// What the month key signs: the tag, the home node, the key, the month, for a renewal
    /// a 1 and the key of the month before (else a 0), the reference.
    pub fn message(&self, home: &PublicKey) -> Vec<u8> {
        let mut m = REQUEST_TAG.to_vec();
        m.extend_from_slice(&home.0);
        m.extend_from_slice(&self.listener.0);
        m.extend_from_slice(&self.month.year().to_be_bytes());
        m.push(self.month.month());
        match &self.renews {
            Some(r) => {
                m.push(1);
                m.extend_from_slice(&r.previous.0);
            }
            None => m.push(0),
        }
        m.extend_from_slice(self.payment_ref.as_bytes());
        m
    }

    /// The request's id: BLAKE3 of its message to `home`.
    pub fn id(&self, home: &PublicKey) -> ContentHash {
        ContentHash::of(&self.message(home))
    }

    /// Keeps a renewal's carry link, before the subscription is signed: a link to a month
    /// key never subscribed only moves the carry to a key that keeps it.
    pub fn link(&self, store: &nineten_storage::Store) -> Result<(), nineten_storage::Error> {
        if let Some(r) = &self.renews {
            store.put_renewal(self.month, &r.previous, &self.listener)?;
        }
        Ok(())
    }

    /// The subscription `home` signs for it.
    pub fn subscription(&self, home: &PublicKey) -> Result<Subscription, Rejection> {
        Ok(Subscription {
            listener: self.listener,
            month: self.month,
            home_node: *home,
            payment_ref: PaymentRef::new(self.payment_ref.clone())
                .map_err(|e| Rejection(e.to_string()))?,
        })
    }

    /// Checks it as `home` receives it at `now`: the reference's length, the month (this one or
    /// the next) and the proof.
    pub fn check(&self, home: &PublicKey, now: Month) -> Result<(), Rejection> {
        if self.payment_ref.is_empty() || self.payment_ref.len() > MAX_PAYMENT_REF {
            return Err(Rejection(format!(
                "payment_ref: {} bytes, 1 to {MAX_PAYMENT_REF} allowed",
                self.payment_ref.len()
            )));
        }
        if self.month != now && Some(self.month) != now.next() {
            return Err(Rejection(format!(
                "month: {} is neither this month ({now}) nor the next",
                self.month
            )));
        }
        if !verify(&self.listener, &self.message(home), &self.proof) {
            return Err(Rejection(
                "proof: the listener key's signature does not verify".into(),
            ));
        }
        if let Some(r) = &self.renews {
            let link = Renewal::message(home, &r.previous, &self.listener, self.month);
            if r.previous == self.listener || !verify(&r.previous, &link, &r.proof) {
                return Err(Rejection(
                    "renews: the signature of the key of the month before does not verify".into(),
                ));
            }
        }
        Ok(())
    }
}

/// Why a home node turned a request down.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{0}")]
pub struct Rejection(pub String);

/// A home node's answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Response {
    /// Signed: the subscription's binary form.
    Subscribed(serde_bytes::ByteBuf),
    /// Kept for the operator to decide.
    Pending,
    /// Turned down, and why.
    Rejected(Rejection),
    /// Too many requests.
    Refused,
}

/// What a listener's node learns of its request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Signed, checked, stored and gossiped here.
    Subscribed(SignedSubscription),
    /// Waiting for the operator.
    Pending,
    /// Turned down.
    Rejected(Rejection),
}

/// Results of blocking work, back on the event loop.
#[derive(Debug)]
pub(super) enum Done {
    /// A request was settled by the store (signed and stored, or kept).
    Answered {
        channel: ResponseChannel<Response>,
        response: Response,
        signed: Option<SignedSubscription>,
    },
}

/// The subscribe concern: this node's policy as a home node, and its own requests in flight.
pub(super) struct Subscribe {
    /// This node's key and policy, when it is a home node.
    home: Option<(Keypair, Policy)>,
    asked: HashMap<OutboundRequestId, (PublicKey, oneshot::Sender<Result<Response, Error>>)>,
    requests: Budget,
    clock: Clock,
}

impl Subscribe {
    pub(super) fn new(home: Option<(Keypair, Policy)>, clock: Clock) -> Self {
        Self {
            home,
            asked: HashMap::new(),
            requests: Budget::new(REQUESTS_PER_SEC, 10.0 * REQUESTS_PER_SEC),
            clock,
        }
    }

    /// Sends a request to the home node `home` (whose peer id is its key).
    pub(super) fn ask(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        home: PublicKey,
        request: Request,
        tx: oneshot::Sender<Result<Response, Error>>,
    ) {
        let Some(peer) = super::peer_id(&home) else {
            let _ = tx.send(Err(Error::NoSuchNode(home)));
            return;
        };
        let rid = swarm.behaviour_mut().subscribe.send_request(&peer, request);
        self.asked.insert(rid, (home, tx));
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
                if let Some((home, tx)) = self.asked.remove(&request_id) {
                    let _ = tx.send(Err(Error::Unreachable {
                        node: home,
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
        let checked = self.check(shared, peer, &request);
        let (subscription, key, policy) = match checked {
            Ok(taken) => taken,
            Err(response) => {
                let _ = swarm
                    .behaviour_mut()
                    .subscribe
                    .send_response(channel, response);
                return;
            }
        };
        let home = key.public();
        let (store, done) = (shared.store.clone(), shared.done.clone());
        tokio::task::spawn_blocking(move || {
            let (response, signed) = match policy {
                Policy::Accept => {
                    let signed = subscription.sign(&key);
                    let stored = request
                        .link(&store)
                        .and_then(|()| store.put_subscriptions(std::slice::from_ref(&signed)));
                    match stored {
                        Ok(()) => (
                            Response::Subscribed(serde_bytes::ByteBuf::from(signed.to_bytes())),
                            Some(signed),
                        ),
                        Err(_) => (Response::Refused, None),
                    }
                }
                Policy::Manual if store.pending_count(MAX_PENDING) >= MAX_PENDING => (
                    Response::Rejected(Rejection(format!(
                        "{MAX_PENDING} requests already wait for the operator: try later"
                    ))),
                    None,
                ),
                Policy::Manual => {
                    let bytes = serde_json::to_vec(&request).expect("a request encodes");
                    match store.put_pending(&request.id(&home), &bytes) {
                        Ok(()) => (Response::Pending, None),
                        Err(_) => (Response::Refused, None),
                    }
                }
            };
            let _ = done.send(super::Done::Subscribe(Done::Answered {
                channel,
                response,
                signed,
            }));
        });
    }

    /// The budget, this node's role and the request's own rules; what to answer if they fail.
    fn check(
        &mut self,
        shared: &mut Shared,
        peer: PeerId,
        request: &Request,
    ) -> Result<(Subscription, Keypair, Policy), Response> {
        if !self.requests.take(peer, 1.0, Instant::now()) {
            shared.stats.rate_limited += 1;
            shared.fault(peer, Fault::Flood);
            return Err(Response::Refused);
        }
        let Some((key, policy)) = &self.home else {
            return Err(Response::Rejected(Rejection(
                "this node is not a home node".into(),
            )));
        };
        let home = key.public();
        let now = Month::containing(self.clock.now_ms()).ok_or(Response::Refused)?;
        match request
            .check(&home, now)
            .and_then(|()| request.subscription(&home))
        {
            Ok(s) => Ok((s, key.clone(), *policy)),
            Err(why) => {
                shared.fault(peer, Fault::Lie);
                Err(Response::Rejected(why))
            }
        }
    }

    /// Blocking work finished; returns a subscription signed here.
    pub(super) fn on_done(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        done: Done,
    ) -> Option<SignedSubscription> {
        let Done::Answered {
            channel,
            response,
            signed,
        } = done;
        let _ = swarm
            .behaviour_mut()
            .subscribe
            .send_response(channel, response);
        signed
    }
}

/// Reads a home node's answer to `request` sent to `home`: a subscription must be the one
/// asked for, signed by `home`.
pub fn outcome(home: &PublicKey, request: &Request, response: Response) -> Result<Outcome, Error> {
    match response {
        Response::Subscribed(bytes) => {
            let signed = SignedSubscription::from_bytes(&bytes)
                .map_err(|e| Error::BadAnswer(format!("the subscription does not read: {e}")))?;
            let asked = request
                .subscription(home)
                .map_err(|e| Error::BadAnswer(e.to_string()))?;
            if signed.subscription != asked || !verify_record(&signed) {
                return Err(Error::BadAnswer(
                    "the subscription is not the one asked for, or its signature fails".into(),
                ));
            }
            Ok(Outcome::Subscribed(signed))
        }
        Response::Pending => Ok(Outcome::Pending),
        Response::Rejected(why) => Ok(Outcome::Rejected(why)),
        Response::Refused => Err(Error::BadAnswer(
            "the home node refused the request (too many requests)".into(),
        )),
    }
}
