//! `9ten tally`: the offline audit of a month.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use nineten_protocol::money::MicroUsdp;
use nineten_protocol::receipt::SignedReceipt;
use nineten_protocol::settlement::{Input, settle};
use nineten_protocol::subscription::SignedSubscription;
use nineten_protocol::tally::Tally;

use crate::cli::TallyArgs;
use crate::input::{read_carry, read_records};

pub(crate) fn run(args: &TallyArgs) -> Result<ExitCode> {
    let progress = ProgressBar::new_spinner().with_style(
        ProgressStyle::with_template("{spinner} {msg} ({elapsed})").expect("valid template"),
    );
    progress.enable_steady_tick(std::time::Duration::from_millis(100));

    progress.set_message(format!("reading {}", args.receipts.display()));
    let receipts = read_records(&args.receipts, SignedReceipt::from_json)?;
    progress.set_message(format!("reading {}", args.subscriptions.display()));
    let subscriptions = read_records(&args.subscriptions, SignedSubscription::from_json)?;
    let carry_in = match &args.carry {
        Some(path) => read_carry(path)?,
        None => BTreeMap::new(),
    };
    progress.set_message(format!(
        "verifying and settling {} receipts, {} subscriptions",
        receipts.len(),
        subscriptions.len()
    ));
    let tally = settle(Input {
        month: args.month,
        receipts: &receipts,
        subscriptions: &subscriptions,
        carry_in: &carry_in,
    })
    .with_context(|| format!("cannot settle {}", args.month))?;
    progress.finish_and_clear();

    if args.json {
        println!("{}", tally.to_json());
    } else {
        print_tables(&tally);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_tables(t: &Tally) {
    let s = &t.stats;
    println!("9ten tally for {}", t.month);
    println!();
    println!(
        "receipts      {} distinct in the month ({} outside it, ignored); {} kept, {} qualified listens",
        s.receipts, s.outside_month, s.kept, s.qualified
    );
    println!(
        "void          {} in all: signature {}, length {}, equivocation {}, overlap {}",
        t.void.total(),
        t.void.signature,
        t.void.length,
        t.void.equivocation,
        t.void.overlap
    );
    println!(
        "subscribers   {} ({} subscriptions with bad signatures, {} superseded)",
        s.subscribers, s.subscriptions_invalid, s.subscriptions_superseded
    );
    if !t.flags.is_empty() {
        println!("anomalies     {} flagged for review", t.flags.len());
    }

    let artist_total: u64 = t.artists.values().map(|u| u.0).sum();
    println!();
    print_table("ARTIST", &t.artists, artist_total);
    let operator_total: u64 = t.operators.values().map(|u| u.0).sum();
    println!();
    print_table("OPERATOR (HOME NODE)", &t.operators, operator_total);
    let carried: u64 = t.carry_out.values().map(|u| u.0).sum();
    println!();
    println!(
        "carry-out     {} USDP over {} listeners",
        MicroUsdp(carried),
        t.carry_out.values().filter(|u| u.0 > 0).count()
    );
    println!("digest        {}", t.digest());
}

fn print_table(
    heading: &str,
    rows: &BTreeMap<nineten_protocol::key::PublicKey, MicroUsdp>,
    total: u64,
) {
    let mut rows: Vec<_> = rows.iter().collect();
    rows.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    println!(
        "{heading:<64}  {:>14}  {:>16}  {:>7}",
        "UNITS", "USDP", "SHARE"
    );
    for (key, units) in rows {
        println!(
            "{key}  {:>14}  {:>16}  {:>7}",
            units.0,
            units.to_string(),
            share(units.0, total)
        );
    }
    println!(
        "{:<64}  {total:>14}  {:>16}  {:>7}",
        "TOTAL",
        MicroUsdp(total).to_string(),
        share(total, total)
    );
}

/// `part / total` as a percentage with two decimals, in integers.
fn share(part: u64, total: u64) -> String {
    if total == 0 {
        return "-".to_string();
    }
    let basis_points = u128::from(part) * 10_000 / u128::from(total);
    format!("{}.{:02}%", basis_points / 100, basis_points % 100)
}
