//! Inode numbers for the FUSE view. The kernel holds a count of lookups per inode and
//! gives them back with `forget`; a node is dropped when its count reaches zero, so memory
//! follows what the kernel keeps cached, not everything ever listed. The same (parent,
//! name) gets the same number while it is alive.

use super::view::Node;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

pub const ROOT: u64 = 1;

struct Slot {
    node: Node,
    key: (u64, Vec<u8>),
    lookups: u64,
}

pub struct Inodes {
    inner: Mutex<Table>,
}

struct Table {
    slots: HashMap<u64, Slot>,
    by_name: HashMap<(u64, Vec<u8>), u64>,
    next: u64,
}

impl Inodes {
    pub fn new() -> Self {
        let mut slots = HashMap::new();
        // The root is never forgotten.
        slots.insert(ROOT, Slot { node: Node::Top, key: (0, Vec::new()), lookups: 1 });
        Self { inner: Mutex::new(Table { slots, by_name: HashMap::new(), next: ROOT + 1 }) }
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, ino: u64) -> Option<Node> {
        self.lock().slots.get(&ino).map(|s| s.node.clone())
    }

    /// The inode of `parent`'s child `name`, counting one lookup; `node` is kept if the
    /// child has no inode yet.
    pub fn lookup(&self, parent: u64, name: &[u8], node: Node) -> (u64, Node) {
        let mut t = self.lock();
        let key = (parent, name.to_vec());
        if let Some(&ino) = t.by_name.get(&key) {
            if let Some(s) = t.slots.get_mut(&ino) {
                s.lookups += 1;
                return (ino, s.node.clone());
            }
        }
        let ino = t.next;
        t.next += 1;
        t.by_name.insert(key.clone(), ino);
        t.slots.insert(ino, Slot { node: node.clone(), key, lookups: 1 });
        (ino, node)
    }

    /// The inode a directory listing names for a child: its own if it has one, else a
    /// number no inode uses (the kernel looks the name up before using it).
    pub fn peek(&self, parent: u64, name: &[u8]) -> u64 {
        let mut t = self.lock();
        if let Some(&ino) = t.by_name.get(&(parent, name.to_vec())) {
            return ino;
        }
        let ino = t.next;
        t.next += 1;
        ino
    }

    pub fn forget(&self, ino: u64, n: u64) {
        if ino == ROOT {
            return;
        }
        let mut t = self.lock();
        let Some(s) = t.slots.get_mut(&ino) else { return };
        s.lookups = s.lookups.saturating_sub(n);
        if s.lookups == 0 {
            if let Some(s) = t.slots.remove(&ino) {
                t.by_name.remove(&s.key);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.lock().slots.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_keeps_its_inode_until_forgotten() {
        let i = Inodes::new();
        let (a, _) = i.lookup(ROOT, b"x", Node::ByDate);
        let (b, _) = i.lookup(ROOT, b"x", Node::ByDate);
        assert_eq!(a, b);
        assert_eq!(i.peek(ROOT, b"x"), a);
        i.forget(a, 1);
        assert!(i.get(a).is_some(), "one lookup is still held");
        i.forget(a, 1);
        assert!(i.get(a).is_none());
        assert_eq!(i.len(), 1, "only the root is left");
        let (c, _) = i.lookup(ROOT, b"x", Node::ByDate);
        assert_ne!(c, a, "a forgotten number is not reused");
    }
}
