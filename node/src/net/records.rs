//! The kinds of record every node holds all of, each carried by a [`Catalog`] on its own topic
//! and catch-up protocol: release manifests, node records (the directory, `review.md`),
//! subscriptions (`records.md`) and review records (`review.md`: daily reports, bundles,
//! attestations, disputes, verdicts).

use libp2p::gossipsub::IdentTopic;
use libp2p::request_response::cbor;
use nineten_protocol::key::ContentHash;
use nineten_protocol::manifest::SignedManifest;
use nineten_protocol::month::Month;
use nineten_protocol::node_record::SignedNodeRecord;
use nineten_protocol::review_record::ReviewRecord;
use nineten_protocol::schedule;
use nineten_protocol::subscription::SignedSubscription;
use nineten_protocol::wire;
use nineten_storage::{Error, Store};

use super::catalog::{Catalog, Done, Kind, Request, Response};
use super::{Behaviour, Stats};

/// Largest manifest accepted (gossip or catch-up).
pub const MAX_MANIFEST: usize = 64 * 1024;
/// Longest payment reference carried on the network (`records.md` allows 65,535 bytes; a
/// wallet's or gateway's transaction id is far shorter).
pub const MAX_PAYMENT_REF: usize = 1024;
/// Largest node record: its fields with the longest name, and the signature.
const MAX_NODE_RECORD: usize = 13 + 32 + 8 + 2 + 3 + 2 + 64 + 64;
/// Largest subscription carried: its fields with the longest payment reference, and the
/// signature.
pub(super) const MAX_SUBSCRIPTION: usize = 21 + 32 + 3 + 32 + 8 + 2 + MAX_PAYMENT_REF + 64;
/// Largest review record: a bundle (tag, key, month, six hashes, round, signature).
pub(super) const MAX_REVIEW_RECORD: usize = 15 + 32 + 3 + 6 * 32 + 1 + 64;
/// Months ahead of its own a node takes node records for: an operator announces its node
/// before the month it joins.
const NODE_RECORD_AHEAD: usize = 12;

/// Release manifests, on the catalog topic.
pub(super) enum Releases {}
/// Node records, on the nodes topic.
pub(super) enum Nodes {}
/// Subscriptions, on the subscriptions topic.
pub(super) enum Subscriptions {}
/// Review records, on the review topic.
pub(super) enum Reviews {}

/// The catalog of releases.
pub(super) type ReleaseCatalog = Catalog<Releases>;
/// The directory's records.
pub(super) type NodeCatalog = Catalog<Nodes>;
/// The subscriptions.
pub(super) type SubscriptionCatalog = Catalog<Subscriptions>;
/// The review records.
pub(super) type ReviewCatalog = Catalog<Reviews>;

impl Kind for Releases {
    type Record = SignedManifest;
    const MAX_BYTES: usize = MAX_MANIFEST;
    const PER_SEC: f64 = 5.0;

    fn topic() -> IdentTopic {
        IdentTopic::new(wire::CATALOG_TOPIC)
    }
    fn protocol(b: &mut Behaviour) -> &mut cbor::Behaviour<Request, Response> {
        &mut b.catalog
    }
    fn read(bytes: &[u8]) -> Option<SignedManifest> {
        SignedManifest::from_bytes(bytes).ok()
    }
    fn wanted(_: &SignedManifest, _: Month) -> bool {
        true
    }
    fn put(store: &Store, r: &SignedManifest) -> Result<(), Error> {
        store.put_manifest(r).map(|_| ())
    }
    fn get(store: &Store, id: &ContentHash) -> Result<Option<Vec<u8>>, Error> {
        Ok(store.manifest(id)?.map(|m| m.to_bytes()))
    }
    fn ids(
        store: &Store,
        after: Option<&ContentHash>,
        n: usize,
    ) -> Result<Vec<ContentHash>, Error> {
        store.manifest_ids(after, n)
    }
    fn counters(stats: &mut Stats) -> (&mut u64, &mut u64) {
        (&mut stats.releases, &mut stats.releases_rejected)
    }
    fn done(done: Done<SignedManifest>) -> super::Done {
        super::Done::Releases(done)
    }
}

impl Kind for Nodes {
    type Record = SignedNodeRecord;
    const MAX_BYTES: usize = MAX_NODE_RECORD;
    const PER_SEC: f64 = 1.0;

