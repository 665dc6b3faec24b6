//! `9ten testnet`: a living network on this machine, with progress and a report.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use nineten_testnet::{Error, Options, Phase, Report};

use crate::cli::TestnetArgs;

pub(crate) fn run(args: &TestnetArgs) -> Result<ExitCode> {
    let seed = args.seed.unwrap_or_else(rand::random);
    let options = Options {
        nodes: usize::from(args.nodes),
        artists: usize::from(args.artists),
        plays: args.plays,
        seed,
        ..Options::default()
    };
    let dir = tempfile::Builder::new()
        .prefix("9ten-testnet-")
        .tempdir()
        .context("cannot create the testnet's temporary folder")?;
    eprintln!(
        "testnet: {} nodes ({} artists), {} plays, seed {seed}; data in {}",
        options.nodes,
        options.artists,
        options.plays,
        dir.path().display()
    );
    let bar = ProgressBar::new_spinner().with_style(
        ProgressStyle::with_template("{spinner} {msg} [{elapsed}]").expect("valid template"),
    );
    bar.enable_steady_tick(Duration::from_millis(100));
    let progress = |phase: Phase| {
        bar.set_message(match phase {
            Phase::Started(n) => format!("{n}/{} nodes started", options.nodes),
            Phase::Published(n) => format!("{n}/{} artists published", options.artists),
            Phase::CatalogsComplete => "every node knows every release".to_string(),
            Phase::Played(n) => format!("{n}/{} plays", options.plays),
            Phase::ReceiptsSettled => "receipts spread".to_string(),
        });
    };
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    // Catch Ctrl-C from the start (the default would kill the process and leave the folder).
    let (pressed, mut ctrl_c) = tokio::sync::watch::channel(false);
    runtime.spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            let _ = pressed.send(true);
        }
    });
    let result = runtime.block_on(nineten_testnet::run(
        &options,
        dir.path(),
        &progress,
        async {
            let _ = ctrl_c.wait_for(|p| *p).await;
        },
    ));
    bar.finish_and_clear();
    // The nodes are stopped; the temporary folder goes with `dir`.
    drop(runtime);
    drop(dir);
    let report = match result {
        Err(Error::Cancelled) => {
            eprintln!("testnet stopped; its temporary folder is removed");
            return Ok(ExitCode::from(130));
        }
        r => r.context("the testnet failed")?,
    };
    print_summary(&report);
    if let Some(out) = &args.out {
        std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
        let path = out.join("report.json");
        let json = serde_json::to_string_pretty(&report).context("encoding the report")?;
        std::fs::write(&path, json + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
        println!("report written to {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn print_summary(r: &Report) {
    let mb = |b: u64| b as f64 / 1e6;
    println!(
        "nodes               {} ({} artists, {} tracks)",
        r.nodes, r.artists, r.tracks
    );
    println!(
        "plays               {} ({} from the listener's own cache, {} failed)",
        r.plays, r.local_plays, r.failed_plays
    );
    println!(
        "time to first audio p50 {:.1} ms, p95 {:.1} ms (streamed plays)",
        r.ttfa_ms.p50, r.ttfa_ms.p95
    );
    println!(
        "bytes served        artists' nodes {:.2} MB, other peers {:.2} MB ({:.0}% by peers)",
        mb(r.bytes.artist_nodes),
        mb(r.bytes.other_peers),
        100.0 * r.peer_share()
    );
    println!(
        "receipts            {} signed, {} held by all {} nodes",
        r.receipts.signed, r.receipts.held_by_all_nodes, r.nodes
    );
    let p = &r.phases_s;
    println!(
        "phases              start {:.1} s, publish {:.1} s, catalogs {:.1} s, plays {:.1} s, receipts {:.1} s, stop {:.1} s",
        p.start, p.publish, p.catalogs, p.plays, p.receipts, p.shutdown
    );
    println!("seed                {} ({:.1} s)", r.seed, r.elapsed_s);
}
