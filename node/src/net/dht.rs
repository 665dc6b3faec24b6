//! Kademlia's record store, with separate limits for what this node provides and what other
//! peers announce to it. Kademlia's default store holds 1,024 provider keys, ours and theirs
//! together: a thousand `ADD_PROVIDER` messages from one peer filled it, and then this node
//! could announce nothing. Here our own records (the library and the cache) have their own
//! room ([`MAX_LOCAL`]); others' records are bounded in all ([`MAX_REMOTE`]) and per provider
//! ([`MAX_REMOTE_PER_PEER`]), and when the remote room is full the provider holding the most
//! records loses one, so a flooding peer evicts only itself.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet, hash_map};
use std::time::Instant;

use libp2p::PeerId;
use libp2p::kad::store::{Error, MemoryStore, MemoryStoreConfig, RecordStore, Result};
use libp2p::kad::{ProviderRecord, Record, RecordKey};

/// Most keys this node itself provides (tracks and seek indexes it holds).
pub const MAX_LOCAL: usize = 1_000_000;
/// Most provider records of other peers kept in all.
pub const MAX_REMOTE: usize = 100_000;
/// Most provider records kept for one other provider.
pub const MAX_REMOTE_PER_PEER: usize = 20_000;
/// Most providers kept per key (Kademlia's replication factor).
const MAX_PROVIDERS_PER_KEY: usize = 20;

/// The bounded store.
pub struct Store {
    local: PeerId,
    /// Value records (9ten puts none; bounded by the memory store's defaults).
    values: MemoryStore,
    provided: HashMap<RecordKey, ProviderRecord>,
    remote: HashMap<RecordKey, Vec<ProviderRecord>>,
    by_peer: HashMap<PeerId, HashSet<RecordKey>>,
    remote_count: usize,
}

impl Store {
    /// An empty store for the node `local`.
    pub fn new(local: PeerId) -> Self {
        let values = MemoryStoreConfig {
            max_provided_keys: 0,
            ..MemoryStoreConfig::default()
        };
        Self {
            local,
            values: MemoryStore::with_config(local, values),
            provided: HashMap::new(),
            remote: HashMap::new(),
            by_peer: HashMap::new(),
            remote_count: 0,
        }
    }

    /// Number of other peers' provider records held.
    #[cfg(test)]
    fn remote_count(&self) -> usize {
        self.remote_count
    }

    fn drop_remote(&mut self, key: &RecordKey, peer: &PeerId) -> bool {
        let hash_map::Entry::Occupied(mut e) = self.remote.entry(key.clone()) else {
            return false;
        };
        let Some(i) = e.get().iter().position(|p| &p.provider == peer) else {
            return false;
        };
        e.get_mut().swap_remove(i);
        if e.get().is_empty() {
            e.remove();
        }
        if let hash_map::Entry::Occupied(mut keys) = self.by_peer.entry(*peer) {
            keys.get_mut().remove(key);
            if keys.get().is_empty() {
                keys.remove();
            }
        }
        self.remote_count -= 1;
        true
    }

    /// Makes room for one record of `peer`: drops expired records, then one record of the
    /// provider that holds the most if it holds more than `peer`.
    fn make_room(&mut self, peer: &PeerId) -> bool {
        let now = Instant::now();
        let expired: Vec<(RecordKey, PeerId)> = self
            .remote
            .iter()
            .flat_map(|(k, ps)| ps.iter().map(move |p| (k, p)))
            .filter(|(_, p)| p.is_expired(now))
            .map(|(k, p)| (k.clone(), p.provider))
            .collect();
        for (k, p) in &expired {
            self.drop_remote(k, p);
        }
        if self.remote_count < MAX_REMOTE {
            return true;
        }
        let mine = self.by_peer.get(peer).map_or(0, HashSet::len);
        let Some((biggest, keys)) = self.by_peer.iter().max_by_key(|(_, keys)| keys.len()) else {
            return false;
        };
        if keys.len() <= mine + 1 {
            return false;
        }
        let (biggest, key) = (*biggest, keys.iter().next().cloned());
        key.is_some_and(|k| self.drop_remote(&k, &biggest))
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("provided", &self.provided.len())
            .field("remote", &self.remote_count)
            .finish_non_exhaustive()
    }
}

