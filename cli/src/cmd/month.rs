//! `9ten month`: a month's review as the running node sees it (`status`), a home node's
//! month written out as review.md's folder (`export`), and such a folder checked alone,
//! offline (`audit`).

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

use crate::cmd::node::with_running;
use crate::input::{read_carry, read_records};

pub(crate) fn status(
    data_dir: &nineten_node::config::DataDir,
    month: nineten_protocol::month::Month,
    home: Option<nineten_protocol::key::PublicKey>,
    json_out: bool,
) -> Result<ExitCode> {
    let mut all = with_running(data_dir, async |c| Ok(c.month_status(month).await?))?;
    if let Some(home) = home {
        all.retain(|s| s.home == home);
        if all.is_empty() {
            anyhow::bail!("{home} is no home node of the directory for {month} on this node");
        }
    }
    if json_out {
        println!("{}", serde_json::to_string_pretty(&all)?);
        return Ok(ExitCode::SUCCESS);
    }
    if all.is_empty() {
        println!("no home node in this node's directory for {month}");
    }
    for s in &all {
        println!("{} {} ({month})", s.home, s.name);
        let signer = |x: &Option<nineten_node::review::view::Signer>| match x {
            Some(x) => format!("{} (rank {})", x.node, x.rank),
            None => "-".to_string(),
        };
        match (s.round, &s.tally) {
            (Some(round), Some(tally)) => println!("  bundle     round {round}, tally {tally}"),
            _ => println!("  bundle     none yet"),
        }
        println!("  home       {}", signer(&s.home_attestation));
        println!("  cluster    {}", signer(&s.cluster));
        println!("  external   {}", signer(&s.external));
        for d in &s.disputes {
            let outcome = d
                .outcome
                .map_or("waiting for the arbiter".to_string(), |o| {
                    format!(
                        "{o:?} by {}",
                        d.arbiter.map(|a| a.to_string()).unwrap_or_default()
                    )
                    .to_lowercase()
                });
            println!(
                "  dispute    {} round {} {:?} by {}: {outcome}",
                d.id, d.round, d.kind, d.by
            );
        }
        println!("  daily      {} report(s)", s.daily_reports);
        if s.verified {
            println!("  verified   yes");
            println!(
                "  payouts    {} statement(s), {} units",
                s.payouts,
                nineten_protocol::money::MicroUsdp(s.paid_units)
            );
            if !s.waiting_for.is_empty() {
                println!("             waiting for {}", s.waiting_for);
            }
        } else {
            println!("  verified   no: waiting for {}", s.waiting_for);
        }
        println!();
    }
    Ok(ExitCode::SUCCESS)
}

