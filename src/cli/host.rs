//! This machine as the engine's locks see it: a random host id kept in the config
//! directory (not the hostname, which containers and cloned VMs share), and a cache
//! directory where observations of other hosts' locks are kept between runs.

use crate::kloset::host::{Host, SystemHost};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

/// Reads this machine's host id, creating it on first use (0600, written whole or not at
/// all). Empty when the config directory cannot be written: then no lock of this host is
/// ever taken for a dead process's, which is safe, only slower to recover.
pub fn host_id(config_dir: &Path) -> String {
    let path = config_dir.join("host-id");
    let valid = |s: &str| s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit());
    if let Ok(s) = std::fs::read_to_string(&path) {
        if valid(s.trim()) {
            return s.trim().to_string();
        }
    }
    let id = hex::encode(crate::kloset::crypto::random_bytes::<16>());
    let tmp = config_dir.join(format!(".host-id.{}", std::process::id()));
    let written = std::fs::create_dir_all(config_dir).and_then(|_| {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        f.write_all(id.as_bytes())?;
        f.sync_all()?;
        // A concurrent first run may have made one meanwhile: link fails then, and its id wins.
        let linked = std::fs::hard_link(&tmp, &path);
        let _ = std::fs::remove_file(&tmp);
        linked
    });
    match written {
        Ok(()) => id,
        Err(_) => {
            std::fs::read_to_string(&path).map(|s| s.trim().to_string()).ok().filter(|s| valid(s)).unwrap_or_default()
        }
    }
}

pub fn system(config_dir: &Path, cache_dir: &Path) -> Arc<dyn Host> {
    Arc::new(SystemHost::new(host_id(config_dir), Some(cache_dir.join("locks"))))
}
