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
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let (found, stream, index) = runtime.block_on(async {
        let library = Library::open(data_dir).await?;
        let found = library.find_track(&args.track);
        let loaded = match &found {
            Ok(f) => Ok((
                library.stream(&f.track).await,
                library.seek_index(&f.track).await,
            )),
            Err(_) => Err(()),
        };
        library.shutdown().await?;
        let found = found?;
        let (stream, index) = loaded.expect("loaded when found");
        anyhow::Ok((found, stream?, index?))
    })?;
    let channels = u16::from(found.track.channels);
    let mut sink: Box<dyn Sink> = match (&args.out, args.sink) {
        (Some(path), _) => Box::new(WavSink::create(path, channels)?),
        (None, SinkKind::Null) => Box::new(NullSink::default()),
        (None, SinkKind::Device) => Box::new(DeviceSink::open(channels)?),
    };
    eprintln!(
        "playing {}. {} by {} from {:.1} s",
        found.track.number, found.track.title, found.release.manifest.artist_name, args.from
    );
    let before_decoding = started.elapsed();
    let played = playback::play(&stream, &index, (args.from * 1000.0) as u64, sink.as_mut())?;
    sink.finish()?;
    // Time to first audio counts from the command's start: opening the library and loading
    // the track included.
    let first = played
        .first_sample
        .map(|d| (before_decoding + d).as_secs_f64() * 1000.0);
    eprintln!(
        "played {:.1} s; first sample {} after the command started",
        played.frames as f64 / 48_000.0,
        first.map_or("never".to_string(), |ms| format!("{ms:.1} ms"))
    );
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
