//! The month's review on disk: the records of `review.md` (daily reports, bundles,
//! attestations, disputes, verdicts) by id and by what they are about, and the sets their
//! roots name (a bundle's inputs, a dispute's evidence, a verdict's excluded and added
//! receipts), kept in pages so a peer can be served one page at a time.

use std::collections::BTreeMap;

use nineten_protocol::FieldError;
use nineten_protocol::daily::Day;
use nineten_protocol::key::{ContentHash, PublicKey};
use nineten_protocol::money::MicroUsdp;
use nineten_protocol::review_record::{ReviewRecord, Subject};

use crate::store::corrupt;
use crate::{Error, Store, keys};

/// Items in one page of a record's sets.
pub const INPUT_PAGE: usize = 1024;

/// One part of a record's sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Part {
    /// The ids its `receipts` root names (32 bytes each).
    Receipts,
    /// The ids its `excluded` root names.
    Excluded,
    /// The ids its `subscriptions` root names.
    Subscriptions,
    /// The carry-in: listener key and units, 40 bytes each.
    Carry,
}

impl Part {
    /// Its byte on the wire and in keys.
    pub fn byte(self) -> u8 {
        match self {
            Self::Receipts => 0,
            Self::Excluded => 1,
            Self::Subscriptions => 2,
            Self::Carry => 3,
        }
    }

    /// Reads its byte.
    pub fn from_byte(byte: u8) -> Option<Self> {
        PARTS.into_iter().find(|p| p.byte() == byte)
    }

    /// Bytes of one item.
    pub fn item_len(self) -> usize {
        match self {
            Self::Carry => 40,
            _ => 32,
        }
    }
}

/// What a review record's roots name, in ascending order: for a bundle its inputs; for a
/// dispute the receipts in question (in `receipts`); for a verdict the receipts added (in
/// `receipts`) and excluded (in `excluded`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sets {
    /// Receipt ids used.
    pub receipts: Vec<ContentHash>,
    /// Receipt ids excluded by verdicts.
    pub excluded: Vec<ContentHash>,
    /// Subscription ids.
    pub subscriptions: Vec<ContentHash>,
    /// The carry-in.
    pub carry: BTreeMap<PublicKey, MicroUsdp>,
}

impl Sets {
    /// One part's items, as bytes.
    fn items(&self, part: Part) -> Vec<Vec<u8>> {
        let ids = |v: &[ContentHash]| v.iter().map(|i| i.0.to_vec()).collect();
        match part {
            Part::Receipts => ids(&self.receipts),
            Part::Excluded => ids(&self.excluded),
            Part::Subscriptions => ids(&self.subscriptions),
            Part::Carry => self
                .carry
                .iter()
                .map(|(k, u)| [&k.0[..], &u.0.to_be_bytes()].concat())
                .collect(),
        }
    }
}

/// Every part, in order.
pub const PARTS: [Part; 4] = [
    Part::Receipts,
    Part::Excluded,
    Part::Subscriptions,
    Part::Carry,
];

impl Store {
    /// Stores a review record durably (one copy per record, the last one written) with its
    /// subject index entry.
    pub fn put_review(&self, record: &ReviewRecord) -> Result<(), Error> {
        let id = record.id();
        let mut batch = sled::Batch::default();
        batch.insert(keys::review(&id), record.to_bytes());
        let mut index = keys::review_subject(&record.subject());
        index.extend_from_slice(&id.0);
        batch.insert(index, &[]);
        self.commit(batch, "storing a review record")
    }

    /// A review record by id.
    pub fn review(&self, id: &ContentHash) -> Result<Option<ReviewRecord>, Error> {
        self.get_record(
            keys::review(id),
            "reading a review record",
            ReviewRecord::from_bytes,
        )
    }

    /// Up to `limit` review record ids in byte order, those after `after` (exclusive).
    pub fn review_ids(
        &self,
        after: Option<&ContentHash>,
        limit: usize,
    ) -> Result<Vec<ContentHash>, Error> {
        self.ids_after(keys::reviews(), after, limit, "review records")
    }

    /// The review records about `subject`, by id.
    pub fn reviews_of(&self, subject: &Subject) -> Result<Vec<ReviewRecord>, Error> {
        let mut out = Vec::new();
        for entry in self.db.scan_prefix(keys::review_subject(subject)) {
            let (key, _) = entry.map_err(Error::db("scanning review records"))?;
            let id = keys::id_at_end(&key)
                .ok_or_else(|| corrupt(&key, FieldError::new("key", "too short")))?;
            out.push(self.review(&id)?.ok_or_else(|| {
                corrupt(&key, FieldError::new("index", "points to no review record"))
            })?);
        }
        Ok(out)
    }

    /// Stores a home node's detailed day, sealed by the caller (the store does not read it).
    pub fn put_day_detail(&self, day: Day, sealed: &[u8]) -> Result<(), Error> {
        let key = keys::day_detail(day.month().year(), day.month().month(), day.day());
        self.db
            .insert(key, sealed)
            .map_err(Error::db("storing a detailed day"))?;
        self.flush()
    }

