//! The repository CONFIG object: format version, chunking, compression and packfile
//! parameters, and the key slots that wrap the master key. Readable without a passphrase
//! only as far as needed to derive the key.

use crate::kloset::crypto::{self, KdfParams, Keys};
use crate::kloset::error::{Error, Result};
use serde::{Deserialize, Serialize};

pub const MAGIC: &[u8; 8] = b"KLOSETRS";
pub const FORMAT_VERSION: u32 = 1;

/// The largest packfile a CONFIG may ask for (`create -packfile-mib` allows up to 1 GiB);
/// packfile offsets are 32-bit.
pub const MAX_PACKFILE_SIZE: u64 = 1 << 30;
/// Passphrases a store may hold (`passwd -add` refuses more).
pub const MAX_KEY_SLOTS: usize = 16;
/// Key slots a store may have when read, each costing one Argon2id derivation to try: more
/// than `MAX_KEY_SLOTS`, so that a change (new slot written, then the old one removed) on
/// a full store never leaves it unreadable in between.
pub const MAX_KEY_SLOTS_READ: usize = 2 * MAX_KEY_SLOTS;
/// Shortest salt a key slot may have (ours are 16 bytes; Argon2 needs 8).
const MIN_SALT: usize = 8;
/// Argon2id parameters a key slot may ask for: 2 GiB is RFC 9106's first recommendation.
pub const MAX_KDF: KdfParams = KdfParams { m_cost_kib: 2 << 20, t_cost: 16, p_cost: 16 };

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
    /// Key slots added since the store was created: one `keys/<id>` object each, read
    /// beside CONFIG (`repo::read_config`), never written into it.
    #[serde(skip)]
    pub extra_keys: Vec<([u8; 32], KeySlot)>,
}

/// Where a key slot lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotRef {
    /// In CONFIG (the slot `create` wrote, or one an older plakar added).
    Config(usize),
    /// A `keys/<id>` object.
    Object([u8; 32]),
}

/// First bytes of a key slot object.
pub const KEY_MAGIC: &[u8; 8] = b"KLOSETKY";