impl RecordStore for Store {
    type RecordsIter<'a> = <MemoryStore as RecordStore>::RecordsIter<'a>;
    type ProvidedIter<'a> = std::iter::Map<
        hash_map::Values<'a, RecordKey, ProviderRecord>,
        fn(&'a ProviderRecord) -> Cow<'a, ProviderRecord>,
    >;

    fn get(&self, k: &RecordKey) -> Option<Cow<'_, Record>> {
        self.values.get(k)
    }

    fn put(&mut self, r: Record) -> Result<()> {
        self.values.put(r)
    }

    fn remove(&mut self, k: &RecordKey) {
        self.values.remove(k)
    }

    fn records(&self) -> Self::RecordsIter<'_> {
        self.values.records()
    }

    fn add_provider(&mut self, record: ProviderRecord) -> Result<()> {
        if record.provider == self.local {
            if self.provided.len() >= MAX_LOCAL && !self.provided.contains_key(&record.key) {
                return Err(Error::MaxProvidedKeys);
            }
            self.provided.insert(record.key.clone(), record);
            return Ok(());
        }
        let peer = record.provider;
        if let Some(existing) = self
            .remote
            .get_mut(&record.key)
            .and_then(|ps| ps.iter_mut().find(|p| p.provider == peer))
        {
            *existing = record;
            return Ok(());
        }
        let held = self.by_peer.get(&peer).map_or(0, HashSet::len);
        let full_key = self
            .remote
            .get(&record.key)
            .is_some_and(|ps| ps.len() >= MAX_PROVIDERS_PER_KEY);
        if held >= MAX_REMOTE_PER_PEER || full_key {
            return Err(Error::MaxProvidedKeys);
        }
        if self.remote_count >= MAX_REMOTE && !self.make_room(&peer) {
            return Err(Error::MaxProvidedKeys);
        }
        self.by_peer
            .entry(peer)
            .or_default()
            .insert(record.key.clone());
        self.remote
            .entry(record.key.clone())
            .or_default()
            .push(record);
        self.remote_count += 1;
        Ok(())
    }

    fn providers(&self, key: &RecordKey) -> Vec<ProviderRecord> {
        let mut out: Vec<ProviderRecord> = self.remote.get(key).cloned().unwrap_or_default();
        if let Some(mine) = self.provided.get(key) {
            out.push(mine.clone());
        }
        out
    }

    fn provided(&self) -> Self::ProvidedIter<'_> {
        self.provided.values().map(Cow::Borrowed)
    }

    fn remove_provider(&mut self, k: &RecordKey, p: &PeerId) {
        if *p == self.local {
            self.provided.remove(k);
        } else {
            self.drop_remote(k, p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(n: u32, provider: PeerId) -> ProviderRecord {
        ProviderRecord::new(RecordKey::new(&n.to_be_bytes()), provider, Vec::new())
    }

    #[test]
    fn a_flood_of_remote_records_leaves_room_for_our_own() {
        let (me, flooder) = (PeerId::random(), PeerId::random());
        let mut store = Store::new(me);
        let refused = (0..MAX_REMOTE_PER_PEER as u32 + 500)
            .filter(|n| store.add_provider(record(*n, flooder)).is_err())
            .count();
        assert_eq!(refused, 500);
        for n in 0..10_000 {
            store.add_provider(record(n, me)).unwrap();
        }
        assert_eq!(store.provided().count(), 10_000);
        assert_eq!(
            store.providers(&RecordKey::new(&5u32.to_be_bytes())).len(),
            2
        );
        store.remove_provider(&RecordKey::new(&5u32.to_be_bytes()), &flooder);
        assert_eq!(store.remote_count(), MAX_REMOTE_PER_PEER - 1);
    }

    #[test]
    fn when_full_the_biggest_provider_loses_records_not_a_small_one() {
        let me = PeerId::random();
        let mut store = Store::new(me);
        let big: Vec<PeerId> = (0..MAX_REMOTE / MAX_REMOTE_PER_PEER)
            .map(|_| PeerId::random())
            .collect();
        let mut n = 0u32;
        for p in &big {
            for _ in 0..MAX_REMOTE_PER_PEER {
                store.add_provider(record(n, *p)).unwrap();
                n += 1;
            }
        }
        assert_eq!(store.remote_count(), MAX_REMOTE);
        let small = PeerId::random();
        for i in 0..100 {
            store.add_provider(record(1_000_000 + i, small)).unwrap();
        }
        assert_eq!(store.remote_count(), MAX_REMOTE);
        assert_eq!(store.by_peer[&small].len(), 100);
    }
}
