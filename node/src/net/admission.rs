//! Whose receipts the network carries: a receipt of month M is taken only when its listener
//! key holds a subscription of M (`records.md`) signed by the home node the receipt names, and
//! that home node is in the directory for M (`review.md`, "Node record"). Receipts of anyone
//! else would count for nothing in settlement, so carrying them would only spend the network's
//! bandwidth and storage: a flood of receipts of fresh keys costs each node a lookup.
//!
//! Node records and subscriptions reach [`Admission`] once they are verified and stored.

use std::collections::{BTreeMap, HashMap, HashSet};

use nineten_protocol::key::PublicKey;
use nineten_protocol::month::Month;
use nineten_protocol::node_record::SignedNodeRecord;
use nineten_protocol::receipt::Receipt;
use nineten_protocol::subscription::SignedSubscription;

/// The directory's members and the subscriptions of the months served.
#[derive(Debug, Default)]
pub(super) struct Admission {
    /// Per node key, its records by seq: the first one met, and whether another differed.
    nodes: HashMap<PublicKey, BTreeMap<u64, SignedNodeRecord>>,
    /// Nodes that signed two different records with one seq: in no directory.
    equivocated: HashSet<PublicKey>,
    /// Per month, per listener key, the home nodes that subscribed it.
    subscribed: HashMap<Month, HashMap<PublicKey, Vec<PublicKey>>>,
}

impl Admission {
    /// Knowing these node records (verified), serving no month yet.
    pub(super) fn new(records: &[SignedNodeRecord]) -> Self {
        let mut a = Self::default();
        for r in records {
            a.node_record(r.clone());
        }
        a
    }

    /// Takes in the subscriptions of a month now served.
    pub(super) fn serve(&mut self, month: Month, subscriptions: &[SignedSubscription]) {
        self.subscribed.entry(month).or_default();
        for s in subscriptions {
            self.subscription(s);
        }
    }

    /// Forgets a month no longer served.
    pub(super) fn retire(&mut self, month: Month) {
        self.subscribed.remove(&month);
    }

    /// A node record, verified.
    pub(super) fn node_record(&mut self, r: SignedNodeRecord) {
        let node = r.body.node;
        let records = self.nodes.entry(node).or_default();
        match records.get(&r.body.seq) {
            Some(held) if held.body != r.body => {
                self.equivocated.insert(node);
            }
            Some(_) => {}
            None => {
                records.insert(r.body.seq, r);
            }
        }
    }

    /// A subscription, verified; true when it is of a month served.
    pub(super) fn subscription(&mut self, s: &SignedSubscription) -> bool {
        let sub = &s.subscription;
        let Some(month) = self.subscribed.get_mut(&sub.month) else {
            return false;
        };
        let homes = month.entry(sub.listener).or_default();
        if !homes.contains(&sub.home_node) {
            homes.push(sub.home_node);
        }
        true
    }

    /// Whether `node` is in the directory for `month`: a record of it joined by then, and it
    /// never equivocated.
    pub(super) fn in_directory(&self, node: &PublicKey, month: Month) -> bool {
        !self.equivocated.contains(node)
            && self
                .nodes
                .get(node)
                .is_some_and(|rs| rs.values().any(|r| r.body.joined <= month))
    }

    /// Whether a receipt of `month` is carried.
    pub(super) fn admits(&self, r: &Receipt, month: Month) -> bool {
        self.subscribed
            .get(&month)
            .and_then(|m| m.get(&r.listener))
            .is_some_and(|homes| homes.contains(&r.home_node))
            && self.in_directory(&r.home_node, month)
    }
}
