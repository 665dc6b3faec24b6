//! An artist's earnings, as its node sees them: per month and home node, the units a payout
//! statement states from a verified tally, or, while the month is open or under review, an
//! estimate from the receipts this node holds, with what the month waits for.

use nineten_protocol::directory::Directory;
use nineten_protocol::key::{ContentHash, PublicKey};
use nineten_protocol::month::Month;
use nineten_protocol::schedule;
use nineten_protocol::settlement::{Input, settle};
use nineten_storage::Store;
use serde::{Deserialize, Serialize};

use super::blocking;
use super::view::{self, MonthView};
use crate::Error;

/// How sure a figure is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Standing {
    /// Stated by the home node's payout statement, from the verified tally.
    Owed,
    /// The month has not closed: an estimate so far.
    Open,
    /// Closed, not verified yet: an estimate.
    InReview,
}

/// One home node's month for the artist.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Earning {
    /// The month.
    pub month: Month,
    /// The home node.
    pub home: PublicKey,
    /// Its operator's name.
    pub name: String,
    /// Units (micro-USDP): stated, or estimated.
    pub units: u64,
    /// How sure.
    pub standing: Standing,
    /// The payout statement's id, when there is one.
    pub statement: Option<ContentHash>,
    /// Why: the statement's bundle, or what the month waits for.
    pub why: String,
}

/// `artist`'s earnings over the months kept, newest first: every home node's month with a
/// statement for it, or with receipts of its listens held here.
pub async fn earnings(
    store: &Store,
    artist: PublicKey,
    now_ms: u64,
) -> Result<Vec<Earning>, Error> {
    let Some(mut month) = Month::containing(now_ms) else {
        return Ok(Vec::new());
    };
    let records = store.node_records()?;
    let mut out = Vec::new();
    for _ in 0..schedule::KEPT_MONTHS {
        let directory = Directory::for_month(month, &records);
        for record in directory.records() {
            let home = record.body.node;
            let view = MonthView::load(store, &home, month)?;
            let status = view::status(&view, &directory, &home, month, now_ms);
            let name = record.body.name.as_str().to_string();
            if let Some(p) = view.statements().find(|p| p.body.artist == artist) {
                out.push(Earning {
                    month,
                    home,
                    name,
                    units: p.body.units.0,
                    standing: Standing::Owed,
                    statement: Some(p.id()),
                    why: format!(
                        "payout statement from the verified bundle {} (round {})",
                        p.body.bundle,
                        status.round.unwrap_or(0)
                    ),
                });
                continue;
            }
            let Some(estimate) = estimate(store, home, month, artist).await? else {
                continue;
            };
            let (standing, units, why) = if status.verified && status.payouts > 0 {
                (
                    Standing::Owed,
                    0,
                    "verified: in no subscriber's top 9 with a qualified listen".to_string(),
                )
            } else {
                let standing = if now_ms < schedule::close_ms(month) {
                    Standing::Open
                } else {
                    Standing::InReview
                };
                let why = format!(
                    "estimate from the receipts held here, carry not included; the month waits for {}",
                    status.waiting_for
                );
                (standing, estimate, why)
            };
            out.push(Earning {
                month,
                home,
                name,
                units,
                standing,
                statement: None,
                why,
            });
        }
        let Some(before) = month.previous() else {
            break;
        };
        month = before;
    }
    Ok(out)
}

/// What `artist` would get from `home`'s `month` over the receipts and subscriptions held
/// here, without carry; `None` when no receipt of its listens is held.
async fn estimate(
    store: &Store,
    home: PublicKey,
    month: Month,
    artist: PublicKey,
) -> Result<Option<u64>, Error> {
    let store = store.clone();
    blocking(move || -> Result<Option<u64>, Error> {
        let receipts = store.receipts_of_home(month, &home, schedule::close_ms(month))?;
        if !receipts.iter().any(|r| r.receipt.artist == artist) {
            return Ok(None);
        }
        let subscriptions: Vec<_> = store
            .subscriptions_of_month(month)?
            .into_iter()
            .filter(|s| s.subscription.home_node == home)
            .collect();
        let tally = settle(Input {
            month,
            receipts: &receipts,
            subscriptions: &subscriptions,
            carry_in: &Default::default(),
        })?;
        Ok(Some(tally.artists.get(&artist).map_or(0, |u| u.0)))
    })
    .await
}
