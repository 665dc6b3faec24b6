//! The month's review on a node (`review.md`, "three eyes"): after the close a home node issues
//! its bundle and signs it; the cluster peer and the external node the directory names fetch
//! every input, recompute, and attest or dispute; the arbiter decides each dispute; the home
//! node re-issues with the verdicts applied; replacements are asked after the deadlines
//! (`nineten_protocol::schedule`, on the node's [`Clock`]).
//!
//! One task owns the work ([`Review::step`], every [`Options::interval`]): each turn it reads
//! what the store holds of the months under review and does this node's next part, for every
//! home node of the directory. It remembers nothing between turns, so a restart resumes where
//! it stopped; everything it signs is stored (with the sets its roots name) before it is
//! gossiped, so nothing signed is lost and nothing is signed twice.
//!
//! - [`daily`]: the daily reports, and the detailed day sealed at rest;
//! - [`gather`]: a record's sets and the receipts and subscriptions they name, from peers,
//!   checked;
//! - [`view`]: a home node's month as held here, and its status.

pub mod daily;
pub mod earnings;
pub mod gather;
pub mod mine;
pub mod view;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use nineten_protocol::audit::MonthRecords;
use nineten_protocol::bundle::{Bundle, Inputs, SignedBundle};
use nineten_protocol::daily::Day;
use nineten_protocol::detectors;
use nineten_protocol::directory::Directory;
use nineten_protocol::identity::Keypair;
use nineten_protocol::key::{ContentHash, PublicKey};
use nineten_protocol::money::MicroUsdp;
use nineten_protocol::month::Month;
use nineten_protocol::payout::Payout;
use nineten_protocol::receipt::SignedReceipt;
use nineten_protocol::record::{Record, root};
use nineten_protocol::review::{Attestation, Dispute, Kind, Outcome, Role, SignedDispute, Verdict};
use nineten_protocol::review_record::ReviewRecord;
use nineten_protocol::reviewers::Reviewers;
use nineten_protocol::schedule;
use nineten_protocol::settlement::{Input, settle_verified};
use nineten_protocol::subscription::SignedSubscription;
use nineten_protocol::tally::Tally;
use nineten_storage::Store;
use nineten_storage::review::Sets;
use serde::{Deserialize, Serialize};
use tracing::{debug, info, warn};

pub use self::gather::{Gather, Roots};
pub use self::view::{MonthView, Status};
use crate::Error;
use crate::clock::Clock;
use crate::net;

/// How a node takes part in the review.
#[derive(Clone, Debug)]
pub struct Options {
    /// How often the review task looks at the months under review.
    pub interval: Duration,
    /// How this node, as an arbiter, decides suspect disputes.
    pub suspects: Arbitration,
    /// For testnets' scenarios only: how this node, as a home node, cheats.
    pub cheat: Option<Cheat>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(10),
            suspects: Arbitration::Manual,
            cheat: None,
        }
    }
}

/// An arbiter's policy for suspect disputes (fraud is a judgement).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arbitration {
    /// The operator decides each (`9ten dispute decide ID --exclude|--keep`).
    #[default]
    Manual,
    /// Every receipt in question is excluded (testnets).
    Auto,
}

/// A home node that cheats, so testnets and tests can show the review catching it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cheat {
    /// Leaves one artist's receipts out of its first bundle.
    Omit(PublicKey),
    /// Signs a tally digest one unit off in its first bundle.
    AlterTally,
}

/// The review task's state: the node's key and how it gathers.
pub struct Review {
    gather: Gather,
    key: Keypair,
    options: Options,
}

/// The time of `ms` as `YYYY-MM-DD HH:MM UTC`.
pub fn utc(ms: u64) -> String {
    match Day::containing(ms) {
        Some(day) => {
            let into = ms - day.bounds_ms().0;
            let minutes = into / 60_000;
            format!("{day} {:02}:{:02} UTC", minutes / 60, minutes % 60)
        }
        None => format!("{ms} ms"),
    }
}

impl Review {
    /// The review of the node with `key`.
    pub fn new(
        store: Store,
        net: net::Client,
        clock: Clock,
        key: Keypair,
        options: Options,
    ) -> Self {
        Self {
            gather: Gather { store, net, clock },
            key,
            options,
        }
    }

    /// How often to step.
    pub fn interval(&self) -> Duration {
        self.options.interval
    }

    fn me(&self) -> PublicKey {
        self.key.public()
    }

    fn store(&self) -> &Store {
        &self.gather.store
    }

    /// The months under review at `now_ms`: the two before the current one, once closed.
    fn months(now_ms: u64) -> Vec<Month> {
        let Some(current) = Month::containing(now_ms) else {
            return Vec::new();
        };
        let previous = current.previous();
        [previous, previous.and_then(Month::previous)]
            .into_iter()
            .flatten()
            .filter(|m| schedule::close_ms(*m) <= now_ms)
            .collect()
    }

    /// One turn: this node's daily reports as a home node, then its next part in every
    /// month under review.
    pub async fn step(&self) -> Result<(), Error> {
        let now = self.gather.clock.now_ms();
        let records = self.store().node_records()?;
        self.daily_reports(now, &records).await?;
        let months = Self::months(now);
        for month in months {
            let directory = Directory::for_month(month, &records);
            if directory.get(&self.me()).is_none() {
                continue;
            }
            let homes: Vec<PublicKey> = directory.records().map(|r| r.body.node).collect();
            for home in homes {
                let result = if home == self.me() {
                    self.as_home(month, &directory).await
                } else {
                    match self.as_reviewer(home, month, &directory).await {
                        Ok(()) => self.as_arbiter(home, month, &directory).await,
                        err => err,
                    }
                };
                if let Err(e) = result {
                    warn!(%home, %month, "review step failed: {e}");
                }
            }
        }
        Ok(())
    }

