//! Getting what a review record's roots name from the nodes that hold it: the sets, page by
//! page over `/9ten/month-inputs/1.0.0`, checked against the record's roots before they are
//! kept; then the receipts and subscriptions they name that this node lacks, each checked
//! (its id one asked for, its signature) before it is stored. A source that lies or does not
//! answer is passed over for the next.

use std::collections::BTreeSet;

use nineten_protocol::bundle::{SignedBundle, carry_digest};
use nineten_protocol::key::{ContentHash, PublicKey};
use nineten_protocol::money::MicroUsdp;
use nineten_protocol::receipt::SignedReceipt;
use nineten_protocol::record::root;
use nineten_protocol::signature::verify_all;
use nineten_protocol::subscription::SignedSubscription;
use nineten_storage::Store;
use nineten_storage::review::{INPUT_PAGE, PARTS, Part, Sets};
use tracing::debug;

use crate::Error;
use crate::clock::Clock;
use crate::net::{self, inputs};

/// Most pages of one part read from a source: 16 M items, more than any month holds.
const MAX_PAGES: u32 = 16 * 1024;

/// What a record's roots say its sets must be.
#[derive(Clone, Copy, Debug, Default)]
pub struct Roots {
    /// Root of the receipts part.
    pub receipts: Option<ContentHash>,
    /// Root of the excluded part.
    pub excluded: Option<ContentHash>,
    /// Root of the subscriptions part.
    pub subscriptions: Option<ContentHash>,
    /// Carry digest of the carry part.
    pub carry: Option<ContentHash>,
}

impl Roots {
    /// A bundle's four roots.
    pub fn of_bundle(b: &SignedBundle) -> Self {
        Self {
            receipts: Some(b.body.receipts),
            excluded: Some(b.body.excluded),
            subscriptions: Some(b.body.subscriptions),
            carry: Some(b.body.carry),
        }
    }

    /// Whether `sets` are what these roots name (a part without a root must be empty).
    pub fn hold(&self, sets: &Sets) -> bool {
        let ids = |want: Option<ContentHash>, have: &[ContentHash]| match want {
            Some(r) => root(have.iter().copied()) == r,
            None => have.is_empty(),
        };
        ids(self.receipts, &sets.receipts)
            && ids(self.excluded, &sets.excluded)
            && ids(self.subscriptions, &sets.subscriptions)
            && match self.carry {
                Some(d) => carry_digest(&sets.carry) == d,
                None => sets.carry.is_empty(),
            }
    }
}

/// The network side of the review: a node's store, client and clock.
#[derive(Clone)]
pub struct Gather {
    pub(super) store: Store,
    pub(super) net: net::Client,
    pub(super) clock: Clock,
}

impl Gather {
    /// The sets of record `id` that `roots` name: from the store, else from the first of
    /// `sources` whose pages hold, then kept. `None` when no source has them.
    pub async fn sets(
        &self,
        id: &ContentHash,
        roots: &Roots,
        sources: &[PublicKey],
    ) -> Result<Option<Sets>, Error> {
        if let Some(sets) = self.store.sets(id)?
            && roots.hold(&sets)
        {
            return Ok(Some(sets));
        }
        for source in sources {
            match self.sets_from(*source, id).await {
                Ok(Some(sets)) if roots.hold(&sets) => {
                    self.store.put_sets(id, &sets)?;
                    return Ok(Some(sets));
                }
                Ok(Some(_)) => debug!(%source, record = %id, "sets that do not match the roots"),
                Ok(None) => debug!(%source, record = %id, "no sets there"),
                Err(e) => debug!(%source, record = %id, "cannot fetch sets: {e}"),
            }
        }
        Ok(None)
    }

    async fn sets_from(&self, source: PublicKey, id: &ContentHash) -> Result<Option<Sets>, Error> {
        let mut sets = Sets::default();
        for part in PARTS {
            let mut items: Vec<u8> = Vec::new();
            for page in 0..MAX_PAGES {
                let request = inputs::Request::Page {
                    bundle: *id,
                    part: part.byte(),
                    page,
                };
                let bytes = match self.net.inputs(source, request).await? {
                    inputs::Response::Page(b) => b.into_vec(),
                    inputs::Response::Missing if page == 0 => return Ok(None),
                    inputs::Response::Missing => break,
                    _ => return Ok(None),
                };
                if bytes.len() % part.item_len() != 0 || bytes.len() > INPUT_PAGE * part.item_len()
                {
                    return Ok(None);
                }
                let full = bytes.len() == INPUT_PAGE * part.item_len();
                items.extend_from_slice(&bytes);
                if !full {
                    break;
                }
            }
            for item in items.chunks_exact(part.item_len()) {
                let head = ContentHash(item[..32].try_into().expect("32 bytes"));
                match part {
                    Part::Receipts => sets.receipts.push(head),
                    Part::Excluded => sets.excluded.push(head),
                    Part::Subscriptions => sets.subscriptions.push(head),
                    Part::Carry => {
                        let units = u64::from_be_bytes(item[32..].try_into().expect("8 bytes"));
                        sets.carry.insert(PublicKey(head.0), MicroUsdp(units));
                    }
                }
            }
        }
        for ids in [
            &mut sets.receipts,
            &mut sets.excluded,
            &mut sets.subscriptions,
        ] {
            ids.sort_unstable();
            ids.dedup();
        }
        Ok(Some(sets))
    }

