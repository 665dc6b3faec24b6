//! [`Store`]: one sled database holding everything a node keeps.
//!
//! Records are stored in their binary signed form. Receipts sit under (listener, seq, id), so
//! a listener's receipts are neighbours; since a listener key signs only one month's receipts,
//! a small index of (month, listener) finds a month's receipts. Other records sit under their
//! id, with index entries that point back to it. A record's id is BLAKE3 of its signed message
//! alone (`records.md`), so copies of one record that differ only in their signature share
//! every key: the store holds one copy per record, the last one written. A record and its
//! index entries go in one atomic batch, and every write flushes before it returns:
//! acknowledged means durable. Reads decode what they find and report a value that does not
//! decode as [`Error::Corrupt`], naming the key.
//!
//! The store does not judge records: it keeps equivocating receipts side by side (their
//! messages differ, so their ids differ) because settlement must see them. Since it does not
//! check signatures either, and a later copy replaces an earlier one, callers store only
//! copies whose signature verifies (the node checks every record before storing it).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use nineten_protocol::FieldError;
use nineten_protocol::identity::Secret;
use nineten_protocol::key::{ContentHash, PublicKey};
use nineten_protocol::manifest::SignedManifest;
use nineten_protocol::month::Month;
use nineten_protocol::node_record::SignedNodeRecord;
use nineten_protocol::receipt::SignedReceipt;
use nineten_protocol::subscription::SignedSubscription;
use nineten_protocol::tally::Tally;
use tracing::debug;

use crate::{Error, keys};

/// A handle to the store; cheap to clone, shared by all of a node's tasks.
#[derive(Clone, Debug)]
pub struct Store {
    pub(crate) db: sled::Db,
}

/// A month's tally as stored: the canonical encoding reviewers sign.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredTally {
    /// The canonical encoding (`docs/settlement.md`).
    pub canonical: Vec<u8>,
}

impl StoredTally {
    /// BLAKE3 of the canonical encoding: the digest reviewers sign.
    pub fn digest(&self) -> ContentHash {
        ContentHash::of(&self.canonical)
    }
}

