//! Who reviews a home node's month (`review.md`, "Who reviews H's month"): the cluster peer,
//! the external node and the arbiters, each as a list by rank, from the month's directory.
//! Rank k of a list is its k-th replacement; rank 0 is the first choice.

use crate::bundle::SignedBundle;
use crate::directory::Directory;
use crate::key::ContentHash;
use crate::key::PublicKey;
use crate::month::Month;
use crate::review::{Attestation, Role, SignedAttestation, SignedDispute};

/// Domain tag of the review point.
const REVIEW_TAG: &[u8; 15] = b"9ten/review/v1\0";

/// Why a month cannot be reviewed (it waits, and says this).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Unreviewable {
    /// The home node is not in the month's directory.
    #[error("the home node is not in the directory for the month")]
    NotInDirectory,
    /// No other node shares the home node's cluster.
    #[error("no other node is in the home node's cluster")]
    NoClusterPeer,
    /// No node of another cluster exists.
    #[error("no node of another cluster is in the directory")]
    NoOtherCluster,
}

/// The point reviewers of `home`'s `month` are chosen near:
/// `BLAKE3("9ten/review/v1" || 0x00 || home || year u16 || month u8)`.
pub fn review_point(home: &PublicKey, month: Month) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(REVIEW_TAG);
    h.update(&home.0);
    h.update(&month.year().to_be_bytes());
    h.update(&[month.month()]);
    *h.finalize().as_bytes()
}

/// `node XOR x`, compared as a 32-byte big-endian number.
fn distance(node: &PublicKey, x: &[u8; 32]) -> [u8; 32] {
    std::array::from_fn(|i| node.0[i] ^ x[i])
}

/// The reviewers of one home node's month, by rank.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reviewers {
    /// The home node.
    pub home: PublicKey,
    /// The home node's cluster.
    pub cluster: u16,
    /// Nodes of the home node's cluster other than it, nearest first.
    pub cluster_peers: Vec<PublicKey>,
    /// Nodes of every other cluster, nearest first.
    pub externals: Vec<PublicKey>,
    /// Every node but the home node, with its cluster, nearest first.
    clusters: Vec<(PublicKey, u16)>,
}

impl Reviewers {
    /// Chooses from `directory` (the one for the month being reviewed).
    pub fn choose(directory: &Directory, home: &PublicKey) -> Result<Self, Unreviewable> {
        let cluster = directory
            .get(home)
            .ok_or(Unreviewable::NotInDirectory)?
            .cluster;
        let x = review_point(home, directory.month());
        let mut clusters: Vec<(PublicKey, u16)> = directory
            .records()
            .map(|r| (r.body.node, r.body.cluster))
            .filter(|(n, _)| n != home)
            .collect();
        clusters.sort_by_key(|(n, _)| distance(n, &x));
        let of = |same: bool| -> Vec<PublicKey> {
            clusters
                .iter()
                .filter(|(_, c)| (*c == cluster) == same)
                .map(|(n, _)| *n)
                .collect()
        };
        let (cluster_peers, externals) = (of(true), of(false));
        if cluster_peers.is_empty() {
            return Err(Unreviewable::NoClusterPeer);
        }
        if externals.is_empty() {
            return Err(Unreviewable::NoOtherCluster);
        }
        Ok(Self {
            home: *home,
            cluster,
            cluster_peers,
            externals,
            clusters,
        })
    }

    /// The cluster peer of rank `rank`, if there are that many.
    pub fn cluster_peer(&self, rank: u8) -> Option<PublicKey> {
        self.cluster_peers.get(usize::from(rank)).copied()
    }

    /// The external node of rank `rank`, if there are that many.
    pub fn external(&self, rank: u8) -> Option<PublicKey> {
        self.externals.get(usize::from(rank)).copied()
    }

    /// The node the directory names for `role` at `rank`: the home node itself (rank 0 only)
    /// for [`Role::Home`].
    pub fn named(&self, role: Role, rank: u8) -> Option<PublicKey> {
        match role {
            Role::Home => (rank == 0).then_some(self.home),
            Role::Cluster => self.cluster_peer(rank),
            Role::External => self.external(rank),
        }
    }

    /// Whether `attestation` is a valid signer's attestation of `bundle` for its role and
    /// rank (its signature checked by the caller).
    pub fn counts(&self, attestation: &Attestation, bundle: &SignedBundle) -> bool {
        attestation.bundle == bundle.id()
            && attestation.tally == bundle.body.tally
            && self.named(attestation.role, attestation.rank) == Some(attestation.reviewer)
    }

