//! `9ten play` and `9ten export`.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use nineten_node::audio::playback;
use nineten_node::audio::sink::{DeviceSink, NullSink, Sink, WavSink};
use nineten_node::config::DataDir;
use nineten_node::library::Library;

use crate::cli::{PlayArgs, SinkKind};

pub(crate) fn run(data_dir: &DataDir, args: &PlayArgs) -> Result<ExitCode> {
    let started = Instant::now();
    if !args.from.is_finite() || args.from < 0.0 {
        bail!("--from must be a number of seconds, 0 or more");
    }
    let from_ms = (args.from * 1000.0) as u64;
    let (out, sink_kind) = (args.out.clone(), args.sink);
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let library = Library::open(data_dir).await?;
        let opened = started.elapsed();
        let result = async {
            let found = library.find_track(&args.track)?;
            let index = library.seek_index(&found.track).await?;
            let reader = library.reader(&found.track);
            let channels = u16::from(found.track.channels);
            eprintln!(
                "playing {}. {} by {} from {:.1} s",
                found.track.number, found.track.title, found.release.manifest.artist_name, args.from
            );
            // Decoding blocks (it reads the blob store through a blocking reader, and waits
            // for the sound device): it runs on a thread of its own.
            let loaded = started.elapsed();
            let played = tokio::task::spawn_blocking(move || -> Result<_> {
                let mut sink: Box<dyn Sink> = match (&out, sink_kind) {
                    (Some(path), _) => Box::new(WavSink::create(path, channels)?),
                    (None, SinkKind::Null) => Box::new(NullSink::default()),
                    (None, SinkKind::Device) => Box::new(DeviceSink::open(channels)?),
                };
                let played = playback::play(reader, &index, from_ms, sink.as_mut())?;
                sink.finish()?;
                Ok(played)
            })
            .await
            .context("the playback thread failed")??;
            anyhow::Ok((played, loaded))
        }
        .await;
        library.shutdown().await?;
        let (played, loaded) = result?;
        // Time to first audio: from the command's start, and from the library being open (a
        // running node keeps it open).
        let first = played.first_sample.map(|d| loaded + d);
        eprintln!(
            "played {:.1} s; first sample {} after the command started ({} after the library was open)",
            played.frames as f64 / 48_000.0,
            first.map_or("never".to_string(), |d| format!("{:.1} ms", d.as_secs_f64() * 1000.0)),
            first.map_or("never".to_string(), |d| format!("{:.1} ms", (d - opened).as_secs_f64() * 1000.0)),
        );
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn export(data_dir: &DataDir, track: &str, file: &Path) -> Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let (title, size) = runtime.block_on(async {
        let library = Library::open(data_dir).await?;
        let result = match library.find_track(track) {
            Ok(found) => library
                .export(&found.track, file)
                .await
                .map(|size| (found.track.title, size)),
            Err(e) => Err(e),
        };
        library.shutdown().await?;
        anyhow::Ok(result?)
    })?;
    println!("wrote {title} to {} ({size} bytes)", file.display());
    Ok(ExitCode::SUCCESS)
}
