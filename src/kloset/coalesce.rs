//! Turns the blobs a restore needs into few ranged reads: grouped by packfile, sorted by
//! offset, and neighbours merged into one read when the gap between them is small and the
//! read stays bounded. A round trip to an object store costs tens of milliseconds; a few
//! hundred KiB of bytes nobody asked for cost far less. Reads come out in the order they
//! are first needed, so the file a writer waits for is fetched first.

use crate::kloset::id::{BlobId, PackId};

/// Bounds on the reads `coalesce` makes.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Blobs further apart than this are read separately.
    pub max_gap: u64,
    /// No read grows past this by merging (a blob larger than it is read alone).
    pub max_read: u64,
}

/// One blob to fetch: where it lives, and when it is first needed (smaller is sooner).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    pub id: BlobId,
    pub pack: PackId,
    pub offset: u64,
    pub length: u64,
    pub first_use: u64,
}

/// One ranged read of a packfile and the blobs it holds: (blob, offset in the read, length).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Read {
    pub pack: PackId,
    pub offset: u64,
    pub length: u64,
    pub blobs: Vec<(BlobId, u64, u64)>,
    first_use: u64,
}

/// Groups `needs` into reads within `lim`, soonest needed first.
pub fn coalesce(mut needs: Vec<Need>, lim: Limits) -> Vec<Read> {
    needs.sort_by_key(|n| (n.pack, n.offset, n.length));
    let mut out: Vec<Read> = Vec::new();
    for n in needs {
        if let Some(r) = out.last_mut().filter(|r| r.pack == n.pack) {
            let end = r.offset + r.length;
            let new_end = end.max(n.offset + n.length);
            if n.offset <= end.saturating_add(lim.max_gap) && new_end - r.offset <= lim.max_read {
                r.blobs.push((n.id, n.offset - r.offset, n.length));
                r.length = new_end - r.offset;
                r.first_use = r.first_use.min(n.first_use);
                continue;
            }
        }
        out.push(Read {
            pack: n.pack,
            offset: n.offset,
            length: n.length,
            blobs: vec![(n.id, 0, n.length)],
            first_use: n.first_use,
        });
    }
    out.sort_by_key(|r| r.first_use);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn need(pack: u8, offset: u64, length: u64, first_use: u64) -> Need {
        let mut id = [0u8; 32];
        id[..8].copy_from_slice(&(offset + 1000 * pack as u64).to_le_bytes());
        Need { id: BlobId(id), pack: PackId([pack; 32]), offset, length, first_use }
    }

    const LIM: Limits = Limits { max_gap: 100, max_read: 1000 };

    #[test]
    fn adjacent_and_near_blobs_of_a_packfile_are_one_read() {
        let r = coalesce(vec![need(1, 200, 50, 2), need(1, 0, 100, 0), need(1, 100, 50, 1)], LIM);
        assert_eq!(r.len(), 1);
        assert_eq!((r[0].offset, r[0].length), (0, 250));
        let at: Vec<(u64, u64)> = r[0].blobs.iter().map(|b| (b.1, b.2)).collect();
        assert_eq!(at, vec![(0, 100), (100, 50), (200, 50)]);
    }

    #[test]
    fn far_blobs_and_other_packfiles_are_separate_reads() {
        let r = coalesce(vec![need(1, 0, 10, 0), need(1, 111, 10, 1), need(2, 10, 10, 2)], LIM);
        assert_eq!(r.len(), 3);
    }

    #[test]
    fn a_read_stops_growing_at_its_bound() {
        let needs = (0..25).map(|i| need(1, i * 100, 100, i)).collect();
        let r = coalesce(needs, LIM);
        assert_eq!(r.iter().map(|r| r.length).collect::<Vec<_>>(), vec![1000, 1000, 500]);
        assert!(r.iter().all(|r| r.length <= LIM.max_read));
        // A blob larger than the bound is read alone, whole.
        let r = coalesce(vec![need(1, 0, 10, 0), need(1, 10, 5000, 1)], LIM);
        assert_eq!(r.iter().map(|r| r.length).collect::<Vec<_>>(), vec![10, 5000]);
    }

    #[test]
    fn reads_come_soonest_needed_first() {
        let r = coalesce(vec![need(1, 0, 10, 5), need(2, 0, 10, 1), need(3, 0, 10, 3)], LIM);
        assert_eq!(r.iter().map(|r| r.pack.0[0]).collect::<Vec<_>>(), vec![2, 3, 1]);
    }
}
