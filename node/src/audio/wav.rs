//! A minimal streaming WAV writer: 16-bit PCM, the format every tool reads.

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::AudioError;

/// Writes interleaved `f32` samples to a 16-bit PCM WAV file; sizes are fixed up on finish.
pub struct WavWriter {
    path: PathBuf,
    out: BufWriter<File>,
    data_bytes: u64,
}

impl WavWriter {
    /// Creates `path` for `channels` channels at `rate` Hz.
    pub fn create(path: &Path, channels: u16, rate: u32) -> Result<Self, AudioError> {
        let io = |source| AudioError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut out = BufWriter::new(File::create(path).map_err(io)?);
        let block = channels * 2;
        let mut h = Vec::with_capacity(44);
        h.extend_from_slice(b"RIFF");
        h.extend_from_slice(&0u32.to_le_bytes());
        h.extend_from_slice(b"WAVEfmt ");
        h.extend_from_slice(&16u32.to_le_bytes());
        h.extend_from_slice(&1u16.to_le_bytes()); // PCM
        h.extend_from_slice(&channels.to_le_bytes());
        h.extend_from_slice(&rate.to_le_bytes());
        h.extend_from_slice(&(rate * u32::from(block)).to_le_bytes());
        h.extend_from_slice(&block.to_le_bytes());
        h.extend_from_slice(&16u16.to_le_bytes());
        h.extend_from_slice(b"data");
        h.extend_from_slice(&0u32.to_le_bytes());
        out.write_all(&h).map_err(io)?;
        Ok(Self {
            path: path.to_path_buf(),
            out,
            data_bytes: 0,
        })
    }

    /// Appends samples, clamped to -1.0..=1.0 and rounded to 16 bits.
    pub fn write(&mut self, samples: &[f32]) -> Result<(), AudioError> {
        let mut buf = Vec::with_capacity(samples.len() * 2);
        for s in samples {
            let v = (s.clamp(-1.0, 1.0) * 32767.0).round() as i16;
            buf.extend_from_slice(&v.to_le_bytes());
        }
        self.data_bytes += buf.len() as u64;
        self.out.write_all(&buf).map_err(|source| AudioError::Io {
            path: self.path.clone(),
            source,
        })
    }

    /// Writes the final sizes and flushes.
    pub fn finish(mut self) -> Result<(), AudioError> {
        let io = |source| AudioError::Io {
            path: self.path.clone(),
            source,
        };
        let data = u32::try_from(self.data_bytes)
            .map_err(|_| AudioError::Stream("over 4 GB of audio for a WAV file".to_string()))?;
        self.out.seek(SeekFrom::Start(4)).map_err(io)?;
        self.out.write_all(&(data + 36).to_le_bytes()).map_err(io)?;
        self.out.seek(SeekFrom::Start(40)).map_err(io)?;
        self.out.write_all(&data.to_le_bytes()).map_err(io)?;
        self.out.flush().map_err(io)
    }
}
