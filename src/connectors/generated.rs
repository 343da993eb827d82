//! A source that makes up its files: `gen:FILES[?per_dir=100&max_size=4096&seed=0]`.
//!
//! It stands for a tree of FILES files of 0..=max_size pseudo-random bytes (each file's
//! own, so none deduplicates), `per_dir` to a directory, under as many levels of
//! directories as that takes, all of them under `/gen`. Nothing is kept in memory or on
//! disk: a directory's listing and a file's bytes are computed from its path and the seed,
//! so the same location always yields the same tree and a second backup finds it unchanged.
//! It is how the benchmarks back up ten million files on a machine whose disk or page
//! cache could not hold them (bench/manyfiles.sh, docs/PERFORMANCE.md).

use crate::kloset::importer::{DirEntry, FileInfo, FileKind, Importer};
use std::io::{self, Read};

const ROOT: &[u8] = b"/gen";
/// Every entry's mtime and ctime: 2025-01-01, so a second backup sees nothing changed.
const TIME_NS: i64 = 1_735_689_600 * 1_000_000_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generated {
    files: u64,
    per_dir: u64,
    max_size: u64,
    seed: u64,
    /// Levels of directories between the root and the files (0: the files are in it).
    depth: u32,
}

/// A directory of the tree: its level and its number among the directories of that level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Dir {
    level: u32,
    number: u64,
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

fn not_found(path: &[u8]) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("{}: no such entry", String::from_utf8_lossy(path)))
}

/// splitmix64: a well-mixed 64-bit value from any counter.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Generated {
    /// Parses what follows `gen:`.
    pub fn parse(rest: &str) -> io::Result<Generated> {
        let usage = "expected gen:FILES[?per_dir=N&max_size=BYTES&seed=N], as gen:1000000";
        let (count, query) = rest.trim_start_matches('/').split_once('?').unwrap_or((rest.trim_start_matches('/'), ""));
        let number = |what: &str, v: &str| {
            v.replace('_', "")
                .parse::<u64>()
                .map_err(|_| invalid(format!("gen: {what} {v:?} is not a number; {usage}")))
        };
        let mut g = Generated { files: number("FILES", count)?, per_dir: 100, max_size: 4096, seed: 0, depth: 0 };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "per_dir" => g.per_dir = number(k, v)?,
                "max_size" => g.max_size = number(k, v)?,
                "seed" => g.seed = number(k, v)?,
                _ => return Err(invalid(format!("gen: unknown option {k:?}; {usage}"))),
            }
        }
        if g.per_dir < 2 {
            return Err(invalid(format!("gen: per_dir must be at least 2; {usage}")));
        }
        let mut span = g.per_dir;
        while span < g.files {
            span = span.saturating_mul(g.per_dir);
            g.depth += 1;
        }
        Ok(g)
    }

    /// How many files a directory of `level` holds below it when full.
    fn span(&self, level: u32) -> u64 {
        self.per_dir.saturating_pow(self.depth - level + 1)
    }

    fn dir_info(&self, d: Dir) -> FileInfo {
        FileInfo {
            kind: Some(FileKind::Dir),
            mode: libc::S_IFDIR | 0o755,
            mtime_ns: TIME_NS,
            ctime_ns: TIME_NS,
            dev: 1,
            ino: (u64::from(d.level) << 56) | (d.number + 1),
            nlink: 2,
            ..FileInfo::default()
        }
    }

    fn size(&self, file: u64) -> u64 {
        mix(self.seed ^ mix(file)) % (self.max_size + 1)
    }

    fn file_info(&self, file: u64) -> FileInfo {
        FileInfo {
            kind: Some(FileKind::File),
            mode: libc::S_IFREG | 0o644,
            size: self.size(file),
            mtime_ns: TIME_NS,
            ctime_ns: TIME_NS,
            dev: 1,
            ino: (0xff << 56) | (file + 1),
            nlink: 1,
            ..FileInfo::default()
        }
    }

    /// What a path names: a directory, or a file by its number.
    fn resolve(&self, path: &[u8]) -> io::Result<Result<Dir, u64>> {
        let rest = path.strip_prefix(ROOT).ok_or_else(|| not_found(path))?;
        let mut dir = Dir { level: 0, number: 0 };
        let mut parts = rest.split(|b| *b == b'/').filter(|p| !p.is_empty()).peekable();
        while let Some(part) = parts.next() {
            let n = std::str::from_utf8(&part[1.min(part.len())..]).ok().and_then(|s| s.parse::<u64>().ok());
            let child = match (part.first(), n) {
                (Some(b'd'), Some(n)) if dir.level < self.depth && n < self.per_dir => {
                    Dir { level: dir.level + 1, number: dir.number * self.per_dir + n }
                }
                (Some(b'f'), Some(n)) if dir.level == self.depth && parts.peek().is_none() => {
                    let first = dir.number * self.per_dir;
                    if (first..first + self.per_dir).contains(&n) && n < self.files {
                        return Ok(Err(n));
                    }
                    return Err(not_found(path));
                }
                _ => return Err(not_found(path)),
            };
            if child.number * self.span(child.level) >= self.files {
                return Err(not_found(path));
            }
            dir = child;
        }
        Ok(Ok(dir))
    }
}

