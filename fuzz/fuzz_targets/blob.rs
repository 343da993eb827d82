//! Blob decoding. The first byte picks the blob type; the rest is a blob body as it is once
//! opened (compression byte, then data). It is decompressed under the reader's bound, and
//! sealed with plaintext keys and decoded as a store read would. A body that decodes must
//! survive a round trip through `encode`.
#![no_main]
use libfuzzer_sys::fuzz_target;
use plakar::kloset::blob::{self, BlobType};
use plakar::kloset::id::BlobId;

/// Trees may legitimately reach a gigabyte; the fuzzer checks the bound with a smaller one.
const TREE_LIMIT: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let keys = plakar_fuzz::plain_keys();
    let (sel, body) = plakar_fuzz::split(data);
    let t = BlobType::from_u8(sel % 3 + 1).expect("1..=3");
    let max = match t {
        BlobType::Tree => TREE_LIMIT,
        t => blob::max_plain_len(t),
    };
    // As read from a store: authentication fails for all but the seeds.
    let _ = blob::decode(keys, t, &BlobId([1; 32]), data);
    let Ok(plain) = blob::decompress(body, max) else {
        return;
    };
    assert!(plain.len() <= max);
    // Round trips cost a compression each: skip the large outputs bombs make.
    if plain.len() > 1 << 20 {
        return;
    }
    let id = if t == BlobType::Snapshot { BlobId([2; 32]) } else { keys.mac(&plain) };
    for level in [None, Some(1)] {
        let enc = blob::encode(keys, t, &id, &plain, level);
        assert_eq!(blob::decode(keys, t, &id, &enc).expect("round trip"), plain);
    }
});
