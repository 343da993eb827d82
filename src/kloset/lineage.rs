//! Lineage: which states each state was built on, so that a state that went missing can
//! be told from a commit that never finished (docs/LOCKING.md, "Lineage").
//!
//! Every state names as parents the *heads* of the index its writer read: the states no
//! other state names. A maintenance's merged state names every state it replaced, and is
//! flagged `MERGE`: those are deleted on purpose. A repair's state names the lost states
//! it accounted for (it listed again what their packfiles held), flagged the same way. A state named by a non-merge state that
//! counts, that is not in the store, and whose lock was never taken over (its writer may
//! have deleted it on purpose: see `Repository::load`), was lost: that is damage. A snapshot in a packfile no state lists, in a store where no state was lost,
//! is what a commit that did not finish left behind (a full disk, a kill, a lock taken
//! over): its state never existed, nothing was reported committed, and maintenance deletes
//! it.

use crate::kloset::id::StateId;
use crate::kloset::state::{State, LEGACY, MERGE};
use std::collections::HashSet;

#[derive(Debug, Clone, Default)]
pub struct Lineage {
    /// The states no counted state names as a parent: the parents of the next state.
    pub heads: Vec<StateId>,
    /// (lost state, a counted state built on it).
    pub missing: Vec<(StateId, StateId)>,
    /// Every state a non-merge state names, but the lost ones. A maintenance's merged
    /// state names them (beside the states it read), so that a state left behind by a
    /// sweep cut short never names a state no merge accounts for.
    pub named: Vec<StateId>,
    /// Some counted state was written before lineage existed (it names no parents): a
    /// loss cannot be told from a commit that never finished in this store until a
    /// maintenance merges the old states.
    pub legacy: bool,
}

impl Lineage {
    /// `states`: the states that count, with their ids. `present`: every state id the
    /// store lists, counted or not. `may_miss`: whether a state of that id may be gone on
    /// purpose (a state of a lock that was taken over: one that does not count is deleted
    /// by maintenance, and older versions' writers deleted theirs).
    pub fn of(states: &[(StateId, &State)], present: &HashSet<StateId>, may_miss: impl Fn(&StateId) -> bool) -> Self {
        let named: HashSet<StateId> = states.iter().flat_map(|(_, s)| s.parents.iter().copied()).collect();
        let accounted: HashSet<StateId> =
            states.iter().filter(|(_, s)| s.flags & MERGE != 0).flat_map(|(_, s)| s.parents.iter().copied()).collect();
        let mut heads: Vec<StateId> = states.iter().map(|(id, _)| *id).filter(|id| !named.contains(id)).collect();
        heads.sort();
        let mut missing: Vec<(StateId, StateId)> = states
            .iter()
            .filter(|(_, s)| s.flags & MERGE == 0)
            .flat_map(|(id, s)| s.parents.iter().map(move |p| (*p, *id)))
            .filter(|(p, _)| !present.contains(p) && !accounted.contains(p) && !may_miss(p))
            .collect();
        missing.sort();
        missing.dedup_by_key(|(p, _)| *p);
        let lost: HashSet<StateId> = missing.iter().map(|(p, _)| *p).collect();
        let mut named: Vec<StateId> = states
            .iter()
            .filter(|(_, s)| s.flags & MERGE == 0)
            .flat_map(|(_, s)| s.parents.iter().copied())
            .filter(|p| !lost.contains(p))
            .collect();
        named.sort();
        named.dedup();
        let legacy = states.iter().any(|(_, s)| s.flags & LEGACY != 0);
        Lineage { heads, missing, named, legacy }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(parents: &[u8], flags: u32) -> State {
        State { parents: parents.iter().map(|b| StateId([*b; 32])).collect(), flags, ..Default::default() }
    }

    #[test]
    fn heads_and_losses() {
        let (a, b, c) = (st(&[], 0), st(&[1], 0), st(&[1, 9], 0));
        let states = [(StateId([1; 32]), &a), (StateId([2; 32]), &b), (StateId([3; 32]), &c)];
        let present: HashSet<StateId> = states.iter().map(|(id, _)| *id).collect();
        let l = Lineage::of(&states, &present, |_| false);
        assert_eq!(l.heads, vec![StateId([2; 32]), StateId([3; 32])]);
        assert_eq!(l.missing, vec![(StateId([9; 32]), StateId([3; 32]))]);
        // A state that may be gone on purpose is not a loss.
        assert!(Lineage::of(&states, &present, |id| id.0[0] == 9).missing.is_empty());
        // A merge's parents are deleted on purpose.
        let m = st(&[1, 2, 3, 4], MERGE);
        let l = Lineage::of(&[(StateId([5; 32]), &m)], &HashSet::from([StateId([5; 32])]), |_| false);
        assert!(l.missing.is_empty());
        assert_eq!(l.heads, vec![StateId([5; 32])]);
        // A repair accounts for a lost state: no longer reported.
        let r = st(&[9], MERGE);
        let mut with_repair = states.to_vec();
        with_repair.push((StateId([6; 32]), &r));
        assert!(Lineage::of(&with_repair, &present, |_| false).missing.is_empty());
    }
}
