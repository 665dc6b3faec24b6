//! Months (`Month` from `YYYY-MM`, and `Month::containing` a Unix time): what parses displays
//! as exactly the input, and its bounds hold exactly the times that fall in it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nineten_protocol::month::Month;

/// A month's bounds: the first and last millisecond are in it, the next one is not.
fn check(m: Month) {
    let (start, end) = m.bounds_ms();
    assert!(start < end);
    assert_eq!(Month::containing(start), Some(m));
    assert_eq!(Month::containing(end - 1), Some(m));
    assert!(m.contains(start) && m.contains(end - 1) && !m.contains(end));
    assert_eq!(Month::containing(end), m.next());
    assert_eq!(m.to_string().parse::<Month>(), Ok(m));
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(m) = text.parse::<Month>()
    {
        assert_eq!(m.to_string(), text);
        check(m);
    }
    if let Some(ms) = data.first_chunk::<8>().map(|b| u64::from_be_bytes(*b))
        && let Some(m) = Month::containing(ms)
    {
        assert!(m.contains(ms));
        check(m);
    }
});
