//! Packfile footer and index. The same input is read as a whole packfile (footer, index
//! bounds, authentication) and as an index already opened (its records).
#![no_main]
use libfuzzer_sys::fuzz_target;
use plakar::kloset::id::PackId;
use plakar::kloset::packfile::{self, FOOTER_LEN};

fuzz_target!(|data: &[u8]| {
    let keys = plakar_fuzz::plain_keys();
    let _ = packfile::read_index(keys, &PackId([0; 32]), data);
    if let Ok((off, len)) = packfile::index_span(data) {
        assert!(off + len <= data.len() - FOOTER_LEN);
    }
    if let Ok(entries) = packfile::parse_index(data) {
        assert_eq!(entries.len() * 41, data.len());
    }
});
