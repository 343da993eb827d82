//! The JSON API's store-level calls: store info, the snapshot list, one snapshot, search
//! across snapshots and the diff of two.

use super::browse::{abs_path, entry_json, header, kind_name};
use super::error::{blocking, ApiError, ApiResult};
use super::Shared;
use crate::cli::cmd::ls::header_json;
use crate::cli::format;
use crate::kloset::importer::FileKind;
use crate::kloset::ops::diff::{diff as diff_op, Change};
use crate::kloset::ops::info::info as store_info;
use crate::kloset::reader::ChunkReader;
use crate::kloset::walk::walk;
use axum::extract::{Path, Query, State};
use axum::Json;
use serde_json::{json, Value};
use std::io::Read;

const MAX_RESULTS: usize = 1000;
/// Files larger than this are not diffed line by line.
const MAX_TEXT_DIFF: u64 = 4 << 20;
const DIFF_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

pub async fn info(State(st): State<Shared>) -> ApiResult<Json<Value>> {
    blocking(move || {
        let repo = st.repo();
        let i = store_info(&repo)?;
        let c = &repo.config;
        let headers = repo.headers()?;
        let timeline: Vec<Value> = headers
            .iter()
            .map(|h| json!({"id": h.id.to_hex(), "timestamp": format::rfc3339_ns(h.timestamp_ns),
                           "size": h.summary.size, "files": h.summary.files, "stored": h.summary.bytes_stored}))
            .collect();
        let ratio = if i.storage_size > 0 { i.logical_size as f64 / i.storage_size as f64 } else { 0.0 };
        Ok(Json(json!({
            "location": repo.location(),
            "repository_id": c.repository_id,
            "created": c.created,
            "encryption": c.encryption.as_ref().map(|e| e.algorithm.clone()),
            "compression": c.compression.as_ref().map(|z| format!("{} level {}", z.algorithm, z.level)),
            "chunking": format!("{} {}/{}/{}", c.chunking.algorithm, c.chunking.min_size, c.chunking.avg_size, c.chunking.max_size),
            "hashing": c.hashing,
            "snapshots": i.snapshots, "packfiles": i.packfiles, "blobs": i.blobs, "states": i.states,
            "storage_size": i.storage_size, "logical_size": i.logical_size, "dedup_ratio": ratio,
            "timeline": timeline,
        })))
    })
    .await
}

#[derive(serde::Deserialize)]
pub struct ListQuery {
    /// Text found in the id, name, host, origin, directory or a tag.
    q: Option<String>,
    tag: Option<String>,
}

pub async fn snapshots(State(st): State<Shared>, Query(q): Query<ListQuery>) -> ApiResult<Json<Value>> {
    blocking(move || {
        let repo = st.repo();
        let mut hs = repo.headers()?;
        hs.reverse();
        let text = q.q.as_deref().unwrap_or("").to_lowercase();
        let tag = q.tag.as_deref().filter(|t| !t.is_empty());
        let keep: Vec<Value> = hs
            .iter()
            .filter(|h| tag.is_none_or(|t| h.tags.iter().any(|x| x == t)))
            .filter(|h| {
                text.is_empty()
                    || [&h.id.to_hex(), &h.name, &h.hostname, &h.source.origin, &h.source.directory]
                        .iter()
                        .chain(h.tags.iter().collect::<Vec<_>>().iter())
                        .any(|f| f.to_lowercase().contains(&text))
            })
            .map(header_json)
            .collect();
        let mut tags: Vec<&String> = hs.iter().flat_map(|h| &h.tags).collect();
        tags.sort();
        tags.dedup();
        Ok(Json(json!({"snapshots": keep, "total": hs.len(), "tags": tags, "location": repo.location()})))
    })
    .await
}

pub async fn snapshot(State(st): State<Shared>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    blocking(move || {
        let repo = st.repo();
        let h = header(&repo, &id)?;
        let mut v = header_json(&h);
        v["command_line"] = json!(h.command_line);
        v["error_list"] = json!(h.errors);
        Ok(Json(v))
    })
    .await
}

#[derive(serde::Deserialize)]
pub struct SearchQuery {
    /// A glob (`*.conf`), or plain text matched anywhere in the name.
    q: String,
    snapshot: Option<String>,
    limit: Option<usize>,
}

