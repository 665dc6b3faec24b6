//! Reading an Ogg Opus stream (`audio::ogg::read_head` and `audio::ogg::packets`, what
//! playback does with a fetched track): any bytes give a head or an error, and a finite run of
//! packets that never holds more bytes than the stream.
#![no_main]

use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use nineten_node::audio::ogg;

fuzz_target!(|data: &[u8]| {
    if let Ok(head) = ogg::read_head(&mut Cursor::new(data)) {
        assert!(matches!(head.channels, 1 | 2));
    }
    let Ok(packets) = ogg::packets(Cursor::new(data), 0) else {
        return;
    };
    let mut bytes = 0;
    for packet in packets {
        let Ok(packet) = packet else {
            break;
        };
        bytes += packet.len();
        assert!(bytes <= data.len());
    }
});
