//! Archive: an entry of a snapshot and everything below it as one tar, tar.gz or zip stream,
//! in walk order (name order, parents before children). Each file is read from the store
//! chunk by chunk as it is written, so memory stays flat whatever the size of the files,
//! and nothing needs to seek: zip entries carry data descriptors (sizes after the data),
//! so the output can be a pipe. Used by `plakar archive` and the web UI's downloads.
//!
//! What a format cannot hold is never dropped silently: each such entry is in the report's
//! `warnings` with the reason (a file the backup could not read in full, a device node in a
//! zip, a name or extended attributes a zip cannot carry). Tar keeps extended attributes as
//! PAX `SCHILY.xattr.*` records, as GNU tar and bsdtar do. A failure to read the store or to write the output stops the
//! archive without writing its end, so a truncated archive never looks complete.

use crate::kloset::error::{Error, Result};
use crate::kloset::importer::{FileInfo, FileKind};
use crate::kloset::reader::{engine_error, ChunkReader, Exact};
use crate::kloset::repo::Repository;
use crate::kloset::tree::Entry;
use crate::kloset::walk::walk;
use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Tar,
    TarGz,
    Zip,
}

impl Format {
    /// The names `parse` takes, as Plakar spells them.
    pub const NAMES: &'static str = "tar, tarball, zip";

    /// Plakar's `tar`, `tarball` and `zip`; `tar.gz` and `tgz` too.
    pub fn parse(s: &str) -> Option<Format> {
        match s.to_ascii_lowercase().as_str() {
            "tar" => Some(Format::Tar),
            "tarball" | "tar.gz" | "tgz" => Some(Format::TarGz),
            "zip" => Some(Format::Zip),
            _ => None,
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Format::Tar => "tar",
            Format::TarGz => "tar.gz",
            Format::Zip => "zip",
        }
    }
}

/// What went into an archive, and what did not (path in the snapshot, why).
#[derive(Debug, Default)]
pub struct ArchiveReport {
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub bytes: u64,
    pub warnings: Vec<(Vec<u8>, String)>,
}

/// Names an entry in the archive from its absolute path in the snapshot; None leaves the
/// entry out (its children are still written). A directory named `.` is the directory
/// the archive is extracted into: tar keeps it (and its mode), zip has no such entry.
pub type Naming<'a> = &'a dyn Fn(&[u8]) -> Option<Vec<u8>>;

/// Writes `entry`, found at `path` in a snapshot, and everything below it, to `out`.
pub fn archive(
    repo: &Repository,
    entry: &Entry,
    path: &[u8],
    format: Format,
    name: Naming,
    out: &mut dyn Write,
) -> Result<ArchiveReport> {
    match format {
        Format::Tar => write_tar(repo, entry, path, name, out),
        Format::TarGz => {
            let mut gz = flate2::write::GzEncoder::new(out, flate2::Compression::default());
            match write_tar(repo, entry, path, name, &mut gz) {
                Ok(report) => {
                    gz.try_finish().map_err(|e| from_io(e, "cannot write the archive"))?;
                    Ok(report)
                }
                Err(e) => {
                    // Dropping the encoder would end the gzip stream as if it were whole.
                    std::mem::forget(gz);
                    Err(e)
                }
            }
        }
        Format::Zip => write_zip(repo, entry, path, name, out),
    }
}

/// An I/O error of the archive: the store's when it failed under a reader, else the
/// output's (a full disk, a closed pipe).
fn from_io(e: io::Error, context: &str) -> Error {
    engine_error(e, context)
}

/// Writes one entry: (path in the snapshot, name in the archive, entry, report).
type WriteEntry<'a> = dyn FnMut(&[u8], Vec<u8>, &Entry, &mut ArchiveReport) -> Result<()> + 'a;

/// Visits each entry to write with its archive name; entries that cannot be written as
/// they are go to the report's warnings instead.
fn each(
    repo: &Repository,
    entry: &Entry,
    path: &[u8],
    name: Naming,
    report: &mut ArchiveReport,
    f: &mut WriteEntry,
) -> Result<()> {
    walk(repo, entry, path, &mut |p, e| {
        let Some(n) = name(p) else { return Ok(true) };
        if let Some(why) = &e.error {
            let what = if e.kind() == FileKind::Dir { "directory not listed in full" } else { "file not read in full" };
            report.warnings.push((p.to_vec(), format!("{what} at backup time, left out: {why}")));
            if e.kind() != FileKind::Dir {
                return Ok(true);
            }
        }
        f(p, n, e, report)?;
        Ok(true)
    })
}

