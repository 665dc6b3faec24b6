//! The payout statement: what a home node owes one artist for one month, and from which
//! verified tally. Not a record of `review.md`: without a ledger it is how the money's
//! last step is put on the record (`docs/month.md`, "Payout statements"); a ledger puts the
//! same figures on chain. It follows the frame of `review.md`'s records: tag, fields in
//! table order, signature; id = BLAKE3 of the signed message.
//!
//! | bytes | field |
//! |---|---|
//! | 15 | `9ten/payout/v1` and a zero byte |
//! | 32 | `home` (the home node, which signs) |
//! | 2 + 1 | month: year u16, month u8 |
//! | 32 | `artist` (key) |
//! | 8 | `units`: u64, the artist's line of the tally |
//! | 32 | `bundle`: the id of the verified bundle (the last round's) |
//! | 32 | `tally`: its tally digest |

use serde::{Deserialize, Serialize};

use crate::error::FieldError;
use crate::key::{ContentHash, PublicKey, Signature};
use crate::money::MicroUsdp;
use crate::month::Month;
use crate::record::{Body, Fields, Record, check_version, write_month};

/// A signed payout statement.
pub type SignedPayout = Record<Payout>;

/// Domain tag of payout statements.
pub const PAYOUT_TAG: &[u8; 15] = b"9ten/payout/v1\0";

/// What a home node owes an artist for a month.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Payout {
    /// The home node, which signs and pays.
    pub home: PublicKey,
    /// The month settled.
    pub month: Month,
    /// The artist paid.
    pub artist: PublicKey,
    /// What it is owed: its line of the verified tally.
    pub units: MicroUsdp,
    /// The verified bundle the figure comes from.
    pub bundle: ContentHash,
    /// That bundle's tally digest.
    pub tally: ContentHash,
}

impl Body for Payout {
    const TAG: &'static [u8] = PAYOUT_TAG;
    type Json = PayoutJson;

    fn signer(&self) -> &PublicKey {
        &self.home
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.home.0);
        write_month(self.month, out);
        out.extend_from_slice(&self.artist.0);
        out.extend_from_slice(&self.units.0.to_be_bytes());
        out.extend_from_slice(&self.bundle.0);
        out.extend_from_slice(&self.tally.0);
    }

    fn read(f: &mut Fields<'_>) -> Result<Self, FieldError> {
        Ok(Self {
            home: f.key("home")?,
            month: f.month("month")?,
            artist: f.key("artist")?,
            units: MicroUsdp(f.u64("units")?),
            bundle: f.hash("bundle")?,
            tally: f.hash("tally")?,
        })
    }

    fn to_json(&self, sig: Signature) -> PayoutJson {
        PayoutJson {
            v: 1,
            home: self.home,
            month: self.month,
            artist: self.artist,
            units: self.units.0,
            bundle: self.bundle,
            tally: self.tally,
            sig,
        }
    }

    fn from_json(j: PayoutJson) -> Result<(Self, Signature), FieldError> {
        check_version(j.v)?;
        Ok((
            Self {
                home: j.home,
                month: j.month,
                artist: j.artist,
                units: MicroUsdp(j.units),
                bundle: j.bundle,
                tally: j.tally,
            },
            j.sig,
        ))
    }
}

/// The JSON form of a payout statement.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayoutJson {
    v: u64,
    home: PublicKey,
    month: Month,
    artist: PublicKey,
    units: u64,
    bundle: ContentHash,
    tally: ContentHash,
    sig: Signature,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Keypair;

    #[test]
    fn a_statement_reads_back_in_both_forms_and_names_a_bad_field() {
        let key = Keypair::from_seed([9; 32]);
        let p = Record::sign(
            Payout {
                home: key.public(),
                month: Month::new(2026, 10).unwrap(),
                artist: PublicKey([4; 32]),
                units: MicroUsdp(4_500_001),
                bundle: ContentHash([5; 32]),
                tally: ContentHash([6; 32]),
            },
            &key,
        );
        assert!(p.verifies());
        assert_eq!(p.to_bytes().len(), 15 + 32 + 3 + 32 + 8 + 32 + 32 + 64);
        assert_eq!(SignedPayout::from_bytes(&p.to_bytes()).unwrap(), p);
        assert_eq!(SignedPayout::from_json(&p.to_json()).unwrap(), p);
        let wrong = p.to_json().replace("\"units\":4500001", "\"units\":-1");
        assert_eq!(SignedPayout::from_json(&wrong).unwrap_err().field, "units");
        let mut forged = p.clone();
        forged.body.units = MicroUsdp(4_500_002);
        assert!(!forged.verifies());
    }
}
