//! Where decoded audio goes: the sound device (behind a jitter buffer), a WAV file, or
//! nowhere.
//!
//! The device sink owns a cpal output stream whose callback only pops samples from a
//! lock-free ring buffer (no locks, no allocation); the decoder pushes into the other end and
//! waits when the buffer is full. If the buffer runs dry the callback plays silence.

use std::path::Path;
use std::time::Duration;

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use ringbuf::HeapRb;
use ringbuf::traits::{Consumer, Observer, Producer, Split};

use super::wav::WavWriter;
use super::{AudioError, OPUS_RATE};

/// Jitter buffer length: audio decoded ahead of the device.
pub const JITTER: Duration = Duration::from_millis(200);

/// A destination for interleaved 48 kHz samples.
pub trait Sink {
    /// Takes samples; may block while the device catches up.
    fn write(&mut self, samples: &[f32]) -> Result<(), AudioError>;
    /// Plays or writes out what is buffered, then closes.
    fn finish(self: Box<Self>) -> Result<(), AudioError>;
}

/// Discards audio (for tests, benchmarks and machines without sound).
#[derive(Debug, Default)]
pub struct NullSink {
    /// Samples taken so far.
    pub samples: u64,
}

impl Sink for NullSink {
    fn write(&mut self, samples: &[f32]) -> Result<(), AudioError> {
        self.samples += samples.len() as u64;
        Ok(())
    }
    fn finish(self: Box<Self>) -> Result<(), AudioError> {
        Ok(())
    }
}

/// Writes a 16-bit WAV file.
pub struct WavSink(WavWriter);

impl WavSink {
    /// Creates the file.
    pub fn create(path: &Path, channels: u16) -> Result<Self, AudioError> {
        Ok(Self(WavWriter::create(path, channels, OPUS_RATE)?))
    }
}

impl Sink for WavSink {
    fn write(&mut self, samples: &[f32]) -> Result<(), AudioError> {
        self.0.write(samples)
    }
    fn finish(self: Box<Self>) -> Result<(), AudioError> {
        self.0.finish()
    }
}

/// Plays through the default output device.
pub struct DeviceSink {
    producer: ringbuf::HeapProd<f32>,
    _stream: cpal::Stream,
}

const NO_DEVICE_HINT: &str = "no usable sound device here; use --sink null to play silently, or --out FILE.wav to write the audio";

impl DeviceSink {
    /// Opens the default output device at 48 kHz with `channels` channels.
    pub fn open(channels: u16) -> Result<Self, AudioError> {
        let host = cpal::default_host();
        let device = host
            .default_output_device()
            .ok_or_else(|| AudioError::Device(NO_DEVICE_HINT.to_string()))?;
        let capacity =
            (OPUS_RATE as usize * usize::from(channels)) * JITTER.as_millis() as usize / 1000;
        let (producer, mut consumer) = HeapRb::<f32>::new(capacity).split();
        let config = cpal::StreamConfig {
            channels,
            sample_rate: OPUS_RATE,
            buffer_size: cpal::BufferSize::Default,
        };
        let stream = device
            .build_output_stream(
                config,
                move |out: &mut [f32], _: &cpal::OutputCallbackInfo| {
                    let n = consumer.pop_slice(out);
                    out[n..].fill(0.0);
                },
                |e| tracing::warn!("sound output: {e}"),
                None,
            )
            .map_err(|e| AudioError::Device(format!("{e}: {NO_DEVICE_HINT}")))?;
        stream
            .play()
            .map_err(|e| AudioError::Device(format!("{e}: {NO_DEVICE_HINT}")))?;
        Ok(Self {
            producer,
            _stream: stream,
        })
    }
}

impl Sink for DeviceSink {
    fn write(&mut self, mut samples: &[f32]) -> Result<(), AudioError> {
        while !samples.is_empty() {
            let n = self.producer.push_slice(samples);
            samples = &samples[n..];
            if !samples.is_empty() {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        Ok(())
    }
    fn finish(self: Box<Self>) -> Result<(), AudioError> {
        while !self.producer.is_empty() {
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    }
}
