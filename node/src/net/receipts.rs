//! Receipts: the month topics' gossip, admission, durable storage, and reconciliation.
//!
//! Admission, in order, for every receipt from a peer (gossip or reconciliation): its form
//! (exactly [`RECORD_LEN`] bytes that parse), its month (one this node serves, the topic's on
//! gossip), its listener's subscription (a home node of the month's directory subscribed the
//! key and the receipt names it: [`super::admission`]), its time (it may not start more than
//! [`FUTURE_SKEW_MS`] after this node's clock), the listener's cap ([`MAX_PER_LISTENER`] a month, more than any honest listener signs) and
//! its signature (batch-verified in a blocking task); gossip also has budgets per relaying peer
//! ([`GOSSIP_PER_SEC`], [`NEW_LISTENERS_PER_SEC`]) and per listener key
//! ([`LISTENER_GOSSIP_PER_SEC`]): what is over them waits for reconciliation. A receipt counts as held (in the set,
//! announced by an event, offered to peers) only once the writer has stored it durably; one
//! the store refused is forgotten, to come again.
//!
//! Reconciliation is negentropy (the protocol Nostr relays use, `negentropy` crate) over
//! `/9ten/receipt-sync/2.0.0`: the initiator sends frames of at most [`MAX_FRAME`] bytes, the
//! other side answers within the same limit, and the initiator learns the ids it lacks and
//! fetches them ([`MAX_FETCH`] a request, checked against what it asked). Only what a node asked
//! for is taken: nothing can be pushed to it unasked. Each side's work runs in blocking tasks on
//! a snapshot of the set; a peer gets [`MAX_INBOUND`] requests in work at a time and
//! [`REQUESTS_PER_SEC`] a second, and whatever does not parse or verify costs it faults.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use libp2p::gossipsub::{self, MessageAcceptance, MessageId};
use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};
use libp2p::{PeerId, Swarm};
use negentropy::{Id, Negentropy};
use nineten_protocol::key::{ContentHash, PublicKey};
use nineten_protocol::month::Month;
use nineten_protocol::node_record::SignedNodeRecord;
use nineten_protocol::receipt::{RECORD_LEN, SignedReceipt};
use nineten_protocol::signature::verify_all;
use nineten_protocol::subscription::SignedSubscription;
use nineten_storage::Store;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};

use super::admission::Admission;
use super::limits::{Budget, Fault};
use super::set::{MonthSet, Snapshot, View, item_of};
use super::{Behaviour, Error, Event, Shared, Via, receipt_topic};
use crate::clock::Clock;

/// Largest negentropy frame sent or accepted.
pub const MAX_FRAME: u64 = 128 * 1024;
/// Most receipts asked for (and sent) in one fetch: 232 KiB of receipts.
pub const MAX_FETCH: usize = 1024;
/// Most receipts of one listener key taken in a month. A listener that played a track every
/// 2 minutes 14 seconds, day and night, for 31 days, would sign this many; no honest one does.
pub const MAX_PER_LISTENER: u32 = 20_000;
/// How far in the future (by this node's clock) a receipt may start: clocks differ a little.
pub const FUTURE_SKEW_MS: u64 = 10 * 60 * 1000;
/// A gossiped receipt this node holds already (it came by reconciliation first) is still
/// forwarded if it started less than this long ago.
pub const FORWARD_WITHIN_MS: u64 = 10 * 60 * 1000;
/// Requests of one peer in work at a time; more are refused. An honest peer has at most
/// three per month it reconciles (a frame and two fetches).
pub const MAX_INBOUND: usize = 8;
/// Requests a peer may make per second (bursts of twice as many).
pub const REQUESTS_PER_SEC: f64 = 50.0;
/// New receipts a peer may relay to us by gossip per second (bursts of four times as many);
/// beyond that they are ignored, not forwarded. Duplicates cost nothing, so this bounds the
/// network's whole receipt rate a peer passes on: far above what listeners sign (a million
/// listeners playing 30 tracks a day sign about 350 a second).
pub const GOSSIP_PER_SEC: f64 = 500.0;
/// Receipts of listener keys this node holds none of this month that a peer may relay by
/// gossip per second (bursts of five times as many). Fresh keys cost nothing to make, so this
/// and [`LISTENER_GOSSIP_PER_SEC`] are what bound a flood of valid receipts; an honest
/// network's new listeners of a month come far slower, and any held back arrive by
/// reconciliation.
pub const NEW_LISTENERS_PER_SEC: f64 = 20.0;
/// Receipts of one listener key taken by gossip per second: one every 15 s, after a first
/// one at once and bursts of up to [`LISTENER_GOSSIP_BURST`] (a listener skipping through
/// tracks). A listener signs one a track; the rest of a faster key's receipts come by
/// reconciliation.
pub const LISTENER_GOSSIP_PER_SEC: f64 = 1.0 / 15.0;
/// See [`LISTENER_GOSSIP_PER_SEC`].
pub const LISTENER_GOSSIP_BURST: f64 = 8.0;
/// Most rounds of one reconciliation session.
const MAX_ROUNDS: u32 = 4096;
/// A session waits for its fetches before the next round when this many ids are queued.
const MAX_WANTED: usize = 16 * MAX_FETCH;
/// Fetches in flight per session.
const FETCHES_IN_FLIGHT: usize = 2;
/// Gossip receipts verified in one batch.
const VERIFY_BATCH: usize = 512;
/// Gossip receipts up to this many are verified on the event loop (about 1 ms of work).
const VERIFY_INLINE: usize = 16;
/// Most ids remembered as refused (so reconciliation does not fetch them again and again).
const MAX_REFUSED: usize = 100_000;

