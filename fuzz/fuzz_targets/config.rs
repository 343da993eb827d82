//! CONFIG: decoded before anything else, without a key. A CONFIG that decodes must be
//! usable: its chunking accepted by the chunker, its key recoverable or refused cleanly.
#![no_main]
use libfuzzer_sys::fuzz_target;
use plakar::kloset::config::RepoConfig;

fuzz_target!(|data: &[u8]| {
    let Ok(cfg) = RepoConfig::decode(data, "fuzz") else {
        return;
    };
    let again = RepoConfig::decode(&cfg.encode(), "fuzz").expect("a decoded CONFIG encodes and decodes");
    assert_eq!(again, cfg);
    // Backup cuts files with these parameters; FastCDC asserts on values out of its range.
    let c = &cfg.chunking;
    let _ = fastcdc::v2020::FastCDC::new(&[], c.min_size, c.avg_size, c.max_size).count();
    match &cfg.encryption {
        None => {
            let _ = cfg.unlock(None);
        }
        // Argon2 is run only with small parameters, to keep executions fast; the bounds on
        // large ones are checked by decode itself.
        Some(e) if e.keys.len() <= 2 && e.keys.iter().all(|k| k.params.m_cost_kib <= 64 && k.params.t_cost <= 2) => {
            let _ = cfg.unlock(Some(b"fuzz"));
        }
        Some(_) => {}
    }
});