    /// Signs the daily report of every day of this month and the last that has ended and
    /// has none yet, when this node is a home node of that month's directory.
    async fn daily_reports(
        &self,
        now: u64,
        records: &[nineten_protocol::node_record::SignedNodeRecord],
    ) -> Result<(), Error> {
        let Some(current) = Month::containing(now) else {
            return Ok(());
        };
        let me = self.me();
        for month in [current.previous(), Some(current)].into_iter().flatten() {
            if Directory::for_month(month, records).get(&me).is_none() {
                continue;
            }
            let done: BTreeSet<Day> = MonthView::load(self.store(), &me, month)?
                .daily
                .iter()
                .map(|d| d.body.day)
                .collect();
            let due: Vec<Day> = (1..=31)
                .filter_map(|d| Day::new(month, d).ok())
                .filter(|d| d.bounds_ms().1 <= now && !done.contains(d))
                .collect();
            if due.is_empty() {
                continue;
            }
            let store = self.store().clone();
            let held = blocking(move || store.receipts_of_home(month, &me, u64::MAX)).await?;
            let mut by_day: BTreeMap<Day, Vec<SignedReceipt>> = BTreeMap::new();
            for r in held {
                if let Some(day) = Day::containing(r.receipt.started_at_ms) {
                    by_day.entry(day).or_default().push(r);
                }
            }
            for day in due {
                let receipts = by_day.remove(&day).unwrap_or_default();
                let (report, detail) = daily::report(&self.key, day, &receipts);
                let sets = Sets {
                    receipts: sorted(receipts.iter().map(SignedReceipt::id)),
                    ..Sets::default()
                };
                self.store().put_sets(&report.id(), &sets)?;
                self.store()
                    .put_day_detail(day, &daily::seal(&self.key, &detail))?;
                self.put_and_publish(ReviewRecord::Daily(report)).await?;
            }
        }
        Ok(())
    }

    /// This home node's detailed day, opened, with its signed report.
    pub fn day(
        &self,
        day: Day,
    ) -> Result<(nineten_protocol::daily::SignedDailyReport, daily::DayDetail), Error> {
        let view = MonthView::load(self.store(), &self.me(), day.month())?;
        let report = view
            .daily
            .into_iter()
            .find(|d| d.body.day == day)
            .ok_or_else(|| Error::Review(format!("this node has no daily report of {day}")))?;
        let sealed = self
            .store()
            .day_detail(day)?
            .ok_or_else(|| Error::Review(format!("this node has no detailed day {day}")))?;
        Ok((report, daily::open(&self.key, day, &sealed)?))
    }

    /// Stores a record this node signed, then gossips it.
    async fn put_and_publish(&self, record: ReviewRecord) -> Result<(), Error> {
        self.store().put_review(&record)?;
        info!(kind = record.kind(), id = %record.id(), "signed");
        self.gather.net.publish_review(record).await?;
        Ok(())
    }

    async fn attest(&self, bundle: &SignedBundle, role: Role, rank: u8) -> Result<(), Error> {
        let a = Record::sign(
            Attestation {
                bundle: bundle.id(),
                tally: bundle.body.tally,
                role,
                rank,
                reviewer: self.me(),
            },
            &self.key,
        );
        self.put_and_publish(ReviewRecord::Attestation(a)).await
    }

    /// The status of every home node's `month` in this node's directory for it.
    pub fn status(&self, month: Month) -> Result<Vec<Status>, Error> {
        let records = self.store().node_records()?;
        let directory = Directory::for_month(month, &records);
        let now = self.gather.clock.now_ms();
        directory
            .records()
            .map(|r| {
                let home = r.body.node;
                let view = MonthView::load(self.store(), &home, month)?;
                Ok(view::status(&view, &directory, &home, month, now))
            })
            .collect()
    }

    /// `artist`'s earnings per month and home node (see [`earnings`]).
    pub async fn earnings(&self, artist: PublicKey) -> Result<Vec<earnings::Earning>, Error> {
        earnings::earnings(self.store(), artist, self.gather.clock.now_ms()).await
    }

    /// Every dispute of the months under review, newest month first.
    pub fn disputes(&self) -> Result<Vec<DisputeEntry>, Error> {
        let mut out = Vec::new();
        for month in Self::months(self.gather.clock.now_ms()) {
            for status in self.status(month)? {
                for d in status.disputes {
                    out.push(DisputeEntry {
                        home: status.home,
                        month,
                        dispute: d,
                    });
                }
            }
        }
        Ok(out)
    }

    /// The dispute whose id is or starts with `id` (at least 8 hex digits).
    fn find_dispute(&self, id: &str) -> Result<(DisputeEntry, SignedDispute), Error> {
        let id = id.to_ascii_lowercase();
        if id.len() < 8 {
            return Err(Error::Review(format!(
                "dispute id {id:?} is too short: give at least 8 hex digits"
            )));
        }
        let mut found = self
            .disputes()?
            .into_iter()
            .filter(|e| e.dispute.id.to_string().starts_with(&id));
        let entry = found.next().ok_or_else(|| {
            Error::Review(format!(
                "no dispute {id} in the months under review (see `9ten dispute list`)"
            ))
        })?;
        if found.next().is_some() {
            return Err(Error::Review(format!(
                "{id} matches several disputes: give more of the id"
            )));
        }
        let Some(ReviewRecord::Dispute(d)) = self.store().review(&entry.dispute.id)? else {
            return Err(Error::Review(format!("dispute {id} is not stored here")));
        };
        Ok((entry, d))
    }