/// The file type bits of an entry, from its kind (a source may record permissions only).
fn type_bits(info: &FileInfo) -> u32 {
    match info.kind() {
        FileKind::Dir => 0o040000,
        FileKind::Symlink => 0o120000,
        FileKind::File => 0o100000,
        FileKind::Special => info.mode & 0o170000,
    }
}

fn mtime_secs(info: &FileInfo) -> u64 {
    u64::try_from(info.mtime_ns.div_euclid(1_000_000_000)).unwrap_or(0)
}

fn write_tar(
    repo: &Repository,
    entry: &Entry,
    path: &[u8],
    name: Naming,
    out: &mut dyn Write,
) -> Result<ArchiveReport> {
    let mut tar = tar::Builder::new(out);
    let mut report = ArchiveReport::default();
    // (dev, ino) of files with several links -> the first one's name in the archive.
    let mut links: HashMap<(u64, u64), Vec<u8>> = HashMap::new();
    let written = each(repo, entry, path, name, &mut report, &mut |p, n, e, report| {
        let mut hd = tar::Header::new_gnu();
        hd.set_mode(e.info.mode & 0o7777);
        hd.set_mtime(mtime_secs(&e.info));
        hd.set_uid(e.info.uid as u64);
        hd.set_gid(e.info.gid as u64);
        // Names let tar map owners on the machine that extracts (GNU tar's default as root).
        if let Some(u) = e.info.user.as_deref().filter(|u| u.len() < 32) {
            let _ = hd.set_username(u);
        }
        if let Some(g) = e.info.group.as_deref().filter(|g| g.len() < 32) {
            let _ = hd.set_groupname(g);
        }
        hd.set_size(0);
        let n_os = OsStr::from_bytes(&n);
        let io = |e: io::Error| from_io(e, "cannot write the archive");
        // Extended attributes as GNU tar and bsdtar write them (`--xattrs`): PAX records
        // before the entry. A name that is not UTF-8 cannot be a PAX key.
        if !e.info.xattrs.is_empty() && e.kind() != FileKind::Special {
            let mut recs = Vec::new();
            for x in &e.info.xattrs {
                match std::str::from_utf8(&x.0) {
                    Ok(k) => recs.push((format!("SCHILY.xattr.{k}"), x.1.as_slice())),
                    Err(_) => report.warnings.push((
                        p.to_vec(),
                        format!("extended attribute {:?} left out: its name is not UTF-8", x.name_lossy()),
                    )),
                }
            }
            tar.append_pax_extensions(recs.iter().map(|(k, v)| (k.as_str(), *v))).map_err(io)?;
        }
        match e.kind() {
            FileKind::Dir => {
                hd.set_entry_type(tar::EntryType::Directory);
                tar.append_data(&mut hd, n_os, io::empty()).map_err(io)?;
                report.dirs += 1;
            }
            FileKind::File => {
                let key = (e.info.dev, e.info.ino);
                if e.info.nlink > 1 && e.info.ino != 0 {
                    if let Some(first) = links.get(&key) {
                        hd.set_entry_type(tar::EntryType::Link);
                        tar.append_link(&mut hd, n_os, OsStr::from_bytes(first)).map_err(io)?;
                        report.files += 1;
                        return Ok(());
                    }
                }
                hd.set_entry_type(tar::EntryType::Regular);
                hd.set_size(e.info.size);
                let data = Exact::new(ChunkReader::new(repo, &e.chunks), e.info.size);
                tar.append_data(&mut hd, n_os, data).map_err(io)?;
                if e.info.nlink > 1 && e.info.ino != 0 {
                    links.insert(key, n);
                }
                report.files += 1;
                report.bytes += e.info.size;
            }
            FileKind::Symlink => {
                hd.set_entry_type(tar::EntryType::Symlink);
                tar.append_link(&mut hd, n_os, OsStr::from_bytes(&e.info.target)).map_err(io)?;
                report.symlinks += 1;
            }
            FileKind::Special if e.info.mode & 0o170000 == 0o010000 => {
                hd.set_entry_type(tar::EntryType::Fifo);
                tar.append_data(&mut hd, n_os, io::empty()).map_err(io)?;
            }
            FileKind::Special if matches!(e.info.mode & 0o170000, 0o020000 | 0o060000) && e.info.rdev.is_some() => {
                let rdev = e.info.rdev.unwrap_or_default() as rustix::fs::Dev;
                let char = e.info.mode & 0o170000 == 0o020000;
                hd.set_entry_type(if char { tar::EntryType::Char } else { tar::EntryType::Block });
                hd.set_device_major(rustix::fs::major(rdev)).map_err(io)?;
                hd.set_device_minor(rustix::fs::minor(rdev)).map_err(io)?;
                tar.append_data(&mut hd, n_os, io::empty()).map_err(io)?;
            }
            FileKind::Special => {
                report.warnings.push((p.to_vec(), special_reason(&e.info).into()));
            }
        }
        Ok(())
    });
    if let Err(e) = written {
        // Dropping the builder would write a valid-looking end of archive.
        std::mem::forget(tar);
        return Err(e);
    }
    tar.into_inner().map_err(|e| from_io(e, "cannot write the archive"))?;
    Ok(report)
}

