//! File content, previews and whole directories as .zip or .tar.gz, all streamed from the
//! store as they are read. Content from a backup is never served as a page of this origin:
//! only images and plain text are typed as such, with `nosniff` and a sandbox policy, and
//! everything else is an attachment.

use super::browse::{abs_path, header, kind_name};
use super::error::{blocking, ApiError, ApiResult};
use super::stream;
use super::Shared;
use crate::kloset::importer::{join, FileKind};
use crate::kloset::reader::ChunkReader;
use crate::kloset::tree::Entry;
use crate::kloset::walk::walk;
use crate::kloset::Repository;
use axum::extract::{Path, Query, State};
use axum::http::{header as h, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
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

enum Format {
    Zip,
    TarGz,
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
    let (ext, mime) = match format {
        Format::Zip => ("zip", "application/zip"),
        Format::TarGz => ("tar.gz", "application/gzip"),
    };
    let file = format!("{base}.{ext}");
    let top = base.clone().into_bytes();
    let body = stream::body(move |w| match format {
        Format::Zip => write_zip(&repo, &e, &path, &top, w),
        Format::TarGz => write_tar_gz(&repo, &e, &path, &top, w),
    });
    let mut r = body.into_response();
    r.headers_mut().insert(h::CONTENT_TYPE, HeaderValue::from_static(mime));
    r.headers_mut().insert(h::CONTENT_DISPOSITION, disposition("attachment", &file));
    Ok(r)
}

/// Each entry under `path` with its name in the archive: `top/relative/path`.
fn entries(
    repo: &Repository,
    e: &Entry,
    path: &[u8],
    top: &[u8],
    f: &mut dyn FnMut(Vec<u8>, &Entry) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut failed = None;
    walk(repo, e, path, &mut |p, e| {
        let rel = p.strip_prefix(path).unwrap_or(p);
        let name = if rel.is_empty() { top.to_vec() } else { join(top, rel.strip_prefix(b"/").unwrap_or(rel)) };
        // A file the backup could not read in full has no content of its recorded size.
        if e.kind() == FileKind::File && e.error.is_some() {
            return Ok(true);
        }
        if let Err(err) = f(name, e) {
            failed = Some(err);
            return Err(crate::kloset::Error::Other("archive stopped".into()));
        }
        Ok(true)
    })
    .map_err(|err| failed.take().unwrap_or_else(|| err.into()))
}

fn write_tar_gz(
    repo: &Repository,
    e: &Entry,
    path: &[u8],
    top: &[u8],
    w: &mut stream::ChannelWriter,
) -> anyhow::Result<()> {
    let gz = flate2::write::GzEncoder::new(w, flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    tar.mode(tar::HeaderMode::Complete);
    let written = entries(repo, e, path, top, &mut |name, e| {
        let mut hd = tar::Header::new_gnu();
        hd.set_mode(e.info.mode & 0o7777);
        hd.set_mtime(e.info.mtime_ns.max(0) as u64 / 1_000_000_000);
        hd.set_uid(e.info.uid as u64);
        hd.set_gid(e.info.gid as u64);
        let name = std::ffi::OsStr::from_bytes(&name);
        match e.kind() {
            FileKind::Dir => {
                hd.set_entry_type(tar::EntryType::Directory);
                hd.set_size(0);
                tar.append_data(&mut hd, name, std::io::empty())?;
            }
            FileKind::File => {
                hd.set_entry_type(tar::EntryType::Regular);
                hd.set_size(e.info.size);
                tar.append_data(&mut hd, name, Exact::new(ChunkReader::new(repo, &e.chunks), e.info.size))?;
            }
            FileKind::Symlink => {
                hd.set_entry_type(tar::EntryType::Symlink);
                hd.set_size(0);
                tar.append_link(&mut hd, name, std::ffi::OsStr::from_bytes(&e.info.target))?;
            }
            FileKind::Special => {}
        }
        Ok(())
    });
    if let Err(e) = written {
        // Dropping the builder would write a valid-looking end of archive.
        std::mem::forget(tar);
        return Err(e);
    }
    tar.into_inner()?.finish()?.flush()?;
    Ok(())
}

fn zip_time(ns: i64) -> Option<zip::DateTime> {
    use chrono::{Datelike, Timelike};
    let t = chrono::DateTime::from_timestamp_nanos(ns).naive_utc();
    zip::DateTime::from_date_and_time(
        u16::try_from(t.year()).ok()?,
        t.month() as u8,
        t.day() as u8,
        t.hour() as u8,
        t.minute() as u8,
        t.second() as u8,
    )
    .ok()
}

fn write_zip(
    repo: &Repository,
    e: &Entry,
    path: &[u8],
    top: &[u8],
    w: &mut stream::ChannelWriter,
) -> anyhow::Result<()> {
    use zip::write::SimpleFileOptions;
    let mut z = zip::ZipWriter::new_stream(w);
    let written = entries(repo, e, path, top, &mut |name, e| {
        let name = String::from_utf8_lossy(&name).into_owned();
        let mut o = SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .unix_permissions(e.info.mode & 0o7777)
            // Deflate can grow incompressible data a little: switch to ZIP64 with a margin.
            .large_file(e.info.size >= 0xF000_0000);
        if let Some(t) = zip_time(e.info.mtime_ns) {
            o = o.last_modified_time(t);
        }
        match e.kind() {
            FileKind::Dir => z.add_directory(name, o)?,
            FileKind::File => {
                z.start_file(name, o)?;
                std::io::copy(&mut Exact::new(ChunkReader::new(repo, &e.chunks), e.info.size), &mut z)?;
            }
            FileKind::Symlink => z.add_symlink(name, String::from_utf8_lossy(&e.info.target), o)?,
            FileKind::Special => {}
        }
        Ok(())
    });
    if let Err(e) = written {
        // Dropping the writer would write a central directory: a valid-looking short zip.
        std::mem::forget(z);
        return Err(e);
    }
    z.finish()?.flush()?;
    Ok(())
}

/// Hands out exactly `size` bytes or fails: an archive entry whose header promised more
/// than the store gives back would silently shift every entry after it.
struct Exact<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Exact<R> {
    fn new(inner: R, size: u64) -> Self {
        Self { inner, left: size }
    }
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = buf.len().min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "file shorter in the store than recorded",
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}
