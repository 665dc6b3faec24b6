//! The daily report (`review.md`, "Daily report"): a home node's signed commitment, after
//! each UTC day, to the receipts of its listeners it holds for that day and to the artists'
//! raw figures over them.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::FieldError;
use crate::key::{ContentHash, PublicKey, Signature};
use crate::month::Month;
use crate::receipt::SignedReceipt;
use crate::record::{Body, Fields, Record, check_version, root, write_month};

/// A signed daily report.
pub type SignedDailyReport = Record<DailyReport>;

/// Domain tag of daily reports.
pub const DAILY_TAG: &[u8; 14] = b"9ten/daily/v1\0";

/// A UTC day: a month and a day of it that exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day {
    month: Month,
    day: u8,
}

impl Day {
    /// Checks that `day` exists in `month`.
    pub fn new(month: Month, day: u8) -> Result<Self, FieldError> {
        let (start, end) = month.bounds_ms();
        let days = (end - start) / 86_400_000;
        if day == 0 || u64::from(day) > days {
            return Err(FieldError::new(
                "day",
                format!("{month} has no day {day} (1 to {days})"),
            ));
        }
        Ok(Self { month, day })
    }

    /// The day containing `ms` (milliseconds since the Unix epoch, UTC).
    pub fn containing(ms: u64) -> Option<Self> {
        let month = Month::containing(ms)?;
        let day = (ms - month.bounds_ms().0) / 86_400_000 + 1;
        Some(Self {
            month,
            day: u8::try_from(day).expect("a month has at most 31 days"),
        })
    }

    /// The month it belongs to.
    pub fn month(self) -> Month {
        self.month
    }

    /// Its number in the month, from 1.
    pub fn day(self) -> u8 {
        self.day
    }

    /// Its start and end in ms since the Unix epoch: `[start, end)`.
    pub fn bounds_ms(self) -> (u64, u64) {
        let start = self.month.bounds_ms().0 + (u64::from(self.day) - 1) * 86_400_000;
        (start, start + 86_400_000)
    }
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{:02}", self.month, self.day)
    }
}

impl FromStr for Day {
    type Err = FieldError;
    fn from_str(s: &str) -> Result<Self, FieldError> {
        let bad = || FieldError::new("day", format!("`{s}` is not a day (YYYY-MM-DD)"));
        let (month, day) = s.rsplit_once('-').ok_or_else(bad)?;
        let month: Month = month.parse().map_err(|_| bad())?;
        if day.len() != 2 {
            return Err(bad());
        }
        Self::new(month, day.parse().map_err(|_| bad())?)
    }
}

impl Serialize for Day {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Day {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse()
            .map_err(|e: FieldError| serde::de::Error::custom(e.problem))
    }
}

/// One artist's raw figures over a day's receipts, before settlement's rules.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ArtistDay {
    /// Receipts naming the artist.
    pub plays: u32,
    /// Those with `listened_ms >= min(30_000, track_ms / 2)`.
    pub qualified: u32,
    /// Sum of `listened_ms`.
    pub listened_ms: u64,
    /// Listener keys among them.
    pub listeners: u32,
}

/// What a daily report commits to, computed from the receipts it names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DayFigures {
    /// Receipts named.
    pub count: u32,
    /// Root over their ids.
    pub receipts: ContentHash,
    /// Per artist, ascending key order.
    pub artists: BTreeMap<PublicKey, ArtistDay>,
}

impl DayFigures {
    /// The figures of these receipts (copies of one receipt count once).
    pub fn of(receipts: &[SignedReceipt]) -> Self {
        let mut seen = BTreeSet::new();
        let mut artists: BTreeMap<PublicKey, ArtistDay> = BTreeMap::new();
        let mut listeners: BTreeSet<(PublicKey, PublicKey)> = BTreeSet::new();
        for r in receipts {
            if !seen.insert(r.id()) {
                continue;
            }
            let r = &r.receipt;
            let a = artists.entry(r.artist).or_default();
            a.plays += 1;
            if r.listened_ms >= 30_000.min(r.track_ms / 2) {
                a.qualified += 1;
            }
            a.listened_ms += u64::from(r.listened_ms);
            if listeners.insert((r.artist, r.listener)) {
                a.listeners += 1;
            }
        }
        Self {
            count: u32::try_from(seen.len()).expect("fewer than 2^32 receipts in a day"),
            receipts: root(seen),
            artists,
        }
    }

    /// The `artists` field: BLAKE3 of a count u32, then per artist in ascending key order its
    /// key, plays u32, qualified u32, listened ms u64 and distinct listeners u32.
    pub fn artists_digest(&self) -> ContentHash {
        let mut h = blake3::Hasher::new();
        let count = u32::try_from(self.artists.len()).expect("fewer than 2^32 artists");
        h.update(&count.to_be_bytes());
        for (key, a) in &self.artists {
            h.update(&key.0);
            h.update(&a.plays.to_be_bytes());
            h.update(&a.qualified.to_be_bytes());
            h.update(&a.listened_ms.to_be_bytes());
            h.update(&a.listeners.to_be_bytes());
        }
        ContentHash(*h.finalize().as_bytes())
    }
}

/// What a home node signs after a day.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DailyReport {
    /// The home node.
    pub home: PublicKey,
    /// The day reported.
    pub day: Day,
    /// Receipts of its listeners whose listen started that day, held when it signs.
    pub count: u32,
    /// Root over their ids.
    pub receipts: ContentHash,
    /// [`DayFigures::artists_digest`] over them.
    pub artists: ContentHash,
}

