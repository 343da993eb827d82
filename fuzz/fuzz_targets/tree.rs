//! Tree nodes (MessagePack, decoded after the blob is opened and decompressed), and what
//! restore and ls do with each entry.
#![no_main]
use libfuzzer_sys::fuzz_target;
use plakar::kloset::tree::{self, Tree};

fuzz_target!(|data: &[u8]| {
    if let Ok(t) = Tree::decode(data) {
        for e in &t.entries {
            let _ = (e.kind(), e.name_lossy(), tree::safe_name(&e.name));
            let _ = t.find(&e.name);
            let _ = tree::components(&e.name).count();
        }
        let again = Tree::decode(&t.encode()).expect("a decoded tree encodes and decodes");
        assert_eq!(again, t);
    }
});
