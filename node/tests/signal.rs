//! Test signals written as WAV files, and the measures used on them.

use std::f32::consts::PI;
use std::path::{Path, PathBuf};

use nineten_node::audio::Pcm;
use nineten_node::audio::wav::WavWriter;

/// A logarithmic sine sweep from 50 Hz to 15 kHz at -6 dBFS.
pub(crate) fn sweep(rate: u32, channels: u16, seconds: f32) -> Pcm {
    let n = (rate as f32 * seconds) as usize;
    let (f0, f1) = (50f32, 15_000f32);
    let k = (f1 / f0).ln();
    let mut samples = Vec::with_capacity(n * usize::from(channels));
    for i in 0..n {
        let t = i as f32 / rate as f32;
        let phase = 2.0 * PI * f0 * seconds / k * ((t / seconds * k).exp() - 1.0);
        let s = 0.5 * phase.sin();
        for c in 0..channels {
            // Stereo: the right channel is phase-shifted, so channels differ.
            samples.push(if c == 0 { s } else { 0.5 * (phase + 1.0).sin() });
        }
    }
    Pcm {
        rate,
        channels,
        samples,
    }
}

/// White noise at -12 dBFS from a fixed seed.
pub(crate) fn noise(rate: u32, channels: u16, seconds: f32) -> Pcm {
    let n = (rate as f32 * seconds) as usize * usize::from(channels);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let samples = (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ((x >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.5
        })
        .collect();
    Pcm {
        rate,
        channels,
        samples,
    }
}

/// Silence.
pub(crate) fn silence(rate: u32, channels: u16, seconds: f32) -> Pcm {
    Pcm {
        rate,
        channels,
        samples: vec![0.0; (rate as f32 * seconds) as usize * usize::from(channels)],
    }
}

/// Writes `pcm` as a 16-bit WAV file in `dir`.
pub(crate) fn write_wav(dir: &Path, name: &str, pcm: &Pcm) -> PathBuf {
    let path = dir.join(name);
    let mut w = WavWriter::create(&path, pcm.channels, pcm.rate).unwrap();
    w.write(&pcm.samples).unwrap();
    w.finish().unwrap();
    path
}

/// Signal-to-noise ratio of `decoded` against `reference`, in dB, over the common length.
pub(crate) fn snr_db(reference: &[f32], decoded: &[f32]) -> f64 {
    let n = reference.len().min(decoded.len());
    let (mut signal, mut error) = (0f64, 0f64);
    for i in 0..n {
        let (r, d) = (f64::from(reference[i]), f64::from(decoded[i]));
        signal += r * r;
        error += (r - d) * (r - d);
    }
    10.0 * (signal / error.max(1e-20)).log10()
}
