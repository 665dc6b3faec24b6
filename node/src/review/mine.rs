//! A listener's month, checked (`9ten month mine M`): its receipts as its own node kept them,
//! how settlement judges each, its top 9 and the exact units each artist gets from it, and,
//! for each round's bundle of its home node's month, which of its receipts the bundle names
//! (asked of a reviewer, so the home node's word is not needed: a home node that left some
//! out shows here), and once verified whether each artist's payout statement covers its
//! share.
//!
//! A listener's split depends on its own receipts and carry alone (`settlement.md`), so its
//! node computes it exactly; the carry-in is its own carry-out of the month before when that
//! month's key was subscribed through the same home node (a renewal moved it), else zero.

use std::collections::{BTreeMap, HashMap};

use nineten_protocol::directory::Directory;
use nineten_protocol::key::{ContentHash, PublicKey};
use nineten_protocol::money::MicroUsdp;
use nineten_protocol::month::Month;
use nineten_protocol::receipt::{NO_HOME_NODE, SignedReceipt};
use nineten_protocol::schedule;
use nineten_protocol::settlement::{Input, Judgement, judge_each, settle};
use serde::{Deserialize, Serialize};

use super::view::{self, MonthView};
use super::{Review, blocking};
use crate::Error;
use crate::net::inputs::{self, MAX_BY_ID, NAMED_EXCLUDED, NAMED_RECEIPTS};

/// One receipt of the listener's month.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MyReceipt {
    /// Its id.
    pub id: ContentHash,
    /// Its sequence number.
    pub seq: u64,
    /// The artist.
    pub artist: PublicKey,
    /// When the listen started.
    pub started_at_ms: u64,
    /// How long it was heard.
    pub listened_ms: u32,
    /// How settlement judges it.
    pub judgement: Judgement,
    /// In the verified bundle: `counted`, `excluded` (by a verdict) or `left out`; `None`
    /// before the check.
    pub in_bundle: Option<String>,
}

/// One artist of the listener's top 9.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MyArtist {
    /// The artist.
    pub artist: PublicKey,
    /// Qualified listens.
    pub plays: u64,
    /// Their listened ms.
    pub ms: u64,
    /// The units it gets from this listener.
    pub units: u64,
    /// Whether the home node's payout statement for it states at least that (`None` before
    /// there is one).
    pub covered: Option<bool>,
}

/// A listener's month, checked.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Mine {
    /// The month.
    pub month: Month,
    /// The listener's key of the month.
    pub listener: PublicKey,
    /// The home node its receipts name, if it is subscribed.
    pub home: Option<PublicKey>,
    /// The carry-in its node computes.
    pub carry_in: u64,
    /// The carry-out: its pool when nothing was a qualified listen.
    pub carry_out: u64,
    /// Its receipts, by seq.
    pub receipts: Vec<MyReceipt>,
    /// Its top 9, in rank order.
    pub top: Vec<MyArtist>,
    /// Whether the home node's month is verified.
    pub verified: bool,
    /// The node asked which receipts the verified bundle names.
    pub checked_with: Option<PublicKey>,
    /// Each round's bundle, checked.
    pub rounds: Vec<RoundCheck>,
    /// The conclusion, in words.
    pub verdict: String,
}

/// Which of the listener's receipts one round's bundle names.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RoundCheck {
    /// The round.
    pub round: u8,
    /// The bundle's id.
    pub bundle: ContentHash,
    /// Who answered (`None`: nobody did).
    pub checked_with: Option<PublicKey>,
    /// Receipts its `receipts` root names.
    pub counted: usize,
    /// Receipts its `excluded` root names.
    pub excluded: usize,
    /// Receipts it names in neither: left out.
    pub left_out: usize,
}

