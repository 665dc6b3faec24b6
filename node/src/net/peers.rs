//! Which connections the node keeps.
//!
//! Gossipsub keeps a long-lived stream open on every connection, and libp2p counts open streams
//! as use, so no connection ever reaches the swarm's idle timeout (rust-libp2p#5190). DHT
//! queries meet most of the network: left alone, every node of a 100-node testnet ends up
//! connected to all 99 others, and each connection costs both ends CPU for as long as it lasts.
//! So the node closes connections itself: once it has more than [`KEEP`], a connection that is
//! no gossip mesh link and has carried no catalog or holders request for [`IDLE`] is closed,
//! least recently used first. Reconciliation does not count as use (it visits every connected
//! peer in turn, so it would keep them all); Kademlia keeps the peers in its routing table and
//! dials again when a query needs them.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use libp2p::PeerId;

/// Connections kept whatever their use: twice gossipsub's `mesh_n_high`, so a mesh that loses
/// peers finds others to graft.
pub(super) const KEEP: usize = 16;
/// How long an unused connection stays open (from its start or its last request).
pub(super) const IDLE: Duration = Duration::from_secs(30);

/// When each connected peer was last of use.
#[derive(Debug, Default)]
pub(super) struct Peers {
    used: HashMap<PeerId, Instant>,
}

impl Peers {
    /// The first connection to `peer` opened: it stays for [`IDLE`] at least.
    pub(super) fn connected(&mut self, peer: PeerId, now: Instant) {
        self.used.insert(peer, now);
    }

    /// A connection to `peer` carried a request: it stays for [`IDLE`] more. Requests that
    /// end after the peer left (a failure reported late) are not remembered.
    pub(super) fn used(&mut self, peer: PeerId, now: Instant) {
        if let Some(at) = self.used.get_mut(&peer) {
            *at = now;
        }
    }

    /// The last connection to `peer` closed.
    pub(super) fn on_disconnected(&mut self, peer: &PeerId) {
        self.used.remove(peer);
    }

    /// The connected peers to disconnect now: beyond [`KEEP`], outside every mesh (`mesh`),
    /// unused for [`IDLE`], least recently used first.
    pub(super) fn to_close(
        &self,
        connected: impl Iterator<Item = PeerId>,
        mesh: &HashSet<PeerId>,
        now: Instant,
    ) -> Vec<PeerId> {
        let connected: Vec<PeerId> = connected.collect();
        let excess = connected.len().saturating_sub(KEEP);
        if excess == 0 {
            return Vec::new();
        }
        let mut idle: Vec<(Instant, PeerId)> = connected
            .into_iter()
            .filter(|p| !mesh.contains(p))
            .filter_map(|p| {
                let used = self.used.get(&p).copied().unwrap_or(now);
                (now.duration_since(used) >= IDLE).then_some((used, p))
            })
            .collect();
        idle.sort();
        idle.into_iter().take(excess).map(|(_, p)| p).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peers(n: usize) -> Vec<PeerId> {
        (0..n).map(|_| PeerId::random()).collect()
    }

    #[test]
    fn keeps_the_mesh_the_recently_used_and_the_first_few() {
        let t0 = Instant::now();
        let all = peers(KEEP + 6);
        let mut p = Peers::default();
        for (i, peer) in all.iter().enumerate() {
            p.connected(*peer, t0 + Duration::from_millis(i as u64));
        }
        let later = t0 + IDLE + Duration::from_secs(1);
        // Two are mesh links, one was used just now.
        let mesh: HashSet<PeerId> = [all[0], all[1]].into();
        p.used(all[2], later);
        let close = p.to_close(all.iter().copied(), &mesh, later);
        // Six over the limit; the oldest idle ones go, never the mesh or the fresh one.
        assert_eq!(close, all[3..9].to_vec());

        // At the limit, nothing is closed.
        assert!(
            p.to_close(all[..KEEP].iter().copied(), &mesh, later)
                .is_empty()
        );
        // Before the idle time, nothing is closed.
        assert!(
            p.to_close(all.iter().copied(), &mesh, t0 + IDLE / 2)
                .is_empty()
        );
    }

    #[test]
    fn a_request_after_the_peer_left_is_not_remembered() {
        let t0 = Instant::now();
        let gone = PeerId::random();
        let mut p = Peers::default();
        p.connected(gone, t0);
        p.on_disconnected(&gone);
        p.used(gone, t0 + IDLE);
        assert!(p.used.is_empty());
    }
}