    /// A detailed day, sealed, if stored.
    pub fn day_detail(&self, day: Day) -> Result<Option<Vec<u8>>, Error> {
        let key = keys::day_detail(day.month().year(), day.month().month(), day.day());
        let value = self
            .db
            .get(key)
            .map_err(Error::db("reading a detailed day"))?;
        Ok(value.map(|v| v.to_vec()))
    }

    /// Stores what a record's roots name, in pages of [`INPUT_PAGE`], in one atomic batch.
    pub fn put_sets(&self, record: &ContentHash, inputs: &Sets) -> Result<(), Error> {
        let mut batch = sled::Batch::default();
        for part in PARTS {
            let items = inputs.items(part);
            // An empty part still has its page 0, so "held" and "empty" differ.
            let pages = items.len().div_ceil(INPUT_PAGE).max(1);
            for page in 0..pages {
                let chunk = items
                    .iter()
                    .skip(page * INPUT_PAGE)
                    .take(INPUT_PAGE)
                    .flatten()
                    .copied()
                    .collect::<Vec<u8>>();
                let page = u32::try_from(page).expect("fewer than 2^32 pages");
                batch.insert(keys::record_set(record, part.byte(), page), chunk);
            }
        }
        self.commit(batch, "storing a record's sets")
    }

    /// One page of a part of a record's sets, as stored: `None` when the page (or the
    /// record's sets) is not held.
    pub fn set_page(
        &self,
        record: &ContentHash,
        part: Part,
        page: u32,
    ) -> Result<Option<Vec<u8>>, Error> {
        let value = self
            .db
            .get(keys::record_set(record, part.byte(), page))
            .map_err(Error::db("reading a record's sets"))?;
        Ok(value.map(|v| v.to_vec()))
    }

    /// Which of `ids` the part `part` of a record's sets names; `None` when the part is not
    /// held. Pages hold ids in ascending order, so one pass over the pages' first items finds
    /// the page that could hold each id, and each page wanted is read once: the work is one
    /// key scan of the part and at most one page read per id, however large the set.
    pub fn set_names(
        &self,
        record: &ContentHash,
        part: Part,
        ids: &[ContentHash],
    ) -> Result<Option<Vec<bool>>, Error> {
        let len = part.item_len();
        let mut firsts: Vec<[u8; 32]> = Vec::new();
        for entry in self.db.scan_prefix(keys::record_sets(record, part.byte())) {
            let (key, page) = entry.map_err(Error::db("reading a record's sets"))?;
            if page.len() % len != 0 {
                return Err(corrupt(&key, FieldError::new("page", "cut inside an item")));
            }
            // An empty page (an empty set) has no first item: nothing sorts before it.
            firsts.push(
                page.get(..32)
                    .map_or([0; 32], |f| f.try_into().expect("32 bytes")),
            );
        }
        if firsts.is_empty() {
            return Ok(None);
        }
        // The page of each id: the last whose first item is <= it.
        let mut wanted: Vec<(usize, usize)> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| (firsts.partition_point(|f| f <= &id.0).saturating_sub(1), i))
            .collect();
        wanted.sort_unstable();
        let mut out = vec![false; ids.len()];
        for run in wanted.chunk_by(|a, b| a.0 == b.0) {
            let n = u32::try_from(run[0].0).expect("fewer than 2^32 pages");
            let key = keys::record_set(record, part.byte(), n);
            let page = self
                .db
                .get(&key)
                .map_err(Error::db("reading a record's sets"))?
                .ok_or_else(|| corrupt(&key, FieldError::new("page", "missing")))?;
            let count = page.len() / len;
            let item = |k: usize| &page[k * len..k * len + 32];
            for &(_, i) in run {
                let id = &ids[i].0[..];
                let (mut lo, mut hi) = (0, count);
                while lo < hi {
                    let mid = (lo + hi) / 2;
                    if item(mid) < id {
                        lo = mid + 1;
                    } else {
                        hi = mid;
                    }
                }
                out[i] = lo < count && item(lo) == id;
            }
        }
        Ok(Some(out))
    }

    /// Everything a record's roots name, when held.
    pub fn sets(&self, record: &ContentHash) -> Result<Option<Sets>, Error> {
        let mut inputs = Sets::default();
        for part in PARTS {
            let prefix = keys::record_sets(record, part.byte());
            let mut any = false;
            for entry in self.db.scan_prefix(&prefix) {
                let (key, page) = entry.map_err(Error::db("reading a record's sets"))?;
                any = true;
                if page.len() % part.item_len() != 0 {
                    return Err(corrupt(&key, FieldError::new("page", "cut inside an item")));
                }
                for item in page.chunks_exact(part.item_len()) {
                    let id = ContentHash(item[..32].try_into().expect("32 bytes"));
                    match part {
                        Part::Receipts => inputs.receipts.push(id),
                        Part::Excluded => inputs.excluded.push(id),
                        Part::Subscriptions => inputs.subscriptions.push(id),
                        Part::Carry => {
                            let units = u64::from_be_bytes(item[32..].try_into().expect("8"));
                            inputs.carry.insert(PublicKey(id.0), MicroUsdp(units));
                        }
                    }
                }
            }
            if !any {
                return Ok(None);
            }
        }
        Ok(Some(inputs))
    }
}
