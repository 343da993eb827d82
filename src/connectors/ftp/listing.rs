//! Reads directory listings into FileInfo: MLSD/MLST facts (RFC 3659: type, size, modify,
//! unix.mode, unix.uid, unix.gid, unique) where the server has them, `LIST` lines (Unix
//! `ls -l` or DOS style) otherwise. `LIST` times are only to the minute, or the day for old
//! files, so a server without MLSD makes incremental backups read more.
//!
//! No line is dropped silently but noise (`.` and `..` as directories, `total N`): a line
//! that cannot be read is returned as a problem that names it, so the backup reports it.

use crate::kloset::importer::{FileInfo, FileKind};
use chrono::NaiveDateTime;
use std::time::UNIX_EPOCH;
use suppaftp::list::{ListParser, PosixPexQuery};

/// The facts of one MLSD/MLST line, keys lowercased, and the name after them; None when
/// the line does not start with facts (`key=value;` each, RFC 3659 7.2).
pub fn parse_facts(line: &str) -> Option<(Vec<(String, String)>, &str)> {
    let line = line.trim_start_matches(' ');
    // Facts hold no spaces; the name is everything after the first one (it may hold `;`).
    let (facts, name) = line.split_once(' ')?;
    if !facts.ends_with(';') {
        return None;
    }
    let facts = facts
        .split(';')
        .filter(|f| !f.is_empty())
        .map(|f| f.split_once('=').map(|(k, v)| (k.to_ascii_lowercase(), v.to_string())))
        .collect::<Option<_>>()?;
    Some((facts, name))
}

/// One entry of a listing: its name and what the listing says of it, or why it cannot be
/// backed up. A nameless entry is a problem with the listing itself (a line that cannot be
/// read), as `Importer::read_dir` allows.
pub type Listed = (String, Result<FileInfo, String>);

/// What one listing line is.
enum Line {
    Entry(String, Box<FileInfo>),
    /// `.` and `..` as MLSD's cdir and pdir, LIST's `total N`.
    Noise,
    Unreadable,
}

fn mlsd_line(line: &str) -> Line {
    match parse_facts(line) {
        None => Line::Unreadable,
        Some((facts, name)) => match info_from_facts(&facts) {
            Some(info) => Line::Entry(name.to_string(), Box::new(info)),
            None => Line::Noise,
        },
    }
}

fn list_line(line: &str) -> Line {
    if line.strip_prefix("total ").is_some_and(|n| n.trim().parse::<u64>().is_ok()) {
        return Line::Noise;
    }
    match parse_list_line(line) {
        Some((name, info)) => Line::Entry(name, Box::new(info)),
        None => Line::Unreadable,
    }
}

/// A directory's listing, MLSD lines when `mlsd`, `LIST` lines otherwise, as entries.
///
/// Servers send a line break in a name as is (pyftpdlib does), and clients split lines
/// there: in MLSD, where every line starts with facts, a line without them continues the
/// name before it, and that whole name is reported, since no FTP command can carry it. In
/// `LIST`, whose formats vary, such a line is only reported as unreadable.
pub fn read_listing(lines: &[String], mlsd: bool) -> Vec<Listed> {
    let mut out: Vec<Listed> = Vec::new();
    // The entry the previous line made, which a continuation line extends.
    let mut last: Option<usize> = None;
    for line in lines {
        match if mlsd { mlsd_line(line) } else { list_line(line) } {
            Line::Entry(name, info) if (name == "." || name == "..") && info.kind() == FileKind::Dir => last = None,
            Line::Noise => last = None,
            Line::Entry(name, _) if name.is_empty() => {
                out.push((String::new(), Err(format!("the listing line {line:?} names no file; skipped"))));
                last = None;
            }
            Line::Entry(name, info) => {
                last = Some(out.len());
                out.push((name, Ok(*info)));
            }
            Line::Unreadable => match last.filter(|_| mlsd) {
                Some(i) => {
                    let (name, info) = &mut out[i];
                    name.push('\n');
                    name.push_str(line);
                    *info = Err("the name holds a line break, which FTP commands cannot carry (the listing \
                                 breaks it over several lines); not backed up"
                        .into());
                }
                None => out.push((String::new(), Err(format!("cannot read the listing line {line:?}; skipped")))),
            },
        }
    }
    out
}

