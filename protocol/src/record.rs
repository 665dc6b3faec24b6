//! The frame every record of `review.md` shares: a domain tag, the fields in table order and
//! a 64-byte signature over both; an id that is BLAKE3 of the signed message alone; a JSON
//! form with `v` first and `sig` last whose errors name the field. A record type says only
//! what its fields are ([`Body`]); [`Record`] does the rest, the same way for all of them.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::FieldError;
use crate::identity::Keypair;
use crate::key::{ContentHash, PublicKey, Signature};
use crate::month::Month;
use crate::signature::{Signed, verify_record};

/// What one kind of record signs: its fields, their bytes and their JSON.
pub trait Body: Sized {
    /// The domain tag, its zero byte included.
    const TAG: &'static [u8];
    /// The JSON form: `v` first, the fields in table order, `sig` last; unknown fields denied.
    type Json: Serialize + DeserializeOwned;
    /// The key whose signature the record carries.
    fn signer(&self) -> &PublicKey;
    /// Appends the fields after the tag, in table order.
    fn write(&self, out: &mut Vec<u8>);
    /// Reads the fields after the tag.
    fn read(fields: &mut Fields<'_>) -> Result<Self, FieldError>;
    /// The JSON form with this signature.
    fn to_json(&self, sig: Signature) -> Self::Json;
    /// Reads the JSON form (its `v` already checked by [`check_version`]).
    fn from_json(json: Self::Json) -> Result<(Self, Signature), FieldError>;
}

/// A record and one signature over it. Copies with the same body are one record whatever
/// their signatures (`records.md`, "Rules for readers") and share one [`Record::id`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Record<T> {
    /// What is signed.
    pub body: T,
    /// The signer's signature over [`Record::message`].
    pub sig: Signature,
}

impl<T: Body> Record<T> {
    /// Signs `body`; verifies only if `key.public()` is the body's signer.
    pub fn sign(body: T, key: &Keypair) -> Self {
        let mut message = Vec::new();
        write_message(&body, &mut message);
        Self {
            sig: key.sign(&message),
            body,
        }
    }

    /// The exact signed message: tag, then fields.
    pub fn message(&self) -> Vec<u8> {
        let mut m = Vec::new();
        write_message(&self.body, &mut m);
        m
    }

    /// The record's id: BLAKE3 of its signed message alone.
    pub fn id(&self) -> ContentHash {
        ContentHash::of(&self.message())
    }

    /// Whether the signature is valid under the 9ten rule.
    pub fn verifies(&self) -> bool
    where
        T: Sync,
    {
        verify_record(self)
    }

    /// The binary form: signed message, then signature.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = self.message();
        b.extend_from_slice(&self.sig.0);
        b
    }

    /// Reads the binary form; the signature is not checked here.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, FieldError> {
        let body = bytes
            .strip_prefix(T::TAG)
            .ok_or_else(|| FieldError::new("tag", format!("not a {} record", tag_name::<T>())))?;
        let mut fields = Fields(body);
        let body = T::read(&mut fields)?;
        let sig: [u8; Signature::LEN] = fields.0.try_into().map_err(|_| {
            FieldError::new(
                "sig",
                format!("{} bytes after the fields, 64 expected", fields.0.len()),
            )
        })?;
        Ok(Self {
            body,
            sig: Signature(sig),
        })
    }

    /// The JSON line, without newline.
    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.body.to_json(self.sig)).expect("records always serialize")
    }

    /// Reads one JSON object; errors name the field. The signature is not checked here.
    pub fn from_json(text: &str) -> Result<Self, FieldError> {
        let mut de = serde_json::Deserializer::from_str(text);
        let json: T::Json =
            serde_path_to_error::deserialize(&mut de).map_err(FieldError::from_json)?;
        de.end()
            .map_err(|e| FieldError::new("(record)", format!("trailing characters: {e}")))?;
        let (body, sig) = T::from_json(json)?;
        Ok(Self { body, sig })
    }
}

impl<T: Body + Sync> Signed for Record<T> {
    fn signer(&self) -> &PublicKey {
        self.body.signer()
    }
    fn signature(&self) -> &Signature {
        &self.sig
    }
    fn write_message(&self, out: &mut Vec<u8>) {
        write_message(&self.body, out);
    }
}

fn write_message<T: Body>(body: &T, out: &mut Vec<u8>) {
    out.extend_from_slice(T::TAG);
    body.write(out);
}

