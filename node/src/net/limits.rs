//! Per-peer budgets and conduct: token buckets bound what each peer may make this node do per
//! second, and faults (lies, malformed or unasked-for data, floods) add up to a ban, so a peer
//! that misbehaves pays for it (disconnected, refused for [`BAN`]) instead of its victims.

use std::collections::HashMap;
use std::hash::Hash;
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
    /// Relayed a gossip message over its budget. An honest relay passes on what the whole
    /// network says, and as a month begins every listener's next receipt is of a new key, so
    /// these are allowed for, [`FORGIVEN_EXCESS_PER_SEC`] a second with bursts of
    /// [`EXCESS_BURST`]; each one beyond that allowance costs as much as a [`Fault::Flood`].
    Excess,
}

/// Gossip messages over budget a second that a peer is allowed: as a month begins, a million
/// listeners of whom a tenth are playing start new keys at about 400 a second, all of which
/// an honest relay may pass on.
pub const FORGIVEN_EXCESS_PER_SEC: f64 = 500.0;
/// Gossip messages over budget a peer may send at once beyond [`FORGIVEN_EXCESS_PER_SEC`]
/// (five seconds of it). A peer that sends them faster has its allowance spent in seconds,
/// then [`FAULT_LIMIT`] more get it banned: one sending 2,000 a second, about 2 s.
pub const EXCESS_BURST: f64 = 5.0 * FORGIVEN_EXCESS_PER_SEC;

impl Fault {
    fn points(self) -> f64 {
        match self {
            Self::Lie => 25.0,
            Self::Flood | Self::Excess => 1.0,
        }
    }
}

/// A token bucket: `rate` tokens a second, at most `burst` saved up.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// One budget (say, receipt gossip) kept per peer, or per any other key (a listener).
#[derive(Debug)]
pub struct Budget<K = PeerId> {
    rate: f64,
    burst: f64,
    start: f64,
    buckets: HashMap<K, Bucket>,
}

impl<K: Hash + Eq> Budget<K> {
    /// A budget of `rate` units a second with bursts of up to `burst`; a key not seen yet
    /// starts with a full bucket.
    pub fn new(rate: f64, burst: f64) -> Self {
        Self::starting_at(rate, burst, burst)
    }

    /// The same, but a key not seen yet starts with `start` units: a newcomer earns its
    /// burst by time instead of getting it at once.
    pub fn starting_at(rate: f64, burst: f64, start: f64) -> Self {
        Self {
            rate,
            burst,
            start,
            buckets: HashMap::new(),
        }
    }

    /// Takes `cost` units from `key`'s bucket; false (nothing taken) when it has too few.
    pub fn take(&mut self, key: K, cost: f64, now: Instant) -> bool {
        let bucket = self.buckets.entry(key).or_insert(Bucket {
            tokens: self.start,
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

    /// Forgets a key (its bucket starts anew if it comes back).
    pub fn forget(&mut self, key: &K) {
        self.buckets.remove(key);
    }

    /// Forgets the keys unused long enough to have refilled from empty: what they come back
    /// to loses them at most what the start gives less than a full bucket.
    pub fn prune(&mut self, now: Instant) {
        let refill = self.burst / self.rate;
        self.buckets
            .retain(|_, b| now.saturating_duration_since(b.last).as_secs_f64() < refill);
    }

    /// Keys with a bucket.
    #[cfg(test)]
    fn keys(&self) -> usize {
        self.buckets.len()
    }
}

/// Every peer's fault points and the bans in force.
#[derive(Debug)]
pub struct Conduct {
    points: HashMap<PeerId, (f64, Instant)>,
    banned: HashMap<PeerId, Instant>,
    /// What each peer may relay over its gossip budgets before that costs it points.
    excess: Budget,
}

impl Default for Conduct {
    fn default() -> Self {
        Self {
            points: HashMap::new(),
            banned: HashMap::new(),
            excess: Budget::new(FORGIVEN_EXCESS_PER_SEC, EXCESS_BURST),
        }
    }
}

impl Conduct {
    /// Records a fault; true when it takes the peer to the limit (ban it now).
    pub fn fault(&mut self, peer: PeerId, fault: Fault, now: Instant) -> bool {
        if self.banned.contains_key(&peer)
            || (fault == Fault::Excess && self.excess.take(peer, 1.0, now))
        {
            return false;
        }
        let (points, last) = self.points.entry(peer).or_insert((0.0, now));
        let forgiven = now.saturating_duration_since(*last).as_secs_f64() * FORGIVE_PER_SEC;
        *points = (*points - forgiven).max(0.0) + fault.points();
        *last = now;
        if *points >= f64::from(FAULT_LIMIT) {
            self.points.remove(&peer);
            self.excess.forget(&peer);
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
        self.excess.prune(now);
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
    fn a_newcomer_earns_its_burst_and_idle_keys_are_pruned() {
        let t0 = Instant::now();
        let mut b: Budget<u32> = Budget::starting_at(1.0, 4.0, 1.0);
        assert!(b.take(7, 1.0, t0));
        assert!(!b.take(7, 1.0, t0));
        let t1 = t0 + Duration::from_secs(10);
        assert!((0..4).all(|_| b.take(7, 1.0, t1)));
        assert!(!b.take(7, 1.0, t1));
        assert!(b.take(8, 1.0, t1));
        b.prune(t1 + Duration::from_secs(3));
        assert_eq!(b.keys(), 2);
        b.prune(t1 + Duration::from_secs(4));
        assert_eq!(b.keys(), 0);
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
        // Gossip over budget: 490 a second is allowed for 100 s, 2,000 a second is a ban
        // within 2 s.
        let (relay, flooder) = (PeerId::random(), PeerId::random());
        for i in 0..49_000u64 {
            let at = t0 + Duration::from_micros(100_000_000 * i / 49_000);
            assert!(!c.fault(relay, Fault::Excess, at));
        }
        let banned_after = (0..4_000u64)
            .find(|i| c.fault(flooder, Fault::Excess, t0 + Duration::from_micros(500 * i)));
        let banned_after = Duration::from_micros(500 * banned_after.expect("not banned"));
        assert!(banned_after < Duration::from_secs(2), "{banned_after:?}");
        assert!(c.expire(t0 + BAN - Duration::from_secs(1)).is_empty());
        let mut back = c.expire(t0 + BAN + Duration::from_secs(10));
        back.sort();
        let mut expected = vec![liar, flooder];
        expected.sort();
        assert_eq!(back, expected);
        assert!(!c.banned.contains_key(&liar));
    }
}
