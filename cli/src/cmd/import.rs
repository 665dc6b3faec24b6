//! `9ten import`: files to a stored, signed release, with a progress bar per track.

use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use nineten_node::audio::encode::Settings;
use nineten_node::config::DataDir;
use nineten_node::import::{self, Release, Stage};
use nineten_protocol::identity::Secret;
use nineten_storage::keyfile;

use crate::cli::ImportArgs;
use crate::cmd::node::with_node;

pub(crate) fn run(data_dir: &DataDir, args: &ImportArgs) -> Result<ExitCode> {
    let Secret::Artist(artist) = keyfile::read(&args.artist_key)? else {
        bail!(
            "{} is not an artist key: releases are signed with the artist's key (9ten key new --kind artist)",
            args.artist_key.display()
        );
    };
    let files = import::collect_files(&args.files)?;
    let published_at_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("the system clock is before 1970")?
        .as_millis() as u64;
    let release = Release {
        artist: &artist,
        artist_name: args.artist_name.clone(),
        title: args.release.clone(),
        settings: Settings {
            bitrate: args.bitrate * 1000,
        },
        published_at_ms,
    };

    let bars = MultiProgress::new();
    let style = ProgressStyle::with_template("{prefix:>3} {bar:30} {percent:>3}% {msg}")
        .expect("valid template");
    let progress: Vec<ProgressBar> = files
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let bar = bars.add(ProgressBar::new(100).with_style(style.clone()));
            bar.set_prefix(format!("{}", i + 1));
            bar.set_message(
                f.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            );
            bar
        })
        .collect();
    let prepared = import::prepare(&files, &release, &|i, stage| match stage {
        Stage::Decoding => progress[i].set_position(0),
        Stage::Encoding(f) => progress[i].set_position((f * 100.0) as u64),
        Stage::Done => progress[i].finish(),
    });
    for bar in &progress {
        bar.finish_and_clear();
    }
    let prepared = prepared.context("import failed; nothing was stored")?;

    let entry = with_node(data_dir, async |s| {
        Ok(s.client.add_release(&prepared).await?)
    })
    .context("import failed; nothing was stored")?;
    let id = entry.release;

    let m = &prepared.manifest.manifest;
    println!(
        "release {id}: {} by {} ({} tracks)",
        m.title,
        m.artist_name,
        m.tracks.len()
    );
    for t in &m.tracks {
        println!(
            "{}  {:>2}. {}  ({})",
            t.hash,
            t.number,
            t.title,
            duration(t.duration_ms)
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn duration(ms: u32) -> String {
    let s = ms / 1000;
    format!("{}:{:02}", s / 60, s % 60)
}
