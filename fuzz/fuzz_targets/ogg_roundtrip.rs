//! Writing then reading Ogg Opus (`audio::ogg::write`, `read_head`, `packets`): for packets
//! of any sizes (1 to 1276 bytes, lacing edges included), the head reads back as written,
//! the packets come back exactly and in order, every seek index entry starts a page whose
//! first packet is the entry's, and the index round-trips through its binary form.
#![no_main]

use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use nineten_node::audio::FRAME;
use nineten_node::audio::encode::Encoded;
use nineten_node::audio::ogg::{self, Head, Tags};
use nineten_node::audio::seek::SeekIndex;

/// Packets per audio page, as the writer pages them.
const PACKETS_PER_PAGE: usize = 50;

/// Packets from the input: per packet a u16 length (taken mod 1276, plus 1) and a fill byte.
fn packets(data: &[u8]) -> Vec<Vec<u8>> {
    data.chunks_exact(3)
        .map(|c| {
            let len = usize::from(u16::from_le_bytes([c[0], c[1]])) % 1276 + 1;
            vec![c[2]; len]
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let Some((head, rest)) = data.split_first_chunk::<8>() else {
        return;
    };
    let packets = packets(rest);
    if packets.is_empty() {
        return;
    }
    // Samples the packets hold, less some padding at the end (under a frame).
    let held = packets.len() * FRAME - usize::from(head[7]) * FRAME / 256;
    let pre_skip =
        u16::from_le_bytes([head[1], head[2]]) % u16::try_from(held.min(65_535)).expect("fits");
    let encoded = Encoded {
        channels: u16::from(head[0] & 1) + 1,
        pre_skip,
        frames: (held - usize::from(pre_skip)) as u64,
        packets,
    };
    let input_rate = u32::from_le_bytes([head[3], head[4], head[5], head[6]]);
    let tags = Tags {
        title: "title".to_string(),
        artist: "artist".to_string(),
        album: "album".to_string(),
        track_number: u16::from(head[0]),
    };
    let out = ogg::write(&encoded, &tags, input_rate).expect("writing to memory succeeds");

    let read = ogg::read_head(&mut Cursor::new(&out.bytes)).expect("the head reads back");
    let want = Head {
        channels: encoded.channels as u8,
        pre_skip,
        input_rate,
    };
    assert_eq!(read, want);

    let all: Vec<Vec<u8>> = ogg::packets(Cursor::new(&out.bytes), 0)
        .expect("the stream starts at 0")
        .collect::<Result<_, _>>()
        .expect("every packet reads back");
    assert_eq!(all.len(), encoded.packets.len() + 2);
    assert!(all[2..] == encoded.packets[..]);

    let index = &out.index;
    assert_eq!(index.pre_skip, pre_skip);
    assert_eq!(index.end_granule, u64::from(pre_skip) + encoded.frames);
    assert_eq!(
        index.entries.len(),
        encoded.packets.len().div_ceil(PACKETS_PER_PAGE)
    );
    for (k, entry) in index.entries.iter().enumerate() {
        assert_eq!(entry.granule, (k * PACKETS_PER_PAGE * FRAME) as u64);
        let first = ogg::packets(Cursor::new(&out.bytes), entry.offset)
            .expect("an entry's offset is in the stream")
            .next()
            .expect("a page starts at the entry")
            .expect("its first packet reads");
        assert_eq!(first, encoded.packets[k * PACKETS_PER_PAGE]);
    }
    assert_eq!(SeekIndex::from_bytes(&index.to_bytes()).as_ref(), Ok(index));
});
