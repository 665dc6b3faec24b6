//! Decoding artists' files (WAV, FLAC, MP3, Ogg Vorbis) with symphonia, and reading their tags.
//!
//! Strict on purpose: an import must not silently drop damaged audio, so a packet that fails
//! to decode, a file shorter than its header says, or a header with absurd values is an error
//! naming the file. A WAV file's header is checked here before symphonia computes with it
//! (a header claiming 65,535 channels at 4 GHz overflows symphonia's arithmetic), and decoding
//! runs behind `catch_unwind`: a decoder bug on a hostile file becomes an error, not a crash.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use symphonia::core::codecs::audio::AudioDecoderOptions;
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, TrackType};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::{MetadataOptions, MetadataRevision, StandardTag};

use super::{AudioError, Pcm};

/// Longest input accepted: 3 hours (about 4 GB of samples in memory at 192 kHz stereo).
pub const MAX_SECONDS: u64 = 3 * 3600;
/// Highest input sample rate accepted.
pub const MAX_RATE: u32 = 384_000;

/// Tags read from the source file, where present.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceTags {
    /// TITLE.
    pub title: Option<String>,
    /// ARTIST.
    pub artist: Option<String>,
    /// ALBUM.
    pub album: Option<String>,
    /// TRACKNUMBER.
    pub track_number: Option<u16>,
}

/// A decoded file.
#[derive(Clone, Debug)]
pub struct Decoded {
    /// The audio, at the file's own rate.
    pub pcm: Pcm,
    /// Its tags.
    pub tags: SourceTags,
}

/// Decodes a whole file.
pub fn decode_file(path: &Path) -> Result<Decoded, AudioError> {
    match catch_unwind(AssertUnwindSafe(|| decode_inner(path))) {
        Ok(result) => result,
        Err(_) => Err(AudioError::Corrupt {
            path: path.to_path_buf(),
            reason: "the decoder failed on this file".to_string(),
        }),
    }
}

/// The format a WAV file's `fmt ` chunk states.
struct WavFormat {
    channels: u16,
    rate: u32,
    bits: u16,
}

/// Reads the `fmt ` chunk of a RIFF/WAVE file; `None` if the file is not RIFF/WAVE (another
/// decoder judges it) or has no `fmt ` chunk in its first 64 chunks (symphonia then finds
/// none either).
fn wav_format(file: &mut File) -> std::io::Result<Option<WavFormat>> {
    let mut riff = [0u8; 12];
    if file.read_exact(&mut riff).is_err() || &riff[..4] != b"RIFF" || &riff[8..] != b"WAVE" {
        return Ok(None);
    }
    for _ in 0..64 {
        let mut chunk = [0u8; 8];
        if file.read_exact(&mut chunk).is_err() {
            return Ok(None);
        }
        let len = u32::from_le_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]);
        if &chunk[..4] == b"fmt " {
            let mut fmt = [0u8; 16];
            if len < 16 || file.read_exact(&mut fmt).is_err() {
                return Ok(None);
            }
            return Ok(Some(WavFormat {
                channels: u16::from_le_bytes([fmt[2], fmt[3]]),
                rate: u32::from_le_bytes([fmt[4], fmt[5], fmt[6], fmt[7]]),
                bits: u16::from_le_bytes([fmt[14], fmt[15]]),
            }));
        }
        file.seek(SeekFrom::Current(i64::from(len) + i64::from(len & 1)))?;
    }
    Ok(None)
}

