//! A month's receipts as reconciliation sees them: negentropy items (start time, record id)
//! in a sorted, shared snapshot plus the few that arrived since. Reconciliation works on a
//! snapshot in a blocking task, never on the event loop; the task merges the recent items in
//! (one linear pass) and hands the merged snapshot back for the next session, so no session
//! re-sorts the month.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use negentropy::{Bound, Error, Id, Item, NegentropyStorageBase};
use nineten_protocol::key::PublicKey;
use nineten_protocol::receipt::SignedReceipt;
use nineten_protocol::wire::reconciliation_item;

/// The negentropy item of a receipt.
pub(super) fn item_of(r: &SignedReceipt) -> Item {
    let (timestamp, id) = reconciliation_item(r);
    Item::with_timestamp_and_id(timestamp, Id::from_byte_array(id))
}

/// A sorted, deduplicated, immutable set of items: negentropy's storage.
#[derive(Clone, Debug, Default)]
pub(super) struct Snapshot(Arc<Vec<Item>>);

impl Snapshot {
    fn contains(&self, item: &Item) -> bool {
        self.0.binary_search(item).is_ok()
    }

    /// This snapshot with `more` (sorted) merged in.
    fn merged(&self, more: &[Item]) -> Self {
        let mut out = Vec::with_capacity(self.0.len() + more.len());
        let (mut a, mut b) = (self.0.iter().peekable(), more.iter().peekable());
        loop {
            match (a.peek(), b.peek()) {
                (Some(x), Some(y)) if x < y => out.push(*a.next().expect("peeked")),
                (Some(x), Some(y)) if x > y => out.push(*b.next().expect("peeked")),
                (Some(_), Some(_)) => {
                    out.push(*a.next().expect("peeked"));
                    b.next();
                }
                (Some(_), None) => out.push(*a.next().expect("peeked")),
                (None, Some(_)) => out.push(*b.next().expect("peeked")),
                (None, None) => break,
            }
        }
        Self(Arc::new(out))
    }
}

impl NegentropyStorageBase for Snapshot {
    fn size(&self) -> Result<usize, Error> {
        Ok(self.0.len())
    }

    fn get_item(&self, i: usize) -> Result<Option<Item>, Error> {
        Ok(self.0.get(i).copied())
    }

    fn iterate(
        &self,
        begin: usize,
        end: usize,
        cb: &mut dyn FnMut(Item, usize) -> Result<bool, Error>,
    ) -> Result<(), Error> {
        let items = self.0.get(begin..end).ok_or(Error::BadRange)?;
        for (i, item) in items.iter().enumerate() {
            if !cb(*item, begin + i)? {
                break;
            }
        }
        Ok(())
    }

    fn find_lower_bound(&self, first: usize, last: usize, value: &Bound) -> usize {
        let last = last.min(self.0.len());
        let first = first.min(last);
        first + self.0[first..last].partition_point(|item| *item < value.item)
    }
}

/// What a blocking task needs to reconcile: the snapshot and the items added since.
#[derive(Debug)]
pub(super) struct View {
    base: Snapshot,
    recent: Vec<Item>,
    generation: u64,
}

impl View {
    /// The full snapshot, and, when it had to merge, the merged snapshot to hand back
    /// ([`MonthSet::install`]).
    pub(super) fn into_storage(self) -> (Snapshot, Option<(u64, Snapshot)>) {
        if self.recent.is_empty() {
            (self.base, None)
        } else {
            let merged = self.base.merged(&self.recent);
            (merged.clone(), Some((self.generation, merged)))
        }
    }
}

/// One month's items, and how many receipts each listener has among them.
#[derive(Debug, Default)]
pub(super) struct MonthSet {
    base: Snapshot,
    generation: u64,
    recent: BTreeSet<Item>,
    per_listener: HashMap<PublicKey, u32>,
}

impl MonthSet {
    /// The set of these receipts.
    pub(super) fn of(receipts: &[SignedReceipt]) -> Self {
        let mut items: Vec<Item> = receipts.iter().map(item_of).collect();
        items.sort_unstable();
        items.dedup();
        let mut per_listener: HashMap<PublicKey, u32> = HashMap::new();
        for r in receipts {
            *per_listener.entry(r.receipt.listener).or_default() += 1;
        }
        Self {
            base: Snapshot(Arc::new(items)),
            per_listener,
            ..Self::default()
        }
    }

