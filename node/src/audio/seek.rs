//! The seek index of a track: granule position to byte offset of an Ogg page start, about one
//! entry a second, so a player can start anywhere by fetching a byte range.
//!
//! Binary form (stored as its own blob, named by its BLAKE3 hash in the release manifest):
//! `9ten/seek/v1\0` (13 bytes), pre-skip u16, final granule u64, entry count u32, then per
//! entry granule u64 and offset u64; big-endian, granules and offsets strictly increasing.

use thiserror::Error;

/// Domain tag of the binary form.
pub const SEEK_TAG: &[u8; 13] = b"9ten/seek/v1\0";
/// At most this many entries (a day of audio at one a second).
pub const MAX_ENTRIES: usize = 86_400;

/// One point a player can start decoding at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Granule position (48 kHz samples, pre-skip included) of the first sample decoded from
    /// the page that starts at `offset`.
    pub granule: u64,
    /// Byte offset of that page in the stream.
    pub offset: u64,
}

/// A track's seek index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeekIndex {
    /// Samples to drop at the start of the stream.
    pub pre_skip: u16,
    /// Granule position of the end of the stream (pre-skip + samples).
    pub end_granule: u64,
    /// Entries, increasing in both granule and offset. The first is the first audio page.
    pub entries: Vec<Entry>,
}

/// A seek index that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("seek index: {0}")]
pub struct SeekIndexError(String);

impl SeekIndex {
    /// The entry to start decoding at to play from `granule`: the last one at or before it.
    pub fn lookup(&self, granule: u64) -> Entry {
        let i = self.entries.partition_point(|e| e.granule <= granule);
        self.entries[i.saturating_sub(1)]
    }

    /// The binary form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(27 + self.entries.len() * 16);
        b.extend_from_slice(SEEK_TAG);
        b.extend_from_slice(&self.pre_skip.to_be_bytes());
        b.extend_from_slice(&self.end_granule.to_be_bytes());
        let count = u32::try_from(self.entries.len()).expect("at most MAX_ENTRIES entries");
        b.extend_from_slice(&count.to_be_bytes());
        for e in &self.entries {
            b.extend_from_slice(&e.granule.to_be_bytes());
            b.extend_from_slice(&e.offset.to_be_bytes());
        }
        b
    }

    /// Reads the binary form, checking every bound.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SeekIndexError> {
        let err = |m: &str| SeekIndexError(m.to_string());
        if bytes.len() < 27 || &bytes[..13] != SEEK_TAG {
            return Err(err("not a 9ten/seek/v1 index"));
        }
        let pre_skip = u16::from_be_bytes([bytes[13], bytes[14]]);
        let end_granule = u64::from_be_bytes(bytes[15..23].try_into().expect("8 bytes"));
        let count = u32::from_be_bytes(bytes[23..27].try_into().expect("4 bytes")) as usize;
        if count == 0 || count > MAX_ENTRIES || bytes.len() != 27 + count * 16 {
            return Err(err("entry count does not match the length"));
        }
        let entries: Vec<Entry> = bytes[27..]
            .chunks_exact(16)
            .map(|c| Entry {
                granule: u64::from_be_bytes(c[..8].try_into().expect("8 bytes")),
                offset: u64::from_be_bytes(c[8..].try_into().expect("8 bytes")),
            })
            .collect();
        if entries
            .windows(2)
            .any(|w| w[1].granule <= w[0].granule || w[1].offset <= w[0].offset)
        {
            return Err(err("entries are not increasing"));
        }
        Ok(Self {
            pre_skip,
            end_granule,
            entries,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_lookup() {
        let index = SeekIndex {
            pre_skip: 312,
            end_granule: 200_000,
            entries: vec![
                Entry {
                    granule: 0,
                    offset: 100,
                },
                Entry {
                    granule: 48_000,
                    offset: 20_000,
                },
                Entry {
                    granule: 96_000,
                    offset: 41_000,
                },
            ],
        };
        let bytes = index.to_bytes();
        assert_eq!(SeekIndex::from_bytes(&bytes).unwrap(), index);
        assert_eq!(index.lookup(0).offset, 100);
        assert_eq!(index.lookup(47_999).offset, 100);
        assert_eq!(index.lookup(48_000).offset, 20_000);
        assert_eq!(index.lookup(u64::MAX).offset, 41_000);
        for cut in 0..bytes.len() {
            assert!(SeekIndex::from_bytes(&bytes[..cut]).is_err());
        }
    }
}
