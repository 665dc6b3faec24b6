//! The audit of a home node's month from its exported records alone (`review.md`, "What an
//! auditor can check alone"): every root, the tally digest, the choice of reviewers and every
//! signature, and whether the tally is verified. Pure: the caller reads the folder.

use std::collections::{BTreeMap, BTreeSet};

use crate::bundle::{SignedBundle, carry_digest};
use crate::daily::SignedDailyReport;
use crate::directory::Directory;
use crate::key::{ContentHash, PublicKey};
use crate::money::MicroUsdp;
use crate::month::Month;
use crate::node_record::SignedNodeRecord;
use crate::receipt::SignedReceipt;
use crate::record::root;
use crate::review::{Role, SignedAttestation, SignedDispute, SignedVerdict};
use crate::reviewers::Reviewers;
use crate::settlement::{Input, SettlementError, settle};
use crate::signature::verify_all;
use crate::subscription::SignedSubscription;
use crate::tally::Tally;

/// The records of one home node's month, as the export holds them.
#[derive(Clone, Debug, Default)]
pub struct MonthRecords {
    /// `nodes.jsonl`: the directory used.
    pub nodes: Vec<SignedNodeRecord>,
    /// `receipts.jsonl`: the receipts the last bundle's `receipts` root names.
    pub receipts: Vec<SignedReceipt>,
    /// `excluded.jsonl`: those its `excluded` root names.
    pub excluded: Vec<SignedReceipt>,
    /// `subscriptions.jsonl`.
    pub subscriptions: Vec<SignedSubscription>,
    /// `carry.json`.
    pub carry: BTreeMap<PublicKey, MicroUsdp>,
    /// `daily.jsonl`.
    pub daily: Vec<SignedDailyReport>,
    /// `bundles.jsonl`: every round, in order.
    pub bundles: Vec<SignedBundle>,
    /// `attestations.jsonl`.
    pub attestations: Vec<SignedAttestation>,
    /// `disputes.jsonl`.
    pub disputes: Vec<SignedDispute>,
    /// `verdicts.jsonl`.
    pub verdicts: Vec<SignedVerdict>,
}

impl MonthRecords {
    /// The export folder's files (`review.md`, "What an auditor can check alone"), each name
    /// with its text; `tally` is the last round's (`9ten tally --json`).
    pub fn files(&self, tally: &Tally) -> Vec<(&'static str, String)> {
        fn lines<T>(records: &[T], json: impl Fn(&T) -> String) -> String {
            records.iter().map(|r| json(r) + "\n").collect()
        }
        let carry: BTreeMap<String, u64> = self
            .carry
            .iter()
            .map(|(k, u)| (k.to_string(), u.0))
            .collect();
        vec![
            ("nodes.jsonl", lines(&self.nodes, SignedNodeRecord::to_json)),
            (
                "receipts.jsonl",
                lines(&self.receipts, SignedReceipt::to_json),
            ),
            (
                "excluded.jsonl",
                lines(&self.excluded, SignedReceipt::to_json),
            ),
            (
                "subscriptions.jsonl",
                lines(&self.subscriptions, SignedSubscription::to_json),
            ),
            (
                "carry.json",
                serde_json::to_string_pretty(&carry).expect("a map serializes") + "\n",
            ),
            (
                "daily.jsonl",
                lines(&self.daily, SignedDailyReport::to_json),
            ),
            ("bundles.jsonl", lines(&self.bundles, SignedBundle::to_json)),
            (
                "attestations.jsonl",
                lines(&self.attestations, SignedAttestation::to_json),
            ),
            (
                "disputes.jsonl",
                lines(&self.disputes, SignedDispute::to_json),
            ),
            (
                "verdicts.jsonl",
                lines(&self.verdicts, SignedVerdict::to_json),
            ),
            ("tally.json", tally.to_json() + "\n"),
        ]
    }
}

/// Why an export cannot be audited at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditError {
    /// `bundles.jsonl` is empty.
    #[error("the export has no bundle")]
    NoBundle,
    /// The bundles are not all of one home node and month.
    #[error("the bundles are of more than one home node or month")]
    MixedBundles,
    /// Settlement refused the inputs.
    #[error("cannot settle the month: {0}")]
    Settlement(#[from] SettlementError),
}

