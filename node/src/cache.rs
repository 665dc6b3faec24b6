//! The cache of tracks fetched from peers. A track's blobs get a cache tag before the first
//! byte is fetched (so the blob store's garbage collection leaves them alone), an entry in the
//! record store when played (size, last use), and a DHT provider record once complete. Over
//! the size limit, the least recently played tracks go first: their tags and provider records
//! are removed and the blob store's garbage collection frees the space. A release imported on
//! this node is never in the cache: its blobs carry the release's own tags.

use nineten_protocol::key::ContentHash;
use nineten_protocol::manifest::Track;
use nineten_storage::CacheEntry;
use tracing::{debug, warn};

use crate::Error;
use crate::library::Library;
use crate::net;

fn tag(blob: &ContentHash) -> String {
    format!("9ten/cache/{blob}")
}

/// Tags a track's blobs as cached, before they are fetched.
pub(crate) async fn admit(library: &Library, track: &Track) -> Result<(), Error> {
    for blob in [&track.hash, &track.index] {
        library
            .blobs()
            .tags()
            .set(tag(blob), iroh_blobs::Hash::from(blob.0))
            .await
            .map_err(|e| Error::blobs("tagging a cached track")(&e))?;
    }
    Ok(())
}

/// Records that a cached track was played now; once it is complete, provides it; then trims
/// the cache to `limit` bytes (never dropping `track` itself). Returns the tracks dropped.
pub(crate) async fn played(
    library: &Library,
    net: &net::Client,
    track: &Track,
    complete: bool,
    limit: u64,
    now_ms: u64,
) -> Result<Vec<ContentHash>, Error> {
    library.store().put_cached(&CacheEntry {
        blob: track.hash,
        size: track.size,
        used_at_ms: now_ms,
    })?;
    if complete {
        // Announced in the background: the listen need not wait for the DHT.
        let (net, blobs) = (net.clone(), [track.hash, track.index]);
        tokio::spawn(async move {
            for blob in blobs {
                if let Err(e) = net.provide(blob).await {
                    warn!(%blob, "could not announce a cached track: {e}");
                }
            }
        });
    }
    let entries = library.store().cached()?;
    let mut total: u64 = entries.iter().map(|e| e.size).sum();
    let mut dropped = Vec::new();
    for entry in entries {
        if total <= limit {
            break;
        }
        if entry.blob == track.hash {
            continue;
        }
        drop_track(library, net, &entry.blob).await?;
        total -= entry.size;
        dropped.push(entry.blob);
    }
    Ok(dropped)
}

/// Removes a track (and its seek index) from the cache.
async fn drop_track(library: &Library, net: &net::Client, blob: &ContentHash) -> Result<(), Error> {
    let index = library.index_of(blob)?;
    for b in std::iter::once(*blob).chain(index) {
        let _ = net.stop_providing(b).await;
        library
            .blobs()
            .tags()
            .delete(tag(&b))
            .await
            .map_err(|e| Error::blobs("untagging a cached track")(&e))?;
    }
    library.store().remove_cached(blob)?;
    debug!(%blob, "dropped from the cache");
    Ok(())
}