/// `9ten month mine M`: the listener's month, checked.
pub(crate) fn mine(
    data_dir: &nineten_node::config::DataDir,
    month: nineten_protocol::month::Month,
    json_out: bool,
) -> Result<ExitCode> {
    use nineten_protocol::money::MicroUsdp;
    let m = with_running(data_dir, async |c| Ok(c.month_mine(month).await?))?;
    if json_out {
        println!("{}", serde_json::to_string_pretty(&m)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("listener {} ({month})", m.listener);
    match m.home {
        Some(h) => println!("home node {h}"),
        None => println!("home node none"),
    }
    println!("receipts {}", m.receipts.len());
    for r in &m.receipts {
        println!(
            "  #{:<5} {}  artist {}  {:>4} s  {:<24} {}",
            r.seq,
            nineten_node::review::utc(r.started_at_ms),
            &r.artist.to_string()[..12],
            r.listened_ms / 1000,
            format!("{:?}", r.judgement).to_lowercase(),
            r.in_bundle.as_deref().unwrap_or("")
        );
    }
    println!(
        "pool {} USDP (9 + carry-in {})",
        MicroUsdp(9_000_000 + m.carry_in),
        MicroUsdp(m.carry_in)
    );
    println!("top {}", m.top.len());
    for (i, a) in m.top.iter().enumerate() {
        let covered = match a.covered {
            Some(true) => "statement covers it",
            Some(false) => "STATEMENT SHORT",
            None => "",
        };
        println!(
            "  {:>2}. {}  {:>3} plays  {:>14} USDP  {covered}",
            i + 1,
            a.artist,
            a.plays,
            MicroUsdp(a.units).to_string()
        );
    }
    if m.carry_out > 0 {
        println!("carry-out {} USDP", MicroUsdp(m.carry_out));
    }
    for r in &m.rounds {
        match r.checked_with {
            Some(node) => println!(
                "round {}: {} counted, {} excluded, {} left out (asked {})",
                r.round,
                r.counted,
                r.excluded,
                r.left_out,
                &node.to_string()[..12]
            ),
            None => println!("round {}: nobody answered", r.round),
        }
    }
    println!("{}", m.verdict);
    Ok(ExitCode::SUCCESS)
}

/// `9ten earnings --artist-key KEY`: per month and home node, what the artist is owed.
pub(crate) fn earnings(
    data_dir: &nineten_node::config::DataDir,
    artist: nineten_protocol::key::PublicKey,
    json_out: bool,
) -> Result<ExitCode> {
    use nineten_node::review::earnings::Standing;
    let all = with_running(data_dir, async |c| Ok(c.earnings(&artist).await?))?;
    if json_out {
        println!("{}", serde_json::to_string_pretty(&all)?);
        return Ok(ExitCode::SUCCESS);
    }
    if all.is_empty() {
        println!("no month of the last 13 names {artist}: no statement and no receipt held here");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<8} {:<24} {:>16}  standing",
        "month", "home node", "USDP"
    );
    for e in &all {
        let standing = match e.standing {
            Standing::Owed => "owed",
            Standing::Open => "open (estimate)",
            Standing::InReview => "in review (estimate)",
        };
        let home = format!("{} {}", &e.home.to_string()[..8], e.name);
        println!(
            "{:<8} {:<24} {:>16}  {standing}",
            e.month.to_string(),
            home.chars().take(24).collect::<String>(),
            nineten_protocol::money::MicroUsdp(e.units).to_string()
        );
        println!("{:<8} {}", "", e.why);
    }
    let owed: u64 = all
        .iter()
        .filter(|e| e.standing == Standing::Owed)
        .map(|e| e.units)
        .sum();
    println!(
        "owed from verified tallies: {} USDP",
        nineten_protocol::money::MicroUsdp(owed)
    );
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn day(
    data_dir: &nineten_node::config::DataDir,
    day: nineten_protocol::daily::Day,
    json_out: bool,
) -> Result<ExitCode> {
    let report = with_running(data_dir, async |c| Ok(c.day(day).await?))?;
    if json_out {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    let r = &report.report;
    println!(
        "daily report of {day} by {}",
        r["home"].as_str().unwrap_or("?")
    );
    println!(
        "  receipts  {} (root {})",
        r["count"],
        r["receipts"].as_str().unwrap_or("?")
    );
    println!("  artists   {}", r["artists"].as_str().unwrap_or("?"));
    println!();
    println!(
        "{:<16} {:<16} {:<16} {:>6} {:>9} {:>12}",
        "listener", "track", "artist", "plays", "qualified", "listened"
    );
    for row in &report.detail.rows {
        println!(
            "{:<16} {:<16} {:<16} {:>6} {:>9} {:>10} s",
            &row.listener.to_string()[..16],
            &row.track.to_string()[..16],
            &row.artist.to_string()[..16],
            row.plays,
            row.qualified,
            row.listened_ms / 1000
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn dispute_line(e: &nineten_node::review::DisputeEntry) -> String {
    let d = &e.dispute;
    let outcome = match (d.outcome, d.arbiter) {
        (Some(o), Some(a)) => format!("{o:?} by {a}").to_lowercase(),
        _ => "waiting for the arbiter".to_string(),
    };
    format!(
        "{} {} {} round {} {:?} by {}: {outcome}",
        d.id, e.month, e.home, d.round, d.kind, d.by
    )
}

pub(crate) fn disputes(
    data_dir: &nineten_node::config::DataDir,
    json_out: bool,
) -> Result<ExitCode> {
    let all = with_running(data_dir, async |c| Ok(c.disputes().await?))?;
    if json_out {
        println!("{}", serde_json::to_string_pretty(&all)?);
    } else if all.is_empty() {
        println!("no dispute in the months under review");
    } else {
        for e in &all {
            println!("{}", dispute_line(e));
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn show_dispute(
    data_dir: &nineten_node::config::DataDir,
    id: &str,
    json_out: bool,
) -> Result<ExitCode> {
    let d = with_running(data_dir, async |c| Ok(c.dispute(id).await?))?;
    if json_out {
        println!("{}", serde_json::to_string_pretty(&d)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("{}", dispute_line(&d.entry));
    println!(
        "  claimed   {}",
        d.dispute["claimed"].as_str().unwrap_or("?")
    );
    match d.evidence {
        Some(n) => println!("  evidence  {n} receipt(s)"),
        None => println!(
            "  evidence  root {}",
            d.dispute["evidence"].as_str().unwrap_or("?")
        ),
    }
    for f in &d.findings {
        println!(
            "  finding   {:?} {}: {} against a threshold of {} (score {} per mille), {} receipt(s)",
            f.detector,
            f.subject,
            f.figure,
            f.threshold,
            f.score,
            f.receipts.len()
        );
    }
    match d.arbiter_rank {
        Some(rank) => println!("  arbiter   this node, rank {rank}"),
        None => println!("  arbiter   not this node"),
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn decide_dispute(
    data_dir: &nineten_node::config::DataDir,
    id: &str,
    exclude: bool,
) -> Result<ExitCode> {
    let e = with_running(data_dir, async |c| {
        Ok(c.decide_dispute(id, exclude).await?)
    })?;
    println!("{}", dispute_line(&e));
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn export(
    data_dir: &nineten_node::config::DataDir,
    month: nineten_protocol::month::Month,
    home: &nineten_protocol::key::PublicKey,
    out: &Path,
) -> Result<ExitCode> {
    let export = with_running(data_dir, async |c| Ok(c.month_export(month, home).await?))?;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    for (name, text) in &export.files {
        let path = out.join(name);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    println!(
        "wrote {} files of {home}'s {month} to {} (check them with `9ten month audit {}`)",
        export.files.len(),
        out.display(),
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

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