    /// A dispute, its evidence and what this node's detectors find in it.
    pub async fn show_dispute(&self, id: &str) -> Result<DisputeDetail, Error> {
        let (entry, d) = self.find_dispute(id)?;
        let Some(ReviewRecord::Bundle(bundle)) = self.store().review(&d.body.bundle)? else {
            return Err(Error::Review(format!(
                "the bundle of dispute {id} is not stored here"
            )));
        };
        let weighed = match d.body.kind {
            Kind::Suspect => self.weigh(entry.home, &bundle, &d).await?,
            _ => None,
        };
        let (evidence, findings) = weighed.map_or((None, Vec::new()), |(e, f)| (Some(e.len()), f));
        Ok(DisputeDetail {
            entry,
            dispute: serde_json::from_str(&d.to_json()).expect("a record's JSON parses"),
            evidence,
            findings,
            arbiter_rank: self.arbiter_rank(&d, &bundle)?,
        })
    }

    /// This node's rank in the arbiter list of the dispute's round, if it is in it.
    fn arbiter_rank(&self, d: &SignedDispute, bundle: &SignedBundle) -> Result<Option<u8>, Error> {
        let (home, month) = (bundle.body.home, bundle.body.month);
        let records = self.store().node_records()?;
        let Ok(reviewers) = Reviewers::choose(&Directory::for_month(month, &records), &home) else {
            return Ok(None);
        };
        let view = MonthView::load(self.store(), &home, month)?;
        Ok(reviewers
            .arbiters_of_round(&d.body.bundle, &view.attestations, &view.disputes)
            .iter()
            .position(|k| *k == self.me())
            .and_then(|r| u8::try_from(r).ok()))
    }

    /// The operator's verdict on a suspect dispute this node arbitrates: exclude every
    /// receipt in question, or keep them all.
    pub async fn decide_suspect(&self, id: &str, exclude: bool) -> Result<DisputeEntry, Error> {
        let (entry, d) = self.find_dispute(id)?;
        if d.body.kind != Kind::Suspect {
            return Err(Error::Review(format!(
                "dispute {id} is {:?}: only suspect disputes are the operator's judgement (the others are decided by recomputing)",
                d.body.kind
            ).to_lowercase()));
        }
        if entry.dispute.outcome.is_some() {
            return Err(Error::Review(format!("dispute {id} is decided already")));
        }
        let Some(ReviewRecord::Bundle(bundle)) = self.store().review(&d.body.bundle)? else {
            return Err(Error::Review(format!(
                "the bundle of dispute {id} is not stored here"
            )));
        };
        let due = schedule::arbiter_rank_due(entry.month, self.gather.clock.now_ms());
        let rank = match self.arbiter_rank(&d, &bundle)? {
            Some(rank) if rank <= due => rank,
            Some(rank) => {
                return Err(Error::Review(format!(
                    "this node is arbiter rank {rank} of dispute {id}: rank {due} is asked now"
                )));
            }
            None => {
                return Err(Error::Review(format!(
                    "this node is not an arbiter of dispute {id}"
                )));
            }
        };
        let roots = Roots {
            receipts: Some(d.body.evidence),
            ..Roots::default()
        };
        let evidence = self
            .gather
            .sets(&d.id(), &roots, &[d.body.by, entry.home])
            .await?
            .ok_or_else(|| {
                Error::Review(format!("the evidence of dispute {id} cannot be had yet"))
            })?;
        let (outcome, excluded) = if exclude {
            (Outcome::Upheld, evidence.receipts)
        } else {
            (Outcome::Rejected, Vec::new())
        };
        self.verdict(&d, outcome, excluded, Vec::new(), rank)
            .await?;
        let mut decided = entry;
        decided.dispute.outcome = Some(outcome);
        decided.dispute.arbiter = Some(self.me());
        Ok(decided)
    }

    /// The export of `home`'s `month` (`review.md`, "What an auditor can check alone") and
    /// the last round's tally, from what this node holds: the home node and its reviewers
    /// hold every input.
    pub async fn export(
        &self,
        home: PublicKey,
        month: Month,
    ) -> Result<(MonthRecords, Tally), Error> {
        let view = MonthView::load(self.store(), &home, month)?;
        let last = view.last().cloned().ok_or_else(|| {
            Error::Review(format!("this node holds no bundle of {home} for {month}"))
        })?;
        let lacking = || {
            Error::Review(format!(
                "this node does not hold every input of {home}'s last bundle of {month}: export it from the home node or one of its reviewers"
            ))
        };
        let sets = self.store().sets(&last.id())?.ok_or_else(lacking)?;
        let held = |ids: &[ContentHash]| -> Result<Vec<SignedReceipt>, Error> {
            let found = self.store().receipts_by_ids(ids)?;
            if found.len() == ids.len() {
                Ok(found)
            } else {
                Err(lacking())
            }
        };
        let receipts = held(&sets.receipts)?;
        let excluded = held(&sets.excluded)?;
        let mut subscriptions = Vec::with_capacity(sets.subscriptions.len());
        for id in &sets.subscriptions {
            subscriptions.push(self.store().subscription(id)?.ok_or_else(lacking)?);
        }
        let records = self.store().node_records()?;
        let directory = Directory::for_month(month, &records);
        let carry = sets.carry.clone();
        let (r, s, c) = (receipts.clone(), subscriptions.clone(), carry.clone());
        let tally = blocking(move || {
            settle_verified(Input {
                month,
                receipts: &r,
                subscriptions: &s,
                carry_in: &c,
            })
        })
        .await?;
        let records = MonthRecords {
            nodes: directory.records().cloned().collect(),
            receipts,
            excluded,
            subscriptions,
            carry,
            daily: view.daily,
            bundles: view.bundles,
            attestations: view.attestations,
            disputes: view.disputes,
            verdicts: view.verdicts,
        };
        Ok((records, tally))
    }