    fn topic() -> IdentTopic {
        IdentTopic::new(wire::NODES_TOPIC)
    }
    fn protocol(b: &mut Behaviour) -> &mut cbor::Behaviour<Request, Response> {
        &mut b.nodes
    }
    fn read(bytes: &[u8]) -> Option<SignedNodeRecord> {
        SignedNodeRecord::from_bytes(bytes).ok()
    }
    fn wanted(r: &SignedNodeRecord, now: Month) -> bool {
        let mut limit = now;
        for _ in 0..NODE_RECORD_AHEAD {
            limit = limit.next().unwrap_or(limit);
        }
        r.body.joined <= limit
    }
    fn put(store: &Store, r: &SignedNodeRecord) -> Result<(), Error> {
        store.put_node_record(r)
    }
    fn get(store: &Store, id: &ContentHash) -> Result<Option<Vec<u8>>, Error> {
        Ok(store.node_record(id)?.map(|r| r.to_bytes()))
    }
    fn ids(
        store: &Store,
        after: Option<&ContentHash>,
        n: usize,
    ) -> Result<Vec<ContentHash>, Error> {
        store.node_record_ids(after, n)
    }
    fn counters(stats: &mut Stats) -> (&mut u64, &mut u64) {
        (&mut stats.node_records, &mut stats.node_records_rejected)
    }
    fn done(done: Done<SignedNodeRecord>) -> super::Done {
        super::Done::Nodes(done)
    }
}

impl Kind for Subscriptions {
    type Record = SignedSubscription;
    const MAX_BYTES: usize = MAX_SUBSCRIPTION;
    const PER_SEC: f64 = 100.0;

    fn topic() -> IdentTopic {
        IdentTopic::new(wire::SUBSCRIPTIONS_TOPIC)
    }
    fn protocol(b: &mut Behaviour) -> &mut cbor::Behaviour<Request, Response> {
        &mut b.subscriptions
    }
    fn read(bytes: &[u8]) -> Option<SignedSubscription> {
        SignedSubscription::from_bytes(bytes).ok()
    }
    /// Subscriptions of the previous, this and the next month: those a node serves, and
    /// renewals signed ahead.
    fn wanted(s: &SignedSubscription, now: Month) -> bool {
        let m = s.subscription.month;
        m == now || Some(m) == now.previous() || Some(m) == now.next()
    }
    fn put(store: &Store, s: &SignedSubscription) -> Result<(), Error> {
        store.put_subscriptions(std::slice::from_ref(s))
    }
    fn get(store: &Store, id: &ContentHash) -> Result<Option<Vec<u8>>, Error> {
        Ok(store.subscription(id)?.map(|s| s.to_bytes()))
    }
    fn ids(
        store: &Store,
        after: Option<&ContentHash>,
        n: usize,
    ) -> Result<Vec<ContentHash>, Error> {
        store.subscription_ids(after, n)
    }
    fn counters(stats: &mut Stats) -> (&mut u64, &mut u64) {
        (&mut stats.subscriptions, &mut stats.subscriptions_rejected)
    }
    fn done(done: Done<SignedSubscription>) -> super::Done {
        super::Done::Subscriptions(done)
    }
}

impl Kind for Reviews {
    type Record = ReviewRecord;
    const MAX_BYTES: usize = MAX_REVIEW_RECORD;
    const PER_SEC: f64 = 50.0;

    fn topic() -> IdentTopic {
        IdentTopic::new(wire::REVIEW_TOPIC)
    }
    fn protocol(b: &mut Behaviour) -> &mut cbor::Behaviour<Request, Response> {
        &mut b.reviews
    }
    fn read(bytes: &[u8]) -> Option<ReviewRecord> {
        ReviewRecord::from_bytes(bytes).ok()
    }
    /// Daily reports, bundles and payout statements of the last 13 months, bundles and
    /// statements only of months that have ended; attestations, disputes and verdicts whatever they name (their bundle may come
    /// later).
    fn wanted(r: &ReviewRecord, now: Month) -> bool {
        let mut oldest = now;
        for _ in 0..schedule::KEPT_MONTHS {
            oldest = oldest.previous().unwrap_or(oldest);
        }
        match r {
            ReviewRecord::Daily(d) => (oldest..=now).contains(&d.body.day.month()),
            ReviewRecord::Bundle(b) => (oldest..now).contains(&b.body.month),
            ReviewRecord::Payout(p) => (oldest..now).contains(&p.body.month),
            _ => true,
        }
    }
    fn put(store: &Store, r: &ReviewRecord) -> Result<(), Error> {
        store.put_review(r)
    }
    fn get(store: &Store, id: &ContentHash) -> Result<Option<Vec<u8>>, Error> {
        Ok(store.review(id)?.map(|r| r.to_bytes()))
    }
    fn ids(
        store: &Store,
        after: Option<&ContentHash>,
        n: usize,
    ) -> Result<Vec<ContentHash>, Error> {
        store.review_ids(after, n)
    }
    fn counters(stats: &mut Stats) -> (&mut u64, &mut u64) {
        (&mut stats.reviews, &mut stats.reviews_rejected)
    }
    fn done(done: Done<ReviewRecord>) -> super::Done {
        super::Done::Reviews(done)
    }
}
