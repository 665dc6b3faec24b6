//! `9ten receipt sign` and `9ten receipt verify`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use nineten_protocol::identity::Secret;
use nineten_protocol::jsonl::parse_lines;
use nineten_protocol::month::Month;
use nineten_protocol::receipt::{Receipt, SignedReceipt};
use nineten_protocol::signature::verify_all;
use nineten_storage::keyfile;

use crate::cli::ReceiptSignArgs;
use crate::input::read_text;

pub(crate) fn sign(args: &ReceiptSignArgs) -> Result<ExitCode> {
    let Secret::Listener(secret) = keyfile::read(&args.key)? else {
        bail!(
            "{} is not a listener secret: receipts are signed with a listener's month key",
            args.key.display()
        );
    };
    let month =
        Month::containing(args.started_at_ms).context("--started-at-ms is past the year 9999")?;
    let key = secret.month_key(month);
    let receipt = Receipt {
        listener: key.public(),
        seq: args.seq,
        track: args.track,
        artist: args.artist,
        started_at_ms: args.started_at_ms,
        listened_ms: args.listened_ms,
        track_ms: args.track_ms,
        home_node: args.home_node,
    };
    println!("{}", receipt.sign(&key).to_json());
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn verify(file: &Path) -> Result<ExitCode> {
    let text = read_text(file)?;
    let mut bad: Vec<(usize, String)> = Vec::new();
    let mut parsed: Vec<(usize, SignedReceipt)> = Vec::new();
    let lines = parse_lines(&text, SignedReceipt::from_json);
    let total = lines.len();
    for (line, result) in lines {
        match result {
            Ok(r) => parsed.push((line, r)),
            Err(e) => bad.push((line, e.to_string())),
        }
    }
    let records: Vec<&SignedReceipt> = parsed.iter().map(|(_, r)| r).collect();
    for ((line, r), ok) in parsed.iter().zip(verify_all(&records)) {
        if !ok {
            bad.push((
                *line,
                format!(
                    "signature does not verify (listener {}, seq {})",
                    r.receipt.listener, r.receipt.seq
                ),
            ));
        }
    }
    bad.sort();
    for (line, why) in &bad {
        println!("{}:{line}: {why}", file.display());
    }
    println!(
        "{}: {total} receipts, {} good, {} bad",
        file.display(),
        total - bad.len(),
        bad.len()
    );
    Ok(if bad.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
