//! Snapshot selection shared by ls, rm, check, locate and restore: time bounds, tags, name.

use crate::kloset::snapshot::Header;

#[derive(Debug, Default, Clone)]
pub struct Filter {
    /// Only snapshots taken before this time (ns since the epoch).
    pub before: Option<i64>,
    /// Only snapshots taken at or after this time.
    pub since: Option<i64>,
    /// Tags that must be present; a leading `!` means must be absent.
    pub tags: Vec<String>,
    pub name: Option<String>,
    /// Keep only the newest match.
    pub latest: bool,
}

impl Filter {
    pub fn is_empty(&self) -> bool {
        self.before.is_none() && self.since.is_none() && self.tags.is_empty() && self.name.is_none() && !self.latest
    }

    pub fn matches(&self, h: &Header) -> bool {
        self.before.is_none_or(|b| h.timestamp_ns < b)
            && self.since.is_none_or(|s| h.timestamp_ns >= s)
            && self.name.as_ref().is_none_or(|n| &h.name == n)
            && self.tags.iter().all(|t| match t.strip_prefix('!') {
                Some(neg) => !h.tags.iter().any(|x| x == neg),
                None => h.tags.iter().any(|x| x == t),
            })
    }

    /// Applies the filter to headers sorted oldest first.
    pub fn apply(&self, hs: Vec<Header>) -> Vec<Header> {
        let mut out: Vec<Header> = hs.into_iter().filter(|h| self.matches(h)).collect();
        if self.latest && out.len() > 1 {
            out.drain(..out.len() - 1);
        }
        out
    }
}