fn decode_inner(path: &Path) -> Result<Decoded, AudioError> {
    let io = |source| AudioError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(io)?;
    // Before symphonia sees it: a WAV header's numbers must be sane.
    if let Some(wav) = wav_format(&mut file).map_err(io)? {
        let refuse = |reason: String| AudioError::Unacceptable {
            path: path.to_path_buf(),
            reason,
        };
        if !(1..=2).contains(&wav.channels) {
            return Err(refuse(format!(
                "the WAV header states {} channels: only mono and stereo are supported",
                wav.channels
            )));
        }
        if wav.rate == 0 || wav.rate > MAX_RATE {
            return Err(refuse(format!(
                "the WAV header states {} Hz: the sample rate must be 1 to {MAX_RATE} Hz",
                wav.rate
            )));
        }
        if wav.bits == 0 || wav.bits > 64 {
            return Err(refuse(format!(
                "the WAV header states {} bits per sample: 8 to 64 are accepted",
                wav.bits
            )));
        }
    }
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    let unsupported = |e: SymphoniaError| AudioError::Unsupported {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let corrupt = |reason: String| AudioError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    let refuse = |reason: String| AudioError::Unacceptable {
        path: path.to_path_buf(),
        reason,
    };
    let mss = MediaSourceStream::new(Box::new(file), Default::default());
    let mut hint = Hint::new();
    if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
        hint.with_extension(ext);
    }
    let mut format = symphonia::default::get_probe()
        .probe(
            &hint,
            mss,
            FormatOptions::default(),
            MetadataOptions::default(),
        )
        .map_err(unsupported)?;
    let track = format
        .default_track(TrackType::Audio)
        .ok_or_else(|| AudioError::Empty {
            path: path.to_path_buf(),
        })?;
    let track_id = track.id;
    let declared_frames = track.num_frames;
    let params = track
        .codec_params
        .as_ref()
        .and_then(|p| p.audio())
        .ok_or_else(|| AudioError::Empty {
            path: path.to_path_buf(),
        })?
        .clone();
    let rate = params
        .sample_rate
        .ok_or_else(|| refuse("the file states no sample rate".to_string()))?;
    if rate == 0 || rate > MAX_RATE {
        return Err(refuse(format!(
            "sample rate {rate} Hz is outside 1 to {MAX_RATE} Hz"
        )));
    }
    let channels = params.channels.as_ref().map(|c| c.count()).unwrap_or(0);
    if !(1..=2).contains(&channels) {
        return Err(refuse(format!(
            "{channels} channels: only mono and stereo are supported"
        )));
    }
    let max_frames = MAX_SECONDS * u64::from(rate);
    if declared_frames.is_some_and(|n| n > max_frames) {
        return Err(refuse(format!(
            "the header states more than {} hours of audio",
            MAX_SECONDS / 3600
        )));
    }
    let mut decoder = symphonia::default::get_codecs()
        .make_audio_decoder(&params, &AudioDecoderOptions::default())
        .map_err(unsupported)?;

    let mut tags = SourceTags::default();
    read_tags(format.metadata().current(), &mut tags);
    let mut samples: Vec<f32> = Vec::new();
    let mut chunk: Vec<f32> = Vec::new();
    loop {
        let packet = match format.next_packet() {
            Ok(Some(p)) => p,
            Ok(None) => break,
            // A stream that ends mid-packet: report it below as a short file.
            Err(SymphoniaError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                break;
            }
            Err(e) => return Err(corrupt(e.to_string())),
        };
        if packet.track_id != track_id {
            continue;
        }
        let decoded = decoder.decode(&packet).map_err(|e| {
            corrupt(format!(
                "at {} s: {e}",
                samples.len() / channels / rate as usize
            ))
        })?;
        if decoded.spec().channels().count() != channels || decoded.spec().rate() != rate {
            return Err(corrupt("the stream changes format midway".to_string()));
        }
        decoded.copy_to_vec_interleaved(&mut chunk);
        samples.extend_from_slice(&chunk);
        if (samples.len() / channels) as u64 > max_frames {
            return Err(refuse(format!("longer than {} hours", MAX_SECONDS / 3600)));
        }
    }
    while let Some(revision) = format.metadata().pop() {
        read_tags(Some(&revision), &mut tags);
    }
    let frames = (samples.len() / channels) as u64;
    if frames == 0 {
        return Err(AudioError::Empty {
            path: path.to_path_buf(),
        });
    }
    if let Some(declared) = declared_frames
        && frames < declared
    {
        return Err(corrupt(format!(
            "cut short: the header promises {declared} frames, the file holds {frames}"
        )));
    }
    if samples.iter().any(|s| !s.is_finite()) {
        return Err(corrupt("samples that are not numbers".to_string()));
    }
    Ok(Decoded {
        pcm: Pcm {
            rate,
            channels: channels as u16,
            samples,
        },
        tags,
    })
}

fn read_tags(revision: Option<&MetadataRevision>, tags: &mut SourceTags) {
    let Some(revision) = revision else { return };
    let all = revision.media.tags.iter().chain(
        revision
            .per_track
            .iter()
            .flat_map(|t| t.metadata.tags.iter()),
    );
    for tag in all {
        match &tag.std {
            Some(StandardTag::TrackTitle(t)) => tags.title = Some(t.to_string()),
            Some(StandardTag::Artist(a)) => tags.artist = Some(a.to_string()),
            Some(StandardTag::Album(a)) => tags.album = Some(a.to_string()),
            Some(StandardTag::TrackNumber(n)) => tags.track_number = u16::try_from(*n).ok(),
            _ => {}
        }
    }
}