    // --- the home node -------------------------------------------------------------------

    async fn as_home(&self, month: Month, directory: &Directory) -> Result<(), Error> {
        let me = self.me();
        let reviewers = match Reviewers::choose(directory, &me) {
            Ok(r) => r,
            Err(why) => {
                debug!(%month, "the month cannot be reviewed yet: {why}");
                return Ok(());
            }
        };
        let view = MonthView::load(self.store(), &me, month)?;
        let Some(last) = view.last().cloned() else {
            return self.issue(month, directory, None).await;
        };
        if !view.answered(&last.id(), &me) {
            self.attest(&last, Role::Home, 0).await?;
        }
        if view.verified(&reviewers) {
            return self.pay(&view, &last).await;
        }
        let last_id = last.id();
        let disputes: Vec<&SignedDispute> = view
            .disputes_of(&last_id)
            .filter(|d| counted(&reviewers, d))
            .collect();
        let verdicts: Vec<_> = disputes
            .iter()
            .filter_map(|d| view.verdict(&d.id(), &reviewers).map(|v| (*d, v.clone())))
            .collect();
        // Re-issued once every dispute of the round is decided, if any verdict changes it.
        if disputes.is_empty()
            || verdicts.len() < disputes.len()
            || verdicts
                .iter()
                .all(|(_, v)| v.body.outcome == Outcome::Rejected)
        {
            return Ok(());
        }
        let mut changes = Vec::new();
        for (d, v) in &verdicts {
            if v.body.outcome == Outcome::Rejected {
                continue;
            }
            let roots = Roots {
                receipts: Some(v.body.added),
                excluded: Some(v.body.excluded),
                ..Roots::default()
            };
            let Some(sets) = self
                .gather
                .sets(&v.id(), &roots, &[v.body.arbiter, d.body.by])
                .await?
            else {
                debug!(verdict = %v.id(), "waiting for the verdict's receipts");
                return Ok(());
            };
            changes.push((sets, [v.body.arbiter, d.body.by]));
        }
        self.issue(month, directory, Some((&last, changes))).await
    }

    /// Signs a payout statement for every artist of `last`'s tally that has none yet: what
    /// this home node owes it, from the verified bundle `last`.
    async fn pay(&self, view: &MonthView, last: &SignedBundle) -> Result<(), Error> {
        let stated: BTreeSet<PublicKey> = view
            .payouts
            .iter()
            .filter(|p| p.body.bundle == last.id())
            .map(|p| p.body.artist)
            .collect();
        let Some(tally) = self.recompute(last, &[]).await? else {
            return Err(Error::Review(format!(
                "the inputs of this node's verified bundle {} are not all held",
                last.id()
            )));
        };
        for (artist, units) in tally.artists.iter().filter(|(a, _)| !stated.contains(a)) {
            let statement = Record::sign(
                Payout {
                    home: self.me(),
                    month: last.body.month,
                    artist: *artist,
                    units: *units,
                    bundle: last.id(),
                    tally: last.body.tally,
                },
                &self.key,
            );
            self.put_and_publish(ReviewRecord::Payout(statement))
                .await?;
        }
        Ok(())
    }

    /// Issues round 0 (`prior` none) or the round after `prior`'s bundle with its verdicts'
    /// sets applied; signs the bundle and the home attestation.
    async fn issue(
        &self,
        month: Month,
        directory: &Directory,
        prior: Option<(&SignedBundle, Vec<Change>)>,
    ) -> Result<(), Error> {
        let me = self.me();
        let store = self.store().clone();
        let (receipts, excluded, round) = match prior {
            None => {
                let close = schedule::close_ms(month);
                let mut receipts =
                    blocking(move || store.receipts_of_home(month, &me, close)).await?;
                if let Some(Cheat::Omit(artist)) = self.options.cheat {
                    receipts.retain(|r| r.receipt.artist != artist);
                }
                (receipts, Vec::new(), 0)
            }
            Some((last, changes)) => {
                let sets = self.store().sets(&last.id())?.ok_or_else(|| {
                    Error::Review(format!(
                        "the sets of this node's bundle {} are gone",
                        last.id()
                    ))
                })?;
                let mut used: BTreeSet<ContentHash> = sets.receipts.into_iter().collect();
                let mut excluded: BTreeSet<ContentHash> = sets.excluded.into_iter().collect();
                let mut sources = Vec::new();
                for (change, from) in changes {
                    for x in change.excluded {
                        used.remove(&x);
                        excluded.insert(x);
                    }
                    used.extend(change.receipts);
                    sources.extend(from);
                }
                let used: Vec<ContentHash> = used.into_iter().collect();
                let excluded: Vec<ContentHash> = excluded.into_iter().collect();
                let Some(receipts) = self.gather.receipts(&used, &sources).await? else {
                    debug!(%month, "waiting for receipts a verdict added");
                    return Ok(());
                };
                let Some(excluded) = self.gather.receipts(&excluded, &sources).await? else {
                    return Ok(());
                };
                (receipts, excluded, last.body.round.saturating_add(1))
            }
        };
        let subscriptions: Vec<SignedSubscription> = self
            .store()
            .subscriptions_of_month(month)?
            .into_iter()
            .filter(|s| s.subscription.home_node == me)
            .collect();
        let carry = self.carry_in(month).await?;
        let directory = directory.clone();
        let cheat = self.options.cheat;
        let (bundle, sets) = blocking(move || {
            let (mut bundle, tally) = Bundle::close(
                me,
                month,
                Inputs {
                    receipts: &receipts,
                    excluded: &excluded,
                    subscriptions: &subscriptions,
                    carry: &carry,
                },
                &directory,
                round,
            )?;
            if cheat == Some(Cheat::AlterTally) && round == 0 {
                let mut altered = tally;
                if let Some((_, units)) = altered.artists.iter_mut().next() {
                    units.0 += 1;
                }
                bundle.tally = altered.digest();
            }
            let sets = Sets {
                receipts: sorted(receipts.iter().map(SignedReceipt::id)),
                excluded: sorted(excluded.iter().map(SignedReceipt::id)),
                subscriptions: sorted(subscriptions.iter().map(SignedSubscription::id)),
                carry,
            };
            Ok::<_, Error>((bundle, sets))
        })
        .await?;
        let signed = Record::sign(bundle, &self.key);
        self.store().put_sets(&signed.id(), &sets)?;
        info!(%month, round, receipts = sets.receipts.len(), "bundle issued");
        self.put_and_publish(ReviewRecord::Bundle(signed.clone()))
            .await?;
        self.attest(&signed, Role::Home, 0).await
    }