/// A request of the receipt-sync protocol.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Request {
    /// A negentropy frame about `month`'s receipts.
    Reconcile {
        /// `YYYY-MM`.
        month: String,
        /// The frame.
        #[serde(with = "serde_bytes")]
        frame: Vec<u8>,
    },
    /// Send me the receipts with these ids (32 bytes each).
    Fetch(#[serde(with = "serde_bytes")] Vec<u8>),
}

/// A response of the receipt-sync protocol.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Response {
    /// The answering negentropy frame.
    Reconcile(#[serde(with = "serde_bytes")] Vec<u8>),
    /// Receipts, binary forms concatenated.
    Receipts(#[serde(with = "serde_bytes")] Vec<u8>),
    /// Not served: an unknown month, a bad frame, or too many requests.
    Refused,
}

/// Results of blocking work, back on the event loop.
#[derive(Debug)]
pub(super) enum Done {
    /// A month's set (its carried receipts) and subscriptions were read from the store, to be
    /// served.
    Loaded {
        month: Month,
        set: Result<(MonthSet, Vec<SignedSubscription>), nineten_storage::Error>,
        tx: oneshot::Sender<Result<(), Error>>,
    },
    /// A batch went to the store (or failed to).
    Stored {
        parts: Vec<(Vec<SignedReceipt>, Via)>,
        result: Result<(), nineten_storage::Error>,
    },
    /// Gossip receipts verified: the valid ones, and a verdict for every message.
    Verified {
        verdicts: Vec<(MessageId, PeerId, bool)>,
        good: Vec<SignedReceipt>,
    },
    /// An answer to a peer's request is ready.
    Answer {
        peer: PeerId,
        channel: ResponseChannel<Response>,
        response: Response,
        merged: Option<(Month, u64, Snapshot)>,
        fault: bool,
    },
    /// A session's frame (its first, or the next after the peer's answer) is ready.
    Round {
        peer: PeerId,
        month: Month,
        session: Box<Negentropy<'static, Snapshot>>,
        result: Result<(Option<Vec<u8>>, Vec<Id>), negentropy::Error>,
        merged: Option<(u64, Snapshot)>,
    },
    /// Fetched receipts checked.
    Fetched {
        peer: PeerId,
        month: Month,
        good: Vec<SignedReceipt>,
        lies: bool,
    },
}

/// One reconciliation this node started with a peer about a month.
struct Session {
    /// The negentropy state (taken while a blocking task works on it).
    neg: Option<Box<Negentropy<'static, Snapshot>>>,
    rounds: u32,
    /// A frame waiting to be sent until the fetches catch up.
    parked: Option<Vec<u8>>,
    /// Ids to fetch.
    wanted: VecDeque<Id>,
    fetching: usize,
    /// No more frames to send.
    finished: bool,
}

/// What an outgoing request was.
enum Outbound {
    Round {
        month: Month,
    },
    Fetch {
        month: Month,
        ids: HashSet<[u8; 32]>,
    },
}

/// The receipts concern: its sets, sessions and budgets.
pub(super) struct Receipts {
    months: BTreeMap<Month, MonthSet>,
    /// Ids on their way to the store.
    pending: HashSet<[u8; 32]>,
    /// Ids asked for in a fetch under way (from any peer): no other session asks again.
    requested: HashSet<[u8; 32]>,
    refused: HashSet<[u8; 32]>,
    /// Refused ids of listener keys with no subscription known (or none from a home node of
    /// the directory), by key: when one, or a node record, comes, they may be fetched again.
    awaiting: HashMap<PublicKey, Vec<[u8; 32]>>,
    /// Peers that sent receipts of keys with no subscription known: the node catches up on
    /// their subscriptions.
    lacking: Vec<PeerId>,
    admission: Admission,
    writer: mpsc::Sender<(Vec<SignedReceipt>, Via)>,
    /// Local receipts waiting to be stored before they are gossiped, and who waits.
    publishing: HashMap<[u8; 32], Vec<oneshot::Sender<Result<(), Error>>>>,
    sessions: HashMap<(PeerId, Month), Session>,
    outbound: HashMap<OutboundRequestId, Outbound>,
    inbound: HashMap<PeerId, usize>,
    requests: Budget,
    gossip: Budget,
    new_listeners: Budget,
    listener_gossip: Budget<PublicKey>,
    /// Gossip receipts waiting for a verification batch.
    unverified: Vec<(MessageId, PeerId, SignedReceipt)>,
    verifying: bool,
    clock: Clock,
}

impl Receipts {
    /// The receipts concern, with the sets of `months` loaded from the store.
    pub(super) fn new(
        store: &Store,
        months: &[Month],
        shared: &Shared,
        clock: Clock,
    ) -> Result<Self, nineten_storage::Error> {
        let records = store.node_records()?;
        let mut admission = Admission::new(&records);
        let mut sets = BTreeMap::new();
        for m in months {
            let (set, subscriptions) = load_month(store, &records, *m)?;
            admission.serve(*m, &subscriptions);
            sets.insert(*m, set);
        }
        Ok(Self {
            months: sets,
            pending: HashSet::new(),
            requested: HashSet::new(),
            refused: HashSet::new(),
            awaiting: HashMap::new(),
            lacking: Vec::new(),
            admission,
            writer: spawn_writer(store.clone(), clock.clone(), shared.done.clone()),
            publishing: HashMap::new(),
            sessions: HashMap::new(),
            outbound: HashMap::new(),
            inbound: HashMap::new(),
            requests: Budget::new(REQUESTS_PER_SEC, 2.0 * REQUESTS_PER_SEC),
            gossip: Budget::new(GOSSIP_PER_SEC, 4.0 * GOSSIP_PER_SEC),
            new_listeners: Budget::new(NEW_LISTENERS_PER_SEC, 5.0 * NEW_LISTENERS_PER_SEC),
            listener_gossip: Budget::starting_at(
                LISTENER_GOSSIP_PER_SEC,
                LISTENER_GOSSIP_BURST,
                1.0,
            ),
            unverified: Vec::new(),
            verifying: false,
            clock,
        })
    }

    /// The months served.
    pub(super) fn months(&self) -> impl Iterator<Item = Month> + '_ {
        self.months.keys().copied()
    }

    /// Whether receipts taken in are still on their way to the store.
    pub(super) fn writing(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Receipts of `month` held (stored).
    pub(super) fn held(&self, month: Month) -> usize {
        self.months.get(&month).map_or(0, MonthSet::len)
    }

    /// Serves `month` too, its set loaded from the store in a blocking task; `tx` hears when
    /// it is served. A month two or more before the newest served is dropped (month close
    /// needs the previous month's receipts; older ones stay in the store only).
    pub(super) fn serve(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        shared: &Shared,
        month: Month,
        tx: oneshot::Sender<Result<(), Error>>,
    ) {
        if self.months.contains_key(&month) {
            self.retire_old(swarm);
            let _ = tx.send(Ok(()));
            return;
        }
        let (store, done) = (shared.store.clone(), shared.done.clone());
        tokio::task::spawn_blocking(move || {
            let set = store
                .node_records()
                .and_then(|records| load_month(&store, &records, month));
            let _ = done.send(super::Done::Receipts(Done::Loaded { month, set, tx }));
        });
    }

    /// A month's set is loaded: serve it.
    fn on_loaded(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        month: Month,
        set: MonthSet,
        subscriptions: Vec<SignedSubscription>,
    ) -> Result<(), Error> {
        if let std::collections::btree_map::Entry::Vacant(e) = self.months.entry(month) {
            super::subscribe(swarm, &receipt_topic(month))?;
            e.insert(set);
            self.admission.serve(month, &subscriptions);
        }
        self.retire_old(swarm);
        Ok(())
    }

    /// Stops serving the months before the one before the newest.
    fn retire_old(&mut self, swarm: &mut Swarm<Behaviour>) {
        let Some(newest) = self.months.keys().next_back().copied() else {
            return;
        };
        let keep_from = newest.previous().unwrap_or(newest);
        let old: Vec<Month> = self.months.range(..keep_from).map(|(m, _)| *m).collect();
        for m in old {
            self.months.remove(&m);
            self.admission.retire(m);
            self.sessions.retain(|(_, sm), _| *sm != m);
            let _ = swarm
                .behaviour_mut()
                .gossipsub
                .unsubscribe(&receipt_topic(m));
            debug!(%m, "month no longer served");
        }
    }

    /// A receipt this node signed: stored first, then taken in and gossiped; `tx` hears when
    /// it is durable and sent.
    pub(super) fn publish(
        &mut self,
        receipt: SignedReceipt,
        tx: oneshot::Sender<Result<(), Error>>,
    ) {
        let Some(month) = self.month_of(&receipt) else {
            let month = Month::containing(receipt.receipt.started_at_ms);
            let _ = tx.send(Err(Error::MonthNotServed(month)));
            return;
        };
        if !self.admission.admits(&receipt.receipt, month) {
            let _ = tx.send(Err(Error::Unsubscribed));
            return;
        }
        let id = receipt.id().0;
        let set = self.months.get_mut(&month).expect("served");
        if set.contains(&item_of(&receipt)) {
            // Published before (a retry): stored already.
            let _ = tx.send(Ok(()));
            return;
        }
        if let Some(waiting) = self.publishing.get_mut(&id) {
            waiting.push(tx);
            return;
        }
        set.count(receipt.receipt.listener);
        self.pending.insert(id);
        self.publishing.insert(id, vec![tx]);
        self.send_to_writer(vec![receipt], Via::Local);
    }

    fn month_of(&self, r: &SignedReceipt) -> Option<Month> {
        Month::containing(r.receipt.started_at_ms).filter(|m| self.months.contains_key(m))
    }

    fn send_to_writer(&mut self, receipts: Vec<SignedReceipt>, via: Via) {
        if let Err(e) = self.writer.try_send((receipts, via)) {
            // The writer's queue is bounded; when it is full the receipts are not admitted
            // (reconciliation brings them again) rather than queued without limit.
            let (receipts, via) = e.into_inner();
            warn!(
                n = receipts.len(),
                "the receipt writer is behind; receipts dropped"
            );
            self.forget(&receipts, via, Err(Error::Busy));
        }
    }

    /// Takes back receipts that did not reach the store; whoever waits for a local one hears
    /// why (the first waiter gets the error itself, others that the store was busy).
    fn forget(&mut self, receipts: &[SignedReceipt], via: Via, err: Result<(), Error>) {
        let mut err = Some(err);
        for r in receipts {
            let id = r.id().0;
            self.pending.remove(&id);
            if let Some(m) = self.month_of(r) {
                self.months
                    .get_mut(&m)
                    .expect("served")
                    .uncount(&r.receipt.listener);
            }
            if via == Via::Local {
                for tx in self.publishing.remove(&id).unwrap_or_default() {
                    let _ = tx.send(err.take().unwrap_or(Err(Error::Busy)));
                }
            }
        }
    }

    /// Checks the cheap rules (month, subscription, time, duplicates, listener cap) of
    /// receipts already verified and sends the admitted ones to the writer; true when some
    /// were of keys with no subscription known.
    fn admit(&mut self, shared: &mut Shared, receipts: Vec<SignedReceipt>, via: Via) -> bool {
        let now = self.clock.now_ms();
        let mut take = Vec::new();
        let mut lacking = false;
        for r in receipts {
            let Some(month) = self.month_of(&r) else {
                shared.stats.rejected += 1;
                continue;
            };
            let id = r.id().0;
            if !self.admission.admits(&r.receipt, month) {
                shared.stats.unsubscribed += 1;
                lacking = true;
                self.await_subscription(r.receipt.listener, id);
                continue;
            }
            let set = self.months.get_mut(&month).expect("served");
            if self.pending.contains(&id) || set.contains(&item_of(&r)) {
                shared.stats.duplicates += 1;
                continue;
            }
            if r.receipt.started_at_ms > now.saturating_add(FUTURE_SKEW_MS)
                || set.of_listener(&r.receipt.listener) >= MAX_PER_LISTENER
            {
                shared.stats.refused += 1;
                remember(&mut self.refused, id);
                continue;
            }
            set.count(r.receipt.listener);
            self.pending.insert(id);
            take.push(r);
        }
        if !take.is_empty() {
            self.send_to_writer(take, via);
        }
        lacking
    }

    /// Remembers a receipt refused for want of a subscription, so that reconciliation does
    /// not fetch it again until one comes.
    fn await_subscription(&mut self, listener: PublicKey, id: [u8; 32]) {
        if self.refused.len() >= MAX_REFUSED {
            self.refused.clear();
            self.awaiting.clear();
        }
        self.refused.insert(id);
        self.awaiting.entry(listener).or_default().push(id);
    }

    /// A node record was verified and stored: receipts refused before, whose subscriptions
    /// may name that node, may come again.
    pub(super) fn on_node_record(&mut self, record: SignedNodeRecord) {
        self.admission.node_record(record);
        for id in std::mem::take(&mut self.awaiting).into_values().flatten() {
            self.refused.remove(&id);
        }
    }

    /// A subscription was verified and stored: its listener's receipts refused before may
    /// come again.
    pub(super) fn on_subscription(&mut self, subscription: &SignedSubscription) {
        if self.admission.subscription(subscription) {
            for id in self
                .awaiting
                .remove(&subscription.subscription.listener)
                .unwrap_or_default()
            {
                self.refused.remove(&id);
            }
        }
    }

    /// Peers that sent receipts whose subscription this node lacks, since the last call.
    pub(super) fn take_lacking(&mut self) -> Vec<PeerId> {
        std::mem::take(&mut self.lacking)
    }

    /// A batch reached the store (or failed to).
    fn on_stored(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        shared: &mut Shared,
        receipts: Vec<SignedReceipt>,
        via: Via,
        result: Result<(), nineten_storage::Error>,
    ) {
        if let Err(e) = result {
            warn!("storing {} receipts failed: {e}", receipts.len());
            self.forget(&receipts, via, Err(Error::Storage(e)));
            return;
        }
        for r in receipts {
            let id = r.id().0;
            self.pending.remove(&id);
            let Some(month) = self.month_of(&r) else {
                continue;
            };
            if !self.months.get_mut(&month).expect("served").insert(&r) {
                for tx in self.publishing.remove(&id).unwrap_or_default() {
                    let _ = tx.send(Ok(()));
                }
                continue;
            }
            shared.stats.accepted += 1;
            if via == Via::Reconciliation {
                shared.stats.reconciled += 1;
            }
            if via == Via::Local {
                let sent = swarm
                    .behaviour_mut()
                    .gossipsub
                    .publish(receipt_topic(month), r.to_bytes().to_vec())
                    .map(|_| ())
                    .or_else(|e| match e {
                        // Stored; peers get it by reconciliation.
                        gossipsub::PublishError::NoPeersSubscribedToTopic
                        | gossipsub::PublishError::Duplicate => Ok(()),
                        e => Err(Error::Publish(e)),
                    });
                let mut sent = Some(sent);
                for tx in self.publishing.remove(&id).unwrap_or_default() {
                    // Stored either way; only the first waiter hears a gossip error.
                    let _ = tx.send(sent.take().unwrap_or(Ok(())));
                }
            }
            let _ = shared.events.send(Event::Receipt {
                id: ContentHash(id),
                via,
            });
        }
    }

    /// Once a second: forgets the listeners' gossip budgets that have refilled.
    pub(super) fn tick(&mut self, now: Instant) {
        self.listener_gossip.prune(now);
    }

    /// A gossip message on a month topic: cheap checks now, the signature in a batch.
    pub(super) fn on_gossip(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        shared: &mut Shared,
        source: PeerId,
        id: MessageId,
        month: Month,
        data: &[u8],
    ) {
        shared.stats.gossip_received += 1;
        let verdict = |swarm: &mut Swarm<Behaviour>, v| {
            let _ = swarm
                .behaviour_mut()
                .gossipsub
                .report_message_validation_result(&id, &source, v);
        };
        let receipt = (data.len() == RECORD_LEN)
            .then(|| SignedReceipt::from_bytes(data).ok())
            .flatten()
            .filter(|r| Month::containing(r.receipt.started_at_ms) == Some(month));
        let Some(receipt) = receipt else {
            shared.stats.rejected += 1;
            verdict(swarm, MessageAcceptance::Reject);
            return;
        };
        let rid = receipt.id().0;
        let known = self.pending.contains(&rid)
            || self
                .months
                .get(&month)
                .is_some_and(|s| s.contains(&item_of(&receipt)));
        if known {
            // Held, or being stored, since reconciliation brought it: this node never
            // forwarded it. A fresh one goes on once its signature checks out (admission then
            // drops it as a duplicate), or the peers downstream would wait for their own
            // reconciliation. Gossipsub's seen cache lets each copy through once.
            let fresh = receipt
                .receipt
                .started_at_ms
                .saturating_add(FORWARD_WITHIN_MS)
                >= self.clock.now_ms();
            if !fresh {
                shared.stats.duplicates += 1;
                verdict(swarm, MessageAcceptance::Ignore);
                return;
            }
        } else if !self.admission.admits(&receipt.receipt, month) {
            // Nobody's subscriber that this node knows: it counts for nothing. An honest relay
            // sends one only when it learnt the subscription first, so these draw on the
            // relay's allowance; when the home node it names is in the directory, the relay
            // likely holds a subscription this node missed, so it catches up with it.
            shared.stats.unsubscribed += 1;
            shared.fault(source, Fault::Excess);
            if self
                .admission
                .in_directory(&receipt.receipt.home_node, month)
            {
                self.lacking.push(source);
            }
            verdict(swarm, MessageAcceptance::Ignore);
            return;
        } else {
            let now = Instant::now();
            let listener = receipt.receipt.listener;
            let held = self
                .months
                .get(&month)
                .map_or(0, |s| s.of_listener(&listener));
            let within = self.gossip.take(source, 1.0, now)
                && (held > 0 || self.new_listeners.take(source, 1.0, now));
            if !within {
                shared.stats.rate_limited += 1;
                shared.fault(source, Fault::Excess);
                verdict(swarm, MessageAcceptance::Ignore);
                return;
            }
            // Time and cap before the signature, so what would be refused is not forwarded
            // (nor uses the listener's budget).
            let future =
                receipt.receipt.started_at_ms > self.clock.now_ms().saturating_add(FUTURE_SKEW_MS);
            if held >= MAX_PER_LISTENER || future {
                shared.stats.refused += 1;
                verdict(swarm, MessageAcceptance::Ignore);
                return;
            }
            if !self.listener_gossip.take(listener, 1.0, now) {
                shared.stats.rate_limited += 1;
                verdict(swarm, MessageAcceptance::Ignore);
                return;
            }
        }
        self.unverified.push((id, source, receipt));
        if !self.verifying || self.unverified.len() >= VERIFY_BATCH {
            self.verify_gossip(swarm, shared);
        }
    }

    /// Verifies the waiting gossip receipts: a few right here (handing them to another
    /// thread and back would cost more than checking them), more in a blocking task.
    fn verify_gossip(&mut self, swarm: &mut Swarm<Behaviour>, shared: &mut Shared) {
        if self.unverified.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.unverified);
        if batch.len() <= VERIFY_INLINE {
            let (verdicts, good) = verified(batch);
            return self.on_verified(swarm, shared, verdicts, good);
        }
        self.verifying = true;
        let done = shared.done.clone();
        tokio::task::spawn_blocking(move || {
            let (verdicts, good) = verified(batch);
            let _ = done.send(super::Done::Receipts(Done::Verified { verdicts, good }));
        });
    }

    /// Gossip verdicts for verified receipts; the good ones go on to admission.
    fn on_verified(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        shared: &mut Shared,
        verdicts: Vec<(MessageId, PeerId, bool)>,
        good: Vec<SignedReceipt>,
    ) {
        for (id, peer, ok) in verdicts {
            let verdict = if ok {
                MessageAcceptance::Accept
            } else {
                shared.stats.rejected += 1;
                MessageAcceptance::Reject
            };
            let _ = swarm
                .behaviour_mut()
                .gossipsub
                .report_message_validation_result(&id, &peer, verdict);
        }
        self.admit(shared, good, Via::Gossip);
        self.verify_gossip(swarm, shared);
    }

    /// Starts a reconciliation of every month with `peer` (unless one is under way).
    pub(super) fn sync_with(&mut self, shared: &Shared, peer: PeerId) {
        let months: Vec<Month> = self.months.keys().copied().collect();
        for month in months {
            if self.sessions.contains_key(&(peer, month)) {
                continue;
            }
            self.sessions.insert(
                (peer, month),
                Session {
                    neg: None,
                    rounds: 0,
                    parked: None,
                    wanted: VecDeque::new(),
                    fetching: 0,
                    finished: false,
                },
            );
            let view = self.months[&month].view();
            let done = shared.done.clone();
            tokio::task::spawn_blocking(move || {
                let (storage, merged) = view.into_storage();
                let mut neg = Box::new(
                    Negentropy::owned(storage, MAX_FRAME).expect("frame limit above 4096"),
                );
                let result = neg.initiate().map(|frame| (Some(frame), Vec::new()));
                let _ = done.send(super::Done::Receipts(Done::Round {
                    peer,
                    month,
                    session: neg,
                    result,
                    merged,
                }));
            });
        }
    }

    /// A peer left: its sessions end.
    pub(super) fn on_disconnected(&mut self, peer: &PeerId) {
        self.sessions.retain(|(p, _), _| p != peer);
        self.inbound.remove(peer);
        self.requests.forget(peer);
        self.gossip.forget(peer);
        self.new_listeners.forget(peer);
    }

    /// Blocking work finished.
    pub(super) fn on_done(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        shared: &mut Shared,
        done: Done,
    ) {
        match done {
            Done::Loaded { month, set, tx } => {
                let served = set
                    .map_err(Error::Storage)
                    .and_then(|(set, subs)| self.on_loaded(swarm, month, set, subs));
                let _ = tx.send(served);
            }
            Done::Stored { parts, result } => {
                // The first part hears the store's error itself, the others what it said.
                let failed = result.as_ref().err().map(ToString::to_string);
                let mut first = Some(result);
                for (receipts, via) in parts {
                    let result = first.take().unwrap_or_else(|| match &failed {
                        Some(e) => Err(nineten_storage::Error::Invalid(e.clone())),
                        None => Ok(()),
                    });
                    self.on_stored(swarm, shared, receipts, via, result);
                }
            }
            Done::Verified { verdicts, good } => {
                self.verifying = false;
                self.on_verified(swarm, shared, verdicts, good);
            }
            Done::Answer {
                peer,
                channel,
                response,
                merged,
                fault,
            } => {
                if let Some(n) = self.inbound.get_mut(&peer) {
                    *n = n.saturating_sub(1);
                }
                if let Some((month, generation, snapshot)) = merged
                    && let Some(set) = self.months.get_mut(&month)
                {
                    set.install(generation, snapshot);
                }
                if fault {
                    shared.fault(peer, Fault::Lie);
                }
                shared.stats.sync_bytes += payload_len(&response);
                let _ = swarm
                    .behaviour_mut()
                    .receipts
                    .send_response(channel, response);
            }
            Done::Round {
                peer,
                month,
                session,
                result,
                merged,
            } => self.on_round(swarm, shared, peer, month, session, result, merged),
            Done::Fetched {
                peer,
                month,
                good,
                lies,
            } => {
                if lies {
                    shared.fault(peer, Fault::Lie);
                }
                if self.admit(shared, good, Via::Reconciliation) {
                    self.lacking.push(peer);
                }
                if let Some(s) = self.sessions.get_mut(&(peer, month)) {
                    s.fetching = s.fetching.saturating_sub(1);
                }
                self.pump(swarm, shared, peer, month);
            }
        }
    }

    #[allow(clippy::too_many_arguments)] // one blocking task's whole result
    fn on_round(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        shared: &mut Shared,
        peer: PeerId,
        month: Month,
        neg: Box<Negentropy<'static, Snapshot>>,
        result: Result<(Option<Vec<u8>>, Vec<Id>), negentropy::Error>,
        merged: Option<(u64, Snapshot)>,
    ) {
        if let Some((generation, snapshot)) = merged
            && let Some(set) = self.months.get_mut(&month)
        {
            set.install(generation, snapshot);
        }
        let Some(session) = self.sessions.get_mut(&(peer, month)) else {
            return;
        };
        let (frame, need) = match result {
            Ok(r) => r,
            Err(e) => {
                debug!(%peer, "reconciliation frame refused: {e}");
                self.sessions.remove(&(peer, month));
                shared.fault(peer, Fault::Lie);
                return;
            }
        };
        session.neg = Some(neg);
        for id in need {
            let b = id.as_bytes();
            let known =
                self.pending.contains(b) || self.requested.contains(b) || self.refused.contains(b);
            if !known {
                session.wanted.push_back(id);
            }
        }
        match frame {
            Some(frame) if session.rounds < MAX_ROUNDS => {
                session.parked = Some(frame);
            }
            _ => session.finished = true,
        }
        self.pump(swarm, shared, peer, month);
    }

    /// Moves a session on: fetches what it wants, and sends its parked frame once the
    /// fetches have caught up; ends it when nothing is left.
    fn pump(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        shared: &mut Shared,
        peer: PeerId,
        month: Month,
    ) {
        let Some(session) = self.sessions.get_mut(&(peer, month)) else {
            return;
        };
        while session.fetching < FETCHES_IN_FLIGHT && !session.wanted.is_empty() {
            // Another session may have asked for some meanwhile, or they may have arrived.
            let mut ids: Vec<Id> = Vec::with_capacity(MAX_FETCH);
            while ids.len() < MAX_FETCH
                && let Some(id) = session.wanted.pop_front()
            {
                let b = id.as_bytes();
                if !self.pending.contains(b) && self.requested.insert(*b) {
                    ids.push(id);
                }
            }
            if ids.is_empty() {
                continue;
            }
            let bytes: Vec<u8> = ids.iter().flat_map(|id| *id.as_bytes()).collect();
            shared.stats.sync_bytes += bytes.len() as u64;
            let rid = swarm
                .behaviour_mut()
                .receipts
                .send_request(&peer, Request::Fetch(bytes));
            session.fetching += 1;
            self.outbound.insert(
                rid,
                Outbound::Fetch {
                    month,
                    ids: ids.iter().map(|id| *id.as_bytes()).collect(),
                },
            );
        }
        if session.wanted.len() < MAX_WANTED
            && let Some(frame) = session.parked.take()
        {
            session.rounds += 1;
            shared.stats.sync_bytes += frame.len() as u64;
            let rid = swarm.behaviour_mut().receipts.send_request(
                &peer,
                Request::Reconcile {
                    month: month.to_string(),
                    frame,
                },
            );
            self.outbound.insert(rid, Outbound::Round { month });
        }
        if session.finished && session.wanted.is_empty() && session.fetching == 0 {
            self.sessions.remove(&(peer, month));
        }
    }

    /// A request-response event of the receipt-sync protocol.
    pub(super) fn on_sync(
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
            } => self.on_request(swarm, shared, peer, request, channel),
            E::Message {
                peer,
                message:
                    Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                let Some(outbound) = self.outbound.remove(&request_id) else {
                    return;
                };
                self.on_response(swarm, shared, peer, outbound, response);
            }
            E::OutboundFailure {
                request_id, peer, ..
            } => match self.outbound.remove(&request_id) {
                Some(Outbound::Round { month, .. }) => {
                    self.sessions.remove(&(peer, month));
                }
                Some(Outbound::Fetch { month, ids }) => {
                    for id in &ids {
                        self.requested.remove(id);
                    }
                    if let Some(s) = self.sessions.get_mut(&(peer, month)) {
                        s.fetching = s.fetching.saturating_sub(1);
                    }
                    self.pump(swarm, shared, peer, month);
                }
                None => {}
            },
            _ => {}
        }
    }

    fn on_request(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        shared: &mut Shared,
        peer: PeerId,
        request: Request,
        channel: ResponseChannel<Response>,
    ) {
        let busy = self.inbound.get(&peer).copied().unwrap_or(0) >= MAX_INBOUND;
        if busy || !self.requests.take(peer, 1.0, Instant::now()) {
            shared.stats.rate_limited += 1;
            shared.fault(peer, Fault::Flood);
            let _ = swarm
                .behaviour_mut()
                .receipts
                .send_response(channel, Response::Refused);
            return;
        }
        let done = shared.done.clone();
        match request {
            Request::Reconcile { month, frame } => {
                let month = month.parse::<Month>().ok();
                let Some((month, set)) = month.and_then(|m| Some((m, self.months.get(&m)?))) else {
                    let _ = swarm
                        .behaviour_mut()
                        .receipts
                        .send_response(channel, Response::Refused);
                    return;
                };
                *self.inbound.entry(peer).or_default() += 1;
                let view: View = set.view();
                tokio::task::spawn_blocking(move || {
                    let (storage, merged) = view.into_storage();
                    let answer = (frame.len() as u64 <= MAX_FRAME)
                        .then(|| {
                            Negentropy::owned(storage, MAX_FRAME)
                                .and_then(|mut neg| neg.reconcile(&frame))
                                .ok()
                        })
                        .flatten();
                    let fault = answer.is_none();
                    let _ = done.send(super::Done::Receipts(Done::Answer {
                        peer,
                        channel,
                        response: answer.map_or(Response::Refused, Response::Reconcile),
                        merged: merged.map(|(g, s)| (month, g, s)),
                        fault,
                    }));
                });
            }
            Request::Fetch(ids) => {
                *self.inbound.entry(peer).or_default() += 1;
                let store = shared.store.clone();
                tokio::task::spawn_blocking(move || {
                    let ok = ids.len().is_multiple_of(32) && ids.len() / 32 <= MAX_FETCH;
                    let ids: Vec<ContentHash> = ids
                        .chunks_exact(32)
                        .take(MAX_FETCH)
                        .map(|c| ContentHash(c.try_into().expect("32 bytes")))
                        .collect();
                    let receipts = if ok {
                        store.receipts_by_ids(&ids).unwrap_or_else(|e| {
                            warn!("reading receipts for a peer failed: {e}");
                            Vec::new()
                        })
                    } else {
                        Vec::new()
                    };
                    let bytes: Vec<u8> = receipts.iter().flat_map(|r| r.to_bytes()).collect();
                    let _ = done.send(super::Done::Receipts(Done::Answer {
                        peer,
                        channel,
                        response: if ok {
                            Response::Receipts(bytes)
                        } else {
                            Response::Refused
                        },
                        merged: None,
                        fault: !ok,
                    }));
                });
            }
        }
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
            (Outbound::Round { month, .. }, Response::Reconcile(frame))
                if frame.len() as u64 <= MAX_FRAME =>
            {
                let Some(session) = self.sessions.get_mut(&(peer, month)) else {
                    return;
                };
                let Some(mut neg) = session.neg.take() else {
                    return;
                };
                let done = shared.done.clone();
                tokio::task::spawn_blocking(move || {
                    let (mut have, mut need) = (Vec::new(), Vec::new());
                    let result = neg
                        .reconcile_with_ids(&frame, &mut have, &mut need)
                        .map(|next| (next, need));
                    let _ = done.send(super::Done::Receipts(Done::Round {
                        peer,
                        month,
                        session: neg,
                        result,
                        merged: None,
                    }));
                });
            }
            (Outbound::Round { month, .. }, Response::Refused) => {
                self.sessions.remove(&(peer, month));
            }
            (Outbound::Fetch { month, ids }, Response::Receipts(bytes)) => {
                // Whatever of them the peer did not send, another session may ask for again.
                for id in &ids {
                    self.requested.remove(id);
                }
                let done = shared.done.clone();
                tokio::task::spawn_blocking(move || {
                    let (good, lies) = check_fetched(&bytes, &ids, month);
                    let _ = done.send(super::Done::Receipts(Done::Fetched {
                        peer,
                        month,
                        good,
                        lies,
                    }));
                });
            }
            (Outbound::Fetch { month, ids }, Response::Refused) => {
                for id in &ids {
                    self.requested.remove(id);
                }
                if let Some(s) = self.sessions.get_mut(&(peer, month)) {
                    s.fetching = s.fetching.saturating_sub(1);
                }
                self.pump(swarm, shared, peer, month);
            }
            (Outbound::Fetch { month, ids }, _) => {
                for id in &ids {
                    self.requested.remove(id);
                }
                self.sessions.remove(&(peer, month));
                shared.fault(peer, Fault::Lie);
            }
            (Outbound::Round { month, .. }, _) => {
                // An answer that does not match the question.
                self.sessions.remove(&(peer, month));
                shared.fault(peer, Fault::Lie);
            }
        }
    }
}

