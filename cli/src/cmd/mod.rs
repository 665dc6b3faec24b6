//! One module per command; `run` dispatches.

mod catalog;
mod example;
mod import;
mod key;
mod month;
mod node;
mod play;
mod receipt;
mod subscription;
mod tally;
mod testnet;

use std::process::ExitCode;

use anyhow::Result;
use nineten_node::config::DataDir;

use crate::cli::{
    Cli, Command, DisputeCommand, KeyCommand, MonthCommand, NodeCommand, ReceiptCommand,
    ReportCommand, SubscriptionCommand,
};

pub(crate) fn run(cli: Cli) -> Result<ExitCode> {
    let data_dir = DataDir::new(cli.data_dir);
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
        Command::Month(MonthCommand::Audit { dir, json }) => month::audit(&dir, json),
        Command::Month(MonthCommand::Status { month, home, json }) => {
            month::status(&data_dir, month, home, json)
        }
        Command::Month(MonthCommand::Mine { month, json }) => month::mine(&data_dir, month, json),
        Command::Month(MonthCommand::Export { month, home, out }) => {
            month::export(&data_dir, month, &home, &out)
        }
        Command::Report(ReportCommand::Day { day, json }) => month::day(&data_dir, day, json),
        Command::Earnings { artist_key, json } => {
            month::earnings(&data_dir, crate::input::artist_key(&artist_key)?, json)
        }
        Command::Dispute(DisputeCommand::List { json }) => month::disputes(&data_dir, json),
        Command::Dispute(DisputeCommand::Show { id, json }) => {
            month::show_dispute(&data_dir, &id, json)
        }
        Command::Dispute(DisputeCommand::Decide { id, exclude, .. }) => {
            month::decide_dispute(&data_dir, &id, exclude)
        }
        Command::ExampleMonth { out } => example::run(&out),
        Command::Testnet(args) => testnet::run(&args),
        Command::Import(args) => import::run(&data_dir, &args),
        Command::Node(NodeCommand::Run(args)) => node::run(&data_dir, &args),
        Command::Nodes => node::nodes(&data_dir),
        Command::Subscribe {
            home,
            payment_ref,
            auto_renew,
        } => subscription::subscribe(&data_dir, home, &payment_ref, auto_renew),
        Command::Subscription(SubscriptionCommand::Cancel) => subscription::cancel(&data_dir),
        Command::Subscription(SubscriptionCommand::List) => subscription::list(&data_dir),
        Command::Subscription(SubscriptionCommand::Approve { id }) => {
            subscription::decide(&data_dir, &id, true)
        }
        Command::Subscription(SubscriptionCommand::Reject { id }) => {
            subscription::decide(&data_dir, &id, false)
        }
        Command::Node(NodeCommand::Status) => node::status(&data_dir),
        Command::Node(NodeCommand::Stop) => node::stop(&data_dir),
        Command::Publish { release } => catalog::publish(&data_dir, &release),
        Command::Catalog => catalog::catalog(&data_dir),
        Command::Search { words } => catalog::search(&data_dir, &words),
        Command::Play(args) => play::run(&data_dir, &args),
        Command::Stop => play::stop(&data_dir),
        Command::Seek { seconds } => play::seek(&data_dir, seconds),
        Command::Receipts { listener } => play::receipts(&data_dir, &listener),
        Command::Export { track, file } => play::export(&data_dir, &track, &file),
    }
}
