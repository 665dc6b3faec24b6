//! Moving tracks between nodes: an iroh endpoint (QUIC, the node's seed as its EndpointId)
//! that serves the library's blob store with iroh-blobs, and fetches blobs from other nodes,
//! every byte verified against the BLAKE3 hash before the store keeps it.
//!
//! Loopback or given addresses only: no relays (`RelayMode::Disabled`), no address lookup, no
//! port mapping (iroh without default features), IP transports bound to the address given.
//! Provider discovery through the DHT and multi-provider range fetches build on this.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use iroh::endpoint::{Connection, QuicTransportConfig, RelayMode, presets};
use iroh::protocol::Router;
use iroh::{Endpoint, EndpointAddr, EndpointId, SecretKey};
use iroh_blobs::BlobsProtocol;
use iroh_blobs::protocol::{ChunkRanges, ChunkRangesExt, GetRequest};
use iroh_blobs::store::fs::FsStore;
use nineten_protocol::key::ContentHash;

use crate::Error;
use crate::fetch::{Outcome, Scores};
use crate::library::{Closing, Library};

/// A connection that stops answering is dropped after this long (a provider killed mid-stream
/// must not stall a fetch for QUIC's default 30 s).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(3);

/// How long a provider has to answer a first connection attempt (retries wait longer).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Rounds over the providers of a small blob before [`Transfer::fetch`] gives up.
pub const INDEX_ROUNDS: u32 = 3;

/// The node's iroh endpoint, serving its blobs; cheap to clone.
#[derive(Clone, Debug)]
pub struct Transfer {
    inner: Arc<Inner>,
}

/// A provider's connection, or the attempt to open it that callers share.
#[derive(Debug)]
enum Link {
    Open(Connection),
    Connecting(Shared<BoxFuture<'static, Result<Connection, String>>>),
}

#[derive(Debug)]
struct Inner {
    router: Router,
    store: FsStore,
    /// Set before the router closes the store.
    closing: Closing,
    /// Connections to providers, reused across fetches.
    connections: Mutex<HashMap<EndpointId, Link>>,
    scores: Mutex<Scores>,
}

impl Transfer {
    /// Binds an endpoint at `bind` (e.g. `127.0.0.1:0`) with the node's seed and serves the
    /// library's blobs on it.
    pub async fn start(
        seed: &[u8; 32],
        bind: SocketAddr,
        library: &Library,
    ) -> Result<Self, Error> {
        let err = |op: &'static str| {
            move |e: &dyn std::fmt::Display| Error::Blobs {
                op,
                reason: e.to_string(),
            }
        };
        let transport = QuicTransportConfig::builder()
            .max_idle_timeout(Some(
                IDLE_TIMEOUT
                    .try_into()
                    .map_err(|e| err("configuring QUIC")(&e))?,
            ))
            .keep_alive_interval(Duration::from_secs(1))
            .build();
        let endpoint = Endpoint::builder(presets::Minimal)
            .secret_key(SecretKey::from_bytes(seed))
            .relay_mode(RelayMode::Disabled)
            .clear_ip_transports()
            .bind_addr(bind)
            .map_err(|e| err("binding the endpoint")(&e))?
            .transport_config(transport)
            .alpns(vec![iroh_blobs::ALPN.to_vec()])
            .bind()
            .await
            .map_err(|e| err("binding the endpoint")(&e))?;
        let blobs = BlobsProtocol::new(library.blobs(), None);
        let router = Router::builder(endpoint)
            .accept(iroh_blobs::ALPN, blobs)
            .spawn();
        Ok(Self {
            inner: Arc::new(Inner {
                router,
                store: library.blobs().clone(),
                closing: library.closing(),
                connections: Mutex::new(HashMap::new()),
                scores: Mutex::new(Scores::default()),
            }),
        })
    }

    /// Where other nodes reach this one: its EndpointId and bound addresses.
    pub fn addr(&self) -> EndpointAddr {
        self.inner.router.endpoint().addr()
    }

    pub(crate) fn store(&self) -> &FsStore {
        &self.inner.store
    }

    /// An open connection to `addr`, reused if there is one; a new attempt gets `patience`
    /// to succeed. Callers asking at once share one attempt: a fetch's workers and its seek
    /// index ask together, and many handshakes with one busy provider would only slow it down
    /// further.
    pub(crate) async fn connection(
        &self,
        addr: EndpointAddr,
        patience: Duration,
    ) -> Result<Connection, Error> {
        let id = addr.id;
        let attempt = {
            let mut links = self.lock_connections();
            match links.get(&id) {
                Some(Link::Open(conn)) if conn.close_reason().is_none() => {
                    return Ok(conn.clone());
                }
                Some(Link::Connecting(attempt)) => attempt.clone(),
                _ => {
                    let endpoint = self.inner.router.endpoint().clone();
                    // A task of its own, so that it goes on when the caller gives up.
                    let task = tokio::spawn(async move {
                        let connect = endpoint.connect(addr, iroh_blobs::ALPN);
                        match tokio::time::timeout(patience, connect).await {
                            Ok(Ok(conn)) => Ok(conn),
                            Ok(Err(e)) => Err(e.to_string()),
                            Err(_) => Err(format!("no answer within {patience:?}")),
                        }
                    });
                    let attempt = async move {
                        task.await
                            .unwrap_or_else(|e| Err(format!("the connecting task failed: {e}")))
                    }
                    .boxed()
                    .shared();
                    links.insert(id, Link::Connecting(attempt.clone()));
                    attempt
                }
            }
        };
        let result = attempt.clone().await;
        let mut links = self.lock_connections();
        // Unless a later attempt took its place meanwhile.
        if matches!(links.get(&id), Some(Link::Connecting(a)) if a.ptr_eq(&attempt)) {
            match &result {
                Ok(conn) => links.insert(id, Link::Open(conn.clone())),
                Err(_) => links.remove(&id),
            };
        }
        result.map_err(|reason| Error::Blobs {
            op: "connecting to a provider",
            reason,
        })
    }

