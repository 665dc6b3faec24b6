//! Byte newtypes for what records carry: public keys, content hashes and signatures.
//!
//! They display and parse as lowercase hex, exactly `2 × length` characters; anything else
//! (uppercase, a `0x` prefix, a wrong length) is rejected, so a value has one text form.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

/// Why a hex string is not a valid value.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum HexError {
    /// The string has the wrong number of characters.
    #[error("expected {expected} lowercase hex characters, found {found}")]
    Length {
        /// Characters required.
        expected: usize,
        /// Characters given.
        found: usize,
    },
    /// A character is not one of `0-9a-f`.
    #[error("character {position} ({found:?}) is not lowercase hex")]
    Character {
        /// Zero-based position of the bad character.
        position: usize,
        /// The character found.
        found: char,
    },
}

/// Decodes exactly `N` bytes from `2N` lowercase hex characters.
pub fn decode_hex<const N: usize>(text: &str) -> Result<[u8; N], HexError> {
    if text.len() != 2 * N {
        return Err(HexError::Length {
            expected: 2 * N,
            found: text.chars().count(),
        });
    }
    if let Some((position, found)) = text
        .char_indices()
        .find(|(_, c)| !matches!(c, '0'..='9' | 'a'..='f'))
    {
        return Err(HexError::Character { position, found });
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(text, &mut out).expect("length and alphabet were checked above");
    Ok(out)
}

macro_rules! byte_newtype {
    ($(#[$doc:meta])* $name:ident, $len:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub [u8; $len]);

        impl $name {
            /// Length in bytes.
            pub const LEN: usize = $len;

            /// The raw bytes.
            pub fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&hex::encode(self.0))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self)
            }
        }

        impl FromStr for $name {
            type Err = HexError;
            fn from_str(text: &str) -> Result<Self, HexError> {
                decode_hex(text).map(Self)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

byte_newtype!(
    /// A 32-byte Ed25519 public key: a listener's month key, an artist, a node.
    PublicKey,
    32
);
byte_newtype!(
    /// A 32-byte BLAKE3 hash: a track's content id, a record id.
    ContentHash,
    32
);
byte_newtype!(
    /// A 64-byte Ed25519 signature (`R || S`).
    Signature,
    64
);

impl ContentHash {
    /// The BLAKE3 hash of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(*blake3::hash(bytes).as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_strict() {
        let key = PublicKey([0xab; 32]);
        let text = key.to_string();
        assert_eq!(text, "ab".repeat(32));
        assert_eq!(text.parse::<PublicKey>(), Ok(key));
        assert!(matches!(
            "AB".repeat(32).parse::<PublicKey>(),
            Err(HexError::Character { position: 0, .. })
        ));
        assert!(matches!(
            "ab".repeat(31).parse::<PublicKey>(),
            Err(HexError::Length {
                expected: 64,
                found: 62
            })
        ));
        assert!("zz".repeat(64).parse::<Signature>().is_err());
    }
}