    /// The carry-in of this home node's `month`: what its last bundle of the month before
    /// carries out, moved to the listener's key of `month` where a renewal linked the two
    /// (both keys signed it, and only this node knows it), else kept under the old key. The
    /// sum is the same either way, which is what reviewers check.
    async fn carry_in(&self, month: Month) -> Result<BTreeMap<PublicKey, MicroUsdp>, Error> {
        let Some(before) = month.previous() else {
            return Ok(BTreeMap::new());
        };
        let view = MonthView::load(self.store(), &self.me(), before)?;
        let Some(last) = view.last() else {
            return Ok(BTreeMap::new());
        };
        let Some(tally) = self.recompute(last, &[]).await? else {
            return Err(Error::Review(format!(
                "the inputs of this node's bundle of {before} are not all held"
            )));
        };
        let mut carry: BTreeMap<PublicKey, MicroUsdp> = BTreeMap::new();
        for (key, units) in tally.carry_out.into_iter().filter(|(_, u)| u.0 > 0) {
            let to = self.store().renewal(month, &key)?.unwrap_or(key);
            let entry = carry.entry(to).or_insert(MicroUsdp(0));
            entry.0 += units.0;
        }
        Ok(carry)
    }

    /// The tally of `bundle`'s inputs, fetched from `sources` where not held; `None` while
    /// some cannot be had.
    async fn recompute(
        &self,
        bundle: &SignedBundle,
        sources: &[PublicKey],
    ) -> Result<Option<Tally>, Error> {
        let Some(sets) = self
            .gather
            .sets(&bundle.id(), &Roots::of_bundle(bundle), sources)
            .await?
        else {
            return Ok(None);
        };
        let Some(receipts) = self.gather.receipts(&sets.receipts, sources).await? else {
            return Ok(None);
        };
        let Some(subscriptions) = self
            .gather
            .subscriptions(&sets.subscriptions, sources)
            .await?
        else {
            return Ok(None);
        };
        let month = bundle.body.month;
        let tally = blocking(move || {
            settle_verified(Input {
                month,
                receipts: &receipts,
                subscriptions: &subscriptions,
                carry_in: &sets.carry,
            })
        })
        .await?;
        Ok(Some(tally))
    }

    // --- the reviewers ---------------------------------------------------------------------

