//! One module per command; `run` dispatches.

mod example;
mod import;
mod key;
mod play;
mod receipt;
mod subscription;
mod tally;

use std::process::ExitCode;

use anyhow::Result;
use nineten_node::config::DataDir;

use crate::cli::{Cli, Command, KeyCommand, ReceiptCommand, SubscriptionCommand};

pub(crate) fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Key(KeyCommand::New { out, kind }) => key::new(&out, kind),
        Command::Key(KeyCommand::Show { file, month }) => key::show(&file, month),
        Command::Receipt(ReceiptCommand::Sign(args)) => receipt::sign(&args),
        Command::Receipt(ReceiptCommand::Verify { file }) => receipt::verify(&file),
        Command::Subscription(SubscriptionCommand::Sign {
            key,
            listener,
            month,
            payment_ref,
        }) => subscription::sign(&key, listener, month, payment_ref),
        Command::Tally(args) => tally::run(&args),
        Command::ExampleMonth { out } => example::run(&out),
        Command::Import(args) => import::run(&DataDir::new(cli.data_dir), &args),
        Command::Play(args) => play::run(&DataDir::new(cli.data_dir), &args),
        Command::Export { track, file } => play::export(&DataDir::new(cli.data_dir), &track, &file),
    }
}
