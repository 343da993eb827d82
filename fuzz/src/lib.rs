//! Helpers shared by the fuzz targets.

use plakar::kloset::crypto::Keys;
use std::sync::OnceLock;

/// Keys of a plaintext store with a fixed master key: objects sealed with them carry a
/// keyed tag and no secrecy, so a target can seal what it wants to see parsed.
pub fn plain_keys() -> &'static Keys {
    static K: OnceLock<Keys> = OnceLock::new();
    K.get_or_init(|| Keys::new(&[0x5a; 32], false))
}

/// Splits the first byte off as a selector.
pub fn split(data: &[u8]) -> (u8, &[u8]) {
    match data.split_first() {
        Some((&b, rest)) => (b, rest),
        None => (0, data),
    }
}
