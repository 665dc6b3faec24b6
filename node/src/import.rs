//! An album of files to a signed release, ready for the library.
//!
//! Tracks decode, resample and encode in parallel (one per core); then they are ordered (by
//! their TRACKNUMBER tags when every file has a distinct one, else by file name), written as
//! tagged Ogg Opus streams with seek indexes, hashed, and described in a manifest signed by the
//! artist. Nothing is stored here: a failure leaves nothing behind.

use std::path::{Path, PathBuf};

use nineten_protocol::identity::Keypair;
use nineten_protocol::key::ContentHash;
use nineten_protocol::manifest::{Manifest, SignedManifest, Track};
use std::time::Instant;

use rayon::prelude::*;
use tracing::debug;

use crate::Error;
use crate::audio::encode::{self, Encoded, Settings};
use crate::audio::{OPUS_RATE, decode, ogg, resample};

/// File extensions picked up when a folder is imported.
pub const EXTENSIONS: [&str; 5] = ["wav", "flac", "mp3", "ogg", "oga"];

/// What an import needs besides the files.
#[derive(Clone, Debug)]
pub struct Release<'a> {
    /// The artist's key: signs the manifest.
    pub artist: &'a Keypair,
    /// The artist's name; when `None`, the first ARTIST tag found, else "Unknown artist".
    pub artist_name: Option<String>,
    /// The release's title.
    pub title: String,
    /// Encoder settings.
    pub settings: Settings,
    /// Publication time to state in the manifest, Unix milliseconds.
    pub published_at_ms: u64,
}

/// Where a track's import stands, for progress displays.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Stage {
    /// Reading and decoding the source file.
    Decoding,
    /// Encoding; the fraction done.
    Encoding(f32),
    /// Encoded.
    Done,
}

/// One encoded track: its Ogg Opus stream, seek index and manifest entry.
#[derive(Clone, Debug)]
pub struct PreparedTrack {
    /// The manifest's description of it.
    pub track: Track,
    /// The Ogg Opus stream.
    pub stream: Vec<u8>,
    /// The seek index's binary form.
    pub index: Vec<u8>,
}

/// A release ready to store.
#[derive(Clone, Debug)]
pub struct PreparedRelease {
    /// The signed manifest.
    pub manifest: SignedManifest,
    /// The tracks in manifest order.
    pub tracks: Vec<PreparedTrack>,
}

/// The audio files named: files as given, folders' files with a known extension, sorted.
pub fn collect_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Error> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let entries =
                std::fs::read_dir(path).map_err(|source| crate::audio::AudioError::Io {
                    path: path.clone(),
                    source,
                })?;
            let mut found: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && has_audio_extension(p))
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    if files.is_empty() {
        let named: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        return Err(Error::NoFiles(named.join(", ")));
    }
    Ok(files)
}

fn has_audio_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

struct Encoding {
    path: PathBuf,
    tags: decode::SourceTags,
    input_rate: u32,
    encoded: Encoded,
}

/// Encodes `files` as one release. `progress(i, stage)` reports on file `i` (in the order
/// given) from the worker threads.
pub fn prepare(
    files: &[PathBuf],
    release: &Release<'_>,
    progress: &(dyn Fn(usize, Stage) + Sync),
) -> Result<PreparedRelease, Error> {
    let encodings: Vec<Encoding> = files
        .par_iter()
        .enumerate()
        .map(|(i, path)| {
            progress(i, Stage::Decoding);
            let began = Instant::now();
            let decoded = decode::decode_file(path)?;
            let decode_time = began.elapsed();
            let input_rate = decoded.pcm.rate;
            let pcm = resample::to_opus_rate(decoded.pcm)?;
            let resample_time = began.elapsed() - decode_time;
            let encoded = encode::encode(&pcm, release.settings, &mut |f| {
                progress(i, Stage::Encoding(f))
            })?;
            debug!(
                file = %path.display(),
                ?decode_time,
                ?resample_time,
                encode_time = ?began.elapsed() - decode_time - resample_time,
                "track encoded"
            );
            progress(i, Stage::Done);
            Ok(Encoding {
                path: path.clone(),
                tags: decoded.tags,
                input_rate,
                encoded,
            })
        })
        .collect::<Result<_, Error>>()?;

    let numbered = number_tracks(encodings);
    let artist_name = release
        .artist_name
        .clone()
        .or_else(|| numbered.iter().find_map(|(_, e)| e.tags.artist.clone()))
        .unwrap_or_else(|| "Unknown artist".to_string());

    let tracks: Vec<PreparedTrack> = numbered
        .par_iter()
        .map(|(number, e)| {
            let title = e.tags.title.clone().unwrap_or_else(|| {
                e.path
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default()
            });
            let tags = ogg::Tags {
                title: title.clone(),
                artist: artist_name.clone(),
                album: release.title.clone(),
                track_number: *number,
            };
            let stream = ogg::write(&e.encoded, &tags, e.input_rate)?;
            let index = stream.index.to_bytes();
            let duration_ms = e.encoded.frames * 1000 / u64::from(OPUS_RATE);
            let track = Track {
                number: *number,
                title,
                hash: ContentHash::of(&stream.bytes),
                size: stream.bytes.len() as u64,
                duration_ms: u32::try_from(duration_ms.max(1)).unwrap_or(u32::MAX),
                channels: e.encoded.channels as u8,
                input_sample_rate: e.input_rate,
                bitrate: release.settings.bitrate,
                index: ContentHash::of(&index),
            };
            Ok(PreparedTrack {
                track,
                stream: stream.bytes,
                index,
            })
        })
        .collect::<Result<_, Error>>()?;

    let manifest = Manifest {
        artist: release.artist.public(),
        artist_name,
        title: release.title.clone(),
        published_at_ms: release.published_at_ms,
        tracks: tracks.iter().map(|t| t.track.clone()).collect(),
    }
    .sign(release.artist)?;
    Ok(PreparedRelease { manifest, tracks })
}

/// Orders tracks and gives them numbers: the files' TRACKNUMBER tags when every file has a
/// distinct non-zero one, else the order given, from 1.
fn number_tracks(mut encodings: Vec<Encoding>) -> Vec<(u16, Encoding)> {
    let mut numbers: Vec<u16> = encodings
        .iter()
        .filter_map(|e| e.tags.track_number)
        .collect();
    numbers.sort_unstable();
    numbers.dedup();
    let tagged = numbers.len() == encodings.len() && numbers.first().is_some_and(|&n| n > 0);
    if tagged {
        encodings.sort_by_key(|e| e.tags.track_number);
        encodings
            .into_iter()
            .map(|e| (e.tags.track_number.expect("every file is tagged"), e))
            .collect()
    } else {
        encodings
            .into_iter()
            .zip(1u16..)
            .map(|(e, n)| (n, e))
            .collect()
    }
}