    /// The receipts with these ids: those held, and those lacking fetched from `sources`
    /// (checked and stored as arriving now). `None` while some cannot be had.
    pub async fn receipts(
        &self,
        ids: &[ContentHash],
        sources: &[PublicKey],
    ) -> Result<Option<Vec<SignedReceipt>>, Error> {
        let held = self.held_receipts(ids).await?;
        let have: BTreeSet<ContentHash> = held.iter().map(SignedReceipt::id).collect();
        let mut lacking: BTreeSet<ContentHash> =
            ids.iter().filter(|i| !have.contains(i)).copied().collect();
        for source in sources {
            if lacking.is_empty() {
                break;
            }
            let wanted: Vec<ContentHash> = lacking.iter().copied().collect();
            for chunk in wanted.chunks(inputs::MAX_BY_ID) {
                let request = inputs::Request::Receipts(chunk.to_vec());
                let Ok(inputs::Response::Records(records)) =
                    self.net.inputs(*source, request).await
                else {
                    debug!(%source, "cannot fetch receipts");
                    break;
                };
                let got: Vec<SignedReceipt> = records
                    .iter()
                    .take(inputs::MAX_BY_ID)
                    .filter_map(|b| SignedReceipt::from_bytes(b).ok())
                    .filter(|r| lacking.contains(&r.id()))
                    .collect();
                let good: Vec<SignedReceipt> = got
                    .iter()
                    .zip(verify_all(&got))
                    .filter(|(_, ok)| *ok)
                    .map(|(r, _)| *r)
                    .collect();
                if good.is_empty() {
                    continue;
                }
                let (store, now, keep) = (self.store.clone(), self.clock.now_ms(), good.clone());
                tokio::task::spawn_blocking(move || store.put_receipts(&keep, now))
                    .await
                    .map_err(|e| Error::Review(format!("the storage task failed: {e}")))??;
                for r in &good {
                    lacking.remove(&r.id());
                }
            }
        }
        if !lacking.is_empty() {
            debug!(lacking = lacking.len(), "receipts not found");
            return Ok(None);
        }
        Ok(Some(self.held_receipts(ids).await?))
    }

    async fn held_receipts(&self, ids: &[ContentHash]) -> Result<Vec<SignedReceipt>, Error> {
        let (store, ids) = (self.store.clone(), ids.to_vec());
        Ok(
            tokio::task::spawn_blocking(move || store.receipts_by_ids(&ids))
                .await
                .map_err(|e| Error::Review(format!("the storage task failed: {e}")))??,
        )
    }

    /// The subscriptions with these ids: those held, and those lacking fetched from
    /// `sources` (checked and stored). `None` while some cannot be had.
    pub async fn subscriptions(
        &self,
        ids: &[ContentHash],
        sources: &[PublicKey],
    ) -> Result<Option<Vec<SignedSubscription>>, Error> {
        let mut out = Vec::with_capacity(ids.len());
        let mut lacking = BTreeSet::new();
        for id in ids {
            match self.store.subscription(id)? {
                Some(s) => out.push(s),
                None => {
                    lacking.insert(*id);
                }
            }
        }
        for source in sources {
            if lacking.is_empty() {
                break;
            }
            let wanted: Vec<ContentHash> = lacking.iter().copied().collect();
            for chunk in wanted.chunks(inputs::MAX_BY_ID) {
                let request = inputs::Request::Subscriptions(chunk.to_vec());
                let Ok(inputs::Response::Records(records)) =
                    self.net.inputs(*source, request).await
                else {
                    break;
                };
                let got: Vec<SignedSubscription> = records
                    .iter()
                    .take(inputs::MAX_BY_ID)
                    .filter_map(|b| SignedSubscription::from_bytes(b).ok())
                    .filter(|s| lacking.contains(&s.id()))
                    .collect();
                let good: Vec<SignedSubscription> = got
                    .iter()
                    .zip(verify_all(&got))
                    .filter(|(_, ok)| *ok)
                    .map(|(s, _)| s.clone())
                    .collect();
                self.store.put_subscriptions(&good)?;
                for s in good {
                    lacking.remove(&s.id());
                    out.push(s);
                }
            }
        }
        Ok(lacking.is_empty().then_some(out))
    }
}