    fn lock_connections(&self) -> std::sync::MutexGuard<'_, HashMap<EndpointId, Link>> {
        self.inner
            .connections
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    fn lock_scores(&self) -> std::sync::MutexGuard<'_, Scores> {
        self.inner.scores.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stops reusing a provider's connection (after it failed); it closes once no fetch
    /// holds it.
    pub(crate) fn forget_connection(&self, id: EndpointId) {
        self.lock_connections().remove(&id);
    }

    /// Remembers that `id` sent data that failed verification.
    pub(crate) fn mark_corrupt(&self, id: EndpointId) {
        self.lock_scores().mark_corrupt(id);
    }

    /// Whether `id` was caught sending bad data (within [`crate::fetch::CORRUPT_BAN`]).
    pub fn is_corrupt(&self, id: &EndpointId) -> bool {
        self.lock_scores().is_corrupt(id)
    }

    pub(crate) fn record_speed(&self, id: EndpointId, took: Duration) {
        self.lock_scores().record(id, took);
    }

    /// The providers worth asking, fastest known first; those caught sending bad data are
    /// left out, and so is this node.
    pub fn rank(&self, mut providers: Vec<EndpointAddr>) -> Vec<EndpointAddr> {
        let me = self.inner.router.endpoint().id();
        providers.retain(|p| p.id != me);
        self.lock_scores().rank(providers)
    }

    /// The verified chunk ranges of `blob` the store holds (none if it knows nothing of it).
    pub(crate) async fn held(&self, blob: iroh_blobs::Hash) -> ChunkRanges {
        match self.inner.store.blobs().observe(blob).await {
            Ok(bitfield) => bitfield.ranges,
            Err(_) => ChunkRanges::empty(),
        }
    }

    /// Fetches a whole small blob (a seek index) of at most `cap` bytes from the first of
    /// `providers` that delivers it within `deadline`, verified; a provider that fails, stalls
    /// or sends bad data is left for the next. When every provider has failed, those that did
    /// not send bad data are asked again, up to [`INDEX_ROUNDS`] rounds in all, each with
    /// twice the deadline of the last: the only provider of a track a crowd just found is busy,
    /// not gone. Only the first `cap` bytes are ever asked for, so a blob larger than that is
    /// an error, whoever serves it. What the store holds already is not asked for.
    pub async fn fetch(
        &self,
        providers: &[EndpointAddr],
        blob: &ContentHash,
        cap: u64,
        deadline: Duration,
    ) -> Result<u64, Error> {
        let hash = iroh_blobs::Hash::from(blob.0);
        let mut reasons = Vec::new();
        let ranked = self.rank(providers.to_vec());
        let rounds: Vec<(u32, Duration, EndpointAddr)> = (0..INDEX_ROUNDS)
            .flat_map(|round| {
                let deadline = deadline * 2u32.pow(round);
                ranked.iter().map(move |p| (round, deadline, p.clone()))
            })
            .collect();
        for (round, deadline, p) in rounds {
            let id = p.id;
            if self.is_corrupt(&id) {
                continue;
            }
            let request = GetRequest::blob_ranges(hash, ChunkRanges::bytes(0..cap));
            let result = match tokio::time::timeout(deadline, async {
                let conn = self
                    .connection(p, CONNECT_TIMEOUT * 2u32.pow(round))
                    .await
                    .map_err(|e| Outcome::Failed(e.to_string()))?;
                self.inner
                    .store
                    .remote()
                    .execute_get(conn, request)
                    .await
                    .map_err(|e| crate::fetch::classify(&e))
            })
            .await
            {
                Ok(r) => r,
                Err(_) => Err(Outcome::Stalled),
            };
            match result {
                Ok(stats) => {
                    let complete = self.inner.store.has(hash).await.unwrap_or(false);
                    if !complete {
                        return Err(Error::TooLarge {
                            blob: blob.to_string(),
                            cap,
                        });
                    }
                    return Ok(stats.payload_bytes_read);
                }
                Err(outcome) => {
                    if outcome == Outcome::Corrupt {
                        self.mark_corrupt(id);
                    }
                    self.forget_connection(id);
                    reasons.push(format!("{}: {outcome:?}", id.fmt_short()));
                }
            }
        }
        Err(Error::Blobs {
            op: "fetching a blob",
            reason: if reasons.is_empty() {
                "no providers".to_string()
            } else {
                reasons.join("; ")
            },
        })
    }

    /// Stops serving and closes the endpoint and, with it, the library's blob store (the
    /// router's blobs protocol shuts it down): drop the library afterwards.
    pub async fn shutdown(&self) -> Result<(), Error> {
        let connections: Vec<Connection> = self
            .lock_connections()
            .drain()
            .filter_map(|(_, link)| match link {
                Link::Open(conn) => Some(conn),
                Link::Connecting(_) => None,
            })
            .collect();
        for c in connections {
            c.close(0u32.into(), b"bye");
        }
        self.inner.closing.set();
        self.inner
            .router
            .shutdown()
            .await
            .map_err(|e| Error::Blobs {
                op: "closing the endpoint",
                reason: e.to_string(),
            })
    }
}
