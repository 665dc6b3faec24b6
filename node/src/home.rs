//! A node's part in subscriptions: as a home node, its node record (`review.md`) and the
//! requests its operator decides; as a listener's node, which home node its receipts of a
//! month name (the subscription of that month key that counts, `records.md`).

use nineten_protocol::identity::Keypair;
use nineten_protocol::key::{ContentHash, PublicKey};
use nineten_protocol::month::Month;
use nineten_protocol::node_record::{NodeName, NodeRecord, SignedNodeRecord};
use nineten_protocol::receipt::NO_HOME_NODE;
use nineten_protocol::subscription::SignedSubscription;
use nineten_storage::Store;

use crate::error::Error;
use crate::library::{Matched, by_prefix};
use crate::net::subscribe::{Policy, Request};

/// What makes a node a home node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operator {
    /// The cluster its operator declares.
    pub cluster: u16,
    /// The operator's display name.
    pub name: NodeName,
    /// How subscription requests are taken.
    pub policy: Policy,
}

/// The node record to publish for `key` as `operator` in month `now`: the node's newest
/// record if it says the same, else a new one with the next seq. A node's first record joins
/// `now`; later ones keep the month it first joined.
pub fn node_record(
    store: &Store,
    key: &Keypair,
    operator: &Operator,
    now: Month,
) -> Result<SignedNodeRecord, Error> {
    let newest = store
        .node_records()?
        .into_iter()
        .filter(|r| r.body.node == key.public() && r.verifies())
        .max_by_key(|r| r.body.seq);
    if let Some(r) = &newest
        && r.body.cluster == operator.cluster
        && r.body.name == operator.name
    {
        return Ok(r.clone());
    }
    let body = NodeRecord {
        node: key.public(),
        seq: newest.as_ref().map_or(1, |r| r.body.seq + 1),
        cluster: operator.cluster,
        joined: newest.as_ref().map_or(now, |r| r.body.joined),
        name: operator.name.clone(),
    };
    let record = SignedNodeRecord::sign(body, key);
    store.put_node_record(&record)?;
    Ok(record)
}

/// The home node a listener key's receipts of `month` name: that of the subscription that
/// counts (the smallest home node key, then payment reference), or [`NO_HOME_NODE`] when it
/// has none (its receipts then stay on this node and count for nothing).
pub fn home_of(
    store: &Store,
    listener: &PublicKey,
    month: Month,
) -> Result<PublicKey, nineten_storage::Error> {
    let counts = store
        .subscriptions_of_listener(month, listener)?
        .into_iter()
        .map(|s| s.subscription)
        .min_by(|a, b| {
            (a.home_node, a.payment_ref.as_str()).cmp(&(b.home_node, b.payment_ref.as_str()))
        });
    Ok(counts.map_or(NO_HOME_NODE, |s| s.home_node))
}

/// A subscription request waiting for the operator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pending {
    /// The request's id (`9ten subscription approve ID`).
    pub id: ContentHash,
    /// The request.
    pub request: Request,
}

/// The requests waiting for this home node's operator.
pub fn pending(store: &Store) -> Result<Vec<Pending>, Error> {
    store
        .pending()?
        .into_iter()
        .map(|(id, bytes)| {
            let request = serde_json::from_slice(&bytes).map_err(|e| {
                Error::Identity(format!("a stored subscription request does not read: {e}"))
            })?;
            Ok(Pending { id, request })
        })
        .collect()
}

/// Settles a pending request (its id or the start of it, at least 4 characters): approved, the subscription is
/// signed with `key` and stored with the settlement, and returned to be gossiped.
pub fn decide(
    store: &Store,
    key: &Keypair,
    id: &str,
    approve: bool,
) -> Result<Option<SignedSubscription>, Error> {
    let p = match by_prefix(pending(store)?, |p| p.id, id) {
        Matched::One(p) => p,
        Matched::Several => return Err(Error::AmbiguousRequest(id.to_string())),
        Matched::None => return Err(Error::UnknownRequest(id.to_string())),
    };
    let signed = if approve {
        let subscription = p
            .request
            .subscription(&key.public())
            .map_err(|e| Error::Identity(e.to_string()))?;
        p.request.link(store)?;
        Some(subscription.sign(key))
    } else {
        None
    };
    store.settle_pending(&p.id, signed.as_ref())?;
    Ok(signed)
}