    async fn as_reviewer(
        &self,
        home: PublicKey,
        month: Month,
        directory: &Directory,
    ) -> Result<(), Error> {
        let me = self.me();
        let Ok(reviewers) = Reviewers::choose(directory, &home) else {
            return Ok(());
        };
        let (role, rank) = match (
            reviewers.cluster_peers.iter().position(|k| *k == me),
            reviewers.externals.iter().position(|k| *k == me),
        ) {
            (Some(i), _) => (Role::Cluster, i),
            (_, Some(i)) => (Role::External, i),
            _ => return Ok(()),
        };
        let Ok(rank) = u8::try_from(rank) else {
            return Ok(());
        };
        if rank > schedule::reviewer_rank_due(month, self.gather.clock.now_ms()) {
            return Ok(());
        }
        let view = MonthView::load(self.store(), &home, month)?;
        let Some(last) = view.last().cloned() else {
            return Ok(());
        };
        let id = last.id();
        if view.answered(&id, &me) {
            // After a rejection the bundle stands, and the objector attests it.
            let mine: Vec<&SignedDispute> =
                view.disputes_of(&id).filter(|d| d.body.by == me).collect();
            let attested = view
                .attestations
                .iter()
                .any(|a| a.body.bundle == id && a.body.reviewer == me);
            let rejected = !mine.is_empty()
                && mine.iter().all(|d| {
                    view.verdict(&d.id(), &reviewers)
                        .is_some_and(|v| v.body.outcome == Outcome::Rejected)
                });
            if rejected && !attested {
                return self.attest(&last, role, rank).await;
            }
            return Ok(());
        }
        if view
            .attestation(&last, role, &reviewers)
            .is_some_and(|a| a.body.rank < rank)
        {
            return Ok(());
        }
        if last.body.directory != directory.root() {
            debug!(%home, %month, "the bundle's directory is not this node's: waiting");
            return Ok(());
        }
        let sources = sources(&view, &id, home, me);
        let Some(sets) = self
            .gather
            .sets(&id, &Roots::of_bundle(&last), &sources)
            .await?
        else {
            debug!(%home, %month, "waiting for the bundle's inputs");
            return Ok(());
        };
        if !self.excluded_by_verdicts(&view, &reviewers, &sets).await? {
            debug!(%home, %month, "the bundle's exclusions are not the verdicts': waiting");
            return Ok(());
        }
        let Some(tally) = self.recompute(&last, &sources).await? else {
            debug!(%home, %month, "waiting for the receipts and subscriptions of the bundle");
            return Ok(());
        };
        let Some(expected) = self.carried_out(home, month, &sources).await? else {
            debug!(%home, %month, "waiting for the month before's inputs (carry)");
            return Ok(());
        };
        let carried: u64 = sets.carry.values().map(|u| u.0).sum();
        if carried != expected {
            warn!(%home, %month, carried, expected, "the carry-in does not add up");
            return self
                .dispute(&last, Kind::Carry, Vec::new(), tally.digest())
                .await;
        }
        // Receipts of the home node's month held here from before the close, left out.
        let store = self.store().clone();
        let close = schedule::close_ms(month);
        let held = blocking(move || store.receipts_of_home(month, &home, close)).await?;
        let named: BTreeSet<&ContentHash> = sets.receipts.iter().chain(&sets.excluded).collect();
        let mut omitted: Vec<SignedReceipt> = held
            .into_iter()
            .filter(|r| !named.contains(&r.id()))
            .collect();
        // And those the home node's own daily reports name.
        for d in &view.daily {
            let roots = Roots {
                receipts: Some(d.body.receipts),
                ..Roots::default()
            };
            let Some(day) = self.gather.sets(&d.id(), &roots, &sources).await? else {
                continue;
            };
            let have: BTreeSet<ContentHash> = omitted.iter().map(SignedReceipt::id).collect();
            let missing: Vec<ContentHash> = day
                .receipts
                .into_iter()
                .filter(|id| !named.contains(id) && !have.contains(id))
                .collect();
            if missing.is_empty() {
                continue;
            }
            if let Some(found) = self.gather.receipts(&missing, &sources).await? {
                omitted.extend(found);
            }
        }
        if !omitted.is_empty() {
            warn!(%home, %month, omitted = omitted.len(), "the bundle leaves out receipts");
            let mut all = self
                .gather
                .receipts(&sets.receipts, &sources)
                .await?
                .unwrap_or_default();
            all.extend(omitted.iter().copied());
            let subscriptions = self
                .gather
                .subscriptions(&sets.subscriptions, &sources)
                .await?
                .unwrap_or_default();
            let carry = sets.carry.clone();
            let claimed = blocking(move || {
                settle_verified(Input {
                    month,
                    receipts: &all,
                    subscriptions: &subscriptions,
                    carry_in: &carry,
                })
            })
            .await?;
            let ids = omitted.iter().map(SignedReceipt::id).collect();
            return self
                .dispute(&last, Kind::Omitted, ids, claimed.digest())
                .await;
        }
        if tally.digest() != last.body.tally {
            warn!(%home, %month, "the bundle's tally digest is not the inputs'");
            return self
                .dispute(&last, Kind::Computation, Vec::new(), tally.digest())
                .await;
        }
        // Fraud: what the detectors flag, less what a verdict already judged.
        let receipts = self
            .gather
            .receipts(&sets.receipts, &sources)
            .await?
            .unwrap_or_default();
        let judged = self.judged(&view, &reviewers).await?;
        let store = self.store().clone();
        let (findings, receipts) = blocking(move || {
            let tracks = detectors::tracks_of(&store.manifests()?);
            Ok::<_, Error>((detectors::detect(&receipts, &tracks), receipts))
        })
        .await?;
        let suspect: Vec<ContentHash> = detectors::flagged(&findings)
            .into_iter()
            .filter(|id| !judged.contains(id))
            .collect();
        if !suspect.is_empty() {
            for f in &findings {
                warn!(%home, %month, detector = ?f.detector, subject = %f.subject, figure = f.figure, threshold = f.threshold, "flagged");
            }
            let out: BTreeSet<&ContentHash> = suspect.iter().collect();
            let kept: Vec<SignedReceipt> = receipts
                .into_iter()
                .filter(|r| !out.contains(&r.id()))
                .collect();
            let subscriptions = self
                .gather
                .subscriptions(&sets.subscriptions, &sources)
                .await?
                .unwrap_or_default();
            let carry = sets.carry.clone();
            let claimed = blocking(move || {
                settle_verified(Input {
                    month,
                    receipts: &kept,
                    subscriptions: &subscriptions,
                    carry_in: &carry,
                })
            })
            .await?;
            return self
                .dispute(&last, Kind::Suspect, suspect, claimed.digest())
                .await;
        }
        self.attest(&last, role, rank).await
    }

    /// Whether the bundle's exclusions are exactly those of the standing verdicts on the
    /// month's earlier rounds.
    async fn excluded_by_verdicts(
        &self,
        view: &MonthView,
        reviewers: &Reviewers,
        sets: &Sets,
    ) -> Result<bool, Error> {
        let mut expected = BTreeSet::new();
        for d in view.disputes.iter().filter(|d| counted(reviewers, d)) {
            let Some(v) = view.verdict(&d.id(), reviewers) else {
                continue;
            };
            if v.body.outcome == Outcome::Rejected {
                continue;
            }
            let roots = Roots {
                receipts: Some(v.body.added),
                excluded: Some(v.body.excluded),
                ..Roots::default()
            };
            let Some(vs) = self
                .gather
                .sets(&v.id(), &roots, &[v.body.arbiter, d.body.by])
                .await?
            else {
                return Ok(false);
            };
            expected.extend(vs.excluded);
        }
        Ok(sets.excluded.iter().copied().collect::<BTreeSet<_>>() == expected)
    }