    /// The arbiter list of the round of `bundle` (an id), with the external node that served
    /// in it found in the round's records: the one whose attestation of that bundle is among
    /// `attestations`, else the one of the externals whose dispute of it is among
    /// `disputes`, else the first choice.
    pub fn arbiters_of_round(
        &self,
        bundle: &ContentHash,
        attestations: &[SignedAttestation],
        disputes: &[SignedDispute],
    ) -> Vec<PublicKey> {
        let served = attestations
            .iter()
            .filter(|a| a.body.bundle == *bundle && a.body.role == Role::External)
            .map(|a| a.body.reviewer)
            .chain(
                disputes
                    .iter()
                    .filter(|d| d.body.bundle == *bundle)
                    .map(|d| d.body.by)
                    .filter(|by| self.externals.contains(by)),
            )
            .next()
            .or_else(|| self.external(0));
        served.map(|e| self.arbiters(&e)).unwrap_or_default()
    }

    /// The arbiter list of a disputed round in which `external` served as the external node
    /// (the first choice where none did): nodes of a third cluster by distance, then the
    /// others of `external`'s cluster by distance. The cluster peer is of the home node's
    /// cluster, so it is never in the list.
    pub fn arbiters(&self, external: &PublicKey) -> Vec<PublicKey> {
        let external_cluster = self
            .clusters
            .iter()
            .find(|(n, _)| n == external)
            .map(|(_, c)| *c);
        let others = self
            .clusters
            .iter()
            .filter(|(n, c)| *c != self.cluster && n != external);
        // `clusters` is sorted by distance, and partition keeps the order.
        let (third, same): (Vec<&(PublicKey, u16)>, Vec<_>) =
            others.partition(|(_, c)| Some(*c) != external_cluster);
        third.into_iter().chain(same).map(|(n, _)| *n).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Keypair;
    use crate::node_record::{NodeName, NodeRecord};
    use crate::record::Record;

    fn directory(clusters: &[u16]) -> (Directory, Vec<PublicKey>) {
        let month: Month = "2026-10".parse().unwrap();
        let mut keys = Vec::new();
        let records: Vec<_> = clusters
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let key = Keypair::from_seed([i as u8 + 1; 32]);
                keys.push(key.public());
                Record::sign(
                    NodeRecord {
                        node: key.public(),
                        seq: 0,
                        cluster: *c,
                        joined: month,
                        name: NodeName::new(format!("n{i}")).unwrap(),
                    },
                    &key,
                )
            })
            .collect();
        (Directory::for_month(month, &records), keys)
    }

    #[test]
    fn choices_follow_the_distance_and_the_clusters() {
        let (dir, keys) = directory(&[0, 0, 0, 1, 1, 2, 2]);
        let home = keys[0];
        let r = Reviewers::choose(&dir, &home).unwrap();
        let x = review_point(&home, dir.month());
        // Cluster peers: nodes 1 and 2, nearest first.
        let mut peers = vec![keys[1], keys[2]];
        peers.sort_by_key(|k| distance(k, &x));
        assert_eq!(r.cluster_peers, peers);
        let mut externals = keys[3..].to_vec();
        externals.sort_by_key(|k| distance(k, &x));
        assert_eq!(r.externals, externals);
        // Arbiters: the third cluster first, then the external's own cluster.
        let e = r.external(0).unwrap();
        let arbiters = r.arbiters(&e);
        assert_eq!(arbiters.len(), 3);
        assert!(!arbiters.contains(&e));
        let cluster_of = |k: &PublicKey| dir.get(k).unwrap().cluster;
        let e_cluster = cluster_of(&e);
        let split = arbiters
            .iter()
            .position(|k| cluster_of(k) == e_cluster)
            .unwrap();
        assert!(arbiters[..split].iter().all(|k| cluster_of(k) != e_cluster));
        assert!(arbiters[split..].iter().all(|k| cluster_of(k) == e_cluster));
        assert!(arbiters[..split].is_sorted_by_key(|k| distance(k, &x)));
    }

    #[test]
    fn a_month_without_a_peer_or_another_cluster_waits() {
        let (dir, keys) = directory(&[0, 1]);
        assert_eq!(
            Reviewers::choose(&dir, &keys[0]),
            Err(Unreviewable::NoClusterPeer)
        );
        let (dir, keys) = directory(&[0, 0]);
        assert_eq!(
            Reviewers::choose(&dir, &keys[0]),
            Err(Unreviewable::NoOtherCluster)
        );
        assert_eq!(
            Reviewers::choose(&dir, &PublicKey([9; 32])),
            Err(Unreviewable::NotInDirectory)
        );
    }
}
