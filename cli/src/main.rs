//! `9ten`: the command-line face of a 9ten node. This crate is glue: it parses arguments,
//! reads and writes files, prints, and picks exit codes; what it does lives in `protocol` and
//! `storage`.
//!
//! Exit codes: 0 success; 1 `receipt verify` found bad receipts; 2 an error (bad input,
//! unreadable file), printed with its whole cause chain.

mod cli;
mod cmd;
mod input;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    // iroh's QUIC warns of every stale address-validation token a peer presents: harmless
    // (the handshake falls back to a retry) and, in a testnet, hundreds of lines. yamux warns
    // when it closes a connection its peer closed at the same moment (nodes close the
    // connections they do not need, and both ends may do it at once): harmless too.
    let default = "warn,noq_proto::bloom_token_log=error,yamux::connection=error";
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("NINETEN_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default)),
        )
        .with_writer(std::io::stderr)
        .init();
    match cmd::run(args) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::from(2)
        }
    }
}
