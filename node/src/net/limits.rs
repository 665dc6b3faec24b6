//! Per-peer budgets and conduct: token buckets bound what each peer may make this node do per
//! second, and faults (lies, malformed or unasked-for data, floods) add up to a ban, so a peer
//! that misbehaves pays for it (disconnected, refused for [`BAN`]) instead of its victims.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use libp2p::PeerId;

/// How long a peer whose faults reached [`FAULT_LIMIT`] stays refused.
pub const BAN: Duration = Duration::from_secs(600);
/// Fault points that get a peer banned. A malformed or lying message costs
/// [`Fault::Lie`], a request over budget [`Fault::Flood`].
pub const FAULT_LIMIT: u32 = 100;
/// Fault points forgiven per second, so an honest peer's rare mistake fades.
const FORGIVE_PER_SEC: f64 = 1.0;

/// What a peer did wrong, and what it costs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Sent data that does not parse, does not verify or was not asked for.
    Lie,
    /// Sent more than its budget allows.
    Flood,
}

impl Fault {
    fn points(self) -> f64 {
        match self {
            Self::Lie => 25.0,
            Self::Flood => 1.0,
        }
    }
}

/// A token bucket: `rate` tokens a second, at most `burst` saved up.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// One budget (say, receipt gossip) kept per peer.
#[derive(Debug)]
pub struct Budget {
    rate: f64,
    burst: f64,
    peers: HashMap<PeerId, Bucket>,
}

impl Budget {
    /// A budget of `rate` units a second with bursts of up to `burst`.
    pub fn new(rate: f64, burst: f64) -> Self {
        Self {
            rate,
            burst,
            peers: HashMap::new(),
        }
    }

    /// Takes `cost` units from `peer`'s bucket; false (nothing taken) when it has too few.
    pub fn take(&mut self, peer: PeerId, cost: f64, now: Instant) -> bool {
        let bucket = self.peers.entry(peer).or_insert(Bucket {
            tokens: self.burst,
            last: now,
        });
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.burst);
        bucket.last = now;
        if bucket.tokens >= cost {
            bucket.tokens -= cost;
            true
        } else {
            false
        }
    }

    /// Forgets a peer that left (its bucket starts full if it comes back).
    pub fn forget(&mut self, peer: &PeerId) {
        self.peers.remove(peer);
    }
}

/// Every peer's fault points and the bans in force.
#[derive(Debug, Default)]
pub struct Conduct {
    points: HashMap<PeerId, (f64, Instant)>,
    banned: HashMap<PeerId, Instant>,
}

impl Conduct {
    /// Records a fault; true when it takes the peer to the limit (ban it now).
    pub fn fault(&mut self, peer: PeerId, fault: Fault, now: Instant) -> bool {
        if self.banned.contains_key(&peer) {
            return false;
        }
        let (points, last) = self.points.entry(peer).or_insert((0.0, now));
        let forgiven = now.saturating_duration_since(*last).as_secs_f64() * FORGIVE_PER_SEC;
        *points = (*points - forgiven).max(0.0) + fault.points();
        *last = now;
        if *points >= f64::from(FAULT_LIMIT) {
            self.points.remove(&peer);
            self.banned.insert(peer, now + BAN);
            true
        } else {
            false
        }
    }

    /// Bans a peer now, whatever its points (gossipsub graylisted it).
    pub fn ban(&mut self, peer: PeerId, now: Instant) -> bool {
        self.points.remove(&peer);
        self.banned.insert(peer, now + BAN).is_none()
    }

    /// Ends the bans that ran out; returns the peers to let back in.
    pub fn expire(&mut self, now: Instant) -> Vec<PeerId> {
        let done: Vec<PeerId> = self
            .banned
            .iter()
            .filter(|(_, until)| **until <= now)
            .map(|(p, _)| *p)
            .collect();
        for p in &done {
            self.banned.remove(p);
        }
        self.points
            .retain(|_, (points, last)| *points - now.duration_since(*last).as_secs_f64() > 0.0);
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_refills_at_its_rate_up_to_its_burst() {
        let peer = PeerId::random();
        let t0 = Instant::now();
        let mut b = Budget::new(10.0, 20.0);
        assert!((0..20).all(|_| b.take(peer, 1.0, t0)));
        assert!(!b.take(peer, 1.0, t0));
        let t1 = t0 + Duration::from_millis(500);
        assert!((0..5).all(|_| b.take(peer, 1.0, t1)));
        assert!(!b.take(peer, 1.0, t1));
        let t2 = t1 + Duration::from_secs(100);
        assert!((0..20).all(|_| b.take(peer, 1.0, t2)));
        assert!(!b.take(peer, 1.0, t2));
    }

    #[test]
    fn lies_get_a_peer_banned_and_bans_expire() {
        let (liar, honest) = (PeerId::random(), PeerId::random());
        let t0 = Instant::now();
        let mut c = Conduct::default();
        assert!(!c.fault(liar, Fault::Lie, t0));
        assert!(!c.fault(liar, Fault::Lie, t0));
        assert!(!c.fault(liar, Fault::Lie, t0));
        assert!(c.fault(liar, Fault::Lie, t0));
        assert!(c.banned.contains_key(&liar));
        // One flood fault a second is forgiven as fast as it comes.
        for s in 0..1000 {
            assert!(!c.fault(honest, Fault::Flood, t0 + Duration::from_secs(s)));
        }
        assert!(c.expire(t0 + BAN - Duration::from_secs(1)).is_empty());
        assert_eq!(c.expire(t0 + BAN), vec![liar]);
        assert!(!c.banned.contains_key(&liar));
    }
}
