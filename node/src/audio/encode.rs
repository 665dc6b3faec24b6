//! Opus encoding with libopus: music application, VBR, 20 ms frames.

use super::{AudioError, FRAME, OPUS_RATE, Pcm};

/// Encoder settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Target bitrate in bits per second (VBR).
    pub bitrate: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self { bitrate: 128_000 }
    }
}

/// An encoded track: Opus packets of 20 ms, ready for an Ogg stream.
#[derive(Clone, Debug)]
pub struct Encoded {
    /// The packets, in order.
    pub packets: Vec<Vec<u8>>,
    /// Samples the decoder must drop at the start (the encoder's lookahead).
    pub pre_skip: u16,
    /// Frames of real audio (at 48 kHz), without pre-skip or padding.
    pub frames: u64,
    /// Channels: 1 or 2.
    pub channels: u16,
}

/// Encodes 48 kHz audio. `progress` is called with the fraction done, now and then.
pub fn encode(
    pcm: &Pcm,
    settings: Settings,
    progress: &mut dyn FnMut(f32),
) -> Result<Encoded, AudioError> {
    assert_eq!(pcm.rate, OPUS_RATE, "resample to 48 kHz before encoding");
    let channels = match pcm.channels {
        1 => opus::Channels::Mono,
        _ => opus::Channels::Stereo,
    };
    let ch = usize::from(pcm.channels);
    let mut encoder = opus::Encoder::new(OPUS_RATE, channels, opus::Application::Audio)?;
    encoder.set_bitrate(opus::Bitrate::Bits(
        i32::try_from(settings.bitrate).unwrap_or(i32::MAX),
    ))?;
    encoder.set_vbr(true)?;
    let pre_skip = u16::try_from(encoder.get_lookahead()?)
        .map_err(|_| AudioError::Stream("encoder lookahead out of range".to_string()))?;

    // The encoder's output lags its input by `pre_skip` samples: feed that much silence
    // after the audio, rounded up to whole frames, so every real sample comes out.
    let frames = pcm.frames();
    let total = frames + usize::from(pre_skip);
    let packets_needed = total.div_ceil(FRAME);
    let mut packets = Vec::with_capacity(packets_needed);
    let mut frame = vec![0f32; FRAME * ch];
    let mut out = vec![0u8; 4000];
    for i in 0..packets_needed {
        let start = i * FRAME * ch;
        let end = ((i + 1) * FRAME * ch).min(pcm.samples.len());
        frame.fill(0.0);
        if start < end {
            frame[..end - start].copy_from_slice(&pcm.samples[start..end]);
        }
        let len = encoder.encode_float(&frame, &mut out)?;
        packets.push(out[..len].to_vec());
        if i % 500 == 0 {
            progress(i as f32 / packets_needed as f32);
        }
    }
    progress(1.0);
    Ok(Encoded {
        packets,
        pre_skip,
        frames: frames as u64,
        channels: pcm.channels,
    })
}
