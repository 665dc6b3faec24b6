//! `9ten publish`, `9ten catalog` and `9ten search`.

use std::process::ExitCode;

use anyhow::Result;
use nineten_node::config::DataDir;
use nineten_node::daemon::CatalogEntry;

use crate::cmd::node::with_node;

pub(crate) fn publish(data_dir: &DataDir, release: &str) -> Result<ExitCode> {
    let (entry, temporary) = with_node(data_dir, async |s| {
        Ok((s.client.publish(release).await?, s.is_temporary()))
    })?;
    println!(
        "published {}: {} by {} ({} tracks)",
        entry.release,
        entry.title,
        entry.artist_name,
        entry.tracks.len()
    );
    if temporary {
        eprintln!(
            "note: no node is running, so no peer heard it now; `9ten node run` serves the release and peers catch up when they connect"
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn catalog(data_dir: &DataDir) -> Result<ExitCode> {
    let entries = with_node(data_dir, async |s| Ok(s.client.catalog().await?))?;
    print_entries(&entries);
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn search(data_dir: &DataDir, words: &[String]) -> Result<ExitCode> {
    let text = words.join(" ");
    let entries = with_node(data_dir, async |s| Ok(s.client.search(&text).await?))?;
    if entries.is_empty() {
        eprintln!("nothing matches {text:?}");
        return Ok(ExitCode::from(1));
    }
    print_entries(&entries);
    Ok(ExitCode::SUCCESS)
}

fn print_entries(entries: &[CatalogEntry]) {
    for e in entries {
        println!("{} — {}  (release {})", e.artist_name, e.title, e.release);
        for t in &e.tracks {
            let s = t.duration_ms / 1000;
            println!(
                "  {}  {:>2}. {}  ({}:{:02})",
                t.hash,
                t.number,
                t.title,
                s / 60,
                s % 60
            );
            for other in &t.also_listed_by {
                println!(
                    "      ! also listed by release {other} of another artist: play {}/{} to pay this one",
                    e.release, t.number
                );
            }
        }
    }
}
