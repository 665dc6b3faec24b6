//! `9ten subscription sign`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Result, bail};
use nineten_protocol::identity::Secret;
use nineten_protocol::key::PublicKey;
use nineten_protocol::month::Month;
use nineten_protocol::subscription::{PaymentRef, Subscription};
use nineten_storage::keyfile;

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