/// One thing checked, and what was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    /// What was checked (`receipts`, `tally`, `cluster attestation`, ...).
    pub name: &'static str,
    /// Whether it holds.
    pub passed: bool,
    /// What was found, for the reader.
    pub detail: String,
}

/// The outcome of an audit.
#[derive(Clone, Debug)]
pub struct Audit {
    /// The home node.
    pub home: PublicKey,
    /// The month.
    pub month: Month,
    /// The last bundle's round.
    pub round: u8,
    /// The tally recomputed from the last round's inputs.
    pub tally: Tally,
    /// Every check, in order.
    pub checks: Vec<Check>,
}

impl Audit {
    /// Verified: the last bundle has the three attestations of the nodes the directory names,
    /// and everything else checks out.
    pub fn verified(&self) -> bool {
        self.checks.iter().all(|c| c.passed)
    }
}

/// Audits an export.
pub fn audit(r: &MonthRecords) -> Result<Audit, AuditError> {
    let first = r.bundles.first().ok_or(AuditError::NoBundle)?;
    let (home, month) = (first.body.home, first.body.month);
    if r.bundles
        .iter()
        .any(|b| b.body.home != home || b.body.month != month)
    {
        return Err(AuditError::MixedBundles);
    }
    let mut checks = Vec::new();
    let mut check = |name: &'static str, passed: bool, detail: String| {
        checks.push(Check {
            name,
            passed,
            detail,
        })
    };

    let signed = verify_all(&r.bundles).iter().all(|ok| *ok);
    let rounds: Vec<u8> = r.bundles.iter().map(|b| b.body.round).collect();
    let in_order = rounds
        .iter()
        .enumerate()
        .all(|(i, round)| usize::from(*round) == i);
    check(
        "bundles",
        signed && in_order,
        format!(
            "{} round(s) {rounds:?}, {}, {}",
            r.bundles.len(),
            if signed {
                "all signed by the home node"
            } else {
                "a signature fails"
            },
            if in_order {
                "in order"
            } else {
                "not numbered 0, 1, ... in order"
            }
        ),
    );
    let last = r.bundles.last().expect("not empty").clone();
    let b = &last.body;

    let directory = Directory::for_month(month, &r.nodes);
    check(
        "directory",
        directory.root() == b.directory && directory.len() == r.nodes.len(),
        format!(
            "{} node record(s), {} in the directory for {month}; root {} the bundle's",
            r.nodes.len(),
            directory.len(),
            matches(directory.root() == b.directory)
        ),
    );

    let of_month =
        |x: &SignedReceipt| x.receipt.home_node == home && month.contains(x.receipt.started_at_ms);
    let used: BTreeSet<ContentHash> = r.receipts.iter().map(SignedReceipt::id).collect();
    let receipts_root = root(used.iter().copied());
    let foreign = r.receipts.iter().filter(|x| !of_month(x)).count();
    check(
        "receipts",
        receipts_root == b.receipts && foreign == 0,
        format!(
            "{} receipt(s), {foreign} not of this home node's month; root {} the bundle's",
            r.receipts.len(),
            matches(receipts_root == b.receipts)
        ),
    );
    let excluded_root = root(r.excluded.iter().map(SignedReceipt::id));
    let both = r.excluded.iter().filter(|x| used.contains(&x.id())).count();
    check(
        "excluded",
        excluded_root == b.excluded && both == 0,
        format!(
            "{} excluded receipt(s), {both} also used; root {} the bundle's",
            r.excluded.len(),
            matches(excluded_root == b.excluded)
        ),
    );
    let subscriptions_root = root(r.subscriptions.iter().map(SignedSubscription::id));
    let foreign = r
        .subscriptions
        .iter()
        .filter(|s| s.subscription.home_node != home || s.subscription.month != month)
        .count();
    check(
        "subscriptions",
        subscriptions_root == b.subscriptions && foreign == 0,
        format!(
            "{} subscription(s), {foreign} not of this home node's month; root {} the bundle's",
            r.subscriptions.len(),
            matches(subscriptions_root == b.subscriptions)
        ),
    );
    let carry = carry_digest(&r.carry);
    check(
        "carry",
        carry == b.carry,
        format!(
            "{} listener(s) carried in; digest {} the bundle's",
            r.carry.len(),
            matches(carry == b.carry)
        ),
    );

    let tally = settle(Input {
        month,
        receipts: &r.receipts,
        subscriptions: &r.subscriptions,
        carry_in: &r.carry,
    })?;
    let digest = tally.digest();
    check(
        "tally",
        digest == b.tally,
        format!("recomputed digest {digest}; the bundle says {}", b.tally),
    );

    let reviewers = Reviewers::choose(&directory, &home);
    let bundle_id = last.id();
    let valid: Vec<bool> = verify_all(&r.attestations);
    for (role, name) in [
        (Role::Home, "home attestation"),
        (Role::Cluster, "cluster attestation"),
        (Role::External, "external attestation"),
    ] {
        let found = r.attestations.iter().zip(&valid).find(|(a, ok)| {
            **ok && a.body.role == role
                && match &reviewers {
                    Ok(rv) => rv.counts(&a.body, &last),
                    // Without reviewers only the home node's own attestation can count.
                    Err(_) => {
                        role == Role::Home
                            && a.body.bundle == bundle_id
                            && a.body.tally == b.tally
                            && a.body.rank == 0
                            && a.body.reviewer == home
                    }
                }
        });
        let detail = match (found, &reviewers) {
            (Some((a, _)), _) => format!("signed by {} (rank {})", a.body.reviewer, a.body.rank),
            (None, Err(why)) if role != Role::Home => format!("no reviewer can be chosen: {why}"),
            (None, _) => format!(
                "no valid attestation of the last bundle by the node the directory names ({} attestation(s) in the export)",
                r.attestations.len()
            ),
        };
        check(name, found.is_some(), detail);
    }

    let disputes_signed = verify_all(&r.disputes).iter().all(|ok| *ok);
    check(
        "disputes",
        disputes_signed,
        format!(
            "{} dispute(s), {}",
            r.disputes.len(),
            if disputes_signed {
                "all signed"
            } else {
                "a signature fails"
            }
        ),
    );
    let (arbitrated, detail) = check_verdicts(r, &reviewers);
    check("verdicts", arbitrated, detail);
    let daily_ok = verify_all(&r.daily)
        .iter()
        .zip(&r.daily)
        .all(|(ok, d)| *ok && d.body.home == home && d.body.day.month() == month);
    check(
        "daily reports",
        daily_ok,
        format!(
            "{} report(s), {}",
            r.daily.len(),
            if daily_ok {
                "all signed by the home node, of this month"
            } else {
                "one is forged or of another node or month"
            }
        ),
    );

    Ok(Audit {
        home,
        month,
        round: b.round,
        tally,
        checks,
    })
}