impl Importer for Generated {
    fn kind(&self) -> &str {
        "gen"
    }

    fn origin(&self) -> String {
        "generated".into()
    }

    fn root(&self) -> Vec<u8> {
        ROOT.to_vec()
    }

    fn stat(&self, path: &[u8]) -> io::Result<FileInfo> {
        Ok(match self.resolve(path)? {
            Ok(d) => self.dir_info(d),
            Err(f) => self.file_info(f),
        })
    }

    fn read_dir(&self, path: &[u8]) -> io::Result<Vec<DirEntry>> {
        let d = self.resolve(path)?.map_err(|_| io::Error::from_raw_os_error(libc::ENOTDIR))?;
        let first = d.number * self.per_dir;
        if d.level == self.depth {
            let files = first..(first + self.per_dir).min(self.files);
            return Ok(files
                .map(|f| DirEntry { name: format!("f{f}").into_bytes(), info: Ok(self.file_info(f)) })
                .collect());
        }
        let level = d.level + 1;
        Ok((0..self.per_dir)
            .map(|i| Dir { level, number: first + i })
            .take_while(|c| c.number * self.span(level) < self.files)
            .map(|c| DirEntry { name: format!("d{}", c.number - first).into_bytes(), info: Ok(self.dir_info(c)) })
            .collect())
    }

    fn open(&self, path: &[u8]) -> io::Result<Box<dyn Read + Send>> {
        match self.resolve(path)? {
            Ok(_) => Err(io::Error::from_raw_os_error(libc::EISDIR)),
            Err(f) => Ok(Box::new(Bytes { state: mix(self.seed.wrapping_add(f)), left: self.size(f) })),
        }
    }
}

/// A file's bytes: a splitmix64 stream.
struct Bytes {
    state: u64,
    left: u64,
}

impl Read for Bytes {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.left as usize);
        for chunk in buf[..n].chunks_mut(8) {
            self.state = self.state.wrapping_add(1);
            chunk.copy_from_slice(&mix(self.state).to_le_bytes()[..chunk.len()]);
        }
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk(g: &Generated, path: &[u8], files: &mut Vec<Vec<u8>>) {
        for e in g.read_dir(path).unwrap() {
            let p = crate::kloset::importer::join(path, &e.name);
            assert_eq!(g.stat(&p).unwrap(), e.info.unwrap());
            if g.stat(&p).unwrap().kind() == FileKind::Dir {
                walk(g, &p, files);
            } else {
                files.push(p);
            }
        }
    }

    #[test]
    fn lists_each_file_once_with_its_size_in_bytes() {
        for (files, per_dir) in [(0, 3), (1, 3), (3, 3), (4, 3), (10, 3), (28, 3), (250, 10)] {
            let g = Generated::parse(&format!("{files}?per_dir={per_dir}&max_size=40")).unwrap();
            let mut found = Vec::new();
            walk(&g, ROOT, &mut found);
            assert_eq!(found.len() as u64, files, "{files} files, {per_dir} a directory");
            let mut names = found.clone();
            names.sort();
            names.dedup();
            assert_eq!(names.len(), found.len());
            for p in &found {
                let mut bytes = Vec::new();
                g.open(p).unwrap().read_to_end(&mut bytes).unwrap();
                assert_eq!(bytes.len() as u64, g.stat(p).unwrap().size);
                assert!(g.read_dir(p).is_err());
            }
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_bytes_and_another_seed_others() {
        let read = |loc: &str, path: &[u8]| {
            let mut b = Vec::new();
            Generated::parse(loc).unwrap().open(path).unwrap().read_to_end(&mut b).unwrap();
            b
        };
        let a = read("1000?seed=1&max_size=100000", b"/gen/d7/f700");
        assert!(a.len() > 1000);
        assert_eq!(a, read("1000?seed=1&max_size=100000", b"/gen/d7/f700"));
        assert_ne!(a, read("1000?seed=2&max_size=100000", b"/gen/d7/f700"));
    }

    #[test]
    fn refuses_paths_outside_the_tree_and_bad_options() {
        let g = Generated::parse("250?per_dir=10").unwrap();
        for p in [&b"/gen/d3/f1"[..], b"/gen/d2/d5/f255", b"/gen/d9", b"/gen/x", b"/other", b"/gen/d0/d0/f0/f0"] {
            assert!(g.stat(p).is_err(), "{}", String::from_utf8_lossy(p));
        }
        assert!(g.stat(b"/gen/d2/d4/f249").is_ok());
        for bad in ["", "x", "10?per_dir=1", "10?size=3", "10?seed=z"] {
            let e = Generated::parse(bad).unwrap_err();
            assert!(e.to_string().contains("gen"), "{e}");
        }
    }
}
