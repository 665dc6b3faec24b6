//! Decoded audio in memory: interleaved `f32` samples.

/// Interleaved samples, `channels` per frame, at `rate` Hz.
#[derive(Clone, Debug, PartialEq)]
pub struct Pcm {
    /// Frames per second.
    pub rate: u32,
    /// Channels: 1 or 2.
    pub channels: u16,
    /// Interleaved samples, nominally in -1.0..=1.0.
    pub samples: Vec<f32>,
}

impl Pcm {
    /// Frames (samples per channel).
    pub fn frames(&self) -> usize {
        self.samples.len() / usize::from(self.channels)
    }

    /// Playing time in milliseconds, rounded down.
    pub fn duration_ms(&self) -> u64 {
        self.frames() as u64 * 1000 / u64::from(self.rate)
    }
}
