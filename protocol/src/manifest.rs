//! The release manifest: the artist-signed description of a release, in the same style as the
//! records of `records.md` (a domain tag, big-endian integers, length-prefixed UTF-8), with a
//! binary form and a JSON form. Documented in `docs/records.md`.
//!
//! A manifest names every track by the BLAKE3 hash of its Ogg Opus stream, so a node that
//! fetches a track from any peer can check it came from the artist.

use serde::{Deserialize, Serialize};

use crate::error::FieldError;
use crate::identity::Keypair;
use crate::key::{ContentHash, PublicKey, Signature};
use crate::signature::Signed;

/// Domain tag that starts every manifest's signed message.
pub const MANIFEST_TAG: &[u8; 16] = b"9ten/release/v1\0";

/// Most bytes a track's stream may have: 1 GiB (4.6 hours at the highest bitrate).
pub const MAX_TRACK_BYTES: u64 = 1 << 30;
/// Lowest target bitrate a manifest may state (libopus's floor), bits per second.
pub const MIN_BITRATE: u32 = 6_000;
/// Highest target bitrate a manifest may state (libopus's ceiling), bits per second.
pub const MAX_BITRATE: u32 = 510_000;
/// Bytes allowed for a stream's headers beside its audio: OpusHead, OpusTags with the
/// longest texts a manifest allows, and their Ogg pages.
pub const HEADER_BYTES: u64 = 256 << 10;
/// Most audio bytes per millisecond: 512 kbit/s plus 1/32 for Ogg's page headers and lacing
/// (66 bytes a millisecond).
pub const MAX_BYTES_PER_MS: u64 = 512_000 / 8 / 1000 * 33 / 32;
/// Fewest milliseconds a byte of stream may stand for: an Opus packet of 20 ms is at least one
/// byte, so a stream has at least `duration_ms / 20` bytes.
pub const MAX_MS_PER_BYTE: u64 = 20;

/// One track of a release.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Track {
    /// Position on the release, from 1, strictly increasing through the manifest.
    pub number: u16,
    /// The track's title.
    pub title: String,
    /// BLAKE3 of the track's Ogg Opus stream: its content id.
    pub hash: ContentHash,
    /// Size of the Ogg Opus stream in bytes.
    pub size: u64,
    /// Playing time in milliseconds (more than 0).
    pub duration_ms: u32,
    /// Channels: 1 (mono) or 2 (stereo).
    pub channels: u8,
    /// Sample rate of the artist's source file, in Hz (Opus itself always runs at 48 kHz).
    pub input_sample_rate: u32,
    /// Target Opus bitrate in bits per second.
    pub bitrate: u32,
    /// BLAKE3 of the track's seek index (granule position to byte offset).
    pub index: ContentHash,
}

/// A release as its artist describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// The artist's key, which signs the manifest.
    pub artist: PublicKey,
    /// The artist's name as shown to listeners.
    pub artist_name: String,
    /// The release's title (not empty).
    pub title: String,
    /// When the artist published it, Unix milliseconds.
    pub published_at_ms: u64,
    /// The tracks, at least one, in order.
    pub tracks: Vec<Track>,
}

/// A manifest with one signature of the artist's: copies with the same [`Manifest`] are one
/// release, with one [`SignedManifest::id`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedManifest {
    /// What is signed.
    pub manifest: Manifest,
    /// The artist's signature over [`Manifest::message`].
    pub sig: Signature,
}

impl Manifest {
    /// Checks what the types cannot: lengths, a title, track numbering, channels, duration.
    pub fn validate(&self) -> Result<(), FieldError> {
        text_len("artist_name", &self.artist_name)?;
        text_len("title", &self.title)?;
        if self.title.is_empty() {
            return Err(FieldError::new("title", "a release needs a title"));
        }
        if self.tracks.is_empty() || self.tracks.len() > usize::from(u16::MAX) {
            return Err(FieldError::new("tracks", "between 1 and 65535 tracks"));
        }
        let mut previous = 0u16;
        for (i, track) in self.tracks.iter().enumerate() {
            let field = |name: &str| format!("tracks[{i}].{name}");
            text_len(&field("title"), &track.title)?;
            if track.number <= previous {
                return Err(FieldError::new(
                    field("number"),
                    "track numbers start at 1 and increase",
                ));
            }
            previous = track.number;
            if !matches!(track.channels, 1 | 2) {
                return Err(FieldError::new(field("channels"), "must be 1 or 2"));
            }
            if track.duration_ms == 0 {
                return Err(FieldError::new(field("duration_ms"), "must be more than 0"));
            }
        }
        self.check_bounds()
    }

