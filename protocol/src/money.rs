//! Money: integer micro-USDP (1 USDP = 1_000_000 units) and the subscription fee split.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An amount in micro-USDP. Settlement never uses floating point.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct MicroUsdp(pub u64);

/// Units in one USDP.
pub const UNITS_PER_USDP: u64 = 1_000_000;
/// The monthly fee a subscriber pays its home node (`settlement.md`).
pub const FEE: MicroUsdp = MicroUsdp(10_000_000);
/// The part of each fee that goes to the home node's operator.
pub const OPERATOR_SHARE: MicroUsdp = MicroUsdp(1_000_000);
/// The part of each fee that goes to the subscriber's artist pool.
pub const ARTIST_POOL: MicroUsdp = MicroUsdp(9_000_000);

impl fmt::Display for MicroUsdp {
    /// Shows the amount in USDP with all six decimals, e.g. `9.000000`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{:06}",
            self.0 / UNITS_PER_USDP,
            self.0 % UNITS_PER_USDP
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fee_splits_exactly() {
        assert_eq!(OPERATOR_SHARE.0 + ARTIST_POOL.0, FEE.0);
        assert_eq!(MicroUsdp(9_000_001).to_string(), "9.000001");
        assert_eq!(MicroUsdp(0).to_string(), "0.000000");
    }
}
