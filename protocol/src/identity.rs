//! Secrets: node and artist keypairs, listener secrets with their per-month keys, and the
//! text form of a key file.
//!
//! One 32-byte Ed25519 seed is a node's whole identity: the same seed gives its libp2p PeerId
//! and iroh EndpointId. A listener keeps a long-term secret and signs month M's receipts with a
//! key derived for M alone (`records.md`, "Listener keys"), so receipts of different months
//! cannot be tied together. This module never touches the disk: `storage::keyfile` writes the
//! text form produced here, with mode 0600.

use std::fmt;

use hkdf::Hkdf;
use rand::CryptoRng;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use thiserror::Error;

use crate::key::{PublicKey, Signature, decode_hex};
use crate::month::Month;

/// An Ed25519 signing key with its public key: a node's or an artist's identity, or a
/// listener's key for one month.
#[derive(Clone)]
pub struct Keypair {
    seed: [u8; 32],
    signing: ed25519_zebra::SigningKey,
    public: PublicKey,
}

impl Keypair {
    /// The keypair of a 32-byte RFC 8032 seed.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        let signing = ed25519_zebra::SigningKey::from(seed);
        let public = PublicKey(ed25519_zebra::VerificationKeyBytes::from(&signing).into());
        Self {
            seed,
            signing,
            public,
        }
    }

    /// A new random keypair.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        Self::from_seed(seed)
    }

    /// The public key.
    pub fn public(&self) -> PublicKey {
        self.public
    }

    /// The 32-byte seed: the secret. Handle with care.
    pub fn seed(&self) -> &[u8; 32] {
        &self.seed
    }

    /// Signs `message` (pure Ed25519, RFC 8032).
    pub fn sign(&self, message: &[u8]) -> Signature {
        Signature(self.signing.sign(message).to_bytes())
    }
}

impl fmt::Debug for Keypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Keypair({})", self.public)
    }
}

/// A listener's long-term secret. It never signs anything itself: each month's receipts are
/// signed with [`ListenerSecret::month_key`].
#[derive(Clone)]
pub struct ListenerSecret([u8; 32]);

/// HKDF salt for month keys (`records.md`).
const MONTH_KEY_SALT: &[u8] = b"9ten";
/// HKDF info prefix for month keys, followed by year (u16, big-endian) and month (u8).
const MONTH_KEY_INFO: &[u8] = b"9ten/listener-month/v1";

impl ListenerSecret {
    /// The listener secret of 32 secret bytes.
    pub fn from_bytes(secret: [u8; 32]) -> Self {
        Self(secret)
    }

    /// A new random listener secret.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut secret = [0u8; 32];
        rng.fill_bytes(&mut secret);
        Self(secret)
    }

    /// The secret bytes. Handle with care.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The key that signs this listener's receipts of `month`:
    /// `seed_M = HKDF-SHA256(ikm = secret, salt = "9ten", info = "9ten/listener-month/v1" || year || month)`.
    pub fn month_key(&self, month: Month) -> Keypair {
        let mut info = [0u8; MONTH_KEY_INFO.len() + 3];
        info[..MONTH_KEY_INFO.len()].copy_from_slice(MONTH_KEY_INFO);
        info[MONTH_KEY_INFO.len()..MONTH_KEY_INFO.len() + 2]
            .copy_from_slice(&month.year().to_be_bytes());
        info[MONTH_KEY_INFO.len() + 2] = month.month();
        let mut seed = [0u8; 32];
        Hkdf::<Sha256>::new(Some(MONTH_KEY_SALT), &self.0)
            .expand(&info, &mut seed)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        Keypair::from_seed(seed)
    }
}

impl fmt::Debug for ListenerSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ListenerSecret(…)")
    }
}

/// What a key file holds: one secret and what it is for.
#[derive(Clone, Debug)]
pub enum Secret {
    /// A node's identity seed (also its libp2p PeerId and iroh EndpointId).
    Node(Keypair),
    /// An artist's signing key: signs release manifests.
    Artist(Keypair),
    /// A listener's long-term secret: derives a key per month.
    Listener(ListenerSecret),
}

/// Why a key file's text is not a key.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum KeyFileError {
    /// The text is not a key file of this version.
    #[error("not a 9ten key file: {0}")]
    Format(#[from] crate::FieldError),
}

/// The JSON form of a key file: `{"v":1,"kind":"node","secret":"<64 hex>"}`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFileJson {
    v: u8,
    kind: Kind,
    secret: String,
}

#[derive(Serialize, Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum Kind {
    Node,
    Artist,
    Listener,
}

impl Secret {
    /// A short name of what the secret is for: `node`, `artist` or `listener`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Node(_) => "node",
            Self::Artist(_) => "artist",
            Self::Listener(_) => "listener",
        }
    }

    /// The key file's text: one JSON object and a newline.
    pub fn to_key_file(&self) -> String {
        let (kind, secret) = match self {
            Self::Node(k) => (Kind::Node, k.seed()),
            Self::Artist(k) => (Kind::Artist, k.seed()),
            Self::Listener(s) => (Kind::Listener, s.as_bytes()),
        };
        let json = KeyFileJson {
            v: 1,
            kind,
            secret: hex::encode(secret),
        };
        let mut text = serde_json::to_string(&json).expect("a key file always serializes");
        text.push('\n');
        text
    }

    /// Reads a key file's text.
    pub fn from_key_file(text: &str) -> Result<Self, KeyFileError> {
        let mut de = serde_json::Deserializer::from_str(text.trim_end());
        let json: KeyFileJson =
            serde_path_to_error::deserialize(&mut de).map_err(crate::FieldError::from_json)?;
        if json.v != 1 {
            return Err(crate::FieldError::new("v", format!("unknown version {}", json.v)).into());
        }
        let secret =
            decode_hex::<32>(&json.secret).map_err(|e| crate::FieldError::new("secret", e))?;
        Ok(match json.kind {
            Kind::Node => Self::Node(Keypair::from_seed(secret)),
            Kind::Artist => Self::Artist(Keypair::from_seed(secret)),
            Kind::Listener => Self::Listener(ListenerSecret::from_bytes(secret)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8032_test_1_public_key() {
        // RFC 8032, section 7.1, TEST 1.
        let seed =
            decode_hex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60").unwrap();
        let pair = Keypair::from_seed(seed);
        assert_eq!(
            pair.public().to_string(),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
        assert_eq!(
            pair.sign(b"").to_string(),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        );
    }

    #[test]
    fn month_keys_differ_and_are_stable() {
        let secret = ListenerSecret::from_bytes([7; 32]);
        let oct = secret.month_key("2026-10".parse().unwrap());
        let nov = secret.month_key("2026-11".parse().unwrap());
        assert_ne!(oct.public(), nov.public());
        assert_eq!(
            oct.public(),
            secret.month_key("2026-10".parse().unwrap()).public()
        );
    }

    #[test]
    fn key_file_round_trips_and_rejects_junk() {
        let secret = Secret::Artist(Keypair::from_seed([3; 32]));
        let text = secret.to_key_file();
        match Secret::from_key_file(&text).unwrap() {
            Secret::Artist(k) => assert_eq!(k.seed(), &[3; 32]),
            other => panic!("wrong kind {other:?}"),
        }
        let err = Secret::from_key_file(r#"{"v":1,"kind":"node","secret":"00"}"#).unwrap_err();
        assert!(err.to_string().contains("secret"), "{err}");
        let err = Secret::from_key_file(r#"{"v":1,"kind":"robot","secret":"00"}"#).unwrap_err();
        assert!(err.to_string().contains("kind"), "{err}");
    }
}