impl Review {
    /// The listener's `month`, its key of each month given by `key_of`.
    pub async fn mine(
        &self,
        month: Month,
        key_of: &(dyn Fn(Month) -> PublicKey + Sync),
    ) -> Result<Mine, Error> {
        let listener = key_of(month);
        let home = crate::home::home_of(self.store(), &listener, month)?;
        let home = (home != NO_HOME_NODE).then_some(home);
        let carry_in = self.my_carry_in(month, key_of).await?;
        let (receipts, tally) = self.settle_mine(month, listener, carry_in).await?;
        let judged: HashMap<ContentHash, Judgement> =
            judge_each(month, &receipts).into_iter().collect();
        let mut mine: Vec<MyReceipt> = receipts
            .iter()
            .map(|r| MyReceipt {
                id: r.id(),
                seq: r.receipt.seq,
                artist: r.receipt.artist,
                started_at_ms: r.receipt.started_at_ms,
                listened_ms: r.receipt.listened_ms,
                judgement: judged.get(&r.id()).copied().unwrap_or(Judgement::Kept),
                in_bundle: None,
            })
            .collect();
        let mut plays: BTreeMap<PublicKey, (u64, u64)> = BTreeMap::new();
        for r in mine.iter().filter(|r| r.judgement == Judgement::Qualified) {
            let p = plays.entry(r.artist).or_default();
            p.0 += 1;
            p.1 += u64::from(r.listened_ms);
        }
        let mut top: Vec<MyArtist> = tally
            .artists
            .iter()
            .map(|(artist, units)| MyArtist {
                artist: *artist,
                plays: plays.get(artist).map_or(0, |p| p.0),
                ms: plays.get(artist).map_or(0, |p| p.1),
                units: units.0,
                covered: None,
            })
            .collect();
        top.sort_by(|a, b| (b.plays, b.ms, a.artist).cmp(&(a.plays, a.ms, b.artist)));
        let carry_out = tally.carry_out.get(&listener).map_or(0, |u| u.0);
        let mut out = Mine {
            month,
            listener,
            home,
            carry_in,
            carry_out,
            receipts: mine.clone(),
            top,
            verified: false,
            checked_with: None,
            rounds: Vec::new(),
            verdict: String::new(),
        };
        let Some(home) = home else {
            out.verdict = "no home node: these listens count for nothing".into();
            return Ok(out);
        };
        let now = self.gather.clock.now_ms();
        let records = self.store().node_records()?;
        let directory = Directory::for_month(month, &records);
        let view = MonthView::load(self.store(), &home, month)?;
        let status = view::status(&view, &directory, &home, month, now);
        out.verified = status.verified;
        if view.bundles.is_empty() {
            out.verdict = format!("no bundle yet: the month waits for {}", status.waiting_for);
            return Ok(out);
        }
        // Ask the reviewers that attested (or were asked), then the home node, which of this
        // listener's receipts each round's bundle names.
        let reviewers = nineten_protocol::reviewers::Reviewers::choose(&directory, &home).ok();
        let mut asked: Vec<PublicKey> = [&status.external, &status.cluster]
            .into_iter()
            .flatten()
            .map(|s| s.node)
            .collect();
        if let Some(rv) = &reviewers {
            asked.extend(rv.external(0).into_iter().chain(rv.cluster_peer(0)));
        }
        asked.push(home);
        asked.dedup();
        let ids: Vec<ContentHash> = mine.iter().map(|r| r.id).collect();
        for bundle in &view.bundles {
            let mut marks = None;
            for node in &asked {
                match self.named(*node, bundle.id(), &ids).await {
                    Ok(Some(m)) => {
                        marks = Some((*node, m));
                        break;
                    }
                    Ok(None) => continue,
                    Err(e) => tracing::debug!(%node, "asking which receipts a bundle names: {e}"),
                }
            }
            let Some((node, marks)) = marks else {
                out.rounds.push(RoundCheck {
                    round: bundle.body.round,
                    bundle: bundle.id(),
                    checked_with: None,
                    counted: 0,
                    excluded: 0,
                    left_out: 0,
                });
                continue;
            };
            let count = |m: u8| marks.iter().filter(|x| **x == m).count();
            out.rounds.push(RoundCheck {
                round: bundle.body.round,
                bundle: bundle.id(),
                checked_with: Some(node),
                counted: count(NAMED_RECEIPTS),
                excluded: count(NAMED_EXCLUDED),
                left_out: marks.len() - count(NAMED_RECEIPTS) - count(NAMED_EXCLUDED),
            });
            if Some(bundle.id()) == status.bundle {
                out.checked_with = Some(node);
                for (r, mark) in mine.iter_mut().zip(&marks) {
                    r.in_bundle = Some(
                        match *mark {
                            NAMED_RECEIPTS => "counted",
                            NAMED_EXCLUDED => "excluded",
                            _ => "left out",
                        }
                        .to_string(),
                    );
                }
            }
        }
        out.receipts = mine;
        let statements: HashMap<PublicKey, MicroUsdp> = view
            .statements()
            .map(|p| (p.body.artist, p.body.units))
            .collect();
        for a in &mut out.top {
            a.covered = (!statements.is_empty())
                .then(|| statements.get(&a.artist).is_some_and(|u| u.0 >= a.units));
        }
        let short = out.top.iter().filter(|a| a.covered == Some(false)).count();
        let earlier: usize = out
            .rounds
            .iter()
            .filter(|r| Some(r.bundle) != status.bundle)
            .map(|r| r.left_out)
            .sum();
        let history = if earlier > 0 {
            format!(
                " (an earlier round left out {earlier} of your receipts; a later one restored them)"
            )
        } else {
            String::new()
        };
        let Some(last) = out.rounds.last().filter(|r| r.checked_with.is_some()) else {
            out.verdict =
                "no reviewer nor the home node answered which receipts the bundle names".into();
            return Ok(out);
        };
        let node = last.checked_with.expect("filtered");
        out.verdict = match (status.verified, last.left_out, last.excluded, short) {
            (false, 0, 0, _) => format!(
                "not verified yet, but the bundle counts every receipt (checked with {node}); the month waits for {}",
                status.waiting_for
            ),
            (false, left_out, excluded, _) => format!(
                "not verified yet: the bundle leaves out {left_out} of your receipts and excludes {excluded} (checked with {node}); the month waits for {}",
                status.waiting_for
            ),
            (true, 0, 0, 0) => format!(
                "verified: every receipt counted (checked with {node}); every artist's statement covers its share from you{history}"
            ),
            (true, left_out, excluded, short) => format!(
                "verified, but {left_out} receipt(s) left out and {excluded} excluded by a verdict (checked with {node}); {short} artist(s) whose statement does not cover their share from you{history}"
            ),
        };
        Ok(out)
    }