/// The fetched receipts that were asked for, are of `month` and verify; whether the peer
/// sent anything else (or more than asked).
fn check_fetched(
    bytes: &[u8],
    asked: &HashSet<[u8; 32]>,
    month: Month,
) -> (Vec<SignedReceipt>, bool) {
    if !bytes.len().is_multiple_of(RECORD_LEN) || bytes.len() / RECORD_LEN > asked.len() {
        return (Vec::new(), true);
    }
    let mut lies = false;
    let mut seen = HashSet::new();
    let mut parsed = Vec::new();
    for chunk in bytes.chunks_exact(RECORD_LEN) {
        let Ok(r) = SignedReceipt::from_bytes(chunk) else {
            lies = true;
            continue;
        };
        let id = r.id().0;
        if asked.contains(&id) && seen.insert(id) && month.contains(r.receipt.started_at_ms) {
            parsed.push(r);
        } else {
            lies = true;
        }
    }
    let valid = verify_all(&parsed);
    lies |= valid.iter().any(|ok| !ok);
    let good = parsed
        .into_iter()
        .zip(valid)
        .filter_map(|(r, ok)| ok.then_some(r))
        .collect();
    (good, lies)
}

/// A month's subscriptions, and the set of its receipts the network carries (those
/// [`Admission`] admits, given the node records `records`), read from the store.
fn load_month(
    store: &Store,
    records: &[SignedNodeRecord],
    month: Month,
) -> Result<(MonthSet, Vec<SignedSubscription>), nineten_storage::Error> {
    let subscriptions = store.subscriptions_of_month(month)?;
    let mut admission = Admission::new(records);
    admission.serve(month, &subscriptions);
    let mut carried = store.receipts_of_month(month)?;
    carried.retain(|r| admission.admits(&r.receipt, month));
    Ok((MonthSet::of(&carried), subscriptions))
}