/// Every verdict: signed, on a dispute of the export, by the arbiter of its rank for that
/// dispute's round (the external node that served in it excluded).
fn check_verdicts(
    r: &MonthRecords,
    reviewers: &Result<Reviewers, crate::reviewers::Unreviewable>,
) -> (bool, String) {
    let valid = verify_all(&r.verdicts);
    for (v, ok) in r.verdicts.iter().zip(valid) {
        let Some(dispute) = r.disputes.iter().find(|d| d.id() == v.body.dispute) else {
            return (
                false,
                format!(
                    "a verdict decides a dispute not in the export ({})",
                    v.body.dispute
                ),
            );
        };
        let Ok(rv) = reviewers else {
            return (
                false,
                "a verdict, but no reviewer can be chosen".to_string(),
            );
        };
        let arbiters = rv.arbiters_of_round(&dispute.body.bundle, &r.attestations, &r.disputes);
        let expected = arbiters.get(usize::from(v.body.rank));
        if !ok || expected != Some(&v.body.arbiter) {
            return (
                false,
                format!(
                    "the verdict on {} is {}",
                    v.body.dispute,
                    if ok {
                        "not by the arbiter of its rank"
                    } else {
                        "forged"
                    }
                ),
            );
        }
    }
    (
        true,
        format!(
            "{} verdict(s), each by the arbiter of its rank",
            r.verdicts.len()
        ),
    )
}

fn matches(yes: bool) -> &'static str {
    if yes { "matches" } else { "differs from" }
}
