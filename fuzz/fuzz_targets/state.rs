//! States. The input is a state body as it is once opened; it is parsed directly, and also
//! sealed with plaintext keys and decoded the way a store is read. A state that parses
//! must survive a round trip.
#![no_main]
use libfuzzer_sys::fuzz_target;
use plakar::kloset::id::StateId;
use plakar::kloset::state::State;

fuzz_target!(|data: &[u8]| {
    let keys = plakar_fuzz::plain_keys();
    let id = StateId([7; 32]);
    // As read from a store: authentication fails for all but the seeds.
    let _ = State::decode(keys, &id, data);
    if let Ok(s) = State::parse(data) {
        let sealed = s.encode(keys, &id);
        assert_eq!(State::decode(keys, &id, &sealed).as_ref(), Ok(&s));
        assert_eq!(&sealed[24..sealed.len() - 16], data, "a state has one encoding");
    }
});