    /// Whether the item is in the set.
    pub(super) fn contains(&self, item: &Item) -> bool {
        self.recent.contains(item) || self.base.contains(item)
    }

    /// Adds a stored receipt; returns whether it was new.
    pub(super) fn insert(&mut self, r: &SignedReceipt) -> bool {
        let item = item_of(r);
        if self.contains(&item) {
            return false;
        }
        self.recent.insert(item);
        true
    }

    /// Receipts held of `listener` (stored or on their way to the store: counted when
    /// admitted).
    pub(super) fn of_listener(&self, listener: &PublicKey) -> u32 {
        self.per_listener.get(listener).copied().unwrap_or(0)
    }

    /// Counts an admitted receipt of `listener`.
    pub(super) fn count(&mut self, listener: PublicKey) {
        *self.per_listener.entry(listener).or_default() += 1;
    }

    /// Takes back the count of a receipt that could not be stored.
    pub(super) fn uncount(&mut self, listener: &PublicKey) {
        if let Some(n) = self.per_listener.get_mut(listener) {
            *n = n.saturating_sub(1);
        }
    }

    /// Number of items.
    pub(super) fn len(&self) -> usize {
        self.base.0.len() + self.recent.len()
    }

    /// What a blocking task needs to work on the set as it is now.
    pub(super) fn view(&self) -> View {
        View {
            base: self.base.clone(),
            recent: self.recent.iter().copied().collect(),
            generation: self.generation,
        }
    }

    /// Takes a merged snapshot made from [`MonthSet::view`] at `generation`, if nothing
    /// replaced the snapshot since; items that arrived meanwhile stay recent.
    pub(super) fn install(&mut self, generation: u64, merged: Snapshot) {
        if generation != self.generation {
            return;
        }
        self.recent.retain(|item| !merged.contains(item));
        self.base = merged;
        self.generation += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(t: u64, b: u8) -> Item {
        Item::with_timestamp_and_id(t, Id::from_byte_array([b; 32]))
    }

    #[test]
    fn merging_keeps_order_and_drops_duplicates() {
        let base = Snapshot(Arc::new(vec![item(1, 1), item(3, 3), item(5, 5)]));
        let merged = base.merged(&[item(0, 0), item(3, 3), item(4, 4), item(9, 9)]);
        let want = vec![
            item(0, 0),
            item(1, 1),
            item(3, 3),
            item(4, 4),
            item(5, 5),
            item(9, 9),
        ];
        assert_eq!(*merged.0, want);
    }

    #[test]
    fn lower_bounds_stay_in_range_whatever_is_asked() {
        let s = Snapshot(Arc::new(vec![item(1, 1), item(3, 3), item(5, 5)]));
        let b = Bound::with_timestamp(4);
        assert_eq!(s.find_lower_bound(0, 3, &b), 2);
        // Reversed or out-of-range indices from a confused caller do not panic.
        assert_eq!(s.find_lower_bound(3, 1, &b), 1);
        assert_eq!(
            s.find_lower_bound(0, 99, &Bound::with_timestamp(u64::MAX)),
            3
        );
        assert!(s.iterate(2, 1, &mut |_, _| Ok(true)).is_err());
    }

    #[test]
    fn an_old_merge_never_replaces_a_newer_snapshot() {
        let mut set = MonthSet::default();
        set.recent.insert(item(1, 1));
        let old = set.view();
        set.recent.insert(item(2, 2));
        let newer = set.view();
        let (_, Some((g, merged))) = newer.into_storage() else {
            panic!("recent items need a merge");
        };
        set.install(g, merged);
        let (_, Some((g, merged))) = old.into_storage() else {
            panic!("recent items need a merge");
        };
        set.install(g, merged);
        assert_eq!(set.len(), 2);
        assert!(set.contains(&item(2, 2)) && set.contains(&item(1, 1)));
        assert!(set.recent.is_empty());
    }
}
