//! `9ten subscribe` and `9ten subscription list|approve|reject|cancel|sign`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Result, bail};
use nineten_node::config::DataDir;
use nineten_node::control::Subscribed;
use nineten_protocol::identity::Secret;
use nineten_protocol::key::PublicKey;
use nineten_protocol::month::Month;
use nineten_protocol::subscription::{PaymentRef, Subscription};
use nineten_storage::keyfile;

use crate::cmd::node::{with_node, with_running};

pub(crate) fn sign(
    key: &Path,
    listener: PublicKey,
    month: Month,
    payment_ref: String,
) -> Result<ExitCode> {
    let Secret::Node(node) = keyfile::read(key)? else {
        bail!(
            "{} is not a node key: subscriptions are signed by the listener's home node",
            key.display()
        );
    };
    let subscription = Subscription {
        listener,
        month,
        home_node: node.public(),
        payment_ref: PaymentRef::new(payment_ref)?,
    };
    println!("{}", subscription.sign(&node).to_json());
    Ok(ExitCode::SUCCESS)
}

/// `9ten subscribe`: through the running node, which must reach the home node.
pub(crate) fn subscribe(
    data_dir: &DataDir,
    home: PublicKey,
    payment_ref: &str,
    auto_renew: bool,
) -> Result<ExitCode> {
    let answer = with_running(data_dir, async |c| {
        Ok(c.subscribe(home, payment_ref, auto_renew).await?)
    })?;
    if auto_renew {
        eprintln!("renews each month through {home} until `9ten subscription cancel`");
    }
    report(&answer)
}

/// `9ten subscription cancel`: on the running node, whose standing order it ends.
pub(crate) fn cancel(data_dir: &DataDir) -> Result<ExitCode> {
    let answer = with_running(data_dir, async |c| Ok(c.cancel_renewal().await?))?;
    match answer.cancelled {
        Some(o) => eprintln!(
            "no more renewals through {} (payment_ref {:?}); this month's subscription stands",
            o.home, o.payment_ref
        ),
        None => eprintln!("this listener had no standing order"),
    }
    Ok(ExitCode::SUCCESS)
}

/// `9ten subscription list`.
pub(crate) fn list(data_dir: &DataDir) -> Result<ExitCode> {
    let all = with_node(data_dir, async |s| Ok(s.client.subscriptions().await?))?;
    for s in &all.subscriptions {
        println!("{s}");
    }
    if !all.pending.is_empty() {
        println!("pending requests:");
        for p in &all.pending {
            println!(
                "  {}  listener {}  {}  payment_ref {:?}{}",
                p.id,
                p.listener,
                p.month,
                p.payment_ref,
                if p.renewal { "  renewal" } else { "" }
            );
        }
    }
    if let Some(o) = &all.standing_order {
        println!(
            "standing order: renews each month through {} (payment_ref {:?})",
            o.home, o.payment_ref
        );
    }
    if all.subscriptions.is_empty() && all.pending.is_empty() {
        eprintln!("no subscriptions of this month or the next, and no pending requests");
    }
    Ok(ExitCode::SUCCESS)
}

/// `9ten subscription approve|reject`: on the running home node, which gossips what it signs.
pub(crate) fn decide(data_dir: &DataDir, id: &str, approve: bool) -> Result<ExitCode> {
    let answer = with_running(data_dir, async |c| Ok(c.decide(id, approve).await?))?;
    report(&answer)
}

fn report(answer: &Subscribed) -> Result<ExitCode> {
    match (answer.outcome.as_str(), &answer.subscription) {
        ("subscribed", Some(s)) => {
            println!("{s}");
            Ok(ExitCode::SUCCESS)
        }
        ("pending", _) => {
            eprintln!(
                "the request waits for the home node's operator (`9ten subscription approve`)"
            );
            Ok(ExitCode::SUCCESS)
        }
        _ => bail!(
            "rejected: {}",
            answer.reason.as_deref().unwrap_or("no reason given")
        ),
    }
}