    /// The receipts a standing verdict on a suspect dispute of the month already judged
    /// (excluded or kept): they are not disputed again.
    async fn judged(
        &self,
        view: &MonthView,
        reviewers: &Reviewers,
    ) -> Result<BTreeSet<ContentHash>, Error> {
        let mut out = BTreeSet::new();
        for d in view
            .disputes
            .iter()
            .filter(|d| d.body.kind == Kind::Suspect && counted(reviewers, d))
        {
            if view.verdict(&d.id(), reviewers).is_none() {
                continue;
            }
            let roots = Roots {
                receipts: Some(d.body.evidence),
                ..Roots::default()
            };
            if let Some(evidence) = self.gather.sets(&d.id(), &roots, &[d.body.by]).await? {
                out.extend(evidence.receipts);
            }
        }
        Ok(out)
    }

    /// What `home`'s last bundle of the month before `month` carries out in all (0 without
    /// one); `None` while its inputs cannot be had.
    async fn carried_out(
        &self,
        home: PublicKey,
        month: Month,
        sources: &[PublicKey],
    ) -> Result<Option<u64>, Error> {
        let Some(before) = month.previous() else {
            return Ok(Some(0));
        };
        let view = MonthView::load(self.store(), &home, before)?;
        let Some(last) = view.last() else {
            return Ok(Some(0));
        };
        Ok(self
            .recompute(last, sources)
            .await?
            .map(|t| t.carry_out.values().map(|u| u.0).sum()))
    }

    async fn dispute(
        &self,
        bundle: &SignedBundle,
        kind: Kind,
        evidence: Vec<ContentHash>,
        claimed: ContentHash,
    ) -> Result<(), Error> {
        let evidence = sorted(evidence);
        let d = Record::sign(
            Dispute {
                bundle: bundle.id(),
                kind,
                evidence: root(evidence.iter().copied()),
                claimed,
                by: self.me(),
            },
            &self.key,
        );
        let sets = Sets {
            receipts: evidence,
            ..Sets::default()
        };
        self.store().put_sets(&d.id(), &sets)?;
        self.put_and_publish(ReviewRecord::Dispute(d)).await
    }

    // --- the arbiter -----------------------------------------------------------------------

    async fn as_arbiter(
        &self,
        home: PublicKey,
        month: Month,
        directory: &Directory,
    ) -> Result<(), Error> {
        let me = self.me();
        let Ok(reviewers) = Reviewers::choose(directory, &home) else {
            return Ok(());
        };
        let view = MonthView::load(self.store(), &home, month)?;
        let due = schedule::arbiter_rank_due(month, self.gather.clock.now_ms());
        for bundle in &view.bundles {
            let id = bundle.id();
            let arbiters = reviewers.arbiters_of_round(&id, &view.attestations, &view.disputes);
            let Some(rank) = arbiters.iter().position(|k| *k == me) else {
                continue;
            };
            let Ok(rank) = u8::try_from(rank) else {
                continue;
            };
            if rank > due {
                continue;
            }
            for d in view.disputes_of(&id).filter(|d| counted(&reviewers, d)) {
                if view.verdict(&d.id(), &reviewers).is_some() {
                    continue;
                }
                self.decide(home, bundle, d, rank).await?;
            }
        }
        Ok(())
    }

    /// Decides dispute `d` of `bundle` as the arbiter of `rank`, when it can.
    async fn decide(
        &self,
        home: PublicKey,
        bundle: &SignedBundle,
        d: &SignedDispute,
        rank: u8,
    ) -> Result<(), Error> {
        let sources = [d.body.by, home];
        let month = bundle.body.month;
        let (outcome, excluded, added) = match d.body.kind {
            Kind::Omitted => {
                let roots = Roots {
                    receipts: Some(d.body.evidence),
                    ..Roots::default()
                };
                let Some(evidence) = self.gather.sets(&d.id(), &roots, &sources).await? else {
                    return Ok(());
                };
                let Some(inputs) = self
                    .gather
                    .sets(&bundle.id(), &Roots::of_bundle(bundle), &sources)
                    .await?
                else {
                    return Ok(());
                };
                let Some(receipts) = self.gather.receipts(&evidence.receipts, &sources).await?
                else {
                    return Ok(());
                };
                let named: BTreeSet<&ContentHash> =
                    inputs.receipts.iter().chain(&inputs.excluded).collect();
                // Receipts are self-authenticating: every valid one of the month left out is
                // added (those held here were checked when they were stored).
                let added: Vec<ContentHash> = receipts
                    .iter()
                    .filter(|r| {
                        r.receipt.home_node == home
                            && month.contains(r.receipt.started_at_ms)
                            && !named.contains(&r.id())
                    })
                    .map(SignedReceipt::id)
                    .collect();
                let outcome = if added.is_empty() {
                    Outcome::Rejected
                } else if added.len() == evidence.receipts.len() {
                    Outcome::Upheld
                } else {
                    Outcome::Partly
                };
                (outcome, Vec::new(), added)
            }
            Kind::Computation => {
                let Some(tally) = self.recompute(bundle, &sources).await? else {
                    return Ok(());
                };
                let outcome = if tally.digest() == bundle.body.tally {
                    Outcome::Rejected
                } else {
                    Outcome::Upheld
                };
                (outcome, Vec::new(), Vec::new())
            }
            Kind::Suspect => {
                if self.options.suspects == Arbitration::Manual {
                    debug!(dispute = %d.id(), "a suspect dispute waits for the operator");
                    return Ok(());
                }
                let Some((evidence, findings)) = self.weigh(home, bundle, d).await? else {
                    return Ok(());
                };
                // The automatic policy: exclude what this node's own detectors flag too.
                let flagged = detectors::flagged(&findings);
                let excluded: Vec<ContentHash> = evidence
                    .iter()
                    .filter(|id| flagged.contains(id))
                    .copied()
                    .collect();
                let outcome = if excluded.is_empty() {
                    Outcome::Rejected
                } else if excluded.len() == evidence.len() {
                    Outcome::Upheld
                } else {
                    Outcome::Partly
                };
                (outcome, excluded, Vec::new())
            }
            Kind::Carry => {
                debug!(dispute = %d.id(), "carry disputes are decided by the operator");
                return Ok(());
            }
        };
        self.verdict(d, outcome, excluded, added, rank).await
    }

