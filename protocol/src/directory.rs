//! The directory for a month (`review.md`, "Node record"): per node key, its highest-seq
//! valid record among those that joined by that month, leaving out every node that signed two
//! different records with one seq; and its root, which a bundle names.

use std::collections::{BTreeMap, HashSet};

use crate::key::{ContentHash, PublicKey};
use crate::month::Month;
use crate::node_record::{NodeRecord, SignedNodeRecord};
use crate::record::root;
use crate::signature::verify_all;

/// The nodes that may home listeners or review in one month.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Directory {
    month: Month,
    nodes: BTreeMap<PublicKey, SignedNodeRecord>,
}

impl Directory {
    /// The directory for `month` from every node record known, checked here: a record whose
    /// signature fails is ignored; copies of one record (same body) are one.
    pub fn for_month(month: Month, records: &[SignedNodeRecord]) -> Self {
        let valid = verify_all(records);
        let mut seen: HashSet<ContentHash> = HashSet::new();
        // Per node, per seq, the first valid record met; a second, different one is equivocation.
        let mut by_seq: BTreeMap<(PublicKey, u64), &SignedNodeRecord> = BTreeMap::new();
        let mut equivocated: HashSet<PublicKey> = HashSet::new();
        for (r, ok) in records.iter().zip(valid) {
            if !ok || !seen.insert(r.id()) {
                continue;
            }
            if by_seq.insert((r.body.node, r.body.seq), r).is_some() {
                equivocated.insert(r.body.node);
            }
        }
        let mut nodes: BTreeMap<PublicKey, SignedNodeRecord> = BTreeMap::new();
        for ((node, _), r) in by_seq {
            if equivocated.contains(&node) || r.body.joined > month {
                continue;
            }
            // Ascending seq per node: the last one kept is the highest.
            nodes.insert(node, r.clone());
        }
        Self { month, nodes }
    }

    /// The month this directory is for.
    pub fn month(&self) -> Month {
        self.month
    }

    /// A node's record, if the node is in the directory.
    pub fn get(&self, node: &PublicKey) -> Option<&NodeRecord> {
        self.nodes.get(node).map(|r| &r.body)
    }

    /// The records, in key order.
    pub fn records(&self) -> impl Iterator<Item = &SignedNodeRecord> {
        self.nodes.values()
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether no node is in it.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The directory root: the root over the ids of its records.
    pub fn root(&self) -> ContentHash {
        root(self.nodes.values().map(SignedNodeRecord::id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Keypair;
    use crate::node_record::NodeName;
    use crate::record::Record;

    fn record(seed: u8, seq: u64, cluster: u16, joined: &str) -> SignedNodeRecord {
        let key = Keypair::from_seed([seed; 32]);
        Record::sign(
            NodeRecord {
                node: key.public(),
                seq,
                cluster,
                joined: joined.parse().unwrap(),
                name: NodeName::new(format!("node {seed}")).unwrap(),
            },
            &key,
        )
    }

    #[test]
    fn highest_seq_that_joined_in_time_counts() {
        let m: Month = "2026-10".parse().unwrap();
        let a1 = record(1, 1, 0, "2026-09");
        let a2 = record(1, 2, 5, "2026-10");
        let a3 = record(1, 3, 6, "2026-11"); // not yet joined in October
        let b = record(2, 1, 0, "2026-12");
        let d = Directory::for_month(m, &[a3, a2.clone(), a1, b]);
        assert_eq!(d.len(), 1);
        assert_eq!(d.get(&a2.body.node).unwrap().cluster, 5);
        assert_eq!(d.root(), root([a2.id()]));
    }

    #[test]
    fn equivocators_and_forgeries_are_left_out_and_copies_are_one() {
        let m: Month = "2026-10".parse().unwrap();
        let a = record(1, 1, 0, "2026-09");
        let a_other = record(1, 1, 1, "2026-09");
        let b = record(2, 1, 0, "2026-09");
        let mut forged = record(3, 1, 0, "2026-09");
        forged.sig.0[0] ^= 1;
        let mut b_copy = b.clone();
        b_copy.sig = Keypair::from_seed([2; 32]).sign(b.message().as_slice());
        let d = Directory::for_month(m, &[a, a_other, b.clone(), b_copy, forged]);
        let nodes: Vec<PublicKey> = d.records().map(|r| r.body.node).collect();
        assert_eq!(nodes, vec![b.body.node]);
    }
}