/// `YYYYMMDDHHMMSS[.sss]`, UTC, as nanoseconds since the epoch.
pub fn parse_time(v: &str) -> Option<i64> {
    let (secs, frac) = v.split_once('.').unwrap_or((v, ""));
    let t = NaiveDateTime::parse_from_str(secs, "%Y%m%d%H%M%S").ok()?.and_utc();
    let mut ns = 0i64;
    if !frac.is_empty() && frac.len() <= 9 && frac.bytes().all(|b| b.is_ascii_digit()) {
        ns = format!("{frac:0<9}").parse().ok()?;
    }
    Some(t.timestamp() * 1_000_000_000 + ns)
}

/// `YYYYMMDDHHMMSS` for MFMT, from nanoseconds since the epoch.
pub fn format_time(mtime_ns: i64) -> Option<String> {
    let t = chrono::DateTime::from_timestamp(mtime_ns.div_euclid(1_000_000_000), 0)?;
    Some(t.format("%Y%m%d%H%M%S").to_string())
}

/// Octal mode: `644`, `0644` or Python's `0o644`.
fn parse_mode(v: &str) -> Option<u32> {
    let v = v.trim_start_matches("0o");
    u32::from_str_radix(v, 8).ok().map(|m| m & 0o7777)
}

/// A stable number for the `unique` fact, so unchanged files are recognised.
fn unique_id(v: &str) -> u64 {
    // FNV-1a
    v.bytes().fold(0xcbf29ce484222325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100000001b3))
}

fn type_bits(kind: FileKind) -> u32 {
    match kind {
        FileKind::File => 0o100000,
        FileKind::Dir => 0o040000,
        FileKind::Symlink => 0o120000,
        FileKind::Special => 0,
    }
}

/// What MLSx facts say of an entry; None for the `.` and `..` entries (cdir, pdir).
pub fn info_from_facts(facts: &[(String, String)]) -> Option<FileInfo> {
    let get = |k: &str| facts.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
    let mut target = Vec::new();
    let kind = match get("type").map(str::to_ascii_lowercase).as_deref() {
        Some("file") => FileKind::File,
        Some("dir") => FileKind::Dir,
        Some("cdir" | "pdir") => return None,
        // Some servers report links as OS.unix=symlink or OS.unix=slink:TARGET.
        Some(t) if t.starts_with("os.unix=slink") || t.starts_with("os.unix=symlink") => {
            let raw = get("type").unwrap_or_default();
            target = raw.split_once(':').map(|(_, t)| t.as_bytes().to_vec()).unwrap_or_default();
            FileKind::Symlink
        }
        _ => FileKind::Special,
    };
    let perm = get("unix.mode").and_then(parse_mode);
    let default = if kind == FileKind::Dir { 0o755 } else { 0o644 };
    Some(FileInfo {
        kind: Some(kind),
        mode: type_bits(kind) | perm.unwrap_or(default),
        size: if kind == FileKind::File { get("size").and_then(|s| s.parse().ok()).unwrap_or(0) } else { 0 },
        mtime_ns: get("modify").and_then(parse_time).unwrap_or(0),
        ino: get("unique").map(unique_id).unwrap_or(0),
        nlink: 1,
        uid: get("unix.uid").and_then(|v| v.parse().ok()).unwrap_or(0),
        gid: get("unix.gid").and_then(|v| v.parse().ok()).unwrap_or(0),
        target,
        ..Default::default()
    })
}

