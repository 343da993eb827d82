//! Snapshot headers (MessagePack, decoded after the blob is opened and decompressed).
#![no_main]
use libfuzzer_sys::fuzz_target;
use plakar::kloset::snapshot::Header;

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = Header::decode(data) {
        let _ = h.time();
        let again = Header::decode(&h.encode()).expect("a decoded header encodes and decodes");
        assert_eq!(again, h);
    }
});