impl Store {
    /// Opens the store in directory `dir`, creating it (mode 0700: it holds secrets).
    pub fn open(dir: &Path) -> Result<Self, Error> {
        let io = |source| Error::Io {
            path: dir.to_path_buf(),
            source,
        };
        fs::create_dir_all(dir).map_err(io)?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io)?;
        let db = open_db(dir).map_err(Error::db("opening the database"))?;
        let store = Self { db };
        store.check_schema()?;
        store.build_receipt_id_index()?;
        debug!(dir = %dir.display(), "store open");
        Ok(store)
    }

    fn check_schema(&self) -> Result<(), Error> {
        let key = keys::schema();
        match self.db.get(&key).map_err(Error::db("reading the schema"))? {
            Some(v) if v.as_ref() == [keys::SCHEMA] => Ok(()),
            Some(v) => Err(Error::Schema {
                found: format!("{:?}", v.as_ref()),
                supported: keys::SCHEMA,
            }),
            None => {
                self.db
                    .insert(key, &[keys::SCHEMA])
                    .map_err(Error::db("writing the schema"))?;
                self.flush()
            }
        }
    }

    /// Brings a store written before record ids left out the signature up to date: receipts
    /// and manifests move under their new ids, and the receipt id index is built.
    fn build_receipt_id_index(&self) -> Result<(), Error> {
        let done = keys::receipt_id_index_built();
        if self
            .db
            .contains_key(&done)
            .map_err(Error::db("reading the index state"))?
        {
            return Ok(());
        }
        let mut batch = sled::Batch::default();
        for entry in self.db.scan_prefix(keys::receipts()) {
            let (key, value) = entry.map_err(Error::db("scanning receipts"))?;
            let r = SignedReceipt::from_bytes(&value).map_err(|e| corrupt(&key, e))?;
            // Stores written when a receipt's id covered its signature keep it under that
            // id: move it under the id of its signed message.
            let proper = receipt_key(&r);
            if key.as_ref() != proper.as_slice() {
                batch.remove(key);
                batch.insert(proper, value);
            }
            batch.insert(keys::receipt_by_id(&r.id()), &id_index_value(&r, 0)[..]);
        }
        // Manifests too were keyed by an id that covered the signature.
        for entry in self.db.scan_prefix(keys::manifests()) {
            let (key, value) = entry.map_err(Error::db("scanning manifests"))?;
            // One that no longer reads (stricter checks) stays where it is, untouched.
            let Ok(m) = SignedManifest::from_bytes(&value) else {
                continue;
            };
            let proper = keys::manifest(&m.id());
            if key.as_ref() != proper.as_slice() {
                batch.remove(key);
                batch.insert(proper, value);
            }
        }
        batch.insert(done, &[]);
        self.commit(batch, "building the receipt id index")
    }

    pub(crate) fn flush(&self) -> Result<(), Error> {
        self.db.flush().map_err(Error::db("flushing to disk"))?;
        Ok(())
    }

    pub(crate) fn commit(&self, batch: sled::Batch, op: &'static str) -> Result<(), Error> {
        self.db.apply_batch(batch).map_err(Error::db(op))?;
        self.flush()
    }

    /// Stores receipts durably, in one atomic batch, noting `received_ms` as the time each
    /// arrived (a receipt stored again keeps the time it first arrived: the close counts what
    /// arrived before it). Storing a receipt again keeps one copy: the last one written.
    pub fn put_receipts(&self, receipts: &[SignedReceipt], received_ms: u64) -> Result<(), Error> {
        let mut batch = sled::Batch::default();
        for r in receipts {
            batch.insert(receipt_key(r), &r.to_bytes()[..]);
            let index = keys::receipt_by_id(&r.id());
            if !self
                .db
                .contains_key(&index)
                .map_err(Error::db("reading the receipt id index"))?
            {
                batch.insert(index, &id_index_value(r, received_ms)[..]);
            }
            batch.insert(
                keys::listener_in_month(month_of(r)?, &r.receipt.listener),
                &[],
            );
        }
        self.commit(batch, "storing receipts")
    }

    /// Whether this receipt (a copy of its signed message, whatever its signature) is stored.
    pub fn has_receipt(&self, receipt: &SignedReceipt) -> Result<bool, Error> {
        self.db
            .contains_key(receipt_key(receipt))
            .map_err(Error::db("looking up a receipt"))
    }

    /// The receipt stored under `key` (listener, seq and id, as in [`keys::receipt`]).
    pub fn receipt_by_key(
        &self,
        listener: &PublicKey,
        seq: u64,
        id: &ContentHash,
    ) -> Result<Option<SignedReceipt>, Error> {
        let key = keys::receipt(listener, seq, id);
        let value = self.db.get(&key).map_err(Error::db("reading a receipt"))?;
        value
            .map(|v| SignedReceipt::from_bytes(&v).map_err(|e| corrupt(&key, e)))
            .transpose()
    }

    /// The stored receipts with these ids, in the order asked; ids not stored are skipped.
    pub fn receipts_by_ids(&self, ids: &[ContentHash]) -> Result<Vec<SignedReceipt>, Error> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let index = keys::receipt_by_id(id);
            let Some(at) = self
                .db
                .get(&index)
                .map_err(Error::db("reading the receipt id index"))?
            else {
                continue;
            };
            let (listener, seq, _) = read_id_index(&index, &at)?;
            out.extend(self.receipt_by_key(&listener, seq, id)?);
        }
        Ok(out)
    }

    /// When a stored receipt first arrived (Unix ms; 0 for receipts stored before arrival
    /// times were kept); `None` when it is not stored.
    pub fn received_ms(&self, id: &ContentHash) -> Result<Option<u64>, Error> {
        let index = keys::receipt_by_id(id);
        let Some(at) = self
            .db
            .get(&index)
            .map_err(Error::db("reading the receipt id index"))?
        else {
            return Ok(None);
        };
        read_id_index(&index, &at).map(|(_, _, received)| Some(received))
    }

    /// A home node's month as this store holds it: the receipts that started in `month`,
    /// name `home` and arrived before `received_before` (Unix ms), ordered by listener then
    /// seq.
    pub fn receipts_of_home(
        &self,
        month: Month,
        home: &PublicKey,
        received_before: u64,
    ) -> Result<Vec<SignedReceipt>, Error> {
        let mut out = self.receipts_of_month(month)?;
        let mut keep = Vec::with_capacity(out.len());
        for r in &out {
            let counts = r.receipt.home_node == *home
                && self
                    .received_ms(&r.id())?
                    .is_some_and(|t| t < received_before);
            keep.push(counts);
        }
        let mut keep = keep.into_iter();
        out.retain(|_| keep.next().unwrap_or(false));
        Ok(out)
    }

    /// Up to `limit` of a listener's receipts after `after` (a seq and id; from the first when
    /// `None`), ordered by seq then id: one page, read without touching the rest.
    pub fn receipts_of_listener_after(
        &self,
        listener: &PublicKey,
        after: Option<(u64, ContentHash)>,
        limit: usize,
    ) -> Result<Vec<SignedReceipt>, Error> {
        let prefix = keys::receipts_of_listener(listener);
        let start = match after {
            None => prefix.clone(),
            Some((seq, id)) => {
                let mut k = keys::receipt(listener, seq, &id);
                k.push(0);
                k
            }
        };
        self.db
            .range(start..)
            .take_while(|e| e.as_ref().map_or(true, |(k, _)| k.starts_with(&prefix)))
            .take(limit)
            .map(|entry| {
                let (key, value) = entry.map_err(Error::db("scanning receipts"))?;
                SignedReceipt::from_bytes(&value).map_err(|e| corrupt(&key, e))
            })
            .collect()
    }

    /// Every receipt that started in `month`, ordered by listener then seq.
    pub fn receipts_of_month(&self, month: Month) -> Result<Vec<SignedReceipt>, Error> {
        let mut out = Vec::new();
        for entry in self.db.scan_prefix(keys::listeners_in_month(month)) {
            let (key, _) = entry.map_err(Error::db("scanning a month's listeners"))?;
            let listener = key
                .len()
                .checked_sub(32)
                .and_then(|start| key[start..].try_into().ok())
                .map(PublicKey)
                .ok_or_else(|| corrupt(&key, FieldError::new("key", "too short")))?;
            out.extend(self.receipts_of_listener_in_month(month, &listener)?);
        }
        Ok(out)
    }

    /// One listener's receipts that started in `month`, ordered by seq.
    pub fn receipts_of_listener_in_month(
        &self,
        month: Month,
        listener: &PublicKey,
    ) -> Result<Vec<SignedReceipt>, Error> {
        let mut receipts = self.receipts_of_listener(listener)?;
        receipts.retain(|r| month.contains(r.receipt.started_at_ms));
        Ok(receipts)
    }

    /// All of a listener's receipts, ordered by seq.
    pub fn receipts_of_listener(&self, listener: &PublicKey) -> Result<Vec<SignedReceipt>, Error> {
        self.db
            .scan_prefix(keys::receipts_of_listener(listener))
            .map(|entry| {
                let (key, value) = entry.map_err(Error::db("scanning receipts"))?;
                SignedReceipt::from_bytes(&value).map_err(|e| corrupt(&key, e))
            })
            .collect()
    }

    /// Number of distinct receipts stored.
    pub fn receipt_count(&self) -> usize {
        self.db.scan_prefix(keys::receipts()).count()
    }

    /// Stores subscriptions durably, in one atomic batch; one copy per subscription, the last
    /// one written.
    pub fn put_subscriptions(&self, subscriptions: &[SignedSubscription]) -> Result<(), Error> {
        let mut batch = sled::Batch::default();
        for s in subscriptions {
            add_subscription(&mut batch, s);
        }
        self.commit(batch, "storing subscriptions")
    }

    /// Every subscription of `month`, ordered by listener.
    pub fn subscriptions_of_month(&self, month: Month) -> Result<Vec<SignedSubscription>, Error> {
        self.indexed_subscriptions(keys::subscriptions_of_month(month))
    }

    /// The subscriptions whose month index entries start with `prefix`.
    fn indexed_subscriptions(&self, prefix: Vec<u8>) -> Result<Vec<SignedSubscription>, Error> {
        let mut out = Vec::new();
        for entry in self.db.scan_prefix(prefix) {
            let (key, _) = entry.map_err(Error::db("scanning subscriptions"))?;
            let id = keys::id_at_end(&key)
                .ok_or_else(|| corrupt(&key, FieldError::new("key", "too short")))?;
            let found = self.subscription(&id)?;
            out.push(found.ok_or_else(|| {
                corrupt(&key, FieldError::new("index", "points to no subscription"))
            })?);
        }
        Ok(out)
    }

    /// Stores a release manifest durably (replacing another copy of it); returns its
    /// release id.
    pub fn put_manifest(&self, manifest: &SignedManifest) -> Result<ContentHash, Error> {
        let id = manifest.id();
        self.db
            .insert(keys::manifest(&id), manifest.to_bytes())
            .map_err(Error::db("storing a manifest"))?;
        self.flush()?;
        Ok(id)
    }

    /// The manifest of a release.
    pub fn manifest(&self, id: &ContentHash) -> Result<Option<SignedManifest>, Error> {
        self.get_record(
            keys::manifest(id),
            "reading a manifest",
            SignedManifest::from_bytes,
        )
    }

    /// Every stored manifest, by release id.
    pub fn manifests(&self) -> Result<Vec<SignedManifest>, Error> {
        self.scan_records(
            keys::manifests(),
            "scanning manifests",
            SignedManifest::from_bytes,
        )
    }

    /// The record stored under `key`, decoded.
    pub(crate) fn get_record<T>(
        &self,
        key: Vec<u8>,
        op: &'static str,
        decode: impl Fn(&[u8]) -> Result<T, FieldError>,
    ) -> Result<Option<T>, Error> {
        let value = self.db.get(&key).map_err(Error::db(op))?;
        value
            .map(|v| decode(&v).map_err(|e| corrupt(&key, e)))
            .transpose()
    }

    /// Every record stored under `prefix`, decoded, in key order.
    pub(crate) fn scan_records<T>(
        &self,
        prefix: Vec<u8>,
        op: &'static str,
        decode: impl Fn(&[u8]) -> Result<T, FieldError>,
    ) -> Result<Vec<T>, Error> {
        self.db
            .scan_prefix(prefix)
            .map(|entry| {
                let (key, value) = entry.map_err(Error::db(op))?;
                decode(&value).map_err(|e| corrupt(&key, e))
            })
            .collect()
    }

    /// Up to `limit` release ids in byte order, those after `after` (exclusive).
    pub fn manifest_ids(
        &self,
        after: Option<&ContentHash>,
        limit: usize,
    ) -> Result<Vec<ContentHash>, Error> {
        self.ids_after(keys::manifests(), after, limit, "manifests")
    }

    /// Up to `limit` ids of records under `prefix` (which ends each key with the id), in byte
    /// order, those after `after` (exclusive).
    pub(crate) fn ids_after(
        &self,
        prefix: Vec<u8>,
        after: Option<&ContentHash>,
        limit: usize,
        what: &'static str,
    ) -> Result<Vec<ContentHash>, Error> {
        let start = match after {
            Some(id) => {
                let mut k = prefix.clone();
                k.extend_from_slice(&id.0);
                k.push(0);
                k
            }
            None => prefix.clone(),
        };
        self.db
            .range(start..)
            .keys()
            .take_while(|k| k.as_ref().map_or(true, |k| k.starts_with(&prefix)))
            .take(limit)
            .map(|k| {
                let k = k.map_err(Error::db("scanning ids"))?;
                keys::id_at_end(&k)
                    .ok_or_else(|| corrupt(&k, FieldError::new(what, "key too short")))
            })
            .collect()
    }

    /// Up to `limit` subscription ids in byte order, those after `after` (exclusive).
    pub fn subscription_ids(
        &self,
        after: Option<&ContentHash>,
        limit: usize,
    ) -> Result<Vec<ContentHash>, Error> {
        self.ids_after(keys::subscriptions(), after, limit, "subscriptions")
    }

    /// A subscription by id.
    pub fn subscription(&self, id: &ContentHash) -> Result<Option<SignedSubscription>, Error> {
        self.get_record(
            keys::subscription(id),
            "reading a subscription",
            SignedSubscription::from_bytes,
        )
    }

    /// The subscriptions of one listener key for `month` (at most one counts: `records.md`).
    pub fn subscriptions_of_listener(
        &self,
        month: Month,
        listener: &PublicKey,
    ) -> Result<Vec<SignedSubscription>, Error> {
        self.indexed_subscriptions(keys::subscriptions_of_listener(month, listener))
    }

    /// Stores a node record durably (one copy per record, the last one written).
    pub fn put_node_record(&self, record: &SignedNodeRecord) -> Result<(), Error> {
        self.db
            .insert(keys::node_record(&record.id()), record.to_bytes())
            .map_err(Error::db("storing a node record"))?;
        self.flush()
    }

    /// A node record by id.
    pub fn node_record(&self, id: &ContentHash) -> Result<Option<SignedNodeRecord>, Error> {
        self.get_record(
            keys::node_record(id),
            "reading a node record",
            SignedNodeRecord::from_bytes,
        )
    }

    /// Every node record held, by id.
    pub fn node_records(&self) -> Result<Vec<SignedNodeRecord>, Error> {
        self.scan_records(
            keys::node_records(),
            "scanning node records",
            SignedNodeRecord::from_bytes,
        )
    }

    /// Up to `limit` node record ids in byte order, those after `after` (exclusive).
    pub fn node_record_ids(
        &self,
        after: Option<&ContentHash>,
        limit: usize,
    ) -> Result<Vec<ContentHash>, Error> {
        self.ids_after(keys::node_records(), after, limit, "node records")
    }

    /// Keeps a subscription request for the operator to decide, durably.
    pub fn put_pending(&self, id: &ContentHash, request: &[u8]) -> Result<(), Error> {
        self.db
            .insert(keys::pending(id), request)
            .map_err(Error::db("storing a subscription request"))?;
        self.flush()
    }

    /// How many subscription requests are pending, counting up to `limit` at most.
    pub fn pending_count(&self, limit: usize) -> usize {
        self.db
            .scan_prefix(keys::pendings())
            .keys()
            .take(limit)
            .count()
    }

    /// Every pending subscription request, by id.
    pub fn pending(&self) -> Result<Vec<(ContentHash, Vec<u8>)>, Error> {
        self.db
            .scan_prefix(keys::pendings())
            .map(|entry| {
                let (key, value) = entry.map_err(Error::db("scanning subscription requests"))?;
                let id = keys::id_at_end(&key)
                    .ok_or_else(|| corrupt(&key, FieldError::new("key", "too short")))?;
                Ok((id, value.to_vec()))
            })
            .collect()
    }

    /// Ends a pending request: with the subscription the operator signed, stored in the same
    /// atomic batch, or refused (`None`). False when no such request is pending.
    pub fn settle_pending(
        &self,
        id: &ContentHash,
        signed: Option<&SignedSubscription>,
    ) -> Result<bool, Error> {
        let key = keys::pending(id);
        if !self
            .db
            .contains_key(&key)
            .map_err(Error::db("reading a subscription request"))?
        {
            return Ok(false);
        }
        let mut batch = sled::Batch::default();
        batch.remove(key);
        if let Some(s) = signed {
            add_subscription(&mut batch, s);
        }
        self.commit(batch, "settling a subscription request")?;
        Ok(true)
    }

    /// Stores a month's tally (its canonical encoding), replacing an earlier one.
    pub fn put_tally(&self, tally: &Tally) -> Result<(), Error> {
        self.db
            .insert(keys::tally(tally.month), tally.canonical_bytes())
            .map_err(Error::db("storing a tally"))?;
        self.flush()
    }

    /// A month's stored tally.
    pub fn tally(&self, month: Month) -> Result<Option<StoredTally>, Error> {
        let value = self
            .db
            .get(keys::tally(month))
            .map_err(Error::db("reading a tally"))?;
        Ok(value.map(|v| StoredTally {
            canonical: v.to_vec(),
        }))
    }

    /// Stores a named secret (e.g. `node`), replacing nothing: an existing name is an error.
    pub fn put_secret(&self, name: &str, secret: &Secret) -> Result<(), Error> {
        let stored = self
            .db
            .compare_and_swap(
                keys::secret(name),
                None::<&[u8]>,
                Some(secret.to_key_file().as_bytes()),
            )
            .map_err(Error::db("storing a secret"))?;
        if stored.is_err() {
            return Err(Error::Invalid(format!(
                "a secret named {name:?} already exists"
            )));
        }
        self.flush()
    }

    /// A named secret.
    pub fn secret(&self, name: &str) -> Result<Option<Secret>, Error> {
        let key = keys::secret(name);
        let value = self.db.get(&key).map_err(Error::db("reading a secret"))?;
        value
            .map(|v| {
                let text = String::from_utf8_lossy(&v);
                Secret::from_key_file(&text)
                    .map_err(|e| corrupt(&key, FieldError::new("secret", e)))
            })
            .transpose()
    }
}