/// Remembers a refused id, forgetting all of them when the memory is full.
fn remember(refused: &mut HashSet<[u8; 32]>, id: [u8; 32]) {
    if refused.len() >= MAX_REFUSED {
        refused.clear();
    }
    refused.insert(id);
}

/// Payload bytes of a response, as counted in [`super::Stats::sync_bytes`].
/// Gossip receipts checked: each message's verdict, and the receipts that verified.
fn verified(
    batch: Vec<(MessageId, PeerId, SignedReceipt)>,
) -> (Vec<(MessageId, PeerId, bool)>, Vec<SignedReceipt>) {
    let receipts: Vec<SignedReceipt> = batch.iter().map(|(_, _, r)| *r).collect();
    let valid = verify_all(&receipts);
    let mut good = Vec::new();
    let mut verdicts = Vec::with_capacity(batch.len());
    for ((id, peer, r), ok) in batch.into_iter().zip(valid) {
        if ok {
            good.push(r);
        }
        verdicts.push((id, peer, ok));
    }
    (verdicts, good)
}

fn payload_len(response: &Response) -> u64 {
    match response {
        Response::Reconcile(b) | Response::Receipts(b) => b.len() as u64,
        Response::Refused => 0,
    }
}

/// Stores admitted receipts in batches off the event loop and reports each batch back. The
/// queue is bounded: when the store falls behind, admission refuses instead of queueing.
fn spawn_writer(
    store: Store,
    clock: Clock,
    done: mpsc::UnboundedSender<super::Done>,
) -> mpsc::Sender<(Vec<SignedReceipt>, Via)> {
    let (tx, mut rx) = mpsc::channel::<(Vec<SignedReceipt>, Via)>(1024);
    tokio::spawn(async move {
        while let Some(first) = rx.recv().await {
            // Whatever queued meanwhile goes in the same write (one flush), each part
            // reported with how it came.
            let mut count = first.0.len();
            let mut parts = vec![first];
            while count < 4096
                && let Ok(more) = rx.try_recv()
            {
                count += more.0.len();
                parts.push(more);
            }
            let (store, parts) = (store.clone(), Arc::new(parts));
            let writing = Arc::clone(&parts);
            let now = clock.now_ms();
            let result = tokio::task::spawn_blocking(move || {
                let all: Vec<SignedReceipt> = writing
                    .iter()
                    .flat_map(|(r, _)| r.iter().copied())
                    .collect();
                store.put_receipts(&all, now)
            })
            .await
            .unwrap_or_else(|e| {
                Err(nineten_storage::Error::Invalid(format!(
                    "the storage task failed: {e}"
                )))
            });
            let parts = Arc::try_unwrap(parts).unwrap_or_else(|p| p.to_vec());
            let _ = done.send(super::Done::Receipts(Done::Stored { parts, result }));
        }
    });
    tx
}