    /// A suspect dispute's evidence and the findings of this node's detectors over the
    /// bundle's receipts; `None` while they cannot be had.
    pub async fn weigh(
        &self,
        home: PublicKey,
        bundle: &SignedBundle,
        d: &SignedDispute,
    ) -> Result<Option<(Vec<ContentHash>, Vec<detectors::Finding>)>, Error> {
        let sources = [d.body.by, home];
        let roots = Roots {
            receipts: Some(d.body.evidence),
            ..Roots::default()
        };
        let Some(evidence) = self.gather.sets(&d.id(), &roots, &sources).await? else {
            return Ok(None);
        };
        let Some(inputs) = self
            .gather
            .sets(&bundle.id(), &Roots::of_bundle(bundle), &sources)
            .await?
        else {
            return Ok(None);
        };
        let Some(receipts) = self.gather.receipts(&inputs.receipts, &sources).await? else {
            return Ok(None);
        };
        let store = self.store().clone();
        let findings = blocking(move || {
            let tracks = detectors::tracks_of(&store.manifests()?);
            Ok::<_, Error>(detectors::detect(&receipts, &tracks))
        })
        .await?;
        let evidence_set: BTreeSet<&ContentHash> = evidence.receipts.iter().collect();
        let findings = findings
            .into_iter()
            .filter(|f| f.receipts.iter().any(|r| evidence_set.contains(r)))
            .collect();
        Ok(Some((evidence.receipts, findings)))
    }

    async fn verdict(
        &self,
        d: &SignedDispute,
        outcome: Outcome,
        excluded: Vec<ContentHash>,
        added: Vec<ContentHash>,
        rank: u8,
    ) -> Result<(), Error> {
        let (excluded, added) = (sorted(excluded), sorted(added));
        let v = Record::sign(
            Verdict {
                dispute: d.id(),
                outcome,
                excluded: root(excluded.iter().copied()),
                added: root(added.iter().copied()),
                rank,
                arbiter: self.me(),
            },
            &self.key,
        );
        let sets = Sets {
            receipts: added,
            excluded,
            ..Sets::default()
        };
        self.store().put_sets(&v.id(), &sets)?;
        info!(dispute = %d.id(), ?outcome, "verdict");
        self.put_and_publish(ReviewRecord::Verdict(v)).await
    }
}

/// A dispute, with the home node and month it is about.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DisputeEntry {
    /// The home node.
    pub home: PublicKey,
    /// The month.
    pub month: Month,
    /// The dispute and its verdict.
    pub dispute: view::DisputeStatus,
}

/// A dispute as `9ten dispute show` shows it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DisputeDetail {
    /// What it is about.
    pub entry: DisputeEntry,
    /// The signed dispute's JSON form.
    pub dispute: serde_json::Value,
    /// How many receipts are in question (when the evidence is held).
    pub evidence: Option<usize>,
    /// What this node's detectors find among them (suspect disputes).
    pub findings: Vec<detectors::Finding>,
    /// This node's rank among the dispute's arbiters, if it is one.
    pub arbiter_rank: Option<u8>,
}

/// A verdict's sets to apply in a re-issue, with the nodes that hold its receipts (the
/// arbiter, the objector).
type Change = (Sets, [PublicKey; 2]);

/// Whether a dispute counts: its objector is a reviewer the directory names for the month.
fn counted(reviewers: &Reviewers, d: &SignedDispute) -> bool {
    reviewers.cluster_peers.contains(&d.body.by) || reviewers.externals.contains(&d.body.by)
}

/// Where a bundle's inputs can be had: the home node, then those who answered it.
fn sources(
    view: &MonthView,
    bundle: &ContentHash,
    home: PublicKey,
    me: PublicKey,
) -> Vec<PublicKey> {
    let mut out = vec![home];
    let answered = view
        .attestations
        .iter()
        .filter(|a| a.body.bundle == *bundle)
        .map(|a| a.body.reviewer)
        .chain(view.disputes_of(bundle).map(|d| d.body.by));
    for k in answered {
        if k != me && !out.contains(&k) {
            out.push(k);
        }
    }
    out
}

fn sorted(ids: impl IntoIterator<Item = ContentHash>) -> Vec<ContentHash> {
    let mut v: Vec<ContentHash> = ids.into_iter().collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// Runs blocking work (the store over a whole month, settlement) off the async threads.
async fn blocking<T: Send + 'static, E: Into<Error>>(
    work: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(move || work().map_err(Into::into))
        .await
        .map_err(|e| Error::Review(format!("a blocking task failed: {e}")))?
}
