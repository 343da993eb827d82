//! File content, previews and whole directories as .zip or .tar.gz, all streamed from the
//! store as they are read. Content from a backup is never served as a page of this origin:
//! only images and plain text are typed as such, with `nosniff` and a sandbox policy, and
//! everything else is an attachment.

use super::browse::{abs_path, header, kind_name};
use super::error::{blocking, ApiError, ApiResult};
use super::stream;
use super::Shared;
use crate::kloset::importer::{join, FileKind};
use crate::kloset::ops::archive::{self as arch, Format};
use crate::kloset::reader::{ChunkReader, Exact};
use crate::kloset::tree::Entry;
use crate::kloset::Repository;
use axum::extract::{Path, Query, State};
use axum::http::{header as h, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use std::io::Read;
use std::sync::Arc;

const PREVIEW_BYTES: u64 = 256 << 10;

#[derive(serde::Deserialize)]
pub struct FileQuery {
    path: Option<String>,
    #[serde(default)]
    download: Option<String>,
    format: Option<String>,
}

fn extension(name: &str) -> String {
    name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default()
}

/// Image types a browser shows in an <img>; SVG is left out (it can carry scripts).
fn image_type(name: &str) -> Option<&'static str> {
    Some(match extension(name).as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "bmp" => "image/bmp",
        "ico" => "image/x-icon",
        "avif" => "image/avif",
        _ => return None,
    })
}

fn looks_like_text(b: &[u8]) -> bool {
    let head = &b[..b.len().min(8192)];
    if head.contains(&0) {
        return false;
    }
    match std::str::from_utf8(b) {
        Ok(_) => true,
        // Cut in the middle of a character at the end of the preview.
        Err(e) => e.error_len().is_none() && b.len() - e.valid_up_to() < 4,
    }
}

/// `attachment; filename="..."` with the UTF-8 form for names that are not plain ASCII.
fn disposition(kind: &str, name: &str) -> HeaderValue {
    let ascii: String =
        name.chars().map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' { c } else { '_' }).collect();
    let encoded: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    HeaderValue::from_str(&format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}"))
        .unwrap_or(HeaderValue::from_static("attachment"))
}

fn lookup(st: &Shared, id: &str, path: Option<&str>) -> ApiResult<(Arc<Repository>, String, Vec<u8>, Entry)> {
    let repo = st.repo();
    let hd = header(&repo, id)?;
    let p = abs_path(&hd, path);
    let e = repo.lookup(&hd, &p)?;
    Ok((repo, hd.id.short(), p, e))
}

pub async fn preview(
    State(st): State<Shared>,
    Path(id): Path<String>,
    Query(q): Query<FileQuery>,
) -> ApiResult<Json<Value>> {
    blocking(move || {
        let (repo, _, _, e) = lookup(&st, &id, q.path.as_deref())?;
        let name = e.name_lossy();
        let mut v = json!({"kind": kind_name(e.kind()), "size": e.info.size, "name": name});
        if e.kind() != FileKind::File {
            return Ok(Json(v));
        }
        if let Some(t) = image_type(&name) {
            v["preview"] = json!("image");
            v["mime"] = json!(t);
            return Ok(Json(v));
        }
        let mut b = Vec::new();
        ChunkReader::new(&repo, &e.chunks)
            .take(PREVIEW_BYTES)
            .read_to_end(&mut b)
            .map_err(|e| ApiError::internal(e.to_string()))?;
        if looks_like_text(&b) {
            v["preview"] = json!("text");
            v["text"] = json!(String::from_utf8_lossy(&b));
            v["truncated"] = json!(e.info.size > b.len() as u64);
        } else {
            v["preview"] = json!("binary");
        }
        Ok(Json(v))
    })
    .await
}

pub async fn content(
    State(st): State<Shared>,
    Path(id): Path<String>,
    Query(q): Query<FileQuery>,
) -> ApiResult<Response> {
    let (repo, _, _, e) = blocking({
        let st = st.clone();
        let path = q.path.clone();
        move || lookup(&st, &id, path.as_deref())
    })
    .await?;
    if e.kind() != FileKind::File {
        return Err(ApiError::bad(format!(
            "{} is not a regular file: download a directory as an archive",
            e.name_lossy()
        )));
    }
    let name = e.name_lossy();
    let inline = q.download.is_none();
    let (mime, inline) = match image_type(&name) {
        Some(t) => (t, inline),
        None if inline => ("text/plain; charset=utf-8", true),
        None => ("application/octet-stream", false),
    };
    let size = e.info.size;
    // A file the backup could not read in full is served as far as it goes, without a
    // length that would promise more.
    let complete = e.error.is_none();
    let body = stream::body(move |w| {
        let r = ChunkReader::new(&repo, &e.chunks);
        if complete {
            std::io::copy(&mut Exact::new(r, size), w)?;
        } else {
            std::io::copy(&mut { r }, w)?;
        }
        Ok(())
    });
    let mut r = body.into_response();
    let hs = r.headers_mut();
    hs.insert(h::CONTENT_TYPE, HeaderValue::from_static(mime));
    if complete {
        hs.insert(h::CONTENT_LENGTH, HeaderValue::from(size));
    }
    hs.insert(h::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    hs.insert(h::CONTENT_SECURITY_POLICY, HeaderValue::from_static("sandbox; default-src 'none'"));
    hs.insert(h::CONTENT_DISPOSITION, disposition(if inline { "inline" } else { "attachment" }, &name));
    Ok(r)
}

pub async fn archive(
    State(st): State<Shared>,
    Path(id): Path<String>,
    Query(q): Query<FileQuery>,
) -> ApiResult<Response> {
    let format = match q.format.as_deref().unwrap_or("zip") {
        "zip" => Format::Zip,
        "tar.gz" | "tgz" | "tarball" => Format::TarGz,
        f => return Err(ApiError::bad(format!("unknown archive format {f:?}: use zip or tar.gz"))),
    };
    let (repo, short, path, e) = blocking({
        let st = st.clone();
        let path = q.path.clone();
        move || lookup(&st, &id, path.as_deref())
    })
    .await?;
    let base = if path.iter().all(|&b| b == b'/') { format!("snapshot-{short}") } else { e.name_lossy() };
    let mime = match format {
        Format::Zip => "application/zip",
        _ => "application/gzip",
    };
    let file = format!("{base}.{}", format.extension());
    let top = base.clone().into_bytes();
    let body = stream::body(move |w| {
        // Each entry as `top/relative/path`. What the format cannot hold is left out: a
        // download has nowhere to list it.
        let name = |p: &[u8]| {
            let rel = p.strip_prefix(path.as_slice()).unwrap_or(p);
            let rel = rel.strip_prefix(b"/").unwrap_or(rel);
            Some(if rel.is_empty() { top.clone() } else { join(&top, rel) })
        };
        arch::archive(&repo, &e, &path, format, &name, w)?;
        Ok(())
    });
    let mut r = body.into_response();
    r.headers_mut().insert(h::CONTENT_TYPE, HeaderValue::from_static(mime));
    r.headers_mut().insert(h::CONTENT_DISPOSITION, disposition("attachment", &file));
    Ok(r)
}
