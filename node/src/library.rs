//! The node's content: Ogg Opus streams and seek indexes in the iroh-blobs file store (so the
//! network layer can serve verified byte ranges of them), manifests and records in sled.
//!
//! Adding a release is all or nothing: every blob gets a named tag of the release (so no
//! garbage collection takes it), then the manifest is stored; if any step fails, the tags
//! added so far are removed and no manifest refers to the blobs.

use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use iroh_blobs::Hash;
use iroh_blobs::api::blobs::BlobReader;
use iroh_blobs::store::ProtectOutcome;
use iroh_blobs::store::fs::FsStore;
use nineten_protocol::key::ContentHash;
use nineten_protocol::manifest::{SignedManifest, Track};
use nineten_storage::Store;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tracing::{debug, warn};

use crate::Error;
use crate::audio::seek::SeekIndex;
use crate::config::DataDir;
use crate::import::PreparedRelease;

/// A track found in the library, with the release that lists it.
#[derive(Clone, Debug)]
pub struct TrackRef {
    /// The release's manifest.
    pub release: SignedManifest,
    /// The track's entry in it.
    pub track: Track,
}

/// A blob read with blocking calls, for decoders that take `std::io::Read + Seek`.
pub struct StreamReader {
    inner: BlobReader,
    handle: tokio::runtime::Handle,
}

impl std::fmt::Debug for StreamReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StreamReader({})", self.inner.hash())
    }
}

impl Read for StreamReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.handle.block_on(self.inner.read(buf))
    }
}

impl Seek for StreamReader {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.handle.block_on(self.inner.seek(pos))
    }
}

/// The node's stores.
#[derive(Debug)]
pub struct Library {
    blobs: FsStore,
    store: Store,
    closing: Closing,
}

/// Set once the blob store is closing: its garbage collector, which runs on its own task,
/// then skips its runs instead of failing on the closed store (and logging an error).
#[derive(Clone, Debug, Default)]
pub(crate) struct Closing(Arc<AtomicBool>);

