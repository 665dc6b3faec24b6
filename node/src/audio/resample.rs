//! Sample-rate conversion to 48 kHz, the only rate Opus encodes at full band, with rubato's
//! synchronous FFT resampler (fixed ratio, high quality, fast).

use audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler};

use super::{AudioError, OPUS_RATE, Pcm};

/// Converts `pcm` to 48 kHz, `round(frames × 48000 / rate)` frames long; audio already at
/// 48 kHz is returned as it is.
pub fn to_opus_rate(pcm: Pcm) -> Result<Pcm, AudioError> {
    if pcm.rate == OPUS_RATE {
        return Ok(pcm);
    }
    let channels = usize::from(pcm.channels);
    let frames = pcm.frames();
    let err = |e: &dyn std::fmt::Display| AudioError::Resample(e.to_string());
    let mut resampler = Fft::<f32>::new(
        pcm.rate as usize,
        OPUS_RATE as usize,
        1024,
        channels,
        FixedSync::Both,
    )
    .map_err(|e| err(&e))?;
    let input = InterleavedSlice::new(&pcm.samples, channels, frames).map_err(|e| err(&e))?;
    let output = resampler
        .process_all(&input, frames, None)
        .map_err(|e| err(&e))?;
    // The resampler may round the length up; the track is exactly as long as its source.
    let expected =
        (frames as u64 * u64::from(OPUS_RATE) + u64::from(pcm.rate) / 2) / u64::from(pcm.rate);
    let mut samples = output.take_data();
    samples.resize(expected as usize * channels, 0.0);
    Ok(Pcm {
        rate: OPUS_RATE,
        channels: pcm.channels,
        samples,
    })
}
