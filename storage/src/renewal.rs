//! Renewals on disk. On a home node: the private links between a listener's month keys that
//! renewals proved (both keys signed), so the carry moves from one month key to the next;
//! they never leave the node. On a listener's node: its standing order to renew each month.

use nineten_protocol::FieldError;
use nineten_protocol::key::PublicKey;
use nineten_protocol::month::Month;

use crate::store::corrupt;
use crate::{Error, Store, keys};

/// A listener's standing order: renew each month through `home`, paid by `payment_ref`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StandingOrder {
    /// The home node renewed through.
    pub home: PublicKey,
    /// The reference of the standing payment (a wallet's or gateway's recurring order).
    pub payment_ref: String,
}

impl Store {
    /// Keeps the link `previous` → `next` for `month` (the month renewed into). The first
    /// link of a key stands: false, and nothing written, when `previous` was linked already.
    pub fn put_renewal(
        &self,
        month: Month,
        previous: &PublicKey,
        next: &PublicKey,
    ) -> Result<bool, Error> {
        let stored = self
            .db
            .compare_and_swap(keys::renewal(month, previous), None::<&[u8]>, Some(&next.0))
            .map_err(Error::db("storing a renewal"))?;
        self.flush()?;
        Ok(stored.is_ok())
    }

    /// The key `previous` was renewed into for `month`, if a renewal linked it.
    pub fn renewal(&self, month: Month, previous: &PublicKey) -> Result<Option<PublicKey>, Error> {
        let key = keys::renewal(month, previous);
        let Some(value) = self.db.get(&key).map_err(Error::db("reading a renewal"))? else {
            return Ok(None);
        };
        let bytes: [u8; 32] = value
            .as_ref()
            .try_into()
            .map_err(|_| corrupt(&key, FieldError::new("next", "not 32 bytes")))?;
        Ok(Some(PublicKey(bytes)))
    }

    /// Sets this listener's standing order, or ends it (`None`).
    pub fn set_standing_order(&self, order: Option<&StandingOrder>) -> Result<(), Error> {
        let key = keys::standing_order();
        let result = match order {
            Some(o) => {
                let mut value = o.home.0.to_vec();
                value.extend_from_slice(o.payment_ref.as_bytes());
                self.db.insert(key, value).map(|_| ())
            }
            None => self.db.remove(key).map(|_| ()),
        };
        result.map_err(Error::db("storing the standing order"))?;
        self.flush()
    }

    /// This listener's standing order, if it has one.
    pub fn standing_order(&self) -> Result<Option<StandingOrder>, Error> {
        let key = keys::standing_order();
        let Some(value) = self
            .db
            .get(&key)
            .map_err(Error::db("reading the standing order"))?
        else {
            return Ok(None);
        };
        let (home, reference) = value
            .split_first_chunk::<32>()
            .ok_or_else(|| corrupt(&key, FieldError::new("home", "too short")))?;
        let payment_ref = String::from_utf8(reference.to_vec())
            .map_err(|_| corrupt(&key, FieldError::new("payment_ref", "not UTF-8")))?;
        Ok(Some(StandingOrder {
            home: PublicKey(*home),
            payment_ref,
        }))
    }
}