    /// This listener's receipts of `month` and its own settlement of them.
    async fn settle_mine(
        &self,
        month: Month,
        listener: PublicKey,
        carry_in: u64,
    ) -> Result<(Vec<SignedReceipt>, nineten_protocol::tally::Tally), Error> {
        let store = self.store().clone();
        blocking(move || -> Result<_, Error> {
            let receipts = store.receipts_of_listener_in_month(month, &listener)?;
            let subscriptions = store.subscriptions_of_listener(month, &listener)?;
            let carry = BTreeMap::from([(listener, MicroUsdp(carry_in))]);
            let tally = settle(Input {
                month,
                receipts: &receipts,
                subscriptions: &subscriptions,
                carry_in: &carry,
            })?;
            Ok((receipts, tally))
        })
        .await
    }

    /// The carry-in of `month`: the carry-out of the month before when its key was
    /// subscribed through the same home node, counted back at most [`schedule::KEPT_MONTHS`].
    async fn my_carry_in(
        &self,
        month: Month,
        key_of: &(dyn Fn(Month) -> PublicKey + Sync),
    ) -> Result<u64, Error> {
        // The chain of renewals ending at `month`, oldest first.
        let mut chain = Vec::new();
        let mut m = month;
        let home = crate::home::home_of(self.store(), &key_of(m), m)?;
        while chain.len() < schedule::KEPT_MONTHS {
            let Some(before) = m.previous() else { break };
            if home == NO_HOME_NODE
                || crate::home::home_of(self.store(), &key_of(before), before)? != home
            {
                break;
            }
            chain.push(before);
            m = before;
        }
        let mut carry = 0;
        for m in chain.into_iter().rev() {
            let (_, tally) = self.settle_mine(m, key_of(m), carry).await?;
            carry = tally.carry_out.get(&key_of(m)).map_or(0, |u| u.0);
        }
        Ok(carry)
    }

    /// Which of `ids` `node` says `bundle` names; `None` when it does not hold the bundle.
    async fn named(
        &self,
        node: PublicKey,
        bundle: ContentHash,
        ids: &[ContentHash],
    ) -> Result<Option<Vec<u8>>, Error> {
        let mut marks = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(MAX_BY_ID) {
            let request = inputs::Request::Named {
                bundle,
                ids: chunk.to_vec(),
            };
            match self.gather.net.inputs(node, request).await? {
                inputs::Response::Named(m) if m.len() == chunk.len() => marks.extend_from_slice(&m),
                inputs::Response::Missing => return Ok(None),
                other => {
                    return Err(Error::Review(format!(
                        "{node} answered a membership request with {other:?}"
                    )));
                }
            }
        }
        Ok(Some(marks))
    }
}
