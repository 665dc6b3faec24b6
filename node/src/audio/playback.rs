//! Decoding an Ogg Opus stream from any point: start at the seek entry a little before the
//! target (80 ms of pre-roll, so the decoder has converged), decode with libopus, drop what
//! comes before the target and after the stream's end, and hand the rest to a sink.

use std::io::{Read, Seek};
use std::time::{Duration, Instant};

use super::ogg::{self, Head};
use super::seek::SeekIndex;
use super::sink::Sink;
use super::{AudioError, OPUS_RATE};

/// Decoding starts this many samples before the target so the decoder has converged (RFC 7845
/// recommends at least 80 ms).
pub const PRE_ROLL: u64 = 3_840;
/// Largest Opus packet duration: 120 ms at 48 kHz.
const MAX_PACKET_SAMPLES: usize = 5_760;

/// What a playback did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Played {
    /// From the call to the first sample handed to the sink.
    pub first_sample: Option<Duration>,
    /// Frames (samples per channel) handed to the sink.
    pub frames: u64,
}

/// Decodes `stream` (an Ogg Opus stream, read only as far as needed) from `from_ms` to its
/// end into `sink`.
pub fn play<R: Read + Seek>(
    mut stream: R,
    index: &SeekIndex,
    from_ms: u64,
    sink: &mut dyn Sink,
) -> Result<Played, AudioError> {
    let started = Instant::now();
    let head = ogg::read_head(&mut stream)?;
    let mut played = Played {
        first_sample: None,
        frames: 0,
    };
    decode(stream, &head, index, from_ms, &mut |samples| {
        if played.first_sample.is_none() {
            played.first_sample = Some(started.elapsed());
        }
        played.frames += (samples.len() / usize::from(head.channels)) as u64;
        sink.write(samples)
    })?;
    Ok(played)
}

/// Decodes from `from_ms` to the end, calling `out` with interleaved samples at 48 kHz.
pub fn decode<R: Read + Seek>(
    stream: R,
    head: &Head,
    index: &SeekIndex,
    from_ms: u64,
    out: &mut dyn FnMut(&[f32]) -> Result<(), AudioError>,
) -> Result<(), AudioError> {
    let channels = usize::from(head.channels);
    let target = u64::from(index.pre_skip) + from_ms.saturating_mul(u64::from(OPUS_RATE)) / 1000;
    if target >= index.end_granule {
        return Ok(());
    }
    let entry = index.lookup(target.saturating_sub(PRE_ROLL));
    let mut decoder = opus::Decoder::new(
        OPUS_RATE,
        if channels == 1 {
            opus::Channels::Mono
        } else {
            opus::Channels::Stereo
        },
    )?;
    let mut pcm = vec![0f32; MAX_PACKET_SAMPLES * channels];
    let mut position = entry.granule;
    for packet in ogg::packets(stream, entry.offset)? {
        let packet = packet?;
        let n = decoder.decode_float(&packet, &mut pcm, false)? as u64;
        let (from, to) = (position, position + n);
        position = to;
        let keep_from = target.max(from);
        let keep_to = index.end_granule.min(to);
        if keep_from < keep_to {
            let a = (keep_from - from) as usize * channels;
            let b = (keep_to - from) as usize * channels;
            out(&pcm[a..b])?;
        }
        if position >= index.end_granule {
            break;
        }
    }
    Ok(())
}
