//! A track's seek index (`SeekIndex::from_bytes`, a blob fetched from peers): what decodes
//! re-encodes to exactly the input, and a lookup anywhere gives the last entry at or before
//! the granule (the first entry before it).
#![no_main]

use libfuzzer_sys::fuzz_target;
use nineten_node::audio::seek::SeekIndex;

fuzz_target!(|data: &[u8]| {
    let Ok(index) = SeekIndex::from_bytes(data) else {
        return;
    };
    assert_eq!(index.to_bytes(), data);
    let first = index.entries[0];
    for e in &index.entries {
        for granule in [
            e.granule.saturating_sub(1),
            e.granule,
            e.granule.saturating_add(1),
        ] {
            let found = index.lookup(granule);
            if granule < first.granule {
                assert_eq!(found, first);
            } else {
                assert!(found.granule <= granule);
                assert!(
                    index
                        .entries
                        .iter()
                        .all(|x| x.granule <= found.granule || x.granule > granule)
                );
            }
        }
    }
    assert_eq!(index.lookup(0), first);
});