impl KeySlot {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = KEY_MAGIC.to_vec();
        out.extend_from_slice(&serde_json::to_vec(self).expect("key slot serializes"));
        out
    }

    pub fn decode(b: &[u8]) -> std::result::Result<Self, String> {
        let body = b.strip_prefix(KEY_MAGIC).ok_or("not a key slot")?;
        serde_json::from_slice(body).map_err(|e| e.to_string())
    }
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
            extra_keys: Vec::new(),
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
        if self.encryption.is_none() {
            let hexkey = self.plaintext_master.as_deref().unwrap_or_default();
            return hex::decode(hexkey)
                .ok()
                .and_then(|v| v.try_into().ok())
                .ok_or_else(|| Error::Corrupt("CONFIG of a plaintext store has no valid key".into()));
        }
        let pass = passphrase.unwrap_or_default();
        for (_, slot) in self.slots() {
            let kek = crypto::derive_kek(pass, &slot.salt, slot.params).map_err(Error::Corrupt)?;
            if let Ok(m) = Keys::wrapping(&kek).open(&self.slot_ad(), &slot.wrapped) {
                if let Ok(m) = m.try_into() {
                    return Ok(m);
                }
            }
        }
        Err(Error::Auth("failed to unlock repository: wrong passphrase (check PLAKAR_PASSPHRASE or -keyfile)".into()))
    }

    /// Every key slot: CONFIG's, then the added ones.
    pub fn slots(&self) -> impl Iterator<Item = (SlotRef, &KeySlot)> {
        let inline =
            self.encryption.iter().flat_map(|e| e.keys.iter().enumerate().map(|(i, k)| (SlotRef::Config(i), k)));
        inline.chain(self.extra_keys.iter().map(|(id, k)| (SlotRef::Object(*id), k)))
    }

    /// Which slots `passphrase` opens.
    pub fn slots_opened_by(&self, passphrase: &[u8]) -> Vec<SlotRef> {
        let ad = self.slot_ad();
        self.slots()
            .filter(|(_, s)| {
                crypto::derive_kek(passphrase, &s.salt, s.params)
                    .ok()
                    .is_some_and(|kek| Keys::wrapping(&kek).open(&ad, &s.wrapped).is_ok())
            })
            .map(|(r, _)| r)
            .collect()
    }

    /// A new key slot for `new`, wrapping the master key `current` unlocks, at the cost of
    /// the costliest slot `current` opens: only those are known to be the owner's (anyone
    /// who can write to the store can add a slot, none that the owner's passphrase opens),
    /// so a planted cheap slot cannot make the new one cheap to guess.
    pub fn new_slot(&self, current: &[u8], new: &[u8]) -> Result<KeySlot> {
        let master = self.unlock(Some(current))?;
        if !self.encrypted() {
            return Err(Error::Other("a plaintext store has no passphrase to change".into()));
        }
        let opened = self.slots_opened_by(current);
        let params = self
            .slots()
            .filter(|(r, _)| opened.contains(r))
            .map(|(_, s)| s.params)
            .max_by_key(|p| (p.m_cost_kib, p.t_cost, p.p_cost))
            .unwrap_or_default();
        self.wrap(&master, new, params)
    }

    /// Key slots: passphrases that open this store.
    pub fn key_count(&self) -> usize {
        self.slots().count()
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
        let cfg: Self = serde_json::from_slice(&data[12..])
            .map_err(|e| Error::Corrupt(format!("CONFIG of {location} is damaged: {e}")))?;
        cfg.check().map_err(|e| Error::Corrupt(format!("CONFIG of {location} is damaged: {e}")))?;
        Ok(cfg)
    }

    /// Rejects parameters that the chunker would assert on, or that would make opening or
    /// writing to the store use unbounded memory or time (a crafted CONFIG asking Argon2 for
    /// terabytes, or for thousands of key slots to try).
    fn check(&self) -> std::result::Result<(), String> {
        use fastcdc::v2020::{AVERAGE_MAX, AVERAGE_MIN, MAXIMUM_MAX, MAXIMUM_MIN, MINIMUM_MAX, MINIMUM_MIN};
        let c = &self.chunking;
        if !(MINIMUM_MIN..=MINIMUM_MAX).contains(&c.min_size)
            || !(AVERAGE_MIN..=AVERAGE_MAX).contains(&c.avg_size)
            || !(MAXIMUM_MIN..=MAXIMUM_MAX).contains(&c.max_size)
            || c.min_size > c.avg_size
            || c.avg_size > c.max_size
        {
            return Err(format!("chunk sizes {}/{}/{} are out of range", c.min_size, c.avg_size, c.max_size));
        }
        if !(1..=MAX_PACKFILE_SIZE).contains(&self.packfile_max_size) {
            return Err(format!("packfile size {} is out of range", self.packfile_max_size));
        }
        self.check_slots()
    }

    /// Bounds what opening costs: how many slots, and what each asks of Argon2id.
    pub fn check_slots(&self) -> std::result::Result<(), String> {
        let inline = self.encryption.as_ref().map_or(0, |e| e.keys.len());
        if inline > MAX_KEY_SLOTS || self.key_count() > MAX_KEY_SLOTS_READ {
            return Err(format!("{} key slots, at most {MAX_KEY_SLOTS} are allowed", self.key_count()));
        }
        for (r, k) in self.slots() {
            let name = match r {
                SlotRef::Config(i) => format!("key slot {} of CONFIG", i + 1),
                SlotRef::Object(id) => format!("key slot keys/{}", hex::encode(id)),
            };
            if k.salt.len() < MIN_SALT {
                return Err(format!("{name} has a {}-byte salt", k.salt.len()));
            }
            let p = k.params;
            if p.m_cost_kib > MAX_KDF.m_cost_kib || p.t_cost > MAX_KDF.t_cost || p.p_cost > MAX_KDF.p_cost {
                return Err(format!(
                    "{name} asks Argon2id for {} KiB, {} passes, {} lanes: more than plakar allows",
                    p.m_cost_kib, p.t_cost, p.p_cost
                ));
            }
        }
        Ok(())
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

    /// A CONFIG as written by `create`, with the given chunk sizes, packfile size and
    /// encryption section.
    fn config(chunks: (u32, u32, u32), pack: u64, encryption: &str) -> Vec<u8> {
        let (min, avg, max) = chunks;
        let json = format!(
            r#"{{"repository_id":"00","created":"2026-01-01T00:00:00Z","chunking":{{"algorithm":"fastcdc-v2020","min_size":{min},"avg_size":{avg},"max_size":{max}}},"compression":null,"packfile_max_size":{pack},"hashing":"BLAKE3-keyed","encryption":{encryption},"plaintext_master":"{}"}}"#,
            "00".repeat(32)
        );
        let mut b = b"KLOSETRS\x01\0\0\0".to_vec();
        b.extend_from_slice(json.as_bytes());
        b
    }

    const CHUNKS: (u32, u32, u32) = (512 << 10, 1 << 20, 8 << 20);

    fn slot(m_cost_kib: u32) -> String {
        format!(
            r#"{{"kdf":"argon2id","params":{{"m_cost_kib":{m_cost_kib},"t_cost":1,"p_cost":1}},"salt":"{}","wrapped":"00"}}"#,
            "00".repeat(16)
        )
    }

    #[test]
    fn parameters_in_range_are_accepted() {
        let cfg = RepoConfig::decode(&config(CHUNKS, 16 << 20, "null"), "x").unwrap();
        assert_eq!(cfg.unlock(None).unwrap(), [0; 32]);
        let enc = format!(r#"{{"algorithm":"XChaCha20-Poly1305","keys":[{}]}}"#, slot(MAX_KDF.m_cost_kib));
        assert!(RepoConfig::decode(&config(CHUNKS, 1, &enc), "x").is_ok());
    }

    /// Chunk sizes go to FastCDC, which asserts on values out of its range: backing up into
    /// a store whose CONFIG says min_size 0 panicked.
    #[test]
    fn chunk_sizes_out_of_range_are_refused() {
        for chunks in [(0, 1 << 20, 8 << 20), (512 << 10, 1 << 20, u32::MAX), (8 << 10, 4 << 10, 16 << 10)] {
            let e = RepoConfig::decode(&config(chunks, 16 << 20, "null"), "x").unwrap_err();
            assert!(matches!(e, Error::Corrupt(_)), "{chunks:?}: {e}");
        }
    }

    /// Packfile offsets are 32-bit: a larger packfile would silently wrap them.
    #[test]
    fn packfile_size_out_of_range_is_refused() {
        for pack in [0, MAX_PACKFILE_SIZE + 1, u64::MAX] {
            assert!(matches!(RepoConfig::decode(&config(CHUNKS, pack, "null"), "x"), Err(Error::Corrupt(_))));
        }
    }

    /// A key slot asking Argon2id for 4 TiB made unlock allocate it; thousands of slots
    /// made it run for days.
    #[test]
    fn key_slot_costs_are_bounded() {
        let enc = format!(r#"{{"algorithm":"XChaCha20-Poly1305","keys":[{}]}}"#, slot(u32::MAX));
        assert!(matches!(RepoConfig::decode(&config(CHUNKS, 1 << 20, &enc), "x"), Err(Error::Corrupt(_))));
        let many = vec![slot(64); MAX_KEY_SLOTS + 1].join(",");
        let enc = format!(r#"{{"algorithm":"XChaCha20-Poly1305","keys":[{many}]}}"#);
        assert!(matches!(RepoConfig::decode(&config(CHUNKS, 1 << 20, &enc), "x"), Err(Error::Corrupt(_))));
    }
}