fn special_reason(info: &FileInfo) -> &'static str {
    match info.mode & 0o170000 {
        0o020000 | 0o060000 if info.rdev.is_none() => {
            "device node, left out: the snapshot does not hold its device number (taken before they were recorded)"
        }
        0o020000 | 0o060000 => "device node, left out: a zip cannot hold one",
        0o140000 => "socket, left out: an archive cannot hold one",
        0o010000 => "named pipe, left out: a zip cannot hold one",
        _ => "special file, left out: an archive cannot hold it",
    }
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

fn zip_error(e: zip::result::ZipError) -> Error {
    match e {
        zip::result::ZipError::Io(io) => from_io(io, "cannot write the archive"),
        other => Error::Other(format!("cannot write the archive: {other}")),
    }
}

/// A zip name is a string: one that is not UTF-8 is stored with replacement characters,
/// and said so.
fn zip_name(p: &[u8], n: &[u8], report: &mut ArchiveReport) -> String {
    let s = String::from_utf8_lossy(n).into_owned();
    if s.as_bytes() != n {
        report.warnings.push((p.to_vec(), format!("name is not UTF-8, which a zip cannot hold: stored as {s:?}")));
    }
    s
}

fn write_zip(
    repo: &Repository,
    entry: &Entry,
    path: &[u8],
    name: Naming,
    out: &mut dyn Write,
) -> Result<ArchiveReport> {
    let mut z = zip::ZipWriter::new_stream(out);
    let mut report = ArchiveReport::default();
    let written = each(repo, entry, path, name, &mut report, &mut |p, n, e, report| {
        let is_dot = matches!(n.as_slice(), b"." | b"./");
        if e.kind() == FileKind::Dir && is_dot {
            return Ok(());
        }
        let name = zip_name(p, &n, report);
        if !e.info.xattrs.is_empty() && e.kind() != FileKind::Special {
            report.warnings.push((p.to_vec(), "extended attributes left out: a zip cannot hold them".into()));
        }
        let mut o = zip::write::FullFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .external_attributes((type_bits(&e.info) | (e.info.mode & 0o7777)) << 16)
            // Deflate can grow incompressible data a little: switch to ZIP64 with a margin.
            .large_file(e.info.size >= 0xF000_0000);
        if let Some(t) = zip_time(e.info.mtime_ns) {
            o = o.last_modified_time(t);
        }
        // The exact second, as Info-ZIP's extended timestamp (DOS times count by two).
        if let Ok(secs) = u32::try_from(mtime_secs(&e.info)) {
            o = o.with_extended_timestamp(Some(secs), None, None).map_err(zip_error)?;
        }
        match e.kind() {
            FileKind::Dir => {
                z.add_directory(name, o).map_err(zip_error)?;
                report.dirs += 1;
            }
            FileKind::File => {
                z.start_file(name, o).map_err(zip_error)?;
                let mut data = Exact::new(ChunkReader::new(repo, &e.chunks), e.info.size);
                io::copy(&mut data, &mut z).map_err(|e| from_io(e, "cannot write the archive"))?;
                report.files += 1;
                report.bytes += e.info.size;
            }
            FileKind::Symlink => {
                let target = String::from_utf8_lossy(&e.info.target).into_owned();
                if target.as_bytes() != e.info.target {
                    report.warnings.push((
                        p.to_vec(),
                        format!("link target is not UTF-8, which a zip cannot hold: stored as {target:?}"),
                    ));
                }
                z.add_symlink(name, target, o).map_err(zip_error)?;
                report.symlinks += 1;
            }
            FileKind::Special => report.warnings.push((p.to_vec(), special_reason(&e.info).into())),
        }
        Ok(())
    });
    if let Err(e) = written {
        // Dropping the writer would write a central directory: a valid-looking short zip.
        std::mem::forget(z);
        return Err(e);
    }
    z.finish().map_err(zip_error)?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::Format;

    #[test]
    fn formats_by_plakar_names() {
        assert_eq!(Format::parse("tarball"), Some(Format::TarGz));
        assert_eq!(Format::parse("TAR"), Some(Format::Tar));
        assert_eq!(Format::parse("zip").map(Format::extension), Some("zip"));
        assert_eq!(Format::parse("rar"), None);
    }
}
