//! Moving tracks between nodes: an iroh endpoint (QUIC, the node's seed as its EndpointId)
//! that serves the library's blob store with iroh-blobs, and fetches blobs from other nodes,
//! every byte verified against the BLAKE3 hash before the store keeps it.
//!
//! Loopback or given addresses only: no relays (`RelayMode::Disabled`), no address lookup, no
//! port mapping (iroh without default features), IP transports bound to the address given.
//! Provider discovery through the DHT and multi-provider range fetches build on this.

use std::net::SocketAddr;
use std::time::Duration;

use iroh::endpoint::{QuicTransportConfig, RelayMode, presets};
use iroh::protocol::Router;
use iroh::{Endpoint, EndpointAddr, SecretKey};
use iroh_blobs::BlobsProtocol;
use nineten_protocol::key::ContentHash;

use crate::Error;
use crate::library::Library;

/// A connection that stops answering is dropped after this long (a provider killed mid-stream
/// must not stall a fetch for QUIC's default 30 s).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(3);

/// The node's iroh endpoint, serving its blobs.
#[derive(Debug)]
pub struct Transfer {
    router: Router,
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
        Ok(Self { router })
    }

    /// Where other nodes reach this one: its EndpointId and bound addresses.
    pub fn addr(&self) -> EndpointAddr {
        self.router.endpoint().addr()
    }

    /// Fetches a whole blob from `from` into the library, verified; returns the bytes read.
    pub async fn fetch(
        &self,
        library: &Library,
        from: EndpointAddr,
        blob: &ContentHash,
    ) -> Result<u64, Error> {
        let conn = self
            .router
            .endpoint()
            .connect(from, iroh_blobs::ALPN)
            .await
            .map_err(|e| Error::Blobs {
                op: "connecting to a provider",
                reason: e.to_string(),
            })?;
        let stats = library
            .blobs()
            .remote()
            .fetch(conn.clone(), iroh_blobs::Hash::from(blob.0))
            .await
            .map_err(|e| Error::Blobs {
                op: "fetching a blob",
                reason: e.to_string(),
            })?;
        conn.close(0u32.into(), b"done");
        Ok(stats.payload_bytes_read)
    }

    /// Stops serving, closes the endpoint and, with it, the library: the router's blobs
    /// protocol shuts the blob store down, so the library is taken here rather than closed
    /// twice.
    pub async fn shutdown(self, library: Library) -> Result<(), Error> {
        let result = self.router.shutdown().await.map_err(|e| Error::Blobs {
            op: "closing the endpoint",
            reason: e.to_string(),
        });
        drop(library);
        result
    }
}