impl DailyReport {
    /// The report of `home` for `day` over these figures.
    pub fn new(home: PublicKey, day: Day, figures: &DayFigures) -> Self {
        Self {
            home,
            day,
            count: figures.count,
            receipts: figures.receipts,
            artists: figures.artists_digest(),
        }
    }
}

impl Body for DailyReport {
    const TAG: &'static [u8] = DAILY_TAG;
    type Json = DailyJson;

    fn signer(&self) -> &PublicKey {
        &self.home
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.home.0);
        write_month(self.day.month, out);
        out.push(self.day.day);
        out.extend_from_slice(&self.count.to_be_bytes());
        out.extend_from_slice(&self.receipts.0);
        out.extend_from_slice(&self.artists.0);
    }

    fn read(f: &mut Fields<'_>) -> Result<Self, FieldError> {
        let home = f.key("home")?;
        let month = f.month("day")?;
        let day = Day::new(month, f.u8("day")?)?;
        Ok(Self {
            home,
            day,
            count: f.u32("count")?,
            receipts: f.hash("receipts")?,
            artists: f.hash("artists")?,
        })
    }

    fn to_json(&self, sig: Signature) -> DailyJson {
        DailyJson {
            v: 1,
            home: self.home,
            day: self.day,
            count: self.count,
            receipts: self.receipts,
            artists: self.artists,
            sig,
        }
    }

    fn from_json(j: DailyJson) -> Result<(Self, Signature), FieldError> {
        check_version(j.v)?;
        Ok((
            Self {
                home: j.home,
                day: j.day,
                count: j.count,
                receipts: j.receipts,
                artists: j.artists,
            },
            j.sig,
        ))
    }
}

/// The JSON form of a daily report.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DailyJson {
    v: u64,
    home: PublicKey,
    day: Day,
    count: u32,
    receipts: ContentHash,
    artists: ContentHash,
    sig: Signature,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Keypair;
    use crate::receipt::Receipt;

    fn listen(listener: u8, artist: u8, listened_ms: u32, track_ms: u32) -> SignedReceipt {
        let key = Keypair::from_seed([listener; 32]);
        Receipt {
            listener: key.public(),
            seq: u64::from(listened_ms),
            track: ContentHash([7; 32]),
            artist: PublicKey([artist; 32]),
            started_at_ms: 1_790_000_000_000,
            listened_ms,
            track_ms,
            home_node: PublicKey([9; 32]),
        }
        .sign(&key)
    }

    #[test]
    fn days_exist_and_read_back() {
        let feb: Month = "2028-02".parse().unwrap();
        assert!(Day::new(feb, 29).is_ok());
        assert_eq!(Day::new(feb, 30).unwrap_err().field, "day");
        let d: Day = "2026-10-31".parse().unwrap();
        assert_eq!(d.to_string(), "2026-10-31");
        assert_eq!(Day::containing(d.bounds_ms().0), Some(d));
        assert_eq!(Day::containing(d.bounds_ms().1 - 1), Some(d));
        assert!("2026-10-32".parse::<Day>().is_err());
        assert!("2026-10-1".parse::<Day>().is_err());
    }

    #[test]
    fn figures_count_raw_plays_qualified_and_listeners() {
        let receipts = [
            listen(1, 1, 30_000, 200_000),
            listen(1, 1, 29_999, 200_000),
            listen(2, 1, 10_000, 20_000), // half of a 20 s track qualifies
            listen(2, 2, 9_999, 20_000),
        ];
        let mut with_copy = receipts.to_vec();
        with_copy.push(receipts[0]);
        let f = DayFigures::of(&with_copy);
        assert_eq!(f.count, 4);
        assert_eq!(f.receipts, root(receipts.iter().map(SignedReceipt::id)));
        let a1 = f.artists[&PublicKey([1; 32])];
        assert_eq!(
            a1,
            ArtistDay {
                plays: 3,
                qualified: 2,
                listened_ms: 69_999,
                listeners: 2
            }
        );
        assert_eq!(f.artists[&PublicKey([2; 32])].qualified, 0);
    }

    #[test]
    fn round_trips_and_names_bad_fields() {
        let home = Keypair::from_seed([3; 32]);
        let day: Day = "2026-10-05".parse().unwrap();
        let f = DayFigures::of(&[listen(1, 1, 30_000, 60_000)]);
        let r = Record::sign(DailyReport::new(home.public(), day, &f), &home);
        assert!(r.verifies());
        assert_eq!(SignedDailyReport::from_json(&r.to_json()).unwrap(), r);
        assert_eq!(SignedDailyReport::from_bytes(&r.to_bytes()).unwrap(), r);
        let m = r.message();
        assert_eq!(&m[..14], b"9ten/daily/v1\0");
        assert_eq!(&m[46..50], &[0x07, 0xea, 10, 5]);
        assert_eq!(m.len(), 14 + 32 + 4 + 4 + 32 + 32);
        let bad = r.to_json().replace("2026-10-05", "2026-10-35");
        assert_eq!(SignedDailyReport::from_json(&bad).unwrap_err().field, "day");
        let mut bytes = r.to_bytes();
        bytes[49] = 0;
        assert_eq!(
            SignedDailyReport::from_bytes(&bytes).unwrap_err().field,
            "day"
        );
    }
}