/// A blob kept in the cache: fetched from peers, evicted least recently used first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheEntry {
    /// The blob (a track's stream).
    pub blob: ContentHash,
    /// Its size in bytes.
    pub size: u64,
    /// When it was last played, Unix milliseconds.
    pub used_at_ms: u64,
}

impl Store {
    /// Records (or refreshes) a cache entry.
    pub fn put_cached(&self, entry: &CacheEntry) -> Result<(), Error> {
        let mut value = [0u8; 16];
        value[..8].copy_from_slice(&entry.size.to_be_bytes());
        value[8..].copy_from_slice(&entry.used_at_ms.to_be_bytes());
        self.db
            .insert(keys::cached(&entry.blob), &value[..])
            .map_err(Error::db("storing a cache entry"))?;
        self.flush()
    }

    /// Forgets a cache entry.
    pub fn remove_cached(&self, blob: &ContentHash) -> Result<(), Error> {
        self.db
            .remove(keys::cached(blob))
            .map_err(Error::db("removing a cache entry"))?;
        self.flush()
    }

    /// Every cache entry, least recently used first.
    pub fn cached(&self) -> Result<Vec<CacheEntry>, Error> {
        let mut out = self
            .db
            .scan_prefix(keys::cache())
            .map(|entry| {
                let (key, value) = entry.map_err(Error::db("scanning the cache"))?;
                let bad = || corrupt(&key, FieldError::new("cache", "not a cache entry"));
                let blob = keys::id_at_end(&key).ok_or_else(bad)?;
                let value: [u8; 16] = value.as_ref().try_into().map_err(|_| bad())?;
                Ok(CacheEntry {
                    blob,
                    size: u64::from_be_bytes(value[..8].try_into().map_err(|_| bad())?),
                    used_at_ms: u64::from_be_bytes(value[8..].try_into().map_err(|_| bad())?),
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        out.sort_by_key(|e| (e.used_at_ms, e.blob));
        Ok(out)
    }

    /// Takes the next seq for a listener key (0 first), durably: a seq is never handed out
    /// twice, even across a crash, and never one at or below a seq the store holds for that
    /// key. So a data folder restored from an old backup, whose counter is behind the
    /// receipts that come back to it (found here at start, or reconciled in later), still
    /// never signs a used seq: that would be equivocation, which voids the listener's
    /// receipts.
    pub fn next_seq(&self, listener: &PublicKey) -> Result<u64, Error> {
        let floor = self.last_seq(listener)?.map_or(0, |s| s.saturating_add(1));
        let key = keys::seq(listener);
        let next = self
            .db
            .update_and_fetch(&key, |old| {
                let n = old
                    .and_then(|v| <[u8; 8]>::try_from(v).ok())
                    .map_or(0, u64::from_be_bytes)
                    .max(floor);
                Some(n.saturating_add(1).to_be_bytes().to_vec())
            })
            .map_err(Error::db("taking a seq"))?
            .ok_or_else(|| corrupt(&key, FieldError::new("seq", "missing after update")))?;
        self.flush()?;
        let next: [u8; 8] = next
            .as_ref()
            .try_into()
            .map_err(|_| corrupt(&key, FieldError::new("seq", "not 8 bytes")))?;
        Ok(u64::from_be_bytes(next) - 1)
    }

    /// The highest seq of the receipts stored for a listener key (receipts sit in seq order,
    /// so it is the last one's).
    pub fn last_seq(&self, listener: &PublicKey) -> Result<Option<u64>, Error> {
        let last = self
            .db
            .scan_prefix(keys::receipts_of_listener(listener))
            .next_back()
            .transpose()
            .map_err(Error::db("reading a listener's last receipt"))?;
        last.map(|(key, value)| {
            SignedReceipt::from_bytes(&value)
                .map(|r| r.receipt.seq)
                .map_err(|e| corrupt(&key, e))
        })
        .transpose()
    }
}

fn receipt_key(r: &SignedReceipt) -> Vec<u8> {
    keys::receipt(&r.receipt.listener, r.receipt.seq, &r.id())
}

/// The id index's value: the receipt's listener and seq (the rest of its key), and when it
/// first arrived.
fn id_index_value(r: &SignedReceipt, received_ms: u64) -> [u8; 48] {
    let mut v = [0u8; 48];
    v[..32].copy_from_slice(&r.receipt.listener.0);
    v[32..40].copy_from_slice(&r.receipt.seq.to_be_bytes());
    v[40..].copy_from_slice(&received_ms.to_be_bytes());
    v
}

/// Reads an id index value: listener, seq and arrival time (0 in the 40-byte values written
/// before arrival times were kept).
fn read_id_index(key: &[u8], value: &[u8]) -> Result<(PublicKey, u64, u64), Error> {
    if value.len() != 40 && value.len() != 48 {
        return Err(corrupt(key, FieldError::new("index", "not 40 or 48 bytes")));
    }
    let listener = PublicKey(value[..32].try_into().expect("32 bytes"));
    let seq = u64::from_be_bytes(value[32..40].try_into().expect("8 bytes"));
    let received = value
        .get(40..48)
        .map_or(0, |t| u64::from_be_bytes(t.try_into().expect("8 bytes")));
    Ok((listener, seq, received))
}

fn month_of(r: &SignedReceipt) -> Result<Month, Error> {
    Month::containing(r.receipt.started_at_ms).ok_or_else(|| {
        Error::Invalid(format!(
            "receipt {} of {} starts after 9999-12",
            r.receipt.seq, r.receipt.listener
        ))
    })
}

fn add_subscription(batch: &mut sled::Batch, s: &SignedSubscription) {
    let id = s.id();
    let sub = &s.subscription;
    batch.insert(keys::subscription(&id), s.to_bytes());
    batch.insert(
        keys::subscription_by_month(sub.month, &sub.listener, &id),
        &[],
    );
}

pub(crate) fn corrupt(key: &[u8], source: FieldError) -> Error {
    Error::Corrupt {
        key: key.iter().map(|b| format!("{b:02x}")).collect(),
        source,
    }
}

/// Opens the sled database in `dir`. sled releases its file lock when its flusher thread
/// ends, a moment after the last handle is dropped, so a store closed and reopened at once
/// (a node restarting in the same process) may find it still held: wait up to 2 s for it.
fn open_db(dir: &Path) -> sled::Result<sled::Db> {
    let mut waits = 40;
    loop {
        match sled::Config::new().path(dir).open() {
            Err(sled::Error::Io(e))
                if waits > 0 && e.to_string().contains("could not acquire lock") =>
            {
                waits -= 1;
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            result => return result,
        }
    }
}
