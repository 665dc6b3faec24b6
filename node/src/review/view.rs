//! What a node holds of one home node's month (`review.md`): its bundles by round, the
//! attestations and disputes of each, the verdicts on those disputes and its daily reports,
//! read from the store; and the month's status as an operator reads it: the round, who signed,
//! what is disputed and decided, and what the month waits for.

use nineten_protocol::bundle::SignedBundle;
use nineten_protocol::daily::SignedDailyReport;
use nineten_protocol::directory::Directory;
use nineten_protocol::key::{ContentHash, PublicKey};
use nineten_protocol::month::Month;
use nineten_protocol::payout::SignedPayout;
use nineten_protocol::review::{Outcome, Role, SignedAttestation, SignedDispute, SignedVerdict};
use nineten_protocol::review_record::{ReviewRecord, Subject};
use nineten_protocol::reviewers::Reviewers;
use nineten_protocol::schedule;
use nineten_storage::Store;
use serde::{Deserialize, Serialize};

/// The review records of one home node's month held here.
#[derive(Clone, Debug, Default)]
pub struct MonthView {
    /// Bundles, by round (then id).
    pub bundles: Vec<SignedBundle>,
    /// Attestations of those bundles.
    pub attestations: Vec<SignedAttestation>,
    /// Disputes of those bundles.
    pub disputes: Vec<SignedDispute>,
    /// Verdicts on those disputes.
    pub verdicts: Vec<SignedVerdict>,
    /// Daily reports, by day.
    pub daily: Vec<SignedDailyReport>,
    /// Payout statements, by artist.
    pub payouts: Vec<SignedPayout>,
}

impl MonthView {
    /// Reads `home`'s `month` from the store.
    pub fn load(
        store: &Store,
        home: &PublicKey,
        month: Month,
    ) -> Result<Self, nineten_storage::Error> {
        let mut view = Self::default();
        for r in store.reviews_of(&Subject::Month(*home, month))? {
            match r {
                ReviewRecord::Bundle(b) => view.bundles.push(b),
                ReviewRecord::Daily(d) => view.daily.push(d),
                ReviewRecord::Payout(p) => view.payouts.push(p),
                _ => {}
            }
        }
        view.bundles.sort_by_key(|b| (b.body.round, b.id()));
        view.daily.sort_by_key(|d| d.body.day);
        view.payouts.sort_by_key(|p| p.body.artist);
        for b in &view.bundles {
            for r in store.reviews_of(&Subject::Bundle(b.id()))? {
                match r {
                    ReviewRecord::Attestation(a) => view.attestations.push(a),
                    ReviewRecord::Dispute(d) => view.disputes.push(d),
                    _ => {}
                }
            }
        }
        for d in &view.disputes {
            for r in store.reviews_of(&Subject::Dispute(d.id()))? {
                if let ReviewRecord::Verdict(v) = r {
                    view.verdicts.push(v);
                }
            }
        }
        Ok(view)
    }

    /// The payout statements signed from the last bundle.
    pub fn statements(&self) -> impl Iterator<Item = &SignedPayout> + '_ {
        let last = self.last().map(|b| b.id());
        self.payouts
            .iter()
            .filter(move |p| Some(p.body.bundle) == last)
    }

    /// The last bundle: the highest round.
    pub fn last(&self) -> Option<&SignedBundle> {
        self.bundles.last()
    }

    /// The attestation that counts for `role` on `bundle`, under `reviewers`.
    pub fn attestation(
        &self,
        bundle: &SignedBundle,
        role: Role,
        reviewers: &Reviewers,
    ) -> Option<&SignedAttestation> {
        self.attestations
            .iter()
            .filter(|a| a.body.role == role && reviewers.counts(&a.body, bundle))
            .min_by_key(|a| a.body.rank)
    }

    /// Whether the last bundle has its three attestations.
    pub fn verified(&self, reviewers: &Reviewers) -> bool {
        self.last().is_some_and(|b| {
            [Role::Home, Role::Cluster, Role::External]
                .iter()
                .all(|role| self.attestation(b, *role, reviewers).is_some())
        })
    }

    /// The disputes of `bundle`.
    pub fn disputes_of<'a>(
        &'a self,
        bundle: &'a ContentHash,
    ) -> impl Iterator<Item = &'a SignedDispute> + 'a {
        self.disputes
            .iter()
            .filter(move |d| d.body.bundle == *bundle)
    }

    /// The verdict that stands on a dispute: of those by the arbiter of their rank for the
    /// disputed round, the latest rank's (an appeal's), if any.
    pub fn verdict(&self, dispute: &ContentHash, reviewers: &Reviewers) -> Option<&SignedVerdict> {
        let d = self.disputes.iter().find(|d| d.id() == *dispute)?;
        let arbiters =
            reviewers.arbiters_of_round(&d.body.bundle, &self.attestations, &self.disputes);
        self.verdicts
            .iter()
            .filter(|v| {
                v.body.dispute == *dispute
                    && arbiters.get(usize::from(v.body.rank)) == Some(&v.body.arbiter)
            })
            .max_by_key(|v| v.body.rank)
    }

    /// Whether `node` signed an attestation or a dispute of `bundle`.
    pub fn answered(&self, bundle: &ContentHash, node: &PublicKey) -> bool {
        self.attestations
            .iter()
            .any(|a| a.body.bundle == *bundle && a.body.reviewer == *node)
            || self.disputes_of(bundle).any(|d| d.body.by == *node)
    }
}

/// One signer, as the status shows it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Signer {
    /// Its key.
    pub node: PublicKey,
    /// Its rank.
    pub rank: u8,
}

