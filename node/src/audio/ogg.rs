//! Ogg Opus (RFC 7845) that third-party tools accept: OpusHead alone on the first page,
//! OpusTags alone on the second, 20 ms packets, each page's granule position counting 48 kHz
//! samples including pre-skip, the last page ending exactly at pre-skip + samples with
//! end-of-stream set. Audio pages hold one second each, and each page start is a seek index
//! entry.

use std::io::{Read, Seek, SeekFrom};

use ogg::{PacketReader, PacketWriteEndInfo, PacketWriter};

use super::encode::Encoded;
use super::seek::{Entry, SeekIndex};
use super::{AudioError, FRAME};

/// Packets per audio page: one second.
const PACKETS_PER_PAGE: usize = 50;

/// Tags written into OpusTags.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tags {
    /// TITLE.
    pub title: String,
    /// ARTIST.
    pub artist: String,
    /// ALBUM.
    pub album: String,
    /// TRACKNUMBER.
    pub track_number: u16,
}

/// What OpusHead says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    /// Channels: 1 or 2.
    pub channels: u8,
    /// Samples to drop at the start.
    pub pre_skip: u16,
    /// The source's sample rate (informational).
    pub input_rate: u32,
}

/// A complete Ogg Opus stream and its seek index.
#[derive(Clone, Debug)]
pub struct OggOpus {
    /// The stream's bytes: the file a player reads.
    pub bytes: Vec<u8>,
    /// Page starts by granule position.
    pub index: SeekIndex,
}

/// Writes `encoded` as an Ogg Opus stream.
pub fn write(encoded: &Encoded, tags: &Tags, input_rate: u32) -> Result<OggOpus, AudioError> {
    let io = |e: std::io::Error| AudioError::Stream(e.to_string());
    // A serial number derived from the audio: the same import gives the same bytes.
    let mut hasher = blake3::Hasher::new();
    for p in &encoded.packets {
        hasher.update(p);
    }
    let digest = hasher.finalize();
    let serial = u32::from_be_bytes(digest.as_bytes()[..4].try_into().expect("4 bytes"));

    let mut w = PacketWriter::new(Vec::with_capacity(
        encoded.packets.iter().map(Vec::len).sum::<usize>() * 102 / 100 + 4096,
    ));
    let head = head_packet(encoded.channels as u8, encoded.pre_skip, input_rate);
    w.write_packet(head, serial, PacketWriteEndInfo::EndPage, 0)
        .map_err(io)?;
    w.write_packet(tags_packet(tags), serial, PacketWriteEndInfo::EndPage, 0)
        .map_err(io)?;

    let end_granule = u64::from(encoded.pre_skip) + encoded.frames;
    let last = encoded.packets.len().saturating_sub(1);
    let mut entries = Vec::with_capacity(encoded.packets.len() / PACKETS_PER_PAGE + 1);
    for (i, packet) in encoded.packets.iter().enumerate() {
        if i % PACKETS_PER_PAGE == 0 {
            entries.push(Entry {
                granule: (i * FRAME) as u64,
                offset: w.inner().len() as u64,
            });
        }
        let granule = (((i + 1) * FRAME) as u64).min(end_granule);
        let end = if i == last {
            PacketWriteEndInfo::EndStream
        } else if (i + 1) % PACKETS_PER_PAGE == 0 {
            PacketWriteEndInfo::EndPage
        } else {
            PacketWriteEndInfo::NormalPacket
        };
        w.write_packet(packet.as_slice(), serial, end, granule)
            .map_err(io)?;
    }
    Ok(OggOpus {
        bytes: w.into_inner(),
        index: SeekIndex {
            pre_skip: encoded.pre_skip,
            end_granule,
            entries,
        },
    })
}

fn head_packet(channels: u8, pre_skip: u16, input_rate: u32) -> Vec<u8> {
    let mut h = Vec::with_capacity(19);
    h.extend_from_slice(b"OpusHead");
    h.push(1); // version
    h.push(channels);
    h.extend_from_slice(&pre_skip.to_le_bytes());
    h.extend_from_slice(&input_rate.to_le_bytes());
    h.extend_from_slice(&0i16.to_le_bytes()); // output gain
    h.push(0); // channel mapping family 0: mono or stereo
    h
}

fn tags_packet(tags: &Tags) -> Vec<u8> {
    let vendor = format!("9ten {}", env!("CARGO_PKG_VERSION"));
    let comments = [
        format!("TITLE={}", tags.title),
        format!("ARTIST={}", tags.artist),
        format!("ALBUM={}", tags.album),
        format!("TRACKNUMBER={}", tags.track_number),
    ];
    let mut t = Vec::new();
    t.extend_from_slice(b"OpusTags");
    t.extend_from_slice(&(vendor.len() as u32).to_le_bytes());
    t.extend_from_slice(vendor.as_bytes());
    t.extend_from_slice(&(comments.len() as u32).to_le_bytes());
    for c in &comments {
        t.extend_from_slice(&(c.len() as u32).to_le_bytes());
        t.extend_from_slice(c.as_bytes());
    }
    t
}

/// Reads OpusHead from the start of a stream.
pub fn read_head<R: Read + Seek>(stream: &mut R) -> Result<Head, AudioError> {
    stream
        .seek(SeekFrom::Start(0))
        .map_err(|e| AudioError::Stream(format!("reading the head: {e}")))?;
    let mut reader = PacketReader::new(stream);
    let packet = reader
        .read_packet()
        .map_err(read_error)?
        .ok_or_else(|| AudioError::Stream("empty stream".to_string()))?;
    let d = &packet.data;
    if d.len() < 19 || &d[..8] != b"OpusHead" || d[8] != 1 || !(1..=2).contains(&d[9]) || d[18] != 0
    {
        return Err(AudioError::Stream(
            "no mono or stereo OpusHead on the first page".to_string(),
        ));
    }
    Ok(Head {
        channels: d[9],
        pre_skip: u16::from_le_bytes([d[10], d[11]]),
        input_rate: u32::from_le_bytes([d[12], d[13], d[14], d[15]]),
    })
}

/// Reads the audio packets of `stream` from byte `offset`, which must be a page start (a seek
/// entry's offset). Yields each packet's data.
pub fn packets<R: Read + Seek>(
    stream: R,
    offset: u64,
) -> Result<impl Iterator<Item = Result<Vec<u8>, AudioError>>, AudioError> {
    let mut reader = PacketReader::new(stream);
    reader
        .seek_bytes(SeekFrom::Start(offset))
        .map_err(|e| AudioError::Stream(format!("seeking to byte {offset}: {e}")))?;
    Ok(std::iter::from_fn(move || match reader.read_packet() {
        Ok(Some(p)) => Some(Ok(p.data)),
        Ok(None) => None,
        Err(e) => Some(Err(read_error(e))),
    }))
}

/// The ogg crate's error, with the underlying I/O error spelt out (its own text says only
/// "I/O error").
fn read_error(e: ::ogg::OggReadError) -> AudioError {
    match e {
        ::ogg::OggReadError::ReadError(io) => AudioError::Stream(format!("reading: {io}")),
        e => AudioError::Stream(e.to_string()),
    }
}