/// One `LIST` line, Unix or DOS style, as (name, info).
pub fn parse_list_line(line: &str) -> Option<(String, FileInfo)> {
    let f = ListParser::parse_posix(line).or_else(|_| ListParser::parse_dos(line)).ok()?;
    let kind = if f.is_directory() {
        FileKind::Dir
    } else if f.is_symlink() {
        FileKind::Symlink
    } else {
        FileKind::File
    };
    let mut perm = 0;
    for (i, who) in [PosixPexQuery::Owner, PosixPexQuery::Group, PosixPexQuery::Others].into_iter().enumerate() {
        let shift = 6 - 3 * i;
        perm |= (f.can_read(who) as u32) << (shift + 2);
        perm |= (f.can_write(who) as u32) << (shift + 1);
        perm |= (f.can_execute(who) as u32) << shift;
    }
    let mtime_ns = f.modified().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0);
    let target = f.symlink().map(|t| t.to_string_lossy().as_bytes().to_vec()).unwrap_or_default();
    let info = FileInfo {
        kind: Some(kind),
        mode: type_bits(kind) | perm,
        size: if kind == FileKind::File { f.size() as u64 } else { 0 },
        mtime_ns,
        nlink: 1,
        uid: f.uid().unwrap_or(0),
        gid: f.gid().unwrap_or(0),
        target,
        ..Default::default()
    };
    Some((f.name().to_string(), info))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_mlsd_lines() {
        let (facts, name) =
            parse_facts("modify=20240102030405;perm=r;size=12;type=file;unique=801g4a;unix.mode=0o600; a; b c")
                .unwrap();
        assert_eq!(name, "a; b c");
        let i = info_from_facts(&facts).unwrap();
        assert_eq!((i.kind(), i.size, i.mode), (FileKind::File, 12, 0o100600));
        assert_eq!(i.mtime_ns, 1_704_164_645 * 1_000_000_000);
        assert_ne!(i.ino, 0);
        let (facts, _) = parse_facts("type=dir;modify=20240102030405.5; sub").unwrap();
        let i = info_from_facts(&facts).unwrap();
        assert_eq!((i.kind(), i.mode, i.mtime_ns % 1_000_000_000), (FileKind::Dir, 0o040755, 500_000_000));
        let (facts, _) = parse_facts("type=OS.unix=slink:/etc/x; l").unwrap();
        let i = info_from_facts(&facts).unwrap();
        assert_eq!((i.kind(), i.target.as_slice()), (FileKind::Symlink, &b"/etc/x"[..]));
        assert!(info_from_facts(&parse_facts("type=cdir; .").unwrap().0).is_none());
        // Not facts: no `;` at the end, or a fact without `=`.
        assert!(parse_facts("line.txt").is_none());
        assert!(parse_facts("two words").is_none());
        assert!(parse_facts("type=file;junk; x").is_none());
        assert_eq!(format_time(1_704_164_645_999_999_999).unwrap(), "20240102030405");
    }

    #[test]
    fn reads_list_lines() {
        let (name, i) = parse_list_line("-rw-r----- 1 0 0 8192 Nov 5 2018 my file.txt").unwrap();
        assert_eq!((name.as_str(), i.kind(), i.size, i.mode), ("my file.txt", FileKind::File, 8192, 0o100640));
        let (_, i) = parse_list_line("drwxr-xr-x 2 0 0 4096 Nov 5 2018 dir").unwrap();
        assert_eq!((i.kind(), i.mode), (FileKind::Dir, 0o040755));
        assert!(parse_list_line("total 12").is_none());
    }

    fn lines(l: &[&str]) -> Vec<String> {
        l.iter().map(|s| s.to_string()).collect()
    }

    fn shown(l: &[Listed]) -> Vec<(String, Result<FileKind, String>)> {
        l.iter().map(|(n, i)| (n.clone(), i.as_ref().map(|i| i.kind()).map_err(|e| e.clone()))).collect()
    }

    #[test]
    fn mlsd_listing_keeps_or_reports_every_line() {
        let got = read_listing(
            &lines(&[
                "junk before any entry",
                "type=cdir; /d",
                "type=pdir; /",
                "type=dir; .",
                "type=dir; ..",
                "type=file;size=1; ..",
                "type=file;size=1; a/b",
                "type=file;size=1; ",
                "type=file;size=1; new",
                "line.txt",
                "and more",
                "type=file;size=1; ok",
            ]),
            true,
        );
        let got = shown(&got);
        assert_eq!(got.len(), 6, "{got:?}");
        assert!(got[0].0.is_empty() && got[0].1.as_ref().unwrap_err().contains("\"junk before any entry\""));
        assert_eq!(got[1], ("..".into(), Ok(FileKind::File)), "the engine refuses it, with a KO line");
        assert_eq!(got[2], ("a/b".into(), Ok(FileKind::File)));
        assert!(got[3].0.is_empty() && got[3].1.as_ref().unwrap_err().contains("names no file"));
        assert_eq!(got[4].0, "new\nline.txt\nand more");
        assert!(got[4].1.as_ref().unwrap_err().contains("line break"));
        assert_eq!(got[5], ("ok".into(), Ok(FileKind::File)));
    }

    #[test]
    fn list_listing_reports_unreadable_lines() {
        let got = read_listing(
            &lines(&[
                "total 12",
                "drwxr-xr-x 2 0 0 4096 Nov 5 2018 .",
                "drwxr-xr-x 2 0 0 4096 Nov 5 2018 ..",
                "-rw-r--r-- 1 0 0 5 Nov 5 2018 new",
                "line.txt",
            ]),
            false,
        );
        let got = shown(&got);
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0], ("new".into(), Ok(FileKind::File)));
        assert!(got[1].0.is_empty() && got[1].1.as_ref().unwrap_err().contains("\"line.txt\""));
    }
}
