//! Browsing a snapshot's tree one directory page at a time. A directory is one tree blob;
//! the last few decoded ones are kept so that paging through a directory of 100,000
//! entries decodes it once, not once per page.

use super::error::{blocking, ApiError, ApiResult};
use super::Shared;
use crate::cli::format;
use crate::kloset::importer::{join, FileKind};
use crate::kloset::snapshot::Header;
use crate::kloset::tree::{Entry, Tree};
use crate::kloset::{BlobId, Repository};
use axum::extract::{Path, Query, State};
use axum::Json;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

const CACHED_TREES: usize = 8;
pub const MAX_PAGE: usize = 5000;

#[derive(Default)]
pub struct TreeCache(Mutex<VecDeque<(BlobId, Arc<Tree>)>>);

impl TreeCache {
    pub fn get(&self, repo: &Repository, id: &BlobId) -> crate::kloset::Result<Arc<Tree>> {
        if let Some((_, t)) = self.0.lock().expect("tree cache").iter().find(|(k, _)| k == id) {
            return Ok(t.clone());
        }
        let t = Arc::new(repo.tree(id)?);
        let mut q = self.0.lock().expect("tree cache");
        // Another request may have decoded the same tree meanwhile.
        q.retain(|(k, _)| k != id);
        q.push_front((*id, t.clone()));
        q.truncate(CACHED_TREES);
        Ok(t)
    }
}

pub fn kind_name(k: FileKind) -> &'static str {
    match k {
        FileKind::File => "file",
        FileKind::Dir => "dir",
        FileKind::Symlink => "symlink",
        FileKind::Special => "special",
    }
}

pub fn entry_json(path: &[u8], e: &Entry) -> Value {
    json!({
        "name": e.name_lossy(),
        "path": String::from_utf8_lossy(path),
        "kind": kind_name(e.kind()),
        "size": e.info.size,
        "mode": format::mode_string(e.info.mode),
        "mtime": format::rfc3339_ns(e.info.mtime_ns),
        "user": e.info.user.clone().unwrap_or_else(|| e.info.uid.to_string()),
        "group": e.info.group.clone().unwrap_or_else(|| e.info.gid.to_string()),
        "target": (!e.info.target.is_empty()).then(|| String::from_utf8_lossy(&e.info.target).into_owned()),
        "error": e.error,
    })
}

/// A snapshot by id or unique prefix; anything else is 404.
pub fn header(repo: &Repository, id: &str) -> ApiResult<Header> {
    let sid = repo.resolve(id).map_err(|e| ApiError::missing(e.to_string()))?;
    Ok(repo.header(&sid)?)
}

/// The absolute path asked for (default: the backed-up directory). Paths are looked up
/// component by component, so "..", or a name the snapshot does not hold, is 404.
pub fn abs_path(h: &Header, path: Option<&str>) -> Vec<u8> {
    match path.filter(|p| !p.is_empty()) {
        Some(p) => Repository::absolute(h, p),
        None => h.source.directory.as_bytes().to_vec(),
    }
}

#[derive(serde::Deserialize)]
pub struct TreeQuery {
    path: Option<String>,
    #[serde(default)]
    offset: usize,
    limit: Option<usize>,
    /// Only names containing this (case-insensitive).
    filter: Option<String>,
}

pub async fn tree(
    State(st): State<Shared>,
    Path(id): Path<String>,
    Query(q): Query<TreeQuery>,
) -> ApiResult<Json<Value>> {
    blocking(move || {
        let repo = st.repo();
        let h = header(&repo, &id)?;
        let path = abs_path(&h, q.path.as_deref());
        let e = repo.lookup(&h, &path)?;
        let mut out = json!({
            "snapshot": h.id.to_hex(), "root": h.source.directory,
            "entry": entry_json(&path, &e), "offset": q.offset,
        });
        if e.kind() == FileKind::Dir {
            let t = match e.subtree {
                Some(id) => st.trees.get(&repo, &id)?,
                None => Arc::new(Tree::default()),
            };
            let needle = q.filter.as_deref().filter(|f| !f.is_empty()).map(str::to_lowercase);
            let matches = |e: &&Entry| needle.as_ref().is_none_or(|n| e.name_lossy().to_lowercase().contains(n));
            let limit = q.limit.unwrap_or(500).clamp(1, MAX_PAGE);
            let total = t.entries.iter().filter(matches).count();
            let page: Vec<Value> = t
                .entries
                .iter()
                .filter(matches)
                .skip(q.offset)
                .take(limit)
                .map(|c| entry_json(&join(&path, &c.name), c))
                .collect();
            out["total"] = json!(total);
            out["children"] = json!(page);
        }
        Ok(Json(out))
    })
    .await
}
