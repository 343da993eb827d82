//! The repository CONFIG object: format version, chunking, compression and packfile
//! parameters, and the key slots that wrap the master key. Readable without a passphrase
//! only as far as needed to derive the key.

use crate::kloset::crypto::{self, KdfParams, Keys};
use crate::kloset::error::{Error, Result};
use serde::{Deserialize, Serialize};

pub const MAGIC: &[u8; 8] = b"KLOSETRS";
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Chunking {
    pub algorithm: String,
    pub min_size: u32,
    pub avg_size: u32,
    pub max_size: u32,
}

impl Default for Chunking {
    fn default() -> Self {
        Self { algorithm: "fastcdc-v2020".into(), min_size: 512 << 10, avg_size: 1 << 20, max_size: 8 << 20 }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Compression {
    pub algorithm: String,
    pub level: i32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct KeySlot {
    pub kdf: String,
    pub params: KdfParams,
    #[serde(with = "hex_bytes")]
    pub salt: Vec<u8>,
    /// The master key sealed under the Argon2id-derived key.
    #[serde(with = "hex_bytes")]
    pub wrapped: Vec<u8>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Encryption {
    pub algorithm: String,
    pub keys: Vec<KeySlot>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RepoConfig {
    pub repository_id: String,
    pub created: String,
    pub chunking: Chunking,
    pub compression: Option<Compression>,
    pub packfile_max_size: u64,
    pub hashing: String,
    pub encryption: Option<Encryption>,
    /// Plaintext stores only: the master key, in the clear, so ids stay keyed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plaintext_master: Option<String>,
}

pub struct CreateParams {
    pub encrypted: bool,
    pub compression: bool,
    pub kdf: KdfParams,
    pub chunking: Chunking,
    pub packfile_max_size: u64,
}

impl Default for CreateParams {
    fn default() -> Self {
        Self {
            encrypted: true,
            compression: true,
            kdf: KdfParams::default(),
            chunking: Chunking::default(),
            packfile_max_size: 16 << 20,
        }
    }
}

impl RepoConfig {
    /// Builds a new CONFIG and returns it with the master key it wraps.
    pub fn new(p: &CreateParams, passphrase: Option<&[u8]>) -> Result<(Self, [u8; 32])> {
        let master: [u8; 32] = crypto::random_bytes();
        let repository_id = hex::encode(crypto::random_bytes::<16>());
        let mut cfg = RepoConfig {
            repository_id,
            created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            chunking: p.chunking.clone(),
            compression: p.compression.then(|| Compression { algorithm: "zstd".into(), level: 3 }),
            packfile_max_size: p.packfile_max_size,
            hashing: "BLAKE3-keyed".into(),
            encryption: None,
            plaintext_master: None,
        };
        if p.encrypted {
            let pass = passphrase
                .filter(|p| !p.is_empty())
                .ok_or_else(|| Error::Auth("can't encrypt the repository with an empty passphrase".into()))?;
            let slot = cfg.wrap(&master, pass, p.kdf)?;
            cfg.encryption = Some(Encryption { algorithm: "XChaCha20-Poly1305".into(), keys: vec![slot] });
        } else {
            cfg.plaintext_master = Some(hex::encode(master));
        }
        Ok((cfg, master))
    }

    fn slot_ad(&self) -> Vec<u8> {
        format!("plakar-rs master key {}", self.repository_id).into_bytes()
    }

    /// Wraps `master` under a key derived from `passphrase`, for a new key slot.
    pub fn wrap(&self, master: &[u8; 32], passphrase: &[u8], params: KdfParams) -> Result<KeySlot> {
        let salt: [u8; 16] = crypto::random_bytes();
        let kek = crypto::derive_kek(passphrase, &salt, params).map_err(Error::Other)?;
        let wrapped = Keys::wrapping(&kek).seal(&self.slot_ad(), master);
        Ok(KeySlot { kdf: "argon2id".into(), params, salt: salt.to_vec(), wrapped })
    }

    pub fn encrypted(&self) -> bool {
        self.encryption.is_some()
    }

    /// Recovers the master key: from a key slot with the passphrase, or from a plaintext CONFIG.
    pub fn unlock(&self, passphrase: Option<&[u8]>) -> Result<[u8; 32]> {
        let Some(enc) = &self.encryption else {
            let hexkey = self.plaintext_master.as_deref().unwrap_or_default();
            return hex::decode(hexkey)
                .ok()
                .and_then(|v| v.try_into().ok())
                .ok_or_else(|| Error::Corrupt("CONFIG of a plaintext store has no valid key".into()));
        };
        let pass = passphrase.unwrap_or_default();
        for slot in &enc.keys {
            let kek = crypto::derive_kek(pass, &slot.salt, slot.params).map_err(Error::Corrupt)?;
            if let Ok(m) = Keys::wrapping(&kek).open(&self.slot_ad(), &slot.wrapped) {
                if let Ok(m) = m.try_into() {
                    return Ok(m);
                }
            }
        }
        Err(Error::Auth("failed to unlock repository: wrong passphrase (check PLAKAR_PASSPHRASE or -keyfile)".into()))
    }

    /// Adds a key slot for `new` (unlocking with `current`) and, unless `keep_old`, drops
    /// the slot `current` opened. The master key, and so every object, stays the same.
    pub fn change_passphrase(&mut self, current: &[u8], new: &[u8], keep_old: bool) -> Result<()> {
        let master = self.unlock(Some(current))?;
        let ad = self.slot_ad();
        // The new slot costs what the existing ones cost to open.
        let params =
            self.encryption.as_ref().and_then(|e| e.keys.first()).map_or_else(KdfParams::default, |s| s.params);
        let slot = self.wrap(&master, new, params)?;
        let Some(enc) = self.encryption.as_mut() else {
            return Err(Error::Other("a plaintext store has no passphrase to change".into()));
        };
        if !keep_old {
            enc.keys.retain(|s| {
                let opened = crypto::derive_kek(current, &s.salt, s.params)
                    .ok()
                    .is_some_and(|kek| Keys::wrapping(&kek).open(&ad, &s.wrapped).is_ok());
                !opened
            });
        }
        enc.keys.push(slot);
        Ok(())
    }

    /// Key slots: passphrases that open this store.
    pub fn key_count(&self) -> usize {
        self.encryption.as_ref().map_or(0, |e| e.keys.len())
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&serde_json::to_vec_pretty(self).expect("CONFIG serializes"));
        out.push(b'\n');
        out
    }

    pub fn decode(data: &[u8], location: &str) -> Result<Self> {
        if data.len() < 12 || &data[..8] != MAGIC {
            if data.starts_with(b"_KLOSET_") || data.starts_with(b"_PLAKAR_") {
                return Err(Error::Version(format!(
                    "{location} is a store written by Go Plakar, whose format this plakar does not read"
                )));
            }
            return Err(Error::NotAStore(format!("{location} is not a plakar store (its CONFIG is not ours)")));
        }
        let version = u32::from_le_bytes(data[8..12].try_into().expect("4 bytes"));
        if version != FORMAT_VERSION {
            return Err(Error::Version(format!(
                "{location} uses store format version {version}, this plakar reads version {FORMAT_VERSION}; use a matching plakar release"
            )));
        }
        serde_json::from_slice(&data[12..]).map_err(|e| Error::Corrupt(format!("CONFIG of {location} is damaged: {e}")))
    }
}

impl Keys {
    fn wrapping(kek: &[u8; 32]) -> Keys {
        // A key slot is sealed directly with the KEK, not a derived key.
        Keys::new_raw(kek)
    }
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(b))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        hex::decode(s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast() -> CreateParams {
        CreateParams { kdf: KdfParams { m_cost_kib: 256, t_cost: 1, p_cost: 1 }, ..Default::default() }
    }

    #[test]
    fn unlock_with_right_passphrase_only() {
        let (cfg, master) = RepoConfig::new(&fast(), Some(b"secret")).unwrap();
        let back = RepoConfig::decode(&cfg.encode(), "x").unwrap();
        assert_eq!(back.unlock(Some(b"secret")).unwrap(), master);
        assert!(matches!(back.unlock(Some(b"wrong")), Err(Error::Auth(_))));
    }

    #[test]
    fn empty_passphrase_refused() {
        assert!(matches!(RepoConfig::new(&fast(), Some(b"")), Err(Error::Auth(_))));
    }

    #[test]
    fn other_version_is_reported() {
        let (cfg, _) = RepoConfig::new(&fast(), Some(b"p")).unwrap();
        let mut data = cfg.encode();
        data[8] = 9;
        assert!(matches!(RepoConfig::decode(&data, "x"), Err(Error::Version(_))));
        assert!(matches!(RepoConfig::decode(b"hello world!", "x"), Err(Error::NotAStore(_))));
    }
}
