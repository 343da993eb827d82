//! Keys and sealing. A random master key is the root of everything: blob ids are BLAKE3
//! keyed with a key derived from it, and objects are sealed with XChaCha20-Poly1305 under
//! another derived key. The associated data binds each sealed object to what it claims to
//! be (its type and id), so one cannot be swapped for another without detection.
//!
//! A plaintext store keeps keyed ids (from a key stored in CONFIG) and replaces the AEAD by
//! a keyed BLAKE3 tag: no secrecy, but every read still detects corruption.

use crate::kloset::id::BlobId;
use chacha20poly1305::aead::{Aead, AeadInPlace, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

/// Bytes a sealed object adds to its plaintext.
pub const SEAL_OVERHEAD: usize = NONCE_LEN + TAG_LEN;

pub struct Keys {
    mac_key: [u8; 32],
    cipher: Option<XChaCha20Poly1305>,
    tag_key: [u8; 32],
}

#[derive(Debug, thiserror::Error)]
#[error("authentication failed")]
pub struct SealError;

impl Keys {
    /// `encrypted` false gives a plaintext store: same ids, no secrecy.
    pub fn new(master: &[u8; 32], encrypted: bool) -> Self {
        let mac_key = blake3::derive_key("plakar-rs 2026-11 blob id", master);
        let enc_key = blake3::derive_key("plakar-rs 2026-11 seal", master);
        let tag_key = blake3::derive_key("plakar-rs 2026-11 plaintext tag", master);
        let cipher = encrypted.then(|| XChaCha20Poly1305::new((&enc_key).into()));
        Self { mac_key, cipher, tag_key }
    }

    /// Keys that seal directly with `key` (used to wrap the master key in a key slot).
    pub(crate) fn new_raw(key: &[u8; 32]) -> Self {
        Self { mac_key: [0; 32], cipher: Some(XChaCha20Poly1305::new(key.into())), tag_key: [0; 32] }
    }

    pub fn encrypted(&self) -> bool {
        self.cipher.is_some()
    }

    pub fn mac(&self, data: &[u8]) -> BlobId {
        BlobId(*blake3::keyed_hash(&self.mac_key, data).as_bytes())
    }

    /// Seals `plain`, appending the result to `out` (encrypted where it lands: no copy of
    /// the plaintext besides the one in `out`).
    pub fn seal_into(&self, ad: &[u8], plain: &[u8], out: &mut Vec<u8>) {
        let start = out.len();
        out.reserve(plain.len() + SEAL_OVERHEAD);
        out.extend_from_slice(&[0u8; NONCE_LEN]);
        out.extend_from_slice(plain);
        self.seal_tail(ad, out, start);
    }

    /// Seals a buffer in place: `buf` is NONCE_LEN bytes of room, then the plaintext.
    /// Sealing a large object this way (a state) holds one copy of it, not three.
    pub fn seal_owned(&self, ad: &[u8], mut buf: Vec<u8>) -> Vec<u8> {
        assert!(buf.len() >= NONCE_LEN, "room for the nonce");
        self.seal_tail(ad, &mut buf, 0);
        buf
    }

    /// Room a plaintext built for `seal_owned` starts with.
    pub fn seal_room() -> Vec<u8> {
        vec![0u8; NONCE_LEN]
    }

    /// `buf[start..]` is room for a nonce, then the plaintext: seals it there and appends
    /// the tag.
    fn seal_tail(&self, ad: &[u8], buf: &mut Vec<u8>, start: usize) {
        let tag = match &self.cipher {
            Some(c) => {
                let mut nonce = [0u8; NONCE_LEN];
                crate::kloset::rng::fill(&mut nonce);
                buf[start..start + NONCE_LEN].copy_from_slice(&nonce);
                let tag = c
                    .encrypt_in_place_detached(XNonce::from_slice(&nonce), ad, &mut buf[start + NONCE_LEN..])
                    .expect("XChaCha20-Poly1305 encryption cannot fail for in-memory buffers");
                let mut t = [0u8; TAG_LEN];
                t.copy_from_slice(&tag);
                t
            }
            None => self.plain_tag(ad, &buf[start + NONCE_LEN..]),
        };
        buf.extend_from_slice(&tag);
    }

    pub fn seal(&self, ad: &[u8], plain: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(plain.len() + SEAL_OVERHEAD);
        self.seal_into(ad, plain, &mut out);
        out
    }

    pub fn open(&self, ad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        if sealed.len() < SEAL_OVERHEAD {
            return Err(SealError);
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        match &self.cipher {
            Some(c) => c.decrypt(XNonce::from_slice(nonce), Payload { msg: body, aad: ad }).map_err(|_| SealError),
            None => {
                let (plain, tag) = body.split_at(body.len() - TAG_LEN);
                if constant_eq(&self.plain_tag(ad, plain), tag) {
                    Ok(plain.to_vec())
                } else {
                    Err(SealError)
                }
            }
        }
    }

    fn plain_tag(&self, ad: &[u8], plain: &[u8]) -> [u8; TAG_LEN] {
        let mut h = blake3::Hasher::new_keyed(&self.tag_key);
        h.update(&(ad.len() as u64).to_le_bytes());
        h.update(ad);
        h.update(plain);
        let mut t = [0u8; TAG_LEN];
        t.copy_from_slice(&h.finalize().as_bytes()[..TAG_LEN]);
        t
    }
}

fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Argon2id parameters, stored per key slot in CONFIG.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct KdfParams {
    pub m_cost_kib: u32,
    pub t_cost: u32,
    pub p_cost: u32,
}

impl Default for KdfParams {
    fn default() -> Self {
        // 64 MiB, 3 passes: about 0.15 s on one core, well above OWASP's minimum for Argon2id.
        Self { m_cost_kib: 64 * 1024, t_cost: 3, p_cost: 1 }
    }
}

pub fn derive_kek(passphrase: &[u8], salt: &[u8], p: KdfParams) -> Result<[u8; 32], String> {
    let params = argon2::Params::new(p.m_cost_kib, p.t_cost, p.p_cost, Some(32)).map_err(|e| e.to_string())?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut out = [0u8; 32];
    argon.hash_password_into(passphrase, salt, &mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    crate::kloset::rng::fill(&mut b);
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_roundtrip_and_binding() {
        for enc in [true, false] {
            let k = Keys::new(&[7u8; 32], enc);
            let s = k.seal(b"ad1", b"hello");
            assert_eq!(k.open(b"ad1", &s).unwrap(), b"hello");
            assert!(k.open(b"ad2", &s).is_err(), "other associated data must fail");
            let mut bad = s.clone();
            let n = bad.len();
            bad[n - 20] ^= 1;
            assert!(k.open(b"ad1", &bad).is_err(), "flipped byte must fail");
        }
    }

    #[test]
    fn ids_are_keyed() {
        let a = Keys::new(&[1u8; 32], true);
        let b = Keys::new(&[2u8; 32], true);
        assert_ne!(a.mac(b"x"), b.mac(b"x"));
        assert_eq!(a.mac(b"x"), a.mac(b"x"));
    }
}
