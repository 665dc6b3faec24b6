//! `9ten play`, `stop`, `seek`, `export` and `receipts`: through the running node (or one
//! started for the command).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use nineten_node::config::DataDir;
use nineten_node::control::PlayRequest;
use nineten_node::daemon::{Ending, Listen, SinkSpec};
use nineten_protocol::key::PublicKey;

use crate::cli::{PlayArgs, SinkKind};
use crate::cmd::node::{with_node, with_running};

fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path)
        .with_context(|| format!("{}: cannot make it absolute", path.display()))
}

fn seconds_to_ms(seconds: f64, what: &str) -> Result<u64> {
    if !seconds.is_finite() || seconds < 0.0 {
        bail!("{what} must be a number of seconds, 0 or more");
    }
    Ok((seconds * 1000.0) as u64)
}

pub(crate) fn run(data_dir: &DataDir, args: &PlayArgs) -> Result<ExitCode> {
    let from_ms = seconds_to_ms(args.from, "--from")?;
    let sink = match (&args.out, args.sink) {
        (Some(path), _) => SinkSpec::Wav(absolute(path)?),
        (None, SinkKind::Null) => SinkSpec::Null,
        (None, SinkKind::Device) => SinkSpec::Device,
        (None, SinkKind::Paced) => SinkSpec::Clocked { speed: 1 },
    };
    let request = PlayRequest {
        track: args.track.clone(),
        from_ms,
        sink,
    };
    let listen = with_node(data_dir, async |s| {
        let session = s.client.play(&request).await?;
        // Ctrl-C stops the listen (which still gets its receipt).
        tokio::select! {
            listen = s.client.wait(session) => Ok(listen?),
            _ = tokio::signal::ctrl_c() => {
                s.client.stop().await?;
                Ok(s.client.wait(session).await?)
            }
        }
    })?;
    report(&listen)
}

fn report(listen: &Listen) -> Result<ExitCode> {
    if let Ending::Failed(reason) = &listen.ending {
        bail!("playing {} failed: {reason}", listen.title);
    }
    let from = if listen.local {
        "from this node".to_string()
    } else {
        let total: u64 = listen.shares.iter().map(|s| s.bytes).sum();
        let peers = listen.shares.iter().filter(|s| s.bytes > 0).count();
        format!(
            "streamed from {peers} peer(s), {:.1} MB",
            total as f64 / 1e6
        )
    };
    eprintln!(
        "played {:.1} s of {} by {} ({from}); first sample {} after the request{}",
        f64::from(listen.listened_ms) / 1000.0,
        listen.title,
        listen.artist_name,
        listen
            .first_sample_ms
            .map_or("never".to_string(), |ms| format!("{ms:.1} ms")),
        if listen.ending == Ending::Stopped {
            "; stopped"
        } else {
            ""
        },
    );
    if let Some(receipt) = &listen.receipt {
        println!("{receipt}");
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn stop(data_dir: &DataDir) -> Result<ExitCode> {
    let listen = with_running(data_dir, async |c| Ok(c.stop().await?))?;
    match listen {
        Some(listen) => report(&listen),
        None => {
            eprintln!("nothing is playing");
            Ok(ExitCode::SUCCESS)
        }
    }
}

pub(crate) fn seek(data_dir: &DataDir, seconds: f64) -> Result<ExitCode> {
    let to_ms = seconds_to_ms(seconds, "the position")?;
    let session = with_running(data_dir, async |c| Ok(c.seek(to_ms).await?))?;
    eprintln!("playing from {seconds:.1} s (session {session})");
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn export(data_dir: &DataDir, track: &str, file: &Path) -> Result<ExitCode> {
    let path = absolute(file)?;
    let exported = with_node(data_dir, async |s| {
        Ok(s.client.export(track, &path).await?)
    })?;
    println!(
        "wrote {} to {} ({} bytes)",
        exported.title,
        file.display(),
        exported.bytes
    );
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn receipts(data_dir: &DataDir, listener: &PublicKey) -> Result<ExitCode> {
    let found = with_node(data_dir, async |s| Ok(s.client.receipts(listener).await?))?;
    if found.is_empty() {
        eprintln!("no receipts of {listener} were found");
        return Ok(ExitCode::from(1));
    }
    for r in &found {
        println!("{r}");
    }
    Ok(ExitCode::SUCCESS)
}