    /// Checks that every track's `size`, `duration_ms` and `bitrate` agree with one another
    /// and stay within bounds, so that no peer's manifest makes a node allocate, fetch or
    /// believe absurd amounts: `bitrate` is 6,000 to 510,000; `size` is at most
    /// [`MAX_TRACK_BYTES`], at least `duration_ms / 20` (one byte per 20 ms packet) and at
    /// most [`HEADER_BYTES`] + 66 × `duration_ms` (512 kbit/s and Ogg's overhead). Pure;
    /// [`Manifest::validate`] (and so every parse) calls it. The error names the field.
    pub fn check_bounds(&self) -> Result<(), FieldError> {
        for (i, t) in self.tracks.iter().enumerate() {
            let field = |name: &str| format!("tracks[{i}].{name}");
            if !(MIN_BITRATE..=MAX_BITRATE).contains(&t.bitrate) {
                return Err(FieldError::new(
                    field("bitrate"),
                    format!(
                        "{} bit/s is outside {MIN_BITRATE} to {MAX_BITRATE}",
                        t.bitrate
                    ),
                ));
            }
            if t.size > MAX_TRACK_BYTES {
                return Err(FieldError::new(
                    field("size"),
                    format!("{} bytes, at most {MAX_TRACK_BYTES} allowed", t.size),
                ));
            }
            let ms = u64::from(t.duration_ms);
            let most = HEADER_BYTES + ms * MAX_BYTES_PER_MS;
            if t.size > most {
                return Err(FieldError::new(
                    field("size"),
                    format!(
                        "{} bytes for {ms} ms is above 512 kbit/s: at most {most} bytes",
                        t.size
                    ),
                ));
            }
            let least = ms / MAX_MS_PER_BYTE;
            if t.size < least {
                return Err(FieldError::new(
                    field("size"),
                    format!(
                        "{} bytes cannot hold {ms} ms of Opus: at least {least} bytes",
                        t.size
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The exact signed message. Call [`Manifest::validate`] first: lengths must fit.
    pub fn message(&self) -> Vec<u8> {
        let mut m = Vec::with_capacity(128 + self.tracks.len() * 128);
        self.write_message(&mut m);
        m
    }

    fn write_message(&self, m: &mut Vec<u8>) {
        m.extend_from_slice(MANIFEST_TAG);
        m.extend_from_slice(&self.artist.0);
        put_text(m, &self.artist_name);
        put_text(m, &self.title);
        m.extend_from_slice(&self.published_at_ms.to_be_bytes());
        let count = u16::try_from(self.tracks.len()).expect("validated: at most 65535 tracks");
        m.extend_from_slice(&count.to_be_bytes());
        for t in &self.tracks {
            m.extend_from_slice(&t.number.to_be_bytes());
            put_text(m, &t.title);
            m.extend_from_slice(&t.hash.0);
            m.extend_from_slice(&t.size.to_be_bytes());
            m.extend_from_slice(&t.duration_ms.to_be_bytes());
            m.push(t.channels);
            m.extend_from_slice(&t.input_sample_rate.to_be_bytes());
            m.extend_from_slice(&t.bitrate.to_be_bytes());
            m.extend_from_slice(&t.index.0);
        }
    }

    /// Validates and signs with the artist's key.
    pub fn sign(self, artist: &Keypair) -> Result<SignedManifest, FieldError> {
        self.validate()?;
        if artist.public() != self.artist {
            return Err(FieldError::new(
                "artist",
                "the signing key is not the artist's",
            ));
        }
        Ok(SignedManifest {
            sig: artist.sign(&self.message()),
            manifest: self,
        })
    }
}

impl SignedManifest {
    /// The binary form: signed message then signature.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = self.manifest.message();
        b.extend_from_slice(&self.sig.0);
        b
    }

    /// The release id: BLAKE3 of the signed message alone (the signature excluded), the rule
    /// of `records.md` for every record.
    pub fn id(&self) -> ContentHash {
        ContentHash::of(&self.manifest.message())
    }

    /// Reads the binary form; every length is checked against what is left.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, FieldError> {
        let mut c = Cursor(bytes);
        if c.take("tag", 16)? != MANIFEST_TAG {
            return Err(FieldError::new("tag", "not a 9ten/release/v1 manifest"));
        }
        let artist = PublicKey(c.array("artist")?);
        let artist_name = c.text("artist_name")?;
        let title = c.text("title")?;
        let published_at_ms = u64::from_be_bytes(c.array("published_at_ms")?);
        let count = u16::from_be_bytes(c.array("tracks")?);
        let mut tracks = Vec::with_capacity(usize::from(count).min(bytes.len() / 100));
        for _ in 0..count {
            tracks.push(Track {
                number: u16::from_be_bytes(c.array("number")?),
                title: c.text("title")?,
                hash: ContentHash(c.array("hash")?),
                size: u64::from_be_bytes(c.array("size")?),
                duration_ms: u32::from_be_bytes(c.array("duration_ms")?),
                channels: c.array::<1>("channels")?[0],
                input_sample_rate: u32::from_be_bytes(c.array("input_sample_rate")?),
                bitrate: u32::from_be_bytes(c.array("bitrate")?),
                index: ContentHash(c.array("index")?),
            });
        }
        let sig = Signature(c.array("sig")?);
        if !c.0.is_empty() {
            return Err(FieldError::new("sig", "bytes after the signature"));
        }
        let manifest = Manifest {
            artist,
            artist_name,
            title,
            published_at_ms,
            tracks,
        };
        manifest.validate()?;
        Ok(Self { manifest, sig })
    }

    /// The JSON form (pretty-printed: manifests are read by people too).
    pub fn to_json(&self) -> String {
        let m = &self.manifest;
        serde_json::to_string_pretty(&ManifestJson {
            v: 1,
            artist: m.artist,
            artist_name: m.artist_name.clone(),
            title: m.title.clone(),
            published_at_ms: m.published_at_ms,
            tracks: m.tracks.clone(),
            sig: self.sig,
        })
        .expect("a manifest always serializes")
    }

    /// Reads the JSON form; errors name the field (`tracks[2].channels`).
    pub fn from_json(text: &str) -> Result<Self, FieldError> {
        let mut de = serde_json::Deserializer::from_str(text);
        let j: ManifestJson =
            serde_path_to_error::deserialize(&mut de).map_err(FieldError::from_json)?;
        de.end()
            .map_err(|e| FieldError::new("(record)", format!("trailing characters: {e}")))?;
        if j.v != 1 {
            return Err(FieldError::new("v", format!("unknown version {}", j.v)));
        }
        let manifest = Manifest {
            artist: j.artist,
            artist_name: j.artist_name,
            title: j.title,
            published_at_ms: j.published_at_ms,
            tracks: j.tracks,
        };
        manifest.validate()?;
        Ok(Self {
            manifest,
            sig: j.sig,
        })
    }
}

impl Signed for SignedManifest {
    fn signer(&self) -> &PublicKey {
        &self.manifest.artist
    }
    fn signature(&self) -> &Signature {
        &self.sig
    }
    fn write_message(&self, out: &mut Vec<u8>) {
        self.manifest.write_message(out);
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestJson {
    v: u64,
    artist: PublicKey,
    artist_name: String,
    title: String,
    published_at_ms: u64,
    tracks: Vec<Track>,
    sig: Signature,
}

fn text_len(field: &str, text: &str) -> Result<(), FieldError> {
    if text.len() > usize::from(u16::MAX) {
        return Err(FieldError::new(
            field,
            format!("{} bytes, at most 65535 allowed", text.len()),
        ));
    }
    Ok(())
}

fn put_text(m: &mut Vec<u8>, text: &str) {
    let len = u16::try_from(text.len()).expect("validated: texts fit a u16 length");
    m.extend_from_slice(&len.to_be_bytes());
    m.extend_from_slice(text.as_bytes());
}

/// Reads length-checked fields from untrusted bytes.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, field: &str, n: usize) -> Result<&'a [u8], FieldError> {
        if self.0.len() < n {
            return Err(FieldError::new(field, "the manifest ends early"));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, field: &str) -> Result<[u8; N], FieldError> {
        Ok(self.take(field, N)?.try_into().expect("take gave N bytes"))
    }

    fn text(&mut self, field: &str) -> Result<String, FieldError> {
        let len = usize::from(u16::from_be_bytes(self.array(field)?));
        let bytes = self.take(field, len)?;
        String::from_utf8(bytes.to_vec())
            .map_err(|e| FieldError::new(field, format!("not UTF-8: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SignedManifest {
        let artist = Keypair::from_seed([5; 32]);
        let track = |number: u16, title: &str| Track {
            number,
            title: title.to_string(),
            hash: ContentHash::of(title.as_bytes()),
            size: 3_000_000,
            duration_ms: 187_000,
            channels: 2,
            input_sample_rate: 44_100,
            bitrate: 128_000,
            index: ContentHash::of(b"index"),
        };
        Manifest {
            artist: artist.public(),
            artist_name: "Nó Signal".to_string(),
            title: "Loopback".to_string(),
            published_at_ms: 1_790_812_800_000,
            tracks: vec![track(1, "Hello"), track(2, "Wörld")],
        }
        .sign(&artist)
        .unwrap()
    }

    #[test]
    fn round_trips_and_verifies() {
        let m = sample();
        assert!(crate::signature::verify_record(&m));
        assert_eq!(SignedManifest::from_bytes(&m.to_bytes()).unwrap(), m);
        assert_eq!(SignedManifest::from_json(&m.to_json()).unwrap(), m);
    }

    #[test]
    fn truncated_or_tampered_bytes_fail_cleanly() {
        let m = sample();
        let bytes = m.to_bytes();
        for cut in 0..bytes.len() {
            assert!(
                SignedManifest::from_bytes(&bytes[..cut]).is_err(),
                "cut {cut}"
            );
        }
        let mut tampered = m.clone();
        tampered.manifest.tracks[1].duration_ms += 1;
        assert!(!crate::signature::verify_record(&tampered));
    }

    #[test]
    fn release_id_is_blake3_of_the_signed_message_alone() {
        let m = sample();
        assert_eq!(m.id(), ContentHash::of(&m.manifest.message()));
        let mut resigned = m.clone();
        resigned.sig.0[5] ^= 1;
        assert_eq!(resigned.id(), m.id());
        let mut other = m.clone();
        other.manifest.title.push('!');
        assert_ne!(other.id(), m.id());
    }

    #[test]
    fn sizes_durations_and_bitrates_must_agree() {
        let good = sample().manifest;
        assert_eq!(good.check_bounds(), Ok(()));
        let with = |f: &dyn Fn(&mut Track)| {
            let mut m = good.clone();
            f(&mut m.tracks[1]);
            m
        };
        // 187 s at 128 kbit/s is 3 MB; the bounds are 9,350 bytes and 12.6 MB.
        for (size, ok) in [
            (u64::MAX, false),
            (MAX_TRACK_BYTES + 1, false),
            (HEADER_BYTES + 187_000 * MAX_BYTES_PER_MS, true),
            (HEADER_BYTES + 187_000 * MAX_BYTES_PER_MS + 1, false),
            (187_000 / 20, true),
            (187_000 / 20 - 1, false),
            (0, false),
        ] {
            let m = with(&|t| t.size = size);
            let result = m.check_bounds();
            assert_eq!(result.is_ok(), ok, "size {size}: {result:?}");
            if !ok {
                assert_eq!(result.unwrap_err().field, "tracks[1].size");
            }
        }
        for bitrate in [0, 5_999, 510_001, u32::MAX] {
            let err = with(&|t| t.bitrate = bitrate).check_bounds().unwrap_err();
            assert_eq!(err.field, "tracks[1].bitrate");
        }
        // A long track claimed in a tiny stream.
        let err = with(&|t| t.duration_ms = u32::MAX)
            .check_bounds()
            .unwrap_err();
        assert_eq!(err.field, "tracks[1].size");

        // Signed by the artist or not, a manifest out of bounds does not parse.
        let artist = Keypair::from_seed([5; 32]);
        let bad = with(&|t| t.size = u64::MAX);
        assert!(bad.clone().sign(&artist).is_err());
        let forged = SignedManifest {
            sig: artist.sign(&bad.message()),
            manifest: bad,
        };
        let err = SignedManifest::from_bytes(&forged.to_bytes()).unwrap_err();
        assert_eq!(err.field, "tracks[1].size");
        assert_eq!(
            SignedManifest::from_json(&forged.to_json())
                .unwrap_err()
                .field,
            "tracks[1].size"
        );
    }

    #[test]
    fn validation_names_the_field() {
        let mut m = sample().manifest;
        m.tracks[1].number = 1;
        assert_eq!(m.validate().unwrap_err().field, "tracks[1].number");
        m.tracks[1].number = 2;
        m.tracks[0].channels = 6;
        assert_eq!(m.validate().unwrap_err().field, "tracks[0].channels");
    }
}
