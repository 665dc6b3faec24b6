//! `9ten key new` and `9ten key show`.

use std::path::Path;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use nineten_protocol::identity::{Keypair, ListenerSecret, Secret};
use nineten_protocol::month::Month;
use nineten_storage::keyfile;

use crate::cli::KeyKind;

pub(crate) fn new(out: &Path, kind: KeyKind) -> Result<ExitCode> {
    let rng = &mut rand::rng();
    let secret = match kind {
        KeyKind::Node => Secret::Node(Keypair::generate(rng)),
        KeyKind::Artist => Secret::Artist(Keypair::generate(rng)),
        KeyKind::Listener => Secret::Listener(ListenerSecret::generate(rng)),
    };
    keyfile::write(out, &secret).context("cannot create the key file")?;
    println!(
        "wrote {} key to {} (mode 0600)",
        secret.kind(),
        out.display()
    );
    print_public(&secret, None)?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn show(file: &Path, month: Option<Month>) -> Result<ExitCode> {
    let secret = keyfile::read(file)?;
    println!("kind: {}", secret.kind());
    print_public(&secret, month)?;
    Ok(ExitCode::SUCCESS)
}

fn print_public(secret: &Secret, month: Option<Month>) -> Result<()> {
    match secret {
        Secret::Node(k) | Secret::Artist(k) => println!("public key: {}", k.public()),
        Secret::Listener(s) => {
            let month = match month {
                Some(m) => m,
                None => this_month()?,
            };
            println!("month key for {month}: {}", s.month_key(month).public());
        }
    }
    Ok(())
}

/// The current month in UTC, from the system clock.
pub(crate) fn this_month() -> Result<Month> {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("the system clock is before 1970")?
        .as_millis();
    u64::try_from(ms)
        .ok()
        .and_then(Month::containing)
        .context("the system clock is past 9999")
}
