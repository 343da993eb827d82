//! Adding or changing a passphrase: a new key slot wrapping the same master key. It is
//! written as an object of its own (`keys/<id>`), never into CONFIG: two runs that each
//! add a slot cannot drop each other's, whatever the timing (a run stopped for an hour
//! between reading CONFIG and writing it used to put back the CONFIG it had read, taking
//! away a passphrase another run had just reported added). A change then removes the slots
//! the current passphrase opened: objects are deleted; CONFIG only ever loses slots, so a
//! stale rewrite of it can bring back a removed passphrase, never remove a new one.
//! docs/LOCKING.md ("passwd") has the reasoning.

use crate::kloset::config::RepoConfig;
use crate::kloset::config::{KeySlot, SlotRef, MAX_KEY_SLOTS};
use crate::kloset::crypto;
use crate::kloset::error::{Error, Result};
use crate::kloset::lock::Lease;
use crate::kloset::repo;
use crate::kloset::store::{Resource, Store, StoreErrorKind};

/// A key change worked out (the costly Argon2id part), not yet written.
pub struct KeyChange {
    slot: KeySlot,
    /// The slots the current passphrase opens, removed after the new one is written
    /// (empty when adding).
    drop: Vec<(SlotRef, KeySlot)>,
}

/// Works out a new slot for `new`; `keep_old`: add it, otherwise replace the slots
/// `current` opens.
pub fn prepare(cfg: &RepoConfig, current: &[u8], new: &[u8], keep_old: bool) -> Result<KeyChange> {
    if !cfg.encrypted() {
        return Err(Error::Other("this store is not encrypted: it has no passphrase to change".into()));
    }
    if new.is_empty() {
        return Err(Error::Auth("can't encrypt the repository with an empty passphrase; nothing was changed".into()));
    }
    let opened = cfg.slots_opened_by(current);
    if opened.is_empty() {
        // The same message as any other wrong passphrase.
        cfg.unlock(Some(current))?;
    }
    // A change removes at least the slot it replaces; for a moment the store holds one more.
    if keep_old && cfg.key_count() >= MAX_KEY_SLOTS {
        return Err(Error::Other(format!(
            "the store already opens with {MAX_KEY_SLOTS} passphrases, the most it can hold; change one instead"
        )));
    }
    let slot = cfg.new_slot(current, new)?;
    let drop = if keep_old {
        Vec::new()
    } else {
        let all: Vec<(SlotRef, KeySlot)> = cfg.slots().map(|(r, s)| (r, s.clone())).collect();
        all.into_iter().filter(|(r, _)| opened.contains(r)).collect()
    };
    Ok(KeyChange { slot, drop })
}

/// After the new slot is written, a lost lock no longer means nothing happened.
fn still_ours(lease: Option<&Lease>, replacing: bool) -> Result<()> {
    match lease.map_or(Ok(()), |l| l.check()) {
        Err(e) if e.kind() == crate::kloset::ErrorKind::Locked => Err(Error::Locked(if replacing {
            "this run's lock was taken over while it changed the passphrase (it was stopped for longer than the \
             lease): the new passphrase was written and opens the store, but the old one, or one another passwd \
             removed meanwhile, may still open it; run passwd again (or passwd from that other passphrase) to \
             remove it"
                .into()
        } else {
            "this run's lock was taken over while it added the passphrase (it was stopped for longer than the \
             lease); the new passphrase was written and opens the store"
                .into()
        })),
        r => r,
    }
}

/// Writes the new slot, then removes the replaced ones; returns how many passphrases open
/// the store now. Under `lease`, checked before and after (exit 75 when taken over: the
/// new slot is written all the same, and opens the store).
pub fn commit(store: &dyn Store, change: &KeyChange, lease: Option<&Lease>) -> Result<usize> {
    if let Some(l) = lease {
        l.check()?; // nothing written yet
    }
    let id: [u8; 32] = crypto::random_bytes();
    store.put(Resource::Key, &id, &change.slot.encode())?;
    let mut from_config = Vec::new();
    for (r, slot) in &change.drop {
        match r {
            SlotRef::Object(oid) => match store.delete(Resource::Key, oid) {
                Err(e) if e.kind != StoreErrorKind::NotFound => return Err(Error::Store(e)),
                _ => {}
            },
            SlotRef::Config(_) => from_config.push(slot),
        }
    }
    if !from_config.is_empty() {
        // CONFIG as it is now, not as it was read: it only ever loses slots.
        let mut fresh = repo::read_config(store)?;
        if let Some(enc) = fresh.encryption.as_mut() {
            let before = enc.keys.len();
            enc.keys.retain(|k| !from_config.contains(&k));
            if enc.keys.len() != before {
                still_ours(lease, true)?;
                store.replace_config(&fresh.encode())?;
            }
        }
    }
    still_ours(lease, !change.drop.is_empty())?;
    Ok(repo::read_config(store)?.key_count())
}