/// The tag without its zero byte, for messages.
fn tag_name<T: Body>() -> String {
    String::from_utf8_lossy(T::TAG.strip_suffix(&[0]).unwrap_or(T::TAG)).into_owned()
}

/// Checks a JSON form's `v`: version 1 is the only one.
pub fn check_version(v: u64) -> Result<(), FieldError> {
    if v == 1 {
        Ok(())
    } else {
        Err(FieldError::new("v", format!("unknown version {v}")))
    }
}

/// The fields of a binary record, read in order; a record too short names the field that is
/// cut off.
pub struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    /// The fields of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self(bytes)
    }

    /// The next `N` bytes, as field `field`.
    pub fn take<const N: usize>(&mut self, field: &str) -> Result<[u8; N], FieldError> {
        if self.0.len() < N {
            return Err(FieldError::new(field, "the record ends inside this field"));
        }
        let (head, tail) = self.0.split_at(N);
        self.0 = tail;
        Ok(head.try_into().expect("split_at gave N bytes"))
    }

    /// A big-endian u16.
    pub fn u16(&mut self, field: &str) -> Result<u16, FieldError> {
        self.take(field).map(u16::from_be_bytes)
    }

    /// A big-endian u32.
    pub fn u32(&mut self, field: &str) -> Result<u32, FieldError> {
        self.take(field).map(u32::from_be_bytes)
    }

    /// A big-endian u64.
    pub fn u64(&mut self, field: &str) -> Result<u64, FieldError> {
        self.take(field).map(u64::from_be_bytes)
    }

    /// One byte.
    pub fn u8(&mut self, field: &str) -> Result<u8, FieldError> {
        self.take::<1>(field).map(|[b]| b)
    }

    /// A key.
    pub fn key(&mut self, field: &str) -> Result<PublicKey, FieldError> {
        self.take(field).map(PublicKey)
    }

    /// A hash (an id, a root or a digest).
    pub fn hash(&mut self, field: &str) -> Result<ContentHash, FieldError> {
        self.take(field).map(ContentHash)
    }

    /// A month: year u16, month u8.
    pub fn month(&mut self, field: &str) -> Result<Month, FieldError> {
        let year = self.u16(field)?;
        let month = self.u8(field)?;
        Month::new(year, month).map_err(|e| FieldError::new(field, e))
    }

    /// UTF-8 text after a u16 length.
    pub fn text(&mut self, field: &str) -> Result<String, FieldError> {
        let len = usize::from(self.u16(field)?);
        if self.0.len() < len {
            return Err(FieldError::new(field, "the record ends inside this field"));
        }
        let (text, tail) = self.0.split_at(len);
        self.0 = tail;
        String::from_utf8(text.to_vec())
            .map_err(|e| FieldError::new(field, format!("not UTF-8: {e}")))
    }
}

/// Writes a month as year u16, month u8.
pub fn write_month(month: Month, out: &mut Vec<u8>) {
    out.extend_from_slice(&month.year().to_be_bytes());
    out.push(month.month());
}

/// A root over a set of ids (`review.md`, "Words"): BLAKE3 of the count (u32) followed by the
/// ids in ascending byte order, without duplicates.
pub fn root(ids: impl IntoIterator<Item = ContentHash>) -> ContentHash {
    let mut ids: Vec<ContentHash> = ids.into_iter().collect();
    ids.sort_unstable();
    ids.dedup();
    let count = u32::try_from(ids.len()).expect("fewer than 2^32 ids in a root");
    let mut hasher = blake3::Hasher::new();
    hasher.update(&count.to_be_bytes());
    for id in &ids {
        hasher.update(&id.0);
    }
    ContentHash(*hasher.finalize().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_root_sorts_and_drops_duplicates() {
        let (a, b) = (ContentHash([1; 32]), ContentHash([2; 32]));
        let mut expected = 2u32.to_be_bytes().to_vec();
        expected.extend_from_slice(&a.0);
        expected.extend_from_slice(&b.0);
        assert_eq!(root([b, a, b]), ContentHash::of(&expected));
        assert_eq!(root([]), ContentHash::of(&0u32.to_be_bytes()));
    }

    #[test]
    fn fields_name_where_a_record_is_cut_off() {
        let mut f = Fields(&[0, 1, 2]);
        assert_eq!(f.u16("seq").unwrap(), 1);
        assert_eq!(f.u16("cluster").unwrap_err().field, "cluster");
        let mut f = Fields(&[0, 9, b'a']);
        assert_eq!(f.text("name").unwrap_err().field, "name");
    }
}