pub async fn search(State(st): State<Shared>, Query(q): Query<SearchQuery>) -> ApiResult<Json<Value>> {
    blocking(move || {
        let repo = st.repo();
        let pat = q.q.trim();
        if pat.is_empty() {
            return Err(ApiError::bad("give something to search for"));
        }
        let glob = if pat.contains(['*', '?', '[', '{']) { pat.to_string() } else { format!("*{pat}*") };
        let m = globset::GlobBuilder::new(&glob)
            .case_insensitive(true)
            .literal_separator(false)
            .build()
            .map_err(|e| ApiError::bad(format!("invalid pattern {pat:?}: {e}")))?
            .compile_matcher();
        let limit = q.limit.unwrap_or(200).clamp(1, MAX_RESULTS);
        let headers = match q.snapshot.as_deref().filter(|s| !s.is_empty()) {
            Some(id) => vec![header(&repo, id)?],
            None => {
                let mut hs = repo.headers()?;
                hs.reverse();
                hs
            }
        };
        let mut hits = Vec::new();
        let mut truncated = false;
        'snapshots: for h in &headers {
            let root = repo.lookup(h, b"/")?;
            walk(&repo, &root, b"", &mut |path, e| {
                if truncated {
                    return Ok(false);
                }
                if path != b"/" && !path.is_empty() && m.is_match(e.name_lossy()) {
                    if hits.len() >= limit {
                        // One match more than asked for: the list is really cut short.
                        truncated = true;
                        return Ok(false);
                    }
                    let mut v = entry_json(path, e);
                    v["snapshot"] = json!(h.id.to_hex());
                    v["short_id"] = json!(h.id.short());
                    hits.push(v);
                }
                Ok(true)
            })?;
            if truncated {
                break 'snapshots;
            }
        }
        Ok(Json(json!({"results": hits, "truncated": truncated})))
    })
    .await
}

#[derive(serde::Deserialize)]
pub struct DiffQuery {
    a: String,
    b: String,
    path: Option<String>,
}

fn text_of(repo: &crate::kloset::Repository, e: &crate::kloset::tree::Entry) -> ApiResult<Option<String>> {
    if e.info.size > MAX_TEXT_DIFF {
        return Ok(None);
    }
    let mut b = Vec::new();
    ChunkReader::new(repo, &e.chunks)
        .take(MAX_TEXT_DIFF + 1)
        .read_to_end(&mut b)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    if b.len() as u64 > MAX_TEXT_DIFF {
        return Ok(None);
    }
    Ok(String::from_utf8(b).ok().filter(|s| !s.contains('\0')))
}

pub async fn diff(State(st): State<Shared>, Query(q): Query<DiffQuery>) -> ApiResult<Json<Value>> {
    blocking(move || {
        let repo = st.repo();
        let (ha, hb) = (header(&repo, &q.a)?, header(&repo, &q.b)?);
        let path = q.path.as_deref().filter(|p| !p.is_empty()).unwrap_or("/");
        let (pa, pb) = (abs_path(&ha, Some(path)), abs_path(&hb, Some(path)));
        let (ea, eb) = (repo.lookup(&ha, &pa)?, repo.lookup(&hb, &pb)?);
        let mut out = json!({"a": ha.id.to_hex(), "b": hb.id.to_hex(), "path": path,
                             "kind_a": kind_name(ea.kind()), "kind_b": kind_name(eb.kind())});
        if ea.kind() == FileKind::File && eb.kind() == FileKind::File {
            out["same"] = json!(ea.chunks == eb.chunks && ea.info.mode == eb.info.mode);
            if ea.chunks != eb.chunks {
                if let (Some(ta), Some(tb)) = (text_of(&repo, &ea)?, text_of(&repo, &eb)?) {
                    let la = format!("{}:{}", ha.id.short(), String::from_utf8_lossy(&pa));
                    let lb = format!("{}:{}", hb.id.short(), String::from_utf8_lossy(&pb));
                    // Bounded: past the deadline the diff is correct but less minimal.
                    let d = similar::TextDiff::configure().timeout(DIFF_TIMEOUT).diff_lines(&ta, &tb);
                    out["unified"] = json!(d.unified_diff().header(&la, &lb).to_string());
                }
            }
            return Ok(Json(out));
        }
        let mut changes = Vec::new();
        diff_op(&repo, &ea, &eb, &pa, &mut changes)?;
        let truncated = changes.len() > MAX_RESULTS * 10;
        let list: Vec<Value> = changes
            .iter()
            .take(MAX_RESULTS * 10)
            .map(|c| match c {
                Change::Added(p) => json!({"op": "added", "path": p}),
                Change::Removed(p) => json!({"op": "removed", "path": p}),
                Change::Modified(p) => json!({"op": "modified", "path": p}),
            })
            .collect();
        out["changes"] = json!(list);
        out["truncated"] = json!(truncated);
        Ok(Json(out))
    })
    .await
}
