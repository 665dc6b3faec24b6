//! Wire names and limits every 9ten implementation shares: gossip topics, protocol ids, DHT
//! keys and how a receipt is named in set reconciliation. A node that spells one of these
//! differently is on another network.

use crate::key::ContentHash;
use crate::month::Month;
use crate::receipt::SignedReceipt;

/// Kademlia protocol id (our own, so a node never joins another network's DHT).
pub const KAD_PROTOCOL: &str = "/9ten/kad/1.0.0";
/// The protocol version string nodes send in libp2p identify (`/ipfs/id/1.0.0`).
pub const IDENTIFY_VERSION: &str = "/9ten/id/1.0.0";
/// Request-response protocol: receipt set reconciliation (negentropy) and receipt fetches.
pub const RECEIPT_SYNC_PROTOCOL: &str = "/9ten/receipt-sync/2.0.0";
/// Request-response protocol: catalog catch-up (release ids, then manifests).
pub const CATALOG_PROTOCOL: &str = "/9ten/catalog/2.0.0";
/// Request-response protocol: node record catch-up (ids, then records).
pub const NODES_PROTOCOL: &str = "/9ten/nodes/1.0.0";
/// Request-response protocol: subscription catch-up (ids, then records).
pub const SUBSCRIPTIONS_PROTOCOL: &str = "/9ten/subscriptions/1.0.0";
/// Request-response protocol: a listener asks a home node for a subscription.
pub const SUBSCRIBE_PROTOCOL: &str = "/9ten/subscribe/1.0.0";
/// Request-response protocol: one listener's receipts, page by page.
pub const HOLDERS_PROTOCOL: &str = "/9ten/listener-receipts/1.0.0";
/// Catch-up of review records (daily reports, bundles, attestations, disputes, verdicts).
pub const REVIEW_PROTOCOL: &str = "/9ten/review/1.0.0";
/// A bundle's inputs, page by page, and the receipts and subscriptions they name.
pub const INPUTS_PROTOCOL: &str = "/9ten/month-inputs/1.0.0";

/// The gossip topic of signed release manifests (binary forms).
pub const CATALOG_TOPIC: &str = "9ten/catalog/v1";
/// The gossip topic of node records (binary forms).
pub const NODES_TOPIC: &str = "9ten/nodes/v1";
/// The gossip topic of subscriptions (binary forms).
pub const SUBSCRIPTIONS_TOPIC: &str = "9ten/subscriptions/v1";
/// Gossip topic of review records.
pub const REVIEW_TOPIC: &str = "9ten/review/v1";

/// The gossip topic of a month's receipts (232-byte binary forms).
pub fn receipt_topic(month: Month) -> String {
    format!("9ten/receipts/v1/{month}")
}

/// The DHT key under which providers of a blob (a track or a seek index) are announced: the
/// blob's BLAKE3 hash itself.
pub fn provider_key(blob: &ContentHash) -> [u8; 32] {
    blob.0
}

/// How a receipt is named in reconciliation: a negentropy item whose timestamp is the
/// receipt's `started_at_ms` and whose id is the record id (BLAKE3 of the signed message).
/// Ordering by start time keeps a month's recent receipts together, so two nodes that differ
/// only in the last hours' receipts agree on every older range at once.
pub fn reconciliation_item(receipt: &SignedReceipt) -> (u64, [u8; 32]) {
    (receipt.receipt.started_at_ms, receipt.id().0)
}