/// A dispute, as the status shows it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DisputeStatus {
    /// The dispute's id.
    pub id: ContentHash,
    /// The round disputed.
    pub round: u8,
    /// Its kind (`omitted`, `suspect`, `computation`, `carry`).
    pub kind: nineten_protocol::review::Kind,
    /// Who objects.
    pub by: PublicKey,
    /// The verdict that stands, if any.
    pub outcome: Option<Outcome>,
    /// Who decided.
    pub arbiter: Option<PublicKey>,
}

/// A home node's month, as `9ten month status` shows it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Status {
    /// The home node.
    pub home: PublicKey,
    /// Its name in the directory.
    pub name: String,
    /// The month.
    pub month: Month,
    /// The last bundle's round, if there is a bundle.
    pub round: Option<u8>,
    /// The last bundle's id.
    pub bundle: Option<ContentHash>,
    /// The tally digest of the last bundle.
    pub tally: Option<ContentHash>,
    /// The home node's own attestation of the last bundle.
    pub home_attestation: Option<Signer>,
    /// The cluster peer's.
    pub cluster: Option<Signer>,
    /// The external node's.
    pub external: Option<Signer>,
    /// Every dispute of the month, with its verdict.
    pub disputes: Vec<DisputeStatus>,
    /// Daily reports held.
    pub daily_reports: usize,
    /// Whether the tally is verified.
    pub verified: bool,
    /// Payout statements held from the last bundle, and the units they state in all.
    pub payouts: usize,
    /// The units those statements state.
    pub paid_units: u64,
    /// What the month waits for, and why (empty once verified).
    pub waiting_for: String,
}

/// The status of `home`'s `month` at `now_ms`, from `view` under `directory`.
pub fn status(
    view: &MonthView,
    directory: &Directory,
    home: &PublicKey,
    month: Month,
    now_ms: u64,
) -> Status {
    let name = directory
        .get(home)
        .map(|r| r.name.as_str().to_string())
        .unwrap_or_default();
    let reviewers = Reviewers::choose(directory, home);
    let last = view.last();
    let signer = |role| {
        let (b, rv) = (last?, reviewers.as_ref().ok()?);
        view.attestation(b, role, rv).map(|a| Signer {
            node: a.body.reviewer,
            rank: a.body.rank,
        })
    };
    let round_of = |bundle: &ContentHash| {
        view.bundles
            .iter()
            .find(|b| b.id() == *bundle)
            .map_or(0, |b| b.body.round)
    };
    let disputes = view
        .disputes
        .iter()
        .map(|d| {
            let v = reviewers
                .as_ref()
                .ok()
                .and_then(|rv| view.verdict(&d.id(), rv));
            DisputeStatus {
                id: d.id(),
                round: round_of(&d.body.bundle),
                kind: d.body.kind,
                by: d.body.by,
                outcome: v.map(|v| v.body.outcome),
                arbiter: v.map(|v| v.body.arbiter),
            }
        })
        .collect::<Vec<_>>();
    let verified = reviewers.as_ref().is_ok_and(|rv| view.verified(rv));
    let (home_attestation, cluster, external) = (
        signer(Role::Home),
        signer(Role::Cluster),
        signer(Role::External),
    );
    let statements: Vec<&SignedPayout> = view.statements().collect();
    let late = now_ms > schedule::payout_deadline_ms(month);
    let mut waiting_for = if verified && statements.is_empty() {
        "the home node's payout statements".to_string()
    } else if verified {
        String::new()
    } else if let Err(why) = &reviewers {
        format!("no review is possible: {why}")
    } else if now_ms < schedule::close_ms(month) {
        format!(
            "the close, at {} (day 2 of the next month, 00:00 UTC)",
            crate::review::utc(schedule::close_ms(month))
        )
    } else if last.is_none() {
        "the home node's bundle".to_string()
    } else if let Some(d) = disputes.iter().find(|d| d.outcome.is_none()) {
        format!("the arbiter's verdict on dispute {} ({:?})", d.id, d.kind)
    } else if home_attestation.is_none() {
        "the home node's own attestation".to_string()
    } else if disputes.iter().any(|d| {
        d.round == last.map_or(0, |b| b.body.round) && d.outcome != Some(Outcome::Rejected)
    }) {
        "the home node's re-issued bundle, with the verdict applied".to_string()
    } else {
        let rv = reviewers.as_ref().expect("checked above");
        let due = schedule::reviewer_rank_due(month, now_ms);
        let mut missing = Vec::new();
        if cluster.is_none() {
            missing.push(format!(
                "the cluster peer (rank {due} asked: {})",
                rv.cluster_peer(due.min(rv.cluster_peers.len().saturating_sub(1) as u8))
                    .map_or("none left".to_string(), |k| k.to_string())
            ));
        }
        if external.is_none() {
            missing.push(format!(
                "the external node (rank {due} asked: {})",
                rv.external(due.min(rv.externals.len().saturating_sub(1) as u8))
                    .map_or("none left".to_string(), |k| k.to_string())
            ));
        }
        format!("attestations of {}", missing.join(" and "))
    };
    if late && !verified {
        waiting_for = format!(
            "late, not verified by the payout deadline ({}), so no artist is paid yet: {waiting_for}",
            crate::review::utc(schedule::payout_deadline_ms(month))
        );
    }
    Status {
        home: *home,
        name,
        month,
        round: last.map(|b| b.body.round),
        bundle: last.map(|b| b.id()),
        tally: last.map(|b| b.body.tally),
        home_attestation,
        cluster,
        external,
        disputes,
        daily_reports: view.daily.len(),
        verified,
        payouts: statements.len(),
        paid_units: statements.iter().map(|p| p.body.units.0).sum(),
        waiting_for,
    }
}
