//! Generated music for artists in a testnet: each artist has a style (key, scale, tempo,
//! timbre, register) and each track a melody with a bass line, so pieces are recognisably
//! different by ear and by content hash. Written as 44.1 kHz stereo WAV files for the real
//! import path.

use std::f32::consts::PI;
use std::path::{Path, PathBuf};

use nineten_node::audio::wav::WavWriter;

use crate::rng::Rng;

const RATE: u32 = 44_100;

/// Scales as semitone steps from the key note.
const SCALES: [(&str, &[i32]); 4] = [
    ("major", &[0, 2, 4, 5, 7, 9, 11]),
    ("minor", &[0, 2, 3, 5, 7, 8, 10]),
    ("pentatonic", &[0, 2, 4, 7, 9]),
    ("dorian", &[0, 2, 3, 5, 7, 9, 10]),
];

/// An artist's sound.
#[derive(Clone, Debug)]
pub struct Style {
    key_hz: f32,
    scale: &'static [i32],
    /// Name of the scale, for titles.
    pub scale_name: &'static str,
    beat_s: f32,
    /// Relative strength of harmonics 1..=4.
    harmonics: [f32; 4],
}

impl Style {
    /// A style drawn from `rng`.
    pub fn new(rng: &mut Rng) -> Self {
        let (scale_name, scale) = SCALES[rng.below(SCALES.len())];
        let mut harmonics = [1.0, 0.0, 0.0, 0.0];
        for h in harmonics.iter_mut().skip(1) {
            *h = rng.unit() as f32 * 0.6;
        }
        Self {
            key_hz: 196.0 * 2f32.powf(rng.below(12) as f32 / 12.0),
            scale,
            scale_name,
            beat_s: 0.25 + rng.unit() as f32 * 0.35,
            harmonics,
        }
    }

    fn note_hz(&self, degree: i32) -> f32 {
        let n = self.scale.len() as i32;
        let octave = degree.div_euclid(n);
        let step = self.scale[degree.rem_euclid(n) as usize] + 12 * octave;
        self.key_hz * 2f32.powf(step as f32 / 12.0)
    }

    fn voice(&self, hz: f32, t: f32) -> f32 {
        self.harmonics
            .iter()
            .enumerate()
            .map(|(i, a)| a * (2.0 * PI * hz * (i + 1) as f32 * t).sin())
            .sum::<f32>()
            / self.harmonics.iter().sum::<f32>()
    }

    /// A piece of `seconds` in this style, as interleaved stereo samples.
    pub fn piece(&self, rng: &mut Rng, seconds: f32) -> Vec<f32> {
        let total = (RATE as f32 * seconds) as usize;
        let beat = (RATE as f32 * self.beat_s) as usize;
        let mut out = Vec::with_capacity(total * 2);
        let mut degree = 0i32;
        let mut bass = 0i32;
        for start in (0..total).step_by(beat) {
            // A random walk over the scale: melodies move mostly by steps.
            degree = (degree + rng.below(5) as i32 - 2).clamp(-3, 10);
            if (start / beat).is_multiple_of(4) {
                bass = [0, 3, 4, 5][rng.below(4)];
            }
            let (melody_hz, bass_hz) = (self.note_hz(degree), self.note_hz(bass - 7));
            let len = beat.min(total - start);
            for i in 0..len {
                let t = (start + i) as f32 / RATE as f32;
                let env = (i as f32 / 300.0).min(1.0) * (1.0 - i as f32 / len as f32).powf(0.7);
                let m = 0.35 * env * self.voice(melody_hz, t);
                let b = 0.2 * self.voice(bass_hz, t);
                // Melody a little left, bass a little right.
                out.push(0.6 * m + 0.4 * b);
                out.push(0.4 * m + 0.6 * b);
            }
        }
        out
    }
}

/// Writes `samples` (stereo, 44.1 kHz) to `dir/name`.
pub fn write(
    dir: &Path,
    name: &str,
    samples: &[f32],
) -> Result<PathBuf, nineten_node::audio::AudioError> {
    let path = dir.join(name);
    let mut w = WavWriter::create(&path, 2, RATE)?;
    w.write(samples)?;
    w.finish()?;
    Ok(path)
}