impl Closing {
    /// The store is about to close.
    pub(crate) fn set(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    fn is_set(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// How often the blob store frees blobs no tag keeps.
pub const GC_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

fn hash(h: &ContentHash) -> Hash {
    Hash::from(h.0)
}

fn tag(release: &ContentHash, blob: &ContentHash) -> String {
    format!("9ten/release/{release}/{blob}")
}

impl Library {
    /// Opens (creating if needed) the stores in `dir`.
    pub async fn open(dir: &DataDir) -> Result<Self, Error> {
        let store = Store::open(&dir.store())?;
        // Garbage collection frees what no tag keeps: tracks dropped from the cache.
        let mut options = iroh_blobs::store::fs::options::Options::new(&dir.blobs());
        let closing = Closing::default();
        let skip = closing.clone();
        options.gc = Some(iroh_blobs::store::GcConfig {
            interval: GC_INTERVAL,
            add_protected: Some(Arc::new(move |_| {
                let outcome = if skip.is_set() {
                    ProtectOutcome::Abort
                } else {
                    ProtectOutcome::Continue
                };
                Box::pin(async move { outcome })
            })),
        });
        let blobs = FsStore::load_with_opts(dir.blobs().join("blobs.db"), options)
            .await
            .map_err(|e| Error::blobs("opening the blob store")(&e))?;
        Ok(Self {
            blobs,
            store,
            closing,
        })
    }

    /// The record store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The blob store, for the transfer layer.
    pub(crate) fn blobs(&self) -> &FsStore {
        &self.blobs
    }

    /// The switch that quiets the garbage collector when the blob store closes, for whoever
    /// closes it (the transfer layer's router does).
    pub(crate) fn closing(&self) -> Closing {
        self.closing.clone()
    }

    /// Stores a release manifest received from elsewhere (its blobs may come later), after
    /// checking the artist's signature.
    pub fn add_manifest(&self, manifest: &SignedManifest) -> Result<ContentHash, Error> {
        if !nineten_protocol::signature::verify_record(manifest) {
            return Err(Error::Manifest(nineten_protocol::FieldError::new(
                "sig",
                "the artist's signature does not verify",
            )));
        }
        Ok(self.store.put_manifest(manifest)?)
    }

    /// Stores a prepared release; returns its release id.
    pub async fn add_release(&self, release: &PreparedRelease) -> Result<ContentHash, Error> {
        let id = release.manifest.id();
        let mut tags = Vec::new();
        let result = self.add_blobs(&id, release, &mut tags).await;
        let result = match result {
            Ok(()) => self
                .store
                .put_manifest(&release.manifest)
                .map_err(Error::from),
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            for t in &tags {
                if let Err(cleanup) = self.blobs.tags().delete(t).await {
                    warn!(tag = %t, "could not remove the tag of a failed import: {cleanup}");
                }
            }
            return Err(e);
        }
        debug!(release = %id, "release stored");
        Ok(id)
    }

    async fn add_blobs(
        &self,
        id: &ContentHash,
        release: &PreparedRelease,
        tags: &mut Vec<String>,
    ) -> Result<(), Error> {
        for t in &release.tracks {
            for (blob, bytes) in [(&t.track.hash, &t.stream), (&t.track.index, &t.index)] {
                let name = tag(id, blob);
                let stored = self
                    .blobs
                    .add_bytes(bytes.clone())
                    .with_named_tag(&name)
                    .await
                    .map_err(|e| Error::blobs("adding a track")(&e))?;
                tags.push(name);
                if stored.hash != hash(blob) {
                    return Err(Error::Damaged {
                        track: blob.to_string(),
                        reason: "the blob store computed another hash".to_string(),
                    });
                }
            }
        }
        Ok(())
    }

    /// Every release in the library.
    pub fn releases(&self) -> Result<Vec<SignedManifest>, Error> {
        Ok(self.store.manifests()?)
    }

    /// The release whose id is `query` or starts with it (at least 4 hex characters).
    pub fn find_release(&self, query: &str) -> Result<SignedManifest, Error> {
        match by_prefix(self.releases()?, SignedManifest::id, query) {
            Matched::One(m) => Ok(m),
            Matched::Several => Err(Error::AmbiguousRelease(query.to_ascii_lowercase())),
            Matched::None => Err(Error::UnknownRelease(query.to_ascii_lowercase())),
        }
    }

    /// The track a listener asks for, with the release it is played from (whose artist its
    /// receipts pay): `RELEASE/NUMBER` (a release id or its start, and a track number), or a
    /// track's hash or the start of it (at least 4 hex characters). A bare hash that releases
    /// of different artists list is an error naming those releases: the listener must choose.
    pub fn find_track(&self, query: &str) -> Result<TrackRef, Error> {
        if let Some((release, number)) = query.split_once('/') {
            let release = self.find_release(release)?;
            let number: u16 = number
                .parse()
                .map_err(|_| Error::UnknownTrack(query.to_string()))?;
            let track = release
                .manifest
                .tracks
                .iter()
                .find(|t| t.number == number)
                .cloned()
                .ok_or_else(|| Error::UnknownTrack(query.to_string()))?;
            return Ok(TrackRef { release, track });
        }
        let query = query.to_ascii_lowercase();
        if query.len() < 4 || !query.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(Error::UnknownTrack(query));
        }
        let mut found: Vec<TrackRef> = Vec::new();
        for release in self.releases()? {
            for track in &release.manifest.tracks {
                if track.hash.to_string().starts_with(&query) {
                    if found.first().is_some_and(|f| f.track.hash != track.hash) {
                        return Err(Error::AmbiguousTrack(query));
                    }
                    found.push(TrackRef {
                        release: release.clone(),
                        track: track.clone(),
                    });
                }
            }
        }
        let first = found.first().ok_or(Error::UnknownTrack(query))?;
        let artist = first.release.manifest.artist;
        if found.iter().any(|f| f.release.manifest.artist != artist) {
            return Err(Error::ContestedTrack {
                track: first.track.hash.to_string(),
                choices: found
                    .iter()
                    .map(|f| {
                        format!(
                            "{}/{} ({}, artist {})",
                            f.release.id(),
                            f.track.number,
                            f.release.manifest.artist_name,
                            f.release.manifest.artist
                        )
                    })
                    .collect(),
            });
        }
        Ok(found.swap_remove(0))
    }

    /// The seek index of the track whose stream is `blob`, if the catalog lists it.
    pub fn index_of(&self, blob: &ContentHash) -> Result<Option<ContentHash>, Error> {
        Ok(self
            .releases()?
            .into_iter()
            .flat_map(|r| r.manifest.tracks)
            .find(|t| t.hash == *blob)
            .map(|t| t.index))
    }

    /// A track's whole Ogg Opus stream, verified against its hash by the blob store.
    pub async fn stream(&self, track: &Track) -> Result<Bytes, Error> {
        self.blobs
            .get_bytes(hash(&track.hash))
            .await
            .map_err(|e| Error::Damaged {
                track: track.hash.to_string(),
                reason: e.to_string(),
            })
    }

    /// A track's stream, read on demand (buffered, 64 KiB at a time) rather than loaded whole,
    /// so playback starts as soon as the first page is in. The reader blocks: use it from
    /// `spawn_blocking` or a thread of its own, never from async code. Must be called within
    /// the runtime.
    pub fn reader(&self, track: &Track) -> BufReader<StreamReader> {
        BufReader::with_capacity(64 * 1024, self.blob_reader(&track.hash))
    }

    /// A blob read on demand, unbuffered, with blocking calls (see [`Library::reader`]); a
    /// range the store does not hold fails at once.
    pub fn blob_reader(&self, blob: &ContentHash) -> StreamReader {
        StreamReader {
            inner: self.blobs.blobs().reader(hash(blob)),
            handle: tokio::runtime::Handle::current(),
        }
    }

    /// A track's seek index.
    pub async fn seek_index(&self, track: &Track) -> Result<SeekIndex, Error> {
        let damaged = |reason: String| Error::Damaged {
            track: track.hash.to_string(),
            reason,
        };
        let bytes = self
            .blobs
            .get_bytes(hash(&track.index))
            .await
            .map_err(|e| damaged(e.to_string()))?;
        SeekIndex::from_bytes(&bytes).map_err(|e| damaged(e.to_string()))
    }

    /// Writes a track's Ogg Opus stream to `path`.
    pub async fn export(&self, track: &Track, path: &Path) -> Result<u64, Error> {
        let bytes = self.stream(track).await?;
        std::fs::write(path, &bytes).map_err(|source| crate::audio::AudioError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(bytes.len() as u64)
    }

    /// Whether the blob store holds this blob completely.
    pub async fn has_blob(&self, blob: &ContentHash) -> Result<bool, Error> {
        self.blobs
            .has(hash(blob))
            .await
            .map_err(|e| Error::blobs("looking up a blob")(&e))
    }

    /// Closes the blob store cleanly.
    pub async fn shutdown(self) -> Result<(), Error> {
        self.closing.set();
        self.blobs
            .shutdown()
            .await
            .map_err(|e| Error::blobs("shutting down")(&e))
    }
}

/// What an id query matched.
pub(crate) enum Matched<T> {
    /// Exactly this one.
    One(T),
    /// More than one.
    Several,
    /// None, or the query is shorter than 4 characters.
    None,
}

/// The item whose id (as hex) is `query` or starts with it, given at least 4 characters.
pub(crate) fn by_prefix<T>(
    items: impl IntoIterator<Item = T>,
    id: impl Fn(&T) -> ContentHash,
    query: &str,
) -> Matched<T> {
    let query = query.to_ascii_lowercase();
    if query.len() < 4 {
        return Matched::None;
    }
    let mut found = items
        .into_iter()
        .filter(|item| id(item).to_string().starts_with(&query));
    match (found.next(), found.next()) {
        (Some(item), None) => Matched::One(item),
        (Some(_), Some(_)) => Matched::Several,
        _ => Matched::None,
    }
}
