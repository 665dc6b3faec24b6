//! The 9ten protocol: the signed records money moves on, and the settlement that moves it.
//!
//! Everything here is pure: no I/O, no clock, no async. Other crates store, send and display
//! what this crate defines.
//!
//! | module | holds |
//! |---|---|
//! | [`key`] | public keys, content hashes and signatures as byte newtypes with strict hex |
//! | [`month`] | the calendar month in UTC that listens and subscriptions belong to |
//! | [`money`] | integer micro-USDP and the fee split |
//! | [`identity`] | secrets: node and artist keys, listener secrets and their per-month keys, key files |
//! | [`signature`] | the one verification rule (ZIP-215 plus small-order keys), single and batched |
//! | [`receipt`], [`subscription`], [`manifest`] | the signed records: exact bytes and JSON forms |
//! | [`record`] | the frame of `review.md`'s records: tag, fields, signature, id, JSON, roots |
//! | [`node_record`], [`directory`] | node records and the directory of a month |
//! | [`reviewers`] | who reviews a home node's month: cluster peer, external, arbiters |
//! | [`daily`], [`bundle`], [`review`] | daily reports, bundles, attestations, disputes, verdicts |
//! | [`payout`] | the payout statement: what a home node owes an artist from a verified tally |
//! | [`review_record`] | any of those five and payout statements as one type, told apart by its tag |
//! | [`schedule`] | the month's deadlines and the reviewer and arbiter ranks due |
//! | [`detectors`] | fraud detectors over a home node's month: their findings and evidence |
//! | [`audit`] | a home node's month checked from its exported records alone |
//! | [`jsonl`] | reading a file of records, one JSON object per line, with line-numbered errors |
//! | [`settlement`] | `settle`: a month of receipts and subscriptions to a [`tally::Tally`] |
//! | [`tally`] | the tally, its JSON form and the canonical encoding reviewers sign |
//! | [`wire`] | topics, protocol ids, DHT keys and reconciliation items every node shares |
//!
//! Data flow: a listener's node signs a [`receipt::SignedReceipt`] per listen with its
//! [`identity::ListenerSecret`]'s month key; the home node signs a
//! [`subscription::SignedSubscription`] when the fee arrives; at month end
//! [`settlement::settle`] verifies every signature (batched, on all cores) and applies the
//! rules of `settlement.md` to produce the [`tally::Tally`] whose [`tally::Tally::digest`] the
//! three reviewers sign.

pub mod audit;
pub mod bundle;
pub mod daily;
pub mod detectors;
pub mod directory;
pub mod error;
pub mod identity;
pub mod jsonl;
pub mod key;
pub mod manifest;
pub mod money;
pub mod month;
pub mod node_record;
pub mod payout;
pub mod receipt;
pub mod record;
pub mod review;
pub mod review_record;
pub mod reviewers;
pub mod schedule;
pub mod settlement;
pub mod signature;
pub mod subscription;
pub mod tally;
pub mod wire;

pub use error::FieldError;
