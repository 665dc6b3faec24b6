//! Audio: from an artist's file to a standard Ogg Opus stream, and from that stream to sound.
//!
//! Import: [`decode`] (symphonia: WAV, FLAC, MP3, Ogg Vorbis) → [`resample`] to 48 kHz
//! (rubato) → [`encode`] (libopus, music application, VBR) → [`ogg`] (Ogg Opus pages with
//! tags, and a [`seek`] index of granule position to byte offset, about one entry a second).
//! Playback: [`ogg`] reads pages from any indexed offset → [`playback`] decodes with libopus,
//! drops pre-skip and pre-roll, and feeds a [`sink`]: the sound device behind a jitter
//! buffer, a WAV file, or nothing.
//!
//! Nothing here touches the network or the node's store: it works on files and bytes.

pub mod decode;
pub mod encode;
pub mod error;
pub mod ogg;
pub mod pcm;
pub mod playback;
pub mod resample;
pub mod seek;
pub mod sink;
pub mod wav;

pub use error::AudioError;
pub use pcm::Pcm;

/// Opus always runs at 48 kHz; granule positions count samples at this rate.
pub const OPUS_RATE: u32 = 48_000;
/// Samples per channel in each Opus packet we write: 20 ms.
pub const FRAME: usize = 960;
