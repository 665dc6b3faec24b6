//! `9ten month audit`: a home node's exported month checked alone, offline.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use nineten_protocol::audit::MonthRecords;
use nineten_protocol::bundle::SignedBundle;
use nineten_protocol::daily::SignedDailyReport;
use nineten_protocol::node_record::SignedNodeRecord;
use nineten_protocol::receipt::SignedReceipt;
use nineten_protocol::review::{SignedAttestation, SignedDispute, SignedVerdict};
use nineten_protocol::subscription::SignedSubscription;
use serde_json::json;

use crate::input::{read_carry, read_records};

/// Reads the export folder of `review.md`, "What an auditor can check alone".
fn read_export(dir: &Path) -> Result<MonthRecords> {
    let file = |name: &str| dir.join(name);
    Ok(MonthRecords {
        nodes: read_records(&file("nodes.jsonl"), SignedNodeRecord::from_json)?,
        receipts: read_records(&file("receipts.jsonl"), SignedReceipt::from_json)?,
        excluded: read_records(&file("excluded.jsonl"), SignedReceipt::from_json)?,
        subscriptions: read_records(&file("subscriptions.jsonl"), SignedSubscription::from_json)?,
        carry: read_carry(&file("carry.json"))?,
        daily: read_records(&file("daily.jsonl"), SignedDailyReport::from_json)?,
        bundles: read_records(&file("bundles.jsonl"), SignedBundle::from_json)?,
        attestations: read_records(&file("attestations.jsonl"), SignedAttestation::from_json)?,
        disputes: read_records(&file("disputes.jsonl"), SignedDispute::from_json)?,
        verdicts: read_records(&file("verdicts.jsonl"), SignedVerdict::from_json)?,
    })
}

pub(crate) fn audit(dir: &Path, json_out: bool) -> Result<ExitCode> {
    let records = read_export(dir)?;
    let audited = nineten_protocol::audit::audit(&records)
        .with_context(|| format!("cannot audit {}", dir.display()))?;
    let verified = audited.verified();
    if json_out {
        let checks: Vec<_> = audited
            .checks
            .iter()
            .map(|c| json!({"check": c.name, "passed": c.passed, "detail": c.detail}))
            .collect();
        println!(
            "{}",
            json!({
                "home": audited.home.to_string(),
                "month": audited.month.to_string(),
                "round": audited.round,
                "digest": audited.tally.digest().to_string(),
                "verified": verified,
                "checks": checks,
            })
        );
    } else {
        println!(
            "9ten month audit of {} for {}, round {}",
            audited.home, audited.month, audited.round
        );
        println!();
        for c in &audited.checks {
            let mark = if c.passed { "ok  " } else { "FAIL" };
            println!("{mark}  {:<22} {}", c.name, c.detail);
        }
        println!();
        println!("digest   {}", audited.tally.digest());
        println!(
            "verdict  {}",
            if verified {
                "verified: three attestations by the nodes the directory names, every check passed"
            } else {
                "NOT verified"
            }
        );
    }
    Ok(if verified {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
